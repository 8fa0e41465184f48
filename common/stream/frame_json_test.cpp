#include "common/stream/frame_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "common/otlp/otlp_json.h"
#include "common/prom/remote_write.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace common_pb = opentelemetry::proto::common::v1;
namespace trace_pb = opentelemetry::proto::trace::v1;
namespace metrics_pb = opentelemetry::proto::metrics::v1;
namespace logs_pb = opentelemetry::proto::logs::v1;
using opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest;
using opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr uint64_t kUint64Max = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kOver2To53 = (uint64_t{1} << 53) + 1;

std::string Bytes(std::initializer_list<int> values) {
  std::string s;
  for (int v : values) s.push_back(static_cast<char>(v));
  return s;
}

const std::string kTraceId = Bytes({0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81,
                                    0x3f, 0xc6, 0x0c});
const std::string kSpanId = Bytes({0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74});
const std::string kParentId = Bytes({0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07});

void SetKv(common_pb::KeyValue* kv, const std::string& key) { kv->set_key(key); }

// Attributes with every AnyValue kind and the awkward values of each.
void AddAllValueKinds(google::protobuf::RepeatedPtrField<common_pb::KeyValue>* attrs) {
  auto add = [&](const std::string& key) {
    common_pb::KeyValue* kv = attrs->Add();
    SetKv(kv, key);
    return kv->mutable_value();
  };
  add("str")->set_string_value("plain");
  add("str.empty")->set_string_value("");  // oneof member at its default: still present
  add("str.unicode")->set_string_value("h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80");
  add("str.escapes")->set_string_value(std::string("quote\" backslash\\ nl\n tab\t cr\r nul") + '\0' +
                                       " bell\x07 del\x7f </script> \xe2\x80\xa8");
  add("bool.true")->set_bool_value(true);
  add("bool.false")->set_bool_value(false);
  add("int.zero")->set_int_value(0);
  add("int.min")->set_int_value(kInt64Min);
  add("int.max")->set_int_value(kInt64Max);
  add("int.neg")->set_int_value(-42);
  add("double.zero")->set_double_value(0.0);
  add("double.negzero")->set_double_value(-0.0);
  add("double.nan")->set_double_value(kNaN);
  add("double.inf")->set_double_value(kInf);
  add("double.neginf")->set_double_value(-kInf);
  add("double.tenth")->set_double_value(0.1);
  add("double.tiny")->set_double_value(4.9406564584124654e-324);
  add("double.max")->set_double_value(std::numeric_limits<double>::max());
  add("double.integral")->set_double_value(3.0);
  add("double.big.integral")->set_double_value(1152921504606846976.0);
  add("bytes")->set_bytes_value(Bytes({0, 1, 2, 0xfe, 0xff, '"', '\\'}));
  add("bytes.empty")->set_bytes_value("");
  common_pb::AnyValue* array = add("array");
  array->mutable_array_value()->add_values()->set_string_value("a");
  array->mutable_array_value()->add_values()->set_int_value(7);
  array->mutable_array_value()->add_values();  // an AnyValue with nothing set
  array->mutable_array_value()->add_values()->mutable_array_value()->add_values()->set_bool_value(true);
  add("array.empty")->mutable_array_value();
  common_pb::AnyValue* kvlist = add("kvlist");
  common_pb::KeyValue* inner = kvlist->mutable_kvlist_value()->add_values();
  inner->set_key("nested");
  inner->mutable_value()->mutable_kvlist_value()->add_values()->set_key("no value");
  add("kvlist.empty")->mutable_kvlist_value();
  add("unset");  // a value with no member
  attrs->Add()->set_key("no value at all");
}

void FillResource(opentelemetry::proto::resource::v1::Resource* resource, const std::string& service) {
  if (!service.empty()) {
    common_pb::KeyValue* kv = resource->add_attributes();
    kv->set_key("service.name");
    kv->mutable_value()->set_string_value(service);
  }
  resource->set_dropped_attributes_count(3);
  common_pb::EntityRef* ref = resource->add_entity_refs();
  ref->set_schema_url("https://opentelemetry.io/schemas/1.26.0");
  ref->set_type("service");
  ref->add_id_keys("service.name");
  ref->add_id_keys("service.namespace");
  ref->add_description_keys("service.version");
}

