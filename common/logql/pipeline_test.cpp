#include "common/logql/pipeline.h"

#include <gtest/gtest.h>

#include "common/logql/parser.h"

namespace telkit::logql {
namespace {

// Runs the pipeline of `query` over one line of stream {app="a"}.
struct Out {
  bool kept;
  std::string line;
  std::string labels;
};
Out RunQ(const std::string& query, const std::string& line, std::vector<Label> meta = {}) {
  auto e = ParseExpr(query);
  EXPECT_TRUE(e.ok()) << query << ": " << e.status().ToString();
  if (!e.ok()) return {};
  Labels stream{{"app", "a"}};
  LineLabels lbs;
  lbs.Reset(stream, meta);
  LogPipeline p((*e)->selector.stages);
  std::string l = line;
  bool kept = p.Process(1'700'000'000'123'000'000, &l, &lbs);
  return {kept, l, lbs.ToLabels().ToString()};
}

TEST(LogqlPipeline, Durations) {
  EXPECT_DOUBLE_EQ(*ParseDurationSeconds("1h30m"), 5400);
  EXPECT_DOUBLE_EQ(*ParseDurationSeconds("250ms"), 0.25);
  EXPECT_DOUBLE_EQ(*ParseDurationSeconds("1.5s"), 1.5);
  EXPECT_DOUBLE_EQ(*ParseDurationSeconds("2d"), 172800);
  EXPECT_FALSE(ParseDurationSeconds("5").ok());
  EXPECT_FALSE(ParseDurationSeconds("5x").ok());
  EXPECT_DOUBLE_EQ(*ParseBytes("20MB"), 20e6);
  EXPECT_DOUBLE_EQ(*ParseBytes("1KiB"), 1024);
  EXPECT_DOUBLE_EQ(*ParseBytes("3 kb"), 3000);
  EXPECT_FALSE(ParseBytes("3 parsecs").ok());
}

TEST(LogqlPipeline, JsonFlattensAndSanitizes) {
  Out o = RunQ(R"q({app="a"} | json)q", R"q({"a":{"b":1,"c-d":"x\u0041y"},"arr":[1,2],"app":"z","n":null,"t":true})q");
  EXPECT_EQ(o.labels, R"q({a_b="1", a_c_d="xAy", app="a", app_extracted="z", t="true"})q");
  o = RunQ(R"q({app="a"} | json)q", R"q({"a":)q");
  EXPECT_EQ(o.labels, R"q({__error__="JSONParserErr", __error_details__="Value looks like object, but can't find closing '}' symbol", app="a"})q");
  o = RunQ(R"q({app="a"} | json x="a.b", y="arr[1]", z=`o["k k"]`, w="a")q", R"q({"a":{"b":"q"},"arr":[1,{"s":2}],"o":{"k k":3}})q");
  EXPECT_EQ(o.labels, R"q({app="a", w="{\"b\":\"q\"}", x="q", y="{\"s\":2}", z="3"})q");
}

TEST(LogqlPipeline, LogfmtPatternRegexpUnpack) {
  EXPECT_EQ(RunQ(R"q({app="a"} | logfmt)q", R"q(level=info msg="hello \"w\"" dur=5ms flag)q").labels,
            R"q({app="a", dur="5ms", level="info", msg="hello \"w\""})q");
  EXPECT_EQ(RunQ(R"q({app="a"} | logfmt --strict)q", R"q(a=1 b="x)q").labels.substr(0, 32), R"q({__error__="LogfmtParserErr", __)q");
  EXPECT_EQ(RunQ(R"q({app="a"} | pattern "<ip> - - [<_>] \"<method> <path> <_>\" <status>")q",
                R"q(1.2.3.4 - - [10/Oct/2000] "GET /x HTTP/1.0" 200 512)q")
                .labels,
            R"q({app="a", ip="1.2.3.4", method="GET", path="/x", status="200 512"})q");
  EXPECT_EQ(RunQ(R"q({app="a"} | regexp "(?P<verb>[A-Z]+) (?P<path>\\S+)")q", "GET /a/b").labels,
            R"q({app="a", path="/a/b", verb="GET"})q");
  Out u = RunQ(R"q({app="a"} | unpack)q", R"q({"_entry":"original line","pod":"p1","n":3})q");
  EXPECT_EQ(u.line, "original line");
  EXPECT_EQ(u.labels, R"q({app="a", pod="p1"})q");
}

TEST(LogqlPipeline, LabelFiltersAndErrors) {
  EXPECT_TRUE(RunQ(R"q({app="a"} | logfmt | dur > 1ms and size >= 1KB)q", "dur=5ms size=2KB").kept);
  EXPECT_FALSE(RunQ(R"q({app="a"} | logfmt | dur > 1s)q", "dur=5ms").kept);
  EXPECT_TRUE(RunQ(R"q({app="a"} | logfmt | n > 5 or n < 1)q", "n=0").kept);
  EXPECT_FALSE(RunQ(R"q({app="a"} | logfmt | n > 5 or n < 1)q", "n=3").kept);
  Out o = RunQ(R"q({app="a"} | logfmt | n > 5)q", "n=abc");
  EXPECT_TRUE(o.kept);
  EXPECT_NE(o.labels.find(R"q(__error__="LabelFilterErr")q"), std::string::npos);
  EXPECT_FALSE(RunQ(R"q({app="a"} | logfmt | n > 5 | __error__="")q", "n=abc").kept);
  EXPECT_TRUE(RunQ(R"q({app="a"} | trace_id="abc")q", "x", {{"trace_id", "abc"}}).kept);
}

TEST(LogqlPipeline, Templates) {
  Out o = RunQ(R"q({app="a"} | logfmt | line_format "{{.level | ToUpper}} {{ printf \"%05.1f|%d|%s|%d\" (.n | float64) (int .n) .msg .msg }} {{ default \"none\" .missing }} {{ __line__ | len }}")q",
              "level=warn n=3.25 msg=hi");
  EXPECT_EQ(o.line, "WARN 003.2|3|hi|%!d(string=hi) none 24");
  o = RunQ(R"q({app="a"} | line_format "{{ div 1 0 }}")q", "x");
  EXPECT_EQ(o.line, "x");
  EXPECT_EQ(o.labels, R"q({__error__="TemplateFormatErr", __error_details__="div: division by zero", app="a"})q");
  o = RunQ(R"q({app="a"} | logfmt | line_format `{{ if eq .level "warn" }}W{{ else if eq .level "info" }}I{{ else }}?{{ end }}:{{ __timestamp__ | unixEpoch }}`)q",
          "level=info");
  EXPECT_EQ(o.line, "I:1700000000");
  o = RunQ(R"q({app="a"} | line_format `{{ __timestamp__ | date "2006-01-02T15:04:05.000Z07:00 Mon Jan _2 3PM" }}`)q", "x");
  EXPECT_EQ(o.line, "2023-11-14T22:13:20.123Z Tue Nov 14 10PM");
  o = RunQ(R"q({app="a"} | line_format "{{ __timestamp__ }}")q", "x");
  EXPECT_EQ(o.line, "2023-11-14 22:13:20.123 +0000 UTC");
  o = RunQ(R"q({app="a"} | logfmt | label_format lvl=level, up=`{{ .level | upper }}-{{.app}}` | drop n)q",
          "level=info n=1");
  EXPECT_EQ(o.labels, R"q({app="a", lvl="info", up="INFO-a"})q");
  o = RunQ(R"q({app="a"} | line_format `{{ regexReplaceAll "(\\d+)" __line__ "<$1>" }} {{ "abc" | trunc 2 }} {{ replace "a" "b" "aXa" }}`)q",
          "id 42");
  EXPECT_EQ(o.line, "id <42> ab bXb");
  o = RunQ(R"q({app="a"} | decolorize)q", "\x1b[31merror\x1b[0m done");
  EXPECT_EQ(o.line, "error done");
  o = RunQ(R"q({app="a"} | logfmt | keep level, n="1")q", "level=info n=1 m=2");
  EXPECT_EQ(o.labels, R"q({level="info", n="1"})q");
}

}  // namespace
}  // namespace telkit::logql
