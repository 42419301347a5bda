#!/usr/bin/env bash
# Sets everything up and runs the server: installs missing packages, configures and builds
# (build/), then runs warrend on 127.0.0.1:7070 with its SQLite database in ./data.
# Extra arguments go to warrend (e.g. --listen 0.0.0.0:7070, --config warren.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh run
# The flags of scripts/test.sh's build/ (-g1), so that switching between the two rebuilds
# nothing but the tests.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DWARREN_BUILD_TESTS=OFF \
      -DWARREN_BUILD_BENCH=OFF >/dev/null
cmake --build build --target warrend warren
exec ./build/bin/warrend --data-dir ./data "$@"
