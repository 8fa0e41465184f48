// Requests taken apart and put together at the wire level, checked against
// the generated protobuf classes: identity, item counts, merging.
#include "common/pipeline/request_parts.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/pipeline/proto_wire.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace otlp = opentelemetry::proto;
using otlp::collector::logs::v1::ExportLogsServiceRequest;
using otlp::collector::metrics::v1::ExportMetricsServiceRequest;
using otlp::collector::trace::v1::ExportTraceServiceRequest;

void SetService(otlp::resource::v1::Resource* r, const std::string& name) {
  auto* a = r->add_attributes();
  a->set_key("service.name");
  a->mutable_value()->set_string_value(name);
}

otlp::trace::v1::Span* AddSpan(otlp::trace::v1::ScopeSpans* scope, const std::string& name, char id = 1) {
  auto* s = scope->add_spans();
  s->set_trace_id(std::string(16, id));
  s->set_span_id(std::string(8, id));
  s->set_name(name);
  return s;
}

// One resource ("svc") with one scope ("lib") and the named spans.
ExportTraceServiceRequest Traces(const std::string& service, const std::string& scope,
                                 std::initializer_list<std::string> names) {
  ExportTraceServiceRequest r;
  auto* rs = r.add_resource_spans();
  SetService(rs->mutable_resource(), service);
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name(scope);
  for (const std::string& n : names) AddSpan(ss, n);
  return r;
}

std::shared_ptr<const std::string> Bytes(const google::protobuf::Message& m) {
  return std::make_shared<const std::string>(m.SerializeAsString());
}

ExportMetricsServiceRequest AllMetricKinds() {
  ExportMetricsServiceRequest r;
  auto* rm = r.add_resource_metrics();
  SetService(rm->mutable_resource(), "m");
  rm->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
  auto* sm = rm->add_scope_metrics();
  sm->mutable_scope()->set_name("meter");
  sm->set_schema_url("https://example.com/scope");
  auto* g = sm->add_metrics();
  g->set_name("gauge");
  g->mutable_gauge()->add_data_points()->set_as_double(1.5);
  g->mutable_gauge()->add_data_points()->set_as_int(2);
  auto* s = sm->add_metrics();
  s->set_name("sum");
  s->mutable_sum()->set_is_monotonic(true);
  s->mutable_sum()->add_data_points()->set_as_int(3);
  auto* h = sm->add_metrics();
  h->set_name("histogram");
  auto* hp = h->mutable_histogram()->add_data_points();
  hp->add_bucket_counts(1);
  hp->add_bucket_counts(2);
  hp->add_explicit_bounds(0.5);
  auto* e = sm->add_metrics();
  e->set_name("exponential");
  e->mutable_exponential_histogram()->add_data_points()->set_scale(2);
  e->mutable_exponential_histogram()->add_data_points()->set_scale(3);
  auto* q = sm->add_metrics();
  q->set_name("summary");
  q->mutable_summary()->add_data_points()->set_count(7);
  sm->add_metrics()->set_name("no data");
  return r;
}

TEST(DecomposeRequest, EncodeGivesBackCanonicalBytes) {
  ExportTraceServiceRequest t = Traces("a", "lib", {"x", "y"});
  t.mutable_resource_spans(0)->set_schema_url("https://opentelemetry.io/schemas/1.21.0");  // after the scopes
  t.mutable_resource_spans(0)->mutable_scope_spans(0)->set_schema_url("s");
  t.add_resource_spans();  // an empty resource entry
  ExportLogsServiceRequest l;
  auto* rl = l.add_resource_logs();
  SetService(rl->mutable_resource(), "logs");
  auto* lr = rl->add_scope_logs()->add_log_records();
  lr->mutable_body()->set_string_value("hello");
  lr->set_severity_number(otlp::logs::v1::SEVERITY_NUMBER_WARN);

  for (auto [signal, message] : {std::pair<Signal, const google::protobuf::Message*>{Signal::kTraces, &t},
                                 {Signal::kMetrics, nullptr}, {Signal::kLogs, &l}}) {
    ExportMetricsServiceRequest m = AllMetricKinds();
    const google::protobuf::Message& msg = message ? *message : m;
    auto bytes = Bytes(msg);
    Result<RequestParts> parts = DecomposeRequest(signal, bytes);
    ASSERT_TRUE(parts.ok()) << parts.status().ToString();
    EXPECT_EQ(EncodeRequest(*parts), *bytes) << SignalName(signal);
    EXPECT_EQ(parts->EncodedSize(), bytes->size());
  }
}

TEST(DecomposeRequest, CountsItemsAsOtlpDoes) {
  auto traces = DecomposeRequest(Signal::kTraces, Bytes(Traces("a", "lib", {"x", "y", "z"})));
  ASSERT_TRUE(traces.ok());
  EXPECT_EQ(traces->ItemCount(), 3);
  auto metrics = DecomposeRequest(Signal::kMetrics, Bytes(AllMetricKinds()));
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->ItemCount(), 2 + 1 + 1 + 2 + 1);  // points, not metrics
  EXPECT_EQ(metrics->resources[0].scopes[0].items.size(), 6u);
}

TEST(DecomposeRequest, KeepsUnknownFieldsAndRefusesBrokenFraming) {
  std::string bytes = Traces("a", "lib", {"x"}).SerializeAsString();
  std::string with_unknown = bytes + std::string("\xa0\x06\x01", 3);  // field 100 = 1
  auto parts = DecomposeRequest(Signal::kTraces, std::make_shared<const std::string>(with_unknown));
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(EncodeRequest(*parts), with_unknown);

  auto truncated = DecomposeRequest(Signal::kTraces, std::make_shared<const std::string>(bytes.substr(0, 20)));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(truncated.status().message().find("malformed traces payload at byte"), std::string::npos)
      << truncated.status().message();

  auto wrong_signal = DecomposeRequest(Signal::kPrometheusRemoteWrite, std::make_shared<const std::string>(bytes));
  EXPECT_EQ(wrong_signal.status().code(), StatusCode::kInvalidArgument);
}

