// The simulator as a test: determinism (same seed, same trace hash), sensitivity (different
// seeds, different traces) and the chat invariants over many seeds. Every failure message
// names its seed; replay with `warren-sim --seed N`. WARREN_SIM_SEEDS sets how many seeds
// the sweep runs (default 40).
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "sim/parsed_lines.h"
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
        EXPECT_GE(r.acked_messages, 72u) << "seed=" << seed;  // 72 room messages, plus DMs
        for (const auto& v : r.violations) ADD_FAILURE() << "seed=" << seed << ": " << v;
    }
    std::printf("%llu seeds, %llu acknowledged messages checked\n",
                static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(acked));
}

}  // namespace
}  // namespace warren::sim

namespace warren::sim {
namespace {

uint64_t env_or(const char* name, uint64_t fallback) {
    const char* v = std::getenv(name);
    return v ? std::strtoull(v, nullptr, 10) : fallback;
}

// Storage faults and crashes over many seeds (1,000 by default; WARREN_SIM_FAULT_SEEDS for a
// nightly sweep). Every seed must keep every invariant; the sweep must actually have
// exercised each kind of fault.
TEST(SimulationFaults, InvariantsHoldUnderStorageFaultsAndCrashes) {
    uint64_t seeds = env_or("WARREN_SIM_FAULT_SEEDS", 1000);
    uint64_t crashes = 0, faults = 0, in_doubt = 0, acked = 0, unavailable = 0;
    for (uint64_t seed = 1; seed <= seeds; ++seed) {
        SimOptions o;
        o.seed = seed;
        o.clients = 6;
        o.messages_per_client = 12;
        o.commit_transient_p = 0.1;
        o.commit_fail_p = 0.03;
        o.commit_slow_p = 0.05;
        o.crash_p = 0.03;
        SimReport r = run_simulation(o);
        crashes += r.crashes;
        faults += r.commit_faults;
        in_doubt += r.in_doubt;
        acked += r.acked_messages;
        unavailable += r.unavailable;
        for (const auto& v : r.violations)
            ADD_FAILURE() << "seed=" << seed << ": " << v << "  (replay: warren-sim --seed " << seed
                          << " --transient 0.1 --fail 0.03 --slow 0.05 --crash 0.03"
                          << " --clients 6 --messages 12)";
    }
    std::printf(
        "%llu seeds: %llu acked, %llu commit faults, %llu UNAVAILABLE, %llu crashes, "
        "%llu in doubt\n",
        static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(acked),
        static_cast<unsigned long long>(faults), static_cast<unsigned long long>(unavailable),
        static_cast<unsigned long long>(crashes), static_cast<unsigned long long>(in_doubt));
    EXPECT_GT(crashes, seeds / 10);
    EXPECT_GT(faults, seeds);
    EXPECT_GT(in_doubt, 0u);
    EXPECT_GT(unavailable, 0u);
}

TEST(SimulationFaults, OutageOpensTheBreakerWhichRecovers) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        SimOptions o;
        o.seed = seed;
        o.outage_from_ms = 300;
        o.outage_to_ms = 3000;
        SimReport r = run_simulation(o);
        EXPECT_GE(r.breaker_opened, 1u) << "seed=" << seed;
        EXPECT_TRUE(r.breaker_closed_at_end) << "seed=" << seed;
        EXPECT_GT(r.unavailable, 0u) << "seed=" << seed;
        for (const auto& v : r.violations) ADD_FAILURE() << "seed=" << seed << ": " << v;
    }
}

TEST(SimulationFaults, FaultyRunsReplayExactly) {
    SimOptions o;
    o.seed = 99;
    o.commit_transient_p = 0.2;
    o.commit_fail_p = 0.05;
    o.crash_p = 0.1;
    SimReport a = run_simulation(o);
    SimReport b = run_simulation(o);
    EXPECT_EQ(a.trace_hash, b.trace_hash);
    EXPECT_EQ(a.crashes, b.crashes);
}

// The scenario world's clients read only a line's top-level fields, its error and its message:
// the rest is checked as JSON but not kept; a line that is not JSON is still refused.
TEST(ParsedLines, KeepsTheTopLevelTheErrorAndTheMessageOnly) {
    ParsedLines all;
    ParsedLines top(ParsedLines::Keep::top_level_error_and_message);
    const std::string line =
        R"({"re":7,"ok":false,"error":{"code":"RATE_LIMITED","retry_after_ms":900},)"
        R"("messages":[{"id":1,"text":"a"}],"room":{"id":3},"reason":"x",)"
        R"("message":{"id":5,"room":"r"}})";
    auto full = all.get(line);
    auto kept = top.get(line);
    ASSERT_FALSE(full->is_discarded());
    ASSERT_FALSE(kept->is_discarded());
    EXPECT_EQ(full->size(), 7u);
    EXPECT_EQ((*full)["messages"][0]["text"], "a");
    EXPECT_EQ(kept->size(), 5u);
    EXPECT_EQ((*kept)["message"]["id"], 5);
    EXPECT_EQ((*kept)["re"], 7);
    EXPECT_EQ((*kept)["ok"], false);
    EXPECT_EQ((*kept)["reason"], "x");
    EXPECT_EQ((*kept)["error"]["code"], "RATE_LIMITED");
    EXPECT_EQ((*kept)["error"]["retry_after_ms"], 900);
    EXPECT_FALSE(kept->contains("messages"));
    EXPECT_FALSE(kept->contains("room"));
    EXPECT_TRUE(top.get(R"({"re":7,"messages":[{"id":1,)")->is_discarded());
    EXPECT_TRUE(top.get("not json")->is_discarded());
}

}  // namespace
}  // namespace warren::sim
