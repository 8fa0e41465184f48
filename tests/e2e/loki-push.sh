#!/usr/bin/env bash
# End-to-end Loki push: bodies written by tests/e2e/loki_push_bodies.py
# (JSON, gzip JSON, snappy protobuf encoded by hand from Loki's field
# numbers) -> otlp-recv POST /loki/api/v1/push -> Unix socket -> log-ingest;
# then `log-ingest query` must return every pushed line under exactly the
# pushed labels with its structured metadata. Bad input (invalid labels, a
# huge line, bad UTF-8, malformed bodies, a gzip bomb) must get its status,
# its message and its counter.
source "$(dirname "$0")/lib.bash"
INGEST=$BIN_DIR/log-ingest/log-ingest

for bin in "$RECV" "$INGEST"; do
  [ -x "$bin" ] || { fail "$bin is not built"; summary; exit 1; }
done
# Debian's python3 has python3-snappy; a pyenv python3 on PATH may not.
PY=${LOKI_E2E_PYTHON:-python3}
[ -z "${LOKI_E2E_PYTHON:-}" ] && /usr/bin/python3 -c "import snappy" 2>/dev/null && PY=/usr/bin/python3
BASE_NS=$(( $(date +%s) * 1000000000 ))
BODIES=$WORK/bodies
mkdir -p "$BODIES"
if "$PY" "$E2E_ROOT/tests/e2e/loki_push_bodies.py" "$BODIES" "$BASE_NS" 2>"$WORK/bodies.log"; then
  pass "push bodies written ($("$PY" -c 'import snappy' 2>/dev/null && echo python3-snappy || echo literal-only snappy))"
else
  fail "loki_push_bodies.py failed" "$WORK/bodies.log"; summary; exit 1
fi

DATA=$WORK/logs.db SOCK=$WORK/ingest.sock
"$INGEST" --data "$DATA" --in "listen:unix:$SOCK" --admin-listen none --retention 0 >"$WORK/ingest.log" 2>&1 &
INGEST_PID=$!
PIDS+=("$INGEST_PID")
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
if ! start_recv recv "unix:$SOCK" --max-decompressed-bytes 8M --max-request-bytes 8M --loki-max-line-bytes 100K; then
  fail "otlp-recv did not start" "$WORK/recv.log"; summary; exit 1
fi
URL=http://127.0.0.1:$HTTP_PORT/loki/api/v1/push

# push NAME FILE CONTENT_TYPE [ENCODING]: sets CODE and BODY.
push() {
  local name=$1 file=$2 type=$3 enc=${4:-}
  local args=(-sS -o "$WORK/$name.answer" -w '%{http_code}' -X POST -H "Content-Type: $type" --data-binary "@$BODIES/$file")
  [ -n "$enc" ] && args+=(-H "Content-Encoding: $enc")
  CODE=$(curl "${args[@]}" "$URL" 2>"$WORK/$name.curl")
  BODY=$(cat "$WORK/$name.answer" 2>/dev/null)
}

# expect NAME FILE TYPE ENC STATUS [TEXT]: the answer has STATUS and contains TEXT.
expect() {
  local name=$1 file=$2 type=$3 enc=$4 status=$5 text=${6:-}
  push "$name" "$file" "$type" "$enc"
  if [ "$CODE" = "$status" ] && [[ "$BODY" == *"$text"* ]]; then
    pass "$name: $status${text:+ '$text'}"
  else
    echo "got $CODE: $BODY" >"$WORK/$name.why"
    fail "$name: expected $status${text:+ with '$text'}" "$WORK/$name.why"
  fi
}

expect json json.json application/json "" 204
expect gzip-json json.gz "application/json; charset=utf-8" gzip 204
expect snappy-protobuf proto.snappy application/x-protobuf "" 204
expect invalid-labels bad-labels.json application/json "" 400 "invalid label name 'bad-name'"
expect huge-line huge-line.json application/json "" 400 "Max entry size '102400' bytes exceeded for stream '{job=\"e2e-huge\"}'"
expect bad-utf8 bad-utf8.snappy application/x-protobuf snappy 204
expect malformed-json malformed.json application/json "" 400 "invalid timestamp 'notanumber'"
expect malformed-snappy malformed.snappy application/x-protobuf "" 400 "invalid snappy body"
expect malformed-protobuf malformed-proto.snappy application/x-protobuf "" 400 "invalid protobuf push body"
expect gzip-bomb bomb.gz application/json gzip 413 "request body decompresses to more than 8388608 bytes"
expect wrong-type json.json text/plain "" 415 "unsupported content type"

