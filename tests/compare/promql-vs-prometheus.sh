#!/usr/bin/env bash
# Compares tel-query's Prometheus HTTP API with the real Prometheus (the
# Debian 2.42 package, scripts/setup.sh --test) on the same data: for each
# query of QUERIES below, instant and range, the JSON of both APIs is
# normalised with jq -S and diffed.
#   * tel-query serve --compat 2 must answer exactly as Prometheus 2.42: any
#     difference fails.
#   * tel-query serve (3.x semantics, the default) is expected to differ
#     where 2.42 and 3.x differ (../shared/conformance/promql-testdata/
#     README.md); each difference is printed with the query, for the reader,
#     and counted, never failed.
#   Values equal to within 1e-12 relative count as equal and are reported
#   ("last-digit float differences": the engine's summation order).
# Data: one OpenMetrics file (generated below: counters, a gauge, a
# histogram, every 15 s for 30 min ending 1 h ago, some samples exactly on
# window edges). Prometheus gets it with `promtool tsdb create-blocks-from
# openmetrics` (blocks), telkit through `tsdb-write import` into a store when
# tsdb-write is built, else with `--load` (in memory).
# Bounded: loopback ports, every wait limited; ~10 s. Ends with
# "N passed, N failed, N skipped". Set KEEP=1 to keep the work directory.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN_DIR=${TELKIT_BIN_DIR:-$ROOT/build/tools}
TQ=$BIN_DIR/tel-query/tel-query
TSDB=$BIN_DIR/tsdb-write/tsdb-write
WORK=$(mktemp -d "${TMPDIR:-/tmp}/telkit-compare.XXXXXX")
PASS=0 FAIL=0 SKIP=0 DIFF3=0
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
pass() { PASS=$((PASS + 1)); echo "PASS  $1"; }
skip() { SKIP=$((SKIP + 1)); echo "SKIP  $1"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL  $1"; [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/      | /' "$2" | tail -n 20; }
summary() {
  echo "# ${CLOSE:-0} comparisons equal only up to last-digit float differences; $DIFF3 differ under 3.x semantics"
  echo; echo "$PASS passed, $FAIL failed, $SKIP skipped"; [ "$FAIL" = 0 ]
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() {
  local i
  for i in $(seq $((${2:-10} * 10))); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

for c in prometheus promtool jq curl; do
  command -v "$c" >/dev/null || { skip "$c is not installed (scripts/setup.sh --test)"; summary; exit $?; }
done
[ -x "$TQ" ] || { fail "$TQ is not built"; summary; exit 1; }

# ---- data: 30 min every 15 s, ending on a minute boundary 1 h ago
END=$(( ($(date +%s) - 3600) / 60 * 60 ))
START=$((END - 1800))
python3 - "$START" "$END" >"$WORK/data.om" <<'PY'
import sys
start, end = int(sys.argv[1]), int(sys.argv[2])
ts = list(range(start, end + 1, 15))
out = []
out.append("# TYPE req counter")
for job in ("api", "web"):
    for code in ("200", "500"):
        rate = {"200": 10, "500": 1}[code] * (2 if job == "api" else 1)
        for i, t in enumerate(ts):
            if job == "web" and code == "500" and i % 4:   # sparse: a sample a minute
                continue
            out.append(f'req_total{{job="{job}",code="{code}"}} {i * rate} {t}')
out.append("# TYPE temp gauge")
for i, t in enumerate(ts):
    out.append(f'temp{{room="a"}} {20 + (i % 7) * 0.5} {t}')
    pass
for i, t in enumerate(ts[::8]):
    out.append(f'temp{{room="b"}} {18 + i * 0.25} {t}')   # every 2 min: lookback edges
out.append("# TYPE lat histogram")
bounds = ["0.1", "0.5", "1", "+Inf"]
for job in ("api", "web"):
    for b_i, le in enumerate(bounds):
        for i, t in enumerate(ts):
            out.append(f'lat_bucket{{job="{job}",le="{le}"}} {i * (b_i + 1) * (3 if job == "api" else 1)} {t}')
    for i, t in enumerate(ts):
        out.append(f'lat_count{{job="{job}"}} {i * 4 * (3 if job == "api" else 1)} {t}')
    for i, t in enumerate(ts):
        out.append(f'lat_sum{{job="{job}"}} {i * 1.25} {t}')
out.append("# EOF")
print("\n".join(out))
PY

# ---- Prometheus 2.42 over backfilled blocks
mkdir -p "$WORK/prom"
if ! promtool tsdb create-blocks-from openmetrics "$WORK/data.om" "$WORK/prom" >"$WORK/backfill.log" 2>&1; then
  fail "promtool backfill" "$WORK/backfill.log"; summary; exit 1
fi
printf 'global:\n  scrape_interval: 15s\n' >"$WORK/prometheus.yml"
PROM_PORT=$(free_port)
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver \
  --storage.tsdb.retention.time=15d >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PROM_PORT/-/ready" 30 || { fail "prometheus did not start" "$WORK/prometheus.log"; summary; exit 1; }

# ---- telkit: tsdb-write import when built, else in memory
if [ -x "$TSDB" ]; then
  "$TSDB" import --data "$WORK/store" --format openmetrics "$WORK/data.om" >"$WORK/import.log" 2>&1 ||
    { fail "tsdb-write import" "$WORK/import.log"; summary; exit 1; }
  SRC=(--data "$WORK/store")
  echo "# telkit data: tsdb-write import -> store -> tel-query serve --data"
else
  SRC=(--load "$WORK/data.om")
  echo "# telkit data: tel-query serve --load (tsdb-write is not built)"
fi
start_tq() {  # start_tq VAR COMPAT
  local port
  port=$(free_port)
  "$TQ" serve "${SRC[@]}" --listen "127.0.0.1:$port" --admin-listen '' --compat "$2" >"$WORK/tq$2.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$port/api/v1/status/buildinfo" 10 || { fail "tel-query serve --compat $2 did not start" "$WORK/tq$2.log"; summary; exit 1; }
  printf -v "$1" '%s' "$port"
}
start_tq TQ2_PORT 2
start_tq TQ3_PORT 3

# ---- queries: "EXPR" evaluated at instants (edge cases included) and as range queries
QUERIES=(
  'req_total'
  'req_total{job="api",code=~"2.."}'
  'temp'
  'rate(req_total[5m])'
  'sum by (job) (rate(req_total[5m]))'
  'sum(increase(req_total[1m]))'
  'count_over_time(temp[2m])'
  'avg_over_time(temp[5m])'
  'max_over_time(temp{room="b"}[4m])'
  'histogram_quantile(0.9, sum by (job, le) (rate(lat_bucket[5m])))'
  'topk(2, rate(req_total[5m]))'
  'bottomk(1, temp)'
  'max_over_time(rate(req_total[2m])[10m:1m])'
  'sum(req_total offset 5m)'
  'req_total @ '"$((START + 600))"
  'delta(temp[10m])'
  'deriv(temp[10m])'
  'irate(req_total[1m])'
  'resets(req_total[10m])'
  'changes(temp[10m])'
  'label_replace(temp, "x", "$1", "room", "(.*)")'
  'quantile(0.5, temp)'
  'stddev by (job) (rate(req_total[5m]))'
  'absent(nonexistent)'
  'vector(1) + on() group_left count(temp)'
  'scalar(sum(temp))'
  'time()'
)
# Instants: on a sample (edge of 1m/2m/5m windows), between samples, after the end.
INSTANTS=("$((START + 600))" "$((START + 607))" "$((END - 120))" "$((END + 200))")

# Every query is sent to the three servers (curl keeps one connection per
# server through a config file of URLs); json_compare.py then compares all
# answers in one pass: equal, "close" (values that differ only in their last
# digits), or different.
mkdir -p "$WORK/ans"
N=0
: >"$WORK/labels.txt"
add() {  # add LABEL PATH QUERY_STRING
  local port which
  for which in prom tq2 tq3; do
    case $which in prom) port=$PROM_PORT ;; tq2) port=$TQ2_PORT ;; tq3) port=$TQ3_PORT ;; esac
    printf 'url = "http://127.0.0.1:%s/api/v1/%s?%s"\noutput = "%s/ans/%d.%s.json"\n' \
      "$port" "$2" "$3" "$WORK" "$N" "$which" >>"$WORK/curl.$which.cfg"
  done
  printf '%d\t%s\n' "$N" "$1" >>"$WORK/labels.txt"
  N=$((N + 1))
}
enc() { jq -rn --arg v "$1" '$v | @uri'; }

for q in "${QUERIES[@]}"; do
  eq=$(enc "$q")
  for t in "${INSTANTS[@]}"; do add "instant $q @ $t" query "query=$eq&time=$t"; done
  add "range $q" query_range "query=$eq&start=$START&end=$END&step=60"
done
add "series" series "match%5B%5D=req_total&start=$START&end=$END"
add "labels" labels "start=$START&end=$END"
add "label values" label/job/values "start=$START&end=$END"
for which in prom tq2 tq3; do
  curl -sS --max-time 60 -K "$WORK/curl.$which.cfg" || fail "curl to $which"
done
python3 "$ROOT/tests/compare/json_compare.py" --batch "$WORK/ans" "$WORK/labels.txt" >"$WORK/report.txt"
cat "$WORK/report.txt"
PASS=$((PASS + $(grep -c '^PASS' "$WORK/report.txt")))
FAIL=$((FAIL + $(grep -c '^FAIL' "$WORK/report.txt")))
CLOSE=$(grep -c '^PASS.*last-digit' "$WORK/report.txt")
DIFF3=$(grep -c '^      3.x differs' "$WORK/report.txt")
summary
