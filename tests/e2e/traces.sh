#!/usr/bin/env bash
# End-to-end tests of the trace store: real OpenTelemetry SDK traffic
# (tests/e2e/client/send.mjs, and ../shared/clients/otel-js when present)
# over gRPC, HTTP/protobuf and HTTP/JSON -> otlp-recv -> its stream ->
# trace-store. Every trace of the manifest is read back with
# `trace-store get` and checked with check.mjs (every span, parent, attribute,
# event, link and status; the metrics and logs frames of the same stream are
# passed through so that check.mjs sees a whole run), and the span metrics
# written with --metrics-out count exactly the manifest's spans.
# Ends with "N passed, N failed, N skipped".
source "$(dirname "$0")/lib.bash"
CLIENT=$E2E_ROOT/tests/e2e/client
TS=$BIN_DIR/trace-store/trace-store

for bin in "$RECV" "$TELCAT" "$TS"; do
  [ -x "$bin" ] || { fail "$bin is not built"; summary; exit 1; }
done
if npm_install "$CLIENT"; then pass "npm ci (tests/e2e/client)"; else fail "npm ci (tests/e2e/client)" "$WORK/npm-client.log"; summary; exit 1; fi

# traces_run NAME CLIENT_DIR PROTOCOL [send.mjs flags...]
traces_run() {
  local name=$1 dir=$2 proto=$3; shift 3
  local stream=$WORK/$name.stream
  if ! start_recv "$name" "$stream"; then fail "$name: otlp-recv did not start" "$WORK/$name.log"; return; fi
  local endpoint="http://127.0.0.1:$HTTP_PORT"
  [ "$proto" = grpc ] && endpoint="http://127.0.0.1:$GRPC_PORT"
  timeout 180 node "$dir/send.mjs" --endpoint "$endpoint" --protocol "$proto" --manifest "$WORK/$name.manifest.json" \
    "$@" >"$WORK/$name.send.log" 2>&1
  local rc=$?
  stop_pid "$RECV_PID"
  [ "$rc" = 0 ] || { fail "$name: the SDK reported failures (rc=$rc)" "$WORK/$name.send.log"; return; }
  # The whole stream (traces, metrics, logs) into the store; it exits at EOF.
  if ! timeout 60 "$TS" --data "$WORK/$name.db" --in "$stream" --admin-listen '' \
      --metrics-out "$WORK/$name.spanmetrics" >"$WORK/$name.ts.log" 2>&1; then
    fail "$name: trace-store failed" "$WORK/$name.ts.log"; return
  fi
  # Metrics and logs as received, traces as the store returns them.
  "$TELCAT" --signal metrics,logs "$stream" >"$WORK/$name.jsonl" 2>"$WORK/$name.telcat.log"
  local ids missing=0
  ids=$(node -e '
    const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const ids = new Set(m.traces?.traceIds ?? (m.traces?.spans ?? []).map((s) => s.traceId));
    console.log([...ids].join("\n"));' "$WORK/$name.manifest.json")
  for id in $ids; do
    if out=$("$TS" get --data "$WORK/$name.db" "$id" 2>>"$WORK/$name.get.log"); then
      printf '{"signal":"traces","payload":%s}\n' "$out" >>"$WORK/$name.jsonl"
    else
      missing=$((missing + 1))
    fi
  done
  [ "$missing" = 0 ] || fail "$name: $missing trace(s) not found by id" "$WORK/$name.get.log"
  if node "$CLIENT/check.mjs" --manifest "$WORK/$name.manifest.json" --stream-json "$WORK/$name.jsonl" \
      >"$WORK/$name.check.log" 2>&1; then
    pass "$name: every trace came back by id with every span intact ($(tail -n 1 "$WORK/$name.check.log"))"
  else
    fail "$name: traces read back differ from what the SDK sent" "$WORK/$name.check.log"
  fi
  local want got
  want=$(node -e 'const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(m.counts?.spans ?? (m.traces?.spans ?? []).length)' "$WORK/$name.manifest.json")
  got=$("$TELCAT" "$WORK/$name.spanmetrics" 2>/dev/null | jq -s '[.[] | select(.payload) ] | last |
    [.payload.resourceMetrics[].scopeMetrics[].metrics[] | select(.name == "traces_spanmetrics_calls_total") |
     .sum.dataPoints[].asInt | tonumber] | add')
  if [ "$got" = "$want" ]; then
    pass "$name: traces_spanmetrics_calls_total sums to the manifest's $want spans"
  else
    fail "$name: span metrics count $got calls, the manifest has $want spans"
  fi
}

for proto in grpc http/protobuf http/json; do
  slug=${proto//\//-}
  traces_run "own-$slug" "$CLIENT" "$proto" --count 12 --seed "traces-$slug" --service shop
done

if prepare_shared_client; then
  for proto in grpc http/protobuf http/json; do
    slug=${proto//\//-}
    traces_run "shared-$slug" "$SHARED_CLIENT" "$proto" --count 10 --seed "shared-traces-$slug" --service otel-js
  done
fi

# Bad input: a stream with damaged frames is read past them (they are
# skipped and counted); random bytes are refused with a clear error, exit 1,
# never a crash.
if [ -f "$WORK/own-grpc.stream" ]; then
  cp "$WORK/own-grpc.stream" "$WORK/damaged.stream"
  size=$(stat -c %s "$WORK/damaged.stream")
  printf 'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX' | dd of="$WORK/damaged.stream" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
  if timeout 30 "$TS" --data "$WORK/damaged.db" --in "$WORK/damaged.stream" --admin-listen '' >"$WORK/damaged.log" 2>&1; then
    pass "bad input: a stream with a damaged frame is stored past it"
  else
    fail "bad input: trace-store failed on a damaged stream" "$WORK/damaged.log"
  fi
fi
head -c 5000 /dev/urandom >"$WORK/garbage.stream"
timeout 30 "$TS" --data "$WORK/garbage.db" --in "$WORK/garbage.stream" --admin-listen '' >"$WORK/garbage.log" 2>&1
rc=$?
if [ "$rc" = 1 ] && grep -q 'error: input' "$WORK/garbage.log"; then
  pass "bad input: random bytes are refused with a clear error (exit 1)"
else
  fail "bad input: random bytes gave exit $rc" "$WORK/garbage.log"
fi

summary
