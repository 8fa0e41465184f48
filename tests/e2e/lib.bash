# Shared helpers of the end-to-end tests: free ports, daemons started and
# stopped by PID with bounded waits, and a pass/fail/skip tally that ends
# with the line "N passed, N failed, N skipped".
set -u

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN_DIR=${TELKIT_BIN_DIR:-$E2E_ROOT/build/tools}
# Commands are built as build/tools/NAME/NAME.
RECV=$BIN_DIR/otlp-recv/otlp-recv
TELCAT=$BIN_DIR/tel-cat/tel-cat
SHARED=${TELKIT_SHARED_DIR:-$E2E_ROOT/../shared}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/telkit-e2e.XXXXXX")
PASS=0 FAIL=0 SKIP=0
PIDS=()

pass() { PASS=$((PASS + 1)); echo "PASS  $1"; }
skip() { SKIP=$((SKIP + 1)); echo "SKIP  $1"; }
fail() {
  FAIL=$((FAIL + 1)); echo "FAIL  $1"
  if [ -n "${2:-}" ] && [ -f "$2" ]; then sed 's/^/      | /' "$2" | tail -n 30; fi
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  [ "${KEEP_E2E_WORK:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL [SECONDS]: true once URL answers 200.
wait_http() {
  local i
  for i in $(seq $((${2:-10} * 10))); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# start_recv NAME OUT [extra flags...]: starts otlp-recv on free loopback
# ports; sets GRPC_PORT HTTP_PORT ADMIN_PORT RECV_PID; log in $WORK/NAME.log.
start_recv() {
  local name=$1 out=$2; shift 2
  GRPC_PORT=$(free_port) HTTP_PORT=$(free_port) ADMIN_PORT=$(free_port)
  "$RECV" --grpc-listen "127.0.0.1:$GRPC_PORT" --http-listen "127.0.0.1:$HTTP_PORT" \
    --admin-listen "127.0.0.1:$ADMIN_PORT" --out "$out" "$@" >"$WORK/$name.log" 2>&1 &
  RECV_PID=$!
  PIDS+=("$RECV_PID")
  wait_http "http://127.0.0.1:$ADMIN_PORT/readyz" 10
}

# stop_pid PID: SIGTERM, then up to 10 s for a graceful exit; returns its status.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; echo "pid $pid needed SIGKILL" >&2; }
  wait "$pid"
}

# metric ADMIN_PORT NAME_AND_LABELS: the value of one sample in /metrics (0 if absent).
metric() {
  curl -fsS "http://127.0.0.1:$1/metrics" | awk -v k="$2" '$1 == k { print $2; found=1 } END { if (!found) print 0 }'
}

# npm_install DIR: installs a test client's exact, locked dependencies.
npm_install() {
  (cd "$1" && { [ -d node_modules/@opentelemetry/sdk-trace-base ] && npm ci --offline --no-audit --no-fund >/dev/null 2>&1; } \
    || timeout 600 npm ci --no-audit --no-fund --prefer-offline >"$WORK/npm-$(basename "$1").log" 2>&1)
}

# prepare_shared_client: copies ../shared's OpenTelemetry client into $WORK
# and installs it; sets SHARED_CLIENT. Returns 1 after reporting a skip (no
# ../shared) or a failure (npm ci).
prepare_shared_client() {
  SHARED_CLIENT=$WORK/shared-client
  if [ ! -f "$SHARED/clients/otel-js/send.mjs" ]; then
    skip "shared OpenTelemetry client: $SHARED/clients/otel-js not found (fresh clone without ../shared)"
    return 1
  fi
  cp -r "$SHARED/clients/otel-js" "$SHARED_CLIENT"
  rm -rf "$SHARED_CLIENT/node_modules" "$SHARED_CLIENT/.test-out"
  npm_install "$SHARED_CLIENT" || { fail "npm ci of the shared client" "$WORK/npm-shared-client.log"; return 1; }
}

summary() {
  echo
  echo "$PASS passed, $FAIL failed, $SKIP skipped"
  [ "$FAIL" = 0 ]
}
