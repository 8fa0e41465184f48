#!/usr/bin/env bats
# stack-health: every flag combination a user scripts (outputs, exit codes,
# thresholds by flag and config, state file, watch, TLS), and the real
# stack: otlp-recv -> tel-batch -> tsdb-write, log-ingest, trace-store, with
# tel-query serve, on free loopback ports. OK with the canary, CRITICAL when
# a daemon is killed, OK again once it is back.

load helpers
load stack_health_stack

setup() {
  SH=$(telkit_bin stack-health)
  T=$BATS_TEST_TMPDIR
  mkdir -p "$T/data/metrics"
}

teardown() {
  stack_stop
  [[ -n ${SERVER_PID:-} ]] && { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; }
  true
}

# A port nothing listens on.
dead_target() { echo "--target ghost=127.0.0.1:$(free_port)"; }

# cert FILE DAYS: a self-signed certificate valid for DAYS more days.
cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=telkit \
    -keyout "$1.key" -out "$1" -days "$2" 2>/dev/null
}

@test "no daemon answers: CRITICAL, exit 2, the table names the daemon and why" {
  run -2 --separate-stderr "$SH" $(dead_target) --no-freshness
  assert_line --regexp '^CRITICAL +ghost +healthz +- +GET /healthz http://127\.0\.0\.1:[0-9]+: cannot connect'
  assert_line --partial 'stack-health: CRITICAL: 1 checks, 1 not OK'
  [ -z "$stderr" ]
}

@test "only disks, all fine: OK, exit 0" {
  run -0 "$SH" --no-daemons --no-freshness --data "$T/data" --disk-free-warn 0 --disk-free-crit 0
  assert_line --regexp '^OK +disk +free '
  assert_line --regexp '^OK +disk +size '
  assert_line --partial 'stack-health: OK'
}

@test "a disk threshold by flag: WARNING exit 1, CRITICAL exit 2" {
  run -1 "$SH" --no-daemons --no-freshness --data "$T/data" --disk-free-warn 100 --disk-free-crit 0
  assert_line --regexp '^WARNING +disk +free '
  run -2 "$SH" --no-daemons --no-freshness --data "$T/data" --disk-free-crit 100
  assert_line --regexp '^CRITICAL +disk +free '
}

@test "thresholds from --config: the long flags as keys, flags win" {
  printf 'disk-free-warn = 100\ndisk-free-crit = 0\nno-daemons = true\nno-freshness = true\n' >"$T/health.conf"
  run -1 "$SH" --config "$T/health.conf" --data "$T/data"
  assert_line --regexp '^WARNING +disk +free '
  run -0 "$SH" --config "$T/health.conf" --data "$T/data" --disk-free-warn 0
}

@test "--json: one object with status, exit_code and every check" {
  run -2 --separate-stderr "$SH" $(dead_target) --no-freshness --data "$T/data" --json
  jq -e '.status == "CRITICAL" and .exit_code == 2 and (.time_ms > 0)' <<<"$output"
  jq -e '[.checks[] | select(.component == "ghost" and .check == "healthz" and .status == "CRITICAL")] | length == 1' <<<"$output"
  jq -e '[.checks[] | select(.component == "disk" and .check == "free")][0] | (.value > 0 and .unit == "ratio")' <<<"$output"
}

@test "--prometheus: text format with status and per-check series" {
  run -2 "$SH" $(dead_target) --no-freshness --data "$T/data" --prometheus
  assert_line 'telkit_stack_health_status 2'
  assert_line '# TYPE telkit_stack_health_check_status gauge'
  assert_line --regexp '^telkit_stack_health_check_status\{component="ghost",check="healthz",target="127\.0\.0\.1:[0-9]+"\} 2$'
  assert_line --regexp '^telkit_stack_health_check_value\{component="disk",check="free",target=".*/data/metrics",unit="ratio"\} [0-9.e-]+$'
  assert_line --regexp '^telkit_stack_health_last_run_timestamp_seconds [0-9.]+$'
  # Every line is a comment or a sample: parseable by the textfile collector.
  ! grep -vE '^(# (HELP|TYPE) .*|[a-z_]+(\{.*\})? [-+0-9.eNaInf]+)$' <<<"$output"
}

@test "--prometheus -o FILE: written atomically, nothing on stdout, exit status kept" {
  run -2 "$SH" $(dead_target) --no-freshness --prometheus -o "$T/telkit.prom"
  [ -z "$output" ]
  grep -qx 'telkit_stack_health_status 2' "$T/telkit.prom"
  [ -z "$(find "$T" -name 'telkit.prom.tmp*')" ]
  run -3 "$SH" --no-daemons --no-freshness -o "$T/no/such/dir/x.prom"
  [[ $output == *"cannot write"* ]]
}

