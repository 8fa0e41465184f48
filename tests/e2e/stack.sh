#!/usr/bin/env bash
# The whole stack end to end, started as the README does: `scripts/stack.sh
# --data DIR` in the background (--no-build: the binaries of build/tools), on
# its default ports (OTLP 4317/4318, Prometheus 9090, Loki 3100, Tempo 3200,
# admin 8888-8894). The real SDK client (tests/e2e/client) sends traces,
# metrics and logs; every item of its manifest must be found through tel-query
# in the terminal (promql, logql, traceql) and through the three HTTP APIs.
# The stack scrapes itself: up{job="telkit"} of the seven daemons is queryable.
# stack-health (with the canary) reports OK (exit 0); after tsdb-write is
# killed it reports CRITICAL (exit 2) while a second batch of telemetry is
# sent; once tsdb-write runs again (its line from `scripts/stack.sh --print`)
# it reports OK, and the second batch's metrics have arrived (tel-batch's
# spool and the stream's resend), with the first batch's still there.
# Skips when the default ports are taken (another stack runs). Every wait is
# bounded; about a minute. Ends with "N passed, N failed, N skipped".
source "$(dirname "$0")/lib.bash"
CLIENT=$E2E_ROOT/tests/e2e/client
TQ=$BIN_DIR/tel-query/tel-query
SH=$BIN_DIR/stack-health/stack-health
STACK=$E2E_ROOT/scripts/stack.sh
DATA=$WORK/stack

# scripts/stack.sh runs build/tools: the test needs them there.
if [ "$BIN_DIR" != "$E2E_ROOT/build/tools" ]; then
  skip "whole stack: scripts/stack.sh runs build/tools, TELKIT_BIN_DIR is $BIN_DIR"
  summary; exit $?
fi
for name in $("$STACK" --print --data "$DATA" | cut -d' ' -f1) stack-health; do
  [ -x "$BIN_DIR/$name/$name" ] || { fail "$BIN_DIR/$name/$name is not built"; summary; exit 1; }
done
for cmd in jq node curl; do
  command -v "$cmd" >/dev/null || { skip "whole stack: $cmd is not installed"; summary; exit $?; }
done
busy=$(ss -Hltn 2>/dev/null | awk '{ print $4 }' | grep -E ':(4317|4318|9090|3100|3200|888[89]|889[0-3])$' | tr '\n' ' ')
if [ -n "$busy" ]; then
  skip "whole stack: the stack's default ports are in use ($busy): another stack runs here"
  summary; exit $?
fi
if npm_install "$CLIENT"; then pass "npm ci (tests/e2e/client)"; else fail "npm ci (tests/e2e/client)" "$WORK/npm-client.log"; summary; exit 1; fi

# The stack, and the tsdb-write the test restarts, stop with SIGTERM (stack.sh
# stops its daemons in reverse order), before lib.bash's cleanup.
STACK_PID='' TSDB_PID=''
stop_stack() {
  [ -n "$STACK_PID" ] && kill -0 "$STACK_PID" 2>/dev/null && stop_pid "$STACK_PID" >/dev/null 2>&1
  [ -n "$TSDB_PID" ] && kill -0 "$TSDB_PID" 2>/dev/null && stop_pid "$TSDB_PID" >/dev/null 2>&1
  STACK_PID='' TSDB_PID=''
}
trap 'stop_stack; cleanup' EXIT

# until SECONDS CMD...: true once CMD succeeds, trying every 0.25 s.
until_ok() {
  local n=$(($1 * 4)) i; shift
  for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.25; done
  return 1
}
ready_all() {
  local p
  for p in 8888 8889 8890 8891 8892 8893 8894; do curl -fsS -o /dev/null "http://127.0.0.1:$p/readyz" 2>/dev/null || return 1; done
}

