#include "netadapter/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

namespace warren {

std::string notify_service_manager(std::string_view state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return {};
    size_t len = std::strlen(path);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    // A leading '@' names a socket in the abstract namespace (a leading NUL byte).
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path)
        return std::string("NOTIFY_SOCKET is not a unix socket path: ") + path;
    std::memcpy(addr.sun_path, path, len);
    if (path[0] == '@') addr.sun_path[0] = '\0';
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::string("socket: ") + std::strerror(errno);
    auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    // Never wait: this runs on the event loop, and a service manager that stopped reading
    // (its queue full) would otherwise stall every client.
    ssize_t n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                         reinterpret_cast<const sockaddr*>(&addr), addr_len);
    int err = errno;
    ::close(fd);
    if (n < 0) return std::string("sendto NOTIFY_SOCKET: ") + std::strerror(err);
    return {};
}

std::optional<int64_t> watchdog_interval_us() {
    auto number = [](const char* text) -> std::optional<int64_t> {
        if (!text || !*text) return std::nullopt;
        int64_t v = 0;
        const char* end = text + std::strlen(text);
        auto [p, ec] = std::from_chars(text, end, v);
        if (ec != std::errc() || p != end || v <= 0) return std::nullopt;
        return v;
    };
    auto usec = number(std::getenv("WATCHDOG_USEC"));
    if (!usec) return std::nullopt;
    if (const char* pid = std::getenv("WATCHDOG_PID"); pid && *pid) {
        auto who = number(pid);
        if (!who || *who != static_cast<int64_t>(::getpid())) return std::nullopt;
    }
    return usec;
}

}  // namespace warren
