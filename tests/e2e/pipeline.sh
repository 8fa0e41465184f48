#!/usr/bin/env bash
# End-to-end tests of the processing stage: real OpenTelemetry SDK traffic
# (tests/e2e/client/send.mjs) -> otlp-recv --out unix:SOCKET -> tel-batch
# listening on that socket -> one file per signal, checked item for item
# against what the SDK says it sent (check.mjs). Then the same with a span
# filter, and with tel-batch killed (-9) while it holds unacknowledged frames.
# Then delivery under failure with the on-disk spool (--spool-dir), SDK ->
# otlp-recv -> tel-batch -> a downstream consumer (tel-cat listen:unix:,
# which acknowledges frames once written): tel-batch killed mid-run,
# the consumer killed mid-run, the consumer away for 30 s, and a consumer
# that never acknowledges (the spool fills, backpressure reaches the SDK
# clients). PIPELINE_ONLY=REGEX runs only the scenarios whose name matches.
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

# metric_sum ADMIN_PORT NAME: the sum of every sample of NAME, whatever its labels.
metric_sum() {
  curl -fsS "http://127.0.0.1:$1/metrics" | awk -v k="$2" '$1 == k || index($1, k "{") == 1 { s += $2 } END { print s + 0 }'
}

# want NAME: whether to run scenario NAME (PIPELINE_ONLY).
want() { [[ $1 =~ ${PIPELINE_ONLY:-.} ]]; }

