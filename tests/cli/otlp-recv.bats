#!/usr/bin/env bats
# otlp-recv: the CLI contract, then the daemon over real sockets: good input
# arrives in the stream, each kind of bad input gets its status and its
# counter, and the daemon keeps serving.

load helpers

setup() {
  T="$BATS_TEST_TMPDIR"
}

teardown() {
  stop_daemon KILL
  [[ -n "${PROM_PID:-}" ]] && kill -KILL "$PROM_PID" 2>/dev/null || true
}

refused() {  # refused PROTOCOL REASON: the refusal counter
  metric "otlp_recv_refused_requests_total{protocol=\"$1\",reason=\"$2\"}"
}

# Total items of the stream file $1 as tel-cat counts them.
stream_items() {
  "$(telkit_bin tel-cat)" --summary "$1" | grep -o -E 'items=[0-9]+' | cut -d= -f2 | awk '{ s += $1 } END { print s + 0 }'
}

@test "--help and --version print on stdout and exit 0" {
  run --separate-stderr "$(telkit_bin otlp-recv)" --help
  assert_success
  assert_output --partial 'Usage: otlp-recv'
  assert_output --partial '--max-decompressed-bytes'
  [ -z "$stderr" ]
  run --separate-stderr "$(telkit_bin otlp-recv)" --version
  assert_success
  assert_output --regexp '^otlp-recv [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "usage errors exit 2 with one line on stderr" {
  run --separate-stderr "$(telkit_bin otlp-recv)" --no-such-flag
  assert_failure 2
  [[ "$stderr" == *"otlp-recv: "*"--no-such-flag"* ]]
  [ -z "$output" ]
  run --separate-stderr "$(telkit_bin otlp-recv)" --http-listen nonsense
  assert_failure 2
  [[ "$stderr" == *"invalid listen address 'nonsense'"* ]]
  run --separate-stderr "$(telkit_bin otlp-recv)" --max-request-bytes 10M --max-decompressed-bytes 1M
  assert_failure 2
  run --separate-stderr "$(telkit_bin otlp-recv)" --http-listen '' --grpc-listen ''
  assert_failure 2
  run --separate-stderr "$(telkit_bin otlp-recv)" --queue-wait soon
  assert_failure 2
  [[ "$stderr" == *"--queue-wait"* ]]
  run --separate-stderr "$(telkit_bin otlp-recv)" --queue-wait 2h
  assert_failure 2
}

@test "an unusable output or a busy port is a runtime failure (exit 1)" {
  run --separate-stderr "$(telkit_bin otlp-recv)" -o /nonexistent/dir/out --admin-listen ''
  assert_failure 1
  [[ "$stderr" == *"/nonexistent/dir/out"* ]]
  start_otlp_recv -o "$T/out.tks"
  run --separate-stderr "$(telkit_bin otlp-recv)" -o "$T/other.tks" \
    --http-listen "127.0.0.1:$HTTP_PORT" --grpc-listen '' --admin-listen ''
  assert_failure 1
  [[ "$stderr" == *"cannot listen on '127.0.0.1:$HTTP_PORT'"* ]]
}

@test "serves /healthz, /readyz and /metrics" {
  start_otlp_recv -o "$T/out.tks"
  run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/healthz"
  assert_output 200
  run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/readyz"
  assert_output 200
  run curl -s "http://127.0.0.1:$ADMIN_PORT/metrics"
  assert_output --partial '# TYPE otlp_recv_received_items_total counter'
  assert_output --partial 'process_resident_memory_bytes '
  assert_output --partial 'telkit_build_info{tool="otlp-recv"'
}

@test "good requests over HTTP (protobuf, JSON, gzip) and gRPC (plain, gzip) reach the stream" {
  start_otlp_recv -o "$T/out.tks"
  test_client sample traces 3 >"$T/traces.pb"
  test_client sample-json logs 2 >"$T/logs.json"
  test_client sample metrics 4 | gzip -c >"$T/metrics.pb.gz"
  test_client sample traces 5 >"$T/traces5.pb"

  run post /v1/traces application/x-protobuf "$T/traces.pb"
  assert_output 200
  run post /v1/logs 'application/json; charset=utf-8' "$T/logs.json"
  assert_output 200
  run cat "$T/response"
  assert_output '{}'
  run post /v1/metrics application/x-protobuf "$T/metrics.pb.gz" -H 'Content-Encoding: gzip'
  assert_output 200
  run test_client grpc "127.0.0.1:$GRPC_PORT" traces "$T/traces5.pb"
  assert_success
  run test_client grpc "127.0.0.1:$GRPC_PORT" traces "$T/traces5.pb" gzip
  assert_success

  [ "$(metric 'otlp_recv_received_items_total{protocol="http",signal="traces"}')" = 3 ]
  [ "$(metric 'otlp_recv_received_items_total{protocol="grpc",signal="traces"}')" = 10 ]
  stop_daemon TERM
  [ "$DAEMON_STATUS" = 0 ]
  [ "$(stream_items "$T/out.tks")" = 19 ]
}

