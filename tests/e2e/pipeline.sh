#!/usr/bin/env bash
# End-to-end tests of the processing stage: real OpenTelemetry SDK traffic
# (tests/e2e/client/send.mjs) -> otlp-recv --out unix:SOCKET -> tel-batch
# listening on that socket -> one file per signal, checked item for item
# against what the SDK says it sent (check.mjs). Then the same with a span
# filter, and with tel-batch killed (-9) while it holds unacknowledged frames.
# Ends with "N passed, N failed, N skipped".
source "$(dirname "$0")/lib.bash"
CLIENT=$E2E_ROOT/tests/e2e/client
BATCH=$BIN_DIR/tel-batch/tel-batch

for bin in "$RECV" "$TELCAT" "$BATCH"; do
  [ -x "$bin" ] || { fail "$bin is not built"; summary; exit 1; }
done
if npm_install "$CLIENT"; then pass "npm ci (tests/e2e/client)"; else fail "npm ci (tests/e2e/client)" "$WORK/npm-client.log"; summary; exit 1; fi

# start_batch NAME [flags...]: tel-batch on $WORK/NAME.sock, one file per
# signal ($WORK/NAME.{traces,metrics,logs}); sets BATCH_PID BATCH_ADMIN.
start_batch() {
  local name=$1; shift
  BATCH_ADMIN=$(free_port)
  "$BATCH" --in "listen:unix:$WORK/$name.sock" --admin-listen "127.0.0.1:$BATCH_ADMIN" \
    --traces-out "$WORK/$name.traces" --metrics-out "$WORK/$name.metrics" --logs-out "$WORK/$name.logs" \
    "$@" >>"$WORK/$name.batch.log" 2>&1 &
  BATCH_PID=$!
  PIDS+=("$BATCH_PID")
  wait_http "http://127.0.0.1:$BATCH_ADMIN/readyz" 10
}

# to_json NAME: the three output files as tel-cat JSON lines in $WORK/NAME.jsonl;
# fails when a file holds another signal than its own.
to_json() {
  local name=$1 signal
  : >"$WORK/$name.jsonl"
  for signal in traces metrics logs; do
    [ -f "$WORK/$name.$signal" ] || continue
    "$TELCAT" "$WORK/$name.$signal" >>"$WORK/$name.jsonl" 2>>"$WORK/$name.telcat.log" || return 1
    if "$TELCAT" --summary "$WORK/$name.$signal" | grep '^seq=' | grep -v " $signal " >>"$WORK/$name.telcat.log"; then
      echo "$WORK/$name.$signal holds frames of another signal" >>"$WORK/$name.telcat.log"
      return 1
    fi
  done
}

# send NAME PROTOCOL [send.mjs flags...]: the SDK client into the receiver.
send() {
  local name=$1 proto=$2; shift 2
  local endpoint="http://127.0.0.1:$HTTP_PORT"
  [ "$proto" = grpc ] && endpoint="http://127.0.0.1:$GRPC_PORT"
  timeout 180 node "$CLIENT/send.mjs" --endpoint "$endpoint" --protocol "$proto" \
    --manifest "$WORK/$name.manifest.json" "$@" >"$WORK/$name.send.log" 2>&1
}

# run_pipeline NAME PROTOCOL [tel-batch flags...]: one whole run; leaves the
# outputs as JSON lines in $WORK/NAME.jsonl. Returns non-zero on a failure
# it already reported.
run_pipeline() {
  local name=$1 proto=$2; shift 2
  if ! start_batch "$name" "$@"; then fail "$name: tel-batch did not start" "$WORK/$name.batch.log"; return 1; fi
  if ! start_recv "$name" "unix:$WORK/$name.sock"; then fail "$name: otlp-recv did not start" "$WORK/$name.log"; return 1; fi
  send "$name" "$proto" --count 15 --seed "pipeline-$name" --service shop
  local rc=$?
  stop_pid "$RECV_PID"  # drains: waits for tel-batch's acknowledgements
  local recv_rc=$?
  local received
  received=$(metric "$BATCH_ADMIN" 'tel_batch_received_items_total{signal="traces"}')
  stop_pid "$BATCH_PID"  # flushes every batch
  local batch_rc=$?
  [ "$rc" = 0 ] || { fail "$name: the SDK reported failures (rc=$rc)" "$WORK/$name.send.log"; return 1; }
  [ "$recv_rc" = 0 ] || { fail "$name: otlp-recv exited $recv_rc after SIGTERM" "$WORK/$name.log"; return 1; }
  [ "$batch_rc" = 0 ] || { fail "$name: tel-batch exited $batch_rc after SIGTERM" "$WORK/$name.batch.log"; return 1; }
  [ "${received:-0}" -gt 0 ] || { fail "$name: tel-batch's /metrics showed no received spans"; return 1; }
  to_json "$name" || { fail "$name: the outputs could not be read back" "$WORK/$name.telcat.log"; return 1; }
}

