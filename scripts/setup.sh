#!/usr/bin/env bash
# Installs everything telkit needs to build, run and test on Debian 12, and
# nothing else. Idempotent: packages already present are not fetched again.
#   scripts/setup.sh            build and runtime dependencies
#   scripts/setup.sh --demo     also Node.js, for the demo's OpenTelemetry SDK client
#   scripts/setup.sh --test     also the test tools (Bats, Node.js, groff, ...)
set -euo pipefail

want_tests=0 want_node=0
case "${1:-}" in
  --test) want_tests=1 want_node=1 ;;
  --demo) want_node=1 ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--demo|--test]" >&2; exit 2 ;;
esac

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libcli11-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libsqlite3-dev nlohmann-json3-dev zlib1g-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libsnappy-dev libre2-dev libsystemd-dev
  libcpp-httplib-dev libssl-dev libbrotli-dev libyaml-cpp-dev libzstd-dev
  curl python3 systemd
)
if (( want_tests )); then
  packages+=(bats bats-assert bats-support openssl procps psmisc groff-base man-db zsh)
  # tests/cli/package.bats: cpack's .deb needs dpkg-shlibdeps for its Depends
  packages+=(dpkg-dev)
  # ../shared/bench/metrics-ingest/gen.py and send.py, and the remote-write tests
  packages+=(python3-snappy python3-protobuf)
  # the real Prometheus and VictoriaMetrics: tel-batch's prom-rw output is proven
  # against them, and they are the reference servers of ../shared/bench/metrics-ingest
  packages+=(prometheus victoria-metrics jq)
  # otlp-recv's scraping is proven against the real node exporter (started by
  # tests/cli/otlp-recv-scrape.bats on a free loopback port)
  packages+=(prometheus-node-exporter)
  # tel-rules' notifications are proven against the real Alertmanager (tests/cli/tel-rules.bats)
  packages+=(prometheus-alertmanager)
fi
if (( want_node )); then
  # Node.js runs the OpenTelemetry SDK client; Debian 12's (18.19) is new enough.
  command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  sudo_cmd=()
  (( EUID == 0 )) || sudo_cmd=(sudo)
  echo "setup: installing ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # prometheus and victoria-metrics are test peers only (the Bats tests start
  # their own instances on free ports): the services their packages just
  # enabled would hold :9090, :8428, :9100 and :9093.
  if [[ -d /run/systemd/system ]]; then
    for unit in prometheus victoria-metrics prometheus-node-exporter prometheus-alertmanager; do
      if [[ " ${missing[*]} " == *" $unit "* ]]; then
        "${sudo_cmd[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 || true
      fi
    done
  fi
fi
