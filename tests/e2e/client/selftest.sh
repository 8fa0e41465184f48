#!/usr/bin/env bash
# Self-test of the e2e test client (send.mjs, check.mjs) WITHOUT telkit:
# capture.mjs stands in for `otlp-recv | tel-cat` and writes the same JSON lines.
#
#   tests/e2e/client/selftest.sh        (needs node >= 20; runs `npm ci` if node_modules is missing)
#
# Servers listen on 127.0.0.1, on ports chosen by the kernel. Every wait is
# bounded; only processes started here are stopped, by PID. Logs and captures
# go to tests/e2e/client/.test-out/. Ends with "N passed, N failed".
# shellcheck disable=SC2016  # the node -e programs are single-quoted on purpose
set -u
cd "$(dirname "$0")" || exit 2

OUT=.test-out
rm -rf "$OUT"
mkdir -p "$OUT"
PASS=0
FAIL=0
SRV_PID=""
HTTP_PORT=""
GRPC_PORT=""
BASE_MS=1767225600000   # fixed time origin: identical manifests for identical seeds
T_START=$(date +%s%N)

pass() { PASS=$((PASS + 1)); echo "PASS  $1"; }
fail() {
  FAIL=$((FAIL + 1)); echo "FAIL  $1"
  if [ -n "${2:-}" ] && [ -f "$2" ]; then tail -n 25 "$2" | sed 's/^/      | /'; fi
}
skip() { echo "SKIP  $1"; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

stop_capture() {
  [ -n "$SRV_PID" ] || return 0
  if kill -0 "$SRV_PID" 2>/dev/null; then
    kill -TERM "$SRV_PID" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SRV_PID" 2>/dev/null && kill -KILL "$SRV_PID" 2>/dev/null
  fi
  wait "$SRV_PID" 2>/dev/null
  SRV_PID=""
}
trap stop_capture EXIT
trap 'stop_capture; exit 130' INT TERM

# start_capture NAME [capture.mjs options]: output $OUT/NAME.jsonl, $OUT/NAME.requests.jsonl, $OUT/NAME.raw/
start_capture() {
  local name=$1; shift
  stop_capture
  node capture.mjs --out "$OUT/$name.jsonl" --requests-log "$OUT/$name.requests.jsonl" --raw-dir "$OUT/$name.raw" \
    --max-seconds 90 "$@" >"$OUT/$name.capture.log" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 100); do
    if grep -q '^READY' "$OUT/$name.capture.log" 2>/dev/null; then
      HTTP_PORT=$(sed -n 's/^READY http=\([0-9-]*\) grpc=\([0-9-]*\).*/\1/p' "$OUT/$name.capture.log")
      GRPC_PORT=$(sed -n 's/^READY http=\([0-9-]*\) grpc=\([0-9-]*\).*/\2/p' "$OUT/$name.capture.log")
      return 0
    fi
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
  done
  fail "capture.mjs $name did not start" "$OUT/$name.capture.log"
  stop_capture
  return 1
}
endpoint() { if [ "$1" = grpc ]; then echo "http://127.0.0.1:$GRPC_PORT"; else echo "http://127.0.0.1:$HTTP_PORT"; fi; }
slug() { echo "$1" | tr '/' '-'; }

# send NAME PROTOCOL [send.mjs options]: manifest $OUT/NAME.manifest.json, log $OUT/NAME.send.log; sets RC, MS
send() {
  local name=$1 proto=$2; shift 2
  local t0; t0=$(date +%s%N)
  timeout 60 node send.mjs --protocol "$proto" --endpoint "$(endpoint "$proto")" --manifest "$OUT/$name.manifest.json" "$@" \
    >"$OUT/$name.send.log" 2>&1
  RC=$?
  MS=$(ms_since "$t0")
}
# check NAME MANIFEST STREAM [check.mjs options]: output $OUT/NAME.check.log; sets RC
check() {
  local name=$1 manifest=$2 stream=$3; shift 3
  timeout 60 node check.mjs --manifest "$manifest" --stream-json "$stream" "$@" >"$OUT/$name.check.log" 2>&1
  RC=$?
}

