// warren-bench-memory: the memory the security and monitoring state holds for 10,000
// logged-in users across 1,000 rooms (the specification: under 10 MB), by counting the
// bytes allocated and not yet freed (global operator new/delete, malloc_usable_size).
//
// The Guard and the Monitor are built on their own and fed what the core feeds them for
// such a population: every user connects from an address of its own and logs in, joins
// rooms and sends messages to 10 of the 1,000 rooms, some direct messages, requests of every
// op into the Monitor with their latencies. The figure is what they hold afterwards.
// Second figure: what the whole core holds per idle registered connection (2,000 connections,
// each from an address of its own, each registered and then quiet), the core's share of the
// server's memory per connection. Prints one JSON line; bench/instr_budget.py reports it and
// holds the security and monitoring figure to its budget.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>
#include <new>
#include <string>

#include "core/monitor/monitor.h"
#include "core/security/address.h"
#include "core/security/guard.h"
#include "core/server.h"
#include "sim/rng.h"

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
    delete monitor;
    delete guard;

    constexpr int conns = 2'000;
    sim::SeededEntropy entropy{3};
    Server core(config, entropy, Snapshot{});
    auto drain = [&] {
        for (bool busy = true; busy;) {
            busy = false;
            std::vector<std::function<void()>> later;
            while (auto o = core.poll()) {
                busy = true;
                if (auto* send = std::get_if<Send>(&*o)) {
                    for (ConnId to : send->to)
                        later.push_back([&, to, n = send->bytes->size()] { core.sent(to, n, now); });
                } else if (auto* c = std::get_if<Commit>(&*o))
                    later.push_back([&, b = c->batch] { core.committed(b, Status::ok(), now); });
                else if (auto* h = std::get_if<Hash>(&*o))
                    later.push_back([&, j = h->job] { core.hashed(j, HashResult{true, false, "$f$"}, now); });
            }
            for (auto& f : later) f();
        }
    };
    drain();
    size_t idle_before = live_bytes;
    for (int u = 1; u <= conns; ++u) {
        now.mono_us += 100'000;
        now.wall_ms += 100;
        core.connect(ConnId(u), "10.9." + std::to_string(u / 256) + "." + std::to_string(u % 256), now);
        core.receive(ConnId(u),
                     "{\"id\":1,\"op\":\"REGISTER\",\"username\":\"idle" + std::to_string(u) +
                         "\",\"password\":\"password\"}\n",
                     now);
        drain();
    }
    WARREN_CHECK(core.state().session_count() == conns);
    size_t per_conn = (live_bytes - idle_before) / conns;
    std::printf(
        "{\"users\":%d,\"rooms\":%d,\"security_bytes\":%zu,\"monitoring_bytes\":%zu,"
        "\"security_and_monitoring_bytes\":%zu,\"idle_connections\":%d,"
        "\"core_bytes_per_idle_connection\":%zu}\n",
        users, rooms, security, held - security, held, conns, per_conn);
    return 0;
}
