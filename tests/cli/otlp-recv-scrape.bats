#!/usr/bin/env bats
# otlp-recv --scrape-config: the real prometheus-node-exporter (Debian
# package, started here on a free loopback port) scraped through otlp-recv
# into tsdb-write and queried back; stale markers when it goes down;
# file_sd reload; the stack's self-scrape config; bad configs.

load helpers

setup() {
  T=$BATS_TEST_TMPDIR
  TW=$(telkit_bin tsdb-write)
  PIDS=()
}

teardown() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_node_exporter() {
  command -v prometheus-node-exporter >/dev/null ||
    skip "prometheus-node-exporter is not installed (scripts/setup.sh --test)"
  NE_PORT=$(free_port)
  prometheus-node-exporter --web.listen-address="127.0.0.1:$NE_PORT" --collector.disable-defaults \
    --collector.loadavg --collector.meminfo --collector.cpu >"$T/ne.log" 2>&1 3>&- &
  NE_PID=$!
  PIDS+=("$NE_PID")
  wait_until 100 curl -fsS -o /dev/null "http://127.0.0.1:$NE_PORT/metrics"
}

# start_pipeline CONFIG: tsdb-write on $T/metrics, otlp-recv scraping CONFIG into it.
start_pipeline() {
  "$TW" serve --data "$T/metrics" --in "listen:unix:$T/tsdb.sock" --admin-listen '' >"$T/tw.out" 2>"$T/tw.log" 3>&- &
  PIDS+=($!)
  wait_until 100 test -S "$T/tsdb.sock"
  ADMIN_PORT=$(free_port)
  "$(telkit_bin otlp-recv)" --out "unix:$T/tsdb.sock" --http-listen 127.0.0.1:0 --grpc-listen '' \
    --admin-listen "127.0.0.1:$ADMIN_PORT" --scrape-config "$1" >"$T/or.out" 2>"$T/or.log" 3>&- &
  OR_PID=$!
  PIDS+=("$OR_PID")
  wait_until 100 curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/readyz"
}

# last QUERY: the newest sample of each series tsdb-write has for QUERY.
last() {
  "$TW" query --data "$T/metrics" "$1" 2>/dev/null | awk '{ k = $1; v[k] = $0 } END { for (k in v) print v[k] }'
}

@test "node exporter -> otlp-recv -> tsdb-write: its series, up and the scrape_* series" {
  start_node_exporter
  printf 'scrape_configs:\n  - job_name: node\n    scrape_interval: 200ms\n    scrape_timeout: 200ms\n    static_configs:\n      - targets: ["127.0.0.1:%s"]\n        labels: {env: test}\n' \
    "$NE_PORT" >"$T/scrape.yml"
  start_pipeline "$T/scrape.yml"
  grep -q "scraping 1 targets of 1 jobs" "$T/or.log"
  wait_until 50 bash -c "'$TW' query --data '$T/metrics' node_load1 | grep -q ."
  run last "up"
  assert_output "up{env=\"test\",instance=\"127.0.0.1:$NE_PORT\",job=\"node\"} 1 $(cut -d' ' -f3 <<<"$output")"
  run last 'node_memory_MemTotal_bytes'
  assert_output --regexp "^node_memory_MemTotal_bytes\{env=\"test\",instance=\"127.0.0.1:$NE_PORT\",job=\"node\"\} [0-9.e+]+ [0-9]+$"
  for name in scrape_duration_seconds scrape_samples_scraped scrape_samples_post_metric_relabeling scrape_series_added; do
    run last "$name"
    assert_output --regexp "^$name\{env=\"test\",instance=\"127.0.0.1:$NE_PORT\",job=\"node\"\} [0-9.e+-]+ [0-9]+$"
  done
  samples=$(last scrape_samples_scraped | awk '{ print $(NF - 1) }')
  ((samples > 50))
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -qx 'otlp_recv_scrape_targets 1'

  # The exporter goes down: up 0, and its series get stale markers.
  kill -TERM "$NE_PID"
  wait "$NE_PID" 2>/dev/null || true
  wait_until 50 bash -c "'$TW' query --data '$T/metrics' up | tail -n 1 | grep -q '} 0 '"
  run last node_load1
  assert_output --regexp ' NaN [0-9]+$'
  failures=$(curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '$1 == "otlp_recv_scrape_failures_total" { print $2 }')
  ((failures >= 1))
}

@test "metric_relabel_configs and relabel_configs shape what is stored" {
  start_node_exporter
  cat >"$T/scrape.yml" <<EOF
scrape_configs:
  - job_name: node
    scrape_interval: 200ms
    scrape_timeout: 200ms
    static_configs:
      - targets: ["127.0.0.1:$NE_PORT"]
    relabel_configs:
      - source_labels: [__address__]
        regex: "([^:]+):.*"
        target_label: instance
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: "node_(load1|memory_MemTotal_bytes)|up"
        action: keep
EOF
  start_pipeline "$T/scrape.yml"
  wait_until 50 bash -c "'$TW' query --data '$T/metrics' node_load1 | grep -q ."
  run last node_load1
  assert_output --regexp '^node_load1\{instance="127.0.0.1",job="node"\} '
  run last node_load5
  assert_output ''
  post=$(last scrape_samples_post_metric_relabeling | awk '{ print $(NF - 1) }')
  scraped=$(last scrape_samples_scraped | awk '{ print $(NF - 1) }')
  [ "$post" = 2 ]
  ((scraped > post))
}

