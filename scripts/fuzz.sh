#!/usr/bin/env bash
# A long fuzzing campaign for one libFuzzer target, with corpus merging:
#   scripts/fuzz.sh TARGET MINUTES        e.g. scripts/fuzz.sh request_decode 30
# TARGET is frame_decoder, core_session, request_decode, admin_http, config_toml or irc_session. Builds build-fuzz/ (clang, ASan,
# UBSan) if needed, fuzzes with one job per core for MINUTES, starting from the seed corpus
# (fuzz/corpus/NAME) plus what earlier campaigns kept (fuzz/work/TARGET/corpus, not in git),
# then merges everything into a minimal corpus that covers the same features and keeps that
# for the next campaign. A crash, leak, timeout or OOM leaves its reproducer in
# fuzz/work/TARGET/ and the script exits 1; replay it with build-fuzz/bin/fuzz_TARGET FILE.
# To grow the seed corpus in git, copy chosen files from the merged corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET MINUTES}
minutes=${2:?usage: scripts/fuzz.sh TARGET MINUTES}
declare -A seeds=([frame_decoder]=frame [core_session]=core [request_decode]=request
                 [admin_http]=admin [config_toml]=config [irc_session]=irc)
seed_dir=fuzz/corpus/${seeds[$target]:?unknown target $target (frame_decoder, core_session, request_decode, admin_http, config_toml, irc_session)}
bash scripts/deps.sh test
if [ ! -x "build-fuzz/bin/fuzz_$target" ] || [ -n "$(find core sim fuzz netadapter app -newer "build-fuzz/bin/fuzz_$target" -name '*.[ch]*' | head -1)" ]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DWARREN_BUILD_FUZZ=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-fuzz -j "$(nproc)" --target "fuzz_$target"
fi
work=fuzz/work/$target
mkdir -p "$work/corpus" "$work/new"
echo "fuzzing $target for $minutes min from $(ls "$seed_dir" | wc -l) seeds and $(ls "$work/corpus" | wc -l) kept inputs"
status=0
"./build-fuzz/bin/fuzz_$target" "$work/new" "$work/corpus" "$seed_dir" \
    -max_total_time=$((minutes * 60)) -max_len=4096 -jobs="$(nproc)" -workers="$(nproc)" \
    -artifact_prefix="$work/" -print_final_stats=1 >"$work/log" 2>&1 || status=$?
tail -n 5 "$work/log"
merged=$(mktemp -d)
"./build-fuzz/bin/fuzz_$target" -merge=1 "$merged" "$work/corpus" "$work/new" "$seed_dir" \
    >"$work/merge.log" 2>&1
rm -rf "$work/corpus" "$work/new"
mv "$merged" "$work/corpus"
echo "merged corpus: $(ls "$work/corpus" | wc -l) inputs in $work/corpus"
if ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* >/dev/null 2>&1; then
  echo "findings: $(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null)"
  exit 1
fi
exit "$status"
