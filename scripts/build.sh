#!/usr/bin/env bash
# Configures (once) and builds telkit with Ninja and ccache into build/.
#   scripts/build.sh [ninja targets...]
# BUILD_DIR overrides the build directory; CMAKE_ARGS adds configure options.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
export CCACHE_BASEDIR="$PWD"
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
# Build trees in other directories (a CI clone, build-*) share cache hits.
export CCACHE_NOHASHDIR=1
if [[ ! -f "$build_dir/build.ninja" ]]; then
  # shellcheck disable=SC2086
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-} >/dev/null
fi
ninja -C "$build_dir" "$@"
