#!/usr/bin/env bash
# Runs the telkit stack on its default local setup: every daemon in the
# foreground of this script, data under one directory, no systemd needed.
#   scripts/stack.sh [--demo] [--exit] [--data DIR]
# --demo  also sends telemetry with the OpenTelemetry SDK and shows it queried
# --exit  stop the stack after the demo instead of running until Ctrl-C
# The stack today: otlp-recv (OTLP gRPC :4317, HTTP :4318, admin :8888)
# writing the telemetry stream to DIR/otlp.stream, read with tel-cat.
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
scripts/build.sh otlp-recv tel-cat
bin=$root/build/tools
mkdir -p "$data"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
pids=()
stop() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT
trap 'exit 130' INT TERM

say "starting otlp-recv: OTLP gRPC :4317, HTTP :4318, admin 127.0.0.1:8888 -> $data/otlp.stream"
"$bin/otlp-recv/otlp-recv" --out "$data/otlp.stream" 2>>"$data/otlp-recv.log" &
pids+=($!)
for _ in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:8888/readyz 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null http://127.0.0.1:8888/readyz || { echo "otlp-recv did not start:"; cat "$data/otlp-recv.log"; exit 1; }

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
  sleep 0.5
  say "what arrived, frame by frame: tel-cat --summary $data/otlp.stream"
  "$bin/tel-cat/tel-cat" --summary "$data/otlp.stream" | tail -n 12
  say "one span as OTLP/JSON: tel-cat --signal traces ... | head -1"
  "$bin/tel-cat/tel-cat" --signal traces "$data/otlp.stream" | head -n 1 | cut -c 1-400
  echo "..."
  say "otlp-recv's own counters: curl 127.0.0.1:8888/metrics"
  curl -fsS http://127.0.0.1:8888/metrics | grep -E '^otlp_recv_(received_items|refused_requests)_total' | head -n 12
fi

if ((exit_after)); then exit 0; fi
say "stack running (data in $data); Ctrl-C stops it"
wait "${pids[0]}"
