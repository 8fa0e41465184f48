#include "common/otlp/otlp_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "common/otlp/export_messages.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

using opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest;
using opentelemetry::proto::collector::logs::v1::ExportLogsServiceResponse;
using opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest;
using opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceResponse;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse;
namespace common_pb = opentelemetry::proto::common::v1;

// The trace example of opentelemetry-proto's examples/trace.json, abridged,
// with its upper-case hex ids.
constexpr const char* kSpecTraceExample = R"({
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeSpans": [{
      "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": "I'm a server span",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "kind": 2,
        "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}}]
      }]
    }]
  }]
})";

ExportTraceServiceRequest ParseTraces(std::string_view json) {
  Result<std::string> bytes = OtlpJsonToProtobuf(Signal::kTraces, json);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  ExportTraceServiceRequest req;
  if (bytes.ok()) {
    EXPECT_TRUE(req.ParseFromString(*bytes));
  }
  return req;
}

Status TracesError(std::string_view json) {
  Result<std::string> r = OtlpJsonToProtobuf(Signal::kTraces, json);
  return r.ok() ? Status() : r.status();
}

Status LogsError(std::string_view json) {
  Result<std::string> r = OtlpJsonToProtobuf(Signal::kLogs, json);
  return r.ok() ? Status() : r.status();
}

// A span JSON inside a minimal traces request.
std::string WithSpan(std::string_view span) {
  return R"({"resourceSpans":[{"scopeSpans":[{"spans":[)" + std::string(span) + "]}]}]}";
}

// An attribute value inside a minimal logs request (as the body).
std::string WithBody(std::string_view any_value) {
  return R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":)" + std::string(any_value) + "}]}]}]}";
}

TEST(OtlpJson, SpecExampleDecodes) {
  ExportTraceServiceRequest req = ParseTraces(kSpecTraceExample);
  ASSERT_EQ(req.resource_spans_size(), 1);
  const auto& span = req.resource_spans(0).scope_spans(0).spans(0);
  EXPECT_EQ(span.trace_id(), std::string("\x5b\x8e\xff\xf7\x98\x03\x81\x03\xd2\x69\xb6\x33\x81\x3f\xc6\x0c", 16));
  EXPECT_EQ(span.span_id(), std::string("\xee\xe1\x9b\x7e\xc3\xc1\xb1\x74", 8));
  EXPECT_EQ(span.parent_span_id(), std::string("\xee\xe1\x9b\x7e\xc3\xc1\xb1\x73", 8));
  EXPECT_EQ(span.kind(), opentelemetry::proto::trace::v1::Span::SPAN_KIND_SERVER);
  EXPECT_EQ(span.start_time_unix_nano(), 1544712660000000000ull);
  EXPECT_EQ(span.name(), "I'm a server span");
  EXPECT_EQ(req.resource_spans(0).resource().attributes(0).value().string_value(), "my.service");
  EXPECT_EQ(req.resource_spans(0).scope_spans(0).scope().version(), "1.0.0");
}

TEST(OtlpJson, OutputIsCompactLowerCamelHexAndIntegers) {
  ExportTraceServiceRequest req = ParseTraces(kSpecTraceExample);
  Result<std::string> json = ProtobufToOtlpJson(Signal::kTraces, req.SerializeAsString());
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_EQ(*json,
            R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",)"
            R"("value":{"stringValue":"my.service"}}]},"scopeSpans":[{"scope":{"name":"my.library",)"
            R"("version":"1.0.0","attributes":[{"key":"my.scope.attribute",)"
            R"("value":{"stringValue":"some scope attribute"}}]},"spans":[{)"
            R"("traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",)"
            R"("parentSpanId":"eee19b7ec3c1b173","name":"I'm a server span","kind":2,)"
            R"("startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",)"
            R"("attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}}]}]}]}]})");
}

