#!/usr/bin/env bash
# The picture in the README: `load compare` of bench-server on its io_uring and its
# tokio driver (100 connections, 20-byte echoes, ROUNDS alternating rounds of DURATION
# seconds), its report page rendered by headless Chromium (Debian's package) into
# docs/load-report.png, cropped to the table and the latency-by-percentile chart and
# scaled down to stay small. The saved runs and the page stay in a temporary directory.
#
#   scripts/load_report.sh                  # 2 rounds of 3 s
#   ROUNDS=3 DURATION=5 scripts/load_report.sh
#
# Servers on CPU 0, load on CPU 1, all on 127.0.0.1; each server stopped by PID.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-3}"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
OUT="$(mktemp -d /tmp/wsengine-load-report.XXXXXX)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
command -v /usr/bin/chromium >/dev/null || { echo "needs /usr/bin/chromium (apt-get install chromium)" >&2; exit 1; }
cargo build --release -q -p bench-server -p load

urls=()
pids=()
for driver in uring tokio; do
  taskset -c 0 "$BIN/bench-server" --addr 127.0.0.1:0 --workers 1 --driver "$driver" >"$OUT/$driver.out" 2>&1 &
  PIDS+=("$!")
  pids+=(--server-pid "$!")
  for _ in $(seq 100); do grep -q '^listening on ' "$OUT/$driver.out" && break; sleep 0.05; done
  urls+=(--url "$(sed -n 's/^listening on //p' "$OUT/$driver.out")/")
done
taskset -c 1 "$BIN/load" compare --rounds "$ROUNDS" --label "wsengine io_uring" --label "wsengine tokio" \
  --out "$OUT/runs" --html "$OUT/report.html" "${pids[@]}" -- "${urls[@]}" \
  --connections 100 --size 20 --duration "$DURATION" --warmup 1 --threads 1
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
PIDS=()
# 1200 × 760 CSS pixels (the table and the first chart) at 0.6: 720 × 456 pixels.
/usr/bin/chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --force-device-scale-factor=0.6 --window-size=1200,760 \
  --screenshot="$REPO/docs/load-report.png" "file://$OUT/report.html" >/dev/null 2>&1
ls -l docs/load-report.png >&2
echo "page: $OUT/report.html; saved runs: $OUT/runs" >&2