# Counters, read before the drain.
check_metric() {
  local series=$1 want=$2 got
  got=$(metric "$ADMIN_PORT" "$series")
  if [ "$got" = "$want" ]; then pass "counter $series = $want"; else fail "counter $series = $got, want $want"; fi
}
check_metric 'otlp_recv_loki_rejected_entries_total{reason="invalid_labels"}' 1
check_metric 'otlp_recv_loki_rejected_entries_total{reason="line_too_long"}' 1
check_metric 'otlp_recv_loki_invalid_utf8_total' 3
check_metric 'otlp_recv_refused_requests_total{protocol="http",reason="bad_data"}' 3
check_metric 'otlp_recv_refused_requests_total{protocol="http",reason="decompressed_too_large"}' 1
check_metric 'otlp_recv_refused_requests_total{protocol="http",reason="unsupported_media_type"}' 1
check_metric 'otlp_recv_received_items_total{protocol="http",signal="logs"}' 107

stop_pid "$RECV_PID" || fail "otlp-recv did not exit 0 after SIGTERM" "$WORK/recv.log"  # drains: all acknowledged
"$INGEST" query --data "$DATA" '{job=~"e2e-.+"}' --limit 0 --format jsonl >"$WORK/all.jsonl" 2>"$WORK/query.log" \
  || fail "log-ingest query failed" "$WORK/query.log"
stop_pid "$INGEST_PID" || fail "log-ingest did not exit 0 after SIGTERM" "$WORK/ingest.log"

if "$PY" - "$WORK/all.jsonl" "$BASE_NS" >"$WORK/check.log" 2>&1 <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
base = int(sys.argv[2])
by_job = {}
for r in rows:
    by_job.setdefault(r["stream"]["job"], []).append(r)
def check(cond, what):
    if not cond:
        print("MISMATCH:", what); sys.exit(1)
j = by_job.get("e2e-json", [])
check(len(j) == 2, f"e2e-json has {len(j)} lines")
check(all(r["stream"] == {"job": "e2e-json", "env": "test"} for r in j), f"e2e-json labels {j[0]['stream'] if j else None}")
two = [r for r in j if r["line"] == "json line two"]
check(two and two[0]["metadata"] == {"trace_id": "0af7651916cd43dd8448eb211c80319c", "user": "alice"},
      f"structured metadata {two[0]['metadata'] if two else None}")
g = by_job.get("e2e-gzip", [])
check(sorted(r["line"] for r in g) == sorted(f"gzip line {i}" for i in range(1, 101)), f"e2e-gzip has {len(g)} lines")
p = by_job.get("e2e-proto", [])
check(len(p) == 2 and all(r["stream"] == {"job": "e2e-proto", "host": 'h"1'} for r in p), f"e2e-proto {p}")
check(any(r["line"] == "proto line" and r["metadata"] == {"span_id": "b7ad6b7169203331"} for r in p), "proto metadata")
check([r["line"] for r in by_job.get("e2e-badlabels", [])] == ["kept"], "the valid stream next to bad labels is kept")
check([r["line"] for r in by_job.get("e2e-huge", [])] == ["small"], "the small line next to a huge one is kept")
u = by_job.get("e2e-utf8", [])
check(len(u) == 1 and u[0]["line"] == "bad \ufffd( line" and u[0]["stream"]["v"] == "a\ufffdb"
      and u[0]["metadata"] == {"k": "\ufffd"}, f"bad UTF-8 replaced: {u}")
check(len(rows) == 107, f"{len(rows)} lines in all")
print(f"{len(rows)} lines in {len(by_job)} streams, labels and metadata exactly as pushed")
EOF
then
  pass "log-ingest query: $(tail -n 1 "$WORK/check.log")"
else
  fail "the log store differs from what was pushed" "$WORK/check.log"
fi

summary