TEST(OtlpJson, ValueEncodings) {
  ExportLogsServiceRequest req;
  auto* rec = req.add_resource_logs()->add_scope_logs()->add_log_records();
  rec->set_trace_id(std::string("\x00\xab", 2));
  rec->set_severity_number(opentelemetry::proto::logs::v1::SEVERITY_NUMBER_WARN);
  rec->set_flags(1);
  auto add = [&](const char* key) {
    auto* kv = rec->add_attributes();
    kv->set_key(key);
    return kv->mutable_value();
  };
  add("b")->set_bytes_value(std::string("\x00\xff\x10", 3));
  add("i")->set_int_value(std::numeric_limits<int64_t>::min());
  add("d")->set_double_value(0.1);
  add("nan")->set_double_value(std::nan(""));
  add("inf")->set_double_value(-std::numeric_limits<double>::infinity());
  add("nz")->set_double_value(-0.0);
  add("s")->set_string_value("\"\\\n\x01\xc3\xa9");
  add("e")->set_string_value("");
  Result<std::string> json = ProtobufToOtlpJson(Signal::kLogs, req.SerializeAsString());
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_EQ(*json,
            R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":13,"attributes":[)"
            R"({"key":"b","value":{"bytesValue":"AP8Q"}},)"
            R"({"key":"i","value":{"intValue":"-9223372036854775808"}},)"
            R"({"key":"d","value":{"doubleValue":0.1}},)"
            R"({"key":"nan","value":{"doubleValue":"NaN"}},)"
            R"({"key":"inf","value":{"doubleValue":"-Infinity"}},)"
            R"({"key":"nz","value":{"doubleValue":-0.0}},)"
            "{\"key\":\"s\",\"value\":{\"stringValue\":\"\\\"\\\\\\n\\u0001\xc3\xa9\"}},"
            R"({"key":"e","value":{"stringValue":""}}],)"
            R"("flags":1,"traceId":"00ab"}]}]}]})");
  // And back, byte for byte.
  Result<std::string> bytes = OtlpJsonToProtobuf(Signal::kLogs, *json);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, req.SerializeAsString());
}

TEST(OtlpJson, InputAcceptsTheMappingsVariants) {
  // snake_case keys, enum names, numbers for 64-bit ints, strings for doubles,
  // null for absent, unknown keys, lower/upper-case hex, exponent integers.
  ExportMetricsServiceRequest expected;
  auto* metric = expected.add_resource_metrics()->add_scope_metrics()->add_metrics();
  metric->set_name("m");
  metric->mutable_sum()->set_aggregation_temporality(opentelemetry::proto::metrics::v1::AGGREGATION_TEMPORALITY_DELTA);
  auto* p = metric->mutable_sum()->add_data_points();
  p->set_time_unix_nano(1000);
  p->set_start_time_unix_nano(5);
  p->set_as_double(std::numeric_limits<double>::infinity());
  auto* e = p->add_exemplars();
  e->set_span_id(std::string("\xab\xcd", 2));
  e->set_as_int(-3);
  auto* q = metric->mutable_sum()->add_data_points();
  q->set_as_double(2.5);

  const char* json = R"({
    "resource_metrics": [{"scope_metrics": [{"metrics": [{
      "name": "m", "unknownField": {"deep": [1, 2, {"x": null}]},
      "sum": {"aggregation_temporality": "AGGREGATION_TEMPORALITY_DELTA", "isMonotonic": null,
              "data_points": [
                {"time_unix_nano": 1000, "startTimeUnixNano": "5e0", "asDouble": "Infinity",
                 "exemplars": [{"span_id": "ABcd", "asInt": -3.0, "traceId": ""}]},
                {"asDouble": "2.5", "flags": null}]}}]}]}]})";
  Result<std::string> bytes = OtlpJsonToProtobuf(Signal::kMetrics, json);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, expected.SerializeAsString());
}

