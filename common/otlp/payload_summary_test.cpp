#include "common/otlp/payload_summary.h"

#include <google/protobuf/stubs/logging.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

using opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest;
using opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
namespace common_pb = opentelemetry::proto::common::v1;
namespace metrics_pb = opentelemetry::proto::metrics::v1;

// ---- wire-format building blocks for hand-made payloads

std::string Varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
  return s;
}
std::string Tag(uint32_t number, uint32_t wire) { return Varint(uint64_t{number} << 3 | wire); }
std::string Len(uint32_t number, const std::string& body) { return Tag(number, 2) + Varint(body.size()) + body; }

void SetService(opentelemetry::proto::resource::v1::Resource* resource, const std::string& name) {
  common_pb::KeyValue* kv = resource->add_attributes();
  kv->set_key("service.name");
  kv->mutable_value()->set_string_value(name);
}

ExportTraceServiceRequest SampleTraces() {
  ExportTraceServiceRequest req;
  auto* rs = req.add_resource_spans();
  rs->mutable_resource()->add_attributes()->set_key("host.name");
  SetService(rs->mutable_resource(), "checkout");
  for (int s = 0; s < 2; ++s) {
    auto* ss = rs->add_scope_spans();
    ss->mutable_scope()->set_name("lib");
    for (int i = 0; i < 3; ++i) {
      auto* span = ss->add_spans();
      span->set_trace_id(std::string(16, '\x01'));
      span->set_span_id(std::string(8, static_cast<char>(i + 1)));
      span->set_name("op" + std::to_string(i));
      span->set_start_time_unix_nano(1000 + i);
      span->add_attributes()->set_key("k");
      span->mutable_attributes(0)->mutable_value()->mutable_array_value()->add_values()->set_double_value(1.5);
      span->add_events()->set_name("e");
      span->add_links()->set_trace_id(std::string(16, '\x02'));
      span->mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_OK);
    }
  }
  auto* anonymous = req.add_resource_spans();  // no service.name
  anonymous->add_scope_spans()->add_spans()->set_name("x");
  auto* numeric = req.add_resource_spans();  // service.name that is not a string
  common_pb::KeyValue* kv = numeric->mutable_resource()->add_attributes();
  kv->set_key("service.name");
  kv->mutable_value()->set_int_value(5);
  SetService(numeric->mutable_resource(), "second");  // the first one counts
  req.add_resource_spans();  // empty
  return req;
}

ExportMetricsServiceRequest SampleMetrics() {
  ExportMetricsServiceRequest req;
  auto* rm = req.add_resource_metrics();
  SetService(rm->mutable_resource(), "db");
  auto* sm = rm->add_scope_metrics();
  auto* gauge = sm->add_metrics();
  gauge->set_name("g");
  for (int i = 0; i < 2; ++i) gauge->mutable_gauge()->add_data_points()->set_as_double(i);
  auto* sum = sm->add_metrics();
  sum->set_name("s");
  for (int i = 0; i < 3; ++i) sum->mutable_sum()->add_data_points()->set_as_int(i);
  auto* hist = sm->add_metrics();
  hist->set_name("h");
  auto* hp = hist->mutable_histogram()->add_data_points();
  hp->add_bucket_counts(1);
  hp->add_bucket_counts(2);
  hp->add_explicit_bounds(0.5);
  hp->add_exemplars()->set_as_double(1);
  auto* exp = sm->add_metrics();
  exp->set_name("e");
  for (int i = 0; i < 4; ++i) {
    auto* ep = exp->mutable_exponential_histogram()->add_data_points();
    ep->set_scale(-i);
    ep->mutable_positive()->add_bucket_counts(i);
    ep->mutable_positive()->add_bucket_counts(300);
  }
  auto* summary = sm->add_metrics();
  summary->set_name("q");
  for (int i = 0; i < 5; ++i) summary->mutable_summary()->add_data_points()->add_quantile_values()->set_value(i);
  sm->add_metrics()->set_name("no data");
  auto* rm2 = req.add_resource_metrics();
  SetService(rm2->mutable_resource(), "web");
  rm2->add_scope_metrics()->add_metrics()->mutable_gauge()->add_data_points();
  return req;
}