@test "the stream goes to stdout by default" {
  start_daemon otlp-recv --http-listen 127.0.0.1:0 --grpc-listen '' --admin-listen ''
  wait_for_log 'writing the telemetry stream'
  HTTP_PORT=$(log_port 'OTLP/HTTP on')
  test_client sample logs 6 >"$T/logs.pb"
  run post /v1/logs application/x-protobuf "$T/logs.pb"
  assert_output 200
  stop_daemon TERM
  [ "$DAEMON_STATUS" = 0 ]
  [ "$(stream_items "$T/otlp-recv.out")" = 6 ]
}

@test "partial success: invalid items are rejected, the rest is accepted" {
  start_otlp_recv -o "$T/out.tks"
  test_client sample traces 3 2 >"$T/mixed.pb"
  run post /v1/traces application/x-protobuf "$T/mixed.pb"
  assert_output 200
  [ "$(metric 'otlp_recv_rejected_items_total{protocol="http",signal="traces"}')" = 2 ]
  [ "$(metric 'otlp_recv_received_items_total{protocol="http",signal="traces"}')" = 3 ]
}

@test "bad input: each gets its status and its counter, and the daemon still serves" {
  start_otlp_recv -o "$T/out.tks" --max-request-bytes 64K --max-decompressed-bytes 1M
  test_client sample traces 3 >"$T/good.pb"
  head -c -7 "$T/good.pb" >"$T/truncated.pb"
  printf '{"resourceSpans": [' >"$T/bad.json"
  head -c 100000 /dev/urandom >"$T/big.bin"
  head -c 64M /dev/zero | gzip -9 >"$T/bomb.gz"
  test_client sample traces 1 0 200000 >"$T/big.pb"

  run post /v1/traces application/x-protobuf "$T/truncated.pb"
  assert_output 400
  [ "$(refused http bad_data)" = 1 ]

  run post /v1/traces application/json "$T/bad.json"
  assert_output 400
  run cat "$T/response"
  assert_output --partial '"code":3'
  [ "$(refused http bad_data)" = 2 ]

  run post /v1/traces text/plain "$T/good.pb"
  assert_output 415
  [ "$(refused http unsupported_media_type)" = 1 ]

  run post /v1/traces application/x-protobuf "$T/big.bin"
  assert_output 413
  [ "$(refused http too_large)" = 1 ]

  run post /v1/traces application/x-protobuf "$T/bomb.gz" -H 'Content-Encoding: gzip'
  assert_output 413
  [ "$(refused http decompressed_too_large)" = 1 ]

  run post /v1/profiles application/x-protobuf "$T/good.pb"
  assert_output 404
  [ "$(refused http not_found)" = 1 ]

  run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/v1/traces"
  assert_output 405
  [ "$(refused http method_not_allowed)" = 1 ]

  run test_client grpc "127.0.0.1:$GRPC_PORT" traces "$T/big.pb"
  assert_failure
  assert_output --partial 'RESOURCE_EXHAUSTED'
  [ "$(refused grpc too_large)" = 1 ]

  run test_client grpc "127.0.0.1:$GRPC_PORT" traces "$T/truncated.pb"
  assert_failure
  assert_output --partial 'INVALID_ARGUMENT'
  [ "$(refused grpc bad_data)" = 1 ]

  run test_client grpc "127.0.0.1:$GRPC_PORT" /opentelemetry.proto.collector.profiles.v1.ProfilesService/Export "$T/good.pb"
  assert_failure
  assert_output --partial 'UNIMPLEMENTED'

  # Still serving, both protocols.
  run post /v1/traces application/x-protobuf "$T/good.pb"
  assert_output 200
  run test_client grpc "127.0.0.1:$GRPC_PORT" traces "$T/good.pb"
  assert_success
  run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/readyz"
  assert_output 200
}

@test "a client that disconnects mid-request does not hurt" {
  start_otlp_recv -o "$T/out.tks"
  exec 5<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
  printf 'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\npartial' >&5
  exec 5>&-
  # refused is re-evaluated on every try, not once before the wait.
  refused_is() { [ "$(refused "$1" "$2")" = "$3" ]; }
  wait_until 100 refused_is http aborted 1
  [ "$(metric 'otlp_recv_in_flight_requests{protocol="http"}')" = 0 ]
  test_client sample traces 2 >"$T/good.pb"
  run post /v1/traces application/x-protobuf "$T/good.pb"
  assert_output 200
}