@test "--json and --prometheus together: usage error, exit 2" {
  run -2 --separate-stderr "$SH" --json --prometheus
  [ -z "$output" ]
  [[ $stderr == "stack-health: "*"exclude each other"* ]]
}

@test "a bad --target: usage error naming it" {
  run -2 --separate-stderr "$SH" --target 'nohost'
  [[ $stderr == *"'nohost' is not NAME=HOST:PORT"* ]]
}

@test "--color always colours the states; a pipe gets none by default" {
  run -2 "$SH" $(dead_target) --no-freshness --color always
  [[ $output == *$'\033[1;31mCRITICAL\033[0m'* ]]
  run -2 "$SH" $(dead_target) --no-freshness
  [[ $output != *$'\033['* ]]
}

@test "--state-file: growth between runs; a damaged file is UNKNOWN (exit 3) and replaced" {
  run -0 "$SH" --no-daemons --no-freshness --disk "$T/data/metrics" --state-file "$T/state.json" \
    --disk-free-warn 0 --disk-free-crit 0
  refute_line --regexp 'disk +growth'
  jq -e '.version == 1 and (.dir_bytes | length == 1)' "$T/state.json"
  head -c 300000 /dev/urandom >"$T/data/metrics/grown"
  sleep 0.2
  run -1 "$SH" --no-daemons --no-freshness --disk "$T/data/metrics" --state-file "$T/state.json" \
    --disk-free-warn 0 --disk-free-crit 0 --disk-full-warn 1000000000
  assert_line --regexp '^WARNING +disk +growth +[0-9.]+ [KM]iB/s +growing .* full in '
  echo '{"version": 1, "time_ms": ' >"$T/state.json"
  run -3 "$SH" --no-daemons --no-freshness --state-file "$T/state.json"
  assert_line --regexp '^UNKNOWN +stack-health +state +- .*not a stack-health state.*starting afresh'
  run -0 "$SH" --no-daemons --no-freshness --state-file "$T/state.json"
}

@test "--watch: runs again every SECONDS until interrupted; the last round's status" {
  run -2 timeout --preserve-status -s INT 2.5 "$SH" $(dead_target) --no-freshness --json --watch 1 --timeout 0.5
  [ "$(jq -s length <<<"$output")" -ge 2 ]
}

@test "--tls-cert: OK, WARNING within --cert-warn days, CRITICAL within --cert-crit" {
  cert "$T/long.pem" 365
  cert "$T/soon.pem" 10
  cert "$T/sooner.pem" 3
  run -0 "$SH" --no-daemons --no-freshness --tls-cert "$T/long.pem"
  assert_line --regexp "^OK +tls +expiry +36[45]\.[0-9]d +expires at .*long\.pem"
  run -1 "$SH" --no-daemons --no-freshness --tls-cert "$T/long.pem" --tls-cert "$T/soon.pem"
  assert_line --regexp "^WARNING +tls +expiry .*soon\.pem"
  run -0 "$SH" --no-daemons --no-freshness --tls-cert "$T/soon.pem" --cert-warn 5
  run -2 "$SH" --no-daemons --no-freshness --tls-cert "$T/sooner.pem"
  run -3 "$SH" --no-daemons --no-freshness --tls-cert "$T/missing.pem"
}

@test "--tls-connect: the certificate a TLS listener presents" {
  cert "$T/server.pem" 10
  port=$(free_port)
  openssl s_server -quiet -accept "127.0.0.1:$port" -cert "$T/server.pem" -key "$T/server.pem.key" \
    </dev/null >/dev/null 2>&1 3>&- &
  SERVER_PID=$!
  wait_until 50 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
  run -1 "$SH" --no-daemons --no-freshness --tls-connect "127.0.0.1:$port"
  assert_line --regexp "^WARNING +tls +expiry +(9|10)\.[0-9]d +expires at .*127\.0\.0\.1:$port"
}

