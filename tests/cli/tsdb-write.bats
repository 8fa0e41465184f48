#!/usr/bin/env bats
# tsdb-write: usage errors, import of golden files read back exactly,
# analyze, snapshot of a stopped and of a running store, the daemon over a
# real socket (remote write and OTLP frames from tel-cat, bad input counted,
# acknowledgements, data readable from another process at once), SIGTERM,
# kill -9 and restart.

load helpers

setup() {
  T="$BATS_TEST_TMPDIR"
  GOLD="$TELKIT_REPO_DIR/tests/testdata/tsdb"
  OTLP="$TELKIT_REPO_DIR/tests/testdata/otlp"
}

teardown() {
  stop_daemon KILL
}

tw() { "$(telkit_bin tsdb-write)" "$@"; }
tel_cat() { "$(telkit_bin tel-cat)" "$@"; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }

# rw_line NAME T_MS VALUE [LABEL=VALUE]: one prom-rw frame as a JSON line.
rw_line() {
  local extra=''
  [[ -n ${4:-} ]] && extra=",{\"name\":\"${4%%=*}\",\"value\":\"${4#*=}\"}"
  printf '{"signal":"prom-rw","payload":{"timeseries":[{"labels":[{"name":"__name__","value":"%s"}%s],"samples":[{"value":%s,"timestamp":"%s"}]}]}}\n' \
    "$1" "$extra" "$3" "$2"
}

# start_tsdb ARGS...: the daemon on DIR $T/data, admin on an ephemeral port.
start_tsdb() {
  rm -f "$T/tsdb-write.log"  # a restart: never read the last run's log
  start_daemon tsdb-write --data "$T/data" --admin-listen 127.0.0.1:0 "$@"
  wait_for_log 'admin endpoint on'
  ADMIN_PORT=$(log_port 'admin endpoint on')
  wait_until 100 curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz"
}

@test "usage errors exit 2 with one line on stderr" {
  run -2 tw query 'up'
  assert_output --partial '--data DIR is required'
  run -2 tw --data "$T/d" query
  assert_output --partial 'query takes one SELECTOR'
  run -2 tw --data "$T/d" query 'up{'
  assert_output --partial 'selector'
  run -2 tw --data "$T/d" import
  run -2 tw --data "$T/d" nonsense
  run -2 tw --data "$T/d" --retention-time forever
  assert_output --partial 'not a duration'
  run -2 tw --data "$T/d" query up --start yesterday
  run -2 tw --data "$T/d" serve extra
  run -1 tw --data "$T/none" query up
  assert_output --partial 'no metrics store'
}

@test "import: an OpenMetrics file is read back exactly, into blocks, and analyzed" {
  run -0 tw --data "$T/data" import "$GOLD/backfill.om.txt"
  assert_output --partial 'imported 12 samples (8 new series)'
  [ "$(ls "$T/data/blocks" | wc -l)" -ge 1 ]
  run -0 tw --data "$T/data" query '{__name__=~".+"}'
  [ "$output" = "$(cat "$GOLD/backfill.expected")" ]
  # Prometheus text with ms timestamps (what query prints) imports again.
  tw --data "$T/data" query '{__name__=~".+"}' >"$T/out.prom"
  run -0 tw --data "$T/copy" import --format prometheus "$T/out.prom"
  run -0 tw --data "$T/copy" query '{__name__=~".+"}'
  [ "$output" = "$(cat "$GOLD/backfill.expected")" ]
  run -0 tw --data "$T/data" query 'temperature_celsius' --start 1699990010 --end 2023-11-14T19:46:55.5Z
  [ "$output" = 'temperature_celsius{room="a"} -3.25e-05 1699990015500' ]
  run -0 tw --data "$T/data" analyze --top 2
  assert_line 'Series: 8'
  assert_line 'Samples: 12'
  assert_line 'Metric names: 5'
  assert_line --partial 'Blocks: '
  assert_output --partial $'Highest cardinality metric names (series):\n2 http_requests_total\n2 latency_seconds_bucket'
  assert_output --partial $'Highest cardinality labels (distinct values):\n2 code\n2 le'
}

