#!/usr/bin/env bats
# tel-cat: printing, converting, copying and sending streams, with real files,
# real Unix sockets (and systemd socket activation) and a real otlp-recv.

load helpers

setup() {
  TELCAT=$(telkit_bin tel-cat)
  DATA="$TELKIT_REPO_DIR/tests/testdata/otlp"
  T=$BATS_TEST_TMPDIR
  # One JSON line per request: traces (2 spans), metrics (3 points), logs (2 records).
  for f in traces metrics logs; do tr -d '\n' <"$DATA/$f.json"; echo; done >"$T/requests.jsonl"
  "$TELCAT" --from-json -o "$T/sample.stream" "$T/requests.jsonl"
}

teardown() {
  [[ -n ${BG_PID:-} ]] && kill "$BG_PID" 2>/dev/null
  true
}

@test "JSON requests become a stream whose summary counts every item" {
  run "$TELCAT" --summary "$T/sample.stream"
  assert_success
  assert_line --index 0 --regexp '^seq=1 time=[0-9T:.Z-]+ traces bytes=[0-9]+ spans=2 resources=1 services=checkout\(2\)$'
  assert_line --index 1 --regexp ' metrics .* data points=3 .*services=checkout\(3\)$'
  assert_line --index 2 --regexp ' logs .* log records=2 .*services=checkout\(2\)$'
  assert_line --index 3 --regexp '^total: logs frames=1 .*items=2; metrics frames=1 .*items=3; traces frames=1 .*items=2;$'
}

@test "stream -> JSON -> stream is byte-identical" {
  "$TELCAT" "$T/sample.stream" >"$T/sample.jsonl"
  run "$TELCAT" --from-json -o "$T/again.stream" "$T/sample.jsonl"
  assert_success
  cmp "$T/sample.stream" "$T/again.stream"
  # The JSON is the OTLP mapping: hex ids, lowerCamelCase, enums as numbers.
  grep -q '"traceId":"5b8efff798038103d269b633813fc60c"' "$T/sample.jsonl"
  grep -q '"kind":2' "$T/sample.jsonl"
  grep -q '"startTimeUnixNano":"1700000000000000000"' "$T/sample.jsonl"
}

@test "--signal keeps only the chosen signals; concatenated streams read as one" {
  cat "$T/sample.stream" "$T/sample.stream" >"$T/twice.stream"
  run "$TELCAT" --signal logs,traces --summary "$T/twice.stream"
  assert_success
  assert_line --regexp '^total: logs frames=2 .*; traces frames=2 .*;$'
  refute_output --partial metrics
  # A list flag takes one value: the input after it stays an input.
  run "$TELCAT" --signal traces "$T/sample.stream"
  assert_success
  assert_line --index 1 --partial '"signal":"traces"'
  assert_equal "${#lines[@]}" 2  # the stream header and the one traces frame
}

@test "a damaged frame is reported with its offset, skipped, and the rest is read" {
  cp "$T/sample.stream" "$T/bad.stream"
  # Flip one payload byte of the second frame (header 24 + frame 1 + 36 + 5).
  first=$(( $("$TELCAT" --signal traces -o - "$T/sample.stream" | wc -c) - 24 ))
  offset=$((24 + first + 36 + 5))
  printf '\xff' | dd of="$T/bad.stream" bs=1 seek="$offset" conv=notrunc status=none
  run --separate-stderr "$TELCAT" --summary "$T/bad.stream"
  assert_success
  assert_line --regexp '^total: logs frames=1 .*; traces frames=1 .*;$'
  [[ $stderr == *"corrupt stream at offset $((24 + first)): payload checksum mismatch"* ]]
  run --separate-stderr "$TELCAT" --on-corrupt fail "$T/bad.stream"
  assert_failure 1
  [[ $stderr == *"payload checksum mismatch"* ]]
}

@test "a truncated stream ends after its last whole frame" {
  size=$(stat -c %s "$T/sample.stream")
  head -c $((size - 10)) "$T/sample.stream" >"$T/cut.stream"
  run --separate-stderr "$TELCAT" --summary "$T/cut.stream"
  assert_success
  assert_line --regexp '^total: metrics frames=1 .*; traces frames=1 .*;$'
  [[ $stderr == *"truncated frame"* ]]
}

