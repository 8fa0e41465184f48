// Runs telkit's LogQL test scripts (tests/testdata/logql/*.test) against a
// real LogStore: reading the head, reading chunks after a flush, and through
// the cross-process LogReader. Every eval must pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/logql/logql_test_runner.h"
#include "common/test_support/temp_dir.h"

namespace telkit::logql {
namespace {

namespace fs = std::filesystem;

void RunAll(const LogqlRunnerOptions& opts) {
  std::vector<fs::path> scripts;
  for (const auto& e : fs::directory_iterator(fs::path(TELKIT_SOURCE_DIR) / "tests" / "testdata" / "logql")) {
    if (e.path().extension() == ".test") scripts.push_back(e.path());
  }
  std::sort(scripts.begin(), scripts.end());
  ASSERT_GE(scripts.size(), 1u);
  for (const fs::path& p : scripts) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    test_support::TempDir dir(/*in_memory=*/true);
    Result<LogqlScriptReport> r = RunLogqlScript(ss.str(), dir.path(), opts);
    ASSERT_TRUE(r.ok()) << p << ": " << r.status().ToString();
    for (const LogqlEvalReport& e : r->evals) {
      EXPECT_TRUE(e.passed) << p.filename().string() << ":" << e.line << ": " << e.query << "\n  " << e.message;
    }
    EXPECT_GT(r->passed, 0) << p;
  }
}

TEST(LogqlScripts, Head) { RunAll({}); }
TEST(LogqlScripts, Chunks) { RunAll({.flush_after_load = true}); }
TEST(LogqlScripts, CrossProcessReader) { RunAll({.flush_after_load = false, .use_reader = true}); }

}  // namespace
}  // namespace telkit::logql
