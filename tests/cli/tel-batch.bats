#!/usr/bin/env bats
# tel-batch: the CLI contract, then pipelines over real files and sockets
# (inputs made with `tel-cat --from-json`, outputs read back with tel-cat):
# filtering, routing, sampling, resource attributes, corrupt input, the
# daemon over a listening socket (admin endpoint, SIGTERM, SIGHUP), OTLP
# outputs into a real otlp-recv, and remote write into real Prometheus and
# VictoriaMetrics.

load helpers

setup() {
  T="$BATS_TEST_TMPDIR"
  DATA="$TELKIT_REPO_DIR/tests/testdata/otlp"
}

teardown() {
  stop_daemon KILL
  local pid
  for pid in ${KILL_PIDS[@]+"${KILL_PIDS[@]}"}; do kill -KILL "$pid" 2>/dev/null || true; done
  [[ -n "${RECV_PID:-}" ]] && kill -KILL "$RECV_PID" 2>/dev/null || true
  [[ -n "${PROM_PID:-}" ]] && kill -KILL "$PROM_PID" 2>/dev/null || true
  [[ -n "${VM_PID:-}" ]] && kill -KILL "$VM_PID" 2>/dev/null || true
}

tel_cat() { "$(telkit_bin tel-cat)" "$@"; }
# metric_is SERIES VALUE: for wait_until (evaluated on every try).
metric_is() { [ "$(metric "$1")" = "$2" ]; }
tel_batch() { "$(telkit_bin tel-batch)" --admin-listen '' "$@"; }

# stream FILE JSON...: a stream file made of the OTLP/JSON files given.
stream() {
  local out=$1
  shift
  cat "$@" | tel_cat --from-json -o "$out"
}

# items FILE [SIGNAL]: total items in a stream file (of one signal).
items() {
  tel_cat --summary ${2:+--signal "$2"} "$1" | grep -o -E 'items=[0-9]+' | cut -d= -f2 |
    awk '{ s += $1 } END { print s + 0 }'
}

# span_field FILE FIELD: one line per span of a stream file: its FIELD
# (name, traceId, ...), sorted.
span_field() {
  tel_cat "$1" | python3 -c '
import json, sys
for line in sys.stdin:
    f = json.loads(line)
    for rs in f.get("payload", {}).get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                print(s.get(sys.argv[1], ""))' "$2" | sort
}

# traces_json N: N traces of 3 spans each, one OTLP/JSON request per trace.
traces_json() {
  python3 -c '
import json, sys
for t in range(int(sys.argv[1])):
    tid = "%032x" % (t * 2654435761 + 12345)
    spans = [{"traceId": tid, "spanId": "%016x" % (t * 8 + i + 1), "name": "op%d" % i,
              "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000%09d" % (i * 100000000)}
             for i in range(3)]
    print(json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc%d" % (t % 2)}}]},
        "scopeSpans": [{"scope": {"name": "lib"}, "spans": spans}]}]}))' "$1"
}

@test "--help and --version print on stdout and exit 0" {
  run --separate-stderr "$(telkit_bin tel-batch)" --help
  assert_success
  assert_output --partial 'Usage: tel-batch'
  assert_output --partial '--drop-spans EXPR'
  [ -z "$stderr" ]
  run --separate-stderr "$(telkit_bin tel-batch)" --version
  assert_success
  assert_output --regexp '^tel-batch [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "usage errors exit 2 with one clear line on stderr" {
  run --separate-stderr tel_batch --no-such-flag
  assert_failure 2
  [[ "$stderr" == *"tel-batch: "*"--no-such-flag"* ]]
  [ -z "$output" ]
  run --separate-stderr tel_batch --drop-spans 'name = x' -o "$T/out"
  assert_failure 2
  [[ "$stderr" == *"--drop-spans 'name = x': column 6: expected an operator"* ]]
  run --separate-stderr tel_batch --keep-logs 'kind == server' -o "$T/out"
  assert_failure 2
  [[ "$stderr" == *"column 1: unknown field 'kind' for log records"* ]]
  run --separate-stderr tel_batch --drop-points 'value > lots' -o "$T/out"
  assert_failure 2
  [[ "$stderr" == *"'value' compares numbers, not 'lots'"* ]]
  run --separate-stderr tel_batch --resource-attr 'add:k=v' -o "$T/out"
  assert_failure 2
  [[ "$stderr" == *"unknown action 'add'"* ]]
  run --separate-stderr tel_batch --processor batch,memory_limiter -o "$T/out"
  assert_failure 2
  [[ "$stderr" == *"'memory_limiter' must come first"* ]]
  run --separate-stderr tel_batch --processor sample -o "$T/out"
  assert_failure 2
  run --separate-stderr tel_batch --memory-soft-mib 600 -o "$T/out"
  assert_failure 2
  run --separate-stderr tel_batch --sample-percent 120 -o "$T/out"
  assert_failure 2
  run --separate-stderr tel_batch -o otlp+ftp://host:1
  assert_failure 2
  [[ "$stderr" == *"unknown scheme 'otlp+ftp'"* ]]
  run --separate-stderr tel_batch --admin-listen nonsense -o "$T/out"
  assert_failure 2
  [ ! -e "$T/out" ]
}

