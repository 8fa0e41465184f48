#!/usr/bin/env bash
# Runs the telkit stack on its default local setup: every daemon in the
# foreground of this script, data under one directory, no systemd needed.
#   scripts/stack.sh [--demo] [--exit] [--data DIR]
# --demo  also sends telemetry with the OpenTelemetry SDK and shows it queried
# --exit  stop the stack after the demo instead of running until Ctrl-C
# The stack today: otlp-recv (OTLP gRPC :4317, HTTP :4318, admin :8888)
# -> Unix socket -> tel-batch (admin :8889), which batches and routes by
# signal over Unix sockets (DIR/run/*.sock) to the stores:
#   metrics  tsdb-write   store DIR/metrics, admin :8890
#   logs     log-ingest   store DIR/logs,    admin :8891
#   traces   trace-store  store DIR/traces,  admin :8892 (span metrics and
#                         service graphs go back into tsdb-write)
# and tel-query serve answers PromQL on the Prometheus HTTP API :9090
# (admin :8893), reading DIR/metrics while tsdb-write writes it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=0 exit_after=0 data=$root/data
while (($#)); do
  case $1 in
    --demo) demo=1 ;;
    --exit) exit_after=1 ;;
    --data) data=$(realpath -m "$2"); shift ;;
    *) echo "usage: scripts/stack.sh [--demo] [--exit] [--data DIR]" >&2; exit 2 ;;
  esac
  shift
done

if ((demo)); then scripts/setup.sh --demo; else scripts/setup.sh; fi
scripts/build.sh otlp-recv tel-batch tel-cat tsdb-write log-ingest trace-store tel-query
bin=$root/build/tools
mkdir -p "$data/run"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
pids=()
stop() {
  local pid
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do  # upstream first, so each drains into the next
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

say "starting tsdb-write: listen:unix:$data/run/tsdb.sock -> store $data/metrics, admin 127.0.0.1:8890"
"$bin/tsdb-write/tsdb-write" serve --data "$data/metrics" --in "listen:unix:$data/run/tsdb.sock" \
  2>>"$data/tsdb-write.log" &
pids+=($!)
wait_ready 8890 tsdb-write "$data/tsdb-write.log"

say "starting log-ingest: listen:unix:$data/run/logs.sock -> store $data/logs, admin 127.0.0.1:8891"
"$bin/log-ingest/log-ingest" --data "$data/logs" --in "listen:unix:$data/run/logs.sock" --admin-listen 127.0.0.1:8891 \
  2>>"$data/log-ingest.log" &
pids+=($!)
wait_ready 8891 log-ingest "$data/log-ingest.log"

say "starting trace-store: listen:unix:$data/run/traces.sock -> store $data/traces, admin 127.0.0.1:8892"
"$bin/trace-store/trace-store" --data "$data/traces" --in "listen:unix:$data/run/traces.sock" \
  --metrics-out "unix:$data/run/tsdb.sock" 2>>"$data/trace-store.log" &
pids+=($!)
wait_ready 8892 trace-store "$data/trace-store.log"

say "starting tel-query serve: Prometheus HTTP API 127.0.0.1:9090 over $data/metrics, admin 127.0.0.1:8893"
"$bin/tel-query/tel-query" serve --data "$data/metrics" 2>>"$data/tel-query.log" &
pids+=($!)
wait_ready 8893 tel-query "$data/tel-query.log"

say "starting tel-batch: listen:unix:$data/run/batch.sock -> the three stores, admin 127.0.0.1:8889"
"$bin/tel-batch/tel-batch" --in "listen:unix:$data/run/batch.sock" --traces-out "unix:$data/run/traces.sock" \
  --metrics-out "unix:$data/run/tsdb.sock" --logs-out "unix:$data/run/logs.sock" 2>>"$data/tel-batch.log" &
pids+=($!)
wait_ready 8889 tel-batch "$data/tel-batch.log"

say "starting otlp-recv: OTLP gRPC :4317, HTTP :4318, admin 127.0.0.1:8888 -> unix:$data/run/batch.sock"
"$bin/otlp-recv/otlp-recv" --out "unix:$data/run/batch.sock" 2>>"$data/otlp-recv.log" &
pids+=($!)
wait_ready 8888 otlp-recv "$data/otlp-recv.log"

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
fi

if ((exit_after)); then exit 0; fi
say "stack running (data in $data); Ctrl-C stops it"
wait -n "${pids[@]}"
