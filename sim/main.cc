// warren-sim: QA's tool. Runs scenario files (sim/scenarios/*.toml, docs/SIMULATION.md) seed by
// seed against the real core and store, each seed in its own worker process, and exits with
// a code that says what failed (sim/runner.h). `--seed N` alone runs the durability sweep's
// file, sim/scenarios/durability.toml.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "sim/runner.h"

using namespace warren::sim;

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
    // sim/scenarios/durability.toml (the durability workload's successor).
    std::string scenario;
    app.add_option("--scenario", scenario, "run sim/scenarios/NAME.toml (as `run`)");
    app.add_option("--seed", run.seed,
                   "first seed (of --scenario, or alone: of sim/scenarios/durability.toml)");
    app.add_option("--seeds", run.seeds, "how many consecutive seeds");
    app.add_option("--jobs,-j", run.jobs, "worker processes");
    app.add_option("--set", run.overrides, "override a key of the file: KEY=VALUE");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? exit_ok : exit_usage;
    }

    if (*run_cmd) return run_file(file, run);
    if (*check_cmd) return check_files_cmd(check_files, check_sets);
    if (*list_cmd) return list(what);
    if (scenario.empty() && !run.seed) {
        std::fprintf(stderr, "%s", app.help().c_str());
        return exit_usage;
    }
    if (scenario.empty()) scenario = "durability";
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