# ---- the stack as the README starts it
"$STACK" --data "$DATA" --no-build >"$WORK/stack.log" 2>&1 &
STACK_PID=$!
if until_ok 60 ready_all && until_ok 10 curl -fsS -o /dev/null http://127.0.0.1:3200/ready; then
  pass "scripts/stack.sh --data DIR: seven daemons ready, Prometheus :9090, Loki :3100, Tempo :3200"
else
  fail "the stack did not start" "$WORK/stack.log"; summary; exit 1
fi

# send NAME PROTOCOL: the SDK client's traces, metrics and logs as services NAME*.
send() {
  local endpoint=http://127.0.0.1:4318
  [ "$2" = grpc ] && endpoint=http://127.0.0.1:4317
  timeout 60 node "$CLIENT/send.mjs" --endpoint "$endpoint" --protocol "$2" --count 4 --service "$1" --seed "$1" \
    --manifest "$WORK/$1.manifest.json" --quiet >"$WORK/$1.send.log" 2>&1
}

# check_logs NAME: the manifest's log records through `tel-query logql` and
# the Loki API (query_range), body, level, attributes and trace ids.
check_logs() {
  local name=$1 q="{service_name=~\"$1.*\"}" conv=$E2E_ROOT/tests/e2e/logql-to-jsonl.mjs chk=$E2E_ROOT/tests/e2e/logs-check.mjs
  cli() {
    "$TQ" logql "$q" --logs-data "$DATA/logs" --start 0 --end 2100-01-01T00:00:00Z --limit 0 -o json >"$WORK/$name.logql.json" 2>/dev/null &&
      node "$conv" "$WORK/$name.logql.json" >"$WORK/$name.logql.jsonl" 2>/dev/null &&
      node "$chk" "$WORK/$name.manifest.json" "$WORK/$name.logql.jsonl" >"$WORK/$name.logql.check" 2>&1
  }
  api() {
    curl -fsS -G http://127.0.0.1:3100/loki/api/v1/query_range --data-urlencode "query=$q" --data-urlencode start=0 \
      --data-urlencode end=4102444800 --data-urlencode limit=5000 >"$WORK/$name.loki.json" 2>/dev/null &&
      node "$conv" "$WORK/$name.loki.json" >"$WORK/$name.loki.jsonl" 2>/dev/null &&
      node "$chk" "$WORK/$name.manifest.json" "$WORK/$name.loki.jsonl" >"$WORK/$name.loki.check" 2>&1
  }
  if until_ok 15 cli; then pass "$name: tel-query logql: $(tail -n 1 "$WORK/$name.logql.check")"
  else fail "$name: tel-query logql differs from the manifest" "$WORK/$name.logql.check"; fi
  if until_ok 5 api; then pass "$name: Loki API :3100 query_range: $(tail -n 1 "$WORK/$name.loki.check")"
  else fail "$name: the Loki API differs from the manifest" "$WORK/$name.loki.check"; fi
}

