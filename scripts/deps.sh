#!/usr/bin/env bash
# Installs the Debian 12 packages Warren needs that are not installed yet (as root, via
# apt-get). `deps.sh run` installs what building and running the server needs; `deps.sh
# test` adds the test, fuzz and benchmark tools. Safe to run repeatedly: with nothing
# missing it touches nothing.
set -euo pipefail
build=(g++ cmake ninja-build pkg-config ccache libboost-dev libboost-system-dev libssl-dev
       libsodium-dev libsqlite3-dev libspdlog-dev libfmt-dev libsimdjson-dev nlohmann-json3-dev
       libtomlplusplus-dev libcli11-dev)
test=(libgtest-dev librapidcheck-dev libbenchmark-dev clang clang-tidy libclang-rt-14-dev python3 prometheus
      valgrind systemd chromium gcovr weechat-headless irssi tmux)
want=("${build[@]}")
[ "${1:-run}" = test ] && want+=("${test[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
