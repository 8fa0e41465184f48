#include "common/promql/parser.h"

#include <cmath>

#include <gtest/gtest.h>

namespace telkit::promql {
namespace {

std::string RoundTrip(std::string_view q) {
  Result<ExprPtr> e = ParseExpr(q);
  if (!e.ok()) return "ERROR " + e.status().message();
  return (*e)->ToString();
}

std::string ErrorOf(std::string_view q) {
  Result<ExprPtr> e = ParseExpr(q);
  return e.ok() ? "OK" : e.status().message();
}

TEST(PromqlParser, Literals) {
  EXPECT_EQ(RoundTrip("1"), "1");
  EXPECT_EQ(RoundTrip("1e3"), "1000");
  EXPECT_EQ(RoundTrip("0x1F"), "31");
  EXPECT_EQ(RoundTrip("-Inf"), "-Inf");
  EXPECT_EQ(RoundTrip("NaN"), "NaN");
  EXPECT_EQ(RoundTrip(".5"), "0.5");
  EXPECT_EQ(RoundTrip("\"a\\nb\""), "\"a\\nb\"");
  EXPECT_EQ(RoundTrip("'it\\'s'"), "\"it's\"");
  EXPECT_EQ(RoundTrip("`raw\\n`"), "\"raw\\\\n\"");
}

TEST(PromqlParser, Selectors) {
  EXPECT_EQ(RoundTrip("foo"), "foo");
  EXPECT_EQ(RoundTrip("foo{a=\"b\", c!=\"d\", e=~\"f.*\", g!~\"h\",}"),
            "foo{a=\"b\", c!=\"d\", e=~\"f.*\", g!~\"h\"}");
  EXPECT_EQ(RoundTrip("{__name__=\"foo\"}"), "{__name__=\"foo\"}");
  EXPECT_EQ(RoundTrip("foo[1h30m]"), "foo[1h30m]");
  EXPECT_EQ(RoundTrip("foo[5m] offset -1w"), "foo[5m] offset -1w");
  EXPECT_EQ(RoundTrip("foo @ 100 offset 5m"), "foo offset 5m @ 100.000");
  EXPECT_EQ(RoundTrip("foo @ start()"), "foo @ start()");
  EXPECT_EQ(RoundTrip("rate(foo[5m])[30m:1m] @ end()"), "rate(foo[5m])[30m:1m] @ end()");
  EXPECT_EQ(RoundTrip("foo[30m:]"), "foo[30m:]");
  EXPECT_EQ(RoundTrip("sum # a comment\n(foo)"), "sum(foo)");
}

TEST(PromqlParser, PrecedenceAndAssociativity) {
  Result<ExprPtr> e = ParseExpr("2 ^ 3 ^ 2");
  ASSERT_TRUE(e.ok());
  const auto& b = static_cast<const BinaryExpr&>(**e);
  EXPECT_EQ(b.lhs->kind, NodeKind::kNumber);  // right-associative: 2 ^ (3 ^ 2)
  EXPECT_EQ(b.rhs->kind, NodeKind::kBinary);
  Result<ExprPtr> m = ParseExpr("1 - 2 - 3");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(static_cast<const BinaryExpr&>(**m).lhs->kind, NodeKind::kBinary);  // left-associative
  Result<ExprPtr> u = ParseExpr("-a ^ 2");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ((*u)->kind, NodeKind::kUnary);  // -(a ^ 2)
  Result<ExprPtr> o = ParseExpr("a or b and c unless d");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(static_cast<const BinaryExpr&>(**o).op, BinOp::kOr);
}

TEST(PromqlParser, BinaryModifiersAndAggregations) {
  EXPECT_EQ(RoundTrip("a + on(b) group_left(c) d"), "a + on (b) group_left (c) d");
  EXPECT_EQ(RoundTrip("a > bool ignoring(x) b"), "a > bool ignoring (x) b");
  EXPECT_EQ(RoundTrip("sum by (job) (x)"), "sum by (job) (x)");
  EXPECT_EQ(RoundTrip("sum(x) without (a, b)"), "sum without (a, b) (x)");
  EXPECT_EQ(RoundTrip("topk(3, x)"), "topk(3, x)");
  EXPECT_EQ(RoundTrip("count_values(\"v\", x)"), "count_values(\"v\", x)");
  EXPECT_EQ(RoundTrip("label_join(x, \"d\", \",\", \"a\", \"b\")"), "label_join(x, \"d\", \",\", \"a\", \"b\")");
  EXPECT_EQ(RoundTrip("sum"), "sum");  // a metric named like an aggregator
}

TEST(PromqlParser, Errors) {
  EXPECT_EQ(ErrorOf("foo{"), "1:5: parse error: unexpected end of input in label matching, expected label");
  EXPECT_EQ(ErrorOf("rate(foo)"),
            "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector");
  EXPECT_EQ(ErrorOf("1 > 2"), "1:1: parse error: comparisons between scalars must use BOOL modifier");
  EXPECT_EQ(ErrorOf("{}"), "1:1: parse error: vector selector must contain at least one non-empty matcher");
  EXPECT_EQ(ErrorOf("foo{a=~\"(\"}"), ErrorOf("foo{a=~\"(\"}"));
  EXPECT_NE(ErrorOf("foo{a=~\"(\"}"), "OK");
  EXPECT_EQ(ErrorOf("sum(foo) offset 5m"),
            "1:10: parse error: offset modifier must be preceded by an instant vector selector or range vector "
            "selector or a subquery");
  EXPECT_EQ(ErrorOf("nosuch(foo)"), "1:1: parse error: unknown function with name \"nosuch\"");
  EXPECT_EQ(ErrorOf("topk(foo)"),
            "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1");
  EXPECT_EQ(ErrorOf("1 and 2"), "1:1: parse error: set operator \"and\" not allowed in binary scalar expression");
  EXPECT_EQ(ErrorOf("a +\n )"), "2:2: parse error: unexpected \")\"");
  EXPECT_EQ(ErrorOf("foo[5m][1m]"), "1:1: parse error: ranges only allowed for vector selectors");
}

TEST(PromqlParser, AnchoredAndSmoothedSelectors) {
  EXPECT_EQ(RoundTrip("rate(x[5m] anchored)"), "rate(x[5m] anchored)");
  EXPECT_EQ(RoundTrip("increase(x[5m] offset 1m smoothed)"), "increase(x[5m] offset 1m smoothed)");
  EXPECT_EQ(RoundTrip("x @ 100 smoothed + 0"), "x @ 100.000 smoothed + 0");
  EXPECT_FALSE(ParseExpr("x anchored smoothed").ok());
  EXPECT_FALSE(ParseExpr("sum(x) anchored").ok());
}

TEST(PromqlParser, FillModifiers) {
  EXPECT_EQ(RoundTrip("a + fill(0) b"), "a + fill(0) b");
  EXPECT_EQ(RoundTrip("a + fill_left(5) fill_right(7) b"), "a + fill_left(5) fill_right(7) b");
  EXPECT_EQ(RoundTrip("a + on (x) group_left fill_right(-Inf) b"), "a + on (x) group_left () fill_right(-Inf) b");
  EXPECT_EQ(RoundTrip("a + fill(NaN) b"), "a + fill(NaN) b");
  EXPECT_EQ(RoundTrip("a + fill"), "a + fill");  // a metric named fill
  EXPECT_FALSE(ParseExpr("a + fill(x) b").ok());
}

TEST(PromqlParser, InfoAcceptsAnEmptyMatchingSelector) {
  EXPECT_EQ(RoundTrip(R"(info(x, {data=~".*"}))"), R"(info(x, {data=~".*"}))");
  EXPECT_FALSE(ParseExpr(R"({data=~".*"})").ok());
  EXPECT_FALSE(ParseExpr(R"(info({data=~".*"}))").ok());
}

TEST(PromqlParser, Durations) {
  EXPECT_EQ(*ParseDuration("1h30m"), 5400000);
  EXPECT_EQ(*ParseDuration("1y"), 365LL * 86400000);
  EXPECT_EQ(*ParseDuration("100ms"), 100);
  EXPECT_FALSE(ParseDuration("30m1h").ok());
  EXPECT_FALSE(ParseDuration("1.5h").ok());
}

}  // namespace
}  // namespace telkit::promql