# check NAME: check.mjs against the manifest.
check() {
  node "$CLIENT/check.mjs" --manifest "$WORK/$1.manifest.json" --stream-json "$WORK/$1.jsonl" >"$WORK/$1.check.log" 2>&1
}

for proto in grpc http/protobuf; do
  name=routed-${proto//\//-}
  if run_pipeline "$name" "$proto" --resource-attr upsert:deployment.environment=e2e; then
    if check "$name"; then
      pass "$name: every span, metric and log record of the SDK arrived, split by signal ($(tail -n 1 "$WORK/$name.check.log"))"
    else
      fail "$name: the outputs differ from what the SDK sent" "$WORK/$name.check.log"
    fi
    if grep -q '"deployment.environment","value":{"stringValue":"e2e"}' "$WORK/$name.jsonl"; then
      pass "$name: the resource attribute was added"
    else
      fail "$name: no deployment.environment resource attribute in the outputs"
    fi
  fi
done

# A filter: the INTERNAL spans are dropped, every other span arrives, and the
# metrics and logs are untouched.
name=filtered
if run_pipeline "$name" grpc --drop-spans 'kind == internal'; then
  if node -e '
    const fs = require("fs");
    const m = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const got = new Map();
    for (const line of fs.readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean)) {
      const f = JSON.parse(line);
      for (const rs of f.payload?.resourceSpans ?? [])
        for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) got.set(s.spanId, s.kind ?? 0);
    }
    const want = m.traces.spans.filter((s) => s.kind !== "INTERNAL");
    const missing = want.filter((s) => !got.has(s.spanId));
    const internal = [...got.values()].filter((k) => k === 1).length;
    console.log(`${want.length} non-internal spans sent, ${got.size} received, ${missing.length} missing, ${internal} internal`);
    process.exit(missing.length === 0 && internal === 0 && got.size === want.length ? 0 : 1);
  ' "$WORK/$name.manifest.json" "$WORK/$name.jsonl" >"$WORK/$name.check.log" 2>&1; then
    pass "$name: exactly the internal spans were dropped ($(cat "$WORK/$name.check.log"))"
  else
    fail "$name: the filter dropped the wrong spans" "$WORK/$name.check.log"
  fi
fi

# kill -9 of tel-batch while it holds frames it has not acknowledged (they
# wait in a batch that only closes after 10 minutes): otlp-recv keeps them,
# resends them to the next tel-batch, and every item arrives exactly once.
name=killed
if start_batch "$name" --batch-timeout 600000 && start_recv "$name" "unix:$WORK/$name.sock"; then
  send "$name" grpc --count 20 --seed "pipeline-$name" --service shop
  rc=$?
  spans=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).counts.spans)' \
    "$WORK/$name.manifest.json" 2>/dev/null)
  for i in $(seq 100); do
    [ "$(metric "$BATCH_ADMIN" 'tel_batch_received_items_total{signal="traces"}')" -ge "${spans:-1}" ] && break
    sleep 0.1
  done
  held=$(metric "$BATCH_ADMIN" tel_batch_unacknowledged_input_frames)
  kill -KILL "$BATCH_PID"
  wait "$BATCH_PID" 2>/dev/null
  written=$(cat "$WORK/$name".{traces,metrics,logs} 2>/dev/null | wc -c)
  start_batch "$name" || fail "$name: tel-batch did not start again" "$WORK/$name.batch.log"
  stop_pid "$RECV_PID"
  recv_rc=$?
  stop_pid "$BATCH_PID"
  if [ "$rc" = 0 ] && [ "$recv_rc" = 0 ] && [ "${held:-0}" -gt 0 ] && [ "$written" = 0 ] && to_json "$name" &&
    check "$name"; then
    pass "$name: tel-batch killed with $held frames unacknowledged; otlp-recv resent them and every item arrived once ($(tail -n 1 "$WORK/$name.check.log"))"
  else
    fail "$name: items lost or duplicated across kill -9 (send rc=$rc, otlp-recv rc=$recv_rc, held=$held, written before the kill=$written)" "$WORK/$name.check.log"
  fi
else
  fail "$name: the pipeline did not start" "$WORK/$name.batch.log"
fi

summary