TEST(OtlpJson, RepeatedKeysKeepTheLast) {
  ExportTraceServiceRequest req = ParseTraces(WithSpan(R"({"name":"x","name":"y","events":[{}],"events":null})"));
  const auto& span = req.resource_spans(0).scope_spans(0).spans(0);
  EXPECT_EQ(span.name(), "y");
  EXPECT_EQ(span.events_size(), 0);
  Status s = TracesError(WithSpan(R"({"name":"x","trace_id":"","traceId":"00"})"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("given twice"), std::string::npos) << s.message();
}

TEST(OtlpJson, EmptyRequests) {
  for (Signal s : {Signal::kTraces, Signal::kMetrics, Signal::kLogs}) {
    Result<std::string> bytes = OtlpJsonToProtobuf(s, " {} \n");
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    EXPECT_EQ(*bytes, "");
    Result<std::string> json = ProtobufToOtlpJson(s, "");
    ASSERT_TRUE(json.ok());
    EXPECT_EQ(*json, "{}");
  }
}

TEST(OtlpJson, BadIdsNameTheField) {
  struct Case {
    const char* span;
    const char* field;
  } cases[] = {
      {R"({"traceId":"5B8EFFF798038103D269B633813FC60G"})", "traceId"},
      {R"({"spanId":"abc"})", "spanId"},
      {R"({"parent_span_id":"0x01020304"})", "parent_span_id"},
      {R"({"links":[{},{"traceId":"zz"}]})", "links[1].traceId"},
      {R"({"spanId":12})", "spanId"},
  };
  for (const Case& c : cases) {
    Status s = TracesError(WithSpan(c.span));
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.span;
    EXPECT_NE(s.message().find(std::string("'resourceSpans[0].scopeSpans[0].spans[0].") + c.field + "'"),
              std::string::npos)
        << s.message();
  }
  Status s = LogsError(R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"q"}]}]}]})");
  EXPECT_NE(s.message().find("logRecords[0].traceId"), std::string::npos) << s.message();
}

TEST(OtlpJson, WrongTypesAndRangesAreInvalidArgument) {
  const std::string bad[] = {
      R"([])",
      R"("text")",
      R"({"resourceSpans":{}})",
      R"({"resourceSpans":[1]})",
      R"({"resourceSpans":[null]})",
      WithSpan(R"({"name":5})"),
      WithSpan(R"({"name":["a"]})"),
      WithSpan(R"({"kind":"SERVER"})"),  // not an enum value name
      WithSpan(R"({"kind":2.5})"),
      WithSpan(R"({"kind":"2x"})"),
      WithSpan(R"({"droppedAttributesCount":-1})"),
      WithSpan(R"({"droppedAttributesCount":4294967296})"),
      WithSpan(R"({"droppedAttributesCount":"4294967296"})"),
      WithSpan(R"({"flags":true})"),
      WithSpan(R"({"startTimeUnixNano":"-1"})"),
      WithSpan(R"({"startTimeUnixNano":"18446744073709551616"})"),
      WithSpan(R"({"startTimeUnixNano":18446744073709551616})"),
      WithSpan(R"({"startTimeUnixNano":1e30})"),
      WithSpan(R"({"startTimeUnixNano":"12abc"})"),
      WithSpan(R"({"startTimeUnixNano":""})"),
      WithSpan(R"({"status":[]})"),
      WithSpan(R"({"events":{}})"),
      WithBody(R"({"intValue":"9223372036854775808"})"),
      WithBody(R"({"intValue":"-9223372036854775809"})"),
      WithBody(R"({"intValue":99999999999999999999999999999999})"),
      WithBody(R"({"intValue":1.5})"),
      WithBody(R"({"doubleValue":"1e999"})"),
      WithBody(R"({"doubleValue":"inf"})"),
      WithBody(R"({"doubleValue":"nan"})"),
      WithBody(R"({"doubleValue":true})"),
      WithBody(R"({"boolValue":"true"})"),
      WithBody(R"({"bytesValue":"not base64!"})"),
      WithBody(R"({"bytesValue":"A"})"),
      WithBody(R"({"stringValue":"a","intValue":"1"})"),  // two members of one oneof
      WithBody(R"({"stringValue":"a","string_value":"b"})"),  // one field under both names
      WithBody(R"({"arrayValue":{"values":[{"kvlistValue":{"values":[{"key":1}]}}]}})"),
  };
  for (const std::string& json : bad) {
    Result<std::string> r = json.find("resourceLogs") != std::string::npos ? OtlpJsonToProtobuf(Signal::kLogs, json)
                                                                          : OtlpJsonToProtobuf(Signal::kTraces, json);
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << json;
    EXPECT_FALSE(r.status().message().empty());
  }
  Status s = LogsError(WithBody(R"({"arrayValue":{"values":[{"kvlistValue":{"values":[{"key":1}]}}]}})"));
  EXPECT_EQ(s.message(),
            "field 'resourceLogs[0].scopeLogs[0].logRecords[0].body.arrayValue.values[0].kvlistValue.values[0].key': "
            "expected a string, got an integer");
}

