#!/usr/bin/env bash
# PromQL latency and memory: tel-query serve against Prometheus 2.42 on the
# shared metrics-ingest dataset (../shared/bench/metrics-ingest/gen.py),
# side by side in one run. Both get the same OpenMetrics file: Prometheus
# through `promtool tsdb create-blocks-from openmetrics`, telkit through
# `tsdb-write import` (a store read by `tel-query serve --data`) when
# tsdb-write is built, else `tel-query serve --load` (in memory).
#   bench/promql/vs-prometheus.sh [HOSTS=50] [DURATION=7200] [RUNS=5]
# (50 hosts x 200 series = 10k series, 2 h at 15 s). Prints a Markdown
# table: median wall ms per query over RUNS (instant at the end, range over
# the whole dataset at 15 s), the server's CPU time per request (utime +
# stime over the RUNS requests: steadier than wall time on a loaded machine),
# and each server's peak RSS (VmHWM).
set -u
HOSTS=${1:-50} DURATION=${2:-7200} RUNS=${3:-5}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN_DIR=${TELKIT_BIN_DIR:-$ROOT/build/tools}
TQ=$BIN_DIR/tel-query/tel-query
TSDB=$BIN_DIR/tsdb-write/tsdb-write
GEN=${TELKIT_SHARED_DIR:-$ROOT/../shared}/bench/metrics-ingest/gen.py
[ -f "$GEN" ] || { echo "skip: $GEN is absent"; exit 0; }
for c in prometheus promtool curl jq; do command -v "$c" >/dev/null || { echo "skip: no $c"; exit 0; }; done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/telkit-promql-bench.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { local i; for i in $(seq 600); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

START=$(( ($(date +%s) - DURATION - 600) / 3600 * 3600 ))
END=$((START + DURATION))
/usr/bin/python3 "$GEN" --out "$WORK/ds" --hosts "$HOSTS" --duration "$DURATION" --start "$START" --no-check >/dev/null ||
  { echo "gen.py failed"; exit 1; }
OM=$WORK/ds/dataset.om.txt
echo "# dataset: $HOSTS hosts, $DURATION s, $(grep -vc '^#' "$OM") samples"

mkdir -p "$WORK/prom"
promtool tsdb create-blocks-from openmetrics "$OM" "$WORK/prom" >/dev/null 2>&1 || { echo "promtool backfill failed"; exit 1; }
printf 'global:\n  scrape_interval: 15s\n' >"$WORK/prometheus.yml"
PROM_PORT=$(free_port)
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" --web.listen-address="127.0.0.1:$PROM_PORT" \
  --storage.tsdb.retention.time=30d >"$WORK/prom.log" 2>&1 &
PROM_PID=$!; PIDS+=("$PROM_PID")
if [ -x "$TSDB" ]; then
  "$TSDB" import --data "$WORK/store" --format openmetrics "$OM" >/dev/null 2>&1 || { echo "tsdb-write import failed"; exit 1; }
  SRC=(--data "$WORK/store"); echo "# telkit: tsdb-write import -> tel-query serve --data"
else
  SRC=(--load "$OM"); echo "# telkit: tel-query serve --load (tsdb-write not built)"
fi
TQ_PORT=$(free_port)
"$TQ" serve "${SRC[@]}" --listen "127.0.0.1:$TQ_PORT" --admin-listen '' >"$WORK/tq.log" 2>&1 &
TQ_PID=$!; PIDS+=("$TQ_PID")
# On a shared, loaded machine wall times are mostly waits for a core:
# BENCH_NICE=-10 (root) renices both servers alike.
if [ -n "${BENCH_NICE:-}" ]; then renice -n "$BENCH_NICE" -p "$PROM_PID" "$TQ_PID" >/dev/null || echo "# renice failed"; fi
wait_http "http://127.0.0.1:$PROM_PORT/-/ready" || { echo "prometheus did not start"; exit 1; }
wait_http "http://127.0.0.1:$TQ_PORT/api/v1/status/buildinfo" || { echo "tel-query did not start"; cat "$WORK/tq.log"; exit 1; }

QUERIES=(
  'node_memory_MemAvailable_bytes'
  # Over every counter: rate() drops __name__, so a plain sum by (job) over
  # {__name__=~".+_total"} is a duplicate-series error in 2.42; keep the name.
  'sum by (job) (rate(node_cpu_seconds_total[5m]))'
  'sum by (job, mode) (rate(node_cpu_seconds_total[5m])) + ignoring(mode) group_left sum by (job) (rate(node_network_receive_bytes_total[5m]))'
  'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))'
  'topk(5, rate(node_cpu_seconds_total[5m]))'
  'max_over_time(rate(node_network_receive_bytes_total[5m])[30m:1m])'
)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime, all threads
TICK_MS=$(awk -v h="$(getconf CLK_TCK)" 'BEGIN { print 1000 / h }')
# measure PORT PID PATH PARAMS...: "MEDIAN_WALL_MS CPU_MS": the median of
# RUNS wall times and the server's CPU time per request (its utime+stime over
# the RUNS requests / RUNS: robust on a shared, loaded machine).
measure() {
  local port=$1 pid=$2 path=$3; shift 3
  local i c0 c1 med
  c0=$(cpu_ticks "$pid")
  med=$(for i in $(seq "$RUNS"); do
    curl -sS -o /dev/null -w '%{time_total}\n' -G "http://127.0.0.1:$port/api/v1/$path" "$@"
  done | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] * 1000 }')
  c1=$(cpu_ticks "$pid")
  echo "$med $(awk -v d=$((c1 - c0)) -v t="$TICK_MS" -v n="$RUNS" 'BEGIN { printf "%.1f", d * t / n }')"
}
check_same() {  # the two answers' result sizes, to see both did the same work
  local a b
  a=$(curl -sS -G "http://127.0.0.1:$PROM_PORT/api/v1/$1" "${@:2}" | jq -c '.data.result | length')
  b=$(curl -sS -G "http://127.0.0.1:$TQ_PORT/api/v1/$1" "${@:2}" | jq -c '.data.result | length')
  [ "$a" = "$b" ] && echo "$a" || echo "$a vs $b"
}
echo
echo "| query | kind | series | Prometheus ms | telkit ms | speed-up | Prometheus CPU ms | telkit CPU ms | CPU ratio |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
for q in "${QUERIES[@]}"; do
  for kind in instant range; do
    if [ $kind = instant ]; then args=(query --data-urlencode "query=$q" --data-urlencode "time=$END")
    else args=(query_range --data-urlencode "query=$q" --data-urlencode "start=$START" --data-urlencode "end=$END" --data-urlencode "step=15"); fi
    n=$(check_same "${args[@]}")  # also warms both (caches, first-query setup)
    read -r p pc < <(measure "$PROM_PORT" "$PROM_PID" "${args[@]}")
    read -r t tc < <(measure "$TQ_PORT" "$TQ_PID" "${args[@]}")
    ratio() { awk -v p="$1" -v t="$2" 'BEGIN { printf (t > 0 ? "%.2fx" : "n/a"), (t > 0 ? p / t : 0) }'; }
    echo "| \`$q\` | $kind | $n | $p | $t | $(ratio "$p" "$t") | $pc | $tc | $(ratio "$pc" "$tc") |"
  done
done
echo
echo "peak RSS (VmHWM): Prometheus $(awk '/VmHWM/ { printf "%.0f MiB", $2 / 1024 }' /proc/$PROM_PID/status), tel-query $(awk '/VmHWM/ { printf "%.0f MiB", $2 / 1024 }' /proc/$TQ_PID/status)"
