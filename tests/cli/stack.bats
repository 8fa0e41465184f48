#!/usr/bin/env bats
# One source of truth for the stack's command lines: systemd/stack.commands.
# The units' ExecStart= and `scripts/stack.sh` (the README's run command)
# start the same command lines, and the units' lines run as systemd runs them
# (socket activation, sd_notify READY/WATCHDOG/STOPPING) as real processes.

load helpers

setup() {
  ROOT=$TELKIT_REPO_DIR
  T=$BATS_TEST_TMPDIR
  PIDS=()
}

teardown() {
  local pid
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  [[ -n ${NL_PID:-} ]] && kill "$NL_PID" 2>/dev/null
  true
}

# commands_for_units: "NAME ARGS..." per line of systemd/stack.commands, its
# placeholders replaced as for the units.
commands_for_units() {
  sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' \
    -e 's|@LISTEN:\([-[:alnum:]]*\)@|systemd:\1-in|g' \
    -e 's|@SCRAPE-CONFIG@|/etc/telkit/scrape.yml|g' -e 's|@RULES@|/etc/telkit/rules|g' \
    -e 's|@RUN@|/run/telkit|g' -e 's|@DATA@|/var/lib/telkit|g' "$ROOT/systemd/stack.commands" |
    while read -r name _ args; do echo "$name $args"; done
}

