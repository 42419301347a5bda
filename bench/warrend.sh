# Sourced by the loopback benchmarks: `start_warrend WARREND PORT [ARGS...]` runs a fresh
# warrend on 127.0.0.1:PORT with bench/load.toml and a data directory of its own (in $data),
# waits until it listens and sets $pid; `stop_warrend` stops it by that PID and removes the
# directory (also on exit).
pid=
data=
stop_warrend() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=
  [ -z "$data" ] || rm -rf "$data"
  data=
}
start_warrend() {
  local warrend=$1 port=$2
  shift 2
  data=$(mktemp -d)
  "$warrend" --listen "127.0.0.1:$port" --admin-listen off --data-dir "$data" \
    --config bench/load.toml --log-level warn "$@" >"$data/log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "warrend did not listen on port $port; see $data/log" >&2
  return 1
}
trap stop_warrend EXIT
