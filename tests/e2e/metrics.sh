#!/usr/bin/env bash
# End-to-end tests of the metrics store: real OpenTelemetry SDK metrics
# (tests/e2e/client, and ../shared/clients/otel-js when present) over OTLP
# gRPC, HTTP/protobuf and HTTP/JSON -> otlp-recv -> acknowledged stream
# socket -> tsdb-write, checked against the SDK's manifest; Prometheus remote
# write of the shared benchmark's workload (gen.py, small) read back sample
# for sample; kill -9 of tsdb-write during ingest and a restart: nothing
# acknowledged missing, no duplicates; a sample readable from another
# process within 2 s of its acknowledgement.
source "$(dirname "$0")/lib.bash"
CLIENT=$E2E_ROOT/tests/e2e/client
TSDB=$BIN_DIR/tsdb-write/tsdb-write
CHECK="python3 $E2E_ROOT/tests/e2e/check_metrics.py"
BENCH=$SHARED/bench/metrics-ingest
SYSPY=/usr/bin/python3

for bin in "$RECV" "$TELCAT" "$TSDB"; do
  [ -x "$bin" ] || { fail "$bin is not built"; summary; exit 1; }
done

# start_tsdb NAME DATA: tsdb-write on DATA (input DATA/ingest.sock); sets
# TSDB_PID TSDB_ADMIN.
start_tsdb() {
  TSDB_ADMIN=$(free_port)
  "$TSDB" serve --data "$2" --admin-listen "127.0.0.1:$TSDB_ADMIN" >>"$WORK/$1.tsdb.log" 2>&1 &
  TSDB_PID=$!
  PIDS+=("$TSDB_PID")
  wait_http "http://127.0.0.1:$TSDB_ADMIN/readyz" 30
}

# settled: true once tsdb-write acknowledged every frame otlp-recv wrote.
settled() {
  local w a q
  w=$(metric "$ADMIN_PORT" otlp_recv_written_frames_total)
  q=$(metric "$ADMIN_PORT" otlp_recv_queue_frames)
  a=$(metric "$TSDB_ADMIN" tsdb_write_frames_acked_total)
  [ "$w" -gt 0 ] && [ "$q" = 0 ] && [ "$a" -ge "$w" ]
}
wait_settled() {
  local i
  for i in $(seq 600); do settled && return 0; sleep 0.1; done
  return 1
}
# After a restart otlp-recv resends what was not acknowledged: settled once
# its queue is empty and nothing it wrote awaits an acknowledgement (when
# every frame was acknowledged before the kill, the restarted tsdb-write
# gets none at all).
wait_quiet() {
  local i
  for i in $(seq 1200); do
    [ "$(metric "$ADMIN_PORT" otlp_recv_queue_frames)" = 0 ] &&
      [ "$(metric "$ADMIN_PORT" otlp_recv_output_unacked_bytes)" = 0 ] && return 0
    sleep 0.1
  done
  return 1
}

# ---- SDK metrics over the three protocols
sdk_metrics() {  # sdk_metrics NAME CLIENT_DIR PROTOCOL SEND_FLAGS...
  local name=$1 dir=$2 proto=$3; shift 3
  local data=$WORK/$name.data
  if ! start_tsdb "$name" "$data"; then fail "$name: tsdb-write did not start" "$WORK/$name.tsdb.log"; return; fi
  if ! start_recv "$name" "unix:$data/ingest.sock"; then fail "$name: otlp-recv did not start" "$WORK/$name.log"; return; fi
  local endpoint="http://127.0.0.1:$HTTP_PORT"
  [ "$proto" = grpc ] && endpoint="http://127.0.0.1:$GRPC_PORT"
  if ! timeout 180 node "$dir/send.mjs" --endpoint "$endpoint" --protocol "$proto" --signals metrics \
      --manifest "$WORK/$name.manifest.json" "$@" >"$WORK/$name.send.log" 2>&1; then
    fail "$name: the SDK reported failures" "$WORK/$name.send.log"; stop_pid "$RECV_PID"; stop_pid "$TSDB_PID"; return
  fi
  wait_settled || fail "$name: tsdb-write did not acknowledge every frame"
  "$TSDB" query --data "$data" '{__name__=~".+"}' >"$WORK/$name.stored.txt" 2>"$WORK/$name.query.log"
  if $CHECK manifest "$WORK/$name.manifest.json" "$WORK/$name.stored.txt" >"$WORK/$name.check.log" 2>&1; then
    pass "$name: every metric of the SDK stored under its Prometheus name with its final value ($(head -n 1 "$WORK/$name.check.log"))"
  else
    fail "$name: stored metrics differ from what the SDK sent" "$WORK/$name.check.log"
  fi
  stop_pid "$RECV_PID"
  stop_pid "$TSDB_PID" || fail "$name: tsdb-write exited non-zero after SIGTERM" "$WORK/$name.tsdb.log"
}

