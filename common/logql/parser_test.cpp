#include "common/logql/parser.h"

#include <gtest/gtest.h>

namespace telkit::logql {
namespace {

std::string ErrorOf(std::string_view q) {
  auto r = ParseExpr(q);
  if (r.ok()) return "OK";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << q;
  return r.status().message();
}

TEST(LogqlParser, ParsesLogQueries) {
  auto r = ParseExpr(R"q({app="a", env=~"prod|dev"} |= "err" or "warn" != `debug` |~ "x+" | json | level="error")q");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Expr& e = **r;
  ASSERT_TRUE(e.IsLog());
  EXPECT_EQ(e.selector.matchers.size(), 2u);
  ASSERT_EQ(e.selector.stages.size(), 5u);
  EXPECT_EQ(e.selector.stages[0].line_filter.values.size(), 2u);
  EXPECT_EQ(e.selector.stages[1].line_filter.op, LineFilterOp::kNotContains);
  EXPECT_EQ(e.selector.stages[3].kind, Stage::Kind::kJson);
  EXPECT_EQ(e.selector.stages[4].kind, Stage::Kind::kLabelFilter);
}

TEST(LogqlParser, ParsesMetricQueries) {
  for (const char* q : {
           R"q(sum by (app) (count_over_time({app="a"}[5m])))q",
           R"q(sum(rate({app="a"} |= "x" [1m])) by (app))q",
           R"q(topk(3, bytes_rate({app="a"}[1h] offset 5m)))q",
           R"q(quantile_over_time(0.99, {app="a"} | logfmt | unwrap duration(latency) | __error__="" [5m]) by (path))q",
           R"q(avg_over_time({app="a"} | json | unwrap bytes(size) [1m]))q",
           R"q(count_over_time(({app="a"} | json)[5m]))q",
           R"q(sum(count_over_time({app="a"}[1m])) / on() group_left sum(count_over_time({app="b"}[1m])))q",
           R"q(count_over_time({app="a"}[1m]) > bool 2)q",
           R"q(rate({a="b"}[1m]) and ignoring(level) rate({a="c"}[1m]))q",
           R"q(-1 + 2 * 3 ^ 2 ^ 0.5)q",
           R"q(vector(1) or count_over_time({a="b"}[1m]))q",
           R"q({a="b"} | label_format x=a, y="{{.a | ToUpper}}" | line_format "{{.x}} {{__line__}}" | drop y, z="1" | keep x)q",
           R"q({a="b"} | pattern "<ip> - <_> [<ts>]" | regexp "(?P<word>\\w+)" | unpack | decolorize)q",
           R"q({a="b"} | logfmt --strict --keep_empty a, b="c" | a > 5ms or (b >= 10KB and c != 2))q",
           R"q({a="b"} | json x="a.b[0]", y=`c["d e"]`)q",
       }) {
    auto r = ParseExpr(q);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status().ToString();
  }
}

TEST(LogqlParser, ErrorsCarryLineAndColumn) {
  EXPECT_EQ(ErrorOf(R"q({app="a"} |= )q"), "parse error at line 1, col 14: syntax error: unexpected end of input");
  EXPECT_EQ(ErrorOf(R"q({app="a" |= "x")q"), "parse error at line 1, col 10: syntax error: unexpected |=");
  EXPECT_EQ(ErrorOf("{app=\"a\"}\n | json | x > \"y\""),
            "parse error at line 2, col 15: syntax error: unexpected STRING, expecting NUMBER or DURATION or BYTES");
  EXPECT_EQ(ErrorOf(R"q({app="a"} |= "x)q"), "parse error at line 1, col 14: unterminated string");
  EXPECT_EQ(ErrorOf(""), "parse error at line 1, col 1: syntax error: empty query");
  EXPECT_EQ(ErrorOf(R"q(count_over_time({app="a"}))q"),
            "parse error at line 1, col 26: syntax error: unexpected ), expecting [");
  EXPECT_EQ(ErrorOf(R"q({app="a"}[5m])q"),
            "parse error at line 1, col 10: syntax error: unexpected RANGE: a range needs a range aggregation such as "
            "count_over_time");
  EXPECT_EQ(ErrorOf(R"q(foo({app="a"}))q"), "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER");
  EXPECT_EQ(ErrorOf(R"q({app="a"} $)q"), "parse error at line 1, col 11: syntax error: unexpected character '$'");
}

TEST(LogqlParser, SemanticErrors) {
  EXPECT_EQ(ErrorOf(R"q(sum_over_time({app="a"}[5m]))q"), "invalid aggregation sum_over_time without unwrap");
  EXPECT_EQ(ErrorOf(R"q(count_over_time({app="a"} | unwrap x [5m]))q"),
            "invalid aggregation count_over_time with unwrap");
  EXPECT_EQ(ErrorOf(R"q(count_over_time({app="a"}[5m]) by (x))q"),
            "grouping not allowed for count_over_time aggregation");
  EXPECT_NE(ErrorOf(R"q({app=~".*"})q").find("queries require at least one regexp or equality matcher"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"q({app="a"} |~ "(")q").find("invalid regex"), std::string::npos);
  EXPECT_NE(ErrorOf(R"q(1 > 2)q").find("comparisons between scalars must use BOOL modifier"), std::string::npos);
  EXPECT_NE(ErrorOf(R"q(sum({app="a"}))q").find("unexpected log query in vector aggregation"), std::string::npos);
  EXPECT_NE(ErrorOf(R"q({app="a"} | regexp "(\\w+)")q").find("at least one named capture"), std::string::npos);
  EXPECT_NE(ErrorOf(R"q({app="a"} | line_format "{{.x")q").find("template: unclosed action"), std::string::npos);
  EXPECT_NE(ErrorOf(R"q({app="a"} | line_format "{{ nope .x }}")q").find("function \"nope\" not defined"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"q(topk(0, count_over_time({a="b"}[1m])))q").find("positive integer"), std::string::npos);
  EXPECT_NE(ErrorOf(R"q({a="b"} | unwrap x)q").find("unwrap is only allowed in a range aggregation"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"q(sum_over_time({a="b"} | unwrap x | json [1m]))q").find("only label filters may follow unwrap"),
            std::string::npos);
}

}  // namespace
}  // namespace telkit::logql