@test "input that is not a stream, and bad JSON lines, are clear errors" {
  run --separate-stderr "$TELCAT" "$T/requests.jsonl"
  assert_failure 1
  [[ $stderr == *"not a telkit stream"* ]]
  printf '%s\n' "$(head -n 1 "$T/requests.jsonl")" '{"resourceSpans": [' >"$T/broken.jsonl"
  run --separate-stderr "$TELCAT" --from-json -o "$T/x.stream" "$T/broken.jsonl"
  assert_success  # skipped and reported, like a corrupt frame
  [[ $stderr == *"line 2"* ]]
  run "$TELCAT" --summary "$T/x.stream"
  assert_line --regexp '^total: traces frames=1 '
  run --separate-stderr "$TELCAT" --from-json --on-corrupt fail -o "$T/y.stream" "$T/broken.jsonl"
  assert_failure 1
  [[ $stderr == *"line 2"* ]]
  run --separate-stderr "$TELCAT" /nonexistent/stream
  assert_failure 1
  [[ $stderr == *"'/nonexistent/stream'"* ]]
}

@test "a closed stdout (| head) ends tel-cat quietly" {
  for i in $(seq 200); do cat "$T/requests.jsonl"; done | "$TELCAT" -j -o "$T/big.stream"
  run bash -c "'$TELCAT' '$T/big.stream' | head -n 1 >/dev/null; echo \"\${PIPESTATUS[0]}\""
  assert_output 0
}

@test "only one sink at a time" {
  run "$TELCAT" --summary -o "$T/x" "$T/sample.stream"
  assert_failure 2
}

@test "over a Unix socket: the writer waits for acknowledgements, the reader gets every frame" {
  sock="$T/tap.sock"
  "$TELCAT" --summary "listen:unix:$sock" >"$T/listened.txt" 2>"$T/listener.log" 3>&- &
  BG_PID=$!
  wait_until 50 test -S "$sock"
  run "$TELCAT" -j -o "unix:$sock" "$T/requests.jsonl"
  assert_success  # returns only once the listener acknowledged all three frames
  wait_until 50 grep -c 'seq=3 ' "$T/listened.txt"
  run grep -c '^seq=' "$T/listened.txt"
  assert_output 3
}

@test "systemd socket activation: a listening socket passed as fd 3" {
  command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate is not installed"
  sock="$T/activated.sock"
  systemd-socket-activate -l "$sock" --fdname=telemetry "$TELCAT" --summary systemd:telemetry \
    >"$T/activated.txt" 2>"$T/activate.log" 3>&- &
  BG_PID=$!
  wait_until 50 test -S "$sock"
  run "$TELCAT" -j -o "unix:$sock" "$T/requests.jsonl"
  assert_success
  wait_until 50 grep -q 'seq=3 ' "$T/activated.txt"
  run grep -c '^seq=' "$T/activated.txt"
  assert_output 3
}

@test "--send replays a stream into otlp-recv, which writes the same payloads" {
  start_daemon otlp-recv --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --out "$T/received.stream"
  wait_for_log 'OTLP/gRPC on'
  port=$(log_port 'OTLP/gRPC on')
  run "$TELCAT" --send "127.0.0.1:$port" --protocol grpc "$T/sample.stream"
  assert_success
  kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"
  diff <("$TELCAT" "$T/sample.stream" | sed 's/"seq":"[0-9]*","time":"[0-9]*",//' | grep -v '^{"stream"') \
       <("$TELCAT" "$T/received.stream" | sed 's/"seq":"[0-9]*","time":"[0-9]*",//' | grep -v '^{"stream"')
}

@test "--send to nothing fails after its retries, with exit 1" {
  run --separate-stderr "$TELCAT" --send http://127.0.0.1:9 --protocol http/protobuf --timeout-ms 200 "$T/sample.stream"
  assert_failure 1
  [[ $stderr == *"attempt 5"* ]]
}