@test "import: data older than the newest block becomes blocks of its own, merged where they overlap" {
  # Newest first: 10:00-11:00 and 20:00 on 2023-11-14 (block range 2h).
  printf 'a{j="x"} 10 1699956000000\na{j="x"} 11 1699959600000\nb 1 1699992000000\n' >"$T/new.prom"
  run -0 tw --data "$T/data" import --format prometheus "$T/new.prom"
  assert_output --partial 'imported 3 samples'
  # Older than every block, and inside the first block's range (10:30,
  # plus a repeat of 10:00 that is not stored twice).
  printf 'a{j="x"} 1 1699920000000\na{j="x"} 2 1699923600000\na{j="x"} 10.5 1699957800000\na{j="x"} 10 1699956000000\n' \
    >"$T/old.prom"
  run -0 tw --data "$T/data" import --format prometheus "$T/old.prom"
  assert_output --partial 'imported 4 samples'
  refute_output --partial 'out_of_bounds'
  run -0 tw --data "$T/data" query 'a'
  [ "$output" = $'a{j="x"} 1 1699920000000\na{j="x"} 2 1699923600000\na{j="x"} 10 1699956000000\na{j="x"} 10.5 1699957800000\na{j="x"} 11 1699959600000' ]
  run -0 tw --data "$T/data" query 'b'
  [ "$output" = 'b 1 1699992000000' ]
  # The block over 10:00-12:00 and the imported one inside it are one now:
  # no two blocks overlap.
  run -0 tw --data "$T/data" analyze
  assert_line 'Samples: 6'
  sqlite3 "$T/data/index.db" 'SELECT mint, maxt FROM blocks ORDER BY mint' >"$T/blocks.txt" 2>/dev/null || skip "no sqlite3 CLI"
  awk -F'|' 'NR > 1 && $1 < prev { bad = 1 } { prev = $2 } END { exit bad }' "$T/blocks.txt" ||
    fail "overlapping blocks remain: $(cat "$T/blocks.txt")"
}

@test "import: bad lines stop it with the line number; stdin works" {
  printf '# TYPE x gauge\nx 1 1700000000\nx{ 2\n# EOF\n' >"$T/bad.om"
  run -1 tw --data "$T/data" import "$T/bad.om"
  assert_output --partial 'line 3'
  run -0 bash -c "printf 'y 3 1700000000000\n' | '$(telkit_bin tsdb-write)' --data '$T/data' import --format prometheus -"
  run -0 tw --data "$T/data" query y
  [ "$output" = 'y 3 1700000000000' ]
}

@test "snapshot of a stopped store is a store with the same data" {
  tw --data "$T/data" import "$GOLD/backfill.om.txt" 2>/dev/null
  run -0 tw --data "$T/data" snapshot "$T/snap"
  assert_output --partial 'stopped store'
  run -0 tw --data "$T/snap" query '{__name__=~".+"}'
  [ "$output" = "$(cat "$GOLD/backfill.expected")" ]
  run -1 tw --data "$T/data" snapshot "$T/snap"
  assert_output --partial 'exists'
}

@test "daemon: frames acked once stored, readable at once from another process, bad input counted" {
  start_tsdb
  {
    rw_line up 1700000001000 1 job=a
    rw_line up 1700000002000 0 job=a
    printf '{"signal":"traces","payloadBase64":"AAAA"}\n'
    printf '{"signal":"prom-rw","payloadBase64":"//8="}\n'
    rw_line up 1700000001500 5 job=a # out of order
    rw_line 0bad 1000 1     # invalid metric name
  } | tel_cat --from-json -o "unix:$T/data/ingest.sock"
  # tel-cat returned: every frame is acknowledged, so it is durable and visible.
  run -0 tw --data "$T/data" query up
  assert_output $'up{job="a"} 1 1700000001000\nup{job="a"} 0 1700000002000'
  tel_cat --from-json -o "unix:$T/data/ingest.sock" "$OTLP/metrics.json"
  run -0 tw --data "$T/data" query '{__name__=~"http_server_requests.*"}'
  assert_output --partial 'http_server_requests_total{'
  assert_output --partial '} 42 1700000060000'
  [ "$(metric tsdb_write_frames_acked_total)" = 7 ]
  [ "$(metric 'tsdb_write_frames_dropped_total{reason="wrong_signal"}')" = 1 ]
  [ "$(metric 'tsdb_write_frames_dropped_total{reason="malformed"}')" = 1 ]
  [ "$(metric 'tsdb_write_rejected_total{reason="out_of_order"}')" = 1 ]
  [ "$(metric 'tsdb_write_rejected_total{reason="invalid_metric_name"}')" = 1 ]
  [ "$(metric 'tsdb_write_frames_total{signal="metrics"}')" = 1 ]
  [ "$(metric tsdb_write_head_series)" -ge 2 ]
  # (Close timestamps: retention keeps 15 days before the newest sample.)
  # A second writer of the directory is refused, naming the holder.
  run -1 tw --data "$T/data" import "$GOLD/backfill.om.txt"
  assert_output --partial "pid $DAEMON_PID"
  # Snapshot and flush through the running daemon.
  run -0 tw --data "$T/data" snapshot "$T/snap"
  assert_output --partial 'by the running daemon'
  run -0 tw --data "$T/data" flush
  [ "$(metric tsdb_write_head_series)" -ge 0 ]
  run -0 tw --data "$T/data" query up
  assert_output $'up{job="a"} 1 1700000001000\nup{job="a"} 0 1700000002000'
  stop_daemon TERM
  [ "$DAEMON_STATUS" = 0 ]
  grep -q 'received SIGTERM, stopping' "$DAEMON_LOG"
  grep -q 'rejected: invalid_metric_name 1, out_of_order 1' "$DAEMON_LOG"
  run -0 tw --data "$T/snap" query up
  assert_output $'up{job="a"} 1 1700000001000\nup{job="a"} 0 1700000002000'
}

