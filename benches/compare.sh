#!/usr/bin/env bash
# End-to-end comparison: wsengine's bench-server (on io_uring, and on its tokio driver as
# wsengine-tokio), a tokio-tungstenite echo server, a
# fastwebsockets echo server, and a raw TCP echo server (no framing: the ceiling), each
# loaded by `load` in the same session, alternating, twice. Servers run on CPU 0, load on
# CPU 1 (taskset). Prints a table of messages/s, MB/s, p50/p99 latency and the server's
# CPU time per message, with each figure's ratio to wsengine and to raw TCP.
#
#   benches/compare.sh                 # 5 s per run after 1 s warm-up (~5 minutes)
#   DURATION=2 ROUNDS=1 benches/compare.sh
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

SERVERS=(wsengine wsengine-tokio tokio-tungstenite fastwebsockets raw-tcp)
SCENARIOS=(
  "--connections 100 --size 20 --pipeline 1"
  "--connections 100 --size 20 --pipeline 8"
  "--connections 200 --size 20 --pipeline 1"
  "--connections 10 --size 16384 --pipeline 1 --binary"
  "--connections 10 --size 16384 --pipeline 4 --binary"
)

start_server() { # name -> sets SERVER_PID, SERVER_URL
  local cmd
  case "$1" in
    wsengine) cmd=("$BIN/bench-server" --addr 127.0.0.1:0 --workers 1 --driver uring) ;;
    wsengine-tokio) cmd=("$BIN/bench-server" --addr 127.0.0.1:0 --workers 1 --driver tokio) ;;
    tokio-tungstenite) cmd=("$BIN/tungstenite_echo" 127.0.0.1:0) ;;
    fastwebsockets) cmd=("$BIN/fastwebsockets_echo" 127.0.0.1:0) ;;
    raw-tcp) cmd=("$BIN/tcp_echo" 127.0.0.1:0) ;;
  esac
  taskset -c 0 "${cmd[@]}" >"$OUT/server.out" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 100); do grep -q '^listening on ' "$OUT/server.out" && break; sleep 0.05; done
  SERVER_URL="$(sed -n 's/^listening on //p' "$OUT/server.out")"
}

for round in $(seq "$ROUNDS"); do
  for i in "${!SCENARIOS[@]}"; do
    for server in "${SERVERS[@]}"; do
      start_server "$server"
      raw=()
      [ "$server" = raw-tcp ] && raw=(--raw)
      # shellcheck disable=SC2086
      if taskset -c 1 "$BIN/load" --url "$SERVER_URL/" "${raw[@]}" ${SCENARIOS[$i]} --threads 1 \
          --duration "$DURATION" --warmup "$WARMUP" --server-pid "$SERVER_PID" --json \
          >"$OUT/run.json" 2>"$OUT/run.err"; then :; fi
      kill -TERM "$SERVER_PID" 2>/dev/null || true
      wait "$SERVER_PID" 2>/dev/null || true
      python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["server"]=sys.argv[2]; d["scenario"]=int(sys.argv[3]); print(json.dumps(d))' \
        "$OUT/run.json" "$server" "$i" >>"$OUT/results.jsonl" || echo "run failed: $server ${SCENARIOS[$i]}: $(cat "$OUT/run.err")" >&2
      echo "round $round: ${SCENARIOS[$i]} -> $server done" >&2
    done
  done
done

python3 - "$OUT/results.jsonl" "${SCENARIOS[@]}" <<'PY'
import json, sys
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1])]
scenarios = sys.argv[2:]
servers = ["wsengine", "wsengine-tokio", "tokio-tungstenite", "fastwebsockets", "raw-tcp"]
by = defaultdict(list)
for r in rows:
    by[(r["scenario"], r["server"])].append(r)
def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None
def fmt(x, spec):
    return "-" if x is None else format(x, spec)
print("| scenario | server | msg/s | MB/s | p50 µs | p99 µs | server CPU µs/msg | msg/s vs wsengine | msg/s vs raw TCP | CPU/msg vs wsengine | errors+mismatches |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for i, sc in enumerate(scenarios):
    label = sc.replace("--connections ", "C=").replace(" --size ", " S=").replace(" --pipeline ", " K=").replace(" --binary", " binary")
    figs = {}
    for s in servers:
        rs = by.get((i, s), [])
        figs[s] = dict(
            mps=mean([r["messages_per_sec"] for r in rs]),
            mbs=mean([r["bytes_per_sec"] / 1e6 for r in rs]),
            p50=mean([r["p50_us"] for r in rs]),
            p99=mean([r["p99_us"] for r in rs]),
            cpu=mean([r.get("server_cpu_us_per_msg") for r in rs]),
            bad=sum(r["errors"] + r["mismatches"] for r in rs),
        )
    ours, raw = figs["wsengine"], figs["raw-tcp"]
    for s in servers:
        f = figs[s]
        ratio = lambda a, b: None if a is None or not b else a / b
        print(f"| {label} | {s} | {fmt(f['mps'], ',.0f')} | {fmt(f['mbs'], '.1f')} | {fmt(f['p50'], '.0f')} | {fmt(f['p99'], '.0f')} | "
              f"{fmt(f['cpu'], '.2f')} | {fmt(ratio(f['mps'], ours['mps']), '.2f')} | {fmt(ratio(f['mps'], raw['mps']), '.2f')} | "
              f"{fmt(ratio(f['cpu'], ours['cpu']), '.2f')} | {f['bad']} |")
PY
echo "raw results: $OUT/results.jsonl" >&2
