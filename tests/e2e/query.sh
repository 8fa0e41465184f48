#!/usr/bin/env bash
# End-to-end test of the query side: samples backfilled with
# `tsdb-write import` (blocks) and samples sent as Prometheus remote write to
# otlp-recv /api/v1/write -> acknowledged stream socket -> tsdb-write (the
# live head), both read back by `tel-query promql --data` (CLI) and
# `tel-query serve --data` (HTTP API) while tsdb-write runs; the remote-write
# sample must be visible within 2 s of its acknowledgement.
# Skips when tsdb-write is not built (it comes from another branch).
source "$(dirname "$0")/lib.bash"
TSDB=$BIN_DIR/tsdb-write/tsdb-write
TQ=$BIN_DIR/tel-query/tel-query
RW_BODY=$E2E_ROOT/tests/cli/prom_rw_body.py

if [ ! -x "$TSDB" ]; then
  skip "tel-query over tsdb-write: $TSDB is not built"
  summary; exit $?
fi
for bin in "$RECV" "$TQ"; do
  [ -x "$bin" ] || { fail "$bin is not built"; summary; exit 1; }
done
if ! /usr/bin/python3 -c 'import snappy' 2>/dev/null; then
  skip "tel-query over tsdb-write: python3-snappy is missing (scripts/setup.sh --test)"
  summary; exit $?
fi

DATA=$WORK/store
now=$(date +%s)
old=$((now - 3 * 3600))
# ---- blocks: a backfill 3 h ago, the daemon stopped
printf '# TYPE e2e_old gauge\ne2e_old{src="import"} 42 %s\n# EOF\n' "$old" >"$WORK/old.om"
if "$TSDB" import --data "$DATA" --format openmetrics "$WORK/old.om" >"$WORK/import.log" 2>&1; then
  pass "tsdb-write import wrote the backfill"
else
  fail "tsdb-write import" "$WORK/import.log"; summary; exit 1
fi
out=$("$TQ" promql 'e2e_old' --data "$DATA" --time "$old" -o csv 2>"$WORK/cli0.log")
[[ $out == *'e2e_old{src=""import""}",'"$old"',42'* ]] && pass "tel-query promql --data reads a stopped store" \
  || fail "tel-query promql --data on a stopped store: $out" "$WORK/cli0.log"

# ---- the daemon, otlp-recv in front, tel-query serve beside
TSDB_ADMIN=$(free_port)
"$TSDB" serve --data "$DATA" --admin-listen "127.0.0.1:$TSDB_ADMIN" >"$WORK/tsdb.log" 2>&1 &
TSDB_PID=$!; PIDS+=("$TSDB_PID")
wait_http "http://127.0.0.1:$TSDB_ADMIN/readyz" 30 || { fail "tsdb-write did not start" "$WORK/tsdb.log"; summary; exit 1; }
start_recv rw "unix:$DATA/ingest.sock" || { fail "otlp-recv did not start" "$WORK/rw.log"; summary; exit 1; }
API_PORT=$(free_port) TQ_ADMIN=$(free_port)
"$TQ" serve --data "$DATA" --listen "127.0.0.1:$API_PORT" --admin-listen "127.0.0.1:$TQ_ADMIN" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!; PIDS+=("$SERVE_PID")
wait_http "http://127.0.0.1:$TQ_ADMIN/readyz" 10 || { fail "tel-query serve did not start" "$WORK/serve.log"; summary; exit 1; }

# A remote-write body (prom_rw_body.py's encoder): bats_rw{i="0"} 2.5 at now.
NOW_MS=$(($(date +%s) * 1000))
/usr/bin/python3 - "$RW_BODY" "$NOW_MS" >"$WORK/rw.bin" <<'PY'
import importlib.util, sys, snappy
spec = importlib.util.spec_from_file_location("rw", sys.argv[1]); rw = importlib.util.module_from_spec(spec); spec.loader.exec_module(rw)
ts = rw.field(1, 2, rw.label("__name__", "bats_rw")) + rw.field(1, 2, rw.label("i", "0")) + rw.field(2, 2, rw.sample(2.5, int(sys.argv[2])))
sys.stdout.buffer.write(snappy.compress(rw.field(1, 2, ts)))
PY
code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/x-protobuf' \
  -H 'Content-Encoding: snappy' --data-binary "@$WORK/rw.bin" "http://127.0.0.1:$HTTP_PORT/api/v1/write")
[ "$code" = 204 ] || [ "$code" = 200 ] || fail "remote write answered $code"
t0=$(date +%s%N)
seen_cli= seen_api=
while (( $(date +%s%N) - t0 < 2000000000 )); do
  [ -z "$seen_cli" ] && [[ $("$TQ" promql 'bats_rw' --data "$DATA" --time "$((NOW_MS / 1000))" -o csv 2>/dev/null) == *",$((NOW_MS / 1000)),2.5"* ]] &&
    seen_cli=$((($(date +%s%N) - t0) / 1000000))
  [ -z "$seen_api" ] && [[ $(curl -fsS "http://127.0.0.1:$API_PORT/api/v1/query?query=bats_rw&time=$((NOW_MS / 1000))") == *'"2.5"'* ]] &&
    seen_api=$((($(date +%s%N) - t0) / 1000000))
  [ -n "$seen_cli" ] && [ -n "$seen_api" ] && break
  sleep 0.05
done
[ -n "$seen_cli" ] && pass "remote write -> tsdb-write head -> tel-query promql --data in ${seen_cli} ms" \
  || fail "tel-query promql did not see the remote-write sample within 2 s"
[ -n "$seen_api" ] && pass "remote write -> tsdb-write head -> tel-query serve in ${seen_api} ms" \
  || fail "tel-query serve did not see the remote-write sample within 2 s" "$WORK/serve.log"

# Blocks and head in one query, through the API and the CLI.
body=$(curl -fsS "http://127.0.0.1:$API_PORT/api/v1/series?match[]=e2e_old&match[]=bats_rw")
[ "$body" = '{"status":"success","data":[{"__name__":"bats_rw","i":"0"},{"__name__":"e2e_old","src":"import"}]}' ] &&
  pass "serve: /api/v1/series spans the blocks and the head" || fail "serve series: $body"
out=$("$TQ" series 'e2e_old' 'bats_rw' --data "$DATA" 2>&1)
[ "$out" = $'bats_rw{i="0"}\ne2e_old{src="import"}' ] && pass "tel-query series spans the blocks and the head" \
  || fail "tel-query series: $out"

stop_pid "$SERVE_PID" && pass "tel-query serve exits 0 on SIGTERM" || fail "tel-query serve exit status" "$WORK/serve.log"
stop_pid "$RECV_PID"
stop_pid "$TSDB_PID"
summary
