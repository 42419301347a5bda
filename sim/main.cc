// warren-sim: QA's tool. Runs scenario files (sim/scenarios/*.toml, docs/SIMULATION.md) seed by
// seed against the real core and store, each seed in its own worker process, and exits with
// a code that says what failed (see exit_code below). `--seed N` alone still runs the
// durability workload (sim/simulation.h).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "sim/runner.h"
#include "sim/simulation.h"

namespace {

using namespace warren::sim;

// The durability workload: many clients, every fault of the store, crashes, and the end-state
// checks of sim/simulation.h. Exit 1 on a violation.
int run_durability(warren::sim::SimOptions o, uint64_t seed, uint64_t seeds) {
    int failed = 0;
    for (uint64_t s = seed; s < seed + seeds; ++s) {
        o.seed = s;
        SimReport r = run_simulation(o);
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
            std::printf("  replay with: warren-sim --seed %llu\n", u(s));
        }
    }
    return failed ? exit_safety : exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "warren-sim: run scenario files against the real core and store "
        "(docs/SIMULATION.md)"};
    app.require_subcommand(0, 1);
    RunOptions run;
    std::string file;

    auto add_run_options = [&](CLI::App* c) {
        c->add_option("--seed", run.seed, "run only this seed (a replay)");
        c->add_option("--seeds", run.seeds, "how many seeds (default: the file's seeds.count)");
        c->add_option("--first", run.first, "the first seed (default: the file's seeds.first)");
        c->add_option("--jobs,-j", run.jobs, "worker processes")->check(CLI::Range(1, 256));
        c->add_option("--set", run.overrides, "override a key of the file: KEY=VALUE");
        c->add_option("--check-determinism", run.determinism_pct,
                      "re-run this percentage of the seeds and compare trace hashes")
            ->check(CLI::Range(0.0, 100.0));
        c->add_flag("--metrics", run.print_metrics, "print every metric of every seed");
        c->add_flag("--events", run.print_events, "print every seed's timeline of events");
        c->add_flag("--in-process", run.in_process,
                    "run the seeds in this process, one after another (for gdb or perf)");
        c->add_option("--abort-seed", run.abort_seed,
                      "make this seed's worker abort (to see the sweep's isolation at work)");
    };

    CLI::App* run_cmd = app.add_subcommand("run", "run a scenario file's seeds");
    run_cmd->add_option("file", file, "scenario file")->required();
    add_run_options(run_cmd);

    std::vector<std::string> check_files;
    std::vector<std::string> check_sets;
    CLI::App* check_cmd = app.add_subcommand("check", "check scenario files; run nothing");
    check_cmd->add_option("files", check_files, "scenario files")->required();
    check_cmd->add_option("--set", check_sets, "override a key of the file: KEY=VALUE");

    std::string what;
    CLI::App* list_cmd =
        app.add_subcommand("list", "what exists: scenarios, attackers, faults, checkers, metrics");
    list_cmd->add_option("what", what)
        ->required()
        ->check(CLI::IsMember({"scenarios", "attackers", "faults", "checkers", "metrics"}));

    // Before scenario files: --scenario NAME runs sim/scenarios/NAME.toml; --seed alone runs
    // the durability workload.
    std::string scenario;
    SimOptions o;
    app.add_option("--scenario", scenario, "run sim/scenarios/NAME.toml (as `run`)");
    app.add_option("--seed", run.seed, "first seed (durability workload, or with --scenario)");
    app.add_option("--seeds", run.seeds, "how many consecutive seeds");
    app.add_option("--jobs,-j", run.jobs, "worker processes (with --scenario)");
    app.add_option("--set", run.overrides, "override a key of the file (with --scenario)");
    app.add_option("--clients", o.clients, "durability workload: simulated clients");
    app.add_option("--rooms", o.rooms, "durability workload: rooms");
    app.add_option("--messages", o.messages_per_client, "durability workload: messages each");
    app.add_option("--transient", o.commit_transient_p, "chance a commit fails transiently");
    app.add_option("--fail", o.commit_fail_p, "chance a commit fails permanently");
    app.add_option("--slow", o.commit_slow_p, "chance a commit is 20x slower");
    app.add_option("--crash", o.crash_p, "chance per commit that the server crashes meanwhile");
    app.add_option("--crashes-max", o.crashes_max, "most crashes per run");
    app.add_option("--outage-from", o.outage_from_ms, "storage outage start (simulated ms)");
    app.add_option("--outage-to", o.outage_to_ms, "storage outage end (simulated ms)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? exit_ok : exit_usage;
    }

    if (*run_cmd) return run_file(file, run);
    if (*check_cmd) return check_files_cmd(check_files, check_sets);
    if (*list_cmd) return list(what);
    if (!scenario.empty()) {
        std::string path = scenarios_dir() + "/" + scenario + ".toml";
        if (!std::filesystem::exists(path)) {
            std::fprintf(stderr, "no scenario named %s (warren-sim list scenarios)\n",
                         scenario.c_str());
            return exit_usage;
        }
        if (run.seed && run.seeds) {
            run.first = run.seed;
            run.seed.reset();
        }
        return run_file(path, run);
    }
    return run_durability(o, run.seed.value_or(1), run.seeds.value_or(1));
}