@test "an unusable input or output is a runtime failure (exit 1)" {
  run --separate-stderr tel_batch -i "$T/missing" -o "$T/out"
  assert_failure 1
  [[ "$stderr" == *"input '$T/missing'"* ]]
  stream "$T/in.tks" "$DATA/traces.json"
  run --separate-stderr tel_batch -i "$T/in.tks" -o /nonexistent/dir/out
  assert_failure 1
  [[ "$stderr" == *"/nonexistent/dir/out"* ]]
}

@test "a plain pipe: stdin to stdout, everything arrives" {
  stream "$T/in.tks" "$DATA/traces.json" "$DATA/metrics.json" "$DATA/logs.json"
  tel_batch <"$T/in.tks" >"$T/out.tks"
  [ "$(items "$T/out.tks" traces)" = 2 ]
  [ "$(items "$T/out.tks" metrics)" = 3 ]
  [ "$(items "$T/out.tks" logs)" = 2 ]
}

@test "a filter drops exactly the matching spans" {
  stream "$T/in.tks" "$DATA/traces.json" "$DATA/traces.json"
  run span_field "$T/in.tks" name
  assert_output "$(printf 'GET /cart\nGET /cart\nSELECT cart\nSELECT cart')"
  tel_batch -i "$T/in.tks" -o "$T/out.tks" --drop-spans 'name == "SELECT cart"'
  run span_field "$T/out.tks" name
  assert_output "$(printf 'GET /cart\nGET /cart')"
  tel_batch -i "$T/in.tks" -o "$T/kept.tks" --keep-spans 'status == error && attr.db.system =~ postgres.*'
  run span_field "$T/kept.tks" name
  assert_output "$(printf 'SELECT cart\nSELECT cart')"
  tel_batch -i "$T/in.tks" -o "$T/slow.tks" --keep-spans 'duration_ms >= 250'
  run span_field "$T/slow.tks" name
  assert_output "$(printf 'GET /cart\nGET /cart')"
}

@test "filters on log records and metric data points" {
  stream "$T/in.tks" "$DATA/logs.json" "$DATA/metrics.json"
  tel_batch -i "$T/in.tks" -o "$T/out.tks" --drop-logs 'severity < warn' --drop-points 'type == histogram'
  [ "$(items "$T/out.tks" logs)" = 1 ]
  [ "$(items "$T/out.tks" metrics)" = 2 ]
  tel_cat "$T/out.tks" | grep -q 'payment failed'
  [ "$(tel_cat "$T/out.tks" | grep -c 'http.server.duration')" = 0 ]
}

@test "routing splits the signals, and an output given twice gets a copy" {
  stream "$T/in.tks" "$DATA/traces.json" "$DATA/metrics.json" "$DATA/logs.json" "$DATA/traces.json"
  tel_batch -i "$T/in.tks" --traces-out "$T/t1.tks" --traces-out "$T/t2.tks" --metrics-out "$T/m.tks" \
    --logs-out "$T/l.tks"
  for f in t1 t2; do
    [ "$(items "$T/$f.tks")" = 4 ]
    [ "$(items "$T/$f.tks" traces)" = 4 ]
  done
  [ "$(items "$T/m.tks")" = 3 ]
  [ "$(items "$T/m.tks" metrics)" = 3 ]
  [ "$(items "$T/l.tks")" = 2 ]
  [ "$(items "$T/l.tks" logs)" = 2 ]
  # Batching merged the two traces frames (same resource and scope) into one.
  [ "$(tel_cat --summary "$T/t1.tks" | grep -c '^seq=')" = 1 ]
  run tel_cat "$T/t1.tks"
  assert_output --partial '"scopeSpans":[{"scope":{"name":"checkout-lib","version":"1.2.0"},"spans":[{'
}

@test "a signal without an output is dropped with a warning" {
  stream "$T/in.tks" "$DATA/traces.json" "$DATA/logs.json"
  run --separate-stderr tel_batch -i "$T/in.tks" --traces-out "$T/t.tks"
  assert_success
  [[ "$stderr" == *"logs have no output (no --logs-out, no --out): dropped, counted"* ]]
  [ "$(items "$T/t.tks")" = 2 ]
}

