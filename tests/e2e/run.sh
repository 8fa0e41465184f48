#!/usr/bin/env bash
# End-to-end tests: real OpenTelemetry SDK traffic -> otlp-recv -> stream ->
# tel-cat, checked item for item against what the SDK says it sent; stream
# round trips; tel-cat --send into a second otlp-recv.
# Uses the project's own client (tests/e2e/client) always, and the shared
# client (../shared/clients/otel-js) too when it exists.
source "$(dirname "$0")/lib.bash"
CLIENT=$E2E_ROOT/tests/e2e/client

for bin in "$RECV" "$TELCAT"; do
  [ -x "$bin" ] || { fail "$bin is not built"; summary; exit 1; }
done

if npm_install "$CLIENT"; then pass "npm ci (tests/e2e/client)"; else fail "npm ci (tests/e2e/client)" "$WORK/npm-client.log"; summary; exit 1; fi

# sdk_run NAME CLIENT_DIR PROTOCOL [send flags...]: one receiver, one send,
# then the stream as JSON checked against the manifest.
sdk_run() {
  local name=$1 dir=$2 proto=$3; shift 3
  local stream=$WORK/$name.stream
  if ! start_recv "$name" "$stream"; then fail "$name: otlp-recv did not start" "$WORK/$name.log"; return; fi
  local endpoint="http://127.0.0.1:$HTTP_PORT"
  [ "$proto" = grpc ] && endpoint="http://127.0.0.1:$GRPC_PORT"
  timeout 180 node "$dir/send.mjs" --endpoint "$endpoint" --protocol "$proto" --manifest "$WORK/$name.manifest.json" \
    "$@" >"$WORK/$name.send.log" 2>&1
  local rc=$?
  local received
  received=$(curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null | grep -c '^otlp_recv_received_items_total' || true)
  stop_pid "$RECV_PID"
  local stop_rc=$?
  if [ "$rc" != 0 ]; then fail "$name: the SDK reported failures (rc=$rc)" "$WORK/$name.send.log"; return; fi
  [ "$stop_rc" = 0 ] || fail "$name: otlp-recv exited $stop_rc after SIGTERM" "$WORK/$name.log"
  if ! "$TELCAT" "$stream" >"$WORK/$name.jsonl" 2>"$WORK/$name.telcat.log"; then
    fail "$name: tel-cat could not read the stream" "$WORK/$name.telcat.log"; return
  fi
  if node "$CLIENT/check.mjs" --manifest "$WORK/$name.manifest.json" --stream-json "$WORK/$name.jsonl" \
      >"$WORK/$name.check.log" 2>&1; then
    pass "$name: every span, metric and log record of the SDK arrived ($(tail -n 1 "$WORK/$name.check.log"))"
  else
    fail "$name: stream differs from what the SDK sent" "$WORK/$name.check.log"
  fi
  [ "$received" -gt 0 ] || fail "$name: /metrics showed no received items"
}

