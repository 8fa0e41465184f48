#!/usr/bin/env bash
# End-to-end logs: real OpenTelemetry SDK clients -> otlp-recv (gRPC,
# HTTP/protobuf, HTTP/JSON) -> Unix socket -> log-ingest -> log store; then
# `log-ingest query` (another process, while log-ingest still runs) must
# return every log record of the client's manifest with its body, level,
# attributes and trace id (logs-check.mjs). Uses tests/e2e/client always and
# ../shared/clients/otel-js when it exists.
source "$(dirname "$0")/lib.bash"
CLIENT=$E2E_ROOT/tests/e2e/client
INGEST=$BIN_DIR/log-ingest/log-ingest

for bin in "$RECV" "$INGEST"; do
  [ -x "$bin" ] || { fail "$bin is not built"; summary; exit 1; }
done
if npm_install "$CLIENT"; then pass "npm ci (tests/e2e/client)"; else fail "npm ci (tests/e2e/client)" "$WORK/npm-client.log"; summary; exit 1; fi

# logs_run NAME CLIENT_DIR PROTOCOL [send flags...]
logs_run() {
  local name=$1 dir=$2 proto=$3; shift 3
  local data=$WORK/$name.db sock=$WORK/$name.sock
  "$INGEST" --data "$data" --in "listen:unix:$sock" --admin-listen none --retention 0 >"$WORK/$name.ingest.log" 2>&1 &
  local ingest_pid=$!
  PIDS+=("$ingest_pid")
  local i
  for i in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  if ! start_recv "$name" "unix:$sock" --signal logs 2>/dev/null && ! start_recv "$name" "unix:$sock"; then
    fail "$name: otlp-recv did not start" "$WORK/$name.log"; kill -KILL "$ingest_pid"; return
  fi
  local endpoint="http://127.0.0.1:$HTTP_PORT"
  [ "$proto" = grpc ] && endpoint="http://127.0.0.1:$GRPC_PORT"
  timeout 180 node "$dir/send.mjs" --endpoint "$endpoint" --protocol "$proto" --signals logs \
    --manifest "$WORK/$name.manifest.json" "$@" >"$WORK/$name.send.log" 2>&1
  local rc=$?
  stop_pid "$RECV_PID"  # drains: every frame acknowledged by log-ingest (durable)
  if [ "$rc" != 0 ]; then fail "$name: the SDK reported failures (rc=$rc)" "$WORK/$name.send.log"; kill -KILL "$ingest_pid"; return; fi
  "$INGEST" query --data "$data" '{service_name=~".+"}' --limit 0 --format jsonl >"$WORK/$name.jsonl" 2>"$WORK/$name.query.log"
  stop_pid "$ingest_pid" || fail "$name: log-ingest did not exit 0 after SIGTERM" "$WORK/$name.ingest.log"
  if node "$E2E_ROOT/tests/e2e/logs-check.mjs" "$WORK/$name.manifest.json" "$WORK/$name.jsonl" >"$WORK/$name.check.log" 2>&1; then
    pass "$name: $(tail -n 1 "$WORK/$name.check.log")"
  else
    fail "$name: the log store differs from what the SDK sent" "$WORK/$name.check.log"
  fi
}

for proto in grpc http/protobuf http/json; do
  slug=${proto//\//-}
  logs_run "logs-own-$slug" "$CLIENT" "$proto" --count 12 --seed "logs-$slug" --service shop
done

if prepare_shared_client; then
  for proto in grpc http/protobuf http/json; do
    slug=${proto//\//-}
    logs_run "logs-shared-$slug" "$SHARED_CLIENT" "$proto" --count 10 --seed "logs-shared-$slug" --service otel-js
  done
fi

# Negative control: the checker notices a changed body.
if [ -f "$WORK/logs-own-grpc.jsonl" ]; then
  sed '0,/"line":"/s/"line":"/"line":"tampered /' "$WORK/logs-own-grpc.jsonl" >"$WORK/tampered.jsonl"
  if node "$E2E_ROOT/tests/e2e/logs-check.mjs" "$WORK/logs-own-grpc.manifest.json" "$WORK/tampered.jsonl" >/dev/null 2>&1; then
    fail "negative control: logs-check.mjs accepted a tampered body"
  else
    pass "negative control: logs-check.mjs notices a tampered body"
  fi
fi

summary
