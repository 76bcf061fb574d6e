#!/usr/bin/env bash
# End-to-end comparison: wsengine's bench-server (on its io_uring driver, on its tokio
# driver as wsengine-tokio, and on the first, tokio-uring, driver as wsengine-tokio-uring),
# a tokio-tungstenite echo server, a fastwebsockets echo server, and a raw TCP echo server
# (no framing: the ceiling), each loaded by `load` in the same session, alternating. With
# UWS_ECHO=/path/to/EchoServer (uWebSockets' example, built by hand outside this tree; it
# listens on port 9001) uWebSockets joins the table. Servers run on CPU 0, load on CPU 1
# (taskset). Prints messages/s, MB/s, p50/p99 latency, the server's CPU time per message
# and its syscalls per message (perf stat on the server during the measured window), with
# ratios to wsengine and to raw TCP. wsengine-wss is bench-server on io_uring over TLS
# (a throw-away certificate; load with --insecure): its "vs wsengine" column is wss/ws.
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
  SERVERS=(wsengine wsengine-wss wsengine-tokio wsengine-tokio-uring tokio-tungstenite fastwebsockets raw-tcp)
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
# The syscalls counted per message on the server.
SYSCALLS=(io_uring_enter epoll_wait epoll_pwait recvfrom sendto sendmsg writev write read)
EVENTS="$(printf 'syscalls:sys_enter_%s,' "${SYSCALLS[@]}")"
EVENTS="${EVENTS%,}"
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
    for server in "${SERVERS[@]}"; do
      start_server "$server"
      raw=()
      [ "$server" = raw-tcp ] && raw=(--raw)
      [ "$server" = wsengine-wss ] && raw=(--insecure)
      # shellcheck disable=SC2086
      taskset -c 1 "$BIN/load" --url "$SERVER_URL/" "${raw[@]}" ${SCENARIOS[$i]} --threads 1 \
          --duration "$DURATION" --warmup "$WARMUP" --server-pid "$SERVER_PID" --json \
          >"$OUT/run.json" 2>"$OUT/run.err" &
      LOAD_PID=$!
      : >"$OUT/perf.csv"
      if [ "$PERF" = 1 ]; then
        # The measured window only: after the warm-up, for the duration.
        sleep "$WARMUP"
        perf stat -x, -e "$EVENTS" -p "$SERVER_PID" -- sleep "$DURATION" 2>"$OUT/perf.csv" || true
      fi
      wait "$LOAD_PID" || true
      kill -TERM "$SERVER_PID" 2>/dev/null || true
      wait "$SERVER_PID" 2>/dev/null || true
      python3 - "$OUT/run.json" "$server" "$i" "$OUT/perf.csv" >>"$OUT/results.jsonl" <<'PY' || echo "run failed: $server ${SCENARIOS[$i]}: $(cat "$OUT/run.err")" >&2
import json, sys
d = json.load(open(sys.argv[1]))
d["server"], d["scenario"] = sys.argv[2], int(sys.argv[3])
calls = {}
for line in open(sys.argv[4]):
    p = line.strip().split(",")
    if len(p) > 3 and "sys_enter_" in p[2] and p[0].isdigit():
        calls[p[2].split("sys_enter_")[1]] = int(p[0])
d["syscalls"] = calls
print(json.dumps(d))
PY
      echo "round $round: ${SCENARIOS[$i]} -> $server done" >&2
    done
  done
done

python3 - "$OUT/results.jsonl" "${SCENARIOS[@]}" <<'PY'
import json, sys
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1])]
scenarios = sys.argv[2:]
servers = ["wsengine", "wsengine-before", "wsengine-wss", "wsengine-tokio", "wsengine-tokio-uring", "tokio-tungstenite", "fastwebsockets", "raw-tcp", "uwebsockets"]
by = defaultdict(list)
for r in rows:
    by[(r["scenario"], r["server"])].append(r)
def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None
def fmt(x, spec):
    return "-" if x is None else format(x, spec)
print("| scenario | server | msg/s | MB/s | p50 µs | p99 µs | server CPU µs/msg | msg/s vs wsengine | msg/s vs raw TCP | CPU/msg vs raw TCP | syscalls/msg | errors+mismatches |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
def syscalls(rs):
    total = {}
    msgs = sum(r["messages"] for r in rs if r.get("syscalls"))
    for r in rs:
        for k, v in (r.get("syscalls") or {}).items():
            total[k] = total.get(k, 0) + v
    if not msgs:
        return "-"
    return " ".join(f"{k} {v / msgs:.2f}" for k, v in sorted(total.items()) if v / msgs >= 0.005) or "0"
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
            calls=syscalls(rs),
        )
    ours, raw = figs["wsengine"], figs.get("raw-tcp", {})
    for s in servers:
        f = figs[s]
        if f["mps"] is None:
            continue
        ratio = lambda a, b: None if a is None or not b else a / b
        print(f"| {label} | {s} | {fmt(f['mps'], ',.0f')} | {fmt(f['mbs'], '.1f')} | {fmt(f['p50'], '.0f')} | {fmt(f['p99'], '.0f')} | "
              f"{fmt(f['cpu'], '.2f')} | {fmt(ratio(f['mps'], ours['mps']), '.2f')} | {fmt(ratio(f['mps'], raw.get('mps')), '.2f')} | "
              f"{fmt(ratio(f['cpu'], raw.get('cpu')), '.2f')} | {f['calls']} | {f['bad']} |")
PY
echo "raw results: $OUT/results.jsonl" >&2