for proto in grpc http/protobuf http/json; do
  slug=${proto//\//-}
  sdk_run "own-$slug" "$CLIENT" "$proto" --count 12 --seed "e2e-$slug" --service shop
  sdk_run "own-gzip-$slug" "$CLIENT" "$proto" --count 30 --seed "gz-$slug" --service shop --compression gzip
done

# Negative control: the checker notices a lost span and a changed log body
# in real SDK output, so the passes above mean something.
if [ -f "$WORK/own-grpc.jsonl" ]; then
  node -e '
    const fs = require("fs");
    const lines = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
    const t = lines.find((l) => l.signal === "traces");
    t.payload.resourceSpans[0].scopeSpans[0].spans.shift();
    const l = lines.find((l) => l.signal === "logs");
    l.payload.resourceLogs[0].scopeLogs[0].logRecords[0].body = { stringValue: "tampered" };
    fs.writeFileSync(process.argv[2], lines.map((x) => JSON.stringify(x)).join("\n") + "\n");' \
    "$WORK/own-grpc.jsonl" "$WORK/tampered.jsonl"
  node "$CLIENT/check.mjs" --manifest "$WORK/own-grpc.manifest.json" --stream-json "$WORK/tampered.jsonl" \
    >"$WORK/tampered.check.log" 2>&1
  rc=$?
  if [ "$rc" = 1 ] && grep -q "missing span" "$WORK/tampered.check.log" && grep -qi "body" "$WORK/tampered.check.log"; then
    pass "negative control: the checker reports a removed span and a changed log body"
  else
    fail "negative control: the checker did not notice tampering (rc=$rc)" "$WORK/tampered.check.log"
  fi
fi

# The shared client, as it is, from a private copy (shared/ may be read-only).
if [ -f "$SHARED/clients/otel-js/send.mjs" ]; then
  cp -r "$SHARED/clients/otel-js" "$WORK/shared-client"
  rm -rf "$WORK/shared-client/node_modules" "$WORK/shared-client/.test-out"
  if npm_install "$WORK/shared-client"; then
    for proto in grpc http/protobuf http/json; do
      slug=${proto//\//-}
      sdk_run "shared-$slug" "$WORK/shared-client" "$proto" --count 10 --seed "shared-$slug" --service otel-js
    done
    sdk_run "shared-gzip-grpc" "$WORK/shared-client" grpc --count 40 --batch-size 64 --compression gzip --seed gz
  else
    fail "npm ci of the shared client" "$WORK/npm-shared-client.log"
  fi
else
  skip "shared OpenTelemetry client: $SHARED/clients/otel-js not found (fresh clone without ../shared)"
fi

# Round trip: stream -> JSON -> stream is byte-identical. The JSON-received
# stream is canonical protobuf (otlp-recv's own encoding) and needs nothing
# special; SDK protobuf payloads carry explicit default values and need
# --exact, which keeps their bytes next to the readable JSON.
roundtrip() {
  local src=$1 flags=$2 s=$WORK/$1.stream
  [ -f "$s" ] || { fail "round trip $src: no stream"; return; }
  # shellcheck disable=SC2086
  if "$TELCAT" $flags "$s" | "$TELCAT" --from-json -o "$WORK/$src.rt.stream" 2>"$WORK/$src.rt.log" \
      && cmp -s "$s" "$WORK/$src.rt.stream"; then
    pass "round trip $src ${flags:-(plain)}: stream -> JSON -> stream is byte-identical ($(stat -c %s "$s") bytes)"
  else
    cmp "$s" "$WORK/$src.rt.stream" >>"$WORK/$src.rt.log" 2>&1
    fail "round trip $src ${flags}: stream -> JSON -> stream differs" "$WORK/$src.rt.log"
  fi
}
roundtrip own-http-json ""
roundtrip own-grpc --exact
roundtrip own-gzip-http-protobuf --exact

# tel-cat --send into a second otlp-recv reproduces the same payloads.
payloads() { "$TELCAT" "$1" | node -e '
  const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean).map(JSON.parse);
  for (const l of lines) if (l.signal) console.log(l.signal + " " + JSON.stringify(l.payload ?? l.payloadBase64));'; }
for proto in grpc http/protobuf http/json; do
  slug=${proto//\//-}
  src=$WORK/own-grpc.stream
  [ -f "$src" ] || continue
  if start_recv "send-$slug" "$WORK/send-$slug.stream"; then
    ep="http://127.0.0.1:$HTTP_PORT"; [ "$proto" = grpc ] && ep="127.0.0.1:$GRPC_PORT"
    "$TELCAT" --send "$ep" --protocol "$proto" "$src" 2>"$WORK/send-$slug.telcat.log"
    rc=$?
    stop_pid "$RECV_PID"
    if [ "$rc" = 0 ] && diff <(payloads "$src") <(payloads "$WORK/send-$slug.stream") >"$WORK/send-$slug.diff" 2>&1; then
      pass "tel-cat --send over $proto reproduces the stream's $(payloads "$src" | wc -l) payloads"
    else
      fail "tel-cat --send over $proto (rc=$rc)" "$WORK/send-$slug.telcat.log"
      tail -n 5 "$WORK/send-$slug.diff"
    fi
  else
    fail "send-$slug: otlp-recv did not start" "$WORK/send-$slug.log"
  fi
done

summary