ExportLogsServiceRequest SampleLogs() {
  ExportLogsServiceRequest req;
  auto* rl = req.add_resource_logs();
  SetService(rl->mutable_resource(), "web \xe2\x9c\x93");
  auto* sl = rl->add_scope_logs();
  for (int i = 0; i < 4; ++i) {
    auto* r = sl->add_log_records();
    r->mutable_body()->set_string_value("line " + std::to_string(i));
    r->set_severity_number(opentelemetry::proto::logs::v1::SEVERITY_NUMBER_INFO);
    r->mutable_body()->mutable_kvlist_value()->add_values()->set_key("a");
  }
  rl->add_scope_logs()->add_log_records();
  return req;
}

// The summary computed from the parsed message, the way the scan must see it.
template <typename Request>
bool ReferenceSummary(Signal signal, const std::string& bytes, PayloadSummary* out) {
  google::protobuf::LogSilencer silence;  // protobuf logs about invalid UTF-8
  Request req;
  if (!req.ParseFromString(bytes)) return false;
  *out = PayloadSummary{};
  out->signal = signal;
  auto service = [](const opentelemetry::proto::resource::v1::Resource& r) {
    for (const auto& kv : r.attributes()) {
      if (kv.key() == "service.name") {
        return kv.value().value_case() == common_pb::AnyValue::kStringValue ? kv.value().string_value()
                                                                            : std::string();
      }
    }
    return std::string();
  };
  if constexpr (std::is_same_v<Request, ExportTraceServiceRequest>) {
    for (const auto& rs : req.resource_spans()) {
      ResourceSummary r{service(rs.resource()), 0};
      for (const auto& ss : rs.scope_spans()) r.items += ss.spans_size();
      out->resources.push_back(r);
    }
  } else if constexpr (std::is_same_v<Request, ExportMetricsServiceRequest>) {
    for (const auto& rm : req.resource_metrics()) {
      ResourceSummary r{service(rm.resource()), 0};
      for (const auto& sm : rm.scope_metrics()) {
        for (const auto& m : sm.metrics()) {
          switch (m.data_case()) {
            case metrics_pb::Metric::kGauge: r.items += m.gauge().data_points_size(); break;
            case metrics_pb::Metric::kSum: r.items += m.sum().data_points_size(); break;
            case metrics_pb::Metric::kHistogram: r.items += m.histogram().data_points_size(); break;
            case metrics_pb::Metric::kExponentialHistogram:
              r.items += m.exponential_histogram().data_points_size();
              break;
            case metrics_pb::Metric::kSummary: r.items += m.summary().data_points_size(); break;
            default: break;
          }
        }
      }
      out->resources.push_back(r);
    }
  } else {
    for (const auto& rl : req.resource_logs()) {
      ResourceSummary r{service(rl.resource()), 0};
      for (const auto& sl : rl.scope_logs()) r.items += sl.log_records_size();
      out->resources.push_back(r);
    }
  }
  for (const auto& r : out->resources) out->total_items += r.items;
  return true;
}

bool Reference(Signal signal, const std::string& bytes, PayloadSummary* out) {
  switch (signal) {
    case Signal::kTraces: return ReferenceSummary<ExportTraceServiceRequest>(signal, bytes, out);
    case Signal::kMetrics: return ReferenceSummary<ExportMetricsServiceRequest>(signal, bytes, out);
    default: return ReferenceSummary<ExportLogsServiceRequest>(signal, bytes, out);
  }
}

// The scan agrees with ParseFromString on validity, and on the summary.
void ExpectAgreesWithProtobuf(Signal signal, const std::string& bytes, const std::string& what) {
  PayloadSummary expected;
  const bool parses = Reference(signal, bytes, &expected);
  Result<PayloadSummary> got = SummarizePayload(signal, bytes);
  ASSERT_EQ(got.ok(), parses) << what << ": " << got.status().ToString();
  if (parses) {
    EXPECT_EQ(*got, expected) << what;
  } else {
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(PayloadSummary, Traces) {
  Result<PayloadSummary> s = SummarizePayload(Signal::kTraces, SampleTraces().SerializeAsString());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->signal, Signal::kTraces);
  ASSERT_EQ(s->resources.size(), 4u);
  EXPECT_EQ(s->resources[0], (ResourceSummary{"checkout", 6}));
  EXPECT_EQ(s->resources[1], (ResourceSummary{"", 1}));
  EXPECT_EQ(s->resources[2], (ResourceSummary{"", 0}));
  EXPECT_EQ(s->resources[3], (ResourceSummary{"", 0}));
  EXPECT_EQ(s->total_items, 7u);
}

TEST(PayloadSummary, MetricsCountEveryDataPointKind) {
  Result<PayloadSummary> s = SummarizePayload(Signal::kMetrics, SampleMetrics().SerializeAsString());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->resources.size(), 2u);
  EXPECT_EQ(s->resources[0], (ResourceSummary{"db", 2 + 3 + 1 + 4 + 5}));
  EXPECT_EQ(s->resources[1], (ResourceSummary{"web", 1}));
  EXPECT_EQ(s->total_items, 16u);
}

