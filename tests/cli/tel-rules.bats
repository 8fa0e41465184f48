#!/usr/bin/env bats
# tel-rules: check (line-numbered errors), test (promtool test rules format,
# compared with the real promtool when installed), and run: a real
# tsdb-write store fed by tel-rules' prom-rw output, notifications to the
# real prometheus-alertmanager (firing, then resolved), to a command and to
# a webhook, retries, SIGHUP reload, state kept across a restart, and an
# invalid rule file that does not stop the other groups.

load helpers

setup() {
  TR=$(telkit_bin tel-rules)
  RULES="$TELKIT_REPO_DIR/tests/testdata/rules"
  T=$BATS_TEST_TMPDIR
  PIDS=()
}

teardown() {
  local p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_store: tsdb-write on $T/data reading listen:unix:$T/in.sock.
start_store() {
  "$(telkit_bin tsdb-write)" serve --data "$T/data" --in "listen:unix:$T/in.sock" --admin-listen '' \
    >"$T/tsdb.out" 2>"$T/tsdb.log" 3>&- &
  STORE_PID=$!
  PIDS+=("$STORE_PID")
  wait_until 100 test -S "$T/in.sock"
  wait_until 100 test -S "$T/data/head.sock"
}

# start_rules ARGS...: tel-rules run with an ephemeral admin port; sets RULES_PID, ADMIN_PORT.
# (A chosen port, not :0: the log line naming the port may be read half-written.)
start_rules() {
  ADMIN_PORT=$(free_port)
  start_daemon tel-rules run --admin-listen "127.0.0.1:$ADMIN_PORT" "$@"
  RULES_PID=$DAEMON_PID
  PIDS+=("$RULES_PID")
  wait_for_log "admin endpoint on 127.0.0.1:$ADMIN_PORT"
  wait_until 100 curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz"
}

store_query() {
  "$(telkit_bin tsdb-write)" query --data "$T/data" "$1"
}

@test "check: the documentation's examples pass; errors name file, line and column" {
  run --separate-stderr "$TR" check "$RULES/alerts.yml" "$TELKIT_REPO_DIR/rules/telkit-stack.yml" "$TELKIT_REPO_DIR/rules/slo-example.yml"
  assert_success
  assert_line --index 0 "Checking $RULES/alerts.yml"
  assert_line --index 1 "  SUCCESS: 3 rules found"
  cat >"$T/bad.yml" <<'YAML'
groups:
  - name: ok
    rules:
      - record: a:b
        expr: sum(up)
  - name: broken
    rules:
      - alert: X
        expr: sum(up
        annotations:
          a: '{{ humanise $value }}'
YAML
  run --separate-stderr "$TR" check "$T/bad.yml"
  assert_failure 1
  assert_output - <<OUT
Checking $T/bad.yml
  FAILED:
OUT
  [[ $stderr == *"$T/bad.yml:11:14: group \"broken\", rule 1, \"X\": annotation \"a\": template: 1:4: function \"humanise\" not defined"* ]] || fail "$stderr"
  [[ $stderr == *"$T/bad.yml:9:15: group \"broken\", rule 1, \"X\": could not parse expression"* ]] || fail "$stderr"
  printf 'groups:\n  - name: x\n   rules: [\n' >"$T/notyaml.yml"
  run --separate-stderr "$TR" check "$T/notyaml.yml"
  assert_failure 1
  [[ $stderr == "$T/notyaml.yml:3:"*"yaml: "* ]] || fail "$stderr"
}

@test "test: promtool unit-test files pass, failures are shown, and promtool agrees" {
  run --separate-stderr "$TR" test "$RULES/alerts_test.yml"
  assert_success
  assert_output - <<OUT
Unit Testing: $RULES/alerts_test.yml
  SUCCESS
OUT
  sed 's/exp_annotations: {summary: "1 errors\/s on a"}/exp_annotations: {summary: "2 errors\/s on a"}/' \
    "$RULES/alerts_test.yml" >"$T/failing_test.yml"
  cp "$RULES/alerts.yml" "$T/"
  run --separate-stderr "$TR" test "$T/failing_test.yml"
  assert_failure 1
  assert_line --partial 'alertname: HighErrors, time: 5m,'
  assert_line --partial 'got:[Labels:{alertname="HighErrors", instance="a"} Annotations:{summary="1 errors/s on a"}]'
  if ! command -v promtool >/dev/null; then
    skip "promtool (Debian package prometheus) is not installed"
  fi
  run promtool test rules "$RULES/alerts_test.yml" "$TELKIT_REPO_DIR/rules/tests/slo-example_test.yml" "$TELKIT_REPO_DIR/rules/tests/telkit-stack_test.yml"
  assert_success
  run "$TR" test "$TELKIT_REPO_DIR/rules/tests/slo-example_test.yml" "$TELKIT_REPO_DIR/rules/tests/telkit-stack_test.yml"
  assert_success
}

@test "run: results reach tsdb-write; Alertmanager, a command and a webhook get firing then resolved" {
  command -v prometheus-alertmanager >/dev/null || skip "prometheus-alertmanager is not installed (scripts/setup.sh --test)"
  start_store
  am_port=$(free_port)
  cat >"$T/am.yml" <<'YAML'
route:
  receiver: blackhole
  group_wait: 1s
receivers:
  - name: blackhole
YAML
  prometheus-alertmanager --config.file="$T/am.yml" --storage.path="$T/am" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= >"$T/am.log" 2>&1 3>&- &
  PIDS+=($!)
  wait_until 100 curl -sf "http://127.0.0.1:$am_port/-/ready"
  hook_port=$(free_port)
  python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[2], "ab") as f: f.write(body + b"\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$hook_port" "$T/webhook.jsonl" 3>&- &
  PIDS+=($!)
  cat >"$T/r.yml" <<'YAML'
groups:
  - name: fast
    interval: 1s
    rules:
      - record: telkit:test:one
        expr: vector(1)
        labels: {source: rules}
      - alert: AlwaysOn
        expr: vector(42) > 0
        labels: {severity: page}
        annotations: {summary: 'value {{ $value }}'}
YAML
  # The command fails its first run: the notification is retried.
  start_rules --rules "$T/r.yml" --data "$T/data" --out "unix:$T/in.sock" --state "$T/state.json" \
    --alertmanager "http://127.0.0.1:$am_port" --webhook "http://127.0.0.1:$hook_port/hook" \
    --notify-command "if [ -e '$T/failed-once' ]; then cat >>'$T/cmd.jsonl'; else touch '$T/failed-once'; exit 1; fi" \
    --notify-backoff 100ms --external-label cluster=test
  wait_until 100 bash -c "curl -s 'http://127.0.0.1:$am_port/api/v2/alerts' | jq -e '.[] | select(.labels.alertname == \"AlwaysOn\" and .labels.severity == \"page\" and .labels.cluster == \"test\" and .annotations.summary == \"value 42\")'"
  wait_until 100 grep -q '"status":"firing"' "$T/cmd.jsonl"
  wait_until 100 grep -q '"alertname":"AlwaysOn"' "$T/webhook.jsonl"
  jq -e '.status == "firing" and .alerts[0].labels.alertname == "AlwaysOn"' <(head -1 "$T/webhook.jsonl")
  [[ $(metric 'telrules_notification_retries_total{kind="command",target="'"if [ -e '$T/failed-once' ]; then cat >>'$T/cmd.jsonl'; else touch '$T/failed-once'; exit 1; fi"'"}') -ge 1 ]] ||
    curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -q 'telrules_notification_retries_total{kind="command".*} [1-9]'
  # Recording results and ALERTS are in the store.
  wait_until 100 bash -c "'$(telkit_bin tsdb-write)' query --data '$T/data' 'telkit:test:one' | grep -q 'source'"
  wait_until 100 bash -c "'$(telkit_bin tsdb-write)' query --data '$T/data' 'ALERTS' | grep -q 'alertstate=\"firing\"'"
  wait_until 100 bash -c "'$(telkit_bin tsdb-write)' query --data '$T/data' 'ALERTS_FOR_STATE' | grep -q AlwaysOn"
  # Admin metrics: per-group evaluations and duration.
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -q "^telrules_group_last_duration_seconds{rule_group=\"$T/r.yml;fast\"}"
  [[ $(metric "telrules_group_evaluations_total{rule_group=\"$T/r.yml;fast\"}") -ge 1 ]]

  # The condition goes away (SIGHUP reload): resolved everywhere.
  sed -i 's/vector(42) > 0/vector(42) > 100/' "$T/r.yml"
  kill -HUP "$RULES_PID"
  wait_until 100 bash -c "curl -s 'http://127.0.0.1:$am_port/api/v2/alerts' | jq -e 'length == 0'"
  wait_until 100 grep -q '"status":"resolved"' "$T/cmd.jsonl"
  wait_until 100 grep -q '"status":"resolved"' "$T/webhook.jsonl"
  stop_daemon
  [[ $DAEMON_STATUS == 0 ]]
  jq -e '.groups[0].rules[1].alerts[0].state == "inactive"' "$T/state.json"
}

@test "run: a restart keeps pending and firing alerts; a bad file does not stop the other groups" {
  start_store
  cat >"$T/r.yml" <<'YAML'
groups:
  - name: g
    interval: 1s
    rules:
      - alert: Slow
        expr: vector(1)
        for: 1h
      - alert: Fast
        expr: vector(1)
YAML
  printf 'groups:\n  - name: bad\n    rules:\n      - alert: X\n        expr: sum(\n' >"$T/bad.yml"
  start_rules --rules "$T/r.yml" --rules "$T/bad.yml" --data "$T/data" --out "unix:$T/in.sock" --state "$T/state.json"
  grep -q "$T/bad.yml:5:15: group \"bad\", rule 1, \"X\": could not parse expression" "$DAEMON_LOG"
  [[ $(metric telrules_config_last_reload_successful) == 0 ]]
  wait_until 100 jq -e '.groups[0].rules[1].alerts[0].state == "firing"' "$T/state.json"
  active=$(jq '.groups[0].rules[0].alerts[0].active_at_ms' "$T/state.json")
  jq -e '.groups[0].rules[0].alerts[0].state == "pending"' "$T/state.json"
  stop_daemon
  sleep 1.2
  start_rules --rules "$T/r.yml" --data "$T/data" --out "unix:$T/in.sock" --state "$T/state.json"
  wait_until 100 bash -c "jq -e '.groups[0].last_eval_ms > $active + 1000' '$T/state.json'"
  [[ $(jq '.groups[0].rules[0].alerts[0].active_at_ms' "$T/state.json") == "$active" ]]
  jq -e '.groups[0].rules[0].alerts[0].state == "pending"' "$T/state.json"
  jq -e '.groups[0].rules[1].alerts[0].state == "firing"' "$T/state.json"
  m=$(metric "telrules_alerts{state=\"pending\"}"); [[ $m == 1 ]] || fail "pending: $m"
  m=$(metric "telrules_alerts{state=\"firing\"}"); [[ $m == 1 ]] || fail "firing: $m"
  stop_daemon
}

@test "tel-query serve --rules-state: /api/v1/rules and /api/v1/alerts in Prometheus' JSON" {
  port=$(free_port)
  cp "$RULES/state-v1.json" "$T/state.json"
  "$(telkit_bin tel-query)" serve --load "$TELKIT_REPO_DIR/tests/testdata/promql/selectors.test" \
    --listen "127.0.0.1:$port" --admin-listen '' --rules-state "$T/state.json" >"$T/tq.out" 2>"$T/tq.log" 3>&- &
  PIDS+=($!)
  wait_until 100 curl -sf "http://127.0.0.1:$port/-/ready"
  run curl -sf "http://127.0.0.1:$port/api/v1/rules"
  assert_success
  jq -e '.status == "success" and (.data.groups | length) == 1' <<<"$output"
  jq -e '.data.groups[0] | .name == "g" and .file == "t.yml" and .interval == 60 and .lastEvaluation == "1970-01-01T00:13:00Z"' <<<"$output"
  jq -e '.data.groups[0].rules[0] | .type == "recording" and .name == "job:up:sum" and .health == "ok"' <<<"$output"
  jq -e '.data.groups[0].rules[1] | .type == "alerting" and .state == "firing" and .duration == 120 and .labels.severity == "page"' <<<"$output"
  jq -e '.data.groups[0].rules[1].alerts[0] | .state == "firing" and .activeAt == "1970-01-01T00:10:00Z" and .value == "0" and .annotations.summary == "h:1 down"' <<<"$output"
  run curl -sf "http://127.0.0.1:$port/api/v1/rules?type=record"
  jq -e '(.data.groups[0].rules | length) == 1 and .data.groups[0].rules[0].type == "recording"' <<<"$output"
  run curl -sf "http://127.0.0.1:$port/api/v1/alerts"
  jq -e '.status == "success" and (.data.alerts | length) == 1 and .data.alerts[0].labels.alertname == "Down"' <<<"$output"
  # The file is read per request: tel-rules' next write shows at once; a missing file is no rules.
  rm "$T/state.json"
  run curl -sf "http://127.0.0.1:$port/api/v1/rules"
  jq -e '.data.groups == []' <<<"$output"
  echo 'not json' >"$T/state.json"
  run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/v1/alerts"
  assert_output 500
}
