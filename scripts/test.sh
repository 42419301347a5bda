#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: installs missing packages, builds
# (build/, the binaries in Release, and a Debug tree with ASan + UBSan), runs every test with
# ctest (unit, property, simulation seeds, loopback end-to-end) in build/ and again under the
# sanitizers, builds the libFuzzer targets with clang (build-fuzz/) and runs each on its
# seed corpus for a short smoke, runs clang-tidy over core/ (scripts/tidy.sh), then checks
# the benchmark budgets and the instruction budgets per layer (bench/instr_budget.py).
# FUZZ_SECONDS (default 20) sets the smoke length per fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
jobs=$(nproc)
fuzz_report=""
# ccache hits across clones in other directories (CI clones afresh each time).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1

echo "== build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"

echo "== Release build (the binaries, warnings as errors)"
cmake -S . -B build-Release -G Ninja -DCMAKE_BUILD_TYPE=Release -DWARREN_BUILD_TESTS=OFF \
    -DWARREN_BUILD_BENCH=OFF >/dev/null
cmake --build build-Release -j "$jobs"

# The Debug build (assertions on, warnings as errors) is built with AddressSanitizer and
# UndefinedBehaviorSanitizer, at -O1 so that the suite stays quick, and runs the suite below.
echo "== Debug build with ASan + UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
    -DWARREN_SANITIZE=address,undefined -DWARREN_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs"

echo "== tests"
ctest_log=$(mktemp)
(cd build && ctest --output-on-failure -j "$jobs" --timeout 600) | tee "$ctest_log"
summary=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$ctest_log" | tail -1)
failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$summary")
total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$summary")
rm -f "$ctest_log"

echo "== tests under ASan + UBSan"
asan_log=$(mktemp)
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j "$jobs" --timeout 900) | tee "$asan_log"
asan_summary=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$asan_log" | tail -1)
rm -f "$asan_log"

echo "== fuzz smoke"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DWARREN_BUILD_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$jobs"
for pair in frame_decoder:frame core_session:core request_decode:request; do
  target=${pair%%:*}
  corpus=fuzz/corpus/${pair##*:}
  work=$(mktemp -d)
  log=$(mktemp)
  if ! ./build-fuzz/bin/fuzz_$target "$work" "$corpus" -max_total_time="${FUZZ_SECONDS:-20}" \
      -max_len=4096 -artifact_prefix="$work/" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz finding in $target; reproducer: $(ls "$work"/crash-* "$work"/leak-* "$work"/oom-* "$work"/timeout-* 2>/dev/null | head -1)"
    exit 1
  fi
  echo "fuzz_$target: $(grep -E '^Done' "$log")"
  fuzz_report+="$target $(grep -E '^Done' "$log" | sed -E 's/Done ([0-9]+) runs.*/\1/') runs; "
  rm -rf "$work" "$log"
done

echo "== clang-tidy"
bash scripts/tidy.sh

echo "== benchmark budgets"
python3 bench/check_budgets.py build/bin/warren-bench-core bench/budgets
python3 bench/check_budgets.py build/bin/warren-bench-commit bench/budgets-commit \
    --benchmark_filter=sync:0

echo "== instruction budgets (callgrind, per layer and per request kind)"
instr_log=$(mktemp)
python3 bench/instr_budget.py build/bin bench/instr-baseline.json | tee "$instr_log"

echo
echo "== report"
echo "tests:                 $((total - failed)) passed, $failed failed (RelWithDebInfo)"
echo "tests, ASan + UBSan:   ${asan_summary:-not run}"
echo "fuzz smoke:            ${fuzz_report:-none}(${FUZZ_SECONDS:-20} s each)"
echo "clang-tidy over core/: clean"
echo "wall-clock budgets:    within bounds"
echo "instruction budgets:"
grep -E "^(figure|framing|validation|security|chat|transactions|monitoring|encoding|facade|core total|security \+|store)" "$instr_log" | sed 's/^/  /'
rm -f "$instr_log"