# check_traces NAME: the manifest's trace ids through `tel-query traceql` and
# Tempo's /api/search (TraceQL), and every span of each by /api/traces/<id>.
check_traces() {
  local name=$1 q="{ resource.service.name =~ \"$1.*\" }" m=$WORK/$1.manifest.json
  jq -r '[.traces.spans[].traceId] | unique | join(" ")' "$m" >"$WORK/$name.want-traces"
  cli() {
    "$TQ" traceql "$q" --traces-data "$DATA/traces" --limit 100000 -o json 2>/dev/null |
      jq -r '[.traces[].traceID] | sort | join(" ")' >"$WORK/$name.cli-traces" &&
      cmp -s "$WORK/$name.want-traces" "$WORK/$name.cli-traces"
  }
  api() {
    curl -fsS -G http://127.0.0.1:3200/api/search --data-urlencode "q=$q" --data-urlencode limit=100000 2>/dev/null |
      jq -r '[.traces[].traceID] | sort | join(" ")' >"$WORK/$name.api-traces" &&
      cmp -s "$WORK/$name.want-traces" "$WORK/$name.api-traces"
  }
  local n
  n=$(wc -w <"$WORK/$name.want-traces")
  if until_ok 15 cli; then pass "$name: tel-query traceql finds exactly the $n traces sent"
  else fail "$name: tel-query traceql found '$(cat "$WORK/$name.cli-traces")', want '$(cat "$WORK/$name.want-traces")'"; fi
  if until_ok 5 api; then pass "$name: Tempo API :3200 /api/search (TraceQL) finds exactly the $n traces sent"
  else fail "$name: /api/search found '$(cat "$WORK/$name.api-traces")', want '$(cat "$WORK/$name.want-traces")'"; fi
  local id want bad=0
  for id in $(cat "$WORK/$name.want-traces"); do
    want=$(jq --arg id "$id" '[.traces.spans[] | select(.traceId == $id)] | length' "$m")
    curl -fsS "http://127.0.0.1:3200/api/traces/$id" 2>/dev/null |
      jq -e --argjson n "$want" '[.batches[].scopeSpans[].spans[]] | length == $n' >/dev/null || bad=$((bad + 1))
  done
  if [ "$bad" = 0 ]; then pass "$name: /api/traces/<id> returns every span of the $n traces"
  else fail "$name: /api/traces/<id> wrong for $bad of $n traces"; fi
  id=$(cut -d' ' -f1 "$WORK/$name.want-traces")
  if "$TQ" trace "$id" --traces-data "$DATA/traces" --logs-data "$DATA/logs" >"$WORK/$name.waterfall" 2>&1 &&
    [ "$(grep -c . "$WORK/$name.waterfall")" -gt "$(jq --arg id "$id" '[.traces.spans[] | select(.traceId == $id)] | length' "$m")" ]; then
    pass "$name: tel-query trace $id draws the waterfall"
  else
    fail "$name: tel-query trace $id" "$WORK/$name.waterfall"
  fi
}

# check_metrics NAME: every metric stream of the manifest with its final
# value (check_metrics.py) through the Prometheus API :9090, and the same
# series through `tel-query promql`.
check_metrics() {
  local name=$1 q="{job=~\".*$1.*\"}"
  api() {
    curl -fsS -G http://127.0.0.1:9090/api/v1/query --data-urlencode "query=$q" 2>/dev/null |
      jq -r '.data.result[] | "\(.metric.__name__){\(.metric | del(.__name__) | to_entries | map("\(.key)=\(.value | tojson)") | join(","))} \(.value[1]) \(.value[0] * 1000 | floor)"' \
        >"$WORK/$name.api-metrics.txt" &&
      python3 "$E2E_ROOT/tests/e2e/check_metrics.py" manifest "$WORK/$name.manifest.json" "$WORK/$name.api-metrics.txt" \
        >"$WORK/$name.metrics.check" 2>&1
  }
  if until_ok 30 api; then pass "$name: Prometheus API :9090: $(head -n 1 "$WORK/$name.metrics.check")"
  else fail "$name: the Prometheus API differs from the manifest" "$WORK/$name.metrics.check"; fi
  local cli
  # -o csv may print 60 as 6e+01: compared as numbers.
  cli=$("$TQ" promql "count($q)" --data "$DATA/metrics" -o csv 2>&1 | tail -n 1 | awk -F, '{ print $NF + 0 }')
  if [ "$cli" = "$(wc -l <"$WORK/$name.api-metrics.txt")" ]; then pass "$name: tel-query promql --data sees the same $cli series"
  else fail "$name: tel-query promql count($q) = '$cli', the API has $(wc -l <"$WORK/$name.api-metrics.txt")"; fi
}

# health NAME WANT [flags]: stack-health's exit status is WANT within 30 s.
health() {
  local name=$1 want=$2 got; shift 2
  check() {
    "$SH" --data "$DATA" --color never "$@" >"$WORK/health-$name.txt" 2>&1
    got=$?
    [ "$got" = "$want" ]
  }
  if until_ok 30 check "$@"; then pass "stack-health --data DIR $*: exit $want ($(tail -n 1 "$WORK/health-$name.txt"))"
  else fail "stack-health --data DIR $*: exit $got, want $want" "$WORK/health-$name.txt"; fi
}

