#!/usr/bin/env bash
# Sets everything up and runs every test suite: unit tests (CTest/GoogleTest),
# command-line tests (Bats) and end-to-end tests (real OpenTelemetry SDK).
# Ends with one line "N passed, N failed, N skipped" over all suites; exits
# non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${TEST_OUT:-$root/build/test-out}

scripts/setup.sh --test || exit 1
scripts/build.sh || exit 1
mkdir -p "$out"

passed=0 failed=0 skipped=0

echo "== unit tests (ctest)"
ctest --test-dir build -j2 --output-on-failure --timeout 300 2>&1 | tee "$out/ctest.log" | grep -vE '^\s+(Start|[0-9]+/[0-9]+ Test)' 
summary=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$out/ctest.log" | tail -n 1)
if [[ $summary =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
  passed=$((passed + BASH_REMATCH[2] - BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[1]))
else
  echo "ctest printed no summary"; failed=$((failed + 1))
fi

echo "== command-line tests (bats)"
export TELKIT_BIN_DIR=$root/build/tools
bats --tap tests/cli 2>&1 | tee "$out/bats.log"
b_ok=$(grep -cE '^ok ' "$out/bats.log")
b_skip=$(grep -cE '^ok .* # skip' "$out/bats.log")
b_fail=$(grep -cE '^not ok ' "$out/bats.log")
grep -qE '^1\.\.[0-9]+' "$out/bats.log" || b_fail=$((b_fail + 1))
passed=$((passed + b_ok - b_skip)); skipped=$((skipped + b_skip)); failed=$((failed + b_fail))
echo "bats: $((b_ok - b_skip)) passed, $b_fail failed, $b_skip skipped"

# tests/compare: tel-query against the real Prometheus 2.42 (~30 s).
for e2e in tests/e2e/run.sh tests/e2e/pipeline.sh tests/e2e/metrics.sh tests/e2e/logs.sh tests/e2e/loki-push.sh \
    tests/e2e/traces.sh \
    tests/e2e/query.sh tests/e2e/stack.sh tests/compare/promql-vs-prometheus.sh; do
  echo "== end-to-end tests: $e2e"
  log="$out/$(basename "$e2e" .sh).log"
  "$e2e" 2>&1 | tee "$log"
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
    passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2])); skipped=$((skipped + ${BASH_REMATCH[4]:-0}))
  else
    echo "$e2e printed no summary"; failed=$((failed + 1))
  fi
done

echo
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