for proto in grpc http/protobuf; do
  name=routed-${proto//\//-}
  want "$name" || continue
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
if want "$name" && run_pipeline "$name" grpc --drop-spans 'kind == internal'; then
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
if ! want "$name"; then :
elif start_batch "$name" --batch-timeout 600000 && start_recv "$name" "unix:$WORK/$name.sock"; then
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

# ----------------------------------------------------------- the spool
# Shared client: used for every other round when ../shared is there.
SHARED_CLIENT=
if [ -f "$SHARED/clients/otel-js/send.mjs" ]; then
  cp -r "$SHARED/clients/otel-js" "$WORK/shared-client"
  rm -rf "$WORK/shared-client/node_modules" "$WORK/shared-client/.test-out"
  if npm_install "$WORK/shared-client"; then SHARED_CLIENT=$WORK/shared-client
  else fail "npm ci of the shared client" "$WORK/npm-shared-client.log"; fi
else
  skip "spool scenarios use only tests/e2e/client: $SHARED/clients/otel-js not found (fresh clone without ../shared)"
fi

# start_consumer NAME: tel-cat on $WORK/NAME.down.sock appending to
# $WORK/NAME.down; sets CONSUMER_PID.
start_consumer() {
  "$TELCAT" "listen:unix:$WORK/$1.down.sock" -o "$WORK/$1.down" 2>>"$WORK/$1.consumer.log" &
  CONSUMER_PID=$!
  PIDS+=("$CONSUMER_PID")
  sleep 0.2
}

# start_spooled NAME [flags...]: tel-batch from $WORK/NAME.sock to the
# consumer's socket, spooling in $WORK/NAME.spool; sets BATCH_PID BATCH_ADMIN.
start_spooled() {
  local name=$1; shift
  BATCH_ADMIN=$(free_port)
  "$BATCH" --in "listen:unix:$WORK/$name.sock" --admin-listen "127.0.0.1:$BATCH_ADMIN" \
    --out "unix:$WORK/$name.down.sock" --spool-dir "$WORK/$name.spool" "$@" >>"$WORK/$name.batch.log" 2>&1 &
  BATCH_PID=$!
  PIDS+=("$BATCH_PID")
  wait_http "http://127.0.0.1:$BATCH_ADMIN/readyz" 10
}

# spool_metric NAME SERIES: a tel_batch_spool_* gauge of NAME's output.
spool_metric() { metric "$BATCH_ADMIN" "tel_batch_spool_$2{output=\"unix:$WORK/$1.down.sock\"}"; }

# send_rounds NAME ROUNDS COUNT [PAUSE]: ROUNDS clients one after another
# (the shared client for every other round when present), each with its own
# services (NAME-rN...), seed and manifest $WORK/NAME-rN.manifest.json; the
# exit status of each in $WORK/NAME-rN.rc; $SEND_FLAGS are added to every
# client's flags, and $SEND_PROTO overrides the protocol (grpc for our
# client, http/protobuf for the shared one). Run it in the background.
send_rounds() {
  local name=$1 rounds=$2 count=$3 pause=${4:-0} r client proto
  for r in $(seq "$rounds"); do
    client=$CLIENT proto=grpc
    if [ -n "$SHARED_CLIENT" ] && [ $((r % 2)) = 0 ]; then client=$SHARED_CLIENT proto=http/protobuf; fi
    proto=${SEND_PROTO:-$proto}
    local endpoint="http://127.0.0.1:$HTTP_PORT"
    [ "$proto" = grpc ] && endpoint="http://127.0.0.1:$GRPC_PORT"
    timeout 180 node "$client/send.mjs" --endpoint "$endpoint" --protocol "$proto" --count "$count" \
      --seed "$name-r$r" --service "$name-r$r" --timeout-ms 60000 ${SEND_FLAGS:-} \
      --manifest "$WORK/$name-r$r.manifest.json" >"$WORK/$name-r$r.send.log" 2>&1
    echo $? >"$WORK/$name-r$r.rc"
    sleep "$pause"
  done
}

# verify NAME ROUNDS DETAIL: removes duplicates the way the stores do
# (dedupe_items.py: frames resent with the same writer id and sequence, and
# items identical to one seen before), then checks every round's manifest
# item for item against what the consumer wrote (other rounds' services
# ignored). Passes or fails with DETAIL.
verify() {
  local name=$1 rounds=$2 detail=$3 r bad=
  for r in $(seq "$rounds"); do
    [ "$(cat "$WORK/$name-r$r.rc" 2>/dev/null)" = 0 ] || bad="$bad round $r: client rc=$(cat "$WORK/$name-r$r.rc" 2>/dev/null);"
  done
  if ! "$TELCAT" "$WORK/$name.down" >"$WORK/$name.raw.jsonl" 2>>"$WORK/$name.telcat.log"; then
    fail "$name: the consumer's output could not be read" "$WORK/$name.telcat.log"; return
  fi
  python3 "$E2E_ROOT/tests/e2e/dedupe_items.py" "$WORK/$name.raw.jsonl" "$WORK/$name.jsonl" >"$WORK/$name.dedupe.log"
  : >"$WORK/$name.check.log"
  local passed=0
  for r in $(seq "$rounds"); do
    if node "$CLIENT/check.mjs" --manifest "$WORK/$name-r$r.manifest.json" --stream-json "$WORK/$name.jsonl" \
      --filter-services >>"$WORK/$name.check.log" 2>&1; then passed=$((passed + 1)); else bad="$bad round $r: check failed;"; fi
  done
  if [ -z "$bad" ]; then
    pass "$name: $detail; all $rounds rounds arrived item for item ($(cat "$WORK/$name.dedupe.log"))"
  else
    fail "$name: $detail; but$bad" "$WORK/$name.check.log"
    for r in $(seq "$rounds"); do tail -n 3 "$WORK/$name-r$r.send.log" | sed "s/^/      | r$r: /"; done
  fi
}

# wait_for_file PATH SECONDS
wait_for_file() { local i; for i in $(seq $(($2 * 10))); do [ -f "$1" ] && return 0; sleep 0.1; done; return 1; }

# finish NAME: stops otlp-recv (drains into tel-batch), tel-batch (drains into
# the consumer), then the consumer. Returns non-zero when a drain failed,
# with the reason in $out.
finish() {
  local recv_rc batch_rc
  stop_pid "$RECV_PID"; recv_rc=$?
  stop_pid "$BATCH_PID"; batch_rc=$?
  stop_pid "$CONSUMER_PID"
  out="otlp-recv rc=$recv_rc, tel-batch rc=$batch_rc"
  [ "$recv_rc" = 0 ] && [ "$batch_rc" = 0 ]
}

# (a) kill -9 of tel-batch mid-run, while its spool holds frames it
# acknowledged upstream but the consumer has not (the consumer is paused with
# SIGSTOP so that the spool is not empty at the kill); restarted on the same spool.
name=spool-batch-killed
if want "$name"; then
  start_consumer "$name"
  if start_spooled "$name" && start_recv "$name" "unix:$WORK/$name.sock"; then
    send_rounds "$name" 6 8 &
    loop=$!
    wait_for_file "$WORK/$name-r3.rc" 120
    kill -STOP "$CONSUMER_PID"
    for i in $(seq 100); do [ "$(spool_metric "$name" frames)" -gt 0 ] && break; sleep 0.1; done
    held=$(spool_metric "$name" frames)
    kill -KILL "$BATCH_PID"; wait "$BATCH_PID" 2>/dev/null
    kill -CONT "$CONSUMER_PID"
    start_spooled "$name" || fail "$name: tel-batch did not start again" "$WORK/$name.batch.log"
    recovered=$(spool_metric "$name" recovered_frames_total)
    wait "$loop"
    if finish && [ "${held:-0}" -gt 0 ] && [ "${recovered:-0}" -ge "$held" ]; then
      verify "$name" 6 "tel-batch killed with $held frames in its spool, $recovered recovered after the restart"
    else
      fail "$name: $out; spool frames at the kill: $held, recovered: $recovered" "$WORK/$name.batch.log"
    fi
  else
    fail "$name: the pipeline did not start" "$WORK/$name.batch.log"
  fi
fi

# (b) kill -9 of the consumer mid-run; a new one on the same socket gets what
# the first had not acknowledged.
name=spool-consumer-killed
if want "$name"; then
  start_consumer "$name"
  if start_spooled "$name" && start_recv "$name" "unix:$WORK/$name.sock"; then
    send_rounds "$name" 6 8 &
    loop=$!
    wait_for_file "$WORK/$name-r3.rc" 120
    kill -KILL "$CONSUMER_PID"; wait "$CONSUMER_PID" 2>/dev/null
    sleep 1
    down=$(metric "$BATCH_ADMIN" "tel_batch_output_connected{output=\"unix:$WORK/$name.down.sock\"}")
    start_consumer "$name"
    wait "$loop"
    if finish && [ "$down" = 0 ]; then
      verify "$name" 6 "the consumer was killed mid-run and restarted"
    else
      fail "$name: $out; connected while the consumer was away: $down" "$WORK/$name.batch.log"
    fi
  else
    fail "$name: the pipeline did not start" "$WORK/$name.batch.log"
  fi
fi

# (c) the consumer is away for DOWN_SECONDS (30): tel-batch spools, loses
# nothing, and the spool drains back to 0 once the consumer is there.
name=spool-consumer-away
if want "$name"; then
  DOWN_SECONDS=${DOWN_SECONDS:-30}
  started=$SECONDS
  if start_spooled "$name" && start_recv "$name" "unix:$WORK/$name.sock"; then
    send_rounds "$name" 4 8 3 &
    loop=$!
    peak=0
    while [ $((SECONDS - started)) -lt "$DOWN_SECONDS" ]; do
      f=$(spool_metric "$name" frames)
      [ "${f:-0}" -gt "$peak" ] && peak=$f
      sleep 0.5
    done
    start_consumer "$name"
    wait "$loop"
    drained=
    for i in $(seq 150); do [ "$(spool_metric "$name" frames)" = 0 ] && { drained=$((SECONDS - started)); break; }; sleep 0.1; done
    left=$(spool_metric "$name" frames)
    if finish && [ "$peak" -gt 0 ] && [ -n "$drained" ]; then
      verify "$name" 4 "consumer away ${DOWN_SECONDS}s, spool depth rose to $peak frames and was 0 again at ${drained}s"
    else
      fail "$name: $out; spool peak $peak frames, left $left" "$WORK/$name.batch.log"
    fi
  else
    fail "$name: the pipeline did not start" "$WORK/$name.batch.log"
  fi
fi

# (d) a consumer that reads but never acknowledges: the spool fills to its
# limit, tel-batch stops acknowledging, otlp-recv's queue fills and it
# refuses requests with retryable codes; then a good consumer replaces it
# and everything arrives. OTLP/HTTP clients: the JS SDK retries a 503 (with
# Retry-After) up to 5 times, while its gRPC exporter does not retry
# UNAVAILABLE at all, so with gRPC the refused items would be lost in the
# client, not in telkit.
name=spool-blackhole
if want "$name"; then
  python3 -c '
import os, socket, sys, threading
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); s.listen(8)
def drain(c):
    while c.recv(65536): pass