@test "daemon: kill -9 loses nothing acknowledged; restart replays the WAL; no duplicates" {
  start_tsdb
  for i in $(seq 1 50); do rw_line k $((i * 1000)) "$i" job=x; done | tel_cat --from-json -o "unix:$T/data/ingest.sock"
  kill -KILL "$DAEMON_PID"
  wait "$DAEMON_PID" || true
  DAEMON_PID=
  # Stopped: the reader opens the store and replays its WAL.
  run -0 tw --data "$T/data" query k
  [ "${#lines[@]}" = 50 ]
  start_tsdb
  grep -q '50 WAL samples replayed' "$DAEMON_LOG"
  # The sender resends what it is unsure of: the repeats are not stored twice.
  for i in $(seq 40 60); do rw_line k $((i * 1000)) "$i" job=x; done | tel_cat --from-json -o "unix:$T/data/ingest.sock"
  run -0 tw --data "$T/data" query k
  [ "${#lines[@]}" = 60 ]
  [ "$(printf '%s\n' "${lines[@]}" | sort -u | wc -l)" = 60 ]
  [ "${lines[59]}" = 'k{job="x"} 60 60000' ]
}

@test "daemon: a pipe on stdin ends the daemon at its end; SIGHUP reloads" {
  rw_line p 1000 1 | tel_cat --from-json -o "$T/in.tks"
  run -0 tw --data "$T/data" --admin-listen '' --in "$T/in.tks"
  run -0 tw --data "$T/data" query p
  [ "$output" = 'p 1 1000' ]
  start_tsdb
  kill -HUP "$DAEMON_PID"
  wait_for_log 'SIGHUP: reloaded'
}

@test "exemplars: remote-write exemplars are served by tel-query serve's /api/v1/query_exemplars" {
  start_tsdb
  # A sample with an exemplar (trace and span ids), one with an invalid
  # exemplar label name (dropped, counted), one without.
  {
    printf '{"signal":"prom-rw","payload":{"timeseries":[{"labels":[{"name":"__name__","value":"req_total"},{"name":"job","value":"a"}],"samples":[{"value":3,"timestamp":"1700000001000"}],"exemplars":[{"labels":[{"name":"trace_id","value":"4bf92f3577b34da6a3ce929d0e0e4736"},{"name":"span_id","value":"00f067aa0ba902b7"}],"value":1.5,"timestamp":"1700000000500"}]}]}}\n'
    printf '{"signal":"prom-rw","payload":{"timeseries":[{"labels":[{"name":"__name__","value":"req_total"},{"name":"job","value":"b"}],"samples":[{"value":4,"timestamp":"1700000001000"}],"exemplars":[{"labels":[{"name":"bad-name","value":"x"}],"value":2,"timestamp":"1700000000600"}]}]}}\n'
    rw_line other 1700000001000 1
  } | tel_cat --from-json -o "unix:$T/data/ingest.sock"
  [ "$(metric 'tsdb_write_rejected_total{reason="invalid_exemplar"}')" = 1 ]
  [ "$(metric tsdb_write_exemplars_appended_total)" = 1 ]
  TQ="$(telkit_bin tel-query)"
  "$TQ" serve --data "$T/data" --listen 127.0.0.1:0 --admin-listen '' 2>"$T/serve.log" &
  local qpid=$! port=''
  for _ in $(seq 100); do
    port=$(grep -oE 'Prometheus API on 127.0.0.1:[0-9]+' "$T/serve.log" | grep -oE '[0-9]+$' || true)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { kill "$qpid"; fail "tel-query serve did not start: $(cat "$T/serve.log")"; }
  run curl -sf "http://127.0.0.1:$port/api/v1/query_exemplars?query=sum(rate(req_total%5B5m%5D))%20or%20other&start=1699999999&end=1700000002"
  kill "$qpid"
  wait "$qpid" || true
  assert_output '{"status":"success","data":[{"seriesLabels":{"__name__":"req_total","job":"a"},"exemplars":[{"labels":{"span_id":"00f067aa0ba902b7","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"},"value":"1.5","timestamp":1700000000.500}]}]}'
}
