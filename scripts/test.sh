#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: installs missing packages, builds
# (build/, the binaries in Release, a Debug tree with ASan + UBSan and coverage counters, and
# a TSan tree of the programs that run threads), runs every test with ctest (unit, property,
# simulation seeds, loopback end-to-end) in build/ and again under ASan + UBSan, the
# loopback end-to-end tests under TSan, prints line and branch coverage per folder
# (scripts/coverage.py; core/ must stay at 90 % of lines or more), builds the libFuzzer targets
# with clang (build-fuzz/) and runs each on its seed corpus for a short smoke, runs
# clang-tidy over core/ (scripts/tidy.sh), checks the wall-clock budgets and same-run ratios
# (bench/check_budgets.py) and the instruction budgets per layer (bench/instr_budget.py),
# and ends with one report of all of it.
# The trees other than build/ are only built to check and test, once per run: they compile
# core/ and store/ as unity builds (WARREN_UNITY, CMakeLists.txt), which costs less in all
# and more per touched file; build/, the working tree, does not.
# FUZZ_SECONDS (default 10: the slowest target, a whole IRC session per input, still runs
# about 4,000 to 8,000 inputs) sets the smoke length per fuzz target.
#
# `scripts/test.sh --fast` is the loop to run while working: it builds only build/ and runs
# the unit, property, simulation and loopback end-to-end tests there, then prints how long it
# took. The full command is CI's.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache hits across clones in other directories (CI clones afresh each time).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
# build/, the working tree: optimised as shipped (-O2), with line tables and function names
# (-g1: what stack traces, perf and callgrind's per-layer counts read) but without the types and
# variables of full debug information, which were a third of its compile time (877 -> 539
# CPU-seconds cold). Instruction counts are the same: -g does not change the code.
build_dev_tree() {
  # Tests and benchmarks on explicitly: scripts/run-server.sh configures the same tree without.
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DWARREN_BUILD_TESTS=ON \
    -DWARREN_BUILD_BENCH=ON >/dev/null
  cmake --build build -j "$(nproc)"
}
if [ "${1:-}" = --fast ]; then
  started=$(date +%s)
  bash scripts/deps.sh test
  build_dev_tree
  built=$(date +%s)
  status=0
  (cd build && ctest -L 'unit|property|sim|e2e' --output-on-failure -j "$(nproc)" --timeout 600) ||
    status=$?
  done_at=$(date +%s)
  echo "fast loop: build $((built - started)) s, tests $((done_at - built)) s," \
    "$((done_at - started)) s in all (the full suite is scripts/test.sh without --fast)"
  exit "$status"
fi
suite_start=$(date +%s)
bash scripts/deps.sh test
jobs=$(nproc)
fuzz_report=""
timings=""
stage_name=""
stage() {  # starts a stage, recording how long the previous one took
  local now
  now=$(date +%s)
  [ -n "$stage_name" ] && timings+="$stage_name $((now - stage_start)) s; "
  stage_name=$1
  stage_start=$now
  [ -n "$1" ] && echo "== $1"
  return 0
}
export WARREN_REQUIRE_IRC_CLIENTS=1  # the real IRC client tests must run, not skip

stage build
build_dev_tree
# clang-tidy needs only build/'s compile commands and sources: it starts now, at the lowest
# priority, and takes the cycles the stages until its own leave idle (the loopback tests'
# waits, the builds' links and single-file tails); its stage waits for what is left.
tidy_log=$(mktemp)
nice -n 19 bash scripts/tidy.sh >"$tidy_log" 2>&1 &
tidy_pid=$!
# A stage that fails ends the run: what still runs in the background (clang-tidy, the
# instruction counts) is stopped with it.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

# The binaries that `cmake --install` ships; warren-sim, QA's tool, runs from build/.
stage "Release build (the binaries, warnings as errors)"
cmake -S . -B build-Release -G Ninja -DCMAKE_BUILD_TYPE=Release -DWARREN_BUILD_TESTS=OFF \
    -DWARREN_BUILD_BENCH=OFF -DWARREN_UNITY=ON >/dev/null
cmake --build build-Release -j "$jobs" --target warrend warren
# The simulator's chaos points (core/chaos.h) must not be in what ships.
if nm -C build-Release/bin/warrend | grep -q 'chaos_detail'; then
    echo "build-Release/bin/warrend has the core's chaos points compiled in" >&2
    exit 1
