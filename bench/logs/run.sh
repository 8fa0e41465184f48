#!/usr/bin/env bash
# The log store benchmark, side by side with the usual tools on one corpus:
#   bench/logs/run.sh [--mib 1100] [--keep DIR]
# Generates a deterministic corpus of --mib MiB (default 1100: >= 1 GiB of
# raw lines; gen_corpus.py), ingests it with log_bench (LogStore: WAL fsync,
# chunk cuts, zstd), scans it with a line filter, then runs gzip -6, zstd -3,
# zstd -19 --long and grep -c on the same lines and prints one table.
# Bounded: ~4-6 minutes for 1 GiB on a 2-core VM; zstd -19 --long runs on
# the first ZSTD19_SAMPLE_MIB MiB only (default 64; it compresses at
# ~2 MB/s), and says so. The LogQL rows need build/tools/tel-query/tel-query. Not run in CI. Needs build/bench/logs/log_bench
# (scripts/build.sh -j2 log_bench). LOG_BENCH_CODECS=1 adds log_bench's
# per-codec table on the store's raw blocks.
set -euo pipefail
cd "$(dirname "$0")/../.."
mib=1100 keep=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --mib) mib=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "usage: bench/logs/run.sh [--mib N] [--keep DIR]" >&2; exit 2 ;;
  esac
done
sample_mib=${ZSTD19_SAMPLE_MIB:-64}
bench=build/bench/logs/log_bench
[[ -x $bench ]] || { echo "build it first: scripts/build.sh -j2 log_bench" >&2; exit 1; }
work=${keep:-$(mktemp -d "${TMPDIR:-/tmp}/logbench.XXXXXX")}
mkdir -p "$work"
[[ -n $keep ]] || trap 'rm -rf "$work"' EXIT
needle=IllegalStateException

[[ -f $work/corpus.log ]] || python3 bench/logs/gen_corpus.py "$work/corpus.log" --mib "$mib"
cut -f2- "$work/corpus.log" >"$work/lines.log"  # the lines as stored (no kind prefix)
raw=$(stat -c %s "$work/lines.log")

echo "== log store (log_bench)" >&2
"$bench" "$work/corpus.log" "$work/db" "$needle" | tee "$work/store.txt" >&2
result=$(grep '^RESULT ' "$work/store.txt")
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }

# cpu CMD...: runs CMD (stdout to $work/out), prints its user+system CPU seconds.
cpu() { { /usr/bin/time -f '%U %S' "$@" >"$work/out"; } 2>&1 | tail -n1 | awk '{print $1 + $2}'; }
gib() { awk -v b="$1" 'BEGIN { printf "%.3f", b / 1073741824 }'; }
row() { printf '| %-38s | %14s | %6s | %20s | %22s |\n' "$@"; }
# tool_row NAME INPUT_BYTES CMD...: a compressor's ratio and CPU s per GiB.
tool_row() {
  local name=$1 in_bytes=$2; shift 2
  echo "== $name" >&2
  local c; c=$(cpu "$@")
  local out; out=$(stat -c %s "$work/out")
  row "$name" "$(awk -v o="$out" -v r="$in_bytes" 'BEGIN{printf "%.4f", o/r}')" \
    "$(awk -v o="$out" -v r="$in_bytes" 'BEGIN{printf "%.2f", r/o}')" \
    "$(awk -v c="$c" -v r="$in_bytes" 'BEGIN{printf "%.1f (compress)", c/(r/1073741824)}')" "-"
}

# LogQL over the whole store through tel-query (the engine, its push-down of
# line filters into the store scan, the json parser and label filters), as
# metric queries over a window holding the whole corpus (it spans ~45 min
# from 1700000000, gen_corpus.py); GiB/s per core of raw corpus bytes.
tel_query=build/tools/tel-query/tel-query
logql_row() {  # logql_row NAME QUERY
  local name=$1 query=$2
  if [[ ! -x $tel_query ]]; then
    row "$name" "-" "-" "-" "(build tel-query)"
    return
  fi
  echo "== tel-query logql $query" >&2
  local c; c=$(cpu "$tel_query" logql "$query" --logs-data "$work/db" --time 1700007200 -o json)
  local n; n=$(jq -r '.data.result[0].value[1] // 0' "$work/out")
  row "$name" "-" "-" "-" "$(awk -v c="$c" -v r="$raw" 'BEGIN{printf "%.3f", (c>0)? r/1073741824/c : 0}') ($n lines)"
}

table=$work/table.md
{
  echo "corpus: $(field lines) lines, $(gib "$raw") GiB raw ($(gib "$(field raw)") GiB as counted by the store)"
  echo
  row "what" "bytes/raw byte" "ratio" "CPU s per GiB" "scan GiB/s per core"
  row "---" "---" "---" "---" "---"
  row "telkit log store (zstd -1 chunks, v2)" "$(field disk_per_raw)" \
    "$(awk -v d="$(field disk_per_raw)" 'BEGIN{printf "%.2f", 1/d}')" "$(field cpu_s_per_gib) (ingest)" \
    "$(field scan_gib_s) (\\|= \"$needle\")"
  row "  same scan via LogReader::Select" "" "" "" "$(field select_gib_s)"
  logql_row "LogQL \\|= (tel-query)" "sum(count_over_time({job=~\".+\"} |= \"$needle\" [2h]))"
  logql_row "LogQL \\| json \\| level=\"error\" (tel-query)" 'sum(count_over_time({job=~".+"} | json | level="error" [2h]))'
  tool_row "gzip -6 (whole file)" "$raw" gzip -6 -c "$work/lines.log"
  tool_row "zstd -3 (whole file)" "$raw" zstd -3 -c -q "$work/lines.log"
  head -c $((sample_mib << 20)) "$work/lines.log" >"$work/sample.log"
  tool_row "zstd -19 --long (first $sample_mib MiB)" "$(stat -c %s "$work/sample.log")" \
    zstd -19 --long -c -q "$work/sample.log"
  echo "== grep -c" >&2
  cat "$work/lines.log" >/dev/null  # page cache, as the store's chunks are
  c=$(cpu grep -c "$needle" "$work/lines.log")
  row "grep -c (uncompressed file, cached)" "1" "1.00" "-" \
    "$(awk -v c="$c" -v r="$raw" 'BEGIN{printf "%.2f", (c>0)? r/1073741824/c : 0}') ($(cat "$work/out") lines)"
  echo
  echo "store lines matched: $(field matched); ingest $(field lines_per_s) lines/s wall (WAL fsync per 4096-line push)"
} | tee "$table"