@test "sampling at 0, 100 and 50 percent keeps whole traces" {
  traces_json 200 | tel_cat --from-json -o "$T/in.tks"
  [ "$(items "$T/in.tks")" = 600 ]
  tel_batch -i "$T/in.tks" -o "$T/all.tks" --sample-percent 100
  [ "$(items "$T/all.tks")" = 600 ]
  tel_batch -i "$T/in.tks" -o "$T/none.tks" --sample-percent 0
  [ "$(items "$T/none.tks")" = 0 ]
  tel_batch -i "$T/in.tks" -o "$T/half.tks" --sample-percent 50
  kept=$(items "$T/half.tks")
  ((kept > 150 && kept < 450))
  # Every kept trace has all three of its spans.
  run bash -c "$(declare -f span_field tel_cat telkit_bin); span_field '$T/half.tks' traceId | uniq -c | awk '{ print \$1 }' | sort -u"
  assert_output 3
  # Another process (and another batch size) decides the same.
  tel_batch -i "$T/in.tks" -o "$T/again.tks" --sample-percent 50 --batch-max-items 7
  [ "$(span_field "$T/again.tks" traceId)" = "$(span_field "$T/half.tks" traceId)" ]
  # Another seed, other traces.
  tel_batch -i "$T/in.tks" -o "$T/seed.tks" --sample-percent 50 --sample-seed 99
  [ "$(span_field "$T/seed.tks" traceId)" != "$(span_field "$T/half.tks" traceId)" ]
}

@test "resource attributes are inserted, updated and deleted" {
  stream "$T/in.tks" "$DATA/traces.json" "$DATA/logs.json"
  tel_batch -i "$T/in.tks" -o "$T/out.tks" --resource-attr upsert:deployment.environment=production \
    --resource-attr delete:host.name --resource-attr update:service.name=shop --resource-attr insert:service.name=x
  run tel_cat "$T/out.tks"
  assert_output --partial '{"key":"deployment.environment","value":{"stringValue":"production"}}'
  assert_output --partial '{"key":"service.name","value":{"stringValue":"shop"}}'
  refute_output --partial 'host.name'
  refute_output --partial '"stringValue":"x"'
  [ "$(tel_cat "$T/out.tks" | grep -c 'deployment.environment')" = 2 ]
}

@test "corrupt frames on the input are reported, skipped and survived" {
  stream "$T/in.tks" "$DATA/traces.json" "$DATA/logs.json" "$DATA/metrics.json"
  # Damage the logs frame's payload.
  offset=$(grep -a -b -o 'payment failed' "$T/in.tks" | head -n 1 | cut -d: -f1)
  printf 'X' | dd of="$T/in.tks" bs=1 seek="$offset" conv=notrunc status=none
  run --separate-stderr tel_batch -i "$T/in.tks" -o "$T/out.tks"
  assert_success
  [[ "$stderr" == *"corrupt stream at offset"*"payload checksum mismatch"* ]]
  [ "$(items "$T/out.tks" traces)" = 2 ]
  [ "$(items "$T/out.tks" metrics)" = 3 ]
  [ "$(items "$T/out.tks" logs)" = 0 ]
  run --separate-stderr tel_batch -i "$T/in.tks" -o "$T/fail.tks" --on-corrupt fail
  assert_failure 1
  # Not a stream at all.
  run --separate-stderr tel_batch -i "$DATA/traces.json" -o "$T/json.tks"
  assert_failure 1
  [[ "$stderr" == *"not a telkit stream"* ]]
}

@test "frames of unknown signals pass through to --out" {
  printf '%s\n' '{"seq":"0","time":"0","signal":9,"flags":0,"payloadBase64":"aGVsbG8="}' >"$T/odd.jsonl"
  cat "$DATA/logs.json" "$T/odd.jsonl" | tel_cat --from-json -o "$T/in.tks"
  tel_batch -i "$T/in.tks" -o "$T/out.tks" --logs-out "$T/logs.tks"
  run tel_cat "$T/out.tks"
  assert_output --partial '"signal":9'
  assert_output --partial '"payloadBase64":"aGVsbG8="'
  [ "$(items "$T/logs.tks" logs)" = 2 ]
}

