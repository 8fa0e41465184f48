// Runs PromQL test scripts — Prometheus' "promqltest" language (`load`,
// `clear`, `eval instant|range`, `expect ...` lines; described in
// ../shared/conformance/promql-testdata/README.md) — against a MemoryStore
// and the engine, and reports each eval's outcome.
//
// What is skipped rather than failed, each with its reason: evals that need
// native histograms (the data model has float samples only), and evals using
// syntax newer than what the parser implements (duration arithmetic, numbers
// as durations, `step()`/`range()`). Warning/info annotations are not produced by the engine; evals
// that require one have that requirement skipped (counted in
// annotation_checks_skipped) and their result still compared.
//
// Stateless functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/model/memory_store.h"
#include "common/promql/engine.h"

namespace telkit::promql {

enum class EvalOutcome { kPassed, kFailed, kSkippedHistogram, kSkippedUnsupported };

struct EvalReport {
  int line = 0;  // 1-based line of the eval command
  std::string expr;
  EvalOutcome outcome = EvalOutcome::kPassed;
  std::string message;  // why it failed or was skipped
};

struct ScriptReport {
  int passed = 0;
  int failed = 0;
  int skipped_histogram = 0;
  int skipped_unsupported = 0;
  int annotation_checks_skipped = 0;
  std::vector<EvalReport> evals;
  int total() const { return passed + failed + skipped_histogram + skipped_unsupported; }
};

struct TestRunnerOptions {
  EngineOptions engine;  // the script language assumes lookback 5m, subquery step 1m
  // Also run every instant eval (not `ordered`, not range-vector or string
  // results) as a range query from t-1m to t+1m step 1m and require the
  // middle step to equal the instant result, as Prometheus' runner does.
  bool check_range_mode = false;
  // Also pin every selector of an instant eval to its time with `@` and
  // require the same result at -10t, 0, t/5, t and 10t (skipped for
  // time-dependent functions), as Prometheus' runner does.
  bool check_step_invariance = false;
};

// Runs the script `text`. INVALID_ARGUMENT (with the line number) when the
// script itself is malformed; evaluation failures are reported per eval.
Result<ScriptReport> RunTestScript(std::string_view text, const TestRunnerOptions& options = {});

// Runs only the `load` and `clear` commands of a script into `store` (evals
// are ignored): test scripts as a data format for tools. INVALID_ARGUMENT for
// a malformed script. Native-histogram samples are left out.
Status LoadTestScriptData(std::string_view text, MemoryStore& store);

}  // namespace telkit::promql
