#!/usr/bin/env bash
# bench/otlp-recv/run.sh: the otlp-recv benchmark (see README.md in this
# folder). Builds otlp-recv and otlp-load, then for each output (a file on
# the local disk, and --out - redirected to /dev/null) starts one otlp-recv
# on 127.0.0.1 ephemeral ports, measures its idle memory, runs otlp-load for
# every signal and protocol (REPS rounds, SECONDS each), measures it again
# idle, and stops it. Prints a Markdown report on stdout, progress on stderr.
#
# Environment (all optional):
#   BUILD_DIR    build directory           (default: <repo>/build-bench)
#   JOBS         ninja -j                  (default: 2)
#   BUILD=0      use the binaries already in BUILD_DIR, do not build
#   SECONDS_PER_CASE  load time of a case  (default: 3)
#   REPS         rounds of every case      (default: 3; medians over these)
#   CONNECTIONS  otlp-load --connections   (default: 4)
#   GZIP=1       add otlp-load --gzip
#   SUSTAINED_SECONDS  when > 0, also one long traces case per protocol into
#                the file, once (default: 0): short cases land in the page
#                cache, a long one shows what the disk sustains
#   OUT_DIR      where the file output goes, on the local disk
#                (default: <BUILD_DIR>/bench-otlp-recv; emptied after each case)
#   OUTPUTS      "file devnull" or either  (default: both)
#   SIGNALS, PROTOCOLS  subsets of "traces metrics logs", "grpc http"
#   RECV_BIN     the otlp-recv binary to measure (default: BUILD_DIR's), e.g.
#                one built from another commit, for a before/after comparison
#   RECV_ENV     environment for otlp-recv, e.g. "MALLOC_ARENA_MAX=2"
#   RECV_FLAGS   extra otlp-recv flags
#
# Every load is bounded (otlp-load --duration, and `timeout`); otlp-recv is
# stopped on exit, also on error or ^C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
JOBS=${JOBS:-2}
SECONDS_PER_CASE=${SECONDS_PER_CASE:-3}
SUSTAINED_SECONDS=${SUSTAINED_SECONDS:-0}
REPS=${REPS:-3}
CONNECTIONS=${CONNECTIONS:-4}
GZIP=${GZIP:-0}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/bench-otlp-recv}
OUTPUTS=${OUTPUTS:-file devnull}
RECV_ENV=${RECV_ENV:-}
RECV_FLAGS=${RECV_FLAGS:-}
SIGNALS=${SIGNALS:-traces metrics logs}
PROTOCOLS=${PROTOCOLS:-grpc http}
IDLE_WAIT=5  # seconds otlp-recv sits idle before each idle measurement

log() { echo "run.sh: $*" >&2; }

if [[ ${BUILD:-1} != 0 ]]; then
  if [[ ! -f $BUILD_DIR/build.ninja ]]; then
    log "configuring $BUILD_DIR"
    CCACHE_BASEDIR=$ROOT cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  log "building otlp-recv and otlp-load"
  CCACHE_BASEDIR=$ROOT ninja -C "$BUILD_DIR" -j"$JOBS" otlp-recv otlp-load >&2
fi
RECV=${RECV_BIN:-$BUILD_DIR/tools/otlp-recv/otlp-recv}
LOAD=$BUILD_DIR/bench/otlp-recv/otlp-load
[[ -x $RECV && -x $LOAD ]] || { log "missing $RECV or $LOAD"; exit 1; }
mkdir -p "$OUT_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/otlp-recv-bench.XXXXXX")