# ------------------------------------------------------------ dependencies
if [ ! -d node_modules/@opentelemetry/sdk-trace-base ] || [ ! -d node_modules/protobufjs ]; then
  if timeout 300 npm ci >"$OUT/npm-ci.log" 2>&1; then pass "npm ci"; else
    fail "npm ci" "$OUT/npm-ci.log"; echo; echo "$PASS passed, $FAIL failed"; exit 1
  fi
fi

# --------------------------------------------- 1. check.mjs on hand-written fixtures
check fixture-ok fixtures/manifest.json fixtures/stream-ok.jsonl
if [ "$RC" = 0 ] && grep -q ' 0 failed$' "$OUT/fixture-ok.check.log"; then
  pass "check.mjs: fixture stream matching its manifest passes ($(tail -n 1 "$OUT/fixture-ok.check.log"))"
else
  fail "check.mjs: fixture stream matching its manifest (rc=$RC)" "$OUT/fixture-ok.check.log"
fi
check fixture-bad fixtures/manifest.json fixtures/stream-bad.jsonl
if [ "$RC" = 1 ] \
  && grep -q 'missing span 0af7651916cd43dd8448eb211c80319c/00f067aa0ba902b7' "$OUT/fixture-bad.check.log" \
  && grep -q 'body.ms 1600 != 1500' "$OUT/fixture-bad.check.log" \
  && grep -q 'fx.requests {"route":"/items"}: value 6 != 7' "$OUT/fixture-bad.check.log" \
  && grep -q ' 3 failed$' "$OUT/fixture-bad.check.log"; then
  pass "check.mjs: fixture with a missing span, a changed log body and a wrong final metric value fails on exactly those"
else
  fail "check.mjs: negative fixture (rc=$RC)" "$OUT/fixture-bad.check.log"
fi
check fixture-badjson fixtures/manifest.json fixtures/stream-badjson.jsonl
RC1=$RC
check fixture-badjson-lenient fixtures/manifest.json fixtures/stream-badjson.jsonl --lenient-json
if [ "$RC1" = 1 ] && grep -q 'is not 32 lowercase hex digits' "$OUT/fixture-badjson.check.log" \
  && grep -q 'enum "SPAN_KIND_SERVER" is not an integer' "$OUT/fixture-badjson.check.log" \
  && grep -q 'asInt: 64-bit integer 7 is not a decimal string' "$OUT/fixture-badjson.check.log" \
  && grep -q ' 1 failed$' "$OUT/fixture-badjson.check.log" && [ "$RC" = 0 ]; then
  pass "check.mjs: OTLP/JSON form errors (upper-case id, enum name, int64 as number) reported; content still matches (--lenient-json passes)"
else
  fail "check.mjs: OTLP/JSON form fixture (rc=$RC1, lenient rc=$RC)" "$OUT/fixture-badjson.check.log"
fi

# ------------------------------------- 2. every protocol, --count 20, bearer token
TIMINGS=""
for proto in http/protobuf http/json grpc; do
  n="rt-$(slug "$proto")"
  start_capture "$n" || continue
  send "$n" "$proto" --count 20 --seed e2e --base-time-ms "$BASE_MS" --service shop --headers "authorization=Bearer%20tok-$(slug "$proto")"
  TIMINGS="$TIMINGS $proto=${MS}ms"
  if [ "$RC" = 0 ]; then pass "send.mjs $proto --count 20: exit 0 in $MS ms ($(grep -o '[0-9]* export call(s)' "$OUT/$n.send.log"))"
  else fail "send.mjs $proto --count 20 (rc=$RC)" "$OUT/$n.send.log"; fi
  stop_capture
  check "$n" "$OUT/$n.manifest.json" "$OUT/$n.jsonl"
  if [ "$RC" = 0 ]; then pass "check.mjs: $proto capture == manifest ($(tail -n 1 "$OUT/$n.check.log"))"
  else fail "check.mjs: $proto capture == manifest (rc=$RC)" "$OUT/$n.check.log"; fi
  if node -e '
      const fs = require("fs");
      const reqs = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse).filter((r) => r.signal);
      const bad = reqs.filter((r) => r.headers.authorization !== process.argv[2] || r.status !== 0 && r.status !== 200 || r.error);
      process.exit(reqs.length > 0 && bad.length === 0 ? 0 : 1);' "$OUT/$n.requests.jsonl" "Bearer tok-$(slug "$proto")"; then
    pass "$proto: every request carried 'authorization: Bearer tok-$(slug "$proto")' and was decoded"
  else
    fail "$proto: bearer token / decoding on every request" "$OUT/$n.requests.jsonl"
  fi