TEST(RequestMerger, MergesEntriesWithIdenticalResourceAndScope) {
  RequestMerger merger(Signal::kTraces);
  for (auto request : {Traces("a", "lib", {"1", "2"}), Traces("b", "lib", {"3"}), Traces("a", "lib", {"4"}),
                       Traces("a", "other", {"5"})}) {
    auto parts = DecomposeRequest(Signal::kTraces, Bytes(request));
    ASSERT_TRUE(parts.ok());
    merger.Add(std::move(*parts));
  }
  EXPECT_EQ(merger.item_count(), 5);
  RequestParts merged = merger.Take();
  EXPECT_TRUE(merger.empty());
  std::string encoded = EncodeRequest(merged);
  EXPECT_LE(encoded.size(), merged.EncodedSize());

  ExportTraceServiceRequest got;
  ASSERT_TRUE(got.ParseFromString(encoded));
  ExportTraceServiceRequest want = Traces("a", "lib", {"1", "2", "4"});
  auto* other = want.mutable_resource_spans(0)->add_scope_spans();
  other->mutable_scope()->set_name("other");
  AddSpan(other, "5");
  *want.add_resource_spans() = Traces("b", "lib", {"3"}).resource_spans(0);
  EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString()) << got.DebugString();
}

TEST(RequestMerger, MergedBytesEqualTheUnionOfTheRequests) {
  // Merging keeps every item: the merged request parses to the same spans
  // as the concatenation of the inputs (which protobuf merges by appending).
  RequestMerger merger(Signal::kTraces);
  std::string concatenated;
  for (int i = 0; i < 10; ++i) {
    auto request = Traces(i % 3 == 0 ? "x" : "y", "lib", {"span" + std::to_string(i)});
    concatenated += request.SerializeAsString();
    auto parts = DecomposeRequest(Signal::kTraces, Bytes(request));
    ASSERT_TRUE(parts.ok());
    merger.Add(std::move(*parts));
  }
  ExportTraceServiceRequest merged, union_of;
  ASSERT_TRUE(merged.ParseFromString(EncodeRequest(merger.Take())));
  ASSERT_TRUE(union_of.ParseFromString(concatenated));
  EXPECT_EQ(union_of.resource_spans_size(), 10);
  EXPECT_EQ(merged.resource_spans_size(), 2);
  std::multiset<std::string> a, b;
  for (const auto& rs : merged.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) {
      for (const auto& s : ss.spans()) a.insert(rs.resource().attributes(0).value().string_value() + "/" + s.name());
    }
  }
  for (const auto& rs : union_of.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) {
      for (const auto& s : ss.spans()) b.insert(rs.resource().attributes(0).value().string_value() + "/" + s.name());
    }
  }
  EXPECT_EQ(a, b);
}

TEST(RequestMerger, MergesMetricsByScope) {
  RequestMerger merger(Signal::kMetrics);
  for (int i = 0; i < 2; ++i) {
    auto parts = DecomposeRequest(Signal::kMetrics, Bytes(AllMetricKinds()));
    ASSERT_TRUE(parts.ok());
    merger.Add(std::move(*parts));
  }
  EXPECT_EQ(merger.item_count(), 14);
  ExportMetricsServiceRequest got;
  ASSERT_TRUE(got.ParseFromString(EncodeRequest(merger.Take())));
  ASSERT_EQ(got.resource_metrics_size(), 1);
  ASSERT_EQ(got.resource_metrics(0).scope_metrics_size(), 1);
  EXPECT_EQ(got.resource_metrics(0).scope_metrics(0).metrics_size(), 12);
  EXPECT_EQ(got.resource_metrics(0).schema_url(), "https://opentelemetry.io/schemas/1.21.0");
}

TEST(CountMetricPoints, TheLastDataMemberWins) {
  otlp::metrics::v1::Metric gauge;
  gauge.mutable_gauge()->add_data_points();
  gauge.mutable_gauge()->add_data_points();
  otlp::metrics::v1::Metric sum;
  sum.mutable_sum()->add_data_points();
  // gauge then sum: protobuf keeps the sum (oneof); gauge then gauge: merged.
  Result<int64_t> n = CountMetricPoints(gauge.SerializeAsString() + sum.SerializeAsString());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  n = CountMetricPoints(gauge.SerializeAsString() + gauge.SerializeAsString());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 4);
}

TEST(WireReader, ReportsBrokenInput) {
  for (std::string bad : {std::string("\x0a\x05hi", 4), std::string("\x08", 1), std::string("\x0b\x08\x01", 3),
                          std::string("\x0c", 1), std::string("\x0f", 1), std::string("\x00\x01", 2)}) {
    WireReader r(bad);
    WireField f;
    while (r.Next(&f)) {
    }
    EXPECT_FALSE(r.ok()) << testing::PrintToString(bad);
  }
  std::string group("\x0b\x08\x01\x0c\x10\x02", 6);  // group 1 { 1: 1 }, then 2: 2
  WireReader r(group);
  WireField f;
  ASSERT_TRUE(r.Next(&f));
  EXPECT_EQ(f.wire_type, kWireStartGroup);
  EXPECT_EQ(f.raw.size(), 4u);
  ASSERT_TRUE(r.Next(&f));
  EXPECT_EQ(f.value, 2u);
  EXPECT_FALSE(r.Next(&f));
  EXPECT_TRUE(r.ok());
}

}  // namespace
}  // namespace telkit
