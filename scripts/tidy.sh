#!/usr/bin/env bash
# Runs clang-tidy with the project's checks (.clang-tidy) over every source file of core/,
# using build/compile_commands.json (configure the build first). Fails on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/compile_commands.json ] || { echo "configure build/ first (cmake -B build)"; exit 2; }
tidy=$(command -v run-clang-tidy-14 || command -v run-clang-tidy)
log=$(mktemp)
"$tidy" -p build -quiet -j "$(nproc)" "$PWD/core/" >"$log" 2>&1 || true
findings=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^/.*: (warning|error): ' | sort -u || true)
rm -f "$log"
if [ -n "$findings" ]; then
  echo "$findings"
  echo "clang-tidy: $(wc -l <<<"$findings") finding(s) in core/"
  exit 1
fi
echo "clang-tidy: core/ clean"
