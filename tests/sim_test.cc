// The simulator as a test: determinism (same seed, same trace hash), sensitivity (different
// seeds, different traces) and the chat invariants over many seeds. Every failure message
// names its seed; replay with `warren-sim --seed N`. WARREN_SIM_SEEDS sets how many seeds
// the sweep runs (default 40).
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "sim/simulation.h"

namespace warren::sim {
namespace {

TEST(Simulation, SameSeedSameTrace) {
    SimOptions o;
    o.seed = 7;
    SimReport a = run_simulation(o);
    SimReport b = run_simulation(o);
    std::printf("seed=%llu trace=%s\n", static_cast<unsigned long long>(o.seed),
                a.trace_hash.c_str());
    EXPECT_EQ(a.trace_hash, b.trace_hash);
    EXPECT_EQ(a.inputs, b.inputs);
    EXPECT_GT(a.acked_messages, 0u);
}

TEST(Simulation, DifferentSeedsDifferentTraces) {
    std::set<std::string> hashes;
    SimOptions o;
    o.clients = 4;
    o.messages_per_client = 5;
    for (uint64_t seed = 1; seed <= 5; ++seed) {
        o.seed = seed;
        hashes.insert(run_simulation(o).trace_hash);
    }
    EXPECT_EQ(hashes.size(), 5u);
}

TEST(Simulation, InvariantsHoldAcrossSeeds) {
    uint64_t seeds = 40;
    if (const char* env = std::getenv("WARREN_SIM_SEEDS")) seeds = std::strtoull(env, nullptr, 10);
    uint64_t acked = 0;
    for (uint64_t seed = 1000; seed < 1000 + seeds; ++seed) {
        SimOptions o;
        o.seed = seed;
        o.clients = 6;
        o.messages_per_client = 12;
        SimReport r = run_simulation(o);
        acked += r.acked_messages;
        EXPECT_EQ(r.acked_messages, 72u) << "seed=" << seed;
        for (const auto& v : r.violations) ADD_FAILURE() << "seed=" << seed << ": " << v;
    }
    std::printf("%llu seeds, %llu acknowledged messages checked\n",
                static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(acked));
}

}  // namespace
}  // namespace warren::sim
