#!/usr/bin/env bash
# The telkit commands one by one, as shell pipelines: each step prints its
# command line ($ ...) and runs it. Everything stays under one directory and
# on loopback ports of its own (14317/14318 by default), so it runs beside a
# running stack. Bounded: every step ends by itself.
#   examples/pipelines.sh [--bin DIR] [--dir DIR] [--port-base N]
# --bin DIR       where the commands are: DIR/NAME or DIR/NAME/NAME (default:
#                 the build tree, else $PATH)
# --dir DIR       working directory (default: a new temporary one)
# --port-base N   OTLP ports N (gRPC) and N+1 (HTTP) (default 14317)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=$root/build/tools work='' base=14317
while (($#)); do
  case $1 in
    --bin) bin=$2; shift ;;
    --dir) work=$2; shift ;;
    --port-base) base=$2; shift ;;
    *) echo "usage: examples/pipelines.sh [--bin DIR] [--dir DIR] [--port-base N]" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $work ]] || work=$(mktemp -d /tmp/telkit-pipelines.XXXXXX)
mkdir -p "$work"
cd "$work"
grpc=$base http=$((base + 1))

# The commands by name, wherever they are: links in DIR/bin, first in $PATH.
mkdir -p bin
for name in otlp-recv tel-cat tel-batch tsdb-write log-ingest trace-store tel-query; do
  if [[ -x $bin/$name/$name ]]; then ln -sf "$(realpath "$bin/$name/$name")" "bin/$name"
  elif [[ -x $bin/$name ]]; then ln -sf "$(realpath "$bin/$name")" "bin/$name"
  fi
done
PATH=$work/bin:$PATH
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; }
# wait_log FILE TEXT: until the daemon logged TEXT (at most 10 s).
wait_log() { for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; cat "$1" >&2; return 1; }
listen=(--grpc-listen "127.0.0.1:$grpc" --http-listen "127.0.0.1:$http" --admin-listen 127.0.0.1:0)

step "0. some telemetry: OTLP/JSON requests (the tests' samples) into a stream file"
show "tel-cat --from-json -o sample.stream requests.jsonl"
for f in traces metrics logs; do tr -d '\n' <"$root/tests/testdata/otlp/$f.json"; echo; done >requests.jsonl
tel-cat --from-json -o sample.stream requests.jsonl
show "tel-cat --summary sample.stream"
tel-cat --summary sample.stream

step "1. a receiver and a summary of what arrives: otlp-recv | tel-cat --summary"
show "otlp-recv --out - ${listen[*]} | tel-cat --summary &"
# (the braces only note otlp-recv's pid, to stop it below)
{ otlp-recv --out - "${listen[@]}" 2>recv1.log & echo $! >recv.pid; wait; } | tel-cat --summary >summary1.txt &
pipeline=$!
wait_log recv1.log 'writing the telemetry stream'
show "tel-cat --send 127.0.0.1:$grpc --protocol grpc sample.stream    # any OTLP client does"
tel-cat --send "127.0.0.1:$grpc" --protocol grpc sample.stream
show "curl -s -H 'Content-Type: application/json' --data-binary @traces.json http://127.0.0.1:$http/v1/traces"
curl -s -H 'Content-Type: application/json' --data-binary "@$root/tests/testdata/otlp/traces.json" \
  "http://127.0.0.1:$http/v1/traces"; echo
kill -TERM "$(cat recv.pid)"
# (SIGTERM drains otlp-recv; tel-cat then sees the end of the stream and prints the total)
wait "$pipeline" || true
cat summary1.txt

step "2. capture while sampling: otlp-recv | tel-batch --sample-percent 50 --out capture.stream"
show "otlp-recv --out - ${listen[*]} | tel-batch --in - --sample-percent 50 --admin-listen '' --out capture.stream &"
{ otlp-recv --out - "${listen[@]}" 2>recv2.log & echo $! >recv.pid; wait; } |
  tel-batch --in - --sample-percent 50 --admin-listen '' --out capture.stream 2>batch2.log &
pipeline=$!
wait_log recv2.log 'writing the telemetry stream'
show "tel-cat --send 127.0.0.1:$grpc --protocol grpc sample.stream"
tel-cat --send "127.0.0.1:$grpc" --protocol grpc sample.stream
kill -TERM "$(cat recv.pid)"
wait "$pipeline" || true
show "tel-cat --summary capture.stream    # traces kept or dropped whole, by trace id"
tel-cat --summary capture.stream

step "3. replay a file into the stores (each daemon stops at the end of a file input)"
show "mkdir -p store"
mkdir -p store
show "tsdb-write serve --data store/metrics --in capture.stream --admin-listen ''"
tsdb-write serve --data store/metrics --in capture.stream --admin-listen '' 2>/dev/null
show "log-ingest --data store/logs --in capture.stream --admin none"
log-ingest --data store/logs --in capture.stream --admin none 2>/dev/null
show "trace-store --data store/traces --in capture.stream --admin-listen ''"
trace-store --data store/traces --in capture.stream --admin-listen '' 2>/dev/null

step "4. read them back"
# (the samples are from 2023-11-14: query at their time)
show "tel-query promql 'count by (__name__) ({job=\"checkout\"})' --time 2023-11-14T22:14:30Z --data store/metrics"
tel-query promql 'count by (__name__) ({job="checkout"})' --time 2023-11-14T22:14:30Z --data store/metrics
show "log-ingest query --data store/logs '{service_name=\"checkout\"}'"
log-ingest query --data store/logs '{service_name="checkout"}' | cut -c 1-160
show "trace-store search --data store/traces --service checkout"
trace-store search --data store/traces --service checkout | cut -c 1-160

step "5. into a running stack instead (scripts/stack.sh or telkit.target)"
show "tel-cat --send 127.0.0.1:4317 --protocol grpc capture.stream"
echo "(not run here; replays the capture through otlp-recv, tel-batch and the stores)"
echo
echo "files in $work"
