#!/usr/bin/env bats
# tel-query promql: instant and range queries over data loaded from test
# scripts and expositions, table and API JSON output, and its errors.

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
  run "$TQ" promql '"text"' --format json --time 1.5
  assert_output '{"status":"success","data":{"resultType":"string","result":[1.5,"text"]}}'
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
  run --separate-stderr "$TQ" promql 'up' --data "$T"
  assert_failure 1
  [[ $stderr == *"not connected yet"* ]]
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

@test "--compat 3: left-open windows" {
  # A sample exactly 5m before the evaluation time counts in 2.42 only.
  run "$TQ" promql 'count(req_total{job="web"})' --load "$DATA/selectors.test" --time 300
  assert_line --index 1 --regexp '^\{\} +1$'
  run "$TQ" promql 'count(req_total{job="web"})' --load "$DATA/selectors.test" --time 300 --compat 3
  assert_output ''
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
