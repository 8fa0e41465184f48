#!/usr/bin/env bats
# tel-query: promql (instant and range queries over data loaded from test
# scripts and expositions; table, API JSON, CSV and chart output; relative
# times; errors), series / labels / label-values, and serve (the Prometheus
# HTTP API and the admin endpoint, SIGTERM). Reading a real store (--data) is
# covered by common/query/query_test.cpp (ServeTest) and tests/e2e.

load helpers

setup() {
  TQ=$(telkit_bin tel-query)
  DATA="$TELKIT_REPO_DIR/tests/testdata/promql"
  T=$BATS_TEST_TMPDIR
}

@test "an instant query prints a table of series and values" {
  run --separate-stderr "$TQ" promql 'sum by (job) (rate(req_total[5m]))' --load "$DATA/selectors.test" --time 630
  assert_success
  assert_output - <<'OUT'
SERIES       VALUE
{job="api"}  0.18333333333333332
OUT
  [[ -z $stderr ]]
}

@test "an empty result prints no table and says 'no data' on stderr" {
  run --separate-stderr "$TQ" promql 'req_total{job="none"}' --load "$DATA/selectors.test" --time 60
  assert_success
  assert_output ''
  [[ $stderr == "tel-query: no data: the query returned no series" ]]
  run --separate-stderr "$TQ" promql 'req_total{job="none"}' --load "$DATA/selectors.test" --start 0 --end 60 --step 1m
  assert_success
  [[ $stderr == *"no data"* ]]
  # JSON and CSV stay machine output: an empty result, nothing on stderr.
  run --separate-stderr "$TQ" promql 'req_total{job="none"}' --load "$DATA/selectors.test" --time 60 --format json
  assert_success
  assert_output '{"status":"success","data":{"resultType":"vector","result":[]}}'
  [[ -z $stderr ]]
}

@test "a range query as the API's JSON" {
  run --separate-stderr "$TQ" promql 'req_total{code="500"}' --load "$DATA/selectors.test" \
    --start 0 --end 120 --step 1m --format json
  assert_success
  assert_output '{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"req_total","code":"500","job":"api"},"values":[[0,"0"],[60,"1"],[120,"2"]]}]}}'
}

@test "scalars, strings and RFC 3339 times" {
  run "$TQ" promql 'scalar(sum(req_total))' --load "$DATA/selectors.test" --time 1970-01-01T00:10:00Z
  assert_success
  assert_line --index 1 --regexp '^600 +115$'
  # The API's JSON exactly: Prometheus writes milliseconds as 3 digits.
  run "$TQ" promql '"text"' --format json --time 1.5
  assert_output '{"status":"success","data":{"resultType":"string","result":[1.500,"text"]}}'
}

@test "expositions: text format in ms, OpenMetrics in seconds, no timestamp at the query time" {
  printf '# TYPE x counter\nx{a="1"} 5 1000\nx{a="2"} 7\n' >"$T/x.prom"
  printf '# TYPE y gauge\ny{a="1"} 3 1.5\n# EOF\n' >"$T/y.om"
  run "$TQ" promql 'x' --load "$T/x.prom" --time 2 --format json
  assert_output '{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"x","a":"1"},"value":[2,"5"]},{"metric":{"__name__":"x","a":"2"},"value":[2,"7"]}]}}'
  run "$TQ" promql 'timestamp(y)' --load "$T/y.om" --time 2
  assert_line --index 1 --regexp '^\{a="1"\} +1\.5$'
  printf 'x{a="1" 5\n' >"$T/bad.prom"
  run --separate-stderr "$TQ" promql 'x' --load "$T/bad.prom"
  assert_failure 1
  [[ $stderr == *"load '$T/bad.prom': line 1: "* ]]
}

@test "--format-query prints the canonical form" {
  run "$TQ" promql --format-query 'sum(rate(x[5m]))by(job)'
  assert_success
  assert_output 'sum by (job) (rate(x[5m]))'
}

@test "a parse error: exit 1 with its position; with --format json also the API error body" {
  run --separate-stderr "$TQ" promql 'sum(rate(x[5m])'
  assert_failure 1
  [[ -z $output ]]
  [[ $stderr == *"tel-query: "*"1:16: parse error: unexpected end of input"* ]]
  run --separate-stderr "$TQ" promql '1 + on(x) b' --format json
  assert_failure 1
  assert_output '{"status":"error","errorType":"bad_data","error":"1:1: parse error: vector matching only allowed between instant vectors"}'
}

@test "evaluation errors and limits are clear failures" {
  run --separate-stderr "$TQ" promql 'req_total * ignoring(code) req_total' --load "$DATA/selectors.test" --time 600
  assert_failure 1
  [[ $stderr == *"found duplicate series for the match group"* ]]
  run --separate-stderr "$TQ" promql 'sum_over_time(req_total[10m])' --load "$DATA/selectors.test" --time 600 \
    --max-samples 5
  assert_failure 1
  [[ $stderr == *"query processing would load too many samples into memory"* ]]
  run --separate-stderr "$TQ" promql 'up' --data "$T/none"
  assert_failure 1
  [[ $stderr == *"open the metrics store '$T/none'"* ]]
}

