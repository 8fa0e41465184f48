#!/usr/bin/env bash
# Runs the telkit stack on its default local setup: every daemon in the
# foreground of this script, data under one directory, no systemd needed.
#   scripts/stack.sh [--demo] [--exit] [--data DIR] [--print] [--no-build]
# --demo   also sends telemetry with the OpenTelemetry SDK and shows it queried
# --exit   stop the stack after the demo instead of running until Ctrl-C
# --print  print the daemons' command lines and exit (nothing is started)
# --no-build  skip scripts/setup.sh and the build: run the binaries already
#          in build/tools (tests/e2e/stack.sh uses it)
# The command lines come from systemd/stack.commands, as do the units'
# ExecStart= (tests/cli/stack.bats keeps them equal): otlp-recv (OTLP gRPC
# :4317, HTTP :4318, admin :8888) -> Unix socket -> tel-batch (admin :8889),
# which batches and routes by signal over Unix sockets (DIR/run/*.sock) to
# the stores:
#   metrics  tsdb-write   store DIR/metrics, admin :8890
#   logs     log-ingest   store DIR/logs,    admin :8891
#   traces   trace-store  store DIR/traces,  admin :8892 (span metrics and
#                         service graphs go back into tsdb-write)
# and tel-query serve answers the Prometheus HTTP API :9090, Loki's :3100
# and Tempo's :3200 (admin :8893), reading the stores while they are written.
# otlp-recv scrapes the daemons' admin endpoints (config/scrape-self.yml), so
# the stack's own metrics are in DIR/metrics: up{job="telkit"}.
set -euo pipefail
caller=$PWD  # a relative --data DIR is taken from here
cd "$(dirname "$0")/.."
root=$PWD
demo=0 exit_after=0 print=0 build=1 data=$root/data
while (($#)); do
  case $1 in
    --demo) demo=1 ;;
    --exit) exit_after=1 ;;
    --print) print=1 ;;
    --no-build) build=0 ;;
    --data) data=$(cd "$caller" && realpath -m "${2:?--data needs a directory}"); shift ;;
    *) echo "usage: scripts/stack.sh [--demo] [--exit] [--data DIR] [--print] [--no-build]" >&2; exit 2 ;;
  esac
  shift
done

# stack_commands: "NAME PORT ARGS..." a daemon, in start order, with the
# placeholders of systemd/stack.commands replaced for DIR.
stack_commands() {
  sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' \
    -e "s|@LISTEN:\([-[:alnum:]]*\)@|listen:unix:@RUN@/\1.sock|g" \
    -e "s|@SCRAPE-CONFIG@|$root/config/scrape-self.yml|g" -e "s|@RULES@|$root/rules|g" -e "s|@RUN@|$data/run|g" -e "s|@DATA@|$data|g" "$root/systemd/stack.commands"
}
if ((print)); then
  stack_commands | while read -r name _ args; do echo "$name $args"; done
  exit 0
fi

bin=$root/build/tools
if ((build)); then
  if ((demo)); then scripts/setup.sh --demo; else scripts/setup.sh; fi
  scripts/build.sh otlp-recv tel-batch tel-cat tsdb-write log-ingest trace-store tel-query stack-health
else
  for name in $(stack_commands | cut -d' ' -f1) stack-health; do
    [[ -x $bin/$name/$name ]] || { echo "--no-build: $bin/$name/$name is not built (scripts/build.sh first)" >&2; exit 1; }
  done
fi
mkdir -p "$data/run"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
pids=() names=()
stop() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do  # upstream first, so each drains into the next
    [[ -n ${pids[i]} ]] || continue
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap stop EXIT
trap 'exit 130' INT TERM

wait_ready() {  # wait_ready PORT NAME LOG
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$1/readyz" 2>/dev/null && return 0; sleep 0.1; done
  echo "$2 did not start:"; cat "$3"; exit 1
}

while read -r name port args; do
  say "starting $name $args (admin 127.0.0.1:$port)"
  # shellcheck disable=SC2086  # the arguments are words; stack.commands has no quoting
  "$bin/$name/$name" $args </dev/null 2>>"$data/$name.log" &
  pids+=($!) names+=("$name")
  wait_ready "$port" "$name" "$data/$name.log"
