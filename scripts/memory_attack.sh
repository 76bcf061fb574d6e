#!/usr/bin/env bash
# The memory budget under attack: bench-server (default 1 GiB budget) against hostile
# connections (engine/examples/hostile_frames.rs), its RSS sampled every second, and a
# normal client (`load`, 10 connections, 20-byte echoes) measured before and during.
#
#   scripts/memory_attack.sh                 # 300 connections x 50 MiB of 60 MiB frames
#   MODE=fragments scripts/memory_attack.sh  # never-finished messages of 1-byte fragments
#   MODE=drip N=2000 scripts/memory_attack.sh  # one byte per second per connection
#   MODE=flood N=5000 scripts/memory_attack.sh # 1 KiB echoes to peers that never read
#   MODE=subscribers N=5000 scripts/memory_attack.sh  # bench-server --mode broadcast: N
#                                            # subscribers that never read, PUBLISHERS (1)
#                                            # connections flooding 1 KiB publishes (and
#                                            # reading what they get themselves); the
#                                            # normal client echoes on /echo
#   BUDGET=0 ...                             # bench-server without a budget (for comparison)
#   DRIVER=tokio ...                         # bench-server on another driver (default auto)
#   SERVER_BIN=/path/to/bench-server ...     # another build (a before/after comparison)
#   NORMAL_AFTER=1 NORMAL_SECS=3 ...         # when the normal client starts (seconds into
#                                            # the attack, default 5) and for how long (10)
#
# Everything on 127.0.0.1; the server on CPU 0, load and the attackers on CPU 1; every
# process started here is stopped by PID.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
MODE="${MODE:-frame}"
N="${N:-300}"
CLAIM="${CLAIM:-62914560}"   # 60 MiB, under the 64 MiB message limit
SENT="${SENT:-52428800}"     # 50 MiB of it
HOLD="${HOLD:-30}"
BUDGET="${BUDGET:-1024}"     # MiB; 0: no budget
PORT="${PORT:-9711}"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
cargo build --release -q -p bench-server -p load -p wsengine --bins --examples
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

budget_flag=(--memory-budget "$BUDGET")
[ "$BUDGET" = 0 ] && budget_flag=(--memory-budget $((1 << 40)))
server_mode=echo
path=/
if [ "$MODE" = subscribers ]; then server_mode=broadcast; path=/echo; fi
taskset -c 0 "${SERVER_BIN:-$BIN/bench-server}" --addr "127.0.0.1:$PORT" --workers 1 --mode "$server_mode" --driver "${DRIVER:-auto}" "${budget_flag[@]}" --stats-every 1 >/tmp/memory_attack.server 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
for _ in $(seq 100); do grep -q listening /tmp/memory_attack.server && break; sleep 0.1; done
rss() { awk '/^VmRSS:/ {print int($2/1024)}' "/proc/$SERVER/status"; }
normal() {
  taskset -c 1 timeout 60 "$BIN/load" --url "ws://127.0.0.1:$PORT$path" --connections 10 --size 20 \
    --duration "$1" --warmup 1 --threads 1 --json | python3 -c 'import json, sys
d = json.load(sys.stdin)
print("messages %d (%d/s)  p50 %d us  p99 %d us  max %d us  handshake p99 %d us  errors %d" % (d["messages"], d["messages_per_sec"], d["p50_us"], d["p99_us"], d["max_us"], d["connect_p99_us"], d["errors"]))'
}
echo "bench-server (budget ${BUDGET} MiB) RSS at start: $(rss) MiB"
echo "normal client, unloaded:   $(normal 5)"
if [ "$MODE" = subscribers ]; then
  taskset -c 1 "$BIN/examples/hostile_frames" "ws://127.0.0.1:$PORT/" "$N" 0 0 "$HOLD" listen >/tmp/memory_attack.hostile 2>&1 &
  LISTEN=$!
  PIDS+=("$LISTEN")
  for _ in $(seq 600); do
    open=$(grep '^stats:' /tmp/memory_attack.server | tail -1 | awk '{print $3}')
    [ "${open:-0}" -ge "$N" ] && break
    sleep 0.1
  done
  echo "$N subscribers connected; publishers start"
  taskset -c 1 "$BIN/examples/hostile_frames" "ws://127.0.0.1:$PORT/" "${PUBLISHERS:-1}" 0 $((1 << 40)) "$HOLD" publish >/tmp/memory_attack.publishers 2>&1 &
else
  taskset -c 1 "$BIN/examples/hostile_frames" "ws://127.0.0.1:$PORT/" "$N" "$CLAIM" "$SENT" "$HOLD" "$MODE" >/tmp/memory_attack.hostile 2>&1 &
fi
ATTACK=$!
PIDS+=("$ATTACK")
( sleep "${NORMAL_AFTER:-5}"; echo "normal client, under attack: $(normal "${NORMAL_SECS:-10}")" ) &
NORMAL=$!
PIDS+=("$NORMAL")
echo "second  RSS MiB  (the server's last stats line)"
for t in $(seq 1 "$HOLD"); do
  sleep 1
  kill -0 "$SERVER" 2>/dev/null || { echo "bench-server died"; exit 1; }
  echo "$t  $(rss)  ($(grep '^stats:' /tmp/memory_attack.server | tail -1 | cut -c8-))"
done
wait "$NORMAL" || true
wait "$ATTACK" || true
[ -n "${LISTEN:-}" ] && { wait "$LISTEN" || true; }
cat /tmp/memory_attack.hostile
[ "$MODE" = subscribers ] && cat /tmp/memory_attack.publishers
kill -TERM "$SERVER"; wait "$SERVER" || true
grep '^totals' /tmp/memory_attack.server