RECV_PID=
cleanup() {
  if [[ -n $RECV_PID ]] && kill -0 "$RECV_PID" 2>/dev/null; then
    kill -TERM "$RECV_PID" 2>/dev/null || true
    wait "$RECV_PID" 2>/dev/null || true
  fi
  rm -f "$OUT_DIR/otlp-recv-bench.tstream"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- measurements of the otlp-recv process ----------------------------------
TICKS=$(getconf CLK_TCK)
cpu_seconds() {  # utime + stime of all threads, in seconds
  sed 's/^.*) //' "/proc/$1/stat" | awk -v t="$TICKS" '{ printf "%.2f", ($12 + $13) / t }'
}
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
rollup_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/smaps_rollup"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
reset_peak() { echo 5 >"/proc/$1/clear_refs"; }  # VmHWM := VmRSS
admin_metric() {  # sum of a metric's series from the admin endpoint
  curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%d", s }'
}
wait_queue_empty() {  # bounded: 30 s
  local i
  for ((i = 0; i < 300; i++)); do
    [[ $(admin_metric otlp_recv_queue_frames) == 0 ]] && return 0
    sleep 0.1
  done
  log "warning: otlp-recv's queue did not drain within 30 s"
}

# idle_snapshot NAME: VmRSS, RssAnon, RssFile, Pss, threads after IDLE_WAIT
# seconds without load, and the CPU spent meanwhile.
idle_snapshot() {
  local before after
  before=$(cpu_seconds "$RECV_PID")
  sleep "$IDLE_WAIT"
  after=$(cpu_seconds "$RECV_PID")
  printf '%s %s %s %s %s %s %s\n' "$1" "$(status_kib "$RECV_PID" VmRSS)" "$(status_kib "$RECV_PID" RssAnon)" \
    "$(status_kib "$RECV_PID" RssFile)" "$(rollup_kib "$RECV_PID" Pss)" "$(status_kib "$RECV_PID" Threads)" \
    "$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.2f", b - a }')" >>"$WORK/idle"
}

start_recv() {  # start_recv OUTPUT_KIND
  local kind=$1 logf=$WORK/recv-$1.log
  local -a env_args=()
  [[ -n $RECV_ENV ]] && read -r -a env_args <<<"$RECV_ENV"
  local -a common=(--http-listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0)
  local -a extra=()
  [[ -n $RECV_FLAGS ]] && read -r -a extra <<<"$RECV_FLAGS"
  if [[ $kind == file ]]; then
    : >"$OUT_DIR/otlp-recv-bench.tstream"
    env "${env_args[@]}" "$RECV" --out "$OUT_DIR/otlp-recv-bench.tstream" "${common[@]}" "${extra[@]}" 2>"$logf" &
  else
    env "${env_args[@]}" "$RECV" --out - "${common[@]}" "${extra[@]}" >/dev/null 2>"$logf" &
  fi
  RECV_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    grep -q 'writing the telemetry stream' "$logf" 2>/dev/null && break
    kill -0 "$RECV_PID" 2>/dev/null || { cat "$logf" >&2; log "otlp-recv did not start"; exit 1; }
    sleep 0.1
  done
  port_of() { sed -n "s|.*$1 on 127.0.0.1:\([0-9]*\).*|\1|p" "$logf" | head -1; }
  GRPC_PORT=$(port_of 'OTLP/gRPC')
  HTTP_PORT=$(port_of 'OTLP/HTTP')
  ADMIN_PORT=$(port_of 'admin endpoint')
  [[ -n $GRPC_PORT && -n $HTTP_PORT && -n $ADMIN_PORT ]] || { cat "$logf" >&2; log "no ports in the log"; exit 1; }
}

stop_recv() {
  kill -TERM "$RECV_PID"
  local i
  for ((i = 0; i < 300; i++)); do kill -0 "$RECV_PID" 2>/dev/null || break; sleep 0.1; done
  wait "$RECV_PID" || log "otlp-recv exited with $?"
  RECV_PID=
}

