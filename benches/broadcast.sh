#!/usr/bin/env bash
# Broadcast: uWebSockets' own benchmark client (benchmarks/broadcast_test.c: N clients each
# send one 20-byte message and wait for all N messages, then repeat, so an iteration is N
# publishes and N^2 deliveries) against bench-server --mode broadcast and, when given,
# uWebSockets' server that subscribes every socket to one topic and publishes every
# message (app->publish).
#
#   UWS_BROADCAST_TEST=/path/to/broadcast_test [UWS_BROADCAST=/path/to/server] \
#     [CLIENTS="100 500"] [SECS=16] [ROUNDS=2] benches/broadcast.sh
#
# Both are built by hand outside this tree (see the README's Performance section); the
# uWS server takes its port as its only argument. One-worker servers run on CPU 0 and the
# client on CPU 1; `wsengine-2w` runs two workers (one per CPU) with the client unpinned,
# so it shares the cores: compare it by deliveries per server CPU-second. The server's CPU
# time is read from /proc over the measured window (the first 4-second report is skipped).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
CLIENT="${UWS_BROADCAST_TEST:?set UWS_BROADCAST_TEST to uWebSockets benchmarks/broadcast_test}"
CLIENTS="${CLIENTS:-100 500}"
SECS="${SECS:-16}"
ROUNDS="${ROUNDS:-2}"
PORT="${PORT:-9013}"
TMP="$(mktemp -d /tmp/wsengine-broadcast.XXXXXX)"
SERVERS=(wsengine wsengine-tokio wsengine-2w)
[ -n "${UWS_BROADCAST:-}" ] && SERVERS+=(uwebsockets)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

(cd "$REPO" && cargo build --release -q -p bench-server)

run() {
  local server="$1" n="$2" cmd pin_client=(taskset -c 1)
  case "$server" in
    wsengine) cmd=(taskset -c 0 "$BIN/bench-server" --mode broadcast --workers 1 --addr "127.0.0.1:$PORT") ;;
    wsengine-tokio) cmd=(taskset -c 0 "$BIN/bench-server" --mode broadcast --workers 1 --driver tokio --addr "127.0.0.1:$PORT") ;;
    wsengine-2w) cmd=("$BIN/bench-server" --mode broadcast --workers 2 --addr "127.0.0.1:$PORT"); pin_client=() ;;
    uwebsockets) cmd=(taskset -c 0 "$UWS_BROADCAST" "$PORT") ;;
  esac
  "${cmd[@]}" >"$TMP/server.out" 2>&1 &
  local spid=$!
  PIDS+=("$spid")
  for _ in $(seq 100); do grep -q listening "$TMP/server.out" && break; sleep 0.1; done
  "${pin_client[@]}" stdbuf -oL "$CLIENT" "$n" 127.0.0.1 "$PORT" 0 >"$TMP/client.out" 2>&1 &
  local cpid=$!
  PIDS+=("$cpid")
  sleep 6
  local t0 l0 t1
  t0="$(awk '{print $14 + $15}' "/proc/$spid/stat")"
  l0="$(grep -c Iterations "$TMP/client.out" || true)"
  sleep "$SECS"
  t1="$(awk '{print $14 + $15}' "/proc/$spid/stat")"
  kill "$cpid" "$spid" 2>/dev/null || true
  wait "$cpid" "$spid" 2>/dev/null || true
  python3 - "$TMP/client.out" "$n" "$SECS" "$t0" "$t1" "$l0" "$server" <<'PY'
import re, sys, os
out, n, secs, t0, t1, l0, name = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
its = [float(x) for x in re.findall(r"Iterations/second \(\d+ clients\): ([\d.]+)", open(out).read())][l0:]
it = sum(its) / max(1, len(its))
cpu = (t1 - t0) / os.sysconf("SC_CLK_TCK")
deliveries = it * n * n
per_cpu = deliveries * secs / cpu if cpu > 0 else 0
print(f"| {name} | {n} | {it:.2f} | {deliveries / 1e3:.0f}k | {cpu / secs:.2f} | {per_cpu / 1e3:.0f}k |")
PY
}

echo "| server | clients | iterations/s | deliveries/s | server CPUs | deliveries per server CPU-s |"
echo "|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  for n in $CLIENTS; do
    for server in "${SERVERS[@]}"; do
      run "$server" "$n"
    done
  done
done