@test "200 concurrent clients are all served" {
  start_otlp_recv -o "$T/out.tks"
  test_client sample traces 2 >"$T/good.pb"
  seq 200 | xargs -P 200 -I{} curl -s --max-time 120 -o /dev/null -w '%{http_code}\n' \
    -H 'Content-Type: application/x-protobuf' --data-binary "@$T/good.pb" \
    "http://127.0.0.1:$HTTP_PORT/v1/traces" >"$T/codes"
  [ "$(grep -c '^200$' "$T/codes")" = 200 ]
  [ "$(metric 'otlp_recv_accepted_requests_total{protocol="http",signal="traces"}')" = 200 ]
  stop_daemon TERM
  [ "$DAEMON_STATUS" = 0 ]
  [ "$(stream_items "$T/out.tks")" = 400 ]
}

@test "bearer token: 401 / UNAUTHENTICATED without it, and SIGHUP reloads the file" {
  echo first-token >"$T/token"
  start_otlp_recv -o "$T/out.tks" --bearer-token-file "$T/token"
  test_client sample traces 1 >"$T/good.pb"
  run post /v1/traces application/x-protobuf "$T/good.pb"
  assert_output 401
  run post /v1/traces application/x-protobuf "$T/good.pb" -H 'Authorization: Bearer first-token'
  assert_output 200
  run test_client grpc "127.0.0.1:$GRPC_PORT" traces "$T/good.pb"
  assert_output --partial UNAUTHENTICATED
  run test_client grpc "127.0.0.1:$GRPC_PORT" traces "$T/good.pb" token=first-token
  assert_success

  echo second-token >"$T/token"
  kill -HUP "$DAEMON_PID"
  wait_for_log 'reloaded the bearer token file'
  run post /v1/traces application/x-protobuf "$T/good.pb" -H 'Authorization: Bearer first-token'
  assert_output 401
  run post /v1/traces application/x-protobuf "$T/good.pb" -H 'Authorization: Bearer second-token'
  assert_output 200
  [ "$(refused http unauthenticated)" = 2 ]
}

@test "SIGTERM drains: everything accepted is in the stream, exit 0" {
  start_otlp_recv -o "$T/out.tks"
  test_client sample logs 10 >"$T/logs.pb"
  for i in $(seq 20); do
    run post /v1/logs application/x-protobuf "$T/logs.pb"
    assert_output 200
  done
  stop_daemon TERM
  [ "$DAEMON_STATUS" = 0 ]
  grep -q 'received SIGTERM, draining' "$DAEMON_LOG"
  [ "$(stream_items "$T/out.tks")" = 200 ]
}

# prom_rw_body ARGS...: a remote-write body (tests/cli/prom_rw_body.py).
prom_rw_body() {
  /usr/bin/python3 "$BATS_TEST_DIRNAME/prom_rw_body.py" "$@"
}

need_python_snappy() {
  /usr/bin/python3 -c 'import snappy' 2>/dev/null ||
    skip "python3-snappy is not installed (scripts/setup.sh --test)"
}

post_rw() {  # post_rw FILE [CURL_ARGS...]: a remote-write POST
  local file=$1
  shift
  post /api/v1/write application/x-protobuf "$file" -H 'Content-Encoding: snappy' \
    -H 'X-Prometheus-Remote-Write-Version: 0.1.0' "$@"
}

@test "Prometheus remote write: 204, one prom-rw frame, tel-cat shows the WriteRequest" {
  need_python_snappy
  start_otlp_recv -o "$T/out.tks"
  prom_rw_body 3 >"$T/rw.snappy"
  run post_rw "$T/rw.snappy"
  assert_output 204
  [ ! -s "$T/response" ]
  [ "$(metric 'otlp_recv_accepted_requests_total{protocol="http",signal="prom-rw"}')" = 1 ]
  [ "$(metric 'otlp_recv_received_items_total{protocol="http",signal="prom-rw"}')" = 6 ]
  stop_daemon TERM
  [ "$DAEMON_STATUS" = 0 ]
  run "$(telkit_bin tel-cat)" "$T/out.tks"
  assert_success
  [ "$(grep -c '"signal":"prom-rw"' <<<"$output")" = 1 ]
  frame=$(grep '"signal":"prom-rw"' <<<"$output")
  # The frame holds the uncompressed WriteRequest (byte for byte: HttpServerTest).
  run /usr/bin/python3 -c '
import json, sys
frame = json.loads(sys.argv[1])
assert frame["signal"] == "prom-rw", frame
series = frame["payload"]["timeseries"]
assert len(series) == 3, series
assert series[1]["labels"] == [{"name": "__name__", "value": "bats_rw"}, {"name": "i", "value": "1"}], series[1]
assert series[1]["samples"] == [{"timestamp": "1000", "value": 1.5}, {"timestamp": "2000", "value": 2.5}]
assert frame["payload"]["metadata"] == [{"help": "A test.", "metricFamilyName": "bats_rw", "type": "GAUGE"}]
' "$frame"
  assert_success
  "$(telkit_bin tel-cat)" "$T/out.tks" --exact | "$(telkit_bin tel-cat)" -j -o "$T/copy.tks"
  run "$(telkit_bin tel-cat)" --summary "$T/copy.tks"
  assert_output --partial 'prom-rw'
}

