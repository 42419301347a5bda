// warren-sim: runs one simulated workload (or a range of seeds) against the real core and
// prints, per seed, the trace hash and any invariant violation. Exit status 1 on violations,
// so a failing seed is a ready-made reproduction: `warren-sim --seed N`.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "sim/scenarios.h"
#include "sim/simulation.h"

namespace {

// --scenario NAME: one attack or failure scenario per seed, with 50 legitimate clients.
int run_scenarios(const std::string& name, uint64_t seed, uint64_t seeds) {
    auto sc = warren::sim::scenario_from_name(name);
    if (!sc) {
        std::fprintf(stderr, "unknown scenario '%s'\n", name.c_str());
        return 2;
    }
    auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
    auto opt = [&](const std::optional<uint64_t>& v) {
        return v ? std::to_string(*v) : std::string("never");
    };
    int failed = 0;
    for (uint64_t s = seed; s < seed + seeds; ++s) {
        warren::sim::ScenarioOptions o;
        o.scenario = *sc;
        o.seed = s;
        auto r = warren::sim::run_scenario(o);
        std::printf(
            "scenario=%s seed=%llu trace=%s attempts=%llu throttled_at=%s blocked_at=%s "
            "attacker_successes=%llu worst_name_failures=%llu slowest_close_ms=%lld "
            "legit_requests=%llu legit_errors=%llu legit_p99_ms=%lld legit_max_ms=%lld "
            "peak_connections=%zu peak_tracked_ips=%zu end_connections=%zu audit=%llu "
            "alerts=%zu duplicate_raises=%llu violations=%zu\n",
            name.c_str(), u(s), r.trace_hash.c_str(), u(r.attempts), opt(r.throttled_at).c_str(),
            opt(r.blocked_at).c_str(), u(r.attacker_successes), u(r.worst_name_failures),
            static_cast<long long>(r.slowest_close_ms), u(r.legit_requests), u(r.legit_errors),
            static_cast<long long>(r.legit_p99_ms), static_cast<long long>(r.legit_max_ms),
            r.peak_connections, r.peak_tracked_ips, r.end_connections, u(r.audit_records),
            r.alerts.size(), u(r.duplicate_raises), r.violations.size());
        if (!r.close_reason.empty() || r.stored > 0)
            std::printf(
                "  pipeline: acknowledged=%llu stored=%llu closed=%s lines_after_close=%llu\n",
                u(r.acknowledged), u(r.stored), r.close_reason.c_str(), u(r.lines_after_close));
        for (const auto& e : r.legit_error_samples) std::printf("  legit error: %s\n", e.c_str());
        for (const auto& a : r.alerts)
            std::printf("  alert %s at %lld ms: %s %s %s\n", a.raised ? "raised" : "resolved",
                        static_cast<long long>(a.at_ms), a.level.c_str(), a.rule.c_str(),
                        a.subject.c_str());
        for (const auto& v : r.violations) std::printf("  violation: %s\n", v.c_str());
        if (!r.violations.empty()) {
            ++failed;
            std::printf("  replay with: warren-sim --scenario %s --seed %llu\n", name.c_str(),
                        u(s));
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
