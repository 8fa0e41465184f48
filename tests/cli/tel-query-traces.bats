#!/usr/bin/env bats
# tel-query over traces: `serve --traces-data --tempo-listen` (Tempo's HTTP
# API), `trace ID` (the waterfall) and `traceql Q` (a table of matches),
# against a real store written by a real trace-store.

load helpers

setup() {
  TQ=$(telkit_bin tel-query)
  TS=$(telkit_bin trace-store)
  TELCAT=$(telkit_bin tel-cat)
  DATA="$TELKIT_REPO_DIR/tests/testdata/otlp"
  T=$BATS_TEST_TMPDIR
  TRACE=5b8efff798038103d269b633813fc60c
  tr -d '\n' <"$DATA/traces.json" >"$T/requests.jsonl"
  echo >>"$T/requests.jsonl"
  "$TELCAT" --from-json -o "$T/sample.stream" "$T/requests.jsonl"
  "$TS" --data "$T/traces" --in "$T/sample.stream" --admin-listen '' 2>/dev/null
}

teardown() {
  [[ -n ${PID:-} ]] && kill "$PID" 2>/dev/null || true
}

# start_tempo ARGS...: serve with only the Tempo API on an ephemeral port; sets PID, PORT.
start_tempo() {
  "$TQ" serve --tempo-listen 127.0.0.1:0 --admin-listen '' "$@" 2>"$T/serve.log" &
  PID=$!
  for _ in $(seq 100); do
    PORT=$(grep -oE 'Tempo API on 127.0.0.1:[0-9]+' "$T/serve.log" | grep -oE '[0-9]+$' || true)
    [[ -n $PORT ]] && return 0
    sleep 0.05
  done
  cat "$T/serve.log"
  return 1
}

@test "serve --traces-data: trace by id, TraceQL search, tags; SIGTERM exits 0" {
  start_tempo --traces-data "$T/traces"
  run curl -fsS "http://127.0.0.1:$PORT/api/traces/$TRACE"
  assert_success
  run jq '[.batches[].scopeSpans[].spans[]] | length' <<<"$output"
  assert_output 2
  run curl -fsS -G "http://127.0.0.1:$PORT/api/search" --data-urlencode 'q={ status = error } | select(span.db.system)' \
    --data-urlencode start=1699999990 --data-urlencode end=1700000100
  assert_success
  run jq -r '.traces[0].traceID, .traces[0].rootServiceName, .traces[0].rootTraceName, .traces[0].spanSet.spans[0].name' <<<"$output"
  assert_output "$TRACE
checkout
GET /cart
SELECT cart"
  run curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/search?q=%7B"
  assert_output 400
  run curl -fsS "http://127.0.0.1:$PORT/api/v2/search/tag/resource.service.name/values"
  assert_output '{"tagValues":[{"type":"string","value":"checkout"}]}'
  run curl -fsS "http://127.0.0.1:$PORT/api/echo"
  assert_output echo
  kill -TERM "$PID"
  wait "$PID"
  rc=$?
  PID=
  [[ $rc == 0 ]]
}

@test "serve: --traces-data alone serves no Prometheus API; --tempo-listen '' needs --data" {
  start_tempo --traces-data "$T/traces"
  run grep -c 'Prometheus API on' "$T/serve.log"
  assert_output 0
  run --separate-stderr "$TQ" serve --traces-data "$T/traces" --tempo-listen '' --admin-listen ''
  assert_failure 2
  run --separate-stderr "$TQ" serve --traces-data "$T/traces" --tempo-listen nonsense --admin-listen ''
  assert_failure 2
}
