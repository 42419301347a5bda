// warren-bench-memory: the memory the security and monitoring state holds for 10,000
// logged-in users across 1,000 rooms (the specification: under 10 MB), by counting the
// bytes allocated and not yet freed (global operator new/delete, malloc_usable_size).
//
// The Guard and the Monitor are built on their own and fed what the core feeds them for
// such a population: every user connects from an address of its own and logs in, joins
// rooms and sends messages to 10 of the 1,000 rooms, some direct messages, requests of every
// op into the Monitor with their latencies. The figure is what they hold afterwards.
// Prints one JSON line; bench/check_memory.py compares it with the budget.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "core/monitor/monitor.h"
#include "core/security/address.h"
#include "core/security/guard.h"

namespace {

size_t live_bytes = 0;

}  // namespace

void* operator new(size_t n) {
    void* p = std::malloc(n ? n : 1);
    if (!p) throw std::bad_alloc();
    live_bytes += malloc_usable_size(p);
    return p;
}
void operator delete(void* p) noexcept {
    if (p) live_bytes -= malloc_usable_size(p);
    std::free(p);
}
void operator delete(void* p, size_t) noexcept {
    operator delete(p);
}

int main() {
    using namespace warren;
    constexpr int users = 10'000, rooms = 1'000;
    Config config;
    Time now{1'000'000, 1764000000000};
    size_t before = live_bytes;
    auto* guard = new Guard(config);
    auto ip = [](int u) {
        return address_key("10." + std::to_string(u / 65536) + "." +
                           std::to_string(u / 256 % 256) + "." + std::to_string(u % 256));
    };
    for (int u = 1; u <= users; ++u) {
        std::string key = ip(u);
        (void)guard->admit_connection(key, now);
        if (std::getenv("ONLY_CONNECT")) continue;
        std::string name = "user" + std::to_string(u);
        guard->login_started(name);
        guard->login_succeeded(name, UserId(u));
        guard->login_finished(name);
        if (std::getenv("ONLY_LOGIN")) continue;
        for (int j = 0; j < 3; ++j) guard->membership_change(key, UserId(u), now);
        if (std::getenv("NO_MESSAGES")) continue;
        for (int m = 0; m < 10; ++m) {
            (void)guard->take_tokens(key, UserId(u), 1, now);
            guard->room_message(key, UserId(u), RoomId(1 + (u * 7 + m * 101) % rooms),
                                static_cast<uint64_t>(u) * 1000 + m, now);
        }
        guard->direct_message(key, UserId(u), UserId(1 + u % users), 0, now);
        now.mono_us += 100;
        now.wall_ms = 1764000000000 + now.mono_us / 1000;
    }
    size_t security = live_bytes - before;
    auto* monitor = new Monitor(config);
    for (int i = 0; i < 200'000; ++i) {
        Op op = static_cast<Op>(i % op_count);
        monitor->request_done(op, i % 50 == 0 ? std::optional(ErrorCode::rate_limited) : std::nullopt,
                              50 + i % 5000, now.mono_us + i * 10);
    }
    size_t held = live_bytes - before;
    std::printf(
        "{\"users\":%d,\"rooms\":%d,\"security_bytes\":%zu,\"monitoring_bytes\":%zu,"
        "\"security_and_monitoring_bytes\":%zu}\n",
        users, rooms, security, held - security, held);
    delete monitor;
    delete guard;
    return 0;
}