@test "usage errors exit 2" {
  run --separate-stderr "$TQ" promql 'up' --time 1 --start 0 --step 1
  assert_failure 2
  [[ $stderr == "tel-query: error: --time excludes"* ]]
  run --separate-stderr "$TQ" promql 'up' --start 0
  assert_failure 2
  run --separate-stderr "$TQ" promql 'up' --format xml
  assert_failure 2
  run --separate-stderr "$TQ"
  assert_failure 2
  [[ $stderr == *"subcommand is required"* ]]
}

@test "3.x semantics by default, --compat 2 for 2.42: left-open windows" {
  # A sample exactly 5m before the evaluation time counts in 2.42 only.
  run --separate-stderr "$TQ" promql 'count(req_total{job="web"})' --load "$DATA/selectors.test" --time 300
  assert_success
  assert_output ''
  [[ $stderr == *"no data"* ]]
  run "$TQ" promql 'count(req_total{job="web"})' --load "$DATA/selectors.test" --time 300 --compat 2
  assert_line --index 1 --regexp '^\{\} +1$'
}

@test "man page: PROMQL OPTIONS names exactly the flags of 'tel-query promql --help'" {
  page="$TELKIT_REPO_DIR/man/tel-query.1"
  flags=$("$TQ" promql --help | grep -oE '^ {2,6}(-[[:alnum:]],)?--[[:alnum:]][-[:alnum:]]*' | grep -oE -- '--[[:alnum:]][-[:alnum:]]*' | grep -v -- '--help')
  documented=$(awk '/^\.SH / { in_opts = ($0 == ".SH \"PROMQL OPTIONS\"") } in_opts && (prev == ".TP" || prev == ".TQ") { print } { prev = $0 }' "$page" |
    grep -oE -- '\\-\\-[[:alnum:]][-[:alnum:]\\]*' | sed 's/\\-/-/g; s/\\$//' | sort -u)
  [[ -n $flags ]]
  for flag in $flags; do
    grep -qxF -- "$flag" <<<"$documented" || fail "tel-query.1: no PROMQL OPTIONS item for $flag"
  done
  for flag in $documented; do
    grep -qxF -- "$flag" <<<"$flags" || fail "tel-query.1 documents $flag, which 'tel-query promql --help' does not list"
  done
}

@test "-o csv: one row per point, quoted series" {
  run --separate-stderr "$TQ" promql 'req_total{code="500"}' --load "$DATA/selectors.test" --start 0 --end 60 --step 1m -o csv
  assert_success
  assert_output - <<'OUT'
series,timestamp,value
"req_total{code=""500"", job=""api""}",0,0
"req_total{code=""500"", job=""api""}",60,1
OUT
}

@test "-o chart: braille, axis labels, legend; no colour when not a terminal or NO_COLOR" {
  run --separate-stderr "$TQ" promql 'req_total{job="api"}' --load "$DATA/selectors.test" --start 0 --end 600 --step 1m -o chart
  assert_success
  [[ $output != *$'\e['* ]]
  [[ $output == *"1970-01-01T00:00:00Z"*"1970-01-01T00:10:00Z"* ]]
  LC_ALL=C grep -q $'\xe2[\xa0-\xa3]' <<<"$output"  # U+2800..U+28FF
  assert_line --regexp '^100 │'
  assert_line --regexp '^  0 │'
  assert_line '[1] req_total{code="200", job="api"}'
  assert_line '[2] req_total{code="500", job="api"}'
  # Colour needs a terminal: script(1) gives one; NO_COLOR turns it off.
  command -v script >/dev/null || skip "no script(1)"
  run script -qec "'$TQ' promql 'req_total{job=\"api\"}' --load '$DATA/selectors.test' --start 0 --end 600 --step 1m -o chart" /dev/null
  [[ $output == *$'\e[31m'* && $output == *$'\e[32m'* ]]
  run env NO_COLOR=1 script -qec "'$TQ' promql 'req_total{job=\"api\"}' --load '$DATA/selectors.test' --start 0 --end 600 --step 1m -o chart" /dev/null
  [[ $output != *$'\e['* ]]
  run "$TQ" promql 'req_total{job="none"}' --load "$DATA/selectors.test" --time 60 -o chart
  assert_output 'no data'
}

