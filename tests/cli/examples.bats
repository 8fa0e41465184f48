#!/usr/bin/env bats
# examples/: the shell pipelines run as printed, the demo application sends
# traces, metrics and logs of its three services with the OpenTelemetry SDK,
# and the Grafana dashboards are valid and query metrics telkit makes.

load helpers

setup() {
  ROOT=$TELKIT_REPO_DIR
  T=$BATS_TEST_TMPDIR
}

teardown() {
  [[ -n ${RECV_PID:-} ]] && kill "$RECV_PID" 2>/dev/null
  true
}

@test "examples/pipelines.sh: receive | summary, capture with sampling, replay into the stores, read back" {
  base=$((20000 + RANDOM % 20000 * 2))
  run timeout 120 "$ROOT/examples/pipelines.sh" --bin "$TELKIT_BIN_DIR" --dir "$T/work" --port-base "$base"
  assert_success
  # 1: the sample (3 frames) over gRPC plus one OTLP/JSON traces request over HTTP.
  assert_line 'total: logs frames=1 bytes=200 items=2; metrics frames=1 bytes=289 items=3; traces frames=2 bytes=624 items=4;'
  # 2: the capture holds what tel-batch kept (its one trace is kept or dropped whole).
  assert_line --regexp '^total: logs frames=1 .*metrics frames=1 .*items=3;'
  # 3, 4: every signal read back from the stores.
  assert_line --regexp '^http_server_requests_total +1$'
  assert_line --partial 'service_name="checkout"} payment failed'
  assert_line --partial '"rootServiceName":"checkout","rootTraceName":"GET /cart"'
}

@test "examples/demo-app: frontend -> orders -> inventory send traces, metrics and logs through otlp-recv" {
  command -v node >/dev/null || skip "node is not installed"
  app=$ROOT/examples/demo-app
  if [[ ! -d $app/node_modules ]]; then
    (cd "$app" && timeout 120 npm ci --no-audit --no-fund --prefer-offline >/dev/null 2>&1) ||
      skip "npm ci failed in examples/demo-app (offline?)"
  fi
  start_otlp_recv --out "$T/demo.stream"
  RECV_PID=$DAEMON_PID
  run env OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$HTTP_PORT" timeout 60 node "$app/demo.mjs" --duration 3 --rate 20
  assert_success
  assert_line --regexp '^demo: [0-9]+ checkouts, status \{.*"200":[0-9]+'
  stop_daemon
  run "$(telkit_bin tel-cat)" --summary "$T/demo.stream"
  assert_success
  for service in frontend orders inventory; do
    for signal in traces metrics logs; do
      grep -qE " $signal .*services=([^ ]*,)?$service\(" <<<"$output" || fail "no $signal of $service: $output"
    done
  done
  # Errors and slow requests are part of the demo: inventory sleeps 0.3-0.9 s for 10%.
  "$(telkit_bin tel-cat)" "$T/demo.stream" >"$T/demo.jsonl"
  # (about 1 in 150 runs of 60 checkouts has none: reported, not failed)
  grep -q '"status":{[^}]*"code":2' "$T/demo.jsonl" || echo "# no error span in this short run (random)" >&3
  # The trace crosses the services: a span of orders has a parent (in frontend).
  grep -q '"parentSpanId":"[0-9a-f]\{16\}"' "$T/demo.jsonl" || fail "no child spans: the services did not propagate the trace"
}

@test "examples/grafana: the dashboards are valid, use the provisioned data source, and query metrics telkit makes" {
  command -v python3 >/dev/null || skip "python3 is not installed"
  run python3 - "$ROOT" <<'PY'
import glob, json, os, re, subprocess, sys
root = sys.argv[1]
ds = open(f"{root}/examples/grafana/provisioning/datasources/telkit.yaml").read()
uids = set(re.findall(r"uid: (\S+)", ds))
known = set()
# Metric names the code makes: admin metrics, span metrics, the demo's.
src = subprocess.run(["grep", "-rhoE", r"[a-z][a-z0-9_]*(_total|_bytes|_seconds|_series|_streams|_traces|_latency|_info)?",
                      f"{root}/common", f"{root}/tools", f"{root}/examples/demo-app/service.mjs"],
                     capture_output=True, text=True).stdout.split()
known.update(src)
known.update({"up", "process_resident_memory_bytes", "process_cpu_seconds_total"})
bad = []
seen = set()
for path in sorted(glob.glob(f"{root}/examples/grafana/dashboards/*.json")):
    d = json.load(open(path))
    name = os.path.basename(path)
    if d["uid"] in seen: bad.append(f"{name}: duplicate uid")
    seen.add(d["uid"])
    if not d.get("panels"): bad.append(f"{name}: no panels")
    for p in d["panels"]:
        if p["datasource"]["uid"] not in uids: bad.append(f"{name}: {p['title']}: unknown data source")
        for t in p["targets"]:
            expr = t["expr"]
            if expr.count("(") != expr.count(")"): bad.append(f"{name}: {p['title']}: unbalanced ( )")
            for m in re.findall(r"\b([a-z][a-z0-9_]*(?:_total|_bytes|_bucket|_series|_streams|_traces)|up)\b(?=[{\[ )]|$)", expr):
                base = re.sub(r"_bucket$", "", m)
                if m not in known and base not in known: bad.append(f"{name}: {p['title']}: {m} is made nowhere")
print("\n".join(bad) if bad else f"{len(seen)} dashboards ok")
sys.exit(1 if bad else 0)
PY
  assert_success
  assert_output '3 dashboards ok'
}

@test "examples/grafana: the service map's queries give Grafana's node graph fields (on tel-query)" {
  q=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("\n".join(t["expr"] for t in d["panels"][0]["targets"]))' \
    "$ROOT/examples/grafana/dashboards/telkit-service-map.json")
  cat >"$T/graph.test" <<'EOF2'
load 1m
  traces_service_graph_request_total{client="frontend", server="orders"} 0+60x10
  traces_service_graph_request_total{client="orders", server="inventory"} 0+60x10
EOF2
  nodes=$(sed -n 1p <<<"$q") edges=$(sed -n 2p <<<"$q")
  run "$(telkit_bin tel-query)" promql "$nodes" --load "$T/graph.test" --time 600
  assert_success
  # every service is a node: orders and inventory serve 1/s, frontend only calls
  assert_line --regexp '^\{id="orders"\} +1$'
  assert_line --regexp '^\{id="inventory"\} +1$'
  assert_line --regexp '^\{id="frontend"\} +0$'
  run "$(telkit_bin tel-query)" promql "$edges" --load "$T/graph.test" --time 600
  assert_success
  assert_output --partial 'id="frontend->orders"'
  assert_output --partial 'source="orders"'
  assert_output --partial 'target="inventory"'
}
