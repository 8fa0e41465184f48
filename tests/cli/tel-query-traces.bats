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

@test "trace ID: the waterfall, attributes on demand, the trace's log lines" {
  LI=$(telkit_bin log-ingest)
  tr -d '\n' <"$DATA/logs.json" >"$T/logs.jsonl"
  echo >>"$T/logs.jsonl"
  "$TELCAT" --from-json -o "$T/logs.stream" "$T/logs.jsonl"
  "$LI" --data "$T/logs" --in "$T/logs.stream" --admin none --retention 0 2>/dev/null
  COLUMNS=100 run --separate-stderr "$TQ" trace "$TRACE" --traces-data "$T/traces"
  assert_success
  assert_line --index 0 "Trace $TRACE  checkout: GET /cart  2 spans  250ms  2023-11-14T22:13:20.000Z  1 errors"
  assert_line --index 2 --regexp '^GET /cart +checkout +server +250ms \|█+\|$'
  assert_line --index 3 --regexp '^  SELECT cart +checkout +client +! +190ms \| ▓+ +\|$'
  # Every span line fits the width (characters, not bytes).
  local LC_ALL=C.UTF-8
  while IFS= read -r l; do ((${#l} <= 100)) || fail "too wide: $l"; done < <(tail -n +2 <<<"$output")
  run --separate-stderr "$TQ" trace "$TRACE" --traces-data "$T/traces" --attributes
  assert_line '      status error: timeout'
  assert_line '      db.system="postgresql"'
  run --separate-stderr "$TQ" trace "$TRACE" --traces-data "$T/traces" --logs-data "$T/logs"
  assert_success
  assert_line 'Logs (1)'
  assert_output --partial 'span=eee19b7ec3c1b174 payment failed'
  run --separate-stderr "$TQ" trace "$TRACE" --traces-data "$T/traces" --logs-data "$T/logs" --no-logs
  refute_output --partial 'Logs ('
}

@test "trace: unknown id exits 1, a bad id exits 2, no store exits 1" {
  run --separate-stderr "$TQ" trace 0123456789abcdef0123456789abcdef --traces-data "$T/traces"
  assert_failure 1
  [[ $stderr == *"not found"* ]]
  run --separate-stderr "$TQ" trace nothex --traces-data "$T/traces"
  assert_failure 2
  run --separate-stderr "$TQ" trace "$TRACE" --traces-data "$T/none"
  assert_failure 1
}

@test "traceql Q: a table of matching traces; json; parse errors exit 2" {
  run --separate-stderr "$TQ" traceql '{ status = error && span.db.system = "postgresql" }' --traces-data "$T/traces"
  assert_success
  assert_line --index 0 --regexp '^TRACE ID +ROOT SERVICE +ROOT NAME +START +DURATION +SPANS$'
  assert_line --index 1 --regexp "^$TRACE +checkout +GET /cart +2023-11-14T22:13:20.000Z +250ms +1/2$"
  run --separate-stderr "$TQ" traceql '{ kind = server } >> { kind = client }' --traces-data "$T/traces" -o json
  assert_success
  run jq -r '.traces[0].spanSets[0].spans[0].name' <<<"$output"
  assert_output 'SELECT cart'
  run --separate-stderr "$TQ" traceql '{ name = "nothing" }' --traces-data "$T/traces"
  assert_success
  assert_equal "${#lines[@]}" 1
  run --separate-stderr "$TQ" traceql '{}' --traces-data "$T/traces" --since 1h
  assert_equal "${#lines[@]}" 1
  run --separate-stderr "$TQ" traceql '{}' --traces-data "$T/traces" --start 1699999999 --end 1700000001
  assert_equal "${#lines[@]}" 2
  run --separate-stderr "$TQ" traceql '{ .a = }' --traces-data "$T/traces"
  assert_failure 2
  [[ $stderr == *"parse error at line 1, col 8: syntax error: unexpected '}'"* ]]
  run --separate-stderr "$TQ" traceql '{}' --traces-data "$T/traces" --since 1h --start 0
  assert_failure 2
}

@test "services: the service graph from span-metrics series" {
  run --separate-stderr "$TQ" services --load "$TELKIT_REPO_DIR/tests/testdata/services/service_graph.test" --time 600
  assert_success
  assert_output "CLIENT     SERVER      RATE/S  ERRORS    P50    P95
api     →  postgresql     0.5    0.0%      -      -
web     →  api              1   10.0%  100ms  500ms"
  run --separate-stderr "$TQ" services --load "$TELKIT_REPO_DIR/tests/testdata/services/service_graph.test" --time 86400
  assert_output 'no service graph data'
  run --separate-stderr "$TQ" services
  assert_failure 2
  run --separate-stderr "$TQ" services --load "$TELKIT_REPO_DIR/tests/testdata/services/service_graph.test" --window x
  assert_failure 2
}

@test "examples/grafana: Prometheus, Loki and Tempo data sources linked by uid" {
  command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null || skip "python3 with yaml is not installed"
  run python3 - "$TELKIT_REPO_DIR/examples/grafana/provisioning/datasources/telkit.yaml" <<'PY'
import sys, yaml
d = {x["uid"]: x for x in yaml.safe_load(open(sys.argv[1]))["datasources"]}
assert sorted(d) == ["loki", "prometheus", "tempo"], sorted(d)
assert [d[u]["type"] for u in ("prometheus", "loki", "tempo")] == ["prometheus", "loki", "tempo"]
assert d["tempo"]["url"].endswith(":3200") and d["loki"]["url"].endswith(":3100")
j = d["tempo"]["jsonData"]
assert j["tracesToLogsV2"]["datasourceUid"] == "loki"
assert j["tracesToMetrics"]["datasourceUid"] == "prometheus"
assert j["serviceMap"]["datasourceUid"] == "prometheus"
assert j["nodeGraph"]["enabled"] is True
assert d["loki"]["jsonData"]["derivedFields"][0]["datasourceUid"] == "tempo"
print("ok")
PY
  assert_success
  assert_output ok
}
