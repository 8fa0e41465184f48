#include "common/rules/logql_evaluator.h"

#include <gtest/gtest.h>

#include <map>

#include "common/fs/file_system.h"
#include "common/test_support/temp_dir.h"

namespace telkit::rules {
namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kNowMs = 1'800'000'000'000;

// A Loki-ruler expression over a real log store, read through LogReader as
// tel-rules reads while log-ingest writes.
TEST(LogQLEvaluator, CountsLinesOfAStoreAtAnInstant) {
  test_support::TempDir dir(true);
  const std::string path = dir.path() + "/logs";
  LogQLEvaluator eval(path);
  // No store yet: an error for this round, not a crash; later rounds retry.
  EXPECT_FALSE(eval.Eval("sum(count_over_time({job=\"api\"}[5m]))", kNowMs).ok());

  LogStoreOptions o;
  o.background = false;
  auto store = LogStore::Open(DefaultFileSystem(), path, o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const int64_t now_ns = kNowMs * 1'000'000;
  std::vector<LogPush> pushes = {
      {{{"job", "api"}, {"level", "error"}}, {{now_ns - 60 * kSec, "timeout", {}}, {now_ns - 30 * kSec, "refused", {}}}},
      {{{"job", "api"}, {"level", "info"}}, {{now_ns - 20 * kSec, "ok", {}}, {now_ns - 600 * kSec, "old", {}}}},
  };
  auto r = (*store)->Push(pushes);
  ASSERT_TRUE(r.ok());

  auto got = eval.Eval("sum by (level) (count_over_time({job=\"api\"}[5m]))", kNowMs);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 2u);
  std::map<std::string, double> by_level;
  for (const EvalSample& s : *got) by_level[std::string(s.labels.Get("level"))] = s.value;
  EXPECT_EQ(by_level["error"], 2);
  EXPECT_EQ(by_level["info"], 1);  // the line 10 minutes old is outside [5m]

  EXPECT_EQ(eval.Eval("{job=\"api\"}", kNowMs).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckLogQLRuleExpr("{job=\"api\"} |= \"x\"").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckLogQLRuleExpr("rate({job=\"api\"}[1m]").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckLogQLRuleExpr("rate({job=\"api\"}[1m])").ok());
}

}  // namespace
}  // namespace telkit::rules
