#include <gtest/gtest.h>

#include <cmath>

#include "common/model/labels.h"
#include "common/model/matcher.h"
#include "common/model/memory_store.h"
#include "common/model/series.h"

namespace telkit {
namespace {

TEST(LabelsTest, SortedUniqueAndEmptyValuesAbsent) {
  auto labels = Labels::FromUnsorted({{"job", "api"}, {"__name__", "up"}, {"env", ""}, {"instance", "a:1"}});
  ASSERT_TRUE(labels.ok()) << labels.status().ToString();
  ASSERT_EQ(labels->size(), 3u);
  EXPECT_EQ((*labels)[0].name, "__name__");
  EXPECT_EQ((*labels)[2].name, "job");
  EXPECT_EQ(labels->Get("env"), "");
  EXPECT_EQ(labels->MetricName(), "up");
  EXPECT_EQ(labels->ToString(), R"(up{instance="a:1", job="api"})");
  EXPECT_EQ(*labels, (Labels{{"instance", "a:1"}, {"__name__", "up"}, {"job", "api"}}));
}

TEST(LabelsTest, DuplicateNameIsAnError) {
  auto labels = Labels::FromUnsorted({{"a", "1"}, {"a", "2"}});
  EXPECT_EQ(labels.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(labels.status().message().find("'a'"), std::string::npos);
}

TEST(LabelsTest, SetAndRemoveKeepOrder) {
  Labels l{{"b", "2"}};
  l.Set("a", "1");
  l.Set("c", "3");
  l.Set("b", "two");
  l.Remove("c");
  EXPECT_EQ(l.ToString(), R"({a="1", b="two"})");
}

TEST(LabelsTest, HashIsStableAndSeparatesNameFromValue) {
  // Pinned: the hash may be persisted.
  EXPECT_EQ(Labels({{"__name__", "up"}}).Hash(), Labels({{"__name__", "up"}}).Hash());
  EXPECT_NE(Labels({{"a", "bc"}}).Hash(), Labels({{"ab", "c"}}).Hash());
  EXPECT_EQ(Labels().Hash(), 0xcbf29ce484222325ULL);
}

TEST(LabelsTest, EscapesValuesAsTheExpositionFormat) {
  EXPECT_EQ(Labels({{"a", "x\"y\\z\nw"}}).ToString(), R"({a="x\"y\\z\nw"})");
}

TEST(LabelsTest, Names) {
  EXPECT_TRUE(IsValidMetricName("http:requests_total"));
  EXPECT_FALSE(IsValidMetricName("1up"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_TRUE(IsValidLabelName("__name__"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidUserLabelName("__x"));
}

TEST(LabelsTest, CheckSeriesLabelsNamesTheFirstProblem) {
  LabelLimits limits;
  limits.max_labels = 3;
  limits.max_value_bytes = 8;
  EXPECT_EQ(CheckSeriesLabels(Labels{{"__name__", "up"}, {"job", "x"}}, limits), LabelProblem::kNone);
  EXPECT_EQ(CheckSeriesLabels(Labels{{"job", "x"}}, limits), LabelProblem::kMissingMetricName);
  EXPECT_EQ(CheckSeriesLabels(Labels{{"__name__", "a.b"}}, limits), LabelProblem::kInvalidMetricName);
  EXPECT_EQ(CheckSeriesLabels(Labels{{"__name__", "up"}, {"a-b", "x"}}, limits), LabelProblem::kInvalidLabelName);
  EXPECT_EQ(CheckSeriesLabels(Labels{{"__name__", "up"}, {"a", "\xff"}}, limits), LabelProblem::kInvalidLabelValue);
  EXPECT_EQ(CheckSeriesLabels(Labels{{"__name__", "up"}, {"a", "123456789"}}, limits), LabelProblem::kValueTooLong);
  EXPECT_EQ(CheckSeriesLabels(Labels{{"__name__", "up"}, {"a", "1"}, {"b", "1"}, {"c", "1"}}, limits),
            LabelProblem::kTooManyLabels);
  EXPECT_EQ(LabelProblemName(LabelProblem::kTooManyLabels), "too_many_labels");
}

TEST(MatcherTest, EqualityAndAbsentLabels) {
  auto eq = *LabelMatcher::Make(MatchType::kEqual, "job", "api");
  auto absent = *LabelMatcher::Make(MatchType::kEqual, "env", "");
  auto present = *LabelMatcher::Make(MatchType::kNotEqual, "env", "");
  Labels l{{"job", "api"}};
  EXPECT_TRUE(eq.Matches(l));
  EXPECT_TRUE(absent.Matches(l));
  EXPECT_FALSE(present.Matches(l));
  EXPECT_TRUE(present.Matches(Labels{{"env", "prod"}}));
  EXPECT_FALSE(eq.MatchesEmpty());
}

TEST(MatcherTest, RegexIsAnchoredAndDotMatchesNewline) {
  auto re = *LabelMatcher::Make(MatchType::kRegexMatch, "job", "api|web");
  EXPECT_TRUE(re.Matches("api"));
  EXPECT_FALSE(re.Matches("api-gw"));
  EXPECT_FALSE(re.Matches("xapi"));
  auto dot = *LabelMatcher::Make(MatchType::kRegexMatch, "m", "a.b");
  EXPECT_TRUE(dot.Matches("a\nb"));
  auto not_re = *LabelMatcher::Make(MatchType::kRegexNoMatch, "job", "a.*");
  EXPECT_FALSE(not_re.Matches("abc"));
  EXPECT_TRUE(not_re.Matches("b"));
  EXPECT_TRUE(not_re.MatchesEmpty());
  EXPECT_EQ(re.ToString(), R"(job=~"api|web")");
}

TEST(MatcherTest, BadRegexIsInvalidArgument) {
  auto bad = LabelMatcher::Make(MatchType::kRegexMatch, "job", "(");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(MatcherTest, MatchesAll) {
  std::vector<LabelMatcher> ms{*LabelMatcher::Make(MatchType::kEqual, "__name__", "up"),
                               *LabelMatcher::Make(MatchType::kRegexMatch, "job", "a.*")};
  EXPECT_TRUE(MatchesAll(Labels{{"__name__", "up"}, {"job", "api"}}, ms));
  EXPECT_FALSE(MatchesAll(Labels{{"__name__", "up"}, {"job", "web"}}, ms));
}

TEST(SampleTest, StaleNaNIsOneSpecificNaN) {
  EXPECT_TRUE(IsStaleNaN(StaleNaN()));
  EXPECT_TRUE(std::isnan(StaleNaN()));
  EXPECT_FALSE(IsStaleNaN(std::nan("")));
}

}  // namespace
}  // namespace telkit

namespace telkit {
namespace {

TEST(MemoryStoreTest, SelectsByMatchersAndTimeRange) {
  MemoryStore store;
  const Labels a{{"__name__", "up"}, {"job", "api"}};
  const Labels b{{"__name__", "up"}, {"job", "web"}};
  store.Append(a, 1000, 1);
  store.Append(a, 2000, 0);
  store.Append(b, 3000, 1);
  store.Append(a, 1000, 5);  // replaces
  std::vector<LabelMatcher> up{*LabelMatcher::Make(MatchType::kEqual, "__name__", "up")};
  auto all = store.Select(0, 5000, up);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].labels, a);
  EXPECT_EQ((*all)[0].samples, (std::vector<Sample>{{1000, 5}, {2000, 0}}));
  auto late = store.Select(2500, 5000, up);
  ASSERT_EQ(late->size(), 1u);
  EXPECT_EQ((*late)[0].labels, b);
  EXPECT_EQ(*store.LabelValues("job", 0, 5000, up), (std::vector<std::string>{"api", "web"}));
  EXPECT_EQ(*store.LabelNames(0, 1500, {}), (std::vector<std::string>{"__name__", "job"}));
  EXPECT_EQ(store.num_series(), 2u);
}

}  // namespace
}  // namespace telkit
