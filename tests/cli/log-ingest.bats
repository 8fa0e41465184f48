#!/usr/bin/env bats
# log-ingest: plain text and JSON lines, OTLP logs frames from a stream file
# and a live Unix socket (acknowledged by the real tel-cat), the query
# reader, the admin endpoint, SIGTERM drain and bad input, with real files,
# sockets and processes.

load helpers

setup() {
  LI=$(telkit_bin log-ingest)
  TELCAT=$(telkit_bin tel-cat)
  T=$BATS_TEST_TMPDIR
  NOW=$(date +%s)
}

teardown() {
  stop_daemon KILL 2>/dev/null
  true
}

@test "plain text lines from stdin are stored and queried back in order" {
  printf 'first line\nsecond ERROR line\nthird line\n' | "$LI" --data "$T/db" --labels job=app,host=h1 --admin-listen none
  run "$LI" query --data "$T/db" '{job="app"}'
  assert_success
  assert_equal "${#lines[@]}" 3
  assert_line --index 0 --regexp '^[0-9T:.-]+Z \{host="h1", job="app"\} first line$'
  assert_line --index 2 --partial 'third line'
  run "$LI" query --data "$T/db" '{job="app"}' --contains ERROR
  assert_output --partial 'second ERROR line'
  assert_equal "${#lines[@]}" 1
  run "$LI" query --data "$T/db" '{job="app"}' --backward --limit 1
  assert_output --partial 'third line'
  run "$LI" query --data "$T/db" '{job="other"}'
  assert_success
  assert_output ''
}

@test "JSON lines (journalctl -o json) keep their timestamps and message field" {
  us=$((NOW * 1000000 + 42))
  {
    echo "{\"__REALTIME_TIMESTAMP\":\"$us\",\"MESSAGE\":\"Started nginx\",\"_PID\":\"1\"}"
    echo "not json at all"
    echo "{\"ts\":\"$(date -u -d @"$NOW" +%Y-%m-%dT%H:%M:%SZ)\",\"MESSAGE\":\"rfc3339 time\"}"
  } >"$T/journal.json"
  run "$LI" --data "$T/db" --labels job=journal --json --message-field MESSAGE --admin-listen none "$T/journal.json"
  assert_success
  assert_output --partial '3 lines read, 3 stored, 0 refused, 0 duplicates, 1 not JSON'
  run "$LI" query --data "$T/db" '{job="journal"}' --contains nginx --format jsonl
  assert_success
  ts=$(date -u -d @"$NOW" +%Y-%m-%dT%H:%M:%S)
  assert_output "{\"line\":\"Started nginx\",\"metadata\":{},\"stream\":{\"job\":\"journal\"},\"ts\":\"$ts.000042000Z\"}"
  run "$LI" query --data "$T/db" '{job="journal"}' --start "$NOW" --end "$((NOW + 1))"
  assert_line --partial 'rfc3339 time'
  assert_line --partial 'Started nginx'
}

@test "OTLP logs frames from a stream file: body, level, attributes, trace id" {
  tr -d '\n' <"$TELKIT_REPO_DIR/tests/testdata/otlp/logs.json" >"$T/logs.jsonl"
  echo >>"$T/logs.jsonl"
  tr -d '\n' <"$TELKIT_REPO_DIR/tests/testdata/otlp/traces.json" >>"$T/logs.jsonl"
  echo >>"$T/logs.jsonl"
  "$TELCAT" --from-json -o "$T/in.stream" "$T/logs.jsonl"
  run "$LI" --data "$T/db" --in "$T/in.stream" --admin-listen none --retention 0
  assert_success
  run "$LI" query --data "$T/db" '{service_name="checkout"}' --format jsonl --limit 0
  assert_success
  assert_equal "${#lines[@]}" 2
  assert_line --index 0 --partial '"line":"payment failed"'
  assert_line --index 0 --partial '"level":"error"'
  assert_line --index 0 --partial '"trace_id":"5b8efff798038103d269b633813fc60c"'
  assert_line --index 0 --partial '"span_id":"eee19b7ec3c1b174"'
  assert_line --index 0 --partial '"order_id":"1234"'
  assert_line --index 0 --partial '"scope_name":"checkout-lib"'
  assert_line --index 0 --partial '"ts":"2023-11-14T22:13:20.100000000Z"'
  assert_line --index 1 --partial '"line":"{\"attempt\":2,\"event\":\"retry\"}"'
  assert_line --index 1 --partial '"level":"info"'
}