# run_case OUTPUT SIGNAL PROTOCOL REP [SECONDS [LABEL]]: one bounded otlp-load
# run; appends a row to $WORK/cases (LABEL in the output column).
run_case() {
  local output=$1 signal=$2 protocol=$3 rep=$4 secs=${5:-$SECONDS_PER_CASE} label=${6:-$1} port cpu0 cpu1 res
  port=$([[ $protocol == grpc ]] && echo "$GRPC_PORT" || echo "$HTTP_PORT")
  local -a gz=()
  [[ $GZIP == 1 ]] && gz=(--gzip)
  reset_peak "$RECV_PID"
  cpu0=$(cpu_seconds "$RECV_PID")
  res=$WORK/load-$label-$signal-$protocol-$rep
  timeout $((secs + 60)) "$LOAD" --protocol "$protocol" --signal "$signal" \
    --endpoint "127.0.0.1:$port" --connections "$CONNECTIONS" --duration "$secs" "${gz[@]}" >"$res" ||
    log "otlp-load $protocol $signal failed (exit $?)"
  wait_queue_empty  # the frames accepted are written before the CPU is read
  cpu1=$(cpu_seconds "$RECV_PID")
  local hwm
  hwm=$(status_kib "$RECV_PID" VmHWM)
  get() { awk -F= -v k="$1" '$1 == k { print $2 }' "$res"; }
  local items errs push errlist
  items=$(get items_ok)
  errs=$(get errors)
  push=$(get pushback)
  errlist=$(grep '^error\.' "$res" | sed 's/^error\.//' | paste -sd, - || true)
  # output signal protocol rep items/s req/s recv_cpu_s recv_cpu_per_M load_cpu_s peak_kib errors pushback
  # errlist load_cpu_per_M
  awk -v o="$label" -v s="$signal" -v p="$protocol" -v r="$rep" -v ips="$(get items_per_s)" \
    -v rps="$(get requests_per_s)" -v c0="$cpu0" -v c1="$cpu1" -v items="${items:-0}" -v lc="$(get load_cpu_s)" \
    -v hwm="$hwm" -v e="${errs:-0}" -v pb="${push:-0}" -v el="${errlist:--}" \
    'BEGIN { cpu = c1 - c0; per = items > 0 ? cpu / items * 1e6 : 0;
             lper = items > 0 ? lc / items * 1e6 : 0;
             printf "%s %s %s %s %s %s %.2f %.3f %s %s %s %s %s %.3f\n", o, s, p, r, ips, rps, cpu, per, lc, hwm, e, pb, el, lper }' \
    >>"$WORK/cases"
  [[ $output == file ]] && : >"$OUT_DIR/otlp-recv-bench.tstream"  # bound the disk used
  log "$label $signal $protocol #$rep: $(get items_per_s) items/s, otlp-recv $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }') CPU s, errors ${errs:-?}"
}

: >"$WORK/cases"
: >"$WORK/idle"
STARTED=$(date +%s)
for output in $OUTPUTS; do
  log "otlp-recv --out $([[ $output == file ]] && echo "$OUT_DIR/otlp-recv-bench.tstream" || echo '- >/dev/null')"
  start_recv "$output"
  idle_snapshot "$output:start"
  for ((rep = 1; rep <= REPS; rep++)); do
    for signal in $SIGNALS; do
      for protocol in $PROTOCOLS; do run_case "$output" "$signal" "$protocol" "$rep"; done
    done
  done
  if [[ $output == file && $SUSTAINED_SECONDS -gt 0 ]]; then
    for protocol in $PROTOCOLS; do run_case file traces "$protocol" 1 "$SUSTAINED_SECONDS" file-sustained; done
  fi
  idle_snapshot "$output:after-load"
  stop_recv
done
ELAPSED=$(($(date +%s) - STARTED))

# --- report -----------------------------------------------------------------
# stat COLUMN OUTPUT SIGNAL PROTOCOL [SCALE] -> "median (min–max)"
stat() {
  awk -v col="$1" -v o="$2" -v s="$3" -v p="$4" -v scale="${5:-1}" -v fmt="${6:-%.0f}" '
    $1 == o && $2 == s && $3 == p { v[n++] = $col / scale }
    END {
      if (n == 0) { print "-"; exit }
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      med = n % 2 ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
      printf fmt " (" fmt "–" fmt ")", med, v[0], v[n - 1]
    }' "$WORK/cases"
}
sum_col() { awk -v col="$1" -v o="$2" -v s="$3" -v p="$4" '$1 == o && $2 == s && $3 == p { t += $col } END { printf "%d", t }' "$WORK/cases"; }
errlist() {
  awk -v o="$1" -v s="$2" -v p="$3" '$1 == o && $2 == s && $3 == p && $13 != "-" { print $13 }' "$WORK/cases" |
    tr ',' '\n' | awk -F= '{ t[$1] += $2 } END { for (k in t) printf "%s%s=%d", (n++ ? "," : ""), k, t[k] }'
}

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
cat <<EOF
# otlp-recv benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

- machine: $(nproc) CPUs ($cpu_model), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr);
  **shared**: otlp-load runs on the same $(nproc) cores, and other jobs may have been compiling meanwhile.
- build: $(basename "$BUILD_DIR") ($(awk -F= '/^CMAKE_BUILD_TYPE:/ { print $2 }' "$BUILD_DIR/CMakeCache.txt")), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + local changes')
- load: otlp-load, $CONNECTIONS connections, one request in flight each, 512 items a request,
  32 distinct pre-encoded requests, gzip $([[ $GZIP == 1 ]] && echo on || echo off); ${SECONDS_PER_CASE} s a case, $REPS rounds; total $ELAPSED s
