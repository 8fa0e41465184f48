// Option validation and time windows of tel-query's logql, traceql and
// services subcommands (common/query/logs_cli.h, trace_cli.h).
#include <gtest/gtest.h>

#include <limits>

#include "common/query/logs_cli.h"
#include "common/query/trace_cli.h"

namespace telkit::query {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;  // ms
constexpr int64_t kMs = 1'000'000;           // ns per ms

TEST(LogqlQueryParams, LogQueryDefaultsToTheLastHourIncludingNow) {
  LogqlWindowFlags f;
  auto p = LogqlQueryParams(f, /*log_query=*/true, kNow);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->start_ns, (kNow - 3'600'000) * kMs);
  EXPECT_EQ(p->end_ns, kNow * kMs + 1);
  EXPECT_EQ(p->step_ns, 1);
  EXPECT_EQ(p->limit, 100u);
  EXPECT_TRUE(p->backward);
  f.end = "now";
  f.direction = "forward";
  f.limit = 7;
  p = LogqlQueryParams(f, true, kNow);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->end_ns, kNow * kMs);  // an explicit end is exclusive
  EXPECT_FALSE(p->backward);
  EXPECT_EQ(p->limit, 7u);
}

TEST(LogqlQueryParams, MetricQueriesAreInstantOrRangeWithAnAutomaticStep) {
  LogqlWindowFlags f;
  auto p = LogqlQueryParams(f, false, kNow);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->instant());
  EXPECT_EQ(p->start_ns, kNow * kMs);
  f.time = "now-1m";
  p = LogqlQueryParams(f, false, kNow);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->start_ns, (kNow - 60'000) * kMs);
  EXPECT_EQ(p->end_ns, p->start_ns);
  f = {};
  f.start = "now-1h";
  p = LogqlQueryParams(f, false, kNow);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->step_ns, 14'000 * kMs);  // 3600s / 250 = 14.4s, whole seconds
  f.start = "now-10s";
  EXPECT_EQ(LogqlQueryParams(f, false, kNow)->step_ns, 1000 * kMs);  // at least 1s
  f.step = "30s";
  EXPECT_EQ(LogqlQueryParams(f, false, kNow)->step_ns, 30'000 * kMs);
}

TEST(LogqlQueryParams, BadFlagsAreInvalidArgument) {
  LogqlWindowFlags f;
  f.time = "now";
  auto p = LogqlQueryParams(f, true, kNow);
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(p.status().message()).find("--time is for instant metric queries"), std::string::npos);
  f.step = "1m";
  EXPECT_EQ(LogqlQueryParams(f, false, kNow).status().code(), StatusCode::kInvalidArgument);
  f = {};
  f.start = "yesterday";
  p = LogqlQueryParams(f, true, kNow);
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(p.status().message()).find("'yesterday'"), std::string::npos);
  f = {};
  f.start = "now-1h";
  f.step = "fast";
  EXPECT_EQ(LogqlQueryParams(f, false, kNow).status().code(), StatusCode::kInvalidArgument);
}

TEST(TraceqlSearchOptions, SinceStartEndAndLimits) {
  TraceqlSearchFlags f;
  auto o = TraceqlSearchOptions(f, kNow);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->start_ns, 0);
  EXPECT_EQ(o->end_ns, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(o->limit, 20u);
  EXPECT_EQ(o->spans_per_spanset, 3u);
  f.since = "15m";
  f.limit = 5;
  f.spans_per_spanset = 0;
  o = TraceqlSearchOptions(f, kNow);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->start_ns, (kNow - 900'000) * kMs);
  EXPECT_EQ(o->limit, 5u);
  EXPECT_EQ(o->spans_per_spanset, 0u);
  f = {};
  f.start = "now-1h";
  f.end = "now-30m";
  o = TraceqlSearchOptions(f, kNow);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->start_ns, (kNow - 3'600'000) * kMs);
  EXPECT_EQ(o->end_ns, (kNow - 1'800'000) * kMs);
}

TEST(TraceqlSearchOptions, BadFlagsAreInvalidArgument) {
  TraceqlSearchFlags f;
  f.since = "1h";
  f.end = "now";
  auto o = TraceqlSearchOptions(f, kNow);
  EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(o.status().message(), "--since excludes --start and --end");
  f.end = "";
  f.since = "an hour";
  o = TraceqlSearchOptions(f, kNow);
  EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(o.status().message()).rfind("--since: ", 0), 0u);
  f = {};
  f.start = "soon";
  EXPECT_EQ(TraceqlSearchOptions(f, kNow).status().code(), StatusCode::kInvalidArgument);
}

TEST(ServicesTime, AtAndWindow) {
  EXPECT_EQ(*ServicesTime("", "5m", kNow), kNow);
  EXPECT_EQ(*ServicesTime("now-1h", "5m", kNow), kNow - 3'600'000);
  EXPECT_EQ(ServicesTime("soon", "5m", kNow).status().code(), StatusCode::kInvalidArgument);
  for (const char* bad : {"0s", "five", ""}) {
    auto t = ServicesTime("", bad, kNow);
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(t.status().message(), "--window: invalid duration '" + std::string(bad) + "'");
  }
}

TEST(BuildLogsCommand, FlagsBecomeTheCommand) {
  LogsFlags f;
  auto c = BuildLogsCommand(f, /*terminal_color=*/true);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->since_ns, int64_t{3600} * 1'000'000'000);
  EXPECT_EQ(c->format, logql::LogsCommand::Format::kTable);
  EXPECT_TRUE(c->color);
  EXPECT_FALSE(BuildLogsCommand(f, false)->color);
  f.color = "always";
  f.output = "json";
  f.since = "10m";
  f.limit = 3;
  f.follow = true;
  f.query = R"({app="x"} |= "err")";
  c = BuildLogsCommand(f, false);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->color);
  EXPECT_EQ(c->format, logql::LogsCommand::Format::kJson);
  EXPECT_EQ(c->since_ns, int64_t{600} * 1'000'000'000);
  EXPECT_EQ(c->limit, 3u);
  EXPECT_TRUE(c->follow);
  f.color = "never";
  f.output = "raw";
  c = BuildLogsCommand(f, true);
  EXPECT_FALSE(c->color);
  EXPECT_EQ(c->format, logql::LogsCommand::Format::kRaw);
}

TEST(BuildLogsCommand, BadFlagsAreInvalidArgument) {
  LogsFlags f;
  f.since = "long";
  auto c = BuildLogsCommand(f, false);
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(c.status().message()).rfind("--since: ", 0), 0u);
  f = {};
  f.query = "{app=";
  EXPECT_EQ(BuildLogsCommand(f, false).status().code(), StatusCode::kInvalidArgument);
}

TEST(RenderTrace, BadIdAndMissingStore) {
  auto r = RenderTrace("/nonexistent/traces", "xyz", "", {});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "invalid trace id 'xyz': want 32 hex digits");
  r = RenderTrace("/nonexistent/traces", "0123456789abcdef0123456789abcdef", "", {});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("open the trace store '/nonexistent/traces'"), std::string::npos);
}

}  // namespace
}  // namespace telkit::query