@test "remote write: bad series are dropped and counted, bad bodies get 400/413/415 in plain text" {
  need_python_snappy
  start_otlp_recv -o "$T/out.tks" --max-request-bytes 4096 --max-decompressed-bytes 8192
  prom_rw_body 1 2 >"$T/mixed.snappy"
  run post_rw "$T/mixed.snappy"
  assert_output 204
  [ "$(metric 'otlp_recv_prom_rw_rejected_series_total{reason="invalid_metric_name"}')" = 2 ]
  [ "$(metric 'otlp_recv_rejected_items_total{protocol="http",signal="prom-rw"}')" = 4 ]

  printf '\x05\x10hel' >"$T/corrupt.snappy"
  run post_rw "$T/corrupt.snappy"
  assert_output 400
  run cat "$T/response"
  assert_output --partial 'invalid snappy body'
  /usr/bin/python3 -c 'import snappy, sys; sys.stdout.buffer.write(snappy.compress(b"\xff\xff\xff"))' >"$T/notproto.snappy"
  run post_rw "$T/notproto.snappy"
  assert_output 400
  run cat "$T/response"
  assert_output --partial 'malformed remote-write request'
  # Declares 10000 bytes: over the decompressed limit, refused before inflating.
  /usr/bin/python3 -c 'import snappy, sys; sys.stdout.buffer.write(snappy.compress(b"x" * 10000))' >"$T/bomb.snappy"
  run post_rw "$T/bomb.snappy"
  assert_output 413
  head -c 5000 /dev/zero >"$T/big"
  run post_rw "$T/big"
  assert_output 413
  run post /api/v1/write application/json "$T/mixed.snappy" -H 'Content-Encoding: snappy'
  assert_output 415
  run post /api/v1/write application/x-protobuf "$T/mixed.snappy"
  assert_output 415
  run cat "$T/response"
  assert_output --partial 'remote write takes snappy'
  [ "$(refused http bad_data)" = 2 ]
  [ "$(refused http decompressed_too_large)" = 1 ]
  [ "$(refused http too_large)" = 1 ]
  [ "$(refused http unsupported_media_type)" = 1 ]
  [ "$(refused http unsupported_encoding)" = 1 ]

  run post_rw "$T/mixed.snappy"
  assert_output 204
  stop_daemon TERM
  run "$(telkit_bin tel-cat)" "$T/out.tks"
  [ "$(grep -c '"signal":"prom-rw"' <<<"$output")" = 2 ]
  assert_output --partial '"value":"bats_rw"'
  refute_output --partial '0bad'
}

@test "remote write from a real Prometheus: its scraped series and metadata arrive" {
  command -v prometheus >/dev/null || skip "prometheus is not installed (scripts/setup.sh --test)"
  start_otlp_recv -o "$T/out.tks"
  local prom_port
  prom_port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >"$T/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: self
    static_configs:
      - targets: ['127.0.0.1:$prom_port']
remote_write:
  - url: http://127.0.0.1:$HTTP_PORT/api/v1/write
    queue_config:
      batch_send_deadline: 1s
    metadata_config:
      send_interval: 1s
YAML
  prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom-data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$T/prometheus.log" 2>&1 &
  PROM_PID=$!
  disown "$PROM_PID"
  # Samples and metadata both arrive within seconds (bounded: 30 s).
  wait_until 300 eval '[ "$(metric "otlp_recv_received_items_total{protocol=\"http\",signal=\"prom-rw\"}")" -gt 100 ]'
  kill -TERM "$PROM_PID"
  # Nothing was refused: every reason's counter is 0.
  run curl -s "http://127.0.0.1:$ADMIN_PORT/metrics"
  refute_output --regexp 'otlp_recv_refused_requests_total\{protocol="http",reason="[a-z_]+"\} [1-9]'
  refute_output --regexp 'otlp_recv_prom_rw_rejected_series_total\{reason="[a-z_]+"\} [1-9]'
  stop_daemon TERM
  run "$(telkit_bin tel-cat)" "$T/out.tks"
  assert_output --partial '"signal":"prom-rw"'
  assert_output --partial '{"name":"__name__","value":"prometheus_build_info"}'
  assert_output --partial '{"name":"job","value":"self"}'
  assert_output --partial '"metricFamilyName":"prometheus_build_info"'
}
