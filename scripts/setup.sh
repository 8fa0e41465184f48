#!/usr/bin/env bash
# Installs everything telkit needs to build, run and test on Debian 12, and
# nothing else. Idempotent: packages already present are not fetched again.
#   scripts/setup.sh            build and runtime dependencies
#   scripts/setup.sh --test     also the test tools (Bats helpers, Node.js)
set -euo pipefail

want_tests=0
[[ "${1:-}" == "--test" ]] && want_tests=1

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libcli11-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libsqlite3-dev nlohmann-json3-dev zlib1g-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libsnappy-dev libre2-dev libsystemd-dev
  libcpp-httplib-dev libssl-dev libbrotli-dev libyaml-cpp-dev libzstd-dev
  curl python3 systemd
)
if (( want_tests )); then
  packages+=(bats bats-assert bats-support openssl procps psmisc jq)
  # Node.js runs the OpenTelemetry SDK test client; Debian's is new enough.
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
fi
