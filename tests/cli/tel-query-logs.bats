#!/usr/bin/env bats
# tel-query logql and logs: LogQL over a real log store written by
# log-ingest (plain mode: lines timestamped on arrival, so the default
# ranges, the last hour, hold them). The engine's semantics are tested by
# tests/testdata/logql/*.test (logql_scripts_test); --follow and --trace-id
# with structured metadata by common/logql/logs_command_test.cpp.

load helpers

setup() {
  TQ=$(telkit_bin tel-query)
  LI=$(telkit_bin log-ingest)
  T=$BATS_TEST_TMPDIR
  printf '%s\n' 'level=info msg="started" n=1' 'level=error msg="disk full" n=7' 'level=info msg="done" n=2' |
    "$LI" --data "$T/logs" --labels job=app,env=dev --admin none 2>/dev/null
  printf '%s\n' '{"level":"warn","path":"/x","took":"1.5s"}' |
    "$LI" --data "$T/logs" --labels job=web --admin none 2>/dev/null
}

@test "logql: a log query, newest first by default, raw lines" {
  run --separate-stderr "$TQ" logql --logs-data "$T/logs" '{job="app"}' -o raw
  assert_success
  assert_output - <<'OUT'
level=info msg="done" n=2
level=error msg="disk full" n=7
level=info msg="started" n=1
OUT
  [[ -z $stderr ]]
}

@test "logql: forward, limit, filters and parsers" {
  run "$TQ" logql --logs-data "$T/logs" '{env="dev"} |= "msg" | logfmt | n < 5' -o raw --direction forward --limit 1
  assert_success
  assert_output 'level=info msg="started" n=1'
  run "$TQ" logql --logs-data "$T/logs" '{job=~"app|web"} | json | __error__="" | took > 1s | line_format "{{.path}} {{.level}}"' -o raw
  assert_success
  assert_output '/x warn'
}

@test "logql: the table shows time, labels and line" {
  run "$TQ" logql --logs-data "$T/logs" '{job="app"} |= "disk"'
  assert_success
  assert_output --regexp '^20[0-9-]+T[0-9:.]+Z \{env="dev", job="app"\} level=error msg="disk full" n=7$'
}

@test "logql: -o json is Loki's query_range body" {
  run "$TQ" logql --logs-data "$T/logs" '{job="web"}' -o json
  assert_success
  assert_output --regexp '^\{"status":"success","data":\{"resultType":"streams","result":\[\{"stream":\{"job":"web"\},"values":\[\["[0-9]{19}","\{\\"level\\":\\"warn\\",\\"path\\":\\"/x\\",\\"took\\":\\"1.5s\\"\}"\]\]\}\],"stats":\{"summary":\{'
}

@test "logql: metric queries, instant and range" {
  run "$TQ" logql --logs-data "$T/logs" 'sum by (job) (count_over_time({job=~".+"}[1h]))'
  assert_success
  assert_output - <<'OUT'
{job="app"} 3
{job="web"} 1
OUT
  run "$TQ" logql --logs-data "$T/logs" 'sum(count_over_time({job="app"} |= "error" [10m]))' --start now-1m --end now+1m --step 1m -o json
  assert_success
  assert_output --regexp '"resultType":"matrix","result":\[\{"metric":\{\},"values":\[\[[0-9.]+,"1"\],\[[0-9.]+,"1"\]\]\}\]'
}

@test "logql: errors name the column; bad flags are usage errors" {
  run --separate-stderr "$TQ" logql --logs-data "$T/logs" '{job="app"} | json | x > "y"'
  assert_failure 1
  [[ $stderr == *"parse error at line 1, col 26: syntax error: unexpected STRING"* ]]
  run --separate-stderr "$TQ" logql --logs-data "$T/logs" '{job="app"}' --time now
  assert_failure 2
  run --separate-stderr "$TQ" logql --logs-data "$T/logs" '{job="app"}' --direction sideways
  assert_failure 2
  run --separate-stderr "$TQ" logql '{job="app"}'
  assert_failure 2
  [[ $stderr == *"--logs-data is required"* ]]
}

@test "logs: recent lines oldest first, selector and pipeline, colour on demand" {
  run --separate-stderr "$TQ" logs --logs-data "$T/logs" -o raw
  assert_success
  assert_line --index 0 'level=info msg="started" n=1'
  assert_line --index 3 '{"level":"warn","path":"/x","took":"1.5s"}'
  run "$TQ" logs --logs-data "$T/logs" '{job="app"} |= "disk"' --color always
  assert_success
  [[ $output == *$'\e[31mlevel=error msg="disk full" n=7\e[0m'* ]]
  run "$TQ" logs --logs-data "$T/logs" --limit 1 -o json
  assert_success
  assert_output --regexp '^\{"timestamp":"[0-9T:.-]+Z","labels":\{"job":"web"\},"line":'
}

