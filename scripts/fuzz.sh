#!/usr/bin/env bash
# Fuzzing: replays every kept regression input, then runs each cargo-fuzz target for
# FUZZ_SECONDS (default 60). A crash fails; its input is kept under
# engine/fuzz/artifacts/TARGET/ to be added to engine/fuzz/regressions/TARGET/.
#
#   scripts/fuzz.sh                       # all targets, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh frame_decoder
#
# Needs the nightly toolchain (installed beside stable on these machines) and cargo-fuzz
# (installed from crates.io when missing).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO/engine/fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(frame_decoder message_roundtrip handshake close_frame mask deflate)

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
for target in "${TARGETS[@]}"; do
  echo "==> fuzz $target: regressions, then ${SECONDS_EACH} s"
  if [ -d "regressions/$target" ] && [ -n "$(ls -A "regressions/$target")" ]; then
    cargo +nightly fuzz run "$target" "regressions/$target"/* -- -runs=0
  fi
  mkdir -p "corpus/$target"
  log="$(mktemp)"
  if ! cargo +nightly fuzz run "$target" "corpus/$target" -- \
      -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz $target: crash; the input is in engine/fuzz/artifacts/$target/"
    exit 1
  fi
  grep -E "^Done" "$log" || tail -5 "$log"
  rm -f "$log"
done
echo "fuzz: ${#TARGETS[@]} passed, 0 failed"