fi

# The Debug build (assertions on, warnings as errors) is built with AddressSanitizer and
# UndefinedBehaviorSanitizer, at -O1 so that the suite stays quick, and with gcov counters, so
# that its run of the suite below also gives the coverage report. -g1 (line tables, no types or
# variables) is all the sanitizers' stack traces need, at a fifth less compile time than -g.
stage "Debug build with ASan + UBSan + coverage"
# The loopback tests are build/'s, run against this tree's binaries (WARREN_E2E_FROM,
# tests/CMakeLists.txt): the programs under the sanitizers are warrend and warren.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" \
    -DWARREN_SANITIZE=address,undefined -DWARREN_COVERAGE=ON -DWARREN_BUILD_BENCH=OFF \
    -DWARREN_UNITY=ON -DWARREN_E2E_FROM="$PWD/build/tests" >/dev/null
cmake --build build-asan -j "$jobs"

# ThreadSanitizer needs a tree of its own; only warrend and warren run threads (the driver's
# hashing and storage workers), so only they are built, and build/'s loopback tests run them.
stage "TSan build (warrend and warren)"
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" \
    -DWARREN_SANITIZE=thread -DWARREN_BUILD_BENCH=OFF -DWARREN_UNITY=ON \
    -DWARREN_E2E_FROM="$PWD/build/tests" >/dev/null
cmake --build build-tsan -j "$jobs" --target warrend warren

stage tests
ctest_log=$(mktemp)
(cd build && ctest --output-on-failure -j "$jobs" --timeout 600) | tee "$ctest_log"
summary=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$ctest_log" | tail -1)
failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$summary")
total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$summary")
rm -f "$ctest_log"

stage "tests under ASan + UBSan"
asan_log=$(mktemp)
find build-asan -name '*.gcda' -delete  # counts from test discovery at build time
# The durability sweep runs its 1,000 seeds in build/; under ASan + coverage (about 20x
# slower) 100 of them (tests/CMakeLists.txt) keep it well inside the timeout on 2 cores.
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j "$jobs" --timeout 900) | tee "$asan_log"
asan_summary=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$asan_log" | tail -1)
rm -f "$asan_log"

stage "coverage (the ASan + UBSan run)"
coverage_log=$(mktemp)
python3 scripts/coverage.py build-asan | tee "$coverage_log"

# The loopback tests under TSan leave a core idle about half of the time (44 CPU-seconds in
# 35 s): the instruction counts (callgrind, mostly one process), which no timing affects, run
# beside them: 42 s for the three instead of 66. (Coverage, which takes both cores, did not
# fit: beside them it took 37 s, alone 20.) The wall-clock budgets run alone, at the end.
stage "loopback tests under TSan, beside the instruction counts"
instr_ratio_log=$(mktemp)
instr_log=$(mktemp)
side_log=$(mktemp)
(
  set -e
  s=$(date +%s)
  python3 bench/check_budgets.py build/bin/warren-bench-core bench/budgets --part=instructions \
      >"$instr_ratio_log"
  r=$(date +%s)
  python3 bench/instr_budget.py build/bin bench/instr-baseline.json >"$instr_log"
  echo "beside them: instruction ratios $((r - s)) s, instruction budgets (callgrind, per" \
    "layer and per request kind) $(( $(date +%s) - r )) s"
) >"$side_log" 2>&1 &
side_pid=$!
# TSan reports land in files (warrend runs as a child of the tests, so its stderr is not the
# test's); any report fails the stage.
tsan_reports=$(mktemp -d)
tsan_log=$(mktemp)
tsan_status=0
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$tsan_reports/tsan" \
    ctest -L e2e --output-on-failure -j "$jobs" --timeout 900) | tee "$tsan_log" ||
    tsan_status=$?
side_status=0
wait "$side_pid" || side_status=$?
cat "$instr_ratio_log" "$instr_log" "$side_log"
if compgen -G "$tsan_reports/tsan*" >/dev/null; then
  cat "$tsan_reports"/tsan*
  echo "ThreadSanitizer reported the above"
  exit 1
fi
[ "$tsan_status" = 0 ] || exit "$tsan_status"
[ "$side_status" = 0 ] || { echo "the instruction counts failed (above)"; exit 1; }
tsan_summary=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$tsan_log" | tail -1)
rm -rf "$tsan_reports" "$tsan_log" "$side_log"

