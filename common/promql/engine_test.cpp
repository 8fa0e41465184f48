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

TEST(PromqlEngineNames, TypeAndUnitLabelsGoWithTheNameWhenEnabled) {
  MemoryStore store;
  store.Append(L({{"__name__", "x"}, {"__type__", "counter"}, {"__unit__", "bytes"}, {"job", "a"}}), 0, 4);
  for (bool delayed : {false, true}) {
    EngineOptions o;
    o.compat = Compat::kPrometheus3;
    o.delayed_name_removal = delayed;
    Result<QueryResult> r = Engine(o).InstantQuery(store, "-x", 0);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->series.at(0).labels, L({{"__type__", "counter"}, {"__unit__", "bytes"}, {"job", "a"}}));
    o.type_and_unit_labels = true;
    r = Engine(o).InstantQuery(store, "-x", 0);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->series.at(0).labels, L({{"job", "a"}})) << delayed;
    r = Engine(o).InstantQuery(store, "x * 2 + on(job) x", 0);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->series.at(0).labels, L({{"job", "a"}})) << delayed;
    EXPECT_EQ(r->series.at(0).points.at(0).v, 12);
  }
}

TEST_F(PromqlEngine, AnchoredAndSmoothedSelectors) {
  EngineOptions o;
  o.compat = Compat::kPrometheus3;
  Engine e(o);
  auto one = [&](std::string_view q, int64_t t) -> double {
    Result<QueryResult> r = e.InstantQuery(store_, q, t);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status().ToString();
    if (!r.ok() || r->series.size() != 1 || r->series[0].points.size() != 1) return -1;
    return r->series[0].points[0].v;
  };
  // up{inst="2"} is 0, 1, 2, ... at every minute.
  EXPECT_DOUBLE_EQ(one(R"(increase(up{inst="2"}[2m] anchored))", 330000), 2);  // 5 - 3 (the sample at 3m)
  EXPECT_DOUBLE_EQ(one(R"(increase(up{inst="2"}[2m] smoothed))", 330000), 2);  // 5.5 - 3.5
  EXPECT_DOUBLE_EQ(one(R"(rate(up{inst="2"}[2m] smoothed))", 330000), 2.0 / 120);
  EXPECT_DOUBLE_EQ(one(R"(changes(up{inst="2"}[1m] anchored))", 330000), 1);
  EXPECT_DOUBLE_EQ(one(R"(up{inst="2"} smoothed)", 330000), 5.5);
  Result<QueryResult> r = e.InstantQuery(store_, R"(up{inst="2"}[1m] anchored)", 330000);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->series.size(), 1u);
  EXPECT_EQ(r->series[0].points, (std::vector<Sample>{{270000, 4}, {300000, 5}, {330000, 5}}));
  r = e.InstantQuery(store_, R"(max_over_time(up[1m] smoothed))", 330000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "smoothed modifier can only be used with: delta, increase, rate - not with max_over_time");
}

}  // namespace
}  // namespace telkit::promql

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/promql/promql_test_runner.h"

namespace telkit::promql {
namespace {

// Mutations of every query in our test scripts, evaluated over their data
// as instant and range queries: results or clean errors, never a crash.
TEST(PromqlEngineRobustness, MutatedQueriesEvaluateOrFailCleanly) {
  namespace fs = std::filesystem;
  MemoryStore store;
  std::vector<std::string> queries;
  for (const auto& e : fs::directory_iterator(fs::path(TELKIT_SOURCE_DIR) / "tests" / "testdata" / "promql")) {
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    ASSERT_TRUE(LoadTestScriptData(text, store).ok());
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      size_t at = line.find(" at ");
      if (line.rfind("eval", 0) == 0 && at != std::string::npos) {
        size_t sp = line.find(' ', at + 4);
        if (sp != std::string::npos) queries.push_back(line.substr(sp + 1));
      }
    }
  }
  ASSERT_GT(queries.size(), 50u);
  EngineOptions o;
  o.max_samples = 100000;
  o.timeout = std::chrono::seconds(5);
  Engine engine(o);
  const char kBytes[] = "()[]{}\"=~!<>+-*/%^@:0123456789. aInf,";
  uint32_t rng = 42;
  int ok = 0, failed = 0;
  for (int k = 0; k < 3000; ++k) {
    rng = rng * 1103515245 + 12345;
    std::string q = queries[(rng >> 8) % queries.size()];
    rng = rng * 1103515245 + 12345;
    size_t at = (rng >> 8) % (q.size() + 1);
    rng = rng * 1103515245 + 12345;
    char c = kBytes[(rng >> 8) % (sizeof kBytes - 1)];
    if (k % 4 == 1) q.insert(q.begin() + static_cast<ptrdiff_t>(at), c);
    if (k % 4 == 2 && at < q.size()) q[at] = c;
    if (k % 4 == 3 && at < q.size()) q.erase(at, 1);
    Result<QueryResult> r = (k % 2) ? engine.InstantQuery(store, q, 300000)
                                    : engine.RangeQuery(store, q, 0, 900000, 45000);
    (r.ok() ? ok : failed)++;
  }
  EXPECT_GT(ok, 500);
  EXPECT_GT(failed, 100);
}

// Delayed __name__ removal is an option (off, as in Prometheus 3 by
// default): on, names survive until the end, so `-{job="api"}` over two
// metrics that alternate in time is one series, and label_replace can keep
// a name that rate() would drop.
TEST(PromqlEngineNames, DelayedNameRemovalIsAnOption) {
  MemoryStore store;
  store.Append(L({{"__name__", "req"}, {"job", "api"}}), 0, 2);
  store.Append(L({{"__name__", "err"}, {"job", "api"}}), 1200000, 4);
  EngineOptions o;
  o.compat = Compat::kPrometheus3;
  Engine off(o);
  // Off: both lose their names at once, two series with one labelset.
  Result<QueryResult> r = off.RangeQuery(store, "-{job=\"api\"}", 0, 1200000, 1200000);
  EXPECT_FALSE(r.ok());
  o.delayed_name_removal = true;
  Engine on(o);
  r = on.RangeQuery(store, "-{job=\"api\"}", 0, 1200000, 1200000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->series.size(), 1u);
  EXPECT_EQ(r->series[0].labels, L({{"job", "api"}}));
  EXPECT_EQ(r->series[0].points, (std::vector<Sample>{{0, -2}, {1200000, -4}}));
  store.Append(L({{"__name__", "err"}, {"job", "api"}}), 0, 1);
  EXPECT_FALSE(on.InstantQuery(store, "-{job=\"api\"}", 0).ok());  // same labelset at one time
  r = on.InstantQuery(store, "label_replace(-req, \"__name__\", \"neg_$1\", \"__name__\", \"(.+)\")", 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->series.size(), 1u);
  EXPECT_EQ(r->series[0].labels, L({{"__name__", "neg_req"}, {"job", "api"}}));
}

}  // namespace
}  // namespace telkit::promql