while True:
    c, _ = s.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()' "$WORK/$name.down.sock" &
  HOLE_PID=$!
  PIDS+=("$HOLE_PID")
  sleep 0.3
  if start_spooled "$name" --spool-max-bytes 256K --memory-soft-mib 1 --memory-hard-mib 2 --max-frame-bytes 1M \
      --batch-max-bytes 64K &&
    start_recv "$name" "unix:$WORK/$name.sock" --queue-bytes 1M --max-decompressed-bytes 1M --max-request-bytes 1M \
      --retry-after 1; then
    SEND_PROTO=http/protobuf SEND_FLAGS="--batch-size 64" send_rounds "$name" 3 250 &
    loop=$!
    full=0 refused=0
    for i in $(seq 600); do
      full=$(spool_metric "$name" full)
      refused=$(metric_sum "$ADMIN_PORT" otlp_recv_refused_requests_total)
      [ "$full" = 1 ] && [ "${refused:-0}" -gt 0 ] && break
      sleep 0.1
    done
    disk=$(spool_metric "$name" disk_bytes)
    got=$(metric_sum "$BATCH_ADMIN" tel_batch_received_bytes_total)
    queued=$(metric "$ADMIN_PORT" otlp_recv_queue_bytes)
    kill -KILL "$HOLE_PID"; wait "$HOLE_PID" 2>/dev/null
    start_consumer "$name"
    wait "$loop"
    if finish && [ "$full" = 1 ] && [ "${refused:-0}" -gt 0 ]; then
      verify "$name" 3 "a consumer that never acknowledged: the spool filled ($disk bytes, limit 256K) and otlp-recv refused $refused requests"
    else
      fail "$name: $out; spool full=$full ($disk bytes), tel-batch received $got bytes, otlp-recv queued $queued, refused $refused" "$WORK/$name.batch.log"
    fi
  else
    fail "$name: the pipeline did not start" "$WORK/$name.batch.log"
  fi
fi

summary
