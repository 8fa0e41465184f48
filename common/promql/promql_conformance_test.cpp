// Runs Prometheus' own PromQL test scripts (../shared/conformance/promql-testdata)
// through the test-script runner and prints a pass table per file. The
// v2.42.0/ files run with Prometheus 2.42 semantics, the top-level (3.x) files
// with 3.x semantics. Pass counts must not fall below the floors below, so a
// regression fails. Skips (with a message) when ../shared is absent.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/promql/promql_test_runner.h"

namespace telkit::promql {
namespace {

namespace fs = std::filesystem;

fs::path DataDir() {
  if (const char* d = std::getenv("TELKIT_PROMQL_TESTDATA")) return d;
  return fs::path(TELKIT_SOURCE_DIR) / ".." / "shared" / "conformance" / "promql-testdata";
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Top-level files that need features this engine leaves out entirely
// (PROMQL_ALL_FILES=1 runs them anyway). In the other files the evals that
// need native histograms are skipped one by one.
const std::map<std::string, std::string>& SkippedFiles() {
  static const std::map<std::string, std::string> m = {
      {"native_histograms.test", "native histograms"},
      {"start_timestamps.test", "start timestamps"},
  };
  return m;
}

struct Totals {
  int passed = 0, failed = 0, hist = 0, unsupported = 0, annotations = 0;
};

Totals RunDir(const fs::path& dir, Compat compat, bool verbose) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".test") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  TestRunnerOptions opts;
  opts.engine.compat = compat;
  opts.engine.parse.durations_as_numbers = compat == Compat::kPrometheus3;
  opts.engine.delayed_name_removal = compat == Compat::kPrometheus3;  // as the Go runner
  opts.engine.type_and_unit_labels = compat == Compat::kPrometheus3;
  opts.engine.max_samples = 10000;  // as Prometheus' runner
  // The Go runner's extra checks, on unless PROMQL_FAST is set.
  opts.check_range_mode = std::getenv("PROMQL_FAST") == nullptr;
  opts.check_step_invariance = std::getenv("PROMQL_FAST") == nullptr;
  Totals t;
  std::printf("%-28s %7s %7s %7s %7s\n", "file", "passed", "failed", "skipNH", "skipNew");
  for (const fs::path& f : files) {
    std::string name = f.filename().string();
    if (compat == Compat::kPrometheus3 && SkippedFiles().count(name) && !std::getenv("PROMQL_ALL_FILES")) {
      std::printf("%-28s skipped: %s\n", name.c_str(), SkippedFiles().at(name).c_str());
      continue;
    }
    Result<ScriptReport> r = RunTestScript(ReadFile(f), opts);
    EXPECT_TRUE(r.ok()) << name << ": " << r.status().ToString();
    if (!r.ok()) continue;
    std::printf("%-28s %7d %7d %7d %7d\n", name.c_str(), r->passed, r->failed, r->skipped_histogram,
                r->skipped_unsupported);
    if (verbose) {
      for (const EvalReport& e : r->evals) {
        if (e.outcome == EvalOutcome::kFailed) std::printf("  FAIL %s:%d %s\n    %s\n", name.c_str(), e.line, e.expr.c_str(), e.message.c_str());
      }
    }
    t.passed += r->passed;
    t.failed += r->failed;
    t.hist += r->skipped_histogram;
    t.unsupported += r->skipped_unsupported;
    t.annotations += r->annotation_checks_skipped;
  }
  std::printf("%-28s %7d %7d %7d %7d  (annotation checks skipped: %d)\n", "TOTAL", t.passed, t.failed, t.hist,
              t.unsupported, t.annotations);
  return t;
}

bool Verbose() { return std::getenv("PROMQL_CONFORMANCE_VERBOSE") != nullptr; }

constexpr int kFloor242 = 566;  // all of v2.42.0/
constexpr int kFloor3 = 1277;

TEST(PromqlConformance, Prometheus242Files) {
  fs::path dir = DataDir() / "v2.42.0";
  if (!fs::is_directory(dir)) GTEST_SKIP() << "no PromQL test data at " << dir << " (../shared absent)";
  Totals t = RunDir(dir, Compat::kPrometheus2, Verbose());
  EXPECT_GE(t.passed, kFloor242);
}

TEST(PromqlConformance, Prometheus3Files) {
  fs::path dir = DataDir();
  if (!fs::is_directory(dir)) GTEST_SKIP() << "no PromQL test data at " << dir << " (../shared absent)";
  Totals t = RunDir(dir, Compat::kPrometheus3, Verbose());
  EXPECT_GE(t.passed, kFloor3);
}

}  // namespace
}  // namespace telkit::promql
