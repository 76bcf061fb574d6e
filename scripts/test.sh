#!/usr/bin/env bash
# The README's test command: every test of wsengine, on a fresh Debian machine.
#
#   scripts/test.sh            # all: Rust tests, interop, io_uring refusal, Autobahn
#   scripts/test.sh rust       # cargo test --workspace, then the socket tests on tokio
#   scripts/test.sh interop    # third-party clients and servers (needs the tools below)
#   scripts/test.sh autobahn   # the Autobahn|Testsuite, server and client, strict
#   scripts/test.sh tls        # the wss:// part alone
#   scripts/test.sh pubsub     # pub/sub fan-out through bench-server, and the chat example
#
# Interop and Autobahn run twice: on the io_uring driver and on the tokio (epoll) one;
# the socket tests run on those two and their echo suite on tokio-uring.
#
# Installs what is missing first (idempotent, quick when present): Debian's chromium, a
# Python venv with `websockets` (WSENGINE_VENV, default /tmp/wsengine-venv), Node's `ws`
# (npm ci in tests/interop). A third-party client that cannot be installed is a failure.
# All traffic stays on 127.0.0.1; every server started here is stopped by PID.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
WHAT="${1:-all}"
VENV="${WSENGINE_VENV:-/tmp/wsengine-venv}"
WEBSOCKETS_VERSION=17.4
AUTOBAHN="$REPO/../shared/autobahn"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
TMP="$(mktemp -d /tmp/wsengine-test.XXXXXX)"
PIDS=()
PASSED=0
FAILED=0
FAILURES=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