TEST(PayloadSummary, Logs) {
  Result<PayloadSummary> s = SummarizePayload(Signal::kLogs, SampleLogs().SerializeAsString());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->resources.size(), 1u);
  EXPECT_EQ(s->resources[0], (ResourceSummary{"web \xe2\x9c\x93", 5}));
  EXPECT_EQ(s->total_items, 5u);
}

TEST(PayloadSummary, EmptyPayload) {
  for (Signal signal : {Signal::kTraces, Signal::kMetrics, Signal::kLogs}) {
    Result<PayloadSummary> s = SummarizePayload(signal, "");
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->resources.empty());
    EXPECT_EQ(s->total_items, 0u);
  }
}

TEST(PayloadSummary, NonOtlpSignalIsUnimplemented) {
  EXPECT_EQ(SummarizePayload(Signal::kPrometheusRemoteWrite, "").status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(ValidateOtlpPayload(static_cast<Signal>(7), "").code(), StatusCode::kUnimplemented);
}

TEST(PayloadSummary, MergeSemanticsMatchProtobuf) {
  // A Metric whose oneof appears as gauge (2 points), then sum (1 point), then
  // sum again (1 point): protobuf keeps the merged sum, 2 points.
  const std::string gauge = Len(5, Len(1, "") + Len(1, ""));
  const std::string sum = Len(7, Len(1, ""));
  const std::string scope_metrics = Len(2, Len(2, gauge + sum + sum));
  // KeyValue "service.name" whose value appears twice, a string then an int:
  // the merged AnyValue holds the int, so there is no service name.
  const std::string kv_int_wins =
      Len(1, Len(1, "service.name") + Len(2, Len(1, "a")) + Len(2, Tag(3, 0) + Varint(1)));
  // KeyValue whose key appears twice: the last one counts.
  const std::string kv_last_key = Len(1, Len(1, "other") + Len(1, "service.name") + Len(2, Len(1, "b")));
  const std::string kv_later = Len(1, Len(1, "service.name") + Len(2, Len(1, "c")));

  // Resource given twice: attributes concatenate; the first service.name wins.
  const std::string a = Len(1, Len(1, kv_int_wins) + Len(1, kv_last_key) + scope_metrics);
  const std::string b = Len(1, Len(1, kv_last_key) + Len(1, kv_later) + scope_metrics);
  ExpectAgreesWithProtobuf(Signal::kMetrics, a, "merge a");
  ExpectAgreesWithProtobuf(Signal::kMetrics, b, "merge b");
  Result<PayloadSummary> s = SummarizePayload(Signal::kMetrics, a + b);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->resources.size(), 2u);
  EXPECT_EQ(s->resources[0], (ResourceSummary{"", 2}));
  EXPECT_EQ(s->resources[1], (ResourceSummary{"b", 2}));
}

