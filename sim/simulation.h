// The simulator: runs the real core against a virtual clock, a network that splits and
// delays bytes, the real store on SQLite :memory: with simulated latency, a simulated
// password hasher, and scripted clients that speak the wire protocol.
//
// Faults (SimOptions): commits that fail transiently or permanently or are slow, crashes
// (restart from the database), and storage outages. Invariants checked at the end: every
// acknowledged message is in history exactly once with its text; no message answered with
// an error is anywhere; a message whose answer a crash hid is there at most once; ids never
// repeat; replies keep request order; events reach exactly the members online at the time
// (checked after the last crash) in commit order; no reply precedes durability.
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

    // Storage faults, per commit: fails transiently (rolled back, retried by the core), fails
    // permanently, or is slow (20x latency).
    double commit_transient_p = 0;
    double commit_fail_p = 0;
    double commit_slow_p = 0;
    // Per commit, the chance that the server crashes while it is in flight: volatile state,
    // connections and unacknowledged work are lost; the commit itself lands or not (50/50);
    // the server restarts from the database after restart_ms. At most crashes_max per run.
    double crash_p = 0;
    int crashes_max = 3;
    int64_t restart_ms = 200;
    // A storage outage: every commit in [outage_from_ms, outage_to_ms) fails transiently.
    int64_t outage_from_ms = -1;
    int64_t outage_to_ms = -1;
};

struct SimReport {
    uint64_t seed = 0;
    std::string trace_hash;  // hex
    uint64_t inputs = 0;
    uint64_t acked_messages = 0;
    uint64_t events_delivered = 0;
    uint64_t batches = 0;
    int64_t end_ms = 0;  // simulated time at the end
    uint64_t crashes = 0;
    uint64_t commit_faults = 0;  // injected commit failures (transient or permanent)
    uint64_t unavailable = 0;    // UNAVAILABLE replies clients received
    uint64_t in_doubt = 0;       // messages whose outcome a crash hid from the sender
    uint64_t breaker_opened = 0;
    bool breaker_closed_at_end = true;
    std::vector<std::string> violations;
};

SimReport run_simulation(const SimOptions& options);

}  // namespace warren::sim
