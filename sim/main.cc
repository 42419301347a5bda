// warren-sim: runs one simulated workload (or a range of seeds) against the real core and
// prints, per seed, the trace hash and any invariant violation. Exit status 1 on violations,
// so a failing seed is a ready-made reproduction: `warren-sim --seed N`.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "sim/builtin.h"
#include "sim/engine/report.h"
#include "sim/engine/world.h"
#include "sim/simulation.h"

namespace {

// --scenario NAME: a built-in attack or failure scenario per seed, with 50 legitimate clients.
int run_scenarios(const std::string& name, uint64_t seed, uint64_t seeds) {
    auto spec = warren::sim::builtin_scenario(name);
    if (!spec) {
        std::fprintf(stderr, "unknown scenario '%s'\n", name.c_str());
        return 2;
    }
    int failed = 0;
    for (uint64_t s = seed; s < seed + seeds; ++s) {
        warren::sim::RunReport r = warren::sim::run_world(*spec, s);
        std::printf("scenario=%s seed=%llu trace=%s\n", name.c_str(),
                    static_cast<unsigned long long>(s), r.trace_hash.c_str());
        for (const auto& [k, v] : r.metrics) std::printf("  %s = %g\n", k.c_str(), v);
        for (const auto& v : r.violations) std::printf("  violation: %s\n", v.c_str());
        if (!r.violations.empty()) {
            ++failed;
            std::printf("  replay with: warren-sim --scenario %s --seed %llu\n", name.c_str(),
                        static_cast<unsigned long long>(s));
        }
    }
    return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Warren simulator: replay a chat workload from a seed"};
    uint64_t seed = 1;
    uint64_t seeds = 1;
    warren::sim::SimOptions o;
    std::string scenario;
    app.add_option("--scenario", scenario,
                   "run an attack or failure scenario instead: brute_force, credential_stuffing, "
                   "connection_flood, message_flood, slowloris, bad_frames, invitation_spam, "
                   "dm_spam, storage_outage, slow_storage");
    app.add_option("--seed", seed, "first seed");
    app.add_option("--seeds", seeds, "how many consecutive seeds to run");
    app.add_option("--clients", o.clients, "simulated clients");
    app.add_option("--rooms", o.rooms, "rooms");
    app.add_option("--messages", o.messages_per_client, "messages per client");
    app.add_option("--transient", o.commit_transient_p, "chance a commit fails transiently");
    app.add_option("--fail", o.commit_fail_p, "chance a commit fails permanently");
    app.add_option("--slow", o.commit_slow_p, "chance a commit is 20x slower");
    app.add_option("--crash", o.crash_p, "chance per commit that the server crashes meanwhile");
    app.add_option("--crashes-max", o.crashes_max, "most crashes per run");
    app.add_option("--outage-from", o.outage_from_ms, "storage outage start (simulated ms)");
    app.add_option("--outage-to", o.outage_to_ms, "storage outage end (simulated ms)");
    CLI11_PARSE(app, argc, argv);
    if (!scenario.empty()) return run_scenarios(scenario, seed, seeds);
    int failed = 0;
    for (uint64_t s = seed; s < seed + seeds; ++s) {
        o.seed = s;
        warren::sim::SimReport r = warren::sim::run_simulation(o);
        auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
        std::printf(
            "seed=%llu trace=%s inputs=%llu acked=%llu events=%llu batches=%llu sim_ms=%lld "
            "crashes=%llu faults=%llu unavailable=%llu in_doubt=%llu breaker_opened=%llu "
            "violations=%zu\n",
            u(r.seed), r.trace_hash.c_str(), u(r.inputs), u(r.acked_messages),
            u(r.events_delivered), u(r.batches), static_cast<long long>(r.end_ms), u(r.crashes),
            u(r.commit_faults), u(r.unavailable), u(r.in_doubt), u(r.breaker_opened),
            r.violations.size());
        for (const auto& v : r.violations) std::printf("  violation: %s\n", v.c_str());
        if (!r.violations.empty()) {
            ++failed;
            std::printf("  replay with: warren-sim --seed %llu\n",
                        static_cast<unsigned long long>(s));
        }
    }
    return failed ? 1 : 0;
}
