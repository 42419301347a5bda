// The simulator: runs the real core against a virtual clock, a network that splits and
// delays bytes, the real store on SQLite :memory: with simulated latency, a simulated
// password hasher, and scripted clients that speak the wire protocol.
//
// run_simulation() is a pure function of its options: the same seed gives the same trace
// hash (a BLAKE2b over every input fed to the core and every output it produced). Invariant
// violations are collected, not thrown; a run with violations prints its seed for replay.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace warren::sim {

struct SimOptions {
    uint64_t seed = 1;
    int clients = 8;
    int rooms = 3;
    int messages_per_client = 20;
    int64_t net_delay_max_ms = 20;        // per chunk, one way
    int64_t store_latency_max_ms = 8;     // per commit or query
    int64_t hash_latency_max_ms = 40;     // per argon2id job
    size_t room_cache_messages_max = 16;  // small, so HISTORY pages reach storage
};

struct SimReport {
    uint64_t seed = 0;
    std::string trace_hash;  // hex
    uint64_t inputs = 0;
    uint64_t acked_messages = 0;
    uint64_t events_delivered = 0;
    uint64_t batches = 0;
    int64_t end_ms = 0;  // simulated time at the end
    std::vector<std::string> violations;
};

SimReport run_simulation(const SimOptions& options);

}  // namespace warren::sim