void FillScope(common_pb::InstrumentationScope* scope) {
  scope->set_name("io.opentelemetry.test");
  scope->set_version("1.2.3");
  scope->add_attributes()->set_key("scope.attr");
  scope->mutable_attributes(0)->mutable_value()->set_int_value(1);
  scope->set_dropped_attributes_count(1);
}

ExportTraceServiceRequest FullTraces() {
  ExportTraceServiceRequest req;
  trace_pb::ResourceSpans* rs = req.add_resource_spans();
  FillResource(rs->mutable_resource(), "checkout");
  rs->set_schema_url("https://opentelemetry.io/schemas/1.26.0");
  trace_pb::ScopeSpans* ss = rs->add_scope_spans();
  FillScope(ss->mutable_scope());
  ss->set_schema_url("scope-schema");

  trace_pb::Span* span = ss->add_spans();
  span->set_trace_id(kTraceId);
  span->set_span_id(kSpanId);
  span->set_trace_state("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  span->set_parent_span_id(kParentId);
  span->set_flags(0x301);
  span->set_name("GET /api/\xe2\x9c\x93");
  span->set_kind(trace_pb::Span::SPAN_KIND_SERVER);
  span->set_start_time_unix_nano(1732486000123456789ull);
  span->set_end_time_unix_nano(kUint64Max);
  AddAllValueKinds(span->mutable_attributes());
  span->set_dropped_attributes_count(4);
  trace_pb::Span::Event* event = span->add_events();
  event->set_time_unix_nano(kOver2To53);
  event->set_name("exception");
  event->add_attributes()->set_key("exception.message");
  event->mutable_attributes(0)->mutable_value()->set_string_value("boom");
  event->set_dropped_attributes_count(2);
  span->add_events();  // an empty event
  span->set_dropped_events_count(5);
  trace_pb::Span::Link* link = span->add_links();
  link->set_trace_id(kTraceId);
  link->set_span_id(kParentId);
  link->set_trace_state("k=v");
  link->add_attributes()->set_key("link.attr");
  link->set_dropped_attributes_count(6);
  link->set_flags(0xffffffffu);
  span->add_links();  // a link with empty ids
  span->set_dropped_links_count(7);
  span->mutable_status()->set_message("deadline exceeded");
  span->mutable_status()->set_code(trace_pb::Status::STATUS_CODE_ERROR);

  trace_pb::Span* root = ss->add_spans();  // a root span: no parent id
  root->set_trace_id(kTraceId);
  root->set_span_id(kParentId);
  root->set_name("root");
  root->set_kind(static_cast<trace_pb::Span::SpanKind>(99));  // unknown enum value
  root->mutable_status();                                     // present but empty

  ss->add_spans();  // a span with nothing set (empty ids)

  trace_pb::ResourceSpans* bare = req.add_resource_spans();  // no service.name
  bare->add_scope_spans()->add_spans()->set_name("x");
  req.add_resource_spans();  // an empty resource
  return req;
}

void FillExemplars(google::protobuf::RepeatedPtrField<metrics_pb::Exemplar>* exemplars) {
  metrics_pb::Exemplar* e = exemplars->Add();
  e->add_filtered_attributes()->set_key("user");
  e->mutable_filtered_attributes(0)->mutable_value()->set_string_value("alice");
  e->set_time_unix_nano(kOver2To53);
  e->set_as_double(-0.0);
  e->set_span_id(kSpanId);
  e->set_trace_id(kTraceId);
  metrics_pb::Exemplar* e2 = exemplars->Add();
  e2->set_as_int(kInt64Min);
  exemplars->Add();  // no value, no ids
}

ExportMetricsServiceRequest FullMetrics() {
  ExportMetricsServiceRequest req;
  metrics_pb::ResourceMetrics* rm = req.add_resource_metrics();
  FillResource(rm->mutable_resource(), "db");
  rm->set_schema_url("rs");
  metrics_pb::ScopeMetrics* sm = rm->add_scope_metrics();
  FillScope(sm->mutable_scope());
  sm->set_schema_url("ss");

  metrics_pb::Metric* gauge = sm->add_metrics();
  gauge->set_name("temperature");
  gauge->set_description("degrees \xe2\x84\x83");
  gauge->set_unit("Cel");
  gauge->add_metadata()->set_key("meta");
  for (double v : {0.0, -0.0, kNaN, kInf, -kInf, 1e-310, 6.02214076e23}) {
    metrics_pb::NumberDataPoint* p = gauge->mutable_gauge()->add_data_points();
    p->set_as_double(v);
    p->set_time_unix_nano(kUint64Max);
  }
  metrics_pb::NumberDataPoint* ip = gauge->mutable_gauge()->add_data_points();
  ip->set_as_int(0);  // oneof at default
  ip->set_flags(1);
  AddAllValueKinds(ip->mutable_attributes());
  FillExemplars(ip->mutable_exemplars());
  gauge->mutable_gauge()->add_data_points();  // no value

  metrics_pb::Metric* sum = sm->add_metrics();
  sum->set_name("requests");
  sum->mutable_sum()->set_aggregation_temporality(metrics_pb::AGGREGATION_TEMPORALITY_CUMULATIVE);
  sum->mutable_sum()->set_is_monotonic(true);
  metrics_pb::NumberDataPoint* sp = sum->mutable_sum()->add_data_points();
  sp->set_start_time_unix_nano(1);
  sp->set_time_unix_nano(kOver2To53);
  sp->set_as_int(kInt64Max);

  metrics_pb::Metric* hist = sm->add_metrics();
  hist->set_name("latency");
  hist->mutable_histogram()->set_aggregation_temporality(static_cast<metrics_pb::AggregationTemporality>(7));
  metrics_pb::HistogramDataPoint* hp = hist->mutable_histogram()->add_data_points();
  hp->set_start_time_unix_nano(10);
  hp->set_time_unix_nano(20);
  hp->set_count(kUint64Max);
  hp->set_sum(0.0);  // optional at its default: present
  for (uint64_t c : {uint64_t{0}, uint64_t{1}, kOver2To53, kUint64Max}) hp->add_bucket_counts(c);
  for (double b : {-kInf, -0.0, 0.005, 1e300}) hp->add_explicit_bounds(b);
  FillExemplars(hp->mutable_exemplars());
  hp->set_flags(1);
  hp->set_min(-0.0);
  hp->set_max(kInf);
  AddAllValueKinds(hp->mutable_attributes());
  hist->mutable_histogram()->add_data_points();  // sum/min/max absent

  metrics_pb::Metric* exp = sm->add_metrics();
  exp->set_name("latency.exp");
  exp->mutable_exponential_histogram()->set_aggregation_temporality(metrics_pb::AGGREGATION_TEMPORALITY_DELTA);
  metrics_pb::ExponentialHistogramDataPoint* ep = exp->mutable_exponential_histogram()->add_data_points();
  ep->set_start_time_unix_nano(1);
  ep->set_time_unix_nano(2);
  ep->set_count(42);
  ep->set_sum(-12.5);
  ep->set_scale(-10);
  ep->set_zero_count(kOver2To53);
  ep->mutable_positive()->set_offset(-2147483647 - 1);
  for (uint64_t c : {uint64_t{3}, uint64_t{0}, kUint64Max}) ep->mutable_positive()->add_bucket_counts(c);
  ep->mutable_negative();  // present, empty
  ep->set_flags(2);
  FillExemplars(ep->mutable_exemplars());
  ep->set_min(kNaN);
  ep->set_max(1.5);
  ep->set_zero_threshold(-0.0);
  AddAllValueKinds(ep->mutable_attributes());
  metrics_pb::ExponentialHistogramDataPoint* ep2 = exp->mutable_exponential_histogram()->add_data_points();
  ep2->set_scale(20);
  ep2->mutable_negative()->set_offset(2147483647);
  ep2->mutable_negative()->add_bucket_counts(1);

  metrics_pb::Metric* summary = sm->add_metrics();
  summary->set_name("rpc.duration");
  metrics_pb::SummaryDataPoint* qp = summary->mutable_summary()->add_data_points();
  qp->set_start_time_unix_nano(5);
  qp->set_time_unix_nano(6);
  qp->set_count(kUint64Max);
  qp->set_sum(-0.0);
  for (double q : {0.0, 0.5, 0.99, 1.0}) {
    metrics_pb::SummaryDataPoint::ValueAtQuantile* v = qp->add_quantile_values();
    v->set_quantile(q);
    v->set_value(q * -3.25);
  }
  qp->add_quantile_values();  // all defaults
  qp->set_flags(1);
  AddAllValueKinds(qp->mutable_attributes());

  sm->add_metrics()->set_name("no data");
  sm->add_metrics()->mutable_summary();  // empty oneof member
  req.add_resource_metrics()->add_scope_metrics();
  return req;
}

ExportLogsServiceRequest FullLogs() {
  ExportLogsServiceRequest req;
  logs_pb::ResourceLogs* rl = req.add_resource_logs();
  FillResource(rl->mutable_resource(), "web \xf0\x9f\x95\xb8");
  rl->set_schema_url("rs");
  logs_pb::ScopeLogs* sl = rl->add_scope_logs();
  FillScope(sl->mutable_scope());
  sl->set_schema_url("ss");
  logs_pb::LogRecord* r = sl->add_log_records();
  r->set_time_unix_nano(kUint64Max);
  r->set_observed_time_unix_nano(kOver2To53);
  r->set_severity_number(logs_pb::SEVERITY_NUMBER_ERROR3);
  r->set_severity_text("ERROR");
  r->mutable_body()->set_string_value("line one\nline two \xe2\x80\x94 \"quoted\"");
  AddAllValueKinds(r->mutable_attributes());
  r->set_dropped_attributes_count(8);
  r->set_flags(1);
  r->set_trace_id(kTraceId);
  r->set_span_id(kSpanId);
  r->set_event_name("app.start");
  logs_pb::LogRecord* r2 = sl->add_log_records();
  r2->set_severity_number(static_cast<logs_pb::SeverityNumber>(-1));  // negative unknown enum value
  common_pb::KeyValueList* body = r2->mutable_body()->mutable_kvlist_value();
  body->add_values()->set_key("msg");
  body->mutable_values(0)->mutable_value()->set_bytes_value(std::string(300, '\xab'));
  sl->add_log_records();  // empty record
  req.add_resource_logs();
  return req;
}

Frame MakeFrame(Signal signal, const google::protobuf::Message& m, uint64_t seq = 12,
                uint64_t time = 1732486000123456789ull) {
  Frame f;
  f.signal = static_cast<uint8_t>(signal);
  f.sequence = seq;
  f.time_unix_nano = time;
  f.payload = m.SerializeAsString();
  return f;
}

// FrameToJsonLine -> ParseJsonLine -> EncodeFrame must give back the same bytes.
void ExpectRoundTrip(const Frame& frame) {
  const std::string line = FrameToJsonLine(frame);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  Result<JsonLine> parsed = ParseJsonLine(line);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString() << "\n" << line.substr(0, 400);
  ASSERT_TRUE(std::holds_alternative<Frame>(*parsed));
  const Frame& back = std::get<Frame>(*parsed);
  EXPECT_EQ(back.signal, frame.signal);
  EXPECT_EQ(back.sequence, frame.sequence);
  EXPECT_EQ(back.time_unix_nano, frame.time_unix_nano);
  EXPECT_EQ(back.flags, frame.flags);
  EXPECT_TRUE(back.payload == frame.payload) << "payload differs for line " << line.substr(0, 400);
  EXPECT_EQ(EncodeFrame(back), EncodeFrame(frame));
}

Status ParseError(std::string_view line) {
  Result<JsonLine> r = ParseJsonLine(line);
  return r.ok() ? Status() : r.status();
}

TEST(FrameJson, StreamHeaderLine) {
  StreamHeader h;
  h.writer_id = 0x00112233aabbccddull;
  EXPECT_EQ(StreamHeaderToJsonLine(h), R"({"stream":{"version":1,"writerId":"00112233aabbccdd"}})");
  Result<JsonLine> back = ParseJsonLine(StreamHeaderToJsonLine(h));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_TRUE(std::holds_alternative<StreamHeader>(*back));
  EXPECT_EQ(std::get<StreamHeader>(*back), h);

  h.writer_id = 0xFFFFFFFFFFFFFFFFull;
  back = ParseJsonLine(R"( {"stream":{"writerId":"FFFFffffFFFFffff"}} )" "\r\n");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(std::get<StreamHeader>(*back), h);
}

TEST(FrameJson, StreamHeaderRejects) {
  EXPECT_EQ(ParseError(R"({"stream":{"version":2,"writerId":"0011223344556677"}})").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseError(R"({"stream":{"version":1,"flags":1}})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseError(R"({"stream":{"writerId":"0011"}})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseError(R"({"stream":{"writerId":"00112233445566zz"}})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseError(R"({"stream":{"writerId":12}})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseError(R"({"stream":1})").code(), StatusCode::kInvalidArgument);
}

TEST(FrameJson, FrameLineShape) {
  ExportTraceServiceRequest req;
  trace_pb::Span* span = req.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(kTraceId);
  span->set_span_id(kSpanId);
  span->set_name("op");
  span->set_kind(trace_pb::Span::SPAN_KIND_CLIENT);
  span->set_start_time_unix_nano(1732486000123456789ull);
  Frame f = MakeFrame(Signal::kTraces, req);
  EXPECT_EQ(FrameToJsonLine(f),
            R"({"seq":"12","time":"1732486000123456789","signal":"traces","flags":0,"payload":)"
            R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",)"
            R"("spanId":"eee19b7ec3c1b174","name":"op","kind":3,"startTimeUnixNano":"1732486000123456789"}]}]}]}})");
  ExpectRoundTrip(f);
}

TEST(FrameJson, PromRwFramesShowTheWriteRequest) {
  TimeSeries ts{Labels{{"__name__", "up"}, {"job", "api"}},
                {{1000, 1}, {2000, INFINITY}},
                {{Labels{{"trace_id", "ab"}}, 0.5, 900}}};
  MetricMetadata md{"up", MetricFamilyType::kGauge, "Up.", ""};
  Frame frame;
  frame.signal = static_cast<uint8_t>(Signal::kPrometheusRemoteWrite);
  frame.sequence = 3;
  frame.payload = EncodeWriteRequest(std::span(&ts, 1), std::span(&md, 1));
  const std::string line = FrameToJsonLine(frame);
  EXPECT_EQ(line,
            R"({"seq":"3","time":"0","signal":"prom-rw","flags":0,"payload":{"metadata":[{"help":"Up.",)"
            R"("metricFamilyName":"up","type":"GAUGE"}],"timeseries":[{"exemplars":[{"labels":[{"name":"trace_id",)"
            R"("value":"ab"}],"timestamp":"900","value":0.5}],"labels":[{"name":"__name__","value":"up"},)"
            R"({"name":"job","value":"api"}],"samples":[{"timestamp":"1000","value":1.0},)"
            R"({"timestamp":"2000","value":"Infinity"}]}]}})");
  ExpectRoundTrip(frame);
  // A stale marker is shown as "NaN": only the exact form keeps its bits.
  ts.samples = {{1000, StaleNaN()}};
  frame.payload = EncodeWriteRequest(std::span(&ts, 1));
  const std::string exact = FrameToJsonLine(frame, {.exact = true});
  EXPECT_NE(exact.find("payloadBase64"), std::string::npos);
  Result<JsonLine> back = ParseJsonLine(exact);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(std::get<Frame>(*back).payload, frame.payload);
  // A metadata type without a name (proto3 enums are open) is shown as its number.
  std::string odd = EncodeWriteRequest({}, std::span(&md, 1));
  odd[odd.find('\x08') + 1] = 9;  // MetricMetadata.type = 9
  frame.payload = odd;
  EXPECT_NE(FrameToJsonLine(frame).find(R"("type":9)"), std::string::npos) << FrameToJsonLine(frame);
  ExpectRoundTrip(frame);
  // Bad JSON payloads are refused with the key named.
  Result<JsonLine> bad = ParseJsonLine(R"({"signal":"prom-rw","payload":{"timeseries":[{"samples":[{"value":true}]}]}})");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("samples[].value"), std::string::npos) << bad.status().message();
}

TEST(FrameJson, RoundTripTraces) { ExpectRoundTrip(MakeFrame(Signal::kTraces, FullTraces())); }
TEST(FrameJson, RoundTripMetrics) { ExpectRoundTrip(MakeFrame(Signal::kMetrics, FullMetrics())); }
TEST(FrameJson, RoundTripLogs) { ExpectRoundTrip(MakeFrame(Signal::kLogs, FullLogs(), 0, 0)); }

TEST(FrameJson, RoundTripExtremeHeaderFields) {
  Frame f = MakeFrame(Signal::kLogs, FullLogs(), kUint64Max, kUint64Max);
  f.flags = 0xF0;  // compatible flag bits
  ExpectRoundTrip(f);
  ExpectRoundTrip(MakeFrame(Signal::kMetrics, ExportMetricsServiceRequest()));  // empty payload
}

TEST(FrameJson, RoundTripRandomNumbers) {
  // Doubles from random bit patterns (every exponent), and random 64-bit ints.
  std::mt19937_64 rng(20241125);
  ExportMetricsServiceRequest req;
  metrics_pb::Metric* m = req.add_resource_metrics()->add_scope_metrics()->add_metrics();
  metrics_pb::Histogram* h = m->mutable_histogram();
  metrics_pb::HistogramDataPoint* p = h->add_data_points();
  for (int i = 0; i < 4000; ++i) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof(d));
    if (std::isnan(d)) continue;  // JSON has one NaN; payload bits are not kept
    p->add_explicit_bounds(d);
    p->add_bucket_counts(rng());
    common_pb::KeyValue* kv = p->add_attributes();
    kv->set_key(std::to_string(i));
    kv->mutable_value()->set_int_value(static_cast<int64_t>(rng()));
  }
  ExpectRoundTrip(MakeFrame(Signal::kMetrics, req));
}