# unit_commands: "NAME ARGS..." from the ExecStart= of every daemon unit.
unit_commands() {
  local unit
  for unit in "$ROOT"/systemd/*.service; do
    grep -qx 'Type=oneshot' "$unit" && continue
    sed -n 's|^ExecStart=/usr/bin/||p' "$unit"
  done
}

@test "the units' ExecStart= are the lines of systemd/stack.commands" {
  diff -u <(commands_for_units | sort) <(unit_commands | sort)
}

@test "scripts/stack.sh --print starts the units' command lines, with its directory for /var/lib/telkit and /run/telkit" {
  data=$T/some/data
  run --separate-stderr "$ROOT/scripts/stack.sh" --print --data "$data"
  assert_success
  # Back to the units' paths: a listening socket becomes the socket unit's descriptor.
  sed -e "s|listen:unix:$data/run/\\([-[:alnum:]]*\\)\\.sock|systemd:\\1-in|g" \
    -e "s|$ROOT/config/scrape-self.yml|/etc/telkit/scrape.yml|g" -e "s|$ROOT/rules/|/etc/telkit/rules/|g" \
    -e "s|$data/run|/run/telkit|g" -e "s|$data|/var/lib/telkit|g" <<<"$output" >"$T/stack.txt"
  diff -u <(unit_commands | sort) <(sort "$T/stack.txt")
  # ... in the order of stack.commands (each stage after those it writes to).
  diff -u <(commands_for_units | cut -d' ' -f1) <(cut -d' ' -f1 "$T/stack.txt")
}

@test "the README's run command is scripts/stack.sh" {
  grep -qE '^ *scripts/stack\.sh' "$ROOT/README.md"
}

# overrides NAME: flags that put the daemon's listeners on ephemeral loopback
# ports, so the test never collides with a running stack.
overrides() {
  case $1 in
    otlp-recv) echo --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 ;;
    log-ingest) echo --admin 127.0.0.1:0 ;;
    trace-store) echo --admin-listen 127.0.0.1:0 --metrics-interval 1s ;;  # span metrics without the 15 s wait
    tel-query) echo --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 ;;
    *) echo --admin-listen 127.0.0.1:0 ;;
  esac
}

@test "the units' command lines run: socket activation, READY=1, WATCHDOG=1 pings, every signal stored, STOPPING=1 and exit 0" {
  command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate is not installed"
  command -v python3 >/dev/null || skip "python3 is not installed"
  V=$T/var R=$T/run
  mkdir -p "$V" "$R"
  mapfile -t names < <(commands_for_units | cut -d' ' -f1)
  python3 "$ROOT/tests/cli/notify_listen.py" "$T" "${names[@]}" 3>&- &
  NL_PID=$!
  for name in "${names[@]}"; do wait_until 50 test -S "$T/$name.notify"; done
  declare -A pid
  # start NAME: the unit's ExecStart as systemd runs it. A daemon with a
  # .socket unit runs behind systemd-socket-activate, which starts it when
  # its upstream first connects.
  start() {
    local name=$1 line args env fdname sock
    line=$(sed -n "s|^ExecStart=/usr/bin/$name ||p" "$ROOT/systemd/$name.service" |
      sed -e "s|/var/lib/telkit|$V|g" -e "s|/run/telkit|$R|g" -e "s|/etc/telkit/scrape.yml|$ROOT/config/scrape-self.yml|g")
    read -r -a args <<<"$line $(overrides "$name")"
    env=(NOTIFY_SOCKET="$T/$name.notify" WATCHDOG_USEC=400000)
    fdname=$(grep -oE 'systemd:[-[:alnum:]]+' <<<"$line" | sed 's/^systemd://' || true)
    if [[ -n $fdname ]]; then
      sock=$(sed -n 's|^ListenStream=/run/telkit/||p' "$ROOT/systemd/$name.socket")
      systemd-socket-activate -l "$R/$sock" --fdname="$fdname" -E "${env[0]}" -E "${env[1]}" \
        "$(telkit_bin "$name")" "${args[@]}" >"$T/$name.out" 2>"$T/$name.log" 3>&- &
    else
      env "${env[@]}" "$(telkit_bin "$name")" "${args[@]}" >"$T/$name.out" 2>"$T/$name.log" 3>&- &
    fi
    pid[$name]=$!
    PIDS+=($!)
  }
  ready() {
    wait_until 150 grep -q '^READY=1' "$T/$1.notify.log" || fail "$1 sent no READY=1: $(cat "$T/$1.log")"
  }
  # In stack order, tel-query (After=tsdb-write.service: it needs the store
  # to exist) once the rest is up. otlp-recv connects to tel-batch's socket,
  # which starts tel-batch, which connects to the stores' sockets, which
  # starts them.
  for name in "${names[@]}"; do
    [[ $name == tel-query ]] || start "$name"
  done
  for name in "${names[@]}"; do
    [[ $name == tel-query ]] || ready "$name"
  done
  start tel-query
  ready tel-query
  port=$(grep -o -m1 -E 'OTLP/gRPC on [^ ]+:[0-9]+' "$T/otlp-recv.log" | grep -oE '[0-9]+$')
  DATA="$ROOT/tests/testdata/otlp"
  for f in traces metrics logs; do tr -d '\n' <"$DATA/$f.json"; echo; done >"$T/requests.jsonl"
  run "$(telkit_bin tel-cat)" --from-json -o "$T/sample.stream" "$T/requests.jsonl"
  assert_success
  run "$(telkit_bin tel-cat)" --send "127.0.0.1:$port" --protocol grpc "$T/sample.stream"
  assert_success
  # Every signal reaches its store through the activated sockets.
  wait_until 100 bash -c "'$(telkit_bin trace-store)' search --data '$V/traces' --service checkout | grep -q 5b8efff798038103d269b633813fc60c" ||
    fail "the trace did not reach trace-store"
  wait_until 100 bash -c "'$(telkit_bin log-ingest)' query --data '$V/logs' '{service_name=\"checkout\"}' | grep -q ." ||
    fail "the log records did not reach log-ingest"
  wait_until 100 bash -c "'$(telkit_bin tsdb-write)' query --data '$V/metrics' '{job=\"checkout\"}' | grep -q ." ||
    fail "the metrics did not reach tsdb-write"
  # trace-store's span metrics reach tsdb-write through its socket too.
  wait_until 100 bash -c "'$(telkit_bin tsdb-write)' query --data '$V/metrics' 'traces_spanmetrics_calls_total{service=\"checkout\"}' | grep -q ." ||
    fail "trace-store's span metrics did not reach tsdb-write: $(cat "$T/trace-store.log")"
  # WATCHDOG_USEC=400000: a ping at least every 200 ms.
  sleep 0.5
  for name in "${names[@]}"; do
    n=$(grep -c '^WATCHDOG=1$' "$T/$name.notify.log" || true)
    ((n >= 2)) || fail "$name sent $n WATCHDOG=1 pings: $(cat "$T/$name.notify.log")"
  done
  # Stop upstream first, as systemd does for the reverse of the start order.
  for ((i = ${#names[@]} - 1; i >= 0; i--)); do
    name=${names[i]}
    kill -TERM "${pid[$name]}"
    status=0
    wait "${pid[$name]}" || status=$?
    ((status == 0)) || fail "$name exited $status: $(cat "$T/$name.log")"
    grep -q '^STOPPING=1' "$T/$name.notify.log" || fail "$name sent no STOPPING=1"
  done
  for name in "${names[@]}"; do
    echo "# $name: $(grep -c '^WATCHDOG=1$' "$T/$name.notify.log") watchdog pings" >&3
  done
}

@test "scripts/stack.sh and examples/pipelines.sh refuse unknown flags with their usage and exit 2" {
  run --separate-stderr "$ROOT/scripts/stack.sh" --bogus
  assert_failure 2
  [[ $stderr == *"usage: scripts/stack.sh [--demo] [--exit] [--data DIR] [--print] [--no-build]"* ]]
  run --separate-stderr "$ROOT/examples/pipelines.sh" --bogus
  assert_failure 2
  [[ $stderr == *"usage: examples/pipelines.sh"* ]]
  run --separate-stderr node "$ROOT/examples/demo-app/demo.mjs" --duration 0
  if command -v node >/dev/null; then
    assert_failure 2
    [[ $stderr == *"usage: node demo.mjs"* ]]
  fi
}

@test "scripts/stack.sh --print: --data is made absolute, and every daemon of the units is there once" {
  cd "$T"
  run --separate-stderr "$ROOT/scripts/stack.sh" --print --data rel/dir
  assert_success
  assert_line --index 0 "tsdb-write serve --data $T/rel/dir/metrics --in listen:unix:$T/rel/dir/run/tsdb.sock"
  [[ $(cut -d' ' -f1 <<<"$output" | sort | uniq -d) == "" ]]
  [[ ! -e $T/rel ]]  # --print creates nothing
}