# ---- batch 1: everything the SDK sends arrives
if send e2e-one grpc; then pass "e2e-one: the SDK sent over gRPC ($(tail -n 1 "$WORK/e2e-one.send.log" | cut -c 1-120))"
else fail "e2e-one: the SDK reported failures" "$WORK/e2e-one.send.log"; fi
check_logs e2e-one
check_traces e2e-one
check_metrics e2e-one

# ---- the stack monitors itself: otlp-recv scrapes the seven admin endpoints
up_all() {
  curl -fsS -G http://127.0.0.1:9090/api/v1/query --data-urlencode 'query=up{job="telkit"} == 1' 2>/dev/null |
    jq -r '[.data.result[].metric.daemon] | sort | join(" ")' >"$WORK/up.txt" &&
    [ "$(cat "$WORK/up.txt")" = "log-ingest otlp-recv tel-batch tel-query tel-rules trace-store tsdb-write" ]
}
if until_ok 40 up_all; then pass "self-scrape: up{job=\"telkit\"} == 1 for the seven daemons"
else fail "self-scrape: up{job=\"telkit\"} == 1 for '$(cat "$WORK/up.txt")'"; fi
out=$("$TQ" promql 'count(scrape_samples_scraped{job="telkit"} > 0)' --data "$DATA/metrics" -o csv 2>&1 | tail -n 1)
[[ $out == *,7 ]] && pass "self-scrape: tel-query promql sees scrape_samples_scraped of seven targets" \
  || fail "self-scrape: count(scrape_samples_scraped > 0): $out"

# ---- stack-health: OK, CRITICAL without tsdb-write, OK again
health ok 0 --canary --state-file "$WORK/health.json"
tsdb_pid=$(pgrep -f -x "$E2E_ROOT/build/tools/tsdb-write/tsdb-write serve --data $DATA/metrics .*" | head -n 1)
if [ -n "$tsdb_pid" ]; then
  kill -KILL "$tsdb_pid"
  pass "tsdb-write (pid $tsdb_pid) killed"
else
  fail "no tsdb-write process of this stack"; summary; exit 1
fi
health critical 2
grep -qE '^CRITICAL +tsdb-write +healthz' "$WORK/health-critical.txt" && pass "stack-health names tsdb-write's healthz as CRITICAL" \
  || fail "stack-health's CRITICAL line" "$WORK/health-critical.txt"

# batch 2 while tsdb-write is down: tel-batch holds the metrics
if send e2e-two http/protobuf; then pass "e2e-two: the SDK sent over HTTP/protobuf while tsdb-write was down"
else fail "e2e-two: the SDK reported failures" "$WORK/e2e-two.send.log"; fi
sleep 1

# tsdb-write again, with its line from scripts/stack.sh --print
line=$("$STACK" --print --data "$DATA" | grep '^tsdb-write ')
read -r -a args <<<"${line#tsdb-write }"
"$BIN_DIR/tsdb-write/tsdb-write" "${args[@]}" </dev/null 2>>"$DATA/tsdb-write.restarted.log" &
TSDB_PID=$!
ready_tsdb() { curl -fsS -o /dev/null http://127.0.0.1:8890/readyz 2>/dev/null; }
if until_ok 30 ready_tsdb; then pass "tsdb-write restarted: $line"
else fail "tsdb-write did not restart" "$DATA/tsdb-write.restarted.log"; fi
health back 0 --canary --state-file "$WORK/health.json"

# no data lost: batch 2 arrived, batch 1 is still there
check_metrics e2e-two
check_logs e2e-two
check_traces e2e-two
check_metrics e2e-one

stop_stack
grep -q 'stack running' "$WORK/stack.log" && pass "scripts/stack.sh ran the stack until stopped" \
  || fail "scripts/stack.sh output" "$WORK/stack.log"
summary
