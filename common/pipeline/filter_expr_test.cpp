// The filter language: what parses, where errors point, and what matches,
// on items built with the generated protobuf classes.
#include "common/pipeline/filter_expr.h"

#include <gtest/gtest.h>

#include <string>

#include "opentelemetry/proto/logs/v1/logs.pb.h"
#include "opentelemetry/proto/metrics/v1/metrics.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace telkit {
namespace {

namespace otlp = opentelemetry::proto;

template <typename M>
void AddAttr(M* m, const std::string& key, const std::string& value) {
  auto* a = m->add_attributes();
  a->set_key(key);
  a->mutable_value()->set_string_value(value);
}

// Parses `text` for `signal`, expecting it to fail; returns the message.
std::string ParseError(Signal signal, const std::string& text) {
  Result<FilterExpr> e = FilterExpr::Parse(signal, text);
  EXPECT_FALSE(e.ok()) << "parsed: " << text;
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  return e.status().message();
}

TEST(FilterExprParse, ErrorsPointAtTheColumn) {
  EXPECT_EQ(ParseError(Signal::kTraces, "name = x"),
            "column 6: expected an operator (== != =~ !~ < <= > >=) after 'name'");
  EXPECT_EQ(ParseError(Signal::kTraces, "nmae == x").substr(0, 45), "column 1: unknown field 'nmae' for spans (nam");
  EXPECT_EQ(ParseError(Signal::kTraces, "name =="), "column 8: expected a value after '=='");
  EXPECT_EQ(ParseError(Signal::kTraces, "name == \"abc"), "column 9: unterminated string");
  EXPECT_EQ(ParseError(Signal::kTraces, "name == a b"),
            "column 11: expected '&&' or the end of the expression, found 'b'");
  EXPECT_EQ(ParseError(Signal::kTraces, "name == a &&"), "column 13: expected a field");
  EXPECT_EQ(ParseError(Signal::kTraces, "name =~ (a").substr(0, 40), "column 9: invalid regular expression: mi");
  EXPECT_EQ(ParseError(Signal::kTraces, "kind == serv"),
            "column 9: unknown span kind 'serv' (unspecified internal server client producer consumer)");
  EXPECT_EQ(ParseError(Signal::kTraces, "name < 3"), "column 6: 'name' takes == != =~ !~, not '<'");
  EXPECT_EQ(ParseError(Signal::kTraces, "duration_ms > slow"), "column 15: 'duration_ms' compares numbers, not 'slow'");
  EXPECT_EQ(ParseError(Signal::kTraces, "attr.x >= y"), "column 11: '>=' needs a number, not 'y'");
  EXPECT_EQ(ParseError(Signal::kTraces, "attr. == y"), "column 1: 'attr.' needs a key after the dot");
  EXPECT_EQ(ParseError(Signal::kTraces, "trace_id == xyz"), "column 13: 'trace_id' is hex, not 'xyz'");
  EXPECT_EQ(ParseError(Signal::kLogs, "kind == server").substr(0, 45), "column 1: unknown field 'kind' for log record");
  EXPECT_EQ(ParseError(Signal::kMetrics, "type =~ g.*"), "column 6: 'type' takes == !=, not '=~'");
  EXPECT_EQ(ParseError(Signal::kTraces, ""), "column 1: expected a field");
  EXPECT_EQ(ParseError(Signal::kTraces, "&& name == x"), "column 1: expected a field, found '&'");
}

TEST(FilterExprParse, AcceptsTheDocumentedForms) {
  for (const char* text : {"name == x", "name==x", "  name == \"a b\"  ", "attr.http.route =~ /api/.*",
                           "attr.\"my key\" != 3", "kind == server && status == error", "kind == 2",
                           "duration_ms >= 250.5", "resource.service.name == checkout && scope.name == lib",
                           "trace_id == 5B8EFFF798038103D269B633813FC60C", "name =~ \"GET \\\\d+\""}) {
    Result<FilterExpr> e = FilterExpr::Parse(Signal::kTraces, text);
    EXPECT_TRUE(e.ok()) << text << ": " << e.status().message();
  }
  for (const char* text : {"severity >= warn", "severity < 9", "body =~ .*timeout.*", "name == login",
                           "severity_text == ERROR"}) {
    EXPECT_TRUE(FilterExpr::Parse(Signal::kLogs, text).ok()) << text;
  }
  for (const char* text : {"type == histogram", "value > 100", "unit == By", "attr.route == /cart"}) {
    EXPECT_TRUE(FilterExpr::Parse(Signal::kMetrics, text).ok()) << text;
  }
}

class SpanMatch : public ::testing::Test {
 protected:
  void SetUp() override {
    otlp::trace::v1::Span span;
    span.set_trace_id(std::string("\x5b\x8e\xff\xf7\x98\x03\x81\x03\xd2\x69\xb6\x33\x81\x3f\xc6\x0c", 16));
    span.set_span_id(std::string(8, '\x01'));
    span.set_name("GET /cart");
    span.set_kind(otlp::trace::v1::Span::SPAN_KIND_SERVER);
    span.set_start_time_unix_nano(1'000'000'000);
    span.set_end_time_unix_nano(1'250'000'000);  // 250 ms
    span.mutable_status()->set_code(otlp::trace::v1::Status::STATUS_CODE_ERROR);
    span.mutable_status()->set_message("timeout");
    AddAttr(&span, "http.route", "/cart");
    auto* code = span.add_attributes();
    code->set_key("http.status_code");
    code->mutable_value()->set_int_value(503);
    auto* ratio = span.add_attributes();
    ratio->set_key("ratio");
    ratio->mutable_value()->set_double_value(0.25);
    auto* flag = span.add_attributes();
    flag->set_key("cached");
    flag->mutable_value()->set_bool_value(true);
    bytes_ = span.SerializeAsString();
    ASSERT_TRUE(DecodeSpanFields(bytes_, &fields_));
    otlp::resource::v1::Resource resource;
    AddAttr(&resource, "service.name", "checkout");
    resource_bytes_ = resource.SerializeAsString();
    ASSERT_TRUE(CollectAttributes(resource_bytes_, 1, &resource_attributes_));
    subject_.span = &fields_;
    subject_.resource_attributes = &resource_attributes_;
    subject_.scope_name = "checkout-lib";
  }

  bool Matches(const std::string& text) {
    Result<FilterExpr> e = FilterExpr::Parse(Signal::kTraces, text);
    EXPECT_TRUE(e.ok()) << text << ": " << e.status().message();
    return e.ok() && e->Matches(subject_);
  }

  std::string bytes_, resource_bytes_;
  SpanFields fields_;
  AttributeList resource_attributes_;
  FilterSubject subject_;
};

TEST_F(SpanMatch, ExactRegexAndNumbers) {
  EXPECT_TRUE(Matches("name == \"GET /cart\""));
  EXPECT_FALSE(Matches("name == GET"));
  EXPECT_TRUE(Matches("name =~ GET.*"));
  EXPECT_FALSE(Matches("name =~ GET"));  // anchored: the whole name must match
  EXPECT_TRUE(Matches("name !~ POST.*"));
  EXPECT_TRUE(Matches("kind == server && status == error"));
  EXPECT_FALSE(Matches("kind == server && status == ok"));
  EXPECT_TRUE(Matches("kind != client"));
  EXPECT_TRUE(Matches("status.message == timeout"));
  EXPECT_TRUE(Matches("duration_ms == 250"));
  EXPECT_TRUE(Matches("duration_ms > 200 && duration_ms <= 250"));
  EXPECT_FALSE(Matches("duration_ms < 250"));
  EXPECT_TRUE(Matches("trace_id == 5b8efff798038103d269b633813fc60c"));
  EXPECT_TRUE(Matches("trace_id == 5B8EFFF798038103D269B633813FC60C"));
  EXPECT_TRUE(Matches("trace_id =~ 5b8e.*"));
  EXPECT_TRUE(Matches("span_id == 0101010101010101"));
  EXPECT_FALSE(Matches("parent_span_id == 0101010101010101"));  // absent
  EXPECT_TRUE(Matches("scope.name == checkout-lib"));
}

TEST_F(SpanMatch, Attributes) {
  EXPECT_TRUE(Matches("attr.http.route == /cart"));
  EXPECT_TRUE(Matches("attr.http.status_code == 503"));
  EXPECT_TRUE(Matches("attr.http.status_code >= 500 && attr.http.status_code < 600"));
  EXPECT_TRUE(Matches("attr.http.status_code =~ 5.."));
  EXPECT_TRUE(Matches("attr.ratio == 0.25"));
  EXPECT_TRUE(Matches("attr.ratio < 1"));
  EXPECT_TRUE(Matches("attr.cached == true"));
  EXPECT_FALSE(Matches("attr.http.route > 1"));  // a string is not a number
  EXPECT_TRUE(Matches("resource.service.name == checkout"));
  EXPECT_FALSE(Matches("resource.service.name == shop"));
  // Absent: only != and !~ hold.
  EXPECT_FALSE(Matches("attr.missing == x"));
  EXPECT_TRUE(Matches("attr.missing != x"));
  EXPECT_FALSE(Matches("attr.missing =~ .*"));
  EXPECT_TRUE(Matches("attr.missing !~ .*"));
  EXPECT_FALSE(Matches("attr.missing < 5"));
}

TEST(AttributeList, FindsAttributesThatAreNotBackToBack) {
  otlp::trace::v1::Span span;
  AddAttr(&span, "first", "1");
  span.set_name("between");
  AddAttr(&span, "second", "2");
  otlp::trace::v1::Span late;
  AddAttr(&late, "late", "3");
  // A span whose attributes are interrupted by its status (field 15).
  span.mutable_status()->set_message("x");
  const std::string bytes = span.SerializeAsString() + late.SerializeAsString();
  SpanFields fields;
  ASSERT_TRUE(DecodeSpanFields(bytes, &fields));
  for (auto [key, value] : {std::pair{"first", "1"}, {"second", "2"}, {"late", "3"}}) {
    AnyValueView v = fields.attributes.Find(key);
    ASSERT_EQ(v.kind, AnyValueView::Kind::kString) << key;
    EXPECT_EQ(v.str, value);
  }
  EXPECT_EQ(fields.attributes.Find("absent").kind, AnyValueView::Kind::kAbsent);
  EXPECT_EQ(fields.name, "between");
}

TEST(LogMatch, SeverityBodyAndIds) {
  otlp::logs::v1::LogRecord log;
  log.set_severity_number(otlp::logs::v1::SEVERITY_NUMBER_WARN2);
  log.set_severity_text("WARN");
  log.mutable_body()->set_string_value("payment timeout after 3 tries");
  log.set_event_name("payment.failed");
  AddAttr(&log, "order", "1234");
  std::string bytes = log.SerializeAsString();
  LogFields fields;
  ASSERT_TRUE(DecodeLogFields(bytes, &fields));
  FilterSubject subject;
  subject.log = &fields;
  auto matches = [&](const char* text) {
    Result<FilterExpr> e = FilterExpr::Parse(Signal::kLogs, text);
    EXPECT_TRUE(e.ok()) << text << ": " << e.status().message();
    return e.ok() && e->Matches(subject);
  };
  EXPECT_TRUE(matches("severity >= warn"));
  EXPECT_TRUE(matches("severity == 14"));
  EXPECT_FALSE(matches("severity >= error"));
  EXPECT_TRUE(matches("severity_text == WARN"));
  EXPECT_TRUE(matches("body =~ \".*timeout.*\""));
  EXPECT_TRUE(matches("name == payment.failed"));
  EXPECT_TRUE(matches("attr.order == 1234"));
  EXPECT_FALSE(matches("trace_id == 5b8efff798038103d269b633813fc60c"));
  EXPECT_TRUE(matches("trace_id != 5b8efff798038103d269b633813fc60c"));
}

TEST(PointMatch, MetricFieldsAndPointValues) {
  otlp::metrics::v1::NumberDataPoint point;
  point.set_as_int(150);
  AddAttr(&point, "route", "/cart");
  std::string bytes = point.SerializeAsString();
  PointFields fields;
  fields.metric_name = "http.server.requests";
  fields.metric_unit = "1";
  fields.data_field = 7;  // sum
  ASSERT_TRUE(DecodePointFields(bytes, &fields));
  FilterSubject subject;
  subject.point = &fields;
  auto matches = [&](const char* text) {
    Result<FilterExpr> e = FilterExpr::Parse(Signal::kMetrics, text);
    EXPECT_TRUE(e.ok()) << text << ": " << e.status().message();
    return e.ok() && e->Matches(subject);
  };
  EXPECT_TRUE(matches("name == http.server.requests && type == sum"));
  EXPECT_FALSE(matches("type == gauge"));
  EXPECT_TRUE(matches("value > 100 && value == 150"));
  EXPECT_TRUE(matches("attr.route == /cart"));
  EXPECT_TRUE(matches("unit == 1"));
}

}  // namespace
}  // namespace telkit