TEST(FrameJson, UnparsablePromRwAndUnknownSignalsUseBase64) {
  Frame prom;
  prom.signal = static_cast<uint8_t>(Signal::kPrometheusRemoteWrite);
  prom.sequence = 3;
  prom.time_unix_nano = 4;
  prom.payload = Bytes({0x0a, 0x00, 0xff, 0x10});
  EXPECT_EQ(FrameToJsonLine(prom),
            R"({"seq":"3","time":"4","signal":"prom-rw","flags":0,"payloadBase64":"CgD/EA==",)"
            R"("payloadError":"malformed remote-write request: not a prometheus.WriteRequest protobuf"})");
  ExpectRoundTrip(prom);

  Frame unknown;
  unknown.signal = 9;
  unknown.sequence = 1;
  unknown.payload = "anything";
  EXPECT_EQ(FrameToJsonLine(unknown), R"({"seq":"1","time":"0","signal":9,"flags":0,"payloadBase64":"YW55dGhpbmc="})");
  ExpectRoundTrip(unknown);

  Frame zero;  // signal 0 and an empty payload
  EXPECT_EQ(FrameToJsonLine(zero), R"({"seq":"0","time":"0","signal":0,"flags":0,"payloadBase64":""})");
  ExpectRoundTrip(zero);
}

