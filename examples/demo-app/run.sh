#!/usr/bin/env bash
# Runs the demo application against a running telkit stack (scripts/stack.sh,
# or the systemd units): installs its npm packages once, then drives
# frontend -> orders -> inventory for a bounded time.
#   examples/demo-app/run.sh [--duration SECONDS] [--rate PER_SECOND]
# OTEL_EXPORTER_OTLP_ENDPOINT (default http://127.0.0.1:4318) picks the stack.
set -euo pipefail
cd "$(dirname "$0")"
[[ -d node_modules ]] || npm ci --no-audit --no-fund --prefer-offline >/dev/null
exec node demo.mjs "$@"