TEST(OtlpJson, InvalidJsonSaysWhere) {
  Status s = TracesError(R"({"resourceSpans": [})");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("invalid JSON"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("column"), std::string::npos) << s.message();
  EXPECT_EQ(TracesError("").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TracesError("{} {}").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TracesError("{'a':1}").code(), StatusCode::kInvalidArgument);
}

TEST(OtlpJson, HostileInputIsInvalidArgument) {
  // 1 MB of '[' and of nested objects: refused before parsing.
  Status s = TracesError(std::string(1 << 20, '['));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("nested deeper than 256"), std::string::npos) << s.message();
  std::string objects;
  while (objects.size() < (1 << 20)) objects += R"({"a":)";
  EXPECT_EQ(TracesError(objects).code(), StatusCode::kInvalidArgument);
  // Brackets inside strings do not count.
  EXPECT_TRUE(TracesError(WithSpan(R"({"name":")" + std::string(100000, '[') + R"("})")).ok());
  // Huge numbers.
  EXPECT_EQ(TracesError(WithSpan(R"({"startTimeUnixNano":1e400})")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TracesError(WithSpan(R"({"startTimeUnixNano":)" + std::string(100000, '9') + "}")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(LogsError(WithBody(R"({"doubleValue":-1e400})")).code(), StatusCode::kInvalidArgument);
  // Invalid UTF-8, raw and escaped.
  EXPECT_EQ(TracesError(WithSpan("{\"name\":\"\xff\xfe\"}")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TracesError(WithSpan("{\"name\":\"\xc0\x80\"}")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TracesError(WithSpan("{\"name\":\"\xed\xa0\x80\"}")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TracesError(WithSpan(R"({"name":"\ud800"})")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TracesError(WithSpan("{\"na\xff\":1}")).code(), StatusCode::kInvalidArgument);
  // A NUL and a surrogate pair are fine.
  ExportTraceServiceRequest req = ParseTraces(WithSpan(R"({"name":"a\u0000b\ud83d\ude00"})"));
  EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans(0).name(), std::string("a\0b\xf0\x9f\x98\x80", 7));
}

// An AnyValue body nested `levels` times through arrayValue around `innermost`.
std::string NestedBody(int levels, std::string_view innermost = R"({"intValue":"1"})") {
  std::string json;
  for (int i = 0; i < levels; ++i) json += R"({"arrayValue":{"values":[)";
  json += innermost;
  for (int i = 0; i < levels; ++i) json += "]}}";
  return WithBody(json);
}

TEST(OtlpJson, MessageNestingStopsAtProtobufsLimit) {
  // Request(0) > ResourceLogs(1) > ScopeLogs(2) > LogRecord(3) > body AnyValue(4),
  // then 2 levels per array: the innermost AnyValue is at 4 + 2 * levels.
  const int ok_levels = (kMaxMessageNesting - 4) / 2;  // 48: innermost at depth 100
  Result<std::string> bytes = OtlpJsonToProtobuf(Signal::kLogs, NestedBody(ok_levels));
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  ExportLogsServiceRequest req;
  EXPECT_TRUE(req.ParseFromString(*bytes));  // protobuf accepts what we produce
  Result<std::string> json = ProtobufToOtlpJson(Signal::kLogs, *bytes);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_EQ(*OtlpJsonToProtobuf(Signal::kLogs, *json), *bytes);

  // One level more: an (empty) ArrayValue at depth 101.
  Status s = LogsError(NestedBody(ok_levels, R"({"arrayValue":{}})"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("nested deeper than 100"), std::string::npos) << s.message();
  EXPECT_EQ(LogsError(NestedBody(ok_levels + 1)).code(), StatusCode::kInvalidArgument);
}

TEST(OtlpJson, BadProtobufIsInvalidArgument) {
  for (std::string bytes : {std::string("\x0a\x05\x01", 3), std::string("\xff\xff\xff\xff\xff\xff", 6),
                            std::string("\x00", 1), std::string("\x0a\x02\x12\x00\x07", 5)}) {
    Result<std::string> r = ProtobufToOtlpJson(Signal::kTraces, bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  Result<std::string> r = ProtobufToOtlpJson(Signal::kTraces, std::string("\x0a\x03\x0a\x01\xff", 5));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("resource_spans[0].resource"), std::string::npos) << r.status().message();
}

TEST(OtlpJson, NonOtlpSignalsAreUnimplemented) {
  EXPECT_EQ(OtlpJsonToProtobuf(Signal::kPrometheusRemoteWrite, "{}").status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(ProtobufToOtlpJson(Signal::kPrometheusRemoteWrite, "").status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(ProtobufToOtlpJson(static_cast<Signal>(9), "").status().code(), StatusCode::kUnimplemented);
}

TEST(OtlpJson, DocumentAndMessageLevelFunctions) {
  Result<nlohmann::json> doc = ParseJsonDocument(R"({"resourceLogs":[{}]})");
  ASSERT_TRUE(doc.ok());
  ExportLogsServiceRequest req;
  ASSERT_TRUE(OtlpJsonValueToMessage(*doc, &req).ok());
  EXPECT_EQ(req.resource_logs_size(), 1);
  ASSERT_TRUE(OtlpJsonValueToMessage(*doc, &req).ok());  // merges
  EXPECT_EQ(req.resource_logs_size(), 2);
  std::string out = "x=";
  AppendOtlpJson(req, &out);
  EXPECT_EQ(out, R"(x={"resourceLogs":[{},{}]})");
  EXPECT_EQ(ParseJsonDocument("[[[]]]", 3).status().code(), StatusCode::kOk);
  EXPECT_EQ(ParseJsonDocument("[[[[]]]]", 3).status().code(), StatusCode::kInvalidArgument);
}

TEST(OtlpJson, InvalidUtf8InMemoryIsReplaced) {
  common_pb::AnyValue v;
  v.set_string_value(std::string("a\xff" "b\xc3", 4));  // not valid: only possible for a message built in memory
  std::string out;
  AppendOtlpJson(v, &out);
  EXPECT_EQ(out, R"({"stringValue":"a\ufffdb\ufffd"})");
}

TEST(Encodings, Base64) {
  // RFC 4648 section 10.
  const std::pair<std::string, std::string> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    Result<std::string> back = Base64Decode(encoded);
    ASSERT_TRUE(back.ok()) << encoded;
    EXPECT_EQ(*back, plain);
  }
  EXPECT_EQ(*Base64Decode("Zm9vYg"), "foob");                         // unpadded
  EXPECT_EQ(*Base64Decode("-_8"), std::string("\xfb\xff", 2));        // URL-safe
  EXPECT_EQ(*Base64Decode("+/8="), std::string("\xfb\xff", 2));       // standard
  EXPECT_EQ(*Base64Decode("Zh=="), "f");  // unused low bits of the last digit are ignored
  for (const char* bad : {"Z", "Zm9vY", "Zm9v!", "Zm=9", "Zg===", "=", "Zm 9v"}) {
    EXPECT_EQ(Base64Decode(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Encodings, Hex) {
  std::string out;
  AppendHex(std::string("\x00\x1f\xa0\xff", 4), &out);
  EXPECT_EQ(out, "001fa0ff");
  EXPECT_EQ(*HexDecode("001FA0ff"), std::string("\x00\x1f\xa0\xff", 4));
  EXPECT_EQ(*HexDecode(""), "");
  EXPECT_EQ(HexDecode("abc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HexDecode("0g").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HexDecode("-1").status().code(), StatusCode::kInvalidArgument);
}

TEST(ExportMessages, RequestsByType) {
  EXPECT_EQ(NewExportRequest(Signal::kTraces)->GetDescriptor(), ExportTraceServiceRequest::descriptor());
  EXPECT_EQ(NewExportRequest(Signal::kMetrics)->GetDescriptor(), ExportMetricsServiceRequest::descriptor());
  EXPECT_EQ(NewExportRequest(Signal::kLogs)->GetDescriptor(), ExportLogsServiceRequest::descriptor());
  EXPECT_EQ(NewExportRequest(Signal::kPrometheusRemoteWrite), nullptr);
  EXPECT_EQ(NewExportRequest(static_cast<Signal>(200)), nullptr);
  EXPECT_EQ(ItemNoun(Signal::kTraces), "spans");
  EXPECT_EQ(ItemNoun(Signal::kMetrics), "data points");
  EXPECT_EQ(ItemNoun(Signal::kLogs), "log records");
}

TEST(ExportMessages, Responses) {
  EXPECT_EQ(EncodeExportResponse(Signal::kTraces, 0, ""), "");
  EXPECT_EQ(EncodeExportResponseJson(Signal::kTraces, 0, ""), "{}");
  EXPECT_EQ(EncodeExportResponseJson(Signal::kTraces, 3, "bad \"ids\""),
            R"({"partialSuccess":{"rejectedSpans":"3","errorMessage":"bad \"ids\""}})");
  EXPECT_EQ(EncodeExportResponseJson(Signal::kMetrics, 2, ""), R"({"partialSuccess":{"rejectedDataPoints":"2"}})");
  EXPECT_EQ(EncodeExportResponseJson(Signal::kLogs, 0, "warning"), R"({"partialSuccess":{"errorMessage":"warning"}})");

  ExportTraceServiceResponse traces;
  ASSERT_TRUE(traces.ParseFromString(EncodeExportResponse(Signal::kTraces, 3, "why")));
  EXPECT_EQ(traces.partial_success().rejected_spans(), 3);
  EXPECT_EQ(traces.partial_success().error_message(), "why");
  ExportMetricsServiceResponse metrics;
  ASSERT_TRUE(metrics.ParseFromString(EncodeExportResponse(Signal::kMetrics, 4, "")));
  EXPECT_TRUE(metrics.has_partial_success());
  EXPECT_EQ(metrics.partial_success().rejected_data_points(), 4);
  ExportLogsServiceResponse logs;
  ASSERT_TRUE(logs.ParseFromString(EncodeExportResponse(Signal::kLogs, 0, "note")));
  EXPECT_EQ(logs.partial_success().rejected_log_records(), 0);
  EXPECT_EQ(logs.partial_success().error_message(), "note");
  ASSERT_TRUE(logs.ParseFromString(EncodeExportResponse(Signal::kLogs, 0, "")));
  EXPECT_FALSE(logs.has_partial_success());

  EXPECT_EQ(EncodeExportResponse(Signal::kPrometheusRemoteWrite, 1, "x"), "");
  EXPECT_EQ(EncodeExportResponseJson(Signal::kPrometheusRemoteWrite, 1, "x"), "{}");
}

}  // namespace
}  // namespace telkit
