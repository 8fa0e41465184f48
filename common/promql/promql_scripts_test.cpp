// Runs telkit's own PromQL test scripts (tests/testdata/promql/*.test) in
// both compatibility modes; every eval must pass.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/promql/promql_test_runner.h"

namespace telkit::promql {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> Scripts() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(fs::path(TELKIT_SOURCE_DIR) / "tests" / "testdata" / "promql")) {
    if (e.path().extension() == ".test") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void RunAll(Compat compat) {
  std::vector<fs::path> scripts = Scripts();
  ASSERT_GE(scripts.size(), 5u);
  for (const fs::path& p : scripts) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    TestRunnerOptions opts;
    opts.engine.compat = compat;
    opts.engine.parse.durations_as_numbers = true;
    opts.check_range_mode = true;
    opts.check_step_invariance = true;
    Result<ScriptReport> r = RunTestScript(ss.str(), opts);
    ASSERT_TRUE(r.ok()) << p << ": " << r.status().ToString();
    for (const EvalReport& e : r->evals) {
      EXPECT_EQ(e.outcome, EvalOutcome::kPassed)
          << p.filename().string() << ":" << e.line << ": " << e.expr << "\n  " << e.message;
    }
    EXPECT_GT(r->passed, 0) << p;
    std::printf("%-20s %d/%d passed\n", p.filename().string().c_str(), r->passed, r->total());
  }
}

TEST(PromqlScripts, Prometheus2Semantics) { RunAll(Compat::kPrometheus2); }
TEST(PromqlScripts, Prometheus3Semantics) { RunAll(Compat::kPrometheus3); }

}  // namespace
}  // namespace telkit::promql