done

# same seed + base time => same manifest, whatever the protocol (generator/run aside)
if node -e '
    const fs = require("fs");
    const load = (f) => { const m = JSON.parse(fs.readFileSync(f, "utf8")); delete m.run; delete m.generator; return JSON.stringify(m); };
    const [a, b, c] = process.argv.slice(1).map(load);
    process.exit(a === b && b === c ? 0 : 1);' "$OUT/rt-http-protobuf.manifest.json" "$OUT/rt-http-json.manifest.json" "$OUT/rt-grpc.manifest.json" 2>/dev/null; then
  pass "same --seed and --base-time-ms give identical manifests over all three protocols"
else
  fail "identical manifests for identical seeds"
fi
if node -e '
    const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const kinds = new Set(m.traces.spans.map((s) => s.kind)), st = new Set(m.traces.spans.map((s) => s.statusCode));
    const sev = new Set(m.logs.records.map((r) => r.severityText));
    const types = new Set(m.metrics.streams.map((s) => s.type + "/" + s.instrument));
    const ok = kinds.size === 5 && st.size === 3 && sev.size === 6 && new Set(m.traces.spans.map((s) => s.service)).size === 3
      && m.traces.spans.some((s) => s.links.length) && m.traces.spans.some((s) => s.events.some((e) => e.name === "exception"))
      && m.logs.records.some((r) => typeof r.body === "object") && m.logs.records.some((r) => r.traceId === "")
      && ["Counter", "UpDownCounter", "Histogram", "Gauge", "ObservableGauge", "ObservableCounter", "ObservableUpDownCounter"]
        .every((i) => [...types].some((t) => t.endsWith("/" + i)));
    console.log(`${m.counts.traces} traces, ${m.counts.spans} spans, ${m.counts.metricStreams} metrics (${m.counts.metricDataPoints} points), ${m.counts.logRecords} log records`);
    process.exit(ok ? 0 : 1);' "$OUT/rt-grpc.manifest.json" >"$OUT/variety.log" 2>&1; then
  pass "traffic variety: 5 span kinds, 3 statuses, 3 services, links, exception events, 6 severities, map bodies, all instrument kinds ($(cat "$OUT/variety.log"))"
else
  fail "traffic variety" "$OUT/variety.log"
fi