@test "daemon on a Unix socket: acknowledged frames are queryable at once; metrics; SIGTERM drains" {
  tr -d '\n' <"$TELKIT_REPO_DIR/tests/testdata/otlp/logs.json" >"$T/logs.jsonl"
  echo >>"$T/logs.jsonl"
  "$TELCAT" --from-json -o "$T/in.stream" "$T/logs.jsonl"
  start_daemon log-ingest --data "$T/db" --in "listen:unix:$T/logs.sock" --admin-listen 127.0.0.1:0 --retention 0
  wait_for_log 'admin endpoint on'
  ADMIN_PORT=$(log_port 'admin endpoint on')
  wait_until 100 test -S "$T/logs.sock"
  # tel-cat returns once log-ingest acknowledged the frames (durable).
  "$TELCAT" -o "unix:$T/logs.sock" "$T/in.stream"
  run "$LI" query --data "$T/db" '{service_name="checkout", level="error"}'
  assert_success
  assert_output --partial 'payment failed'
  assert_equal "$(metric log_ingest_lines_total)" 2
  assert_equal "$(metric 'log_ingest_frames_total{kind="logs"}')" 1
  curl -sf -d '' "http://127.0.0.1:$ADMIN_PORT/api/v1/admin/logs/flush" | grep -q success
  assert_equal "$(metric log_ingest_chunks)" 2
  stop_daemon TERM
  assert_equal "$DAEMON_STATUS" 0
  grep -q 'received SIGTERM, draining' "$DAEMON_LOG"
  run "$LI" query --data "$T/db" '{service_name="checkout"}'
  assert_equal "${#lines[@]}" 2
}

@test "bad input is counted, never a crash: huge lines, bad UTF-8, bad frames" {
  {
    echo "ok line"
    head -c 300000 /dev/zero | tr '\0' 'x'
    echo
    printf 'bad \xff\xfe utf8\n'
  } | "$LI" --data "$T/db" --labels job=bad --admin-listen none --max-line-bytes 1000 2>"$T/err"
  grep -q '3 lines read, 2 stored, 1 refused' "$T/err"
  run "$LI" query --data "$T/db" '{job="bad"}'
  assert_line --index 1 --partial $'bad \xef\xbf\xbd\xef\xbf\xbd utf8'
  # Input that is not a stream at all: a clear error, exit 1.
  head -c 5000 /dev/urandom >"$T/garbage.stream"
  run "$LI" --data "$T/db2" --in "$T/garbage.stream" --admin-listen none
  assert_failure 1
  assert_output --partial 'not a telkit stream'
}

@test "usage errors exit 2 with a message" {
  run "$LI" --labels job=x
  assert_failure 2
  assert_output --partial 'log-ingest: error: --data is required'
  run "$LI" --data "$T/db" --labels 'bad-name=x' --admin-listen none
  assert_failure 2
  run "$LI" --data "$T/db" --labels job=x --retention 7x --admin-listen none
  assert_failure 2
  run "$LI" query --data "$T/db" '{job=""}'
  assert_failure 2
  assert_output --partial 'selector'
  run "$LI" query --data "$T/db" '{job="x"}' --start yesterday
  assert_failure 2
}

@test "--admin-listen like every daemon; --admin still works, warns and is not in --help" {
  run "$LI" --help
  assert_success
  assert_output --partial '--admin-listen'
  refute_output --regexp '--admin[^-]'
  printf 'one\n' | "$LI" --data "$T/db" --labels job=old --admin none 2>"$T/err"
  grep -q -- '--admin is deprecated; use --admin-listen' "$T/err"
  run "$LI" query --data "$T/db" '{job="old"}'
  assert_output --partial 'one'
  run "$LI" --data "$T/db" --labels job=x --admin-listen nonsense
  assert_failure 2
  assert_output --partial -- '--admin-listen'
}
