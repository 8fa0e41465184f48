#include "common/rules/template.h"

#include <gtest/gtest.h>

#include <cmath>

namespace telkit::rules {
namespace {

std::string Expand(std::string_view text, TemplateData data = {}) {
  auto r = ExpandTemplate(text, data);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : "";
}

TEST(TemplateTest, LabelsValueAndExternalLabels) {
  TemplateData d;
  d.labels = {{"instance", "host:9100"}, {"job", "node"}};
  d.external_labels = {{"cluster", "eu1"}};
  d.value = 0.25;
  EXPECT_EQ(Expand("{{ $labels.instance }} of {{ $labels.job }} is {{ $value }}", d), "host:9100 of node is 0.25");
  EXPECT_EQ(Expand("{{ .Labels.job }}/{{ $externalLabels.cluster }}/{{ .Value }}", d), "node/eu1/0.25");
  EXPECT_EQ(Expand("[{{ $labels.missing }}]", d), "[]");
  EXPECT_EQ(Expand("no actions", d), "no actions");
}

TEST(TemplateTest, GoFloatFormatting) {
  EXPECT_EQ(GoFormatFloat(1), "1");
  EXPECT_EQ(GoFormatFloat(0.1), "0.1");
  EXPECT_EQ(GoFormatFloat(123456), "123456");
  EXPECT_EQ(GoFormatFloat(1e6), "1e+06");
  EXPECT_EQ(GoFormatFloat(1234567), "1.234567e+06");
  EXPECT_EQ(GoFormatFloat(0.0001), "0.0001");
  EXPECT_EQ(GoFormatFloat(0.00001), "1e-05");
  EXPECT_EQ(GoFormatFloat(NAN), "NaN");
  EXPECT_EQ(GoFormatFloat(-INFINITY), "-Inf");
}

// Expected strings from Prometheus' template/template_test.go.
TEST(TemplateTest, HumanizeFunctions) {
  EXPECT_EQ(Humanize(0), "0");
  EXPECT_EQ(Humanize(1234567), "1.235M");
  EXPECT_EQ(Humanize(12345), "12.35k");
  EXPECT_EQ(Humanize(0.001234), "1.234m");
  EXPECT_EQ(Humanize(-1e-9), "-1n");
  EXPECT_EQ(Humanize1024(1048576), "1Mi");
  EXPECT_EQ(Humanize1024(1), "1");
  EXPECT_EQ(HumanizeDuration(0), "0s");
  EXPECT_EQ(HumanizeDuration(1), "1s");
  EXPECT_EQ(HumanizeDuration(60), "1m 0s");
  EXPECT_EQ(HumanizeDuration(3600), "1h 0m 0s");
  EXPECT_EQ(HumanizeDuration(86400), "1d 0h 0m 0s");
  EXPECT_EQ(HumanizeDuration(86400 + 3600 + 61), "1d 1h 1m 1s");
  EXPECT_EQ(HumanizeDuration(0.1), "100ms");
  EXPECT_EQ(HumanizeDuration(1.2345), "1.234s");
  EXPECT_EQ(HumanizePercentage(0.1234567), "12.35%");
  EXPECT_EQ(HumanizeTimestamp(1435065584.128), "2015-06-23 13:19:44.128 +0000 UTC");
  EXPECT_EQ(HumanizeTimestamp(0), "1970-01-01 00:00:00 +0000 UTC");
}

TEST(TemplateTest, PipelinesAndFunctions) {
  TemplateData d;
  d.labels = {{"instance", "a.example.com:9100"}, {"job", "node"}};
  d.value = 0.5;
  EXPECT_EQ(Expand("{{ $value | humanizePercentage }}", d), "50%");
  EXPECT_EQ(Expand("{{ printf \"%.2f\" $value }}", d), "0.50");
  EXPECT_EQ(Expand("{{ printf \"%s=%d\" \"x\" 42 }}"), "x=42");
  EXPECT_EQ(Expand("{{ \"abc\" | toUpper }} {{ \"ABC\" | toLower }} {{ \"hello world\" | title }}"),
            "ABC abc Hello World");
  EXPECT_EQ(Expand("{{ reReplaceAll \"(a)b\" \"x$1\" \"abab\" }}"), "xaxa");
  EXPECT_EQ(Expand("{{ $labels.instance | stripPort }}", d), "a.example.com");
  EXPECT_EQ(Expand("{{ $labels.instance | stripDomain }}", d), "a:9100");
  EXPECT_EQ(Expand("{{ 1234567.0 | humanize }}"), "1.235M");
}

TEST(TemplateTest, ControlStructures) {
  TemplateData d;
  d.labels = {{"severity", "page"}};
  d.value = 3;
  EXPECT_EQ(Expand("{{ if eq $labels.severity \"page\" }}P{{ else }}T{{ end }}", d), "P");
  EXPECT_EQ(Expand("{{ if gt $value 5.0 }}big{{ else if gt $value 2.0 }}mid{{ else }}small{{ end }}", d), "mid");
  EXPECT_EQ(Expand("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", d), "severity=page;");
  EXPECT_EQ(Expand("{{ with $labels.severity }}[{{ . }}]{{ end }}", d), "[page]");
  EXPECT_EQ(Expand("{{ $x := \"a\" }}{{ $x = \"b\" }}{{ $x }}"), "b");
  EXPECT_EQ(Expand("  {{- \"x\" -}}  y {{/* comment */}}z"), "xy z");
}

TEST(TemplateTest, QueryFunctions) {
  TemplateData d;
  d.query = [](const std::string& q) -> Result<std::vector<TemplateSample>> {
    if (q != "up") return InvalidArgumentError("bad query");
    return std::vector<TemplateSample>{{{{"__name__", "up"}, {"instance", "a"}}, 1},
                                       {{{"__name__", "up"}, {"instance", "b"}}, 0}};
  };
  EXPECT_EQ(Expand("{{ query \"up\" | first | value }}", d), "1");
  EXPECT_EQ(Expand("{{ with query \"up\" }}{{ . | first | label \"instance\" }}{{ end }}", d), "a");
  EXPECT_EQ(Expand("{{ range query \"up\" }}{{ .Labels.instance }}:{{ .Value }} {{ end }}", d), "a:1 b:0 ");
  EXPECT_FALSE(ExpandTemplate("{{ query \"nope\" }}", d).ok());
}

TEST(TemplateTest, ErrorsHavePositions) {
  auto r = Template::Parse("ok\n{{ nosuchfunc 1 }}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "template: 2:4: function \"nosuchfunc\" not defined");
  EXPECT_FALSE(Template::Parse("{{ if true }}x").ok());
  EXPECT_FALSE(Template::Parse("{{ end }}").ok());
  EXPECT_FALSE(Template::Parse("{{ $undefined }}").ok());
  EXPECT_FALSE(Template::Parse("{{ \"x\" ").ok());
  EXPECT_FALSE(ExpandTemplate("{{ humanize \"abc\" }}", {}).ok());
}

}  // namespace
}  // namespace telkit::rules