TEST(FrameJson, UndecodablePayloadKeepsBytesAndSaysWhy) {
  Frame f;
  f.signal = static_cast<uint8_t>(Signal::kTraces);
  f.sequence = 7;
  f.payload = Bytes({0x0a, 0x05, 0x01});  // length past the end
  const std::string line = FrameToJsonLine(f);
  EXPECT_NE(line.find(R"("payloadBase64":"CgUB")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("payloadError":")"), std::string::npos) << line;
  EXPECT_EQ(line.find(R"("payload":)"), std::string::npos) << line;
  ExpectRoundTrip(f);

  f.payload = "\x0a\x03\x0a\x01\xff";  // a string with invalid UTF-8 deep inside
  ExpectRoundTrip(f);
}

TEST(FrameJson, BareRequestsBecomeFrames) {
  struct Case {
    const char* json;
    Signal signal;
  } cases[] = {
      {R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a","traceId":"5B8EFFF798038103D269B633813FC60C"}]}]}]})",
       Signal::kTraces},
      {R"({"resource_spans":[]})", Signal::kTraces},
      {R"({"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"asInt":"5"}]}}]}]}]})",
       Signal::kMetrics},
      {R"({"resource_metrics":[]})", Signal::kMetrics},
      {R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"hi"}}]}]}]})", Signal::kLogs},
      {R"({"resource_logs":[], "extra": true})", Signal::kLogs},
  };
  for (const Case& c : cases) {
    Result<JsonLine> r = ParseJsonLine(c.json);
    ASSERT_TRUE(r.ok()) << c.json << ": " << r.status().ToString();
    ASSERT_TRUE(std::holds_alternative<Frame>(*r));
    const Frame& f = std::get<Frame>(*r);
    EXPECT_EQ(f.signal, static_cast<uint8_t>(c.signal));
    EXPECT_EQ(f.sequence, 0u);
    EXPECT_EQ(f.time_unix_nano, 0u);
    Result<std::string> expected = OtlpJsonToProtobuf(c.signal, c.json);
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(f.payload, *expected);
  }
  Result<JsonLine> r = ParseJsonLine(cases[0].json);
  ExportTraceServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(std::get<Frame>(*r).payload));
  EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans(0).trace_id(), kTraceId);
}

