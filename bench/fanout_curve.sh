#!/usr/bin/env bash
# Cost linear in the work, end to end: 50 senders each pipelining M messages (no window: all
# of them at once) into a room of 50, through sockets and the store (SQLite, synchronous =
# normal), on a fresh warrend per M. Prints the server's CPU per acknowledged message for each
# M (from the first message to the last delivery, setup excluded) and the ratio of the
# largest M to the smallest; the goal is within 1.25x.
# Usage: bench/fanout_curve.sh [WARREND] [M ...]   (default build/bin/warrend, 100 200 400 800)
# Env: CLIENTS (50), SENDERS (50), PORT (17380), RUNS (1: the median of RUNS runs per M).
set -euo pipefail
cd "$(dirname "$0")/.."
warrend=${1:-build/bin/warrend}
shift || true
ms=("$@")
[ ${#ms[@]} -gt 0 ] || ms=(100 200 400 800)
load=$(dirname "$warrend")/warren-load
[ -x "$load" ] || load=build/bin/warren-load
clients=${CLIENTS:-50} senders=${SENDERS:-50} port=${PORT:-17380} runs=${RUNS:-1}
. bench/warrend.sh
results=()
for m in "${ms[@]}"; do
  per=()
  for ((run = 1; run <= runs; run++)); do
    start_warrend "$warrend" "$port"
    out=$(timeout 300 "$load" --server "127.0.0.1:$port" --clients "$clients" \
      --senders "$senders" --messages "$m" --window "$m" --rate 0 --room curve \
      --timeout 280 --pid "$pid" --json | tail -1)
    per+=("$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print("%.2f %d %d %.0f" % (r["server_cpu_s"] * 1e6 / max(1, r["acked"]), r["acked"],
                           r["deliveries"], r["deliveries_per_s"]))' "$out")")
    stop_warrend
  done
  line=$(printf '%s\n' "${per[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
  read -r us acked deliveries dps <<<"$line"
  echo "M=$m senders=$senders room=$clients acked=$acked deliveries=$deliveries deliveries/s=$dps server_cpu_us_per_ack=$us"
  results+=("$us")
done
python3 -c '
import sys
v = [float(x) for x in sys.argv[1:]]
print("ratio largest/smallest M: %.2f (goal <= 1.25)" % (v[-1] / v[0]))' "${results[@]}"