@test "file_sd: targets added to and removed from the file are picked up" {
  start_node_exporter
  echo '[]' >"$T/targets.json"
  printf 'scrape_configs:\n  - job_name: sd\n    scrape_interval: 200ms\n    scrape_timeout: 200ms\n    file_sd_configs:\n      - files: ["%s/*.json"]\n' \
    "$T" >"$T/scrape.yml"
  start_pipeline "$T/scrape.yml"
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -qx 'otlp_recv_scrape_targets 0'
  printf '[{"targets": ["127.0.0.1:%s"], "labels": {"team": "infra"}}]\n' "$NE_PORT" >"$T/targets.json.new"
  mv "$T/targets.json.new" "$T/targets.json"
  wait_until 50 bash -c "'$TW' query --data '$T/metrics' 'up' | grep -q 'team=\"infra\"'"
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -qx 'otlp_recv_scrape_targets 1'
  echo '[]' >"$T/targets.json.new"
  mv "$T/targets.json.new" "$T/targets.json"
  wait_until 50 bash -c "curl -fsS http://127.0.0.1:$ADMIN_PORT/metrics | grep -qx 'otlp_recv_scrape_targets 0'"
  wait_until 30 bash -c "'$TW' query --data '$T/metrics' node_load1 | tail -n 1 | grep -q ' NaN '"
  # A broken file keeps the targets it gave and is counted.
  echo '{broken' >"$T/targets.json"
  wait_until 50 bash -c "curl -fsS http://127.0.0.1:$ADMIN_PORT/metrics | grep -q '^otlp_recv_scrape_sd_errors_total [1-9]'"
  grep -q "file_sd of job 'sd'" "$T/or.log"
}

@test "the self-scrape default: config/scrape-self.yml parses; the stack's admin endpoints are scraped" {
  run -0 --separate-stderr timeout --preserve-status -s TERM 1 "$(telkit_bin otlp-recv)" --out /dev/null \
    --http-listen 127.0.0.1:0 --grpc-listen '' --admin-listen '' --scrape-config "$TELKIT_REPO_DIR/config/scrape-self.yml"
  [[ $stderr == *"scraping 8 targets of 2 jobs"* ]]
  # otlp-recv scraping its own admin endpoint: its counters land in the store.
  port=$(free_port)
  sed "s/127.0.0.1:8888/127.0.0.1:$port/" "$TELKIT_REPO_DIR/config/scrape-self.yml" |
    sed 's/scrape_interval: 15s/scrape_interval: 200ms/; s/scrape_timeout: 5s/scrape_timeout: 200ms/' >"$T/self.yml"
  "$TW" serve --data "$T/metrics" --in "listen:unix:$T/tsdb.sock" --admin-listen '' >"$T/tw.out" 2>"$T/tw.log" 3>&- &
  PIDS+=($!)
  wait_until 100 test -S "$T/tsdb.sock"
  "$(telkit_bin otlp-recv)" --out "unix:$T/tsdb.sock" --http-listen 127.0.0.1:0 --grpc-listen '' \
    --admin-listen "127.0.0.1:$port" --scrape-config "$T/self.yml" >"$T/or.out" 2>"$T/or.log" 3>&- &
  PIDS+=($!)
  wait_until 50 bash -c "'$TW' query --data '$T/metrics' 'otlp_recv_scrapes_total' | grep -q 'daemon=\"otlp-recv\"'"
  run last 'up{daemon="otlp-recv"}'
  assert_output --regexp "^up\{daemon=\"otlp-recv\",instance=\"127.0.0.1:$port\",job=\"telkit\"\} 1 "
}

@test "a bad scrape config: exit 2, the message names the key" {
  printf 'scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n' >"$T/bad.yml"
  run -2 --separate-stderr "$(telkit_bin otlp-recv)" --out /dev/null --http-listen 127.0.0.1:0 --grpc-listen '' \
    --admin-listen '' --scrape-config "$T/bad.yml"
  [[ $stderr == "otlp-recv: "*"unknown key 'scrape_intervall'"* ]]
  run -2 --separate-stderr "$(telkit_bin otlp-recv)" --scrape-config "$T/missing.yml"
}

@test "SIGHUP reloads the scrape config: a new job starts, a removed one is staled; a bad file keeps the old" {
  start_node_exporter
  printf 'scrape_configs:\n  - job_name: a\n    scrape_interval: 200ms\n    scrape_timeout: 200ms\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' \
    "$NE_PORT" >"$T/scrape.yml"
  start_pipeline "$T/scrape.yml"
  wait_until 50 bash -c "'$TW' query --data '$T/metrics' 'up' | grep -q 'job=\"a\"'"
  printf 'scrape_configs:\n  - job_name: b\n    scrape_interval: 200ms\n    scrape_timeout: 200ms\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' \
    "$NE_PORT" >"$T/scrape.yml"
  kill -HUP "$OR_PID"
  wait_until 50 grep -q "SIGHUP: reloaded '$T/scrape.yml': 1 targets" "$T/or.log"
  wait_until 50 bash -c "'$TW' query --data '$T/metrics' 'up' | grep -q 'job=\"b\"'"
  wait_until 30 bash -c "'$TW' query --data '$T/metrics' 'node_load1{job=\"a\"}' | tail -n 1 | grep -q ' NaN '"
  echo 'scrape_configs: [' >"$T/scrape.yml"
  kill -HUP "$OR_PID"
  wait_until 50 grep -q "scrape config not reloaded (the old one stays)" "$T/or.log"
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -qx 'otlp_recv_scrape_targets 1'
}