# start_batch ARGS...: tel-batch as a daemon on a listening socket $T/in.sock
# with its admin endpoint on an ephemeral port; sets ADMIN_PORT.
start_batch() {
  start_daemon tel-batch -i "listen:unix:$T/in.sock" --admin-listen 127.0.0.1:0 "$@"
  wait_for_log 'admin endpoint on'
  ADMIN_PORT=$(log_port 'admin endpoint on')
  wait_until 100 curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz"
}

@test "daemon: many upstreams on one socket, /metrics, SIGTERM flushes every batch" {
  stream "$T/traces.tks" "$DATA/traces.json"
  stream "$T/logs.tks" "$DATA/logs.json" "$DATA/logs.json"
  start_batch -o "$T/out.tks" --batch-timeout 600000 --drop-spans 'name == "SELECT cart"'
  run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/healthz"
  assert_output 200
  # Two upstreams at once. They wait for acknowledgements, which come only
  # once the frames left in a batch: here at SIGTERM.
  tel_cat "$T/traces.tks" -o "unix:$T/in.sock" 3>&- &
  up1=$!
  tel_cat "$T/logs.tks" -o "unix:$T/in.sock" 3>&- &
  up2=$!
  wait_until 100 metric_is 'tel_batch_received_items_total{signal="logs"}' 4
  [ "$(metric 'tel_batch_received_items_total{signal="traces"}')" = 2 ]
  [ "$(metric 'tel_batch_dropped_items_total{reason="filter_drop",signal="traces"}')" = 1 ]
  [ "$(metric tel_batch_batched_items)" = 5 ]
  [ "$(metric tel_batch_input_connections_total)" = 2 ]
  [ "$(metric tel_batch_unacknowledged_input_frames)" = 3 ]
  run curl -s "http://127.0.0.1:$ADMIN_PORT/metrics"
  assert_output --partial 'tel_batch_memory_limit_bytes{limit="hard"} 536870912'
  assert_output --partial 'telkit_build_info{tool="tel-batch"'
  [ "$(items "$T/out.tks")" = 0 ]
  stop_daemon TERM
  [ "$DAEMON_STATUS" = 0 ]
  grep -q 'received SIGTERM, draining' "$DAEMON_LOG"
  wait "$up1"  # acknowledged: tel-cat exits 0 once its frames are
  wait "$up2"
  [ "$(items "$T/out.tks" traces)" = 1 ]
  [ "$(items "$T/out.tks" logs)" = 4 ]
}

@test "daemon: memory freed by a burst is given back once idle" {
  traces_json 300 | tel_cat --from-json -o "$T/in.tks"
  start_batch -o "$T/out.tks" --log-level debug
  tel_cat "$T/in.tks" -o "unix:$T/in.sock"
  wait_for_log 'idle: returned freed memory to the system' 100
  stop_daemon TERM
  [ "$DAEMON_STATUS" = 0 ]
  [ "$(items "$T/out.tks")" = 900 ]
}

@test "daemon: corrupt frames from an upstream are counted and the daemon serves on" {
  stream "$T/good.tks" "$DATA/traces.json" "$DATA/logs.json"
  cp "$T/good.tks" "$T/bad.tks"
  offset=$(grep -a -b -o 'payment failed' "$T/bad.tks" | head -n 1 | cut -d: -f1)
  printf 'X' | dd of="$T/bad.tks" bs=1 seek="$offset" conv=notrunc status=none
  start_batch -o "$T/out.tks" --batch-timeout 0
  python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(open(sys.argv[2], "rb").read()); s.close()' \
    "$T/in.sock" "$T/bad.tks"
  wait_until 100 metric_is tel_batch_corrupt_frames_total 1
  tel_cat "$T/good.tks" -o "unix:$T/in.sock"
  wait_until 100 metric_is 'tel_batch_received_items_total{signal="logs"}' 2
  run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/readyz"
  assert_output 200
  stop_daemon TERM
  [ "$DAEMON_STATUS" = 0 ]
  [ "$(items "$T/out.tks" traces)" = 4 ]
  [ "$(items "$T/out.tks" logs)" = 2 ]
}

@test "daemon: SIGHUP reloads the processor options from --config" {
  stream "$T/traces.tks" "$DATA/traces.json"
  printf 'drop-spans = ["name == \\"GET /cart\\""]\n' >"$T/batch.conf"
  start_batch -o "$T/out.tks" --batch-timeout 0 --config "$T/batch.conf"
  tel_cat "$T/traces.tks" -o "unix:$T/in.sock"
  printf 'drop-spans = ["name == \\"SELECT cart\\""]\nresource-attr = ["upsert:reloaded=yes"]\n' >"$T/batch.conf"
  kill -HUP "$DAEMON_PID"
  wait_for_log 'reloaded the processor settings'
  tel_cat "$T/traces.tks" -o "unix:$T/in.sock"
  printf 'drop-spans = ["name = broken"]\n' >"$T/batch.conf"
  kill -HUP "$DAEMON_PID"
  wait_for_log 'kept the old settings'
  stop_daemon TERM
  [ "$DAEMON_STATUS" = 0 ]
  run span_field "$T/out.tks" name
  assert_output "$(printf 'GET /cart\nSELECT cart')"
  [ "$(tel_cat "$T/out.tks" | grep -c '"reloaded"')" = 1 ]
}

