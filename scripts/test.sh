#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: installs missing packages, builds
# (build/, and the binaries in Debug and Release too), runs every test with ctest (unit, property, simulation seeds, loopback
# end-to-end), builds the libFuzzer targets with clang (build-fuzz/) and runs each on its
# seed corpus for a short smoke, runs clang-tidy over core/ (scripts/tidy.sh), then checks
# the benchmark budgets and the instruction budgets per layer (bench/instr_budget.py).
# FUZZ_SECONDS (default 20) sets the smoke length per fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
jobs=$(nproc)

echo "== build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"

echo "== other build types (the binaries, warnings as errors)"
for type in Debug Release; do
  cmake -S . -B "build-$type" -G Ninja -DCMAKE_BUILD_TYPE=$type -DWARREN_BUILD_TESTS=OFF \
      -DWARREN_BUILD_BENCH=OFF >/dev/null
  cmake --build "build-$type" -j "$jobs"
done

echo "== tests"
ctest_log=$(mktemp)
(cd build && ctest --output-on-failure -j "$jobs" --timeout 600) | tee "$ctest_log"
summary=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$ctest_log" | tail -1)
failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$summary")
total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$summary")
rm -f "$ctest_log"

echo "== fuzz smoke"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DWARREN_BUILD_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$jobs"
for pair in frame_decoder:frame core_session:core; do
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
  rm -rf "$work" "$log"
done

echo "== clang-tidy"
bash scripts/tidy.sh

echo "== benchmark budgets"
python3 bench/check_budgets.py build/bin/warren-bench-core bench/budgets
python3 bench/check_budgets.py build/bin/warren-bench-commit bench/budgets-commit \
    --benchmark_filter=sync:0

echo "== instruction budgets (callgrind, per layer and per request kind)"
python3 bench/instr_budget.py build/bin bench/instr-baseline.json
echo "fuzz smoke and benchmark budgets passed"
echo "tests: $((total - failed)) passed, $failed failed"
