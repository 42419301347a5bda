// The sweep: runs a scenario file's seeds, each in its own worker process (an abort, a signal
// or a hang is that seed's failure, and the sweep goes on), judges each seed (safety
// checkers, expectations, liveness) and the sweep (`sometimes` probes, configured faults that
// never fired, determinism), prints the exact replay command of every failing seed and
// returns the exit code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace warren::sim {

// warren-sim's exit codes (docs/SIMULATION.md). When several apply, the first in this list
// that applies wins: safety, crash, timeout, nondeterminism, liveness, expectation, coverage.
enum ExitCode : int {
    exit_ok = 0,
    exit_safety = 1,          // a safety checker found a violation
    exit_usage = 2,           // bad command line or scenario file; nothing ran
    exit_expectation = 3,     // an [[expect]] failed
    exit_liveness = 4,        // [liveness] did not hold after heal_at
    exit_nondeterminism = 5,  // a re-run seed gave another trace hash
    exit_crash = 6,           // a seed's worker aborted or died of a signal
    exit_timeout = 7,         // a seed ran past timeout.wall
    exit_coverage = 8,        // a `sometimes` probe or a configured fault never fired
};

struct RunOptions {
    std::optional<uint64_t> seed;   // only this seed
    std::optional<uint64_t> first;  // else the file's
    std::optional<uint64_t> seeds;  // else the file's
    unsigned jobs = 1;
    std::vector<std::string> overrides;
    double determinism_pct = 0;
    bool print_metrics = false;
    bool print_events = false;
    bool in_process = false;  // no workers (for gdb or perf): an abort ends the sweep
    std::optional<uint64_t> abort_seed;
};

int run_file(const std::string& path, const RunOptions& options);
int check_files_cmd(const std::vector<std::string>& files, const std::vector<std::string>& sets);
int list(const std::string& what);
// Where the shipped scenario files are: $WARREN_SIM_SCENARIOS, else the source tree's.
std::string scenarios_dir();

}  // namespace warren::sim