@test "OTLP outputs: otlp+grpc and otlp+http into a real otlp-recv" {
  stream "$T/in.tks" "$DATA/traces.json" "$DATA/metrics.json" "$DATA/logs.json"
  start_otlp_recv -o "$T/recv.tks"
  RECV_PID=$DAEMON_PID DAEMON_PID=
  tel_batch -i "$T/in.tks" --traces-out "otlp+grpc://127.0.0.1:$GRPC_PORT" \
    --metrics-out "otlp+http://127.0.0.1:$HTTP_PORT" --logs-out "otlp+http://127.0.0.1:$HTTP_PORT" \
    --export-gzip --resource-attr upsert:via=tel-batch
  DAEMON_PID=$RECV_PID RECV_PID=
  stop_daemon TERM
  [ "$(items "$T/recv.tks" traces)" = 2 ]
  [ "$(items "$T/recv.tks" metrics)" = 3 ]
  [ "$(items "$T/recv.tks" logs)" = 2 ]
  [ "$(tel_cat "$T/recv.tks" | grep -c '"via"')" = 3 ]
}

@test "spool: frames acknowledged upstream survive kill -9 and reach a consumer that comes later" {
  traces_json 30 >"$T/traces.json"
  stream "$T/traces.tks" "$T/traces.json"
  # No consumer yet: everything the daemon acknowledges upstream sits in its spool.
  start_batch --out "unix:$T/down.sock" --spool-dir "$T/spool" --batch-max-items 9
  tel_cat "$T/traces.tks" -o "unix:$T/in.sock" 3>&-  # returns once tel-batch acknowledged every frame
  wait_until 100 metric_is 'tel_batch_spool_frames{output="unix:'"$T"'/down.sock"}' 10
  [ "$(metric 'tel_batch_output_connected{output="unix:'"$T"'/down.sock"}')" = 0 ]
  [ "$(metric tel_batch_unacknowledged_input_frames)" = 0 ]
  stop_daemon KILL
  ls "$T"/spool/*/ | grep -q '\.spool$'
  # The consumer, then tel-batch again on the same spool: it resends all of it.
  "$(telkit_bin tel-cat)" "listen:unix:$T/down.sock" -o "$T/out.tks" 2>"$T/consumer.log" 3>&- &
  consumer=$!
  mv "$DAEMON_LOG" "$T/first-run.log"  # or the wait for the new log could read the old one
  start_batch --out "unix:$T/down.sock" --spool-dir "$T/spool"
  [ "$(metric 'tel_batch_spool_recovered_frames_total{output="unix:'"$T"'/down.sock"}')" = 10 ]
  wait_until 100 metric_is 'tel_batch_spool_frames{output="unix:'"$T"'/down.sock"}' 0
  stop_daemon TERM
  [ "$DAEMON_STATUS" = 0 ]
  kill -TERM "$consumer"
  wait "$consumer" || true
  [ "$(items "$T/out.tks" traces)" = 90 ]
  [ "$(span_field "$T/out.tks" spanId | uniq -d | wc -l)" = 0 ]  # each span once
  # Fully acknowledged segments are gone.
  [ -z "$(ls "$T"/spool/*/)" ]
}

@test "spool: usage errors and a spool directory that cannot be made" {
  run tel_batch --spool-max-bytes 0 --out "unix:$T/x.sock" </dev/null
  [ "$status" = 2 ]
  assert_output --partial 'spool-max-bytes'
  run tel_batch --spool-dir /proc/nope/spool --out "unix:$T/x.sock" </dev/null
  [ "$status" = 1 ]
  assert_output --partial '--spool-dir'
}

# free_port: a loopback TCP port nobody listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# prom_query PORT QUERY: the instant vector of QUERY at $NOW_S, one
# "name{labels} value" line a series (labels sorted), sorted.
prom_query() {
  curl -s --max-time 10 "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2" \
    --data-urlencode "time=$NOW_S" | python3 -c '
import json, sys
d = json.load(sys.stdin)
lines = []
for r in d.get("data", {}).get("result", []):
    m = dict(r["metric"])
    name = m.pop("__name__", "")
    lines.append("%s{%s} %s" % (name, ",".join("%s=%s" % kv for kv in sorted(m.items())), r["value"][1]))
print("\n".join(sorted(lines)))'
}