TEST(PayloadSummary, WireEdgeCasesAgreeWithProtobuf) {
  const std::string span = Len(5, "name");
  const auto traces = [&](const std::string& span_body) { return Len(1, Len(2, Len(2, span_body))); };
  const std::pair<std::string, std::string> cases[] = {
      {"tag 0", std::string(1, '\0')},
      {"field number 0", Tag(0, 0) + Varint(1)},
      {"wire type 6", Tag(9, 6)},
      {"wire type 7", Tag(9, 7)},
      {"stray end group", Tag(9, 4)},
      {"unknown group", Tag(9, 3) + Tag(1, 0) + Varint(5) + Tag(9, 4)},
      {"nested groups", Tag(9, 3) + Tag(2, 3) + Tag(2, 4) + Tag(9, 4)},
      {"unterminated group", Tag(9, 3) + Tag(1, 0) + Varint(5)},
      {"mismatched group end", Tag(9, 3) + Tag(8, 4)},
      {"unknown varint", Tag(99, 0) + Varint(UINT64_MAX)},
      {"unknown fixed", Tag(99, 1) + std::string(8, 'x') + Tag(98, 5) + std::string(4, 'y')},
      {"truncated fixed", Tag(99, 1) + std::string(7, 'x')},
      {"11-byte varint", Tag(99, 0) + std::string(10, '\x80') + std::string(1, '\x01')},
      {"10-byte varint high bits", Tag(99, 0) + std::string(9, '\xff') + std::string(1, '\x7f')},
      {"5-byte tag", std::string("\x88\x80\x80\x80\x00", 5) + Varint(1)},
      {"6-byte tag", std::string("\x88\x80\x80\x80\x80\x00", 6) + Varint(1)},
      {"6-byte length", Tag(99, 2) + std::string("\x80\x80\x80\x80\x80\x00", 6)},
      {"length past end", Tag(99, 2) + Varint(5) + "abc"},
      {"truncated tag", std::string("\x88", 1)},
      {"known field, wrong wire type", Len(1, Tag(1, 0) + Varint(3))},
      {"span name invalid UTF-8", traces(Len(5, "\xff"))},
      {"overlong UTF-8", traces(Len(5, "\xc0\x80"))},
      {"surrogate UTF-8", traces(Len(5, "\xed\xa0\x80"))},
      {"above U+10FFFF", traces(Len(5, "\xf4\x90\x80\x80"))},
      {"lead byte F5", traces(Len(5, "\xf5\x80\x80\x80"))},
      {"lead byte C1", traces(Len(5, "\xc1\xbf"))},
      {"lone continuation byte", traces(Len(5, "a\x80"))},
      {"truncated UTF-8", traces(Len(5, "\xe2\x82"))},
      {"valid 4-byte UTF-8", traces(Len(5, "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"))},
      {"bytes are not UTF-8 checked", traces(Len(1, "\xff\xfe"))},
      {"span unknown field", traces(span + Tag(200, 0) + Varint(1))},
      {"span bad nested", traces(span + Len(9, Len(2, Tag(4, 1) + "1234")))},
      {"wrong wire type on span field", traces(Tag(5, 0) + Varint(7))},
  };
  for (const auto& [what, bytes] : cases) ExpectAgreesWithProtobuf(Signal::kTraces, bytes, what);

  // Packed repeated scalars (HistogramDataPoint.bucket_counts fixed64 = 6,
  // explicit_bounds double = 7; Buckets.bucket_counts uint64 = 2).
  const auto histogram_point = [](const std::string& body) {
    return Len(1, Len(2, Len(2, Len(9, Len(1, body)))));
  };
  const auto exp_buckets = [](const std::string& body) {
    return Len(1, Len(2, Len(2, Len(10, Len(1, Len(8, body))))));
  };
  const std::pair<std::string, std::string> metric_cases[] = {
      {"packed fixed64", histogram_point(Len(6, std::string(16, 'a')))},
      {"packed fixed64 odd length", histogram_point(Len(6, std::string(12, 'a')))},
      {"unpacked fixed64", histogram_point(Tag(6, 1) + std::string(8, 'a') + Tag(6, 1) + std::string(8, 'b'))},
      {"packed double bad length", histogram_point(Len(7, std::string(7, 'a')))},
      {"packed varint", exp_buckets(Len(2, Varint(1) + Varint(300) + Varint(UINT64_MAX)))},
      {"packed varint crossing the end", exp_buckets(Len(2, Varint(1) + "\x80"))},
      {"unpacked varint", exp_buckets(Tag(2, 0) + Varint(4) + Tag(2, 0) + Varint(5))},
      {"empty packed", exp_buckets(Len(2, ""))},
  };
  for (const auto& [what, bytes] : metric_cases) ExpectAgreesWithProtobuf(Signal::kMetrics, bytes, what);
}

