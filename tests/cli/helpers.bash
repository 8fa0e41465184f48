# Shared helpers of the CLI tests (Bats). Load with `load helpers`.
#
# Binaries: $TELKIT_BIN_DIR (default <repo>/build/tools) holds either the
# commands themselves (an install's bin/) or the build tree's tools/NAME/NAME.
# $TELKIT_BUILD_DIR (default the parent of a build tree's tools/) holds the
# test helpers such as common/recv/otlp-test-client.
#
# Daemons are started on ephemeral ports (port 0) and the ports read back from
# their log; every wait is bounded; teardown stops whatever was started.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

bats_require_minimum_version 1.5.0

TELKIT_REPO_DIR="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
TELKIT_BIN_DIR="${TELKIT_BIN_DIR:-$TELKIT_REPO_DIR/build/tools}"
# A relative directory is taken from the current directory if it is there,
# from the repository root otherwise (as tests/cli/cli_contract.bats does).
if [[ $TELKIT_BIN_DIR != /* ]]; then
  if [[ -d $TELKIT_BIN_DIR ]]; then
    TELKIT_BIN_DIR="$PWD/$TELKIT_BIN_DIR"
  else
    TELKIT_BIN_DIR="$TELKIT_REPO_DIR/$TELKIT_BIN_DIR"
  fi
fi
TELKIT_BUILD_DIR="${TELKIT_BUILD_DIR:-$(dirname "$TELKIT_BIN_DIR")}"
# Exported, so functions passed to `bash -c` find the binaries too.
export TELKIT_REPO_DIR TELKIT_BIN_DIR TELKIT_BUILD_DIR

# telkit_bin NAME: the path of command NAME.
telkit_bin() {
  if [[ -x "$TELKIT_BIN_DIR/$1" && ! -d "$TELKIT_BIN_DIR/$1" ]]; then
    echo "$TELKIT_BIN_DIR/$1"
  else
    echo "$TELKIT_BIN_DIR/$1/$1"
  fi
}

# test_client ARGS...: the otlp-test-client helper (sample requests, raw gRPC calls).
test_client() {
  "$TELKIT_BUILD_DIR/common/recv/otlp-test-client" "$@"
}

# wait_until TRIES COMMAND...: runs COMMAND every 0.1 s until it succeeds,
# at most TRIES times. Fails when it never did.
wait_until() {
  local tries=$1
  shift
  local i
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

# start_daemon NAME ARGS...: starts command NAME in the background, stdout to
# $BATS_TEST_TMPDIR/NAME.out, stderr to $BATS_TEST_TMPDIR/NAME.log. Sets
# DAEMON_PID and DAEMON_LOG. Bats' fd 3 is closed for it, or Bats would wait
# for the daemon at the end of the test.
start_daemon() {
  local name=$1
  shift
  DAEMON_LOG="$BATS_TEST_TMPDIR/$name.log"
  "$(telkit_bin "$name")" "$@" >"$BATS_TEST_TMPDIR/$name.out" 2>"$DAEMON_LOG" 3>&- &
  DAEMON_PID=$!
}

# log_port REGEX: the port of the first "REGEX HOST:PORT" line of the log.
log_port() {
  grep -o -m1 -E "$1 [^ ]+:[0-9]+" "$DAEMON_LOG" | grep -o -E '[0-9]+$'
}

# wait_for_log REGEX [TRIES]: waits (bounded, default 10 s) until the daemon's
# log matches; fails early when the daemon died.
wait_for_log() {
  local i
  for ((i = 0; i < ${2:-100}; i++)); do
    if grep -q -E "$1" "$DAEMON_LOG" 2>/dev/null; then return 0; fi
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      echo "daemon exited early; its log:" >&2
      cat "$DAEMON_LOG" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "timed out waiting for '$1' in the log:" >&2
  cat "$DAEMON_LOG" >&2
  return 1
}

# stop_daemon [SIGNAL]: signals the daemon (TERM by default), waits up to
# 30 s for it to exit, then kills it. Sets DAEMON_STATUS to its exit status.
stop_daemon() {
  [[ -n "${DAEMON_PID:-}" ]] || return 0
  kill "-${1:-TERM}" "$DAEMON_PID" 2>/dev/null || true
  local i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$DAEMON_PID" 2>/dev/null; then
    echo "daemon did not stop; killing it" >&2
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  DAEMON_STATUS=0
  wait "$DAEMON_PID" || DAEMON_STATUS=$?
  DAEMON_PID=
}

# start_otlp_recv ARGS...: starts otlp-recv on ephemeral loopback ports,
# waits until it serves, and sets HTTP_PORT, GRPC_PORT and ADMIN_PORT.
start_otlp_recv() {
  start_daemon otlp-recv --http-listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 "$@"
  wait_for_log 'writing the telemetry stream'
  HTTP_PORT=$(log_port 'OTLP/HTTP on')
  GRPC_PORT=$(log_port 'OTLP/gRPC on')
  ADMIN_PORT=$(log_port 'admin endpoint on')
  wait_until 100 curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz"
}

# metric SERIES: the value of SERIES (name plus labels, exactly as exposed)
# on the daemon's /metrics; "absent" when it is not there.
metric() {
  local text
  text=$(curl -s --max-time 10 "http://127.0.0.1:$ADMIN_PORT/metrics")
  awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print "absent" }' <<<"$text"
}

# post PATH CONTENT_TYPE FILE [CURL_ARGS...]: POSTs FILE to the OTLP/HTTP
# port, prints the status code; the body is in $BATS_TEST_TMPDIR/response.
post() {
  local path=$1 type=$2 file=$3
  shift 3
  curl -s --max-time 60 -o "$BATS_TEST_TMPDIR/response" -w '%{http_code}' \
    -H "Content-Type: $type" --data-binary "@$file" "$@" "http://127.0.0.1:$HTTP_PORT$path"
}
