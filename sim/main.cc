// warren-sim: runs one simulated workload (or a range of seeds) against the real core and
// prints, per seed, the trace hash and any invariant violation. Exit status 1 on violations,
// so a failing seed is a ready-made reproduction: `warren-sim --seed N`.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "sim/simulation.h"

int main(int argc, char** argv) {
    CLI::App app{"Warren simulator: replay a chat workload from a seed"};
    uint64_t seed = 1;
    uint64_t seeds = 1;
    warren::sim::SimOptions o;
    app.add_option("--seed", seed, "first seed");
    app.add_option("--seeds", seeds, "how many consecutive seeds to run");
    app.add_option("--clients", o.clients, "simulated clients");
    app.add_option("--rooms", o.rooms, "rooms");
    app.add_option("--messages", o.messages_per_client, "messages per client");
    CLI11_PARSE(app, argc, argv);
    int failed = 0;
    for (uint64_t s = seed; s < seed + seeds; ++s) {
        o.seed = s;
        warren::sim::SimReport r = warren::sim::run_simulation(o);
        std::printf(
            "seed=%llu trace=%s inputs=%llu acked=%llu events=%llu batches=%llu "
            "sim_ms=%lld violations=%zu\n",
            static_cast<unsigned long long>(r.seed), r.trace_hash.c_str(),
            static_cast<unsigned long long>(r.inputs),
            static_cast<unsigned long long>(r.acked_messages),
            static_cast<unsigned long long>(r.events_delivered),
            static_cast<unsigned long long>(r.batches), static_cast<long long>(r.end_ms),
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