// An AnyValue body nested through array_value down to message depth `depth`.
std::string LogWithNesting(int depth) {
  // Request(0) > ResourceLogs(1) > ScopeLogs(2) > LogRecord(3) > AnyValue(4) > ArrayValue(5) > AnyValue(6)...
  std::string inner;
  for (int d = depth; d >= 4; --d) {
    // d even: AnyValue holding array_value (5) = inner; d odd: ArrayValue holding values (1) = inner.
    inner = (d % 2 == 0) ? (d == depth ? "" : Len(5, inner)) : (d == depth ? "" : Len(1, inner));
  }
  return Len(1, Len(2, Len(2, Len(5, inner))));
}

TEST(PayloadSummary, NestingLimitMatchesProtobuf) {
  for (int depth : {50, 99, 100, 101, 102, 150}) {
    ExpectAgreesWithProtobuf(Signal::kLogs, LogWithNesting(depth), "depth " + std::to_string(depth));
  }
  EXPECT_TRUE(ValidateOtlpPayload(Signal::kLogs, LogWithNesting(100)).ok());
  EXPECT_FALSE(ValidateOtlpPayload(Signal::kLogs, LogWithNesting(101)).ok());
  // Unknown groups count toward the limit as well.
  std::string groups;
  for (int i = 0; i < 100; ++i) groups += Tag(9, 3);
  for (int i = 0; i < 100; ++i) groups += Tag(9, 4);
  ExpectAgreesWithProtobuf(Signal::kLogs, groups, "100 groups");
  ExpectAgreesWithProtobuf(Signal::kLogs, Tag(9, 3) + groups + Tag(9, 4), "101 groups");
}

TEST(PayloadSummary, ErrorsSayWhere) {
  ExportTraceServiceRequest req = SampleTraces();
  std::string bytes = req.SerializeAsString();
  // Corrupt the name of the third span of the second scope ("op2").
  req.mutable_resource_spans(0)->mutable_scope_spans(1)->mutable_spans(2)->set_name("op\x01");
  std::string marked = req.SerializeAsString();
  size_t at = marked.rfind("op\x01");
  ASSERT_NE(at, std::string::npos);
  marked[at + 2] = '\xff';
  Status s = ValidateOtlpPayload(Signal::kTraces, marked);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("invalid ExportTraceServiceRequest: field "
                              "'resource_spans[0].scope_spans[1].spans[2].name': invalid UTF-8 at byte ",
                              0),
            0u)
      << s.message();
  Status truncated = ValidateOtlpPayload(Signal::kTraces, bytes.substr(0, bytes.size() / 2));
  EXPECT_EQ(truncated.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(truncated.message().find("past the end"), std::string::npos) << truncated.message();
}

TEST(PayloadSummary, MutatedPayloadsAgreeWithProtobuf) {
  const std::pair<Signal, std::string> seeds[] = {
      {Signal::kTraces, SampleTraces().SerializeAsString()},
      {Signal::kMetrics, SampleMetrics().SerializeAsString()},
      {Signal::kLogs, SampleLogs().SerializeAsString()},
  };
  std::mt19937 rng(7);
  int accepted = 0, rejected = 0;
  for (const auto& [signal, seed] : seeds) {
    for (int i = 0; i < 3000; ++i) {
      std::string bytes = seed;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits && !bytes.empty(); ++e) {
        const size_t pos = rng() % bytes.size();
        switch (rng() % 5) {
          case 0: bytes[pos] = static_cast<char>(rng()); break;                      // replace
          case 1: bytes[pos] ^= static_cast<char>(1 << (rng() % 8)); break;          // flip a bit
          case 2: bytes.insert(pos, 1, static_cast<char>(rng())); break;             // insert
          case 3: bytes.erase(pos, 1 + rng() % 4); break;                            // delete
          case 4: bytes.resize(pos); break;                                          // truncate
        }
      }
      PayloadSummary expected;
      const bool parses = Reference(signal, bytes, &expected);
      Result<PayloadSummary> got = SummarizePayload(signal, bytes);
      ASSERT_EQ(got.ok(), parses) << "signal " << SignalName(signal) << " mutation " << i << ": "
                                  << got.status().ToString();
      if (parses) {
        ASSERT_EQ(*got, expected) << "mutation " << i;
        ++accepted;
      } else {
        ++rejected;
      }
    }
  }
  // Both outcomes must be well represented for the comparison to mean much.
  EXPECT_GT(accepted, 500);
  EXPECT_GT(rejected, 500);
}

}  // namespace
}  // namespace telkit