if npm_install "$CLIENT"; then
  for proto in grpc http/protobuf http/json; do
    sdk_metrics "metrics-own-${proto//\//-}" "$CLIENT" "$proto" --count 12 --seed "m-$proto" --service shop
  done
else
  fail "npm ci (tests/e2e/client)" "$WORK/npm-client.log"
fi
if [ -f "$SHARED/clients/otel-js/send.mjs" ]; then
  cp -r "$SHARED/clients/otel-js" "$WORK/shared-client"
  rm -rf "$WORK/shared-client/node_modules" "$WORK/shared-client/.test-out"
  if npm_install "$WORK/shared-client"; then
    for proto in grpc http/protobuf http/json; do
      sdk_metrics "metrics-shared-${proto//\//-}" "$WORK/shared-client" "$proto" --count 10 --seed "ms-$proto" --service otel-js
    done
  else
    fail "npm ci (shared otel-js client)" "$WORK/npm-shared-client.log"
  fi
else
  skip "shared otel-js client: $SHARED/clients/otel-js is absent"
fi

# ---- a sample is readable from another process within 2 s of its ack
data=$WORK/fresh.data
if start_tsdb fresh "$data"; then
  now_ms=$(($(date +%s) * 1000))
  printf '{"signal":"prom-rw","payload":{"timeseries":[{"labels":[{"name":"__name__","value":"e2e_fresh"}],"samples":[{"value":42,"timestamp":"%s"}]}]}}\n' "$now_ms" |
    "$TELCAT" --from-json -o "unix:$data/ingest.sock"
  t0=$(date +%s%N)
  seen=0
  for i in $(seq 20); do
    [ "$("$TSDB" query --data "$data" e2e_fresh 2>/dev/null)" = "e2e_fresh 42 $now_ms" ] && { seen=1; break; }
    sleep 0.1
  done
  ms=$((($(date +%s%N) - t0) / 1000000))
  if [ "$seen" = 1 ] && [ "$ms" -lt 2000 ]; then pass "a sample is readable from another process ${ms} ms after its acknowledgement"
  else fail "a sample was not readable within 2 s of its acknowledgement"; fi
  stop_pid "$TSDB_PID"
else
  fail "fresh: tsdb-write did not start" "$WORK/fresh.tsdb.log"
fi

# ---- remote write of the shared benchmark's workload, then kill -9 during ingest
if [ ! -f "$BENCH/gen.py" ]; then
  skip "remote write: $BENCH is absent"
elif ! "$SYSPY" -c 'import snappy, google.protobuf' 2>/dev/null; then
  skip "remote write: $SYSPY lacks snappy or protobuf (python3-snappy, python3-protobuf)"