@test "real stack: OK with the canary; CRITICAL with a daemon killed; OK once it is back" {
  stack_start "$T/stack"
  read -r -a args <<<"$(stack_health_args)"
  run -0 "$SH" "${args[@]}" --canary --state-file "$T/state.json"
  for name in otlp-recv tel-batch tsdb-write log-ingest trace-store tel-query; do
    assert_line --regexp "^OK +$name +healthz "
    assert_line --regexp "^OK +$name +readyz "
  done
  assert_line --regexp '^OK +otlp-recv +queue +0\.0% '
  assert_line --regexp '^OK +tsdb-write +wal '
  assert_line --regexp '^OK +canary +metrics +[0-9.]+m?s +queryable after .* \(via api\)'
  assert_line --regexp '^OK +canary +logs +[0-9.]+m?s +queryable after .* \(via store\)'
  assert_line --regexp '^OK +canary +traces +[0-9.]+m?s +queryable after .* \(via store\)'

  stack_kill tsdb-write
  run -2 "$SH" "${args[@]}" --state-file "$T/state.json" --json
  jq -e '.status == "CRITICAL"' <<<"$output"
  jq -e '[.checks[] | select(.status == "CRITICAL") | .component + " " + .check] == ["tsdb-write healthz"]' <<<"$output"

  stack_run tsdb-write
  run -0 "$SH" "${args[@]}" --canary --state-file "$T/state.json"
  assert_line --regexp '^OK +tsdb-write +healthz '
  assert_line --regexp '^OK +canary +metrics '
  # Freshness: the canary's items are the newest.
  assert_line --regexp '^OK +freshness +metrics +[0-9.]+m?s +newest sample'
  assert_line --regexp '^OK +freshness +logs +[0-9.]+m?s +newest log line .*\(store\)'
  assert_line --regexp '^OK +freshness +traces +[0-9.]+m?s +newest span .*\(store\)'
  run -0 "$SH" "${args[@]}" --canary --stale-warn 60 --query-method store
  assert_line --regexp '^OK +canary +metrics .*\(via store\)'
}

@test "real stack: --query-method api without Loki and Tempo: the canary's logs and traces are CRITICAL" {
  stack_start "$T/stack"
  read -r -a args <<<"$(stack_health_args)"
  run -2 "$SH" "${args[@]}" --no-freshness --canary --canary-timeout 1 --query-method api --json
  jq -e '[.checks[] | select(.component == "canary") | {(.check): .status}] | add ==
    {"traces": "CRITICAL", "metrics": "OK", "logs": "CRITICAL"}' <<<"$output"
}

@test "the canary against no receiver: CRITICAL per signal, not a hang" {
  run -2 "$SH" --no-daemons --no-freshness --canary --otlp-url "http://127.0.0.1:$(free_port)" --timeout 0.5
  assert_line --regexp '^CRITICAL +canary +traces +- +POST /v1/traces .*cannot connect'
  assert_line --regexp '^CRITICAL +canary +metrics '
  assert_line --regexp '^CRITICAL +canary +logs '
}

@test "daemon figures against thresholds: --dropped-warn with --state-file, --memory-warn/-crit, --queue-warn" {
  admin=$(free_port) http=$(free_port)
  start_daemon otlp-recv --out "$T/out.tks" --http-listen "127.0.0.1:$http" --grpc-listen '' --admin-listen "127.0.0.1:$admin"
  STACK_PIDS[otlp-recv]=$DAEMON_PID STACK_ORDER=(otlp-recv)
  wait_until 100 curl -fsS -o /dev/null "http://127.0.0.1:$admin/readyz"
  target=(--target "otlp-recv=127.0.0.1:$admin" --no-freshness)
  run -0 "$SH" "${target[@]}" --state-file "$T/state.json"
  assert_line --regexp '^OK +otlp-recv +dropped +0 .*no earlier run'
  # A request refused as bad data: one more refused, WARNING since the last run.
  curl -sS -o /dev/null -X POST -H 'Content-Type: application/x-protobuf' --data-binary 'garbage' \
    "http://127.0.0.1:$http/v1/traces"
  run -1 "$SH" "${target[@]}" --state-file "$T/state.json"
  assert_line --regexp '^WARNING +otlp-recv +dropped +1 +1 items dropped, refused or rejected since the last run'
  run -0 "$SH" "${target[@]}" --state-file "$T/state.json"
  assert_line --regexp '^OK +otlp-recv +dropped +0 '
  run -1 "$SH" "${target[@]}" --memory-warn 1K
  assert_line --regexp '^WARNING +otlp-recv +memory +[0-9.]+ MiB +resident memory'
  run -2 "$SH" "${target[@]}" --memory-crit 1K
  run -0 "$SH" "${target[@]}" --memory-warn 1G
  # The queue is empty: 0% is never over a threshold; --queue-warn 0 is off.
  run -0 "$SH" "${target[@]}" --queue-warn 0 --queue-crit 0
  assert_line --regexp '^OK +otlp-recv +queue +0\.0% +0 B of 64\.0 MiB queued'
}