# prom_query_is PORT QUERY EXPECTED: for wait_until.
prom_query_is() { [ "$(prom_query "$1" "$2")" = "$3" ]; }

@test "prom-rw output: what tel-batch sends is queried back from Prometheus and VictoriaMetrics" {
  command -v prometheus >/dev/null || skip "prometheus is not installed (scripts/setup.sh --test)"
  command -v victoria-metrics >/dev/null || skip "victoria-metrics is not installed (scripts/setup.sh --test)"
  NOW_S=$(date +%s)
  python3 -c '
import json, sys
now = int(sys.argv[1])
resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "bats"}},
                           {"key": "service.instance.id", "value": {"stringValue": "host-1"}},
                           {"key": "host.arch", "value": {"stringValue": "amd64"}}]}
def request(metrics):
    return json.dumps({"resourceMetrics": [{"resource": resource,
        "scopeMetrics": [{"scope": {"name": "bats-scope"}, "metrics": metrics}]}]})
def ns(s):
    return str(s * 1000000000)
print(request([
    {"name": "room.temperature", "unit": "Cel", "gauge": {"dataPoints": [
        {"timeUnixNano": ns(now - 20), "asDouble": 21.5,
         "attributes": [{"key": "room", "value": {"stringValue": "kitchen"}}]}]}},
    {"name": "jobs.done", "sum": {"aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [
        {"startTimeUnixNano": ns(now - 40), "timeUnixNano": ns(now - 30), "asInt": "3"}]}},
    {"name": "http.server.duration", "unit": "s", "histogram": {"aggregationTemporality": 2, "dataPoints": [
        {"timeUnixNano": ns(now - 20), "count": "6", "sum": 2.5, "explicitBounds": [0.1, 1],
         "bucketCounts": ["1", "2", "3"]}]}}]))
print(request([
    {"name": "jobs.done", "sum": {"aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [
        {"startTimeUnixNano": ns(now - 30), "timeUnixNano": ns(now - 20), "asInt": "4"}]}}]))
# A remote-write frame (as otlp-recv writes them): forwarded as it is.
print(json.dumps({"signal": "prom-rw", "payload": {"timeseries": [{
    "labels": [{"name": "__name__", "value": "forwarded_up"}, {"name": "job", "value": "agent"}],
    "samples": [{"value": 1, "timestamp": str((now - 20) * 1000)}]}]}}))
' "$NOW_S" >"$T/metrics.jsonl"
  stream "$T/in.tks" "$T/metrics.jsonl"

  PROM_PORT=$(free_port)
  printf 'global:\n  scrape_interval: 1h\n' >"$T/prometheus.yml"
  prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom-data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver >"$T/prometheus.log" 2>&1 &
  PROM_PID=$!
  disown "$PROM_PID"  # killed in teardown, without a job-control message
  VM_PORT=$(free_port)
  victoria-metrics -storageDataPath="$T/vm-data" -httpListenAddr="127.0.0.1:$VM_PORT" \
    -search.latencyOffset=0s -search.disableCache >"$T/vm.log" 2>&1 &
  VM_PID=$!
  disown "$VM_PID"
  wait_until 300 curl -sf "http://127.0.0.1:$PROM_PORT/-/ready"
  wait_until 300 curl -sf "http://127.0.0.1:$VM_PORT/health"

  run tel_batch -i "$T/in.tks" --metrics-out "prom-rw+http://127.0.0.1:$PROM_PORT/api/v1/write" \
    --metrics-out "prom-rw+http://127.0.0.1:$VM_PORT/api/v1/write"
  assert_success

  local scope='instance=host-1,job=bats,otel_scope_name=bats-scope'
  for port in "$PROM_PORT" "$VM_PORT"; do
    wait_until 100 prom_query_is "$port" room_temperature_celsius \
      "room_temperature_celsius{$scope,room=kitchen} 21.5" || {
      prom_query "$port" room_temperature_celsius
      false
    }
    run prom_query "$port" jobs_done_total
    assert_output "jobs_done_total{$scope} 7"
    run prom_query "$port" 'http_server_duration_seconds_bucket'
    local ids='instance=host-1,job=bats'
    assert_output "$(printf '%s\n' \
      "http_server_duration_seconds_bucket{$ids,le=+Inf,otel_scope_name=bats-scope} 6" \
      "http_server_duration_seconds_bucket{$ids,le=0.1,otel_scope_name=bats-scope} 1" \
      "http_server_duration_seconds_bucket{$ids,le=1,otel_scope_name=bats-scope} 3")"
    run prom_query "$port" 'http_server_duration_seconds_sum / http_server_duration_seconds_count'
    assert_output "{$scope} 0.4166666666666667"
    run prom_query "$port" target_info
    assert_output "target_info{host_arch=amd64,instance=host-1,job=bats} 1"
    run prom_query "$port" forwarded_up
    assert_output "forwarded_up{job=agent} 1"
  done
}
# blackhole PATH: a peer on the Unix socket PATH that reads everything and
# never acknowledges; its PID goes to KILL_PIDS.
blackhole() {
  python3 -c '
import socket, sys, threading
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(8)
def drain(c):
    while c.recv(65536): pass
while True:
    c, _ = s.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()' "$1" 3>&- &
  KILL_PIDS+=($!)
  wait_until 50 test -S "$1"
}

