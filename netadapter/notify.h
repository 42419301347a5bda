// The service manager's notification protocol (systemd's sd_notify, spoken natively): a
// datagram of "KEY=VALUE" lines to the unix socket named by $NOTIFY_SOCKET. warrend sends
// READY=1 once its listeners are bound, STOPPING=1 when shutdown begins, and WATCHDOG=1 at
// half the interval $WATCHDOG_USEC asks for. Without $NOTIFY_SOCKET every call does nothing,
// so the same binary runs under systemd, another supervisor, or a terminal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace warren {

// Sends `state` ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET. Returns "" when sent or when there
// is no socket to send to, else the error.
std::string notify_service_manager(std::string_view state);
// The watchdog interval the service manager expects pings within (µs), when it asks for one
// for this process ($WATCHDOG_USEC, and $WATCHDOG_PID if set names this process).
std::optional<int64_t> watchdog_interval_us();

}  // namespace warren