# ------------------------------- 3. gzip + several requests per signal, every protocol
for proto in http/protobuf http/json grpc; do
  n="gzip-$(slug "$proto")"
  start_capture "$n" || continue
  send "$n" "$proto" --count 40 --batch-size 50 --compression gzip --seed "gz-$proto" --quiet
  stop_capture
  check "$n" "$OUT/$n.manifest.json" "$OUT/$n.jsonl"
  CRC=$RC
  if [ "$proto" = grpc ]; then ENC_FIELD=grpc; else ENC_FIELD=http; fi
  if node -e '
      const fs = require("fs");
      const all = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
      const reqs = all.filter((r) => r.signal);
      const traces = reqs.filter((r) => r.signal === "traces").length;
      const h2 = all.filter((r) => r.transport === "grpc-http2");   // HTTP/2 headers of the gRPC calls
      const gz = process.argv[2] === "grpc" ? h2.length === reqs.length && h2.every((r) => r.grpcEncoding === "gzip")
        : reqs.every((r) => r.contentEncoding === "gzip");
      process.exit(traces >= 2 && gz ? 0 : 1);' "$OUT/$n.requests.jsonl" "$ENC_FIELD" && [ "$CRC" = 0 ] && grep -q 'send.mjs: OK' "$OUT/$n.send.log"; then
    pass "$proto with gzip, --batch-size 50, --count 40: several requests per signal, all compressed, capture == manifest"
  else
    cat "$OUT/$n.send.log" >>"$OUT/$n.check.log" 2>/dev/null
    fail "$proto with gzip + batching (check rc=$CRC)" "$OUT/$n.check.log"
  fi
done

# -------------------------------------- 4. re-serialising the SDK's protobuf bytes
# telkit's own OTLP .proto files, for the (informational) libprotobuf comparison through protoc
PROTO_PATH=${PROTO_PATH:-../../../common/proto}
[ -d "$PROTO_PATH/opentelemetry" ] || PROTO_PATH=""
if timeout 60 node roundtrip.mjs "$OUT/rt-http-protobuf.raw" ${PROTO_PATH:+--proto-path "$PROTO_PATH"} >"$OUT/roundtrip.log" 2>&1 \
  && timeout 60 node roundtrip.mjs "$OUT/rt-grpc.raw" >"$OUT/roundtrip-grpc.log" 2>&1; then
  pass "raw HTTP/protobuf and gRPC request bodies: protobufjs decode+encode with common/proto gives the same bytes"
else
  cat "$OUT/roundtrip-grpc.log" >>"$OUT/roundtrip.log" 2>/dev/null
  fail "protobufjs round trip of raw request bodies" "$OUT/roundtrip.log"
fi
sed 's/^/      : /' "$OUT/roundtrip.log" | head -n 30