@test "overload: four upstreams into a peer that never acknowledges; the resident set stays under --memory-hard-mib" {
  # 1500 traces of 16 spans with 8 attributes each: about 10 MB.
  python3 -c '
import json
for t in range(1500):
    tid = "%032x" % (t * 2654435761 + 12345)
    spans = [{"traceId": tid, "spanId": "%016x" % (t * 64 + i + 1), "name": "op%d" % i,
              "attributes": [{"key": "k%d" % j, "value": {"stringValue": "v" * 40}} for j in range(8)]}
             for i in range(16)]
    print(json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]}))' |
    tel_cat --from-json -o "$T/big.tks"
  KILL_PIDS=()
  for spool in "" "--spool-dir $T/spool --spool-max-bytes 32M"; do
    rm -f "$T/down.sock"
    blackhole "$T/down.sock"
    # shellcheck disable=SC2086
    start_batch --out "unix:$T/down.sock" --memory-soft-mib 48 --memory-hard-mib 80 $spool
    for i in 1 2 3 4; do  # bounded: at most 3 uploads of 4 s each
      (for r in 1 2 3; do timeout 4 "$(telkit_bin tel-cat)" "$T/big.tks" -o "unix:$T/in.sock" 2>/dev/null; done) 3>&- &
      KILL_PIDS+=($!)
    done
    wait_until 100 metric_is tel_batch_inputs_paused 1  # the reader is held back
    sleep 2
    hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status")
    received=$(metric 'tel_batch_received_bytes_total{signal="traces"}')
    echo "spool='$spool': VmHWM $hwm_kib KiB after $received bytes received"
    wait_until 50 metric_is tel_batch_inputs_paused 1  # still pushing back
    [ "$received" -gt $((8 << 20)) ]  # it did work, then pushed back
    [ "$hwm_kib" -lt $((80 << 10)) ]
    stop_daemon KILL
    mv "$DAEMON_LOG" "$DAEMON_LOG.before"  # or the next start could read the old log
    for pid in "${KILL_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    KILL_PIDS=()
  done
}

@test "tail_sampling: whole traces kept by error, latency, condition and rate; the rest dropped and counted" {
  # 8 traces of 3 spans; trace 1 has an error, trace 2 lasts 2 s, trace 3 has a
  # /checkout span, the other 5 are plain. Spans of a trace are spread over
  # two requests.
  python3 -c '
import json
def span(t, i, err=False, dur_ms=10, route="/"):
    s = {"traceId": "%032x" % (t + 1), "spanId": "%016x" % (t * 8 + i + 1), "name": "t%d-s%d" % (t, i),
         "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": str(1700000000000000000 + dur_ms * 1000000),
         "attributes": [{"key": "http.route", "value": {"stringValue": route}}]}
    if err: s["status"] = {"code": 2}
    return s
for half in (0, 1):
    spans = []
    for t in range(8):
        for i in ([0] if half == 0 else [1, 2]):
            spans.append(span(t, i, err=(t == 1 and i == 2), dur_ms=(2000 if t == 2 else 10),
                              route=("/checkout" if t == 3 and i == 1 else "/")))
    print(json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "lib"}, "spans": spans}]}]}))