done < <(stack_commands)

if ((demo)); then
  client=$root/tests/e2e/client
  say "installing the OpenTelemetry JS SDK demo client (npm ci)"
  (cd "$client" && npm ci --no-audit --no-fund --prefer-offline >/dev/null)
  for proto in grpc http/protobuf http/json; do
    endpoint=http://127.0.0.1:4318; [[ $proto == grpc ]] && endpoint=http://127.0.0.1:4317
    say "the SDK sends traces, metrics and logs over $proto"
    node "$client/send.mjs" --endpoint "$endpoint" --protocol "$proto" --count 3 --service "demo-${proto//\//-}" \
      --manifest "$data/demo-manifest.json" --quiet
    echo "sent: $(node -e 'const c=require(process.argv[1]).counts; console.log(`${c.spans} spans, ${c.metricDataPoints} data points, ${c.logRecords} log records`)' "$data/demo-manifest.json")"
  done
  sleep 1  # tel-batch flushes a batch after at most 200 ms
  say "log lines read back from the store: log-ingest query --data $data/logs '{service_name=\"demo-grpc\"}' --limit 3"
  "$bin/log-ingest/log-ingest" query --data "$data/logs" '{service_name="demo-grpc"}' --limit 3 | cut -c 1-160
  say "traces read back from the store: trace-store search --data $data/traces --service demo-grpc --limit 3"
  "$bin/trace-store/trace-store" search --data "$data/traces" --service demo-grpc --limit 3 | cut -c 1-160
  say "a metric read back from the store: tsdb-write query --data $data/metrics 'web_requests_total'"
  for _ in $(seq 50); do  # tel-batch forwards a batch after at most 200 ms
    out=$("$bin/tsdb-write/tsdb-write" query --data "$data/metrics" 'web_requests_total' 2>/dev/null) && [[ -n $out ]] && break
    sleep 0.1
  done
  # name{labels...} value @ timestamp, the labels shortened
  head -n 3 <<<"$out" | awk '{ v = $(NF - 1); t = $NF; l = $0; sub(/ [^ ]+ [^ ]+$/, "", l)
    print substr(l, 1, 110) "...} " v " @ " t }'
  say "PromQL over the store: tel-query promql 'sum by (job) (web_requests_total)' --data $data/metrics"
  "$bin/tel-query/tel-query" promql 'sum by (job) (web_requests_total)' --data "$data/metrics" || true
  say "the same through the Prometheus HTTP API: curl 127.0.0.1:9090/api/v1/query"
  curl -fsS http://127.0.0.1:9090/api/v1/query --data-urlencode 'query=count({__name__=~".+"})' | cut -c 1-200; echo
  say "the daemons' own counters: curl 127.0.0.1:8888/metrics, 127.0.0.1:8889/metrics, 127.0.0.1:8890/metrics"
  curl -fsS http://127.0.0.1:8888/metrics | grep -E '^otlp_recv_received_items_total' | head -n 9
  curl -fsS http://127.0.0.1:8889/metrics | grep -E '^tel_batch_(received_items|batch_items|dropped_items)_total' | head -n 6
  curl -fsS http://127.0.0.1:8890/metrics | grep -E '^tsdb_write_(head_series|samples_appended_total|frames_acked_total)' | head -n 3

  app=$root/examples/demo-app
  say "the demo application: frontend -> orders -> inventory, three Node services with the OpenTelemetry SDK (examples/demo-app)"
  (cd "$app" && npm ci --no-audit --no-fund --prefer-offline >/dev/null)
  node "$app/demo.mjs" --duration 15 --rate 20
  say "slow requests: trace-store search --data $data/traces --service inventory --min-duration 300ms --limit 3"
  for _ in $(seq 50); do  # trace-store cuts a trace 10 s after its last span
    out=$("$bin/trace-store/trace-store" search --data "$data/traces" --service inventory --min-duration 300ms --limit 3)
    [[ -n $out ]] && break
    sleep 0.5
  done
  cut -c 1-160 <<<"$out"
  say "the errors in the logs: log-ingest query --data $data/logs '{service_name=\"frontend\"}' --contains failed --limit 3"
  "$bin/log-ingest/log-ingest" query --data "$data/logs" '{service_name="frontend"}' --contains failed --limit 3 | cut -c 1-160
  say "RED metrics from the spans (trace-store sends span metrics every 15 s): calls and errors by service"
  q='sum by (service, status_code) (traces_spanmetrics_calls_total{span_kind="SPAN_KIND_SERVER"})'
  for _ in $(seq 60); do
    out=$("$bin/tel-query/tel-query" promql "$q" --data "$data/metrics" 2>/dev/null) && [[ -n $out ]] && break
    sleep 0.5
  done
  echo "tel-query promql '$q'"
  echo "$out"
  say "the service map: sum by (client, server) (traces_service_graph_request_total)"
  "$bin/tel-query/tel-query" promql 'sum by (client, server) (traces_service_graph_request_total)' --data "$data/metrics" || true
  say "the same service map with request rates and latencies: tel-query services --data $data/metrics"
  "$bin/tel-query/tel-query" services --data "$data/metrics" || true

  tq=$bin/tel-query/tel-query
  q='sum by (service_name) (count_over_time({service_name=~"frontend|orders|inventory"} |= "failed" [5m]))'
  say "LogQL: tel-query logql '$q' --logs-data $data/logs"
  "$tq" logql "$q" --logs-data "$data/logs" || true
  say "the same through the Loki HTTP API: curl 127.0.0.1:3100/loki/api/v1/query"
  curl -fsS -G http://127.0.0.1:3100/loki/api/v1/query --data-urlencode "query=$q" | cut -c 1-300; echo
  q='{ resource.service.name = "inventory" && duration > 300ms }'
  say "TraceQL: tel-query traceql '$q' --traces-data $data/traces --limit 3"
  "$tq" traceql "$q" --traces-data "$data/traces" --limit 3 | cut -c 1-160 || true
  say "the same through the Tempo HTTP API: curl 127.0.0.1:3200/api/search?q=..."
  curl -fsS -G http://127.0.0.1:3200/api/search --data-urlencode "q=$q" --data-urlencode limit=3 | cut -c 1-300; echo
  id=$("$tq" traceql "$q" --traces-data "$data/traces" --limit 1 -o json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);const t=(j.traces||j)[0];console.log(t.traceID||t.trace_id||"")}catch(e){}})')
  if [[ -n $id ]]; then
    say "one slow trace as a waterfall, with its log lines: tel-query trace $id --traces-data $data/traces --logs-data $data/logs"
    "$tq" trace "$id" --traces-data "$data/traces" --logs-data "$data/logs" || true
  fi

  say "the stack's own metrics, scraped by otlp-recv (config/scrape-self.yml): up{job=\"telkit\"}"
  for _ in $(seq 40); do  # the first scrape is at most 15 s after the start
    out=$("$tq" promql 'up{job="telkit"}' --data "$data/metrics" 2>/dev/null) && [[ -n $out ]] && break
    sleep 0.5
  done
  echo "$out"
  say "the health of the whole stack: stack-health --data $data --canary"
  status=0
  "$bin/stack-health/stack-health" --data "$data" --canary --state-file "$data/stack-health.json" || status=$?
  echo "stack-health exit status $status (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)"
  echo
  echo "Grafana: examples/grafana (data source and dashboards: stack health, RED, service map)"
fi

if ((exit_after)); then exit 0; fi
say "stack running (data in $data); Ctrl-C stops it"
# A daemon that exits is reported and the others keep running, as under
# systemd: upstream stages hold what they cannot deliver (tel-batch spools,
# the stream resends) until it is back. Start it again with its line from
# `scripts/stack.sh --print` (the others stop when this script does).
while :; do
  live=()
  for i in "${!pids[@]}"; do
    [[ -z ${pids[i]} ]] && continue
    if kill -0 "${pids[i]}" 2>/dev/null; then live+=("${pids[i]}"); continue; fi
    status=0
    wait "${pids[i]}" 2>/dev/null || status=$?
    echo "stack.sh: ${names[i]} (pid ${pids[i]}) exited with status $status; the rest keep running" >&2
    pids[i]=''
  done
  ((${#live[@]})) || break
  wait -n "${live[@]}" 2>/dev/null || true
done
