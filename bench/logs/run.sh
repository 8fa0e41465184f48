#!/usr/bin/env bash
# The log store benchmark, side by side with the usual tools on one corpus:
#   bench/logs/run.sh [--mib 256]      (--mib 1024 for 1 GiB+)
# Needs build/bench/logs/log_bench (scripts/build.sh -j2 log_bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
mib=256
[[ ${1:-} == --mib ]] && mib=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/logbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 bench/logs/gen_corpus.py "$work/corpus.log" --mib "$mib"
cut -f2- "$work/corpus.log" >"$work/lines.log"  # the lines as stored (no kind prefix)
raw=$(stat -c %s "$work/lines.log")
echo "== log store"
build/bench/logs/log_bench "$work/corpus.log" "$work/db"
echo "== the same lines with the usual tools (ratio = raw / compressed; CPU s)"
t() {  # t NAME CMD...: prints ratio and CPU time of CMD writing $work/out
  local name=$1; shift
  local s; s=$( { /usr/bin/time -f '%U %S' "$@" >"$work/out"; } 2>&1 | tail -n1)
  local cpu; cpu=$(awk '{print $1+$2}' <<<"$s")
  printf '  %-18s ratio %6.2f  %6.1f CPU s  %7.1f MB/s\n' "$name" \
    "$(awk -v r="$raw" -v c="$(stat -c %s "$work/out")" 'BEGIN{print r/c}')" "$cpu" \
    "$(awk -v r="$raw" -v c="$cpu" 'BEGIN{print (c>0)? r/1e6/c : 0}')"
}
t "gzip -6" gzip -6 -c "$work/lines.log"
t "zstd -3" zstd -3 -c -q "$work/lines.log"
t "zstd -19 --long" zstd -19 --long -c -q "$work/lines.log"
s=$( { /usr/bin/time -f '%U %S' grep -c IllegalStateException "$work/lines.log" >"$work/out"; } 2>&1 | tail -n1)
cpu=$(awk '{print $1+$2}' <<<"$s")
printf '  %-18s %s lines, %6.2f GiB/s per core (uncompressed file, page cache)\n' "grep -c" "$(cat "$work/out")" \
  "$(awk -v r="$raw" -v c="$cpu" 'BEGIN{print (c>0)? r/1073741824/c : 0}')"