- otlp-recv: $RECV; defaults (16 HTTP threads, 256 MiB queue), listeners and admin endpoint on 127.0.0.1${RECV_ENV:+, env $RECV_ENV}${RECV_FLAGS:+, flags $RECV_FLAGS}
- file output: $OUT_DIR (local disk, $(df -PT "$OUT_DIR" | awk 'NR == 2 { print $2 }'); emptied after each case; the page cache
  absorbs the writes, the kernel's write-back CPU is not charged to otlp-recv)
- figures are "median (min–max)" over the $REPS rounds; CPU is utime+stime of /proc/PID/stat
  (10 ms ticks) from the start of the load to the moment the queue is empty again

## Throughput and CPU

| output | signal | protocol | million items/s | requests/s | otlp-recv CPU s / M items | otlp-load CPU s / M items | peak RSS MiB | failed requests |
|---|---|---|---|---|---|---|---|---|
EOF
REPORT_OUTPUTS=$OUTPUTS
[[ " $OUTPUTS " == *" file "* && $SUSTAINED_SECONDS -gt 0 ]] && REPORT_OUTPUTS="$OUTPUTS file-sustained"
for output in $REPORT_OUTPUTS; do
  for signal in $SIGNALS; do
    for protocol in $PROTOCOLS; do
      [[ $output == file-sustained && $signal != traces ]] && continue
      errs=$(sum_col 11 "$output" "$signal" "$protocol")
      el=$(errlist "$output" "$signal" "$protocol")
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$output" "$signal" "$protocol" \
        "$(stat 5 "$output" "$signal" "$protocol" 1e6 %.2f)" "$(stat 6 "$output" "$signal" "$protocol")" \
        "$(stat 8 "$output" "$signal" "$protocol" 1 %.2f)" "$(stat 14 "$output" "$signal" "$protocol" 1 %.2f)" \
        "$(stat 10 "$output" "$signal" "$protocol" 1024 %.1f)" "$errs${el:+ ($el)}"
    done
  done
done

cat <<EOF

## Idle memory of otlp-recv

| moment | VmRSS MiB | anon MiB | file-backed MiB | PSS MiB | threads | CPU s in ${IDLE_WAIT} s idle |
|---|---|---|---|---|---|---|
EOF
while read -r name rss anon file pss threads cpu; do
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(mib "$rss")" "$(mib "$anon")" "$(mib "$file")" "$(mib "$pss")" "$threads" "$cpu"
done <"$WORK/idle"

# Goals table: the best output is "file" when measured (the issue's goal is into a file).
goal_output=$( [[ " $OUTPUTS " == *" file "* ]] && echo file || echo devnull)
idle_start=$(awk -v o="$goal_output:start" '$1 == o { print $2 }' "$WORK/idle")
idle_after=$(awk -v o="$goal_output:after-load" '$1 == o { print $2 }' "$WORK/idle")
cat <<EOF

## Against the goals (issue 2), output: $goal_output

| figure | OpenTelemetry Collector | telkit goal | otlp-recv, gRPC | otlp-recv, HTTP |
|---|---|---|---|---|
| CPU s per million spans | ~6 | ≤ 0.6 | $(stat 8 "$goal_output" traces grpc 1 %.2f) | $(stat 8 "$goal_output" traces http 1 %.2f) |
| CPU s per million data points | ~26 | (10x less: ≤ 2.6) | $(stat 8 "$goal_output" metrics grpc 1 %.2f) | $(stat 8 "$goal_output" metrics http 1 %.2f) |
| CPU s per million log records | ~10 | (10x less: ≤ 1.0) | $(stat 8 "$goal_output" logs grpc 1 %.2f) | $(stat 8 "$goal_output" logs http 1 %.2f) |
| million spans/s into a file, ${SECONDS_PER_CASE} s (page cache) | – | > 1 | $(stat 5 file traces grpc 1e6 %.2f) | $(stat 5 file traces http 1e6 %.2f) |
EOF
if [[ " $OUTPUTS " == *" file "* && $SUSTAINED_SECONDS -gt 0 ]]; then
  echo "| million spans/s into a file, ${SUSTAINED_SECONDS} s once (disk-bound) | – | > 1 | $(stat 5 file-sustained traces grpc 1e6 %.2f) | $(stat 5 file-sustained traces http 1e6 %.2f) |"
fi
echo "| idle RSS MiB (start / ${IDLE_WAIT} s after the load) | 45 | < 15 | $(mib "$idle_start") / $(mib "$idle_after") | (same process) |"