# Before the fuzz smoke, whose slots count the shell's running jobs.
stage "clang-tidy (started after build/, at the lowest priority)"
tidy_status=0
wait "$tidy_pid" || tidy_status=$?
cat "$tidy_log"
rm -f "$tidy_log"
[ "$tidy_status" = 0 ] || exit 1

stage "fuzz smoke"
# -g1: line tables for the stack trace of a finding, without the cost of full debug info.
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DWARREN_BUILD_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DWARREN_UNITY=ON >/dev/null
cmake --build build-fuzz -j "$jobs"
# Each target runs on one core: as many run at once as there are cores.
fuzz_dir=$(mktemp -d)
fuzz_one() {  # target corpus: runs one smoke, leaving its log and exit status in $fuzz_dir
  local work="$fuzz_dir/$1.work"
  mkdir -p "$work"
  local status=0
  ./build-fuzz/bin/fuzz_"$1" "$work" "$2" -max_total_time="${FUZZ_SECONDS:-10}" \
    -max_len=4096 -artifact_prefix="$work/" >"$fuzz_dir/$1.log" 2>&1 || status=$?
  echo "$status" >"$fuzz_dir/$1.rc"
}
fuzz_targets=(frame_decoder:frame core_session:core request_decode:request admin_http:admin
  config_toml:config irc_session:irc)
for pair in "${fuzz_targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "${pair%%:*}" "fuzz/corpus/${pair##*:}" &
done
wait
for pair in "${fuzz_targets[@]}"; do
  target=${pair%%:*}
  log="$fuzz_dir/$target.log"
  if [ "$(cat "$fuzz_dir/$target.rc")" != 0 ]; then
    tail -n 60 "$log"
    work="$fuzz_dir/$target.work"
    echo "fuzz finding in $target; reproducer: $(ls "$work"/crash-* "$work"/leak-* \
      "$work"/oom-* "$work"/timeout-* 2>/dev/null | head -1)"
    exit 1
  fi
  echo "fuzz_$target: $(grep -E '^Done' "$log")"
  fuzz_report+="$target $(grep -E '^Done' "$log" | sed -E 's/Done ([0-9]+) runs.*/\1/') runs; "
done
rm -rf "$fuzz_dir"

stage "wall-clock budgets and same-run ratios"
budget_log=$(mktemp)
python3 bench/check_budgets.py build/bin/warren-bench-core bench/budgets --part=wall |
    tee "$budget_log"
python3 bench/check_budgets.py build/bin/warren-bench-commit bench/budgets-commit --part=wall \
    --benchmark_filter=sync:0
# The simulator's speed: simulated seconds and seeds per CPU second, each above its floor.
python3 bench/sim_speed.py build/bin/warren-sim | tee -a "$budget_log"

stage ""

echo
echo "== report"
echo "tests:                 $((total - failed)) passed, $failed failed (RelWithDebInfo)"
echo "tests, ASan + UBSan:   ${asan_summary:-not run}"
echo "loopback tests, TSan:  ${tsan_summary:-not run}, no reports"
echo "fuzz smoke:            ${fuzz_report:-none}(${FUZZ_SECONDS:-10} s each)"
echo "clang-tidy over core/: clean"
echo "coverage (lines, branches):"
grep -E "^coverage " "$coverage_log" | sed 's/^coverage /  /'
echo "wall-clock budgets:    within bounds; same-run ratios:"
sed -n '/^same-run ratio/,/^budgets:/p' "$budget_log" | grep -v "^budgets:" | sed 's/^/  /'
grep -E "^sim speed" "$budget_log" | sed 's/^/  /'
echo "instruction ratios:"
sed -n '/^instruction ratio/,/^budgets:/p' "$instr_ratio_log" | grep -v "^budgets:" |
    sed 's/^/  /'
echo "instruction budgets:"
grep -E "^(figure|framing|validation|security|chat|transactions|monitoring|encoding|facade|core total|security \+|core memory|store)" "$instr_log" | sed 's/^/  /'
echo "stage times:           $timings"
echo "total:                 $(( $(date +%s) - suite_start )) s"
rm -f "$instr_log" "$coverage_log" "$budget_log" "$instr_ratio_log"