@test "relative times: now, now-1h, -15m" {
  run --separate-stderr "$TQ" promql 'time()' --time now-1h -o json
  assert_success
  t=$(jq -r '.data.result[0]' <<<"$output")
  now=$(date +%s)
  (( ${t%.*} >= now - 3601 && ${t%.*} <= now - 3599 ))
  run --separate-stderr "$TQ" promql 'vector(1)' --start -15m --step 5m -o csv
  assert_success
  (( ${#lines[@]} == 5 ))  # the header and 0, 5, 10, 15 minutes ago
  run --separate-stderr "$TQ" promql '1' --time yesterday
  assert_failure 2
  [[ $stderr == *"bad time 'yesterday'"* ]]
}

@test "a parse error points at its column" {
  run --separate-stderr "$TQ" promql 'sum(rate(x[5m]) by'
  assert_failure 1
  [[ $stderr == *"1:"*"parse error"* ]]
  col=$(grep -oE '1:[0-9]+:' <<<"$stderr" | head -1 | cut -d: -f2)
  caret=$(tail -n 1 <<<"$stderr")
  [[ $caret == *"^" ]]
  (( ${#caret} == col + 2 ))
}

@test "series, labels, label-values: table and the API's JSON" {
  run --separate-stderr "$TQ" series 'req_total{job="api"}' --load "$DATA/selectors.test"
  assert_success
  assert_output - <<'OUT'
req_total{code="200", job="api"}
req_total{code="500", job="api"}
OUT
  run --separate-stderr "$TQ" series '{job="web"}' --load "$DATA/selectors.test" -o json
  assert_output '{"status":"success","data":[{"__name__":"req_total","code":"200","job":"web"}]}'
  run --separate-stderr "$TQ" labels --load "$DATA/selectors.test"
  assert_output - <<'OUT'
__name__
code
job
OUT
  run --separate-stderr "$TQ" label-values job --match gauge --load "$DATA/selectors.test" -o json
  assert_output '{"status":"success","data":["api"]}'
  run --separate-stderr "$TQ" label-values __name__ --load "$DATA/selectors.test"
  assert_output $'gauge\nreq_total'
  run --separate-stderr "$TQ" series 'req_total{' --load "$DATA/selectors.test"
  assert_failure 1
  [[ $stderr == *"parse error"* ]]
  run --separate-stderr "$TQ" label-values --load "$DATA/selectors.test"
  assert_failure 2
  run --separate-stderr "$TQ" series up
  assert_failure 2
  [[ $stderr == *"no data: give --data DIR or --load FILE"* ]]
  run --separate-stderr "$TQ" labels --load "$DATA/selectors.test" --data "$T"
  assert_failure 2
}

# start_serve ARGS...: tel-query serve on ephemeral ports; sets PID, PORT, ADMIN.
start_serve() {
  "$TQ" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 "$@" 2>"$T/serve.log" &
  PID=$!
  for _ in $(seq 100); do
    PORT=$(grep -oE 'Prometheus API on 127.0.0.1:[0-9]+' "$T/serve.log" | grep -oE '[0-9]+$' || true)
    ADMIN=$(grep -oE 'admin endpoint on 127.0.0.1:[0-9]+' "$T/serve.log" | grep -oE '[0-9]+$' || true)
    [[ -n $PORT && -n $ADMIN ]] && return 0
    sleep 0.05
  done
  cat "$T/serve.log"
  return 1
}

teardown() {
  [[ -n ${PID:-} ]] && kill "$PID" 2>/dev/null || true
}

@test "serve: the Prometheus API and the admin endpoint; SIGTERM exits 0" {
  start_serve --load "$DATA/selectors.test"
  run curl -fsS "http://127.0.0.1:$PORT/api/v1/query?query=count(req_total%7Bjob=%22web%22%7D)&time=300"
  assert_output '{"status":"success","data":{"resultType":"vector","result":[]}}'
  run curl -fsS --data-urlencode 'query=sum(req_total)' --data-urlencode 'time=600' "http://127.0.0.1:$PORT/api/v1/query"
  assert_output '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[600,"115"]}]}}'
  run curl -sS "http://127.0.0.1:$PORT/api/v1/query?query=sum(x"
  [[ $output == *'"errorType":"bad_data"'* ]]
  run curl -fsS "http://127.0.0.1:$ADMIN/healthz"
  assert_success
  run curl -fsS "http://127.0.0.1:$ADMIN/readyz"
  assert_success
  run curl -fsS "http://127.0.0.1:$ADMIN/metrics"
  assert_output --partial 'tel_query_api_requests'
  kill -TERM "$PID"
  rc=0
  wait "$PID" || rc=$?
  PID=
  [[ $rc == 0 ]] || fail "serve exited $rc after SIGTERM: $(cat "$T/serve.log")"
}

@test "serve --compat 2 answers with 2.42 semantics" {
  start_serve --load "$DATA/selectors.test" --compat 2
  run curl -fsS "http://127.0.0.1:$PORT/api/v1/query?query=count(req_total%7Bjob=%22web%22%7D)&time=300"
  assert_output '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[300,"1"]}]}}'
}

@test "serve: usage errors exit 2, a busy address exits 1" {
  run --separate-stderr "$TQ" serve
  assert_failure 2
  run --separate-stderr "$TQ" serve --load "$DATA/selectors.test" --listen nonsense
  assert_failure 2
  start_serve --load "$DATA/selectors.test"
  run --separate-stderr "$TQ" serve --load "$DATA/selectors.test" --listen "127.0.0.1:$PORT" --admin-listen ''
  assert_failure 1
  run --separate-stderr "$TQ" serve --data "$T/none" --listen 127.0.0.1:0 --admin-listen ''
  assert_failure 1
  [[ $stderr == *"open the metrics store"* ]]
}
