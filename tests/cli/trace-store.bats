#!/usr/bin/env bats
# trace-store: a real daemon storing real stream files and Unix-socket
# streams into a real directory, read back with `get` and `search`.

load helpers

setup() {
  TS=$(telkit_bin trace-store)
  TELCAT=$(telkit_bin tel-cat)
  DATA="$TELKIT_REPO_DIR/tests/testdata/otlp"
  T=$BATS_TEST_TMPDIR
  TRACE=5b8efff798038103d269b633813fc60c
  # traces (2 spans), metrics, logs, and a traces frame that is not protobuf.
  {
    for f in traces metrics logs; do tr -d '\n' <"$DATA/$f.json"; echo; done
    echo '{"seq":"9","time":"1","signal":"traces","payloadBase64":"/////w=="}'
  } >"$T/requests.jsonl"
  "$TELCAT" --from-json -o "$T/sample.stream" "$T/requests.jsonl"
}

teardown() {
  [[ -n ${BG_PID:-} ]] && kill "$BG_PID" 2>/dev/null
  true
}

@test "a stream file is stored; get returns every span as sent" {
  run --separate-stderr "$TS" --data "$T/db" --in "$T/sample.stream" --admin-listen ''
  assert_success
  run --separate-stderr "$TS" get --data "$T/db" "$TRACE"
  assert_success
  echo "$output" >"$T/got.json"
  # Same spans, same fields: compare the sorted spans of both documents.
  jq -S '[.resourceSpans[].scopeSpans[].spans[]] | sort_by(.spanId)' "$T/got.json" >"$T/a"
  jq -S '[.resourceSpans[].scopeSpans[].spans[]] | sort_by(.spanId)' "$DATA/traces.json" >"$T/b"
  run jq length "$T/a"
  assert_output 2
  run diff "$T/a" "$T/b"
  assert_success
  run jq -r '.resourceSpans[0].resource.attributes[] | select(.key=="service.name") | .value.stringValue' "$T/got.json"
  assert_output checkout
}

@test "search by service, name and duration" {
  "$TS" --data "$T/db" --in "$T/sample.stream" --admin-listen '' 2>/dev/null
  run --separate-stderr "$TS" search --data "$T/db" --service checkout
  assert_success
  assert_line --index 0 --partial "\"traceID\":\"$TRACE\""
  run --separate-stderr "$TS" search --data "$T/db" --name "SELECT cart"
  assert_output --partial "$TRACE"
  run --separate-stderr "$TS" search --data "$T/db" --service nosuch
  assert_success
  assert_output ''
  run --separate-stderr "$TS" search --data "$T/db" --min-duration 1h
  assert_output ''
  run --separate-stderr "$TS" search --data "$T/db" --min-duration soon
  assert_failure 2
}

@test "get: unknown trace exits 1, a bad id exits 2, a missing store exits 1" {
  "$TS" --data "$T/db" --in "$T/sample.stream" --admin-listen '' 2>/dev/null
  run --separate-stderr "$TS" get --data "$T/db" 00000000000000000000000000000001
  assert_failure 1
  assert_output ''
  run --separate-stderr "$TS" get --data "$T/db" xyz
  assert_failure 2
  run --separate-stderr "$TS" get --data "$T/nothing" "$TRACE"
  assert_failure 1
}

@test "daemon on a Unix socket: acknowledged frames readable at once, counters for bad input, SIGTERM exits 0" {
  "$TS" --data "$T/db" --in "listen:unix:$T/in.sock" --admin-listen 127.0.0.1:0 --idle 1h 2>"$T/log" &
  BG_PID=$!
  for _ in $(seq 100); do [[ -S $T/in.sock ]] && grep -q 'admin endpoint on port' "$T/log" && break; sleep 0.05; done
  port=$(grep -oE 'admin endpoint on port [0-9]+' "$T/log" | grep -oE '[0-9]+$')
  # tel-cat returns once every frame is acknowledged.
  "$TELCAT" -o "unix:$T/in.sock" "$T/sample.stream"
  run --separate-stderr "$TS" get --data "$T/db" "$TRACE"
  assert_success
  run jq '[.resourceSpans[].scopeSpans[].spans[]] | length' <<<"$output"
  assert_output 2
  run curl -sf "http://127.0.0.1:$port/metrics"
  assert_success
  assert_line 'trace_store_spans_stored_total 2'
  assert_line 'trace_store_frames_other_signal_total 2'
  assert_line 'trace_store_frames_invalid_total 1'
  assert_line 'trace_store_live_traces 1'
  kill -TERM "$BG_PID"
  wait "$BG_PID"
  BG_PID=
  # Restart: the live trace comes back from the WAL.
  run --separate-stderr "$TS" --data "$T/db" --in /dev/null --admin-listen '' --cut-on-exit
  assert_success
  run --separate-stderr "$TS" get --data "$T/db" "$TRACE"
  assert_success
  [[ $(ls "$T/db/blocks" | wc -l) == 1 ]]
}

@test "--metrics-out: span metrics and service graphs with Tempo's names, exact counts" {
  run --separate-stderr "$TS" --data "$T/db" --in "$T/sample.stream" --admin-listen '' --metrics-out "$T/m.stream"
  assert_success
  "$TELCAT" "$T/m.stream" | jq -c 'select(.payload) | .payload.resourceMetrics[0].scopeMetrics[0].metrics[] |
    .name as $n | (.sum.dataPoints // .histogram.dataPoints)[] |
    [$n, (.asInt // .count), (.attributes | map(.value.stringValue) | join(","))]' >"$T/points"
  run cat "$T/points"
  assert_line '["traces_spanmetrics_calls_total","1","checkout,GET /cart,SPAN_KIND_SERVER,STATUS_CODE_OK"]'
  assert_line '["traces_spanmetrics_calls_total","1","checkout,SELECT cart,SPAN_KIND_CLIENT,STATUS_CODE_ERROR"]'
  assert_line '["traces_spanmetrics_latency","1","checkout,GET /cart,SPAN_KIND_SERVER,STATUS_CODE_OK"]'
  assert_line '["traces_service_graph_request_total","1","checkout,postgresql,database"]'
  assert_line '["traces_service_graph_request_failed_total","1","checkout,postgresql,database"]'
  assert_line '["traces_service_graph_request_total","1","user,checkout,virtual_node"]'
  assert_line '["traces_service_graph_request_server_seconds","1","user,checkout,virtual_node"]'
  assert_line '["traces_service_graph_request_client_seconds","1","checkout,postgresql,database"]'
  # Exemplars carry the trace id.
  run bash -c "'$TELCAT' '$T/m.stream' | jq -r 'select(.payload) | .payload.resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints[0].exemplars[0].traceId'"
  assert_output "$TRACE"
}

@test "a second daemon on the same directory is refused" {
  "$TS" --data "$T/db" --in "listen:unix:$T/in.sock" --admin-listen '' 2>"$T/log" &
  BG_PID=$!
  for _ in $(seq 100); do [[ -S $T/in.sock ]] && break; sleep 0.05; done
  run --separate-stderr "$TS" --data "$T/db" --in "$T/sample.stream" --admin-listen ''
  assert_failure 1
  [[ $stderr == *lock* ]]
  kill -TERM "$BG_PID"
  wait "$BG_PID"
  BG_PID=
}