# ------------------------------------ 5. negative case on real traffic
if [ -f "$OUT/rt-http-json.jsonl" ]; then
  node -e '
    const fs = require("fs");
    const lines = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
    let span = null, body = null;
    for (const l of lines) {
      if (!span && l.signal === "traces") { const s = l.payload.resourceSpans[0].scopeSpans[0].spans; span = s.pop(); }
      if (!body && l.signal === "logs") {
        for (const r of l.payload.resourceLogs[0].scopeLogs[0].logRecords) if (!body && r.body.stringValue) { body = r.body.stringValue; r.body.stringValue += " (edited)"; }
      }
    }
    fs.writeFileSync(process.argv[2], lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    fs.writeFileSync(process.argv[3], `${span.traceId}/${span.spanId}\n`);' "$OUT/rt-http-json.jsonl" "$OUT/tampered.jsonl" "$OUT/tampered.span"
  check tampered "$OUT/rt-http-json.manifest.json" "$OUT/tampered.jsonl"
  if [ "$RC" = 1 ] && grep -q "missing span $(cat "$OUT/tampered.span")" "$OUT/tampered.check.log" \
     && grep -q '(edited)' "$OUT/tampered.check.log" && grep -q ' 2 failed$' "$OUT/tampered.check.log"; then
    pass "check.mjs on real traffic with one span removed and one log body edited: exactly those 2 checks fail"
  else
    fail "check.mjs negative case on real traffic (rc=$RC)" "$OUT/tampered.check.log"
  fi
fi

# ------------------------- 6. a manifest of the shared otel-js client (if present)
SHARED=/work/shared/clients/otel-js
if [ -f "$SHARED/send.mjs" ]; then
  mkdir -p "$OUT/shared"
  cp "$SHARED/send.mjs" "$OUT/shared/send.mjs"
  echo '{"type":"module","private":true}' >"$OUT/shared/package.json"
  ln -sfn "$PWD/node_modules" "$OUT/shared/node_modules"
  if start_capture shared; then
    t0=$(date +%s%N)
    timeout 60 node "$OUT/shared/send.mjs" --protocol http/protobuf --endpoint "http://127.0.0.1:$HTTP_PORT" --count 10 --seed 3 \
      --manifest "$OUT/shared.manifest.json" --quiet >"$OUT/shared.send.log" 2>&1
    SRC=$?
    stop_capture
    check shared "$OUT/shared.manifest.json" "$OUT/shared.jsonl"
    if [ "$SRC" = 0 ] && [ "$RC" = 0 ]; then pass "check.mjs reads a manifest of $SHARED/send.mjs ($(tail -n 1 "$OUT/shared.check.log"))"
    else fail "check.mjs with the shared client's manifest (send rc=$SRC, check rc=$RC)" "$OUT/shared.check.log"; fi
  fi
else
  skip "$SHARED/send.mjs not present: shared-manifest compatibility not tested"
fi

# ------------------------------------------ 7. send.mjs reports failures
start_capture closed && stop_capture   # two ports that nobody listens on now
send no-listener-http http/protobuf --count 2 --timeout-ms 1500
R1=$RC
send no-listener-grpc grpc --count 2 --timeout-ms 1500
if [ "$R1" = 1 ] && [ "$RC" = 1 ] && grep -q 'FAILURE \[traces-export\]' "$OUT/no-listener-http.send.log" \
   && grep -q 'FAILURE \[traces-export\]' "$OUT/no-listener-grpc.send.log"; then
  pass "nothing listening: send.mjs exits 1 over http/protobuf and grpc"
else
  fail "nothing listening (http rc=$R1, grpc rc=$RC)" "$OUT/no-listener-grpc.send.log"
fi
if start_capture http400 --http-status 400; then
  send http400 http/json --count 2 --timeout-ms 3000
  if [ "$RC" = 1 ] && grep -q 'FAILURE' "$OUT/http400.send.log"; then pass "HTTP 400 from the receiver: send.mjs exits 1"
  else fail "HTTP 400 from the receiver (rc=$RC)" "$OUT/http400.send.log"; fi
  stop_capture
fi
if start_capture grpc3 --grpc-status 3; then
  send grpc3 grpc --count 2 --timeout-ms 3000
  if [ "$RC" = 1 ] && grep -q 'INVALID_ARGUMENT' "$OUT/grpc3.send.log"; then pass "gRPC INVALID_ARGUMENT from the receiver: send.mjs exits 1"
  else fail "gRPC INVALID_ARGUMENT from the receiver (rc=$RC)" "$OUT/grpc3.send.log"; fi
  stop_capture
fi
if start_capture partial --partial-reject 1; then
  for proto in http/protobuf http/json grpc; do
    send "partial-$(slug "$proto")" "$proto" --count 2 --timeout-ms 3000
    if [ "$RC" = 1 ] && grep -q 'FAILURE \[partial-success\]' "$OUT/partial-$(slug "$proto").send.log"; then
      pass "partial_success with 1 rejected item over $proto: send.mjs exits 1"
    else
      fail "partial_success over $proto (rc=$RC)" "$OUT/partial-$(slug "$proto").send.log"
    fi
  done
  stop_capture
fi
timeout 20 node send.mjs --protocol carrier-pigeon >"$OUT/usage.log" 2>&1
R1=$?
timeout 20 node send.mjs --count 0 >>"$OUT/usage.log" 2>&1
R2=$?
timeout 20 node check.mjs --manifest fixtures/manifest.json >>"$OUT/usage.log" 2>&1
R3=$?
if [ "$R1$R2$R3" = 222 ]; then pass "bad usage: send.mjs and check.mjs exit 2 with a message"
else fail "bad usage exit status (got $R1$R2$R3, want 222)" "$OUT/usage.log"; fi

echo
echo "send --count 20 wall time (node start-up included):$TIMINGS; self-test took $(ms_since "$T_START") ms"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