TEST(FrameJson, FrameFieldsAreLenient) {
  Result<JsonLine> r = ParseJsonLine(R"({"seq":5,"time":6,"signal":"logs","payload":{"resource_logs":[{}]},
                                         "payloadError":"ignored","future":[1,2]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Frame& f = std::get<Frame>(*r);
  EXPECT_EQ(f.sequence, 5u);
  EXPECT_EQ(f.time_unix_nano, 6u);
  EXPECT_EQ(f.signal, static_cast<uint8_t>(Signal::kLogs));
  ExportLogsServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(f.payload));
  EXPECT_EQ(req.resource_logs_size(), 1);

  r = ParseJsonLine(R"({"signal":2})");  // no payload: an empty request
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(std::get<Frame>(*r).payload, "");
  EXPECT_EQ(std::get<Frame>(*r).signal, 2);

  r = ParseJsonLine(R"({"signal":"prom-rw","payloadBase64":"CgD_EA"})");  // URL-safe, unpadded
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(std::get<Frame>(*r).payload, Bytes({0x0a, 0x00, 0xff, 0x10}));
}

TEST(FrameJson, BadLinesAreRejected) {
  const char* bad[] = {
      "",
      "not json",
      "[1,2]",
      "\"string\"",
      "{}",
      R"({"seq":"1"})",                                                   // no signal, no request key
      R"({"signal":"spans"})",                                            // unknown signal name
      R"({"signal":256})",                                                // out of range
      R"({"signal":-1})",
      R"({"signal":"traces","seq":"-1"})",
      R"({"signal":"traces","seq":"18446744073709551616"})",              // > uint64
      R"({"signal":"traces","time":1.5})",
      R"({"signal":"traces","flags":256})",
      R"({"signal":"traces","payload":[]})",
      R"({"signal":"traces","payload":{"resourceMetrics":[]}})",          // wrong signal's request
      R"({"signal":"prom-rw","payload":[]})",                              // not a WriteRequest object
      R"({"signal":9,"payload":{}})",
      R"({"signal":"traces","payloadBase64":"!!!!"})",
      R"({"signal":"traces","payloadBase64":5})",
      R"({"signal":"traces","payload":{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"xyz"}]}]}]}})",
      R"({"resourceSpans":[],"resourceLogs":[]})",                        // two signals
      R"({"resourceSpans":{}})",
      R"({"signal":"traces"} trailing)",
      "{\"signal\":\"traces\",\"x\":\"\xff\"}",                           // invalid UTF-8
  };
  for (const char* line : bad) {
    Status s = ParseError(line);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "line: " << line << " -> " << s.ToString();
    EXPECT_FALSE(s.message().empty());
  }
  Status s = ParseError(
      R"({"signal":"traces","payload":{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"xyz"}]}]}]}})");
  EXPECT_NE(s.message().find("resourceSpans[0].scopeSpans[0].spans[0].spanId"), std::string::npos) << s.message();
}

