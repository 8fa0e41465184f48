#!/usr/bin/env bash
# bench/tel-batch/run.sh: the tel-batch benchmark (see README.md in this
# folder). Writes one input stream per signal (ITEMS items, requests of 512),
# then runs `tel-batch -i FILE -o /dev/null` over each with the chain
# memory_limiter,resource,filter,sampling,batch (an upserted resource
# attribute, a drop filter that matches nothing, 50 % probabilistic
# sampling), REPS times, and prints a Markdown table: items/s (wall), CPU
# seconds (user + system) per million items, peak RSS, and the OpenTelemetry
# Collector's published figures beside them. Progress on stderr.
#
# Environment (all optional):
#   BUILD_DIR  build directory            (default: <repo>/build)
#   BUILD=0    use the binaries already there, do not build
#   JOBS       ninja -j                   (default: 2)
#   ITEMS      items per signal           (default: 1000000)
#   REPS       runs per signal, best kept (default: 3)
#   SIGNALS    subset of "traces metrics logs"
#   BATCH_BIN  the tel-batch binary to measure (before/after comparisons)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
JOBS=${JOBS:-2}
ITEMS=${ITEMS:-1000000}
REPS=${REPS:-3}
SIGNALS=${SIGNALS:-traces metrics logs}

log() { echo "run.sh: $*" >&2; }

if [[ ${BUILD:-1} != 0 ]]; then
  log "building tel-batch and tel-batch-make-stream"
  ninja -C "$BUILD_DIR" -j"$JOBS" tel-batch tel-batch-make-stream >&2
fi
BATCH=${BATCH_BIN:-$BUILD_DIR/tools/tel-batch/tel-batch}
MAKE=$BUILD_DIR/bench/tel-batch/tel-batch-make-stream
[[ -x $BATCH && -x $MAKE ]] || { log "missing $BATCH or $MAKE"; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tel-batch-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The filter of each signal: a realistic expression that matches nothing, so
# every item is looked at and the sampler still sees all of them.
declare -A FILTER=(
  [traces]="--drop-spans=name == healthcheck && duration_ms < 1"
  [metrics]="--drop-points=name == debug.unused"
  [logs]="--drop-logs=severity < debug"
)
# OpenTelemetry Collector, published load tests (CPU s per million items).
declare -A COLLECTOR=([traces]="6.2" [metrics]="25.7" [logs]="—")

echo "| signal | items | items/s | CPU s per 1M items | peak RSS (MiB) | Collector CPU s per 1M |"
echo "|---|---|---|---|---|---|"
for signal in $SIGNALS; do
  input=$WORK/$signal.tks
  made=$("$MAKE" "$signal" "$ITEMS" "$input")
  items=$(sed 's/.*items=\([0-9]*\).*/\1/' <<<"$made")
  log "$signal: $made"
  best_cpu= best_wall= best_rss=
  for rep in $(seq "$REPS"); do
    # %e wall s, %U user s, %S system s, %M max RSS KiB
    m=$(/usr/bin/time -f "%e %U %S %M" "$BATCH" --admin-listen '' -i "$input" -o /dev/null \
      --processor memory_limiter,resource,filter,sampling,batch --resource-attr upsert:deployment.environment=bench \
      "${FILTER[$signal]}" --sample-percent 50 2>&1 >/dev/null | tail -n 1)
    read -r wall user sys rss <<<"$m"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    log "$signal run $rep: wall ${wall}s cpu ${cpu}s rss ${rss}KiB"
    if [[ -z $best_cpu ]] || awk -v a="$cpu" -v b="$best_cpu" 'BEGIN { exit !(a < b) }'; then
      best_cpu=$cpu best_wall=$wall best_rss=$rss
    fi
  done
  awk -v s="$signal" -v n="$items" -v c="$best_cpu" -v w="$best_wall" -v r="$best_rss" -v o="${COLLECTOR[$signal]}" \
    'BEGIN { printf "| %s | %d | %.0f | %.2f | %.0f | %s |\n", s, n, (w > 0 ? n / w : 0), c / n * 1e6, r / 1024, o }'
done
echo
echo "Best of $REPS runs (by CPU). The Collector's figures: 10k items/s at 6.2 % (spans) and 25.7 % (data points) of a core."
