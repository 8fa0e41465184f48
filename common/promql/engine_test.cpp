#include "common/promql/engine.h"

#include <gtest/gtest.h>

#include "common/model/memory_store.h"

namespace telkit::promql {
namespace {

Labels L(std::initializer_list<Label> l) { return Labels(l); }

// A store whose reads fail, to check that the engine hands the error back.
class FailingQuerier : public Querier {
 public:
  Result<std::vector<SeriesSamples>> Select(int64_t, int64_t, std::span<const LabelMatcher>) override {
    return UnavailableError("head socket 'x': connection refused");
  }
  Result<std::vector<std::string>> LabelNames(int64_t, int64_t, std::span<const LabelMatcher>) override {
    return std::vector<std::string>{};
  }
  Result<std::vector<std::string>> LabelValues(std::string_view, int64_t, int64_t,
                                               std::span<const LabelMatcher>) override {
    return std::vector<std::string>{};
  }
};

class PromqlEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) {
      Labels l = L({{"__name__", "up"}, {"inst", std::to_string(2 - i)}});
      for (int t = 0; t <= 10; ++t) store_.Append(l, t * 60000, t * (i + 1));
    }
  }
  MemoryStore store_;
};

TEST_F(PromqlEngine, InstantVectorKeepsEngineOrderAndScalarsAreValues) {
  Engine e;
  Result<QueryResult> r = e.InstantQuery(store_, "sort_desc(up)", 600000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->type, ValueType::kVector);
  ASSERT_EQ(r->series.size(), 3u);
  EXPECT_EQ(r->series[0].labels.Get("inst"), "0");  // 30
  EXPECT_EQ(r->series[2].labels.Get("inst"), "2");  // 10
  EXPECT_EQ(r->series[0].points, (std::vector<Sample>{{600000, 30}}));

  r = e.InstantQuery(store_, "count(up) * 2", 600000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->series[0].points[0].v, 6);
  r = e.InstantQuery(store_, "scalar(count(up)) * 2", 600000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, ValueType::kScalar);
  EXPECT_EQ(r->scalar, 6);
  r = e.InstantQuery(store_, "up[2m]", 600000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, ValueType::kMatrix);
  EXPECT_EQ(r->series[0].points.size(), 3u);
}

TEST_F(PromqlEngine, RangeQuerySortsSeriesAndTurnsScalarsIntoOneSeries) {
  Engine e;
  Result<QueryResult> r = e.RangeQuery(store_, "up", 0, 120000, 60000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, ValueType::kMatrix);
  ASSERT_EQ(r->series.size(), 3u);
  EXPECT_EQ(r->series[0].labels.Get("inst"), "0");
  EXPECT_EQ(r->series[0].points, (std::vector<Sample>{{0, 0}, {60000, 3}, {120000, 6}}));
  r = e.RangeQuery(store_, "time()", 0, 120000, 60000);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->series.size(), 1u);
  EXPECT_TRUE(r->series[0].labels.empty());
  EXPECT_EQ(r->series[0].points, (std::vector<Sample>{{0, 0}, {60000, 60}, {120000, 120}}));
}

TEST_F(PromqlEngine, RangeQueryArgumentsAreChecked) {
  Engine e;
  EXPECT_EQ(e.RangeQuery(store_, "up", 0, 60000, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.RangeQuery(store_, "up", 60000, 0, 1000).status().code(), StatusCode::kInvalidArgument);
  Result<QueryResult> r = e.RangeQuery(store_, "up", 0, 86400000, 1000);
  EXPECT_EQ(r.status().message(),
            "exceeded maximum resolution of 11000 points per timeseries. Try decreasing the query resolution "
            "(?step=XX)");
  EXPECT_EQ(e.RangeQuery(store_, "up[5m]", 0, 60000, 1000).status().message(),
            "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector");
}

TEST_F(PromqlEngine, SampleLimitIsAClearError) {
  EngineOptions o;
  o.max_samples = 10;
  Engine e(o);
  Result<QueryResult> r = e.InstantQuery(store_, "sum_over_time(up[10m])", 600000);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(), "query processing would load too many samples into memory in query execution");
  EXPECT_TRUE(e.InstantQuery(store_, "up", 600000).ok());  // 3 samples at one step
}

TEST_F(PromqlEngine, TimeoutIsDeadlineExceeded) {
  EngineOptions o;
  o.timeout = std::chrono::milliseconds(0);
  Engine e(o);
  Result<QueryResult> r = e.RangeQuery(store_, "sum(up)", 0, 10000 * 1000, 1000);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(r.status().message(), "query timed out in expression evaluation");
}

TEST_F(PromqlEngine, QuerierErrorsComeBack) {
  FailingQuerier q;
  Engine e;
  Result<QueryResult> r = e.InstantQuery(q, "rate(up[5m])", 0);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "head socket 'x': connection refused");
  EXPECT_TRUE(e.InstantQuery(q, "1 + 1", 0).ok());  // no selection, no read
}

TEST_F(PromqlEngine, RangeFunctionsSlideOverOneSelection) {
  // A range query over many steps must give what instant queries at each
  // step give.
  Engine e;
  Result<QueryResult> range = e.RangeQuery(store_, "rate(up[3m]) + on(inst) group_left max_over_time(up[2m])", 0,
                                           600000, 30000);
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  for (const Series& s : range->series) {
    for (const Sample& p : s.points) {
      Result<QueryResult> inst =
          e.InstantQuery(store_, "rate(up[3m]) + on(inst) group_left max_over_time(up[2m])", p.t);
      ASSERT_TRUE(inst.ok());
      bool found = false;
      for (const Series& is : inst->series) {
        if (is.labels == s.labels) {
          EXPECT_DOUBLE_EQ(is.points[0].v, p.v) << s.labels.ToString() << " at " << p.t;
          found = true;
        }
      }
      EXPECT_TRUE(found);
    }
  }
}

TEST(PromqlFormatValue, MatchesPrometheusApi) {
  EXPECT_EQ(FormatValue(1), "1");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1e21), "1000000000000000000000");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(0.0 / 0.0), "NaN");
}

}  // namespace
}  // namespace telkit::promql
