#!/usr/bin/env bash
# End-to-end logs: real OpenTelemetry SDK clients -> otlp-recv (gRPC,
# HTTP/protobuf, HTTP/JSON) -> Unix socket -> log-ingest -> log store; then
# `log-ingest query`, `tel-query logql` and tel-query serve's Loki API
# (/loki/api/v1/query_range), all other processes reading while log-ingest
# still runs, must each return every log record of the client's manifest with
# its body, level, attributes and trace id (logs-check.mjs), and
# `tel-query logs --trace-id` exactly the records of one trace. Uses
# tests/e2e/client always and ../shared/clients/otel-js when it exists.
source "$(dirname "$0")/lib.bash"
CLIENT=$E2E_ROOT/tests/e2e/client
INGEST=$BIN_DIR/log-ingest/log-ingest
TQ=$BIN_DIR/tel-query/tel-query

for bin in "$RECV" "$INGEST" "$TQ"; do
  [ -x "$bin" ] || { fail "$bin is not built"; summary; exit 1; }
done
if npm_install "$CLIENT"; then pass "npm ci (tests/e2e/client)"; else fail "npm ci (tests/e2e/client)" "$WORK/npm-client.log"; summary; exit 1; fi

# logql_checks NAME DATA: the same records through LogQL, in the terminal
# and over the Loki API, and one trace's lines by --trace-id.
logql_checks() {
  local name=$1 data=$2 check=$E2E_ROOT/tests/e2e/logs-check.mjs conv=$E2E_ROOT/tests/e2e/logql-to-jsonl.mjs
  local all='{service_name=~".+"}'
  if "$TQ" logql --logs-data "$data" "$all" --start 0 --end 2100-01-01T00:00:00Z --limit 0 -o json \
    >"$WORK/$name.logql.json" 2>"$WORK/$name.logql.log" &&
    node "$conv" "$WORK/$name.logql.json" >"$WORK/$name.logql.jsonl" 2>>"$WORK/$name.logql.log" &&
    node "$check" "$WORK/$name.manifest.json" "$WORK/$name.logql.jsonl" >"$WORK/$name.logql.check" 2>&1; then
    pass "$name: tel-query logql: $(tail -n 1 "$WORK/$name.logql.check")"
  else
    fail "$name: tel-query logql differs from what the SDK sent" "$WORK/$name.logql.check"
  fi
  "$TQ" serve --logs-data "$data" --loki-listen 127.0.0.1:0 --admin-listen '' >"$WORK/$name.serve.log" 2>&1 &
  local serve_pid=$! port='' i
  PIDS+=("$serve_pid")
  for i in $(seq 100); do
    port=$(grep -oE 'Loki API on 127.0.0.1:[0-9]+' "$WORK/$name.serve.log" | grep -oE '[0-9]+$' || true)
    [ -n "$port" ] && break
    sleep 0.05
  done
  if [ -n "$port" ] &&
    curl -fsS -G "http://127.0.0.1:$port/loki/api/v1/query_range" --data-urlencode "query=$all" \
      --data-urlencode start=0 --data-urlencode end=4102444800 --data-urlencode limit=5000 \
      >"$WORK/$name.loki.json" 2>"$WORK/$name.loki.log" &&
    node "$conv" "$WORK/$name.loki.json" >"$WORK/$name.loki.jsonl" 2>>"$WORK/$name.loki.log" &&
    node "$check" "$WORK/$name.manifest.json" "$WORK/$name.loki.jsonl" >"$WORK/$name.loki.check" 2>&1; then
    pass "$name: Loki API query_range: $(tail -n 1 "$WORK/$name.loki.check")"
  else
    fail "$name: the Loki API differs from what the SDK sent" "$WORK/$name.loki.check"
  fi
  stop_pid "$serve_pid" || fail "$name: tel-query serve did not exit 0 after SIGTERM" "$WORK/$name.serve.log"
  local trace
  trace=$(node -e 'const m=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));
    const r=(m.logs?.records??[]).find((x)=>x.traceId); process.stdout.write(r?r.traceId:"")' "$WORK/$name.manifest.json")
  if [ -z "$trace" ]; then
    skip "$name: no record with a trace id in the manifest"
  elif "$TQ" logql --logs-data "$data" "$all | trace_id=\"$trace\"" --start 0 --end 2100-01-01T00:00:00Z --limit 0 \
    -o json >"$WORK/$name.trace.json" 2>"$WORK/$name.trace.log" &&
    node "$conv" "$WORK/$name.trace.json" --trace-id "$trace" "$WORK/$name.manifest.json" >"$WORK/$name.trace.check" 2>&1 &&
    "$TQ" logs --logs-data "$data" --trace-id "$trace" --since 1000000h --limit 0 -o raw >"$WORK/$name.trace.raw" &&
    [ "$(wc -l <"$WORK/$name.trace.raw")" -ge 1 ]; then
    pass "$name: trace $trace: $(tail -n 1 "$WORK/$name.trace.check")"
  else
    fail "$name: the lines of trace $trace" "$WORK/$name.trace.check"
  fi
}

# logs_run NAME CLIENT_DIR PROTOCOL [send flags...]
logs_run() {
  local name=$1 dir=$2 proto=$3; shift 3
  local data=$WORK/$name.db sock=$WORK/$name.sock
  "$INGEST" --data "$data" --in "listen:unix:$sock" --admin-listen none --retention 0 >"$WORK/$name.ingest.log" 2>&1 &
  local ingest_pid=$!
  PIDS+=("$ingest_pid")
  local i
  for i in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  local filter=(--signal logs)
  [[ ${LOGS_SIGNALS:-logs} == *traces* ]] && filter=()
  if ! start_recv "$name" "unix:$sock" "${filter[@]}" 2>/dev/null && ! start_recv "$name" "unix:$sock"; then
    fail "$name: otlp-recv did not start" "$WORK/$name.log"; kill -KILL "$ingest_pid"; return
  fi
  local endpoint="http://127.0.0.1:$HTTP_PORT"
  [ "$proto" = grpc ] && endpoint="http://127.0.0.1:$GRPC_PORT"
  timeout 180 node "$dir/send.mjs" --endpoint "$endpoint" --protocol "$proto" --signals "${LOGS_SIGNALS:-logs}" \
    --manifest "$WORK/$name.manifest.json" "$@" >"$WORK/$name.send.log" 2>&1
  local rc=$?
  stop_pid "$RECV_PID"  # drains: every frame acknowledged by log-ingest (durable)
  if [ "$rc" != 0 ]; then fail "$name: the SDK reported failures (rc=$rc)" "$WORK/$name.send.log"; kill -KILL "$ingest_pid"; return; fi
  "$INGEST" query --data "$data" '{service_name=~".+"}' --limit 0 --format jsonl >"$WORK/$name.jsonl" 2>"$WORK/$name.query.log"
  logql_checks "$name" "$data"
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

# Logs written inside spans carry trace and span ids (the traces go to
# log-ingest too, which counts and acknowledges them): --trace-id finds them.
LOGS_SIGNALS=traces,logs logs_run "logs-own-traced" "$CLIENT" grpc --count 8 --seed logs-traced --service shop

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