step() { echo; echo "==> $*"; }
pass() { PASSED=$((PASSED + 1)); echo "PASS: $1"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$1"); echo "FAIL: $1"; }

install_tools() {
  step "installing third-party test tools (if missing)"
  if [ ! -x /usr/bin/chromium ] || ! command -v curl >/dev/null || ! command -v stunnel4 >/dev/null ||
    ! command -v tinyproxy >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium curl stunnel4 tinyproxy >/dev/null
  fi
  if ! "$VENV/bin/python" -c "import websockets, sys; sys.exit(websockets.__version__ != '$WEBSOCKETS_VERSION')" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "websockets==$WEBSOCKETS_VERSION"
  fi
  if [ ! -d tests/interop/node_modules/ws ]; then
    (cd tests/interop && npm ci --no-audit --no-fund --silent)
  fi
  cc -O2 -o "$TMP/no_uring" tests/no_uring/no_uring.c
  /usr/bin/chromium --version
  "$VENV/bin/python" -c "import websockets; print('python websockets', websockets.__version__)"
  (cd tests/interop && node -e "console.log('node ws', require('./node_modules/ws/package.json').version)")
}

build_release() {
  step "building bench-server and the client examples (release)"
  cargo build --release -p bench-server -p load -p wsengine --features wsengine/axum --bins --examples
}

# Starts bench-server on a free port; sets BS_PID and BS_URL.
start_bench_server() {
  local out="$TMP/bench-server.$RANDOM.out"
  "$BIN"/bench-server --addr 127.0.0.1:0 --workers 2 "$@" >"$out" 2>&1 &
  BS_PID=$!
  PIDS+=("$BS_PID")
  for _ in $(seq 100); do
    BS_URL="$(sed -n 's/^listening on //p' "$out")"
    [ -n "$BS_URL" ] && break
    sleep 0.1
  done
  [ -n "$BS_URL" ] || { cat "$out"; return 1; }
  BS_OUT="$out"
}

# Starts COMMAND... with its output in OUT and waits up to 10 s for a line starting with
# PREFIX: the rest of that line goes in STARTED_LINE (empty if it never came), the PID in
# STARTED_PID (and PIDS, for the cleanup).
start_printing() {
  local out="$1" prefix="$2"
  shift 2
  "$@" >"$out" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  STARTED_LINE=""
  for _ in $(seq 100); do
    STARTED_LINE="$(sed -n "s/^$prefix//p" "$out")"
    [ -n "$STARTED_LINE" ] && break
    sleep 0.1
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Runs load with --json against a URL and checks its figures: messages, no errors, no
# mismatches, every connection open, and messages_per_sec consistent with the count.
check_load() {
  local name="$1" url="$2"
  shift 2
  if timeout 60 "$BIN"/load --url "$url" --json "$@" >"$TMP/load.json" &&
    python3 - "$TMP/load.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print({k: d[k] for k in ("messages", "messages_per_sec", "p50_us", "p99_us", "errors", "mismatches")})
assert d["messages"] > 0 and d["errors"] == 0 and d["mismatches"] == 0, d
assert d["connected"] == d["connections"], d
assert abs(d["messages_per_sec"] * d["duration_s"] - d["messages"]) < 1, d
assert d["bytes"] == d["messages"] * d["size"], d
PY
  then pass "$name"; else fail "$name"; fi
}

run_rust() {
  step "cargo test --workspace (socket tests on io_uring)"
  WSENGINE_TEST_DRIVER=uring cargo test --workspace --features wsengine/axum,wsengine/tracing
  step "socket tests on the tokio driver"
  WSENGINE_TEST_DRIVER=tokio cargo test -p wsengine --test runtime_echo --test runtime_hostile --test runtime_leaks --test runtime_churn --test runtime_budget --test runtime_deflate --test runtime_fairness --test runtime_tls --test runtime_pubsub --test runtime_client
  step "socket tests on the tokio-uring driver (the echo suite)"
  WSENGINE_TEST_DRIVER=tokio-uring cargo test -p wsengine --test runtime_echo --test runtime_budget --test runtime_tls --test runtime_pubsub
  feature_builds
  dns_stall_check
}

# The client's name lookups run off the thread: a lookup that stalls 2 s (tests/dns/
# slow_dns.py, the only DNS server in this test's own mount namespace) holds up its own
# connection only, while another connection on the same thread echoes (on each driver).
dns_stall_check() {
  step "a 2 s DNS stall does not hold up the client thread's other connections"
  cargo test -q -p wsengine --test runtime_client --no-run
  python3 tests/dns/slow_dns.py 2 >"$TMP/dns.out" 2>&1 &
  local dns=$! driver
  PIDS+=("$dns")
  for _ in $(seq 50); do grep -q ready "$TMP/dns.out" && break; sleep 0.1; done
  printf 'nameserver 127.0.0.2\noptions timeout:5 attempts:1\n' >"$TMP/resolv.conf"
  for driver in uring tokio; do
    WSENGINE_TEST_DRIVER=$driver unshare -m sh -c 'mount --bind "$1" /etc/resolv.conf &&
      exec cargo test -q --offline -p wsengine --test runtime_client -- --ignored --nocapture a_stalled_name_lookup' \
      sh "$TMP/resolv.conf"
  done
  kill "$dns" 2>/dev/null || true
}

# What builds off Linux, checked the way this Linux-only machine can: the sans-IO core
# alone (no runtime, no socket, no OS API) with its tests, and the runtime without the
# io_uring drivers (tokio's driver, as on macOS and Windows) with its lib and echo tests;
# `cargo tree` shows neither reaches a crate it must not.
feature_builds() {
  step "the sans-IO core alone (--no-default-features)"
  cargo check -p wsengine --no-default-features
  cargo test -p wsengine --no-default-features --lib --tests
  tree_lacks "--no-default-features" tokio socket2 rustls io-uring tokio-uring hyper
  step "the runtime without the io_uring drivers (--no-default-features --features runtime,hyper)"
  cargo clippy -p wsengine --no-default-features --features runtime -- -D warnings
  cargo clippy -p wsengine --no-default-features --features runtime,hyper -- -D warnings
  cargo test -p wsengine --no-default-features --features runtime,hyper --lib --test runtime_echo --test runtime_stream --test runtime_client
  tree_lacks "--no-default-features --features runtime,hyper" io-uring tokio-uring
}

# Fails unless `cargo tree -p wsengine FLAGS` (normal dependencies) lacks every CRATE.
tree_lacks() {
  local flags="$1" tree crate
  shift
  # shellcheck disable=SC2086
  tree="$(cargo tree -p wsengine $flags -e normal --prefix none)"
  for crate in "$@"; do
    if grep -q "^$crate v" <<<"$tree"; then
      echo "cargo tree $flags reaches $crate:"
      grep "^$crate v" <<<"$tree"
      return 1
    fi
  done
  echo "cargo tree $flags: none of $*"
}

run_interop() {
  build_release
  local driver
  for driver in uring tokio; do
    interop_on "$driver"
    tls_on "$driver"
  done
  pubsub_on uring 10000 1000 50
  pubsub_on tokio 2000 200 50
  chat_checks
  fallback_checks
  axum_checks
  tokio_client_checks
  proxy_checks
}

# Our client through Debian's tinyproxy (HTTP CONNECT), to bench-server over ws:// and
# wss://; tinyproxy's log must show the tunnels.
proxy_checks() {
  step "our client through an HTTP CONNECT proxy (tinyproxy)"
  local port conf="$TMP/tinyproxy.conf" log="$TMP/tinyproxy.log" dir="$TMP/proxy-tls"
  port="$(free_port)"
  # No ConnectPort line: CONNECT to any port (bench-server's is random).
  printf 'Port %s\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 30\nLogLevel Connect\nLogFile "%s"\nMaxClients 16\n' \
    "$port" "$log" >"$conf"
  tinyproxy -d -c "$conf" >/dev/null 2>&1 &
  local proxy=$!
  PIDS+=("$proxy")
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  start_bench_server --driver uring
  if WSENGINE_PROXY="http://127.0.0.1:$port" timeout 120 "$BIN"/examples/tokio_client "$BS_URL/" &&
    grep -q "CONNECT" "$log"; then pass "our client through tinyproxy (ws://)"; else cat "$log"; fail "our client through tinyproxy (ws://)"; fi
  kill "$BS_PID" 2>/dev/null || true
  mkdir -p "$dir"
  new_cert "$dir/cert.pem" "$dir/key.pem"
  start_bench_server --driver uring --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem"
  if WSENGINE_PROXY="http://127.0.0.1:$port" WSENGINE_CA="$dir/cert.pem" timeout 120 "$BIN"/examples/tokio_client "$BS_URL/"; then
    pass "our client through tinyproxy (wss://, TLS end to end)"; else cat "$log"; fail "our client through tinyproxy (wss://)"; fi
  kill "$BS_PID" 2>/dev/null || true
  kill "$proxy" 2>/dev/null || true
}

# The client from a #[tokio::main] program (engine/examples/tokio_client.rs: connect_send,
# a tokio::spawn'ed writer, Stream and Sink) against bench-server on each driver and the
# Python websockets echo server.
tokio_client_checks() {
  local driver port
  for driver in uring tokio; do
    step "our client from a #[tokio::main] program vs bench-server ($driver)"
    start_bench_server --driver "$driver"
    if timeout 120 "$BIN"/examples/tokio_client "$BS_URL/"; then pass "our client from #[tokio::main] vs bench-server ($driver)"; else fail "our client from #[tokio::main] vs bench-server ($driver)"; fi
    kill "$BS_PID" 2>/dev/null || true
  done
  step "our client from a #[tokio::main] program vs the Python websockets echo server"
  port="$(free_port)"
  "$VENV/bin/python" tests/interop/python_echo_server.py "$port" >"$TMP/py-tokio.out" 2>&1 &
  local py=$!
  PIDS+=("$py")
  for _ in $(seq 100); do grep -q listening "$TMP/py-tokio.out" && break; sleep 0.1; done
  if timeout 120 "$BIN"/examples/tokio_client "ws://127.0.0.1:$port/"; then pass "our client from #[tokio::main] vs python websockets server"; else fail "our client from #[tokio::main] vs python websockets server"; fi
  kill "$py" 2>/dev/null || true
}

# Pub/sub through bench-server --mode broadcast (two workers), driven by load's fan-out:
# SUBS subscribers each get all COUNT publishes of 1 KiB, in order, none missing (load
# checks every sequence number); the server's counts add up: delivered + dropped =
# publishes x connections (the publisher is subscribed too).
pubsub_on() {
  local driver="$1" subs="$2" count="$3" rate="$4"
  step "pub/sub: $subs subscribers x $count publishes of 1 KiB through bench-server --mode broadcast ($driver)"
  start_bench_server --driver "$driver" --mode broadcast --stats-every 0.5
  local secs
  secs="$(python3 -c "print($count / $rate)")"
  if timeout 180 "$BIN"/load --url "$BS_URL/" --scenario fanout --connections "$subs" --publishers 1 \
      --rate "$rate" --duration "$secs" --warmup 0 --size 1024 --json >"$TMP/fanout.json" &&
    sleep 1 &&
    python3 - "$TMP/fanout.json" "$BS_OUT" "$subs" "$count" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
subs, count = int(sys.argv[3]), int(sys.argv[4])
f = d["fanout"]
print({k: d[k] for k in ("messages", "messages_per_sec", "p50_us", "p99_us", "errors", "mismatches")}, f)
assert d["connected"] == subs + 1 and d["errors"] == 0 and d["mismatches"] == 0, d
assert f["published"] == count and f["dropped"] == 0, f
# Every subscriber got every publish made in the measured window (the first may precede it).
assert f["subscriber_max_received"] == count and f["subscriber_min_received"] >= count - 1, f
last = [l for l in open(sys.argv[2]) if l.startswith("stats:")][-1]
published, delivered, dropped = map(int, re.search(r"published (\d+) delivered (\d+) dropped (\d+)", last).groups())
assert published == count and delivered + dropped == count * (subs + 1) and dropped == 0, last
PY
  then pass "pub/sub fan-out, $subs subscribers, none missing ($driver)"; else fail "pub/sub fan-out, $subs subscribers, none missing ($driver)"; fi
  kill "$BS_PID" 2>/dev/null || true
}

# The chat example (engine/examples/chat.rs): two headless Chromium windows join a room,
# see each other's messages, and send each other a direct message.
chat_checks() {
  step "the chat example: rooms and direct messages between two Chromium windows"
  local out="$TMP/chat.out"
  start_printing "$out" "page on " "$BIN"/examples/chat 127.0.0.1:0 127.0.0.1:0
  local page="$STARTED_LINE" pid=$STARTED_PID
  if [ -n "$page" ] && timeout 120 python3 tests/interop/chat_test.py "$page/"; then pass "chat example in two Chromium windows"; else cat "$out"; fail "chat example in two Chromium windows"; fi
  kill "$pid" 2>/dev/null || true
}

# The axum example (engine/examples/axum_echo.rs): its page, and its wsengine route driven
# by the Python websockets client and ours.
axum_checks() {
  step "the axum example: a page and a wsengine WebSocket route inside axum"
  local port out="$TMP/axum.out"
  port="$(free_port)"
  "$BIN"/examples/axum_echo "127.0.0.1:$port" >"$out" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
  if curl -sf "http://127.0.0.1:$port/" | grep -q "new WebSocket"; then pass "axum example serves its page"; else fail "axum example serves its page"; fi
  if timeout 120 "$VENV/bin/python" tests/interop/python_client.py "ws://127.0.0.1:$port/ws"; then pass "python websockets client vs the axum example"; else fail "python websockets client vs the axum example"; fi
  if timeout 120 "$BIN"/examples/echo_check "ws://127.0.0.1:$port/ws"; then pass "our client vs the axum example"; else fail "our client vs the axum example"; fi
  if curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ws" | grep -q 426; then pass "axum example answers a plain GET on /ws with 426"; else fail "axum example answers a plain GET on /ws with 426"; fi
  kill "$pid" 2>/dev/null || true
  step "axum's chat example ported to the engine's extractor (only imports and type names changed)"
  out="$TMP/axum-chat.out"
  start_printing "$out" "listening on " "$BIN"/examples/axum_chat 127.0.0.1:0
  local base="$STARTED_LINE"
  pid=$STARTED_PID
  if [ -n "$base" ] && timeout 120 "$VENV/bin/python" tests/interop/axum_chat_test.py "$base"; then pass "python websockets clients vs the axum chat port"; else cat "$out"; fail "python websockets clients vs the axum chat port"; fi
  kill "$pid" 2>/dev/null || true
}

# The third-party peers against bench-server and our client, on one driver.
interop_on() {
  local driver="$1"
  start_bench_server --driver "$driver"
  if ! grep -q "driver $driver" "$BS_OUT"; then
    cat "$BS_OUT"; fail "bench-server runs on $driver"
  fi
  step "third-party clients against bench-server at $BS_URL ($driver)"
  # bench-server's default permessage-deflate mode is shared: clients that offer it get it.
  if timeout 120 "$VENV/bin/python" tests/interop/python_client.py "$BS_URL/"; then pass "python websockets client ($driver)"; else fail "python websockets client ($driver)"; fi
  if timeout 120 "$VENV/bin/python" tests/interop/python_client.py "$BS_URL/" deflate; then pass "python websockets client, permessage-deflate shared ($driver)"; else fail "python websockets client, permessage-deflate shared ($driver)"; fi
  if timeout 120 node tests/interop/node_client.mjs "$BS_URL/"; then pass "node ws client ($driver)"; else fail "node ws client ($driver)"; fi
  if timeout 120 node tests/interop/node_client.mjs "$BS_URL/" deflate; then pass "node ws client, permessage-deflate shared ($driver)"; else fail "node ws client, permessage-deflate shared ($driver)"; fi
  if timeout 120 python3 tests/interop/chromium_test.py "$BS_URL/" permessage-deflate; then pass "headless chromium, permessage-deflate shared ($driver)"; else fail "headless chromium, permessage-deflate shared ($driver)"; fi

  step "load against bench-server (counts add up, no mismatches; $driver)"
  check_load "load vs bench-server ($driver)" "$BS_URL/" --connections 20 --pipeline 4 --duration 2 --warmup 0.5 --driver "$driver"
  # A liveness bound, not a benchmark: both ends must wake at each completion. With
  # DEFER_TASKRUN the kernel signalled the ring's eventfd 12-29 ms late, and one
  # connection's ping-pong ran 50-350 messages/s (7,000-17,000 when it wakes at once).
  step "one connection's ping-pong is not held up by late wake-ups ($driver)"
  check_load "one-connection ping-pong at 1,000 msg/s or more ($driver)" "$BS_URL/" --connections 1 --duration 2 --warmup 0.5 --threads 1 --driver "$driver" --min-rate 1000

  step "graceful shutdown of bench-server (SIGTERM; $driver)"
  kill -TERM "$BS_PID"
  if wait "$BS_PID" && grep -q '^totals: ' "$BS_OUT"; then
    grep '^totals: ' "$BS_OUT"
    pass "bench-server graceful shutdown ($driver)"
  else
    cat "$BS_OUT"
    fail "bench-server graceful shutdown ($driver)"
  fi

  deflate_modes_on "$driver"

  step "our client against the Python websockets echo server ($driver)"
  local port
  port="$(free_port)"
  "$VENV/bin/python" tests/interop/python_echo_server.py "$port" >"$TMP/py-echo.out" 2>&1 &
  local py=$!
  PIDS+=("$py")
  for _ in $(seq 100); do grep -q listening "$TMP/py-echo.out" && break; sleep 0.1; done
  if timeout 120 "$BIN"/examples/echo_check "ws://127.0.0.1:$port/" "$driver" deflate; then pass "our client vs python websockets server, with and without permessage-deflate ($driver)"; else fail "our client vs python websockets server ($driver)"; fi
  step "load against the Python websockets echo server ($driver)"
  check_load "load vs python websockets server ($driver)" "ws://127.0.0.1:$port/" --connections 10 --duration 2 --warmup 0.5 --threads 1 --driver "$driver"
  kill "$py" 2>/dev/null || true
}

# A throw-away certificate for localhost and 127.0.0.1 (OpenSSL's, not ours): new_cert
# CERT KEY. Not a CA (req -x509 makes one by default): webpki, rightly, refuses a CA
# certificate as a server's own (CaUsedAsEndEntity).
new_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$2" -out "$1" -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:FALSE 2>/dev/null
}

# wss://: bench-server with a certificate from files, the third-party clients and
# Chromium verifying it (or ignoring it), load and our client; SIGHUP reloads the
# certificate; a certificate made at start; our client against the Python websockets
# server over TLS.
tls_on() {
  local driver="$1"
  local dir="$TMP/tls-$driver"
  mkdir -p "$dir"
  new_cert "$dir/cert.pem" "$dir/key.pem"
  step "wss:// (TLS): third-party clients against bench-server ($driver)"
  start_bench_server --driver "$driver" --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem"
  case "$BS_URL" in wss://*) pass "bench-server serves wss:// ($driver)" ;; *) fail "bench-server serves wss:// ($driver): $BS_URL" ;; esac
  if WSENGINE_CA="$dir/cert.pem" timeout 120 "$VENV/bin/python" tests/interop/python_client.py "$BS_URL/"; then pass "python websockets client over wss ($driver)"; else fail "python websockets client over wss ($driver)"; fi
  if WSENGINE_CA="$dir/cert.pem" timeout 120 "$VENV/bin/python" tests/interop/python_client.py "$BS_URL/" deflate; then pass "python websockets client over wss, permessage-deflate ($driver)"; else fail "python websockets client over wss, permessage-deflate ($driver)"; fi
  if WSENGINE_CA="$dir/cert.pem" timeout 120 node tests/interop/node_client.mjs "$BS_URL/"; then pass "node ws client over wss ($driver)"; else fail "node ws client over wss ($driver)"; fi
  if timeout 120 python3 tests/interop/chromium_test.py "$BS_URL/" permessage-deflate; then pass "headless chromium over wss ($driver)"; else fail "headless chromium over wss ($driver)"; fi
  if WSENGINE_CA="$dir/cert.pem" timeout 120 "$BIN"/examples/echo_check "$BS_URL/" "$driver"; then pass "our client over wss vs bench-server ($driver)"; else fail "our client over wss vs bench-server ($driver)"; fi
  if WSENGINE_CA="$dir/cert.pem" timeout 120 "$BIN"/examples/tokio_client "$BS_URL/"; then pass "our client from #[tokio::main] over wss vs bench-server ($driver)"; else fail "our client from #[tokio::main] over wss vs bench-server ($driver)"; fi
  check_load "load --ca vs bench-server over wss ($driver)" "$BS_URL/" --ca "$dir/cert.pem" --connections 20 --pipeline 4 --duration 2 --warmup 0.5 --driver "$driver"

  step "wss:// certificate reload on SIGHUP ($driver)"
  new_cert "$dir/cert2.pem" "$dir/key2.pem"
  cp "$dir/cert2.pem" "$dir/cert.pem.new" && mv "$dir/cert.pem.new" "$dir/cert.pem"
  cp "$dir/key2.pem" "$dir/key.pem.new" && mv "$dir/key.pem.new" "$dir/key.pem"
  kill -HUP "$BS_PID"
  for _ in $(seq 50); do grep -q 'certificate reloaded' "$BS_OUT" && break; sleep 0.1; done
  if grep -q 'certificate reloaded' "$BS_OUT" &&
    WSENGINE_CA="$dir/cert2.pem" timeout 120 node tests/interop/node_client.mjs "$BS_URL/"; then
    pass "SIGHUP: new connections get the new certificate ($driver)"
  else
    cat "$BS_OUT"; fail "SIGHUP: new connections get the new certificate ($driver)"
  fi
  kill "$BS_PID" 2>/dev/null || true

  step "wss:// with a certificate made at start ($driver)"
  start_bench_server --driver "$driver" --tls-self-signed --tls-cert-out "$dir/self-signed.pem"
  if grep -q 'SHA-256 ' "$BS_OUT"; then pass "bench-server --tls-self-signed prints its fingerprint ($driver)"; else fail "bench-server --tls-self-signed prints its fingerprint ($driver)"; fi
  check_load "load --insecure vs a self-signed bench-server ($driver)" "$BS_URL/" --insecure --connections 10 --duration 1 --warmup 0.5 --driver "$driver"
  check_load "load --ca (the server's own certificate) vs a self-signed bench-server ($driver)" "$BS_URL/" --ca "$dir/self-signed.pem" --connections 10 --duration 1 --warmup 0.5 --driver "$driver"
  kill "$BS_PID" 2>/dev/null || true

  step "our client over wss:// against the Python websockets server ($driver)"
  local port
  port="$(free_port)"
  "$VENV/bin/python" tests/interop/python_echo_server.py "$port" "$dir/cert2.pem" "$dir/key2.pem" >"$TMP/py-tls.out" 2>&1 &
  local py=$!
  PIDS+=("$py")
  for _ in $(seq 100); do grep -q listening "$TMP/py-tls.out" && break; sleep 0.1; done
  if WSENGINE_CA="$dir/cert2.pem" timeout 120 "$BIN"/examples/echo_check "wss://127.0.0.1:$port/" "$driver" deflate; then pass "our client over wss vs python websockets server ($driver)"; else fail "our client over wss vs python websockets server ($driver)"; fi
  kill "$py" 2>/dev/null || true
}

# bench-server's other permessage-deflate modes against the clients that offer it:
# dedicated (context takeover) negotiated by all three, off declined for Chromium.
deflate_modes_on() {
  local driver="$1"
  step "permessage-deflate dedicated and off: third-party clients ($driver)"
  start_bench_server --driver "$driver" --deflate dedicated
  if timeout 120 "$VENV/bin/python" tests/interop/python_client.py "$BS_URL/" deflate; then pass "python websockets client, permessage-deflate dedicated ($driver)"; else fail "python websockets client, permessage-deflate dedicated ($driver)"; fi
  if timeout 120 node tests/interop/node_client.mjs "$BS_URL/" deflate; then pass "node ws client, permessage-deflate dedicated ($driver)"; else fail "node ws client, permessage-deflate dedicated ($driver)"; fi
  if timeout 120 python3 tests/interop/chromium_test.py "$BS_URL/" permessage-deflate; then pass "headless chromium, permessage-deflate dedicated ($driver)"; else fail "headless chromium, permessage-deflate dedicated ($driver)"; fi
  check_load "load --deflate vs bench-server dedicated ($driver)" "$BS_URL/" --connections 10 --size 4096 --duration 1 --warmup 0.5 --driver "$driver" --deflate
  kill "$BS_PID" 2>/dev/null || true
  start_bench_server --driver "$driver" --deflate off
  if timeout 120 python3 tests/interop/chromium_test.py "$BS_URL/"; then pass "headless chromium, permessage-deflate off ($driver)"; else fail "headless chromium, permessage-deflate off ($driver)"; fi
  kill "$BS_PID" 2>/dev/null || true
}

# Where the kernel refuses io_uring: auto falls back to tokio and says so once; uring
# refuses plainly.
fallback_checks() {
  step "where the kernel refuses io_uring (seccomp EPERM on io_uring_setup)"
  local msg status
  msg="$("$TMP/no_uring" "$BIN"/bench-server --addr 127.0.0.1:0 --driver uring 2>&1)" && status=0 || status=$?
  echo "$msg"
  if [ "$status" -eq 1 ] && grep -q "io_uring is not available" <<<"$msg" && ! grep -q panicked <<<"$msg"; then
    pass "bench-server --driver uring refuses plainly without io_uring"
  else
    fail "bench-server --driver uring refuses plainly without io_uring (exit $status)"
  fi
  msg="$("$TMP/no_uring" "$BIN"/examples/echo_check ws://127.0.0.1:9/ uring 2>&1)" && status=0 || status=$?
  if [ "$status" -eq 1 ] && grep -q "io_uring is not available" <<<"$msg" && ! grep -q panicked <<<"$msg"; then
    pass "client on uring refuses plainly without io_uring"
  else
    echo "$msg"; fail "client on uring refuses plainly without io_uring (exit $status)"
  fi
  # auto: one line on stderr, then the server runs on tokio and serves a real client.
  local out="$TMP/fallback.out"
  "$TMP/no_uring" "$BIN"/bench-server --addr 127.0.0.1:0 --workers 2 >"$out" 2>&1 &
  BS_PID=$!
  PIDS+=("$BS_PID")
  BS_URL=""
  for _ in $(seq 100); do
    BS_URL="$(sed -n 's/^listening on //p' "$out")"
    [ -n "$BS_URL" ] && break
    sleep 0.1
  done
  cat "$out"
  if [ -n "$BS_URL" ] && [ "$(grep -c 'falling back to the tokio (epoll) driver' "$out")" -eq 1 ] &&
    grep -q "driver tokio" "$out" &&
    timeout 120 "$TMP/no_uring" "$BIN"/examples/echo_check "$BS_URL/" 2>&1 | tee "$TMP/fallback-client.out" | tail -1 &&
    grep -q "falling back" "$TMP/fallback-client.out"; then
    pass "without io_uring, auto falls back to tokio (server and client) with one line each"
  else
    fail "without io_uring, auto falls back to tokio"
  fi
  kill "$BS_PID" 2>/dev/null || true
}

run_autobahn() {
  [ -x "$AUTOBAHN/run.sh" ] || { fail "autobahn harness missing at $AUTOBAHN"; return; }
  build_release
  # The harness's venv, built by its first run (here one that finds no server), before
  # a server suite and a client suite start together.
  "$AUTOBAHN/run.sh" ws://127.0.0.1:9 1.1.1 >/dev/null 2>&1 || true
  # The default driver runs every case, permessage-deflate's sections 12 and 13 included
  # (the server in dedicated mode, context takeover); tokio runs sections 1-10 and a
  # representative part of 12 and 13 (the server in shared mode). The server and client
  # suites of a driver run at once: each harness keeps one core busy.
  autobahn_on uring dedicated '*' ''
  autobahn_on tokio shared '1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*,12.1.*,13.1.*,13.7.*' \
    '-i 1.* -i 2.* -i 3.* -i 4.* -i 5.* -i 6.* -i 7.* -i 9.* -i 10.* -i 12.1.* -i 13.1.* -i 13.7.*'
  autobahn_tls uring
}

# Autobahn sections 1-10 against bench-server over wss://: the runner speaks plain
# WebSocket to a stunnel client tunnel (Debian's stunnel4, verifying the server's
# certificate), which speaks TLS to our server, so that every case goes through our TLS.
autobahn_tls() {
  local driver="$1" dir="$TMP/autobahn-tls" tport
  mkdir -p "$dir"
  command -v stunnel4 >/dev/null || { fail "autobahn over wss: stunnel4 is not installed"; return; }
  start_bench_server --max-message-size $((64 << 20)) --driver "$driver" --tls-self-signed --tls-cert-out "$dir/cert.pem"
  local server_pid="$BS_PID" server_port="${BS_URL##*:}"
  tport="$(free_port)"
  printf '%s\n' "foreground = yes" "pid =" "[autobahn]" "client = yes" \
    "accept = 127.0.0.1:$tport" "connect = 127.0.0.1:$server_port" \
    "CAfile = $dir/cert.pem" "verifyChain = yes" "checkIP = 127.0.0.1" >"$dir/stunnel.conf"
  stunnel4 "$dir/stunnel.conf" >"$dir/stunnel.out" 2>&1 &
  local tunnel=$!
  PIDS+=("$tunnel")
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$tport") 2>/dev/null && break; sleep 0.1; done
  step "Autobahn|Testsuite 1-10 against bench-server over wss:// through stunnel (strict; $driver)"
  local report="$dir/report"
  AUTOBAHN_STRICT=1 AUTOBAHN_OUT="$report" "$AUTOBAHN/run.sh" "ws://127.0.0.1:$tport" '*' >"$report.txt" 2>&1 || true
  tail -3 "$report.txt"
  if grep -q "FAILED=0" "$report.txt" && grep -q "NON-STRICT=0" "$report.txt" && grep -q "OK=298" "$report.txt"; then
    pass "autobahn server over wss ($driver): $(tail -1 "$report.txt")"
  else
    python3 "$AUTOBAHN/summarize.py" "$report" --strict || true
    cat "$dir/stunnel.out"
    fail "autobahn server over wss ($driver): $(tail -1 "$report.txt")"
  fi
  kill "$tunnel" 2>/dev/null || true
  kill -TERM "$server_pid"; wait "$server_pid" || true
}

# autobahn_on DRIVER DEFLATE_MODE SERVER_CASES CLIENT_SELECTION
autobahn_on() {
  local driver="$1" mode="$2" cases="$3" selection="$4"
  # Every message compressed (threshold 0): kosoku 0.1.0 fails its own hash on an
  # uncompressed echo in sections 12 and 13.
  start_bench_server --max-message-size $((64 << 20)) --driver "$driver" --deflate "$mode" --deflate-min-size 0
  local server_pid="$BS_PID" server_url="$BS_URL"
  step "Autobahn|Testsuite against bench-server (strict; $driver, deflate $mode; cases $cases) and against our client, at once"
  local report="$TMP/autobahn-server-$driver"
  AUTOBAHN_STRICT=1 AUTOBAHN_OUT="$report" "$AUTOBAHN/run.sh" "$server_url" "$cases" deflate >"$report.txt" 2>&1 &
  local suite=$!
  PIDS+=("$suite")

  # The client: cases 13.2, 13.5 and 13.6 accept only an offer with
  # client_no_context_takeover, so they run in a second pass with that offer.
  # shellcheck disable=SC2086 # the selection is a list of flags
  autobahn_client_pass "$driver" takeover "$selection -x 13.2.* -x 13.5.* -x 13.6.*"
  if [ -z "$selection" ]; then
    autobahn_client_pass "$driver" no-takeover "-i 13.2.* -i 13.5.* -i 13.6.*"
  fi

  wait "$suite" || true
  tail -3 "$report.txt"
  if grep -q "FAILED=0" "$report.txt" && grep -q "NON-STRICT=0" "$report.txt"; then
    pass "autobahn server ($driver, deflate $mode): $(tail -1 "$report.txt")"
  else
    python3 "$AUTOBAHN/summarize.py" "$report" --strict || true
    fail "autobahn server ($driver, deflate $mode): $(tail -1 "$report.txt")"
  fi
  kill -TERM "$server_pid"; wait "$server_pid" || true
}

# autobahn_client_pass DRIVER OFFER KOSOKU_SELECTION
autobahn_client_pass() {
  local driver="$1" offer="$2" selection="$3"
  local port kosoku="${AUTOBAHN_VENV:-/tmp/autobahn-venv}/bin/kosoku"
  local report="$TMP/autobahn-client-$driver-$offer"
  port="$(free_port)"
  # shellcheck disable=SC2086
  "$kosoku" -m fuzzingserver "127.0.0.1:$port" $selection -o "$report" >"$TMP/fuzzingserver.out" 2>&1 &
  local fs=$!
  PIDS+=("$fs")
  for _ in $(seq 100); do grep -q listening "$TMP/fuzzingserver.out" && break; sleep 0.1; done
  timeout 1500 "$BIN"/examples/autobahn_client "ws://127.0.0.1:$port" "$driver" "$offer" || true
  for _ in $(seq 60); do grep -q "wrote reports" "$TMP/fuzzingserver.out" && break; sleep 0.5; done
  kill "$fs" 2>/dev/null || true
  if python3 "$AUTOBAHN/summarize.py" "$report" --strict >"$report.txt" 2>&1 &&
    grep -q "UNIMPLEMENTED=0" "$report.txt"; then
    pass "autobahn client ($driver, offer $offer): $(tail -1 "$report.txt")"
  else
    cat "$report.txt"
    fail "autobahn client ($driver, offer $offer): $(tail -1 "$report.txt")"
  fi
}

case "$WHAT" in
  rust) install_tools; run_rust ;;   # load's report page test renders in chromium
  interop) install_tools; run_interop ;;
  autobahn) run_autobahn ;;
  tls) install_tools; build_release; tls_on uring; tls_on tokio; autobahn_tls uring ;;
  pubsub) install_tools; build_release; pubsub_on uring 10000 1000 50; pubsub_on tokio 2000 200 50; chat_checks ;;
  all) install_tools; run_rust; run_interop; run_autobahn ;;
  *) echo "usage: $0 [all|rust|interop|autobahn|tls|pubsub]" >&2; exit 2 ;;
esac

if [ "$WHAT" != rust ]; then
  echo
  for f in "${FAILURES[@]}"; do echo "failed: $f"; done
  echo "interop: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
fi