else
  ds=$WORK/dataset
  # Small requests (200 samples: ~240 of them) so that the kill -9 round
  # can kill tsdb-write while the sender is still sending.
  if "$SYSPY" "$BENCH/gen.py" --out "$ds" --hosts 2 --duration 1800 --batch 200 --text-format prometheus \
    >"$WORK/gen.log" 2>&1; then
    expected=$(ls "$ds"/*.txt "$ds"/*.prom 2>/dev/null | head -n 1)
    requests=$(find "$ds/rw" -name '*.bin' | wc -l)
    for round in plain kill9; do
      data=$WORK/rw-$round.data
      start_tsdb "rw-$round" "$data" || { fail "rw-$round: tsdb-write did not start" "$WORK/rw-$round.tsdb.log"; continue; }
      start_recv "rw-$round" "unix:$data/ingest.sock" || { fail "rw-$round: otlp-recv did not start"; continue; }
      if [ "$round" = kill9 ]; then
        # A slower sender, still sending when tsdb-write is killed: one
        # request at a time with curl, in file order (shard by shard, so
        # every series stays in time order).
        (
          failed=0
          for f in $(find "$ds/rw" -name '*.bin' | sort); do
            curl -sf -o /dev/null --max-time 30 --data-binary @"$f" -H 'Content-Encoding: snappy' \
              -H 'Content-Type: application/x-protobuf' -H 'X-Prometheus-Remote-Write-Version: 0.1.0' \
              "http://127.0.0.1:$HTTP_PORT/api/v1/write" || { failed=$((failed + 1)); echo "failed: $f"; }
          done
          [ "$failed" = 0 ]
        ) >"$WORK/rw-$round.send.log" 2>&1 &
      else
        "$SYSPY" "$BENCH/send.py" --data "$ds" --url "http://127.0.0.1:$HTTP_PORT/api/v1/write" -c 2 \
          >"$WORK/rw-$round.send.json" 2>"$WORK/rw-$round.send.log" &
      fi
      sender=$!
      if [ "$round" = kill9 ]; then
        # Kill tsdb-write once some frames are acknowledged, mid-stream,
        # restart it: otlp-recv resends what was not acknowledged.
        for i in $(seq 500); do [ "$(metric "$TSDB_ADMIN" tsdb_write_frames_acked_total)" -ge 20 ] && break; sleep 0.02; done
        acked_before=$(metric "$TSDB_ADMIN" tsdb_write_frames_acked_total)
        kill -KILL "$TSDB_PID"; wait "$TSDB_PID" 2>/dev/null
        received_before=$(metric "$ADMIN_PORT" otlp_recv_written_frames_total)
        start_tsdb "rw-$round" "$data" || fail "rw-$round: tsdb-write did not restart" "$WORK/rw-$round.tsdb.log"
        if [ "$acked_before" -ge "$requests" ]; then
          fail "rw-$round: every frame ($acked_before of $requests) was acknowledged before the kill: not mid-stream"
        fi
      fi
      wait "$sender" || fail "rw-$round: the sender reported failures" "$WORK/rw-$round.send.log"
      if [ "$round" = kill9 ]; then wait_quiet; else wait_settled; fi ||
        fail "rw-$round: tsdb-write did not acknowledge every frame"
      "$TSDB" query --data "$data" '{__name__=~".+"}' >"$WORK/rw-$round.stored.txt" 2>"$WORK/rw-$round.query.log"
      what="every series and sample of gen.py read back exactly"
      [ "$round" = kill9 ] &&
        what="kill -9 mid-stream ($acked_before of $requests frames acked, $received_before written by otlp-recv) and a restart: nothing missing, no duplicates"
      if $CHECK exact "$expected" "$WORK/rw-$round.stored.txt" >"$WORK/rw-$round.check.log" 2>&1; then
        pass "remote write ($round): $what ($(head -n 1 "$WORK/rw-$round.check.log"))"
      else
        fail "remote write ($round): stored samples differ from gen.py's" "$WORK/rw-$round.check.log"
      fi
      stop_pid "$RECV_PID"
      stop_pid "$TSDB_PID"
    done
  else
    fail "gen.py failed" "$WORK/gen.log"
  fi
fi

summary