namespace telkit::promql {
namespace {

TEST(PromqlParser, DeepNestingIsAnErrorNotACrash) {
  std::string parens(100000, '(');
  EXPECT_NE(ErrorOf(parens + "1" + std::string(100000, ')')).find("nested too deeply"), std::string::npos);
  std::string chain = "a";
  for (int i = 0; i < 100000; ++i) chain += " + a";
  EXPECT_NE(ErrorOf(chain).find("nested too deeply"), std::string::npos);
  std::string pow = "2";
  for (int i = 0; i < 100000; ++i) pow += "^2";
  EXPECT_NE(ErrorOf(pow).find("nested too deeply"), std::string::npos);
  EXPECT_NE(ErrorOf(std::string(100000, '-') + "1").find("nested too deeply"), std::string::npos);
  std::string calls;
  for (int i = 0; i < 5000; ++i) calls += "abs(";
  EXPECT_NE(ErrorOf(calls + "a" + std::string(5000, ')')).find("nested too deeply"), std::string::npos);
  // Within the limit everything parses.
  std::string ok = "a";
  for (int i = 0; i < 250; ++i) ok += " + a";
  EXPECT_EQ(ErrorOf(ok), "OK");
}

// Every prefix and every one-byte mutation of real queries parses or fails
// cleanly (run under ASan in the sanitizer build).
TEST(PromqlParser, MutatedQueriesNeverCrash) {
  const std::vector<std::string> seeds = {
      R"q(sum by (job) (rate(http_requests_total{code=~"5..", job!="x"}[5m] offset -1m @ 100)))q",
      R"q(histogram_quantile(0.9, sum(rate(x_bucket[5m])) by (le)) > bool on(a) group_left(b) c)q",
      R"q(max_over_time(deriv(rate(x[1h30m])[5m:1m])[1d:]) or label_replace(y, "a", "$1", "b", "(.*)"))q",
      R"q(topk(3, count_values("v", x)) unless -(1 + 2 ^ 3 % 4) atan2 0x1f * Inf - NaN # comment)q",
  };
  const char kBytes[] = "()[]{}\",'`=~!<>+-*/%^@:#0123456789.e aszxINF\\\n";
  uint32_t rng = 12345;
  int parsed = 0;
  for (const std::string& seed : seeds) {
    for (size_t n = 0; n <= seed.size(); ++n) parsed += ParseExpr(seed.substr(0, n)).ok();
    for (int k = 0; k < 3000; ++k) {
      std::string q = seed;
      rng = rng * 1103515245 + 12345;
      size_t at = (rng >> 8) % q.size();
      rng = rng * 1103515245 + 12345;
      char c = kBytes[(rng >> 8) % (sizeof kBytes - 1)];
      switch (k % 3) {
        case 0: q[at] = c; break;
        case 1: q.insert(q.begin() + static_cast<ptrdiff_t>(at), c); break;
        default: q.erase(at, 1); break;
      }
      Result<ExprPtr> e = ParseExpr(q);
      if (e.ok()) {
        ++parsed;
        // What parses prints back to something that parses to the same text.
        std::string printed = (*e)->ToString();
        Result<ExprPtr> again = ParseExpr(printed);
        ASSERT_TRUE(again.ok()) << q << " printed as " << printed << ": " << again.status().message();
        EXPECT_EQ((*again)->ToString(), printed) << q;
      }
    }
  }
  EXPECT_GT(parsed, 100);
}

// 3.x duration expressions: arithmetic in seconds inside [...], one
// parenthesised expression (or min_of/max_of) after offset. 2.x mode keeps
// plain durations.
TEST(PromqlParser, DurationExpressions) {
  ParseOptions o;
  o.durations_as_numbers = true;
  auto rt = [&](std::string_view q) {
    Result<ExprPtr> e = ParseExpr(q, o);
    return e.ok() ? (*e)->ToString() : "ERROR " + e.status().message();
  };
  EXPECT_EQ(rt("rate(x[26m+4m])"), "rate(x[30m])");
  EXPECT_EQ(rt("rate(x[2m*(10+5)])"), "rate(x[30m])");
  EXPECT_EQ(rt("rate(x[30m1s-30m1s % 1m])"), "rate(x[30m])");
  EXPECT_EQ(rt("rate(x[24m+((1.5*2m)+2m)])"), "rate(x[29m])");
  EXPECT_EQ(rt("rate(x[-5m+35m])"), "rate(x[30m])");
  EXPECT_EQ(rt("x[29s+1s:5s+5s]"), "x[30s:10s]");
  EXPECT_EQ(rt("x offset (100 + 2)"), "x offset 1m42s");
  EXPECT_EQ(rt("x offset 100 + 2"), "x offset 1m40s + 2");
  EXPECT_EQ(rt("x offset 2 ^ 2"), "x offset 2s ^ 2");
  EXPECT_EQ(rt("x offset (-2 ^ 2)"), "x offset -4s");
  EXPECT_EQ(rt("x offset max_of(3s, min_of(5s, 1s))"), "x offset 3s");
  EXPECT_NE(rt("x[1m/0]").find("division by zero"), std::string::npos);
  EXPECT_NE(rt("x[5m-5m]").find("greater than 0"), std::string::npos);
  o.query_step_ms = 15000;  // a range query's step and span
  o.query_range_ms = 3600000;
  EXPECT_EQ(rt("rate(x[STep()*4])"), "rate(x[1m])");
  EXPECT_EQ(rt("x offset min_of(range(), 8s)"), "x offset 8s");
  EXPECT_NE(RoundTrip("x[1m+1m]").find("ERROR"), std::string::npos);  // 2.x: no arithmetic
}

}  // namespace
}  // namespace telkit::promql