TEST(FrameJson, HostileLinesAreRejected) {
  EXPECT_EQ(ParseError(std::string(1 << 20, '[')).code(), StatusCode::kInvalidArgument);
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"payload":)";
  EXPECT_EQ(ParseError(objects).code(), StatusCode::kInvalidArgument);
  std::string deep_payload = R"({"signal":"logs","payload":{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":)";
  for (int i = 0; i < 200; ++i) deep_payload += R"({"arrayValue":{"values":[)";
  EXPECT_EQ(ParseError(deep_payload).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace telkit

namespace telkit {
namespace {

// What SDKs send: a span with dropped_attributes_count = 0 written out
// explicitly (field 10, varint 0), which canonical protobuf omits.
Frame NonCanonicalTraces() {
  ExportTraceServiceRequest req;
  auto* span = req.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, '\x01'));
  span->set_span_id(std::string(8, '\x02'));
  span->set_name("explicit-defaults");
  std::string bytes;
  req.SerializeToString(&bytes);
  // Rewrite the innermost message with an explicit zero appended: rebuild the
  // three length prefixes around it (all lengths here are < 128).
  std::string span_bytes = span->SerializeAsString() + std::string("\x50\x00", 2);
  std::string scope_spans = "\x12" + std::string(1, static_cast<char>(span_bytes.size())) + span_bytes;
  std::string resource_spans = "\x12" + std::string(1, static_cast<char>(scope_spans.size())) + scope_spans;
  Frame f;
  f.signal = static_cast<uint8_t>(Signal::kTraces);
  f.sequence = 5;
  f.time_unix_nano = 77;
  f.payload = "\x0a" + std::string(1, static_cast<char>(resource_spans.size())) + resource_spans;
  ExportTraceServiceRequest check;
  EXPECT_TRUE(check.ParseFromString(f.payload));
  EXPECT_NE(check.SerializeAsString(), f.payload);  // really not canonical
  return f;
}

TEST(FrameJson, ExactModeKeepsNonCanonicalBytes) {
  Frame f = NonCanonicalTraces();
  std::string plain = FrameToJsonLine(f);
  EXPECT_EQ(plain.find("payloadBase64"), std::string::npos);
  auto back = ParseJsonLine(plain);
  ASSERT_TRUE(back.ok());
  EXPECT_NE(EncodeFrame(std::get<Frame>(*back)), EncodeFrame(f));  // canonicalised

  std::string exact = FrameToJsonLine(f, {.exact = true});
  EXPECT_NE(exact.find("\"payload\":{"), std::string::npos);
  EXPECT_NE(exact.find("payloadBase64"), std::string::npos);
  back = ParseJsonLine(exact);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(EncodeFrame(std::get<Frame>(*back)), EncodeFrame(f));  // byte-identical
}

TEST(FrameJson, ExactModeAddsNothingForCanonicalPayloads) {
  Frame f = MakeFrame(Signal::kLogs, FullLogs(), 0, 0);
  EXPECT_EQ(FrameToJsonLine(f, {.exact = true}), FrameToJsonLine(f));
}

TEST(FrameJson, AnEditedPayloadWinsOverStaleBytes) {
  Frame f = NonCanonicalTraces();
  std::string exact = FrameToJsonLine(f, {.exact = true});
  size_t at = exact.find("explicit-defaults");
  ASSERT_NE(at, std::string::npos);
  exact.replace(at, 17, "edited-by-a-human");
  auto back = ParseJsonLine(exact);
  ASSERT_TRUE(back.ok());
  ExportTraceServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(std::get<Frame>(*back).payload));
  EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans(0).name(), "edited-by-a-human");
}

}  // namespace
}  // namespace telkit