@test "logs: --trace-id with no such trace prints nothing; a bad id is a usage error" {
  run --separate-stderr "$TQ" logs --logs-data "$T/logs" --trace-id 0af7651916cd43dd8448eb211c80319c
  assert_success
  assert_output ''
  run --separate-stderr "$TQ" logs --logs-data "$T/logs" --trace-id 'nope"'
  assert_failure 2
  [[ $stderr == *"is not a hex trace id"* ]]
}

@test "logs: a metric query is refused" {
  run --separate-stderr "$TQ" logs --logs-data "$T/logs" 'count_over_time({job="app"}[1m])'
  assert_failure 2
  [[ $stderr == *"logs takes a log query"* ]]
}

# start_loki ARGS...: tel-query serve with only the Loki API; sets PID, LOKI.
start_loki() {
  "$TQ" serve --logs-data "$T/logs" --loki-listen 127.0.0.1:0 --admin-listen '' "$@" 2>"$T/serve.log" &
  PID=$!
  for _ in $(seq 100); do
    LOKI=$(grep -oE 'Loki API on 127.0.0.1:[0-9]+' "$T/serve.log" | grep -oE '[0-9]+$' || true)
    [[ -n $LOKI ]] && return 0
    sleep 0.05
  done
  cat "$T/serve.log"
  return 1
}

teardown() {
  [[ -n ${PID:-} ]] && kill "$PID" 2>/dev/null || true
}

@test "serve --logs-data: Loki's API over the store; SIGTERM exits 0" {
  start_loki
  run curl -fsS "http://127.0.0.1:$LOKI/ready"
  assert_output 'ready'
  run curl -fsS "http://127.0.0.1:$LOKI/loki/api/v1/labels"
  assert_output '{"status":"success","data":["env","job"]}'
  run curl -fsS -G "http://127.0.0.1:$LOKI/loki/api/v1/query_range" --data-urlencode 'query={job="app"} |= "disk"'
  assert_output --regexp '^\{"status":"success","data":\{"resultType":"streams","result":\[\{"stream":\{"env":"dev","job":"app"\},"values":\[\["[0-9]+","level=error msg=\\"disk full\\" n=7"\]\]\}\]'
  run curl -fsS -G "http://127.0.0.1:$LOKI/loki/api/v1/query" --data-urlencode 'query=vector(1)+vector(1)'
  assert_output --regexp '"result":\[\{"metric":\{\},"value":\[[0-9.]+,"2"\]\}\]'
  run curl -sS -o /dev/null -w '%{http_code}' -G "http://127.0.0.1:$LOKI/loki/api/v1/query_range" --data-urlencode 'query={job="app"'
  assert_output '400'
  kill -TERM "$PID"
  rc=0
  wait "$PID" || rc=$?
  PID=
  [[ $rc == 0 ]] || fail "serve exited $rc after SIGTERM: $(cat "$T/serve.log")"
}

@test "serve: a missing log store fails at start" {
  run --separate-stderr "$TQ" serve --logs-data "$T/none" --loki-listen 127.0.0.1:0 --admin-listen ''
  assert_failure 1
  [[ $stderr == *"open the log store"* ]]
}

@test "the Grafana example provisions Loki with a trace_id link to Tempo" {
  f="$TELKIT_REPO_DIR/examples/grafana/provisioning/datasources/telkit-loki.yaml"
  grep -q '^    type: loki$' "$f"
  grep -q '^    url: http://127.0.0.1:3100$' "$f"
  grep -q 'matcherRegex: trace_id$' "$f"
  grep -q 'datasourceUid: tempo$' "$f"
}

@test "logs --follow prints lines written meanwhile, once; SIGINT exits 0" {
  "$TQ" logs --logs-data "$T/logs" '{job="app"}' --follow -o raw >"$T/follow.out" 2>"$T/follow.err" &
  PID=$!
  for _ in $(seq 100); do [[ $(wc -l <"$T/follow.out") -ge 3 ]] && break; sleep 0.05; done
  printf '%s\n' 'level=info msg="later" n=9' | "$LI" --data "$T/logs" --labels job=app,env=dev --admin none 2>/dev/null
  for _ in $(seq 100); do grep -q later "$T/follow.out" && break; sleep 0.05; done
  kill -INT "$PID"
  rc=0
  wait "$PID" || rc=$?
  PID=
  [[ $rc == 0 ]] || fail "logs -f exited $rc: $(cat "$T/follow.err")"
  run cat "$T/follow.out"
  assert_output - <<'OUT'
level=info msg="started" n=1
level=error msg="disk full" n=7
level=info msg="done" n=2
level=info msg="later" n=9
OUT
}
