#!/usr/bin/env bash
# Durable ingest over loopback: SENDERS clients pipeline MESSAGES messages in all into one room
# (each up to WINDOW unacknowledged) on a fresh warrend, and warren-load reports acknowledged
# messages per second. Every acknowledgement follows its commit; the room has only the
# senders as members, so deliveries stay few and the figure is the write path's.
# Usage: bench/ingest.sh [WARREND] [SYNCHRONOUS ...]   (default build/bin/warrend, normal full)
# Env: SENDERS (2), MESSAGES (200000), WINDOW (1024), PORT (17370), RUNS (1).
# Prints one line per run: synchronous, acks/s, p50 and p99 acknowledgement latency.
set -euo pipefail
cd "$(dirname "$0")/.."
warrend=${1:-build/bin/warrend}
shift || true
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(normal full)
load=$(dirname "$warrend")/warren-load
[ -x "$load" ] || load=build/bin/warren-load
senders=${SENDERS:-2} messages=${MESSAGES:-200000} window=${WINDOW:-1024}
port=${PORT:-17370} runs=${RUNS:-1}
. bench/warrend.sh
for mode in "${modes[@]}"; do
  for ((run = 1; run <= runs; run++)); do
    start_warrend "$warrend" "$port" --synchronous "$mode"
    out=$(timeout 300 "$load" --server "127.0.0.1:$port" --clients "$senders" \
      --senders "$senders" --messages $((messages / senders)) --window "$window" --rate 0 \
      --room ingest --timeout 280 --json | tail -1)
    python3 -c '
import json, sys
r = json.loads(sys.argv[3])
print("ingest synchronous=%s senders=%s acked=%d acks/s=%.0f p50_ms=%.1f p99_ms=%.1f"
      % (sys.argv[1], sys.argv[2], r["acked"], r["acks_per_s"], r["p50_ms"], r["p99_ms"]))
' "$mode" "$senders" "$out"
    stop_warrend
  done
done
