#!/usr/bin/env bash
# End-to-end tests of the trace store: real OpenTelemetry SDK traffic
# (tests/e2e/client/send.mjs, and ../shared/clients/otel-js when present)
# over gRPC, HTTP/protobuf and HTTP/JSON -> otlp-recv -> its stream ->
# trace-store. Every trace of the manifest is read back with
# `trace-store get` and checked with check.mjs (every span, parent, attribute,
# event, link and status; the metrics and logs frames of the same stream are
# passed through so that check.mjs sees a whole run), and the span metrics
# written with --metrics-out count exactly the manifest's spans. TraceQL
# finds every trace by its root span's service, name and kind through
# `tel-query traceql` and Tempo's /api/search (`tel-query serve
# --traces-data`), `{ status = error }` finds exactly the traces with an
# error span, and /api/traces/<id> returns every span of each.
# Ends with "N passed, N failed, N skipped".
source "$(dirname "$0")/lib.bash"
CLIENT=$E2E_ROOT/tests/e2e/client
TS=$BIN_DIR/trace-store/trace-store
TQ=$BIN_DIR/tel-query/tel-query

for bin in "$RECV" "$TELCAT" "$TS" "$TQ"; do
  [ -x "$bin" ] || { fail "$bin is not built"; summary; exit 1; }
done
if npm_install "$CLIENT"; then pass "npm ci (tests/e2e/client)"; else fail "npm ci (tests/e2e/client)" "$WORK/npm-client.log"; summary; exit 1; fi

# traceql_check NAME: the manifest's traces found by TraceQL (tel-query
# traceql and /api/search of tel-query serve) and by id over the Tempo API.
traceql_check() {
  local name=$1 db=$WORK/$1.db manifest=$WORK/$1.manifest.json port pid
  port=$(free_port)
  "$TQ" serve --traces-data "$db" --tempo-listen "127.0.0.1:$port" --admin-listen '' >"$WORK/$name.serve.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  if ! wait_http "http://127.0.0.1:$port/ready" 10; then fail "$name: tel-query serve did not start" "$WORK/$name.serve.log"; return; fi
  # One line per trace: id, root service, root name, kind (lowercase), span count.
  jq -r '.traces.spans | group_by(.traceId)[] |
    ((map(select(.parentSpanId == "")) + .)[0]) as $r |
    [$r.traceId, $r.service, $r.name, ($r.kind | ascii_downcase), length] | @tsv' "$manifest" >"$WORK/$name.roots.tsv"
  local id svc span kind n q bad_cli=0 bad_api=0 bad_get=0 total=0
  while IFS=$'\t' read -r id svc span kind n; do
    total=$((total + 1))
    q=$(jq -rn --arg s "$svc" --arg n "$span" --arg k "$kind" '"{ resource.service.name = \($s | tojson) && name = \($n | tojson) && kind = \($k) }"')
    "$TQ" traceql "$q" --traces-data "$db" --limit 100000 -o json 2>>"$WORK/$name.traceql.log" |
      jq -e --arg id "$id" 'any(.traces[]; .traceID == $id)' >/dev/null || { bad_cli=$((bad_cli + 1)); echo "tel-query traceql missed $id: $q" >>"$WORK/$name.traceql.log"; }
    curl -fsS -G "http://127.0.0.1:$port/api/search" --data-urlencode "q=$q" --data-urlencode limit=100000 2>>"$WORK/$name.traceql.log" |
      jq -e --arg id "$id" 'any(.traces[]; .traceID == $id)' >/dev/null || { bad_api=$((bad_api + 1)); echo "/api/search missed $id: $q" >>"$WORK/$name.traceql.log"; }
    curl -fsS "http://127.0.0.1:$port/api/traces/$id" 2>>"$WORK/$name.traceql.log" |
      jq -e --argjson n "$n" '[.batches[].scopeSpans[].spans[]] | length == $n' >/dev/null || { bad_get=$((bad_get + 1)); echo "/api/traces/$id: not $n spans" >>"$WORK/$name.traceql.log"; }
  done <"$WORK/$name.roots.tsv"
  if [ "$total" -gt 0 ] && [ "$bad_cli" = 0 ]; then pass "$name: tel-query traceql finds all $total traces by their root span"; else fail "$name: tel-query traceql missed $bad_cli of $total traces" "$WORK/$name.traceql.log"; fi
  if [ "$total" -gt 0 ] && [ "$bad_api" = 0 ]; then pass "$name: /api/search (TraceQL) finds all $total traces"; else fail "$name: /api/search missed $bad_api of $total traces" "$WORK/$name.traceql.log"; fi
  if [ "$total" -gt 0 ] && [ "$bad_get" = 0 ]; then pass "$name: /api/traces/<id> returns every span of all $total traces"; else fail "$name: /api/traces/<id> wrong for $bad_get of $total traces" "$WORK/$name.traceql.log"; fi
  # { status = error }: exactly the traces with an ERROR span.
  local want got
  want=$(jq -r '[.traces.spans[] | select(.statusCode == "ERROR") | .traceId] | unique | join(" ")' "$manifest")
  got=$(curl -fsS -G "http://127.0.0.1:$port/api/search" --data-urlencode 'q={ status = error }' --data-urlencode limit=100000 |
    jq -r '[.traces[].traceID] | sort | join(" ")')
  if [ "$want" = "$got" ]; then pass "$name: { status = error } finds exactly the traces with an error span"; else fail "$name: { status = error } found '$got', want '$want'"; fi
  stop_pid "$pid" >/dev/null
}

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
  traceql_check "$name"
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
