# A small real telkit stack for the stack-health tests: tsdb-write,
# log-ingest, trace-store, tel-query serve, tel-batch and otlp-recv, on free
# loopback ports, data under $STACK_DIR. Sourced by stack-health.bats.
#   stack_start DIR      starts all (sets STACK_PORTS[...] and STACK_PIDS[...])
#   stack_kill NAME      SIGKILLs one daemon
#   stack_run NAME       (re)starts one daemon and waits until it is ready
#   stack_stop           stops all (teardown)
#   stack_targets        --target flags for every daemon

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

declare -gA STACK_PORTS STACK_PIDS

stack_run() {
  local name=$1 d=$STACK_DIR bin
  bin=$(telkit_bin "$name")
  local admin=127.0.0.1:${STACK_PORTS[$name]}
  local args=()
  case $name in
    tsdb-write) args=(serve --data "$d/metrics" --in "listen:unix:$d/run/tsdb.sock" --admin-listen "$admin") ;;
    log-ingest) args=(--data "$d/logs" --in "listen:unix:$d/run/logs.sock" --admin "$admin") ;;
    trace-store) args=(--data "$d/traces" --in "listen:unix:$d/run/traces.sock" --admin-listen "$admin") ;;
    tel-query) args=(serve --data "$d/metrics" --listen "127.0.0.1:${STACK_PORTS[prometheus]}" --admin-listen "$admin") ;;
    tel-batch) args=(--in "listen:unix:$d/run/batch.sock" --traces-out "unix:$d/run/traces.sock"
      --metrics-out "unix:$d/run/tsdb.sock" --logs-out "unix:$d/run/logs.sock" --admin-listen "$admin") ;;
    otlp-recv) args=(--out "unix:$d/run/batch.sock" --http-listen "127.0.0.1:${STACK_PORTS[otlp]}"
      --grpc-listen '' --admin-listen "$admin") ;;
  esac
  "$bin" "${args[@]}" >>"$d/$name.out" 2>>"$d/$name.log" 3>&- &
  STACK_PIDS[$name]=$!
  local i
  for ((i = 0; i < 150; i++)); do
    curl -fsS -o /dev/null "http://$admin/readyz" 2>/dev/null && return 0
    kill -0 "${STACK_PIDS[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not become ready:" >&2
  cat "$d/$name.log" >&2
  return 1
}

STACK_ORDER=(tsdb-write log-ingest trace-store tel-query tel-batch otlp-recv)

stack_start() {
  STACK_DIR=$1
  mkdir -p "$STACK_DIR/run"
  local name
  for name in "${STACK_ORDER[@]}" prometheus otlp; do STACK_PORTS[$name]=$(free_port); done
  for name in "${STACK_ORDER[@]}"; do stack_run "$name" || return 1; done
}

stack_kill() {
  kill -KILL "${STACK_PIDS[$1]}" 2>/dev/null || true
  wait "${STACK_PIDS[$1]}" 2>/dev/null || true
}

stack_stop() {
  local i pid
  for ((i = ${#STACK_ORDER[@]} - 1; i >= 0; i--)); do
    pid=${STACK_PIDS[${STACK_ORDER[i]}]:-}
    [[ -n $pid ]] || continue
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

stack_targets() {
  local name
  for name in "${STACK_ORDER[@]}"; do printf -- '--target %s=127.0.0.1:%s ' "$name" "${STACK_PORTS[$name]}"; done
}

# stack_health ARGS...: stack-health against this stack.
stack_health_args() {
  # shellcheck disable=SC2046
  echo $(stack_targets) --data "$STACK_DIR" --prometheus-url "http://127.0.0.1:${STACK_PORTS[prometheus]}" \
    --otlp-url "http://127.0.0.1:${STACK_PORTS[otlp]}" --loki-url http://127.0.0.1:1 --tempo-url http://127.0.0.1:1
}
