#include "common/promql/query_output.h"

#include <gtest/gtest.h>

namespace telkit::promql {
namespace {

TEST(PromqlQueryOutput, ApiTimesAndDurations) {
  EXPECT_EQ(*ParseApiTime("1435781451.781"), 1435781451781);
  EXPECT_EQ(*ParseApiTime("600"), 600000);
  EXPECT_EQ(*ParseApiTime("2015-07-01T20:10:51.781Z"), 1435781451781);
  EXPECT_EQ(*ParseApiTime("2015-07-01T22:10:51+02:00"), 1435781451000);
  EXPECT_EQ(*ParseApiTime("1970-01-01T00:00:00Z"), 0);
  EXPECT_FALSE(ParseApiTime("yesterday").ok());
  EXPECT_FALSE(ParseApiTime("2015-13-01T00:00:00Z").ok());
  EXPECT_EQ(*ParseApiDuration("15s"), 15000);
  EXPECT_EQ(*ParseApiDuration("1m30s"), 90000);
  EXPECT_EQ(*ParseApiDuration("0.5"), 500);
  EXPECT_FALSE(ParseApiDuration("0").ok());
  EXPECT_FALSE(ParseApiDuration("-1").ok());
  EXPECT_EQ(FormatApiTime(1435781451781), "1435781451.781");
  EXPECT_EQ(FormatApiTime(600000), "600");
  EXPECT_EQ(FormatApiTime(1500), "1.5");
  EXPECT_EQ(FormatApiTime(-1500), "-1.5");
}

TEST(PromqlQueryOutput, LoadsExpositions) {
  MemoryStore store;
  ASSERT_TRUE(LoadExposition("# HELP x h\n# TYPE x counter\nx{a=\"1\",b=\"q\\\"\"} 5 1000\nx 7\ny +Inf\n", 2000, store).ok());
  EXPECT_EQ(store.num_series(), 3u);
  std::vector<LabelMatcher> m = {*LabelMatcher::Make(MatchType::kEqual, "__name__", "x")};
  Result<std::vector<SeriesSamples>> sel = store.Select(0, 10000, m);
  ASSERT_TRUE(sel.ok());
  ASSERT_EQ(sel->size(), 2u);
  EXPECT_EQ((*sel)[0].samples, (std::vector<Sample>{{2000, 7}}));  // x: no timestamp
  EXPECT_EQ((*sel)[1].labels.Get("b"), "q\"");
  EXPECT_EQ((*sel)[1].samples, (std::vector<Sample>{{1000, 5}}));
  MemoryStore om;
  ASSERT_TRUE(LoadExposition("z 1 1.25\n# EOF\n", 0, om).ok());
  ASSERT_EQ(om.Select(0, 10000, std::vector<LabelMatcher>{*LabelMatcher::Make(MatchType::kEqual, "__name__", "z")})
                ->at(0)
                .samples,
            (std::vector<Sample>{{1250, 1}}));
  Status bad = LoadExposition("ok 1\nbad{a=1} 2\n", 0, om);
  EXPECT_EQ(bad.message(), "line 2: label value must be quoted: bad{a=1} 2");
}

TEST(PromqlQueryOutput, ApiJsonGolden) {
  QueryResult v;
  v.type = ValueType::kVector;
  v.series.push_back({Labels{{"__name__", "up"}, {"job", "a"}}, {{1435781451781, 1}}});
  EXPECT_EQ(FormatApiJson(v),
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1435781451.781,"1"]}]}})");
  QueryResult m;
  m.type = ValueType::kMatrix;
  m.series.push_back({Labels{{"job", "a"}}, {{0, 0.5}, {60000, 1.0 / 0.0}}});
  EXPECT_EQ(FormatApiJson(m),
            R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"a"},"values":[[0,"0.5"],[60,"+Inf"]]}]}})");
  QueryResult s;
  s.type = ValueType::kScalar;
  s.scalar = 2;
  s.t = 1000;
  EXPECT_EQ(FormatApiJson(s), R"({"status":"success","data":{"resultType":"scalar","result":[1,"2"]}})");
  EXPECT_EQ(FormatApiError(InvalidArgumentError("1:1: parse error: x")),
            R"({"status":"error","errorType":"bad_data","error":"1:1: parse error: x"})");
  EXPECT_EQ(FormatApiError(Status(StatusCode::kDeadlineExceeded, "query timed out in expression evaluation")),
            R"({"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"})");
}

TEST(PromqlQueryOutput, Tables) {
  QueryResult v;
  v.type = ValueType::kVector;
  v.series.push_back({Labels{{"__name__", "up"}, {"job", "a"}}, {{0, 1}}});
  v.series.push_back({Labels{}, {{0, 0.25}}});
  EXPECT_EQ(FormatTable(v), "SERIES       VALUE\nup{job=\"a\"}  1\n{}           0.25\n");
  QueryResult empty;
  empty.type = ValueType::kVector;
  EXPECT_EQ(FormatTable(empty), "");
}

}  // namespace
}  // namespace telkit::promql
