#!/usr/bin/env bash
# End-to-end comparison: wsengine's bench-server (on its io_uring driver, on its tokio
# driver as wsengine-tokio, and on the first, tokio-uring, driver as wsengine-tokio-uring),
# a tokio-tungstenite echo server, a fastwebsockets echo server, and a raw TCP echo server
# (no framing: the ceiling), each loaded by `load` in the same session, alternating. With
# UWS_ECHO=/path/to/EchoServer (uWebSockets' example, built by hand outside this tree; it
# listens on port 9001) uWebSockets joins the table. Servers run on CPU 0, load on CPU 1
# (taskset). Prints messages/s, MB/s, p50/p99 latency, the server's CPU time per message
# and its syscalls per message (perf stat on the server during the measured window), with
# ratios to wsengine and to raw TCP (`load compare` over the saved runs: rounds' histograms
# merged, their range, "within noise" where rounds overlap; and a report page with the
# plots). The axum rows are one axum route three ways (benches/src/bin/axum_echo.rs):
# axum's own WebSocketUpgrade (axum-tungstenite), wsengine's extractor with its Send handle
# (axum-wsengine), and wsengine's Upgrader with a !Send handler (axum-wsengine-local).
# wsengine-wss is bench-server on io_uring over TLS
# (a throw-away certificate; load with --insecure): its "vs wsengine" column is wss/ws.
# The server's syscalls come from `load --server-syscalls` (perf stat on the server).
#
#   benches/compare.sh                 # 5 s per run after 1 s warm-up (~8 minutes)
#   DURATION=3 ROUNDS=1 benches/compare.sh
#   SERVERS="wsengine wsengine-wss" SCENARIOS_ONLY="1 3" benches/compare.sh   # a subset
#   WSENGINE_BEFORE=/path/to/old/bench-server SERVERS="wsengine wsengine-before raw-tcp" \
#     benches/compare.sh    # a before/after table from one run (io_uring, same flags)
#
# Everything stays on 127.0.0.1; every server is stopped by PID.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
ROUNDS="${ROUNDS:-2}"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
OUT="$(mktemp -d /tmp/wsengine-compare.XXXXXX)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

cargo build --release -q -p bench-server -p load -p wsengine-benches --bins

if [ -n "${SERVERS:-}" ]; then
  read -r -a SERVERS <<<"$SERVERS"
else
  SERVERS=(wsengine wsengine-wss wsengine-tokio wsengine-tokio-uring tokio-tungstenite fastwebsockets raw-tcp axum-wsengine axum-wsengine-local axum-tungstenite)
  [ -n "${UWS_ECHO:-}" ] && SERVERS+=(uwebsockets)
  [ -n "${WSENGINE_BEFORE:-}" ] && SERVERS+=(wsengine-before)
fi
SCENARIOS=(
  "--connections 100 --size 20 --pipeline 1"
  "--connections 100 --size 20 --pipeline 8"
  "--connections 200 --size 512 --pipeline 1"
  "--connections 10 --size 16384 --pipeline 1 --binary"
  "--connections 10 --size 16384 --pipeline 4 --binary"
)
PERF=1
perf stat -e syscalls:sys_enter_io_uring_enter -- true >/dev/null 2>&1 || PERF=0

start_server() { # name -> sets SERVER_PID, SERVER_URL
  local cmd
  case "$1" in
    wsengine) cmd=("$BIN/bench-server" --addr 127.0.0.1:0 --workers 1 --driver uring) ;;
    wsengine-wss) cmd=("$BIN/bench-server" --addr 127.0.0.1:0 --workers 1 --driver uring --tls-self-signed) ;;
    wsengine-tokio) cmd=("$BIN/bench-server" --addr 127.0.0.1:0 --workers 1 --driver tokio) ;;
    wsengine-tokio-uring) cmd=("$BIN/bench-server" --addr 127.0.0.1:0 --workers 1 --driver tokio-uring) ;;
    wsengine-before) cmd=("${WSENGINE_BEFORE:?set WSENGINE_BEFORE to another build of bench-server}" --addr 127.0.0.1:0 --workers 1 --driver uring) ;;
    uwebsockets) cmd=("$UWS_ECHO") ;;
    tokio-tungstenite) cmd=("$BIN/tungstenite_echo" 127.0.0.1:0) ;;
    fastwebsockets) cmd=("$BIN/fastwebsockets_echo" 127.0.0.1:0) ;;
    raw-tcp) cmd=("$BIN/tcp_echo" 127.0.0.1:0) ;;
    axum-wsengine) cmd=("$BIN/axum_echo" 127.0.0.1:0 wsengine) ;;
    axum-wsengine-local) cmd=("$BIN/axum_echo" 127.0.0.1:0 wsengine-local) ;;
    axum-tungstenite) cmd=("$BIN/axum_echo" 127.0.0.1:0 tungstenite) ;;
  esac
  taskset -c 0 "${cmd[@]}" >"$OUT/server.out" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  if [ "$1" = uwebsockets ]; then
    sleep 0.5
    SERVER_URL="ws://127.0.0.1:9001"
    return
  fi
  for _ in $(seq 100); do grep -q '^listening on ' "$OUT/server.out" && break; sleep 0.05; done
  SERVER_URL="$(sed -n 's/^listening on //p' "$OUT/server.out")"
}

for round in $(seq "$ROUNDS"); do
  for i in "${!SCENARIOS[@]}"; do
    if [ -n "${SCENARIOS_ONLY:-}" ] && ! [[ " $SCENARIOS_ONLY " == *" $i "* ]]; then continue; fi
    label="$(sed -e 's/--connections /C=/' -e 's/ --size / S=/' -e 's/ --pipeline / K=/' -e 's/ --binary/ binary/' <<<"${SCENARIOS[$i]}")"
    for j in "${!SERVERS[@]}"; do
      server="${SERVERS[$j]}"
      start_server "$server"
      extra=()
      [ "$server" = raw-tcp ] && extra=(--raw)
      [ "$server" = wsengine-wss ] && extra=(--insecure)
      # perf stat on the server over the measured window: its syscalls per message.
      [ "$PERF" = 1 ] && extra+=(--server-syscalls)
      # Saved runs, named so that a directory listing is round, scenario, server order.
      dir="$OUT/runs/r$round-s$i-$(printf %02d "$j")-$server"
      # shellcheck disable=SC2086
      taskset -c 1 "$BIN/load" --url "$SERVER_URL/" "${extra[@]}" ${SCENARIOS[$i]} --threads 1 \
          --duration "$DURATION" --warmup "$WARMUP" --server-pid "$SERVER_PID" --json \
          --out "$dir" --label "$server" --group "$label" >/dev/null 2>"$OUT/run.err" \
        || echo "run failed: $server ${SCENARIOS[$i]}: $(cat "$OUT/run.err")" >&2
      kill -TERM "$SERVER_PID" 2>/dev/null || true
      wait "$SERVER_PID" 2>/dev/null || true
      echo "round $round: ${SCENARIOS[$i]} -> $server done" >&2
    done
  done
done

# Rounds merged (histograms, not averaged percentiles), with their range and whether a
# ratio is within the noise of the rounds; the page has the plots.
baselines=()
for b in wsengine raw-tcp; do
  [[ " ${SERVERS[*]} " == *" $b "* ]] && baselines+=(--baseline "$b")
done
"$BIN/load" compare "$OUT/runs" "${baselines[@]}" --html "$OUT/report.html"
echo "saved runs: $OUT/runs; report page: $OUT/report.html" >&2
