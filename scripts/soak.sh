#!/usr/bin/env bash
# Soak: bench-server under `load` for a bounded time (default 600 s) with 1,000
# connections, mixed message sizes from 16 B to 64 KiB, 4 in flight per connection.
# Passes when load reports no errors and no mismatches and the server's RSS is flat
# after warm-up (the last third's peak within 10% of the middle third's peak).
#
#   scripts/soak.sh                      # 600 s
#   SOAK_SECONDS=60 scripts/soak.sh      # a shorter run
#
# The server is pinned to CPU 0 and load to CPU 1, both on 127.0.0.1; the server is
# stopped by PID at the end. RSS samples go to $SOAK_LOG (default /tmp/wsengine-soak.log).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
SECONDS_TOTAL="${SOAK_SECONDS:-600}"
LOG="${SOAK_LOG:-/tmp/wsengine-soak.log}"
PORT="${SOAK_PORT:-9801}"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
cargo build --release -q -p bench-server -p load
ulimit -n "$(ulimit -Hn)"

taskset -c 0 "$BIN/bench-server" --addr "127.0.0.1:$PORT" --workers 1 >/dev/null 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
sleep 1
json="$(mktemp)"
taskset -c 1 timeout $((SECONDS_TOTAL + 120)) "$BIN/load" --url "ws://127.0.0.1:$PORT/" \
  --connections 1000 --size 16 --max-size 65536 --binary --pipeline 4 --threads 1 \
  --warmup 5 --duration "$SECONDS_TOTAL" --json --server-pid "$SERVER" >"$json" &
LOAD=$!
: >"$LOG"
start=$(date +%s)
while kill -0 "$LOAD" 2>/dev/null; do
  echo "$(($(date +%s) - start)) $(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER/status")" >>"$LOG"
  sleep 10
done
status=0
wait "$LOAD" || status=$?
kill "$SERVER"
wait "$SERVER" 2>/dev/null || true
trap - EXIT
python3 - "$json" "$LOG" "$status" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
samples = [tuple(map(int, l.split())) for l in open(sys.argv[2]) if len(l.split()) == 2]
print({k: d.get(k) for k in ("messages", "messages_per_sec", "bytes_per_sec", "p50_us",
                             "p99_us", "p999_us", "max_us", "errors", "errors_by_kind",
                             "mismatches", "connected", "server_cpu_us_per_msg")})
rss = [r for _, r in samples]
third = max(len(rss) // 3, 1)
middle, last = max(rss[third:2 * third] or rss), max(rss[2 * third:] or rss)
print(f"server RSS KiB: start {rss[0]}, middle third peak {middle}, last third peak {last}, "
      f"{len(rss)} samples in {sys.argv[2]}")
ok = (int(sys.argv[3]) == 0 and d["errors"] == 0 and d["mismatches"] == 0
      and d["connected"] == d["connections"] and last <= middle * 1.10)
print("soak: 1 passed, 0 failed" if ok else "soak: 0 passed, 1 failed")
sys.exit(0 if ok else 1)
PY