' >"$T/traces.json"
  stream "$T/in.tks" "$T/traces.json"
  run tel_batch -i "$T/in.tks" -o "$T/out.tks" --processor tail_sampling,batch --tail-latency-ms 1000 \
    --tail-keep-spans 'attr.http.route == /checkout' --tail-decision-wait 60000
  assert_success
  run span_field "$T/out.tks" name
  assert_output "$(printf 't1-s0\nt1-s1\nt1-s2\nt2-s0\nt2-s1\nt2-s2\nt3-s0\nt3-s1\nt3-s2')"
  # The daemon: traces are held for the window, then decided; a rate of 1 a
  # second keeps one plain trace.
  start_batch -o "$T/daemon.tks" --processor tail_sampling,batch --tail-decision-wait 1500 --tail-rate-per-second 1 \
    --tail-latency-ms 1000
  tel_cat "$T/in.tks" -o "unix:$T/in.sock" 3>&- &
  upstream=$!
  KILL_PIDS=("$upstream")
  wait_until 50 metric_is tel_batch_tail_held_traces 8
  [ "$(metric tel_batch_tail_held_spans)" = 24 ]
  [ "$(metric tel_batch_unacknowledged_input_frames)" = 2 ]  # held, so not acknowledged yet
  wait_until 50 metric_is tel_batch_tail_held_traces 0
  wait "$upstream"  # acknowledged once decided
  [ "$(metric 'tel_batch_tail_decisions_total{decision="error"}')" = 1 ]
  [ "$(metric 'tel_batch_tail_decisions_total{decision="latency"}')" = 1 ]
  [ "$(metric 'tel_batch_tail_decisions_total{decision="rate"}')" = 1 ]
  [ "$(metric 'tel_batch_tail_decisions_total{decision="dropped"}')" = 5 ]
  [ "$(metric 'tel_batch_dropped_items_total{reason="tail_sampling",signal="traces"}')" = 15 ]
  stop_daemon TERM
  [ "$DAEMON_STATUS" = 0 ]
  [ "$(items "$T/daemon.tks" traces)" = 9 ]
}

# loki_capture STATUSES: the capture server (tests/cli/loki_capture.py) on a
# free loopback port, answering STATUSES in turn; sets LOKI_PORT, writes
# $T/loki.jsonl.
loki_capture() {
  rm -f "$T/loki.port" "$T/loki.jsonl"
  python3 "$BATS_TEST_DIRNAME/loki_capture.py" "$T/loki.port" "$T/loki.jsonl" "$1" 3>&- &
  KILL_PIDS+=($!)
  wait_until 50 test -s "$T/loki.port"
  LOKI_PORT=$(cat "$T/loki.port")
}

@test "loki+http output: streams by index labels, exact lines, retried on 5xx, dropped on 400" {
  python3 -c '
import json
def res(attrs):
    return {"attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}
def rec(t, body, sev=None):
    r = {"timeUnixNano": str(1700000000000000000 + t), "body": {"stringValue": body}}
    if sev: r["severityText"] = sev
    return r
print(json.dumps({"resourceLogs": [
  {"resource": res({"service.name": "shop", "k8s.pod.name": "shop-1", "host.name": "box"}),
   "scopeLogs": [{"scope": {"name": "lib"}, "logRecords": [rec(1, "first", "INFO"), rec(2, "second")]}]},
  {"resource": res({"service.name": "billing"}),
   "scopeLogs": [{"logRecords": [rec(3, "third")]}]}]}))' >"$T/logs.json"
  stream "$T/logs.tks" "$T/logs.json"
  KILL_PIDS=()
  loki_capture 500,204
  run tel_batch -i "$T/logs.tks" --logs-out "loki+http://127.0.0.1:$LOKI_PORT"
  assert_success
  run python3 -c '
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["status"] for r in reqs] == [500, 204], reqs
for r in reqs:
    assert r["encoding"] == "gzip" and r["content_type"] == "application/json" and r["path"] == "/loki/api/v1/push", r
want = {"streams": [
  {"stream": {"k8s_pod_name": "shop-1", "service_name": "shop"},
   "values": [["1700000000000000001", "first", {"host_name": "box", "scope_name": "lib", "severity_text": "INFO"}],
              ["1700000000000000002", "second", {"host_name": "box", "scope_name": "lib"}]]},
  {"stream": {"service_name": "billing"}, "values": [["1700000000000000003", "third"]]}]}
assert reqs[1]["body"] == want, json.dumps(reqs[1]["body"])
assert reqs[0]["body"] == want  # the retry sends the same request
print("ok")' "$T/loki.jsonl"
  assert_output ok
  # A 400 is not retried: the records are dropped (export_rejected).
  loki_capture 400
  run tel_batch -i "$T/logs.tks" --logs-out "loki+http://127.0.0.1:$LOKI_PORT"
  assert_success
  [ "$(wc -l <"$T/loki.jsonl")" = 1 ]
  run tel_batch -i "$T/logs.tks" --logs-out "loki+ftp://x"
  [ "$status" = 2 ]
  assert_output --partial 'loki+http(s)://HOST:PORT'
}
