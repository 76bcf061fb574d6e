#!/usr/bin/env bash
# Server memory per idle WebSocket connection: RSS growth of each server while `load
# --idle` holds N connections open (from 127.0.0.x source addresses past 20,000), for
# bench-server on each of its drivers and the peer echo servers of benches/
# (tokio-tungstenite, fastwebsockets). A process may hold at most 20,000 descriptors
# here, so N stays below that.
#
#   scripts/idle_memory.sh            # N=15000
#   N=5000 scripts/idle_memory.sh
#
# Then permessage-deflate: bench-server's shared and dedicated modes with `load --deflate`,
# first negotiated and never used (N connections), then after one 2 KiB compressed echo
# each (`--idle-after-echo`; N_DEFLATE=2000 connections, since a dedicated connection then
# holds its streams: the compressor until 30 s unused, the decompressor for good), beside
# the same echo without deflate.
#
# Then TLS: bench-server on io_uring over wss:// (a throw-away certificate), after the
# handshake and after one echo. `TLS_ONLY=1` runs only those rows.
#
# Every server is started on 127.0.0.1, pinned to CPU 0, and stopped by PID.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
N="${N:-15000}"
N_DEFLATE="${N_DEFLATE:-2000}"
LOAD_EXTRA=()
HOLD="${HOLD:-6}"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
cargo build --release -q -p bench-server -p load -p wsengine-benches --bins
ulimit -n "$(ulimit -Hn)"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

measure() { # name port cmd...  (load's extra flags in LOAD_EXTRA, count in CONNS)
  local name="$1" port="$2" n="${CONNS:-$N}"
  shift 2
  taskset -c 0 "$@" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  sleep 0.5
  local before after json
  before="$(rss_kib "$pid")"
  json="$(mktemp)"
  taskset -c 1 timeout $((HOLD + 60)) "$BIN/load" --url "${SCHEME:-ws}://127.0.0.1:$port/" --idle \
    --connections "$n" --warmup 0 --duration "$HOLD" --threads 1 --json "${LOAD_EXTRA[@]}" >"$json" &
  local load=$!
  # Sample near the end of the hold, when every connection is open.
  sleep $((HOLD - 1))
  after="$(rss_kib "$pid")"
  wait "$load" || true
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  python3 - "$json" "$name" "$before" "$after" "$n" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
name, before, after, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
held = d.get("held", 0)
per = (after - before) * 1024 / max(held, 1)
print(f"{name:<40} {held:>6} held  RSS {before:>8} -> {after:>8} KiB  {per:>8.0f} B per connection")
if held != n:
    print(f"  only {held} of {n} connections were held: {d.get('errors_by_kind')}")
PY
  rm -f "$json"
}

echo "server memory per idle connection, $N connections held ${HOLD} s ($(date -u +%F), $(uname -r))"
bs=("$BIN/bench-server" --workers 1 --driver uring)
if [ -z "${TLS_ONLY:-}" ]; then
measure wsengine-uring 9701 "$BIN/bench-server" --addr 127.0.0.1:9701 --workers 1 --driver uring
measure wsengine-tokio 9704 "$BIN/bench-server" --addr 127.0.0.1:9704 --workers 1 --driver tokio
measure wsengine-tokio-uring 9705 "$BIN/bench-server" --addr 127.0.0.1:9705 --workers 1 --driver tokio-uring
measure tokio-tungstenite 9702 "$BIN/tungstenite_echo" 127.0.0.1:9702
measure fastwebsockets 9703 "$BIN/fastwebsockets_echo" 127.0.0.1:9703

LOAD_EXTRA=(--deflate)
measure "uring deflate shared, unused" 9706 "${bs[@]}" --addr 127.0.0.1:9706 --deflate shared
measure "uring deflate dedicated, unused" 9707 "${bs[@]}" --addr 127.0.0.1:9707 --deflate dedicated
CONNS="$N_DEFLATE"
LOAD_EXTRA=(--idle-after-echo --size 2048)
measure "uring no deflate, after an echo" 9708 "${bs[@]}" --addr 127.0.0.1:9708 --deflate off
LOAD_EXTRA=(--deflate --idle-after-echo --size 2048)
measure "uring deflate shared, after an echo" 9709 "${bs[@]}" --addr 127.0.0.1:9709 --deflate shared
measure "uring deflate dedicated, after an echo" 9710 "${bs[@]}" --addr 127.0.0.1:9710 --deflate dedicated
fi

SCHEME=wss
CONNS="$N"
LOAD_EXTRA=(--insecure)
measure "uring wss, after the handshake" 9711 "${bs[@]}" --addr 127.0.0.1:9711 --tls-self-signed
LOAD_EXTRA=(--insecure --idle-after-echo --size 2048)
measure "uring wss, after an echo" 9712 "${bs[@]}" --addr 127.0.0.1:9712 --tls-self-signed
SCHEME=ws
LOAD_EXTRA=(--idle-after-echo --size 2048)
measure "uring ws, after an echo (beside it)" 9713 "${bs[@]}" --addr 127.0.0.1:9713
