#include "common/otlp/wire_scan.h"

#include <google/protobuf/stubs/common.h>
#include <google/protobuf/stubs/logging.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/base/utf8.h"
#include "common/otlp/item_filter.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

using namespace std::string_literals;
namespace otlp = opentelemetry::proto;
using otlp::collector::logs::v1::ExportLogsServiceRequest;
using otlp::collector::metrics::v1::ExportMetricsServiceRequest;
using otlp::collector::trace::v1::ExportTraceServiceRequest;
using otlp::common::v1::AnyValue;
using otlp::common::v1::KeyValue;

// ---------------------------------------------------------------------------
// Raw wire-format writing, for inputs the generated code cannot produce.

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string Tag(uint32_t field, uint32_t wire_type) {
  return Varint(uint64_t{field} << 3 | wire_type);
}
std::string Len(uint32_t field, std::string_view payload) {
  return Tag(field, 2) + Varint(payload.size()) + std::string(payload);
}
std::string VarintField(uint32_t field, uint64_t v) { return Tag(field, 0) + Varint(v); }
std::string Fixed64Field(uint32_t field) { return Tag(field, 1) + std::string(8, '\x11'); }

std::string Id(size_t n, char fill = '\x5a') { return std::string(n, fill); }
// Span fields that pass every rule.
std::string GoodSpanIds() { return Len(1, Id(16)) + Len(2, Id(8)); }
// request { resource_spans { scope_spans { spans { <span> } } } }
std::string TraceWithSpan(std::string_view span) { return Len(1, Len(2, Len(2, span))); }
// request { resource_logs { scope_logs { log_records { <record> } } } }
std::string LogsWithRecord(std::string_view record) { return Len(1, Len(2, Len(2, record))); }
// request { resource_metrics { scope_metrics { metrics { <metric> } } } }
std::string MetricsWithMetric(std::string_view metric) { return Len(1, Len(2, Len(2, metric))); }

// ---------------------------------------------------------------------------
// The reference: the generated messages.

int64_t PointCount(const otlp::metrics::v1::Metric& m) {
  switch (m.data_case()) {
    case otlp::metrics::v1::Metric::kGauge: return m.gauge().data_points_size();
    case otlp::metrics::v1::Metric::kSum: return m.sum().data_points_size();
    case otlp::metrics::v1::Metric::kHistogram: return m.histogram().data_points_size();
    case otlp::metrics::v1::Metric::kExponentialHistogram:
      return m.exponential_histogram().data_points_size();
    case otlp::metrics::v1::Metric::kSummary: return m.summary().data_points_size();
    default: return 0;
  }
}

// Items in `bytes` per ParseFromString, or nullopt when it does not parse.
std::optional<int64_t> ParsedItems(Signal signal, const std::string& bytes) {
  int64_t n = 0;
  if (signal == Signal::kTraces) {
    ExportTraceServiceRequest r;
    if (!r.ParseFromString(bytes)) return std::nullopt;
    for (const auto& rs : r.resource_spans())
      for (const auto& ss : rs.scope_spans()) n += ss.spans_size();
  } else if (signal == Signal::kMetrics) {
    ExportMetricsServiceRequest r;
    if (!r.ParseFromString(bytes)) return std::nullopt;
    for (const auto& rm : r.resource_metrics())
      for (const auto& sm : rm.scope_metrics())
        for (const auto& m : sm.metrics()) n += PointCount(m);
  } else {
    ExportLogsServiceRequest r;
    if (!r.ParseFromString(bytes)) return std::nullopt;
    for (const auto& rl : r.resource_logs())
      for (const auto& sl : rl.scope_logs()) n += sl.log_records_size();
  }
  return n;
}

// The guarantee of wire_scan.h, and the agreement with RemoveInvalidItems.
// Returns whether the scan accepted the bytes.
bool CheckScanProperty(Signal signal, const std::string& bytes) {
  Result<ScanReport> scan = ScanExportRequest(signal, bytes);
  if (!scan.ok()) {
    EXPECT_EQ(scan.status().code(), StatusCode::kInvalidArgument) << scan.status().ToString();
    return false;
  }
  std::optional<int64_t> parsed = ParsedItems(signal, bytes);
  EXPECT_TRUE(parsed.has_value()) << "scan accepted what protobuf refuses";
  if (!parsed) return true;
  EXPECT_EQ(*parsed, scan->items);
  EXPECT_LE(scan->invalid_items, scan->items);
  EXPECT_EQ(scan->first_invalid_reason.empty(), scan->invalid_items == 0);

  Result<FilteredRequest> filtered = RemoveInvalidItems(signal, bytes);
  EXPECT_TRUE(filtered.ok()) << filtered.status().ToString();
  if (!filtered.ok()) return true;
  EXPECT_EQ(filtered->removed, scan->invalid_items);
  if (filtered->removed > 0) {
    Result<ScanReport> rescan = ScanExportRequest(signal, filtered->bytes);
    EXPECT_TRUE(rescan.ok()) << rescan.status().ToString();
    if (rescan.ok()) {
      EXPECT_EQ(rescan->invalid_items, 0);
      EXPECT_EQ(rescan->items, scan->items - scan->invalid_items);
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Realistic requests built with the generated API.

void AddAttributes(google::protobuf::RepeatedPtrField<KeyValue>* attrs, int salt) {
  auto add = [&](const std::string& key) {
    KeyValue* kv = attrs->Add();
    kv->set_key(key);
    return kv->mutable_value();
  };
  add("http.method")->set_string_value("GET");
  add("http.status_code")->set_int_value(200 + salt);
  add("duration.ratio")->set_double_value(0.25 * salt);
  add("cache.hit")->set_bool_value(salt % 2 == 0);
  add("payload")->set_bytes_value(std::string("\x00\xff\x80", 3));
  add("utf8.name")->set_string_value("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  auto* array = add("retries")->mutable_array_value();
  array->add_values()->set_int_value(1);
  array->add_values()->set_string_value("two");
  auto* kvlist = add("peer")->mutable_kvlist_value();
  KeyValue* inner = kvlist->add_values();
  inner->set_key("address");
  inner->mutable_value()->set_string_value("10.0.0." + std::to_string(salt));
}

// `invalid`: which items to break (none when 0): a span with a short trace
// id, a span with a bad link, a root span with a 3-byte parent.
std::string MakeTraces(bool with_invalid) {
  ExportTraceServiceRequest r;
  int n = 0;
  for (int res = 0; res < 2; ++res) {
    auto* rs = r.add_resource_spans();
    AddAttributes(rs->mutable_resource()->mutable_attributes(), res);
    rs->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
    for (int sc = 0; sc < 2; ++sc) {
      auto* ss = rs->add_scope_spans();
      ss->mutable_scope()->set_name("lib");
      ss->mutable_scope()->set_version("1.0");
      for (int i = 0; i < 3; ++i, ++n) {
        auto* s = ss->add_spans();
        s->set_trace_id(Id(16, static_cast<char>(1 + n)));
        s->set_span_id(Id(8, static_cast<char>(2 + n)));
        if (i > 0) s->set_parent_span_id(Id(8, static_cast<char>(3 + n)));
        s->set_name("GET /api/v" + std::to_string(i));
        s->set_kind(otlp::trace::v1::Span::SPAN_KIND_SERVER);
        s->set_start_time_unix_nano(1700000000000000000ull + n);
        s->set_end_time_unix_nano(1700000000000500000ull + n);
        s->set_flags(0x301);
        AddAttributes(s->mutable_attributes(), n);
        auto* ev = s->add_events();
        ev->set_name("exception");
        ev->set_time_unix_nano(1700000000000100000ull);
        ev->add_attributes()->set_key("exception.type");
        auto* link = s->add_links();
        link->set_trace_id(Id(16, '\x07'));
        link->set_span_id(Id(8, '\x08'));
        s->mutable_status()->set_code(otlp::trace::v1::Status::STATUS_CODE_ERROR);
        s->mutable_status()->set_message("boom");
        if (with_invalid && n == 1) s->set_trace_id(Id(15));
        if (with_invalid && n == 4) s->mutable_links(0)->set_span_id(Id(8, '\0'));
        if (with_invalid && n == 9) s->set_parent_span_id("abc");
      }
    }
  }
  return r.SerializeAsString();
}

std::string MakeMetrics(bool with_invalid) {
  ExportMetricsServiceRequest r;
  auto* rm = r.add_resource_metrics();
  AddAttributes(rm->mutable_resource()->mutable_attributes(), 1);
  auto* sm = rm->add_scope_metrics();
  sm->mutable_scope()->set_name("meter");

  auto* gauge = sm->add_metrics();
  gauge->set_name("cpu.utilization");
  gauge->set_unit("1");
  for (int i = 0; i < 2; ++i) {
    auto* p = gauge->mutable_gauge()->add_data_points();
    p->set_time_unix_nano(1700000000000000000ull);
    p->set_as_double(0.5);
    AddAttributes(p->mutable_attributes(), i);
    auto* ex = p->add_exemplars();
    ex->set_as_int(7);
    ex->set_trace_id(Id(16));
    ex->set_span_id(Id(8));
    ex->add_filtered_attributes()->set_key("user");
  }
  auto* sum = sm->add_metrics();
  sum->set_name(with_invalid ? "" : "requests");
  sum->mutable_sum()->set_is_monotonic(true);
  sum->mutable_sum()->set_aggregation_temporality(
      otlp::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
  for (int i = 0; i < 2; ++i) sum->mutable_sum()->add_data_points()->set_as_int(i);

  auto* hist = sm->add_metrics();
  hist->set_name("latency");
  for (int i = 0; i < 2; ++i) {
    auto* p = hist->mutable_histogram()->add_data_points();
    p->set_count(10);
    p->set_sum(2.5);
    for (double b : {0.1, 0.5, 1.0}) p->add_explicit_bounds(b);
    for (int c : {1, 2, 3, 4}) p->add_bucket_counts(c);
    if (with_invalid && i == 1) p->add_bucket_counts(5);
    p->set_min(0.01);
    p->set_max(3.0);
  }
  auto* exp = sm->add_metrics();
  exp->set_name("latency.exp");
  auto* ep = exp->mutable_exponential_histogram()->add_data_points();
  ep->set_scale(-3);
  ep->set_zero_count(1);
  ep->mutable_positive()->set_offset(-2);
  for (uint64_t c : {1u, 300u, 70000u}) ep->mutable_positive()->add_bucket_counts(c);
  ep->mutable_negative()->add_bucket_counts(5);
  ep->add_exemplars()->set_as_double(1.5);

  auto* summary = sm->add_metrics();
  summary->set_name("rpc.duration");
  auto* sp = summary->mutable_summary()->add_data_points();
  sp->set_count(3);
  for (double q : {0.5, 0.99}) {
    auto* vq = sp->add_quantile_values();
    vq->set_quantile(q);
    vq->set_value(q * 10);
  }
  return r.SerializeAsString();
}

std::string MakeLogs(bool with_invalid) {
  ExportLogsServiceRequest r;
  auto* rl = r.add_resource_logs();
  AddAttributes(rl->mutable_resource()->mutable_attributes(), 2);
  for (int sc = 0; sc < 2; ++sc) {
    auto* sl = rl->add_scope_logs();
    sl->mutable_scope()->set_name("logger");
    for (int i = 0; i < 3; ++i) {
      auto* lr = sl->add_log_records();
      lr->set_time_unix_nano(1700000000000000000ull + i);
      lr->set_observed_time_unix_nano(1700000000000000001ull + i);
      lr->set_severity_number(otlp::logs::v1::SEVERITY_NUMBER_WARN);
      lr->set_severity_text("WARN");
      if (i == 0) {
        lr->mutable_body()->set_string_value("disk almost full: 93%");
      } else {
        KeyValue* kv = lr->mutable_body()->mutable_kvlist_value()->add_values();
        kv->set_key("msg");
        kv->mutable_value()->set_string_value("structured");
      }
      AddAttributes(lr->mutable_attributes(), i);
      if (i == 2) {
        lr->set_trace_id(Id(16));
        lr->set_span_id(Id(8));
      }
      lr->set_flags(1);
      lr->set_event_name("disk.full");
      if (with_invalid && sc == 1 && i == 1) lr->set_span_id(Id(7));
    }
  }
  return r.SerializeAsString();
}

std::string Make(Signal signal, bool with_invalid) {
  switch (signal) {
    case Signal::kTraces: return MakeTraces(with_invalid);
    case Signal::kMetrics: return MakeMetrics(with_invalid);
    default: return MakeLogs(with_invalid);
  }
}

constexpr Signal kSignals[] = {Signal::kTraces, Signal::kMetrics, Signal::kLogs};

// ---------------------------------------------------------------------------
// Valid input.

TEST(WireScan, CountsItemsAndResourcesOfValidRequests) {
  struct Want {
    Signal signal;
    int64_t items, resources;
  };
  for (Want w :
       {Want{Signal::kTraces, 12, 2}, Want{Signal::kMetrics, 8, 1}, Want{Signal::kLogs, 6, 1}}) {
    const std::string bytes = Make(w.signal, false);
    Result<ScanReport> r = ScanExportRequest(w.signal, bytes);
    ASSERT_TRUE(r.ok()) << SignalName(w.signal) << ": " << r.status().ToString();
    EXPECT_EQ(r->items, w.items) << SignalName(w.signal);
    EXPECT_EQ(r->resources, w.resources) << SignalName(w.signal);
    EXPECT_EQ(r->invalid_items, 0) << SignalName(w.signal);
    EXPECT_EQ(r->first_invalid_reason, "");
    EXPECT_EQ(ParsedItems(w.signal, bytes), w.items);
  }
}

TEST(WireScan, EmptyRequestHasNoItems) {
  for (Signal s : kSignals) {
    Result<ScanReport> r = ScanExportRequest(s, "");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->items, 0);
    EXPECT_EQ(r->resources, 0);
  }
}

TEST(WireScan, RefusesSignalsThatAreNotOtlpRequests) {
  Result<ScanReport> r = ScanExportRequest(Signal::kPrometheusRemoteWrite, "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "signal 'prom-rw' is not an OTLP export request");
}

TEST(WireScan, SkipsUnknownFieldsOfEveryWireType) {
  const std::string unknown =
      VarintField(100, 300) + Fixed64Field(101) + Len(102, "opaque") + Tag(103, 5) + "abcd" +
      // group 104 { varint 1; group 105 { len 2 } }
      Tag(104, 3) + VarintField(1, 1) + Tag(105, 3) + Len(2, "x") + Tag(105, 4) + Tag(104, 4) +
      // reserved and high field numbers
      VarintField(1000, 1) + VarintField((1u << 29) - 1, 2);
  // Unknown fields at the top, in a span, in an AnyValue and in a data point.
  const std::string any_value = Len(1, "s") + unknown;
  const std::string span = GoodSpanIds() + unknown + Len(9, Len(1, "k") + Len(2, any_value));
  const std::string traces = unknown + TraceWithSpan(span);
  Result<ScanReport> r = ScanExportRequest(Signal::kTraces, traces);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->items, 1);
  EXPECT_EQ(r->invalid_items, 0);
  CheckScanProperty(Signal::kTraces, traces);

  const std::string metric = Len(1, "m") + unknown + Len(5, Len(1, unknown + Fixed64Field(4)));
  const std::string metrics = MetricsWithMetric(metric);
  r = ScanExportRequest(Signal::kMetrics, metrics);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->items, 1);
  CheckScanProperty(Signal::kMetrics, metrics);
}

TEST(WireScan, AcceptsPackedAndUnpackedRepeatedScalars) {
  // HistogramDataPoint: bucket_counts = 6 (fixed64), explicit_bounds = 7 (double).
  auto histogram = [](std::string_view point) {
    return MetricsWithMetric(Len(1, "h") + Len(9, Len(1, point)));
  };
  std::string f64 = std::string(8, '\x01');
  const std::string packed = Len(6, f64 + f64 + f64) + Len(7, f64 + f64);
  const std::string unpacked =
      Tag(6, 1) + f64 + Tag(6, 1) + f64 + Tag(6, 1) + f64 + Tag(7, 1) + f64 + Tag(7, 1) + f64;
  const std::string mixed = Tag(6, 1) + f64 + Len(6, f64 + f64) + Len(7, f64) + Tag(7, 1) + f64;
  for (const std::string& point : {packed, unpacked, mixed}) {
    const std::string bytes = histogram(point);
    Result<ScanReport> r = ScanExportRequest(Signal::kMetrics, bytes);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->items, 1);
    EXPECT_EQ(r->invalid_items, 0) << "3 bucket counts fit 2 bounds";
    CheckScanProperty(Signal::kMetrics, bytes);
  }
  // The element counts add up over the forms: 4 counts for 2 bounds is invalid.
  Result<ScanReport> r = ScanExportRequest(Signal::kMetrics, histogram(mixed + Tag(6, 1) + f64));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->invalid_items, 1);

  // ExponentialHistogramDataPoint.Buckets.bucket_counts = 2 (uint64 varint).
  for (const std::string& buckets : {Len(2, Varint(1) + Varint(300) + Varint(1ull << 63)),
                                     VarintField(2, 1) + VarintField(2, 2), Len(2, "")}) {
    const std::string bytes =
        MetricsWithMetric(Len(1, "e") + Len(10, Len(1, Len(8, VarintField(1, 3) + buckets))));
    Result<ScanReport> e = ScanExportRequest(Signal::kMetrics, bytes);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ(e->items, 1);
    CheckScanProperty(Signal::kMetrics, bytes);
  }
}

TEST(WireScan, CountsOnlyTheWinningMemberOfTheMetricDataOneof) {
  const std::string two_gauge_points = Len(1, "") + Len(1, "");
  const std::string three_sum_points = Len(1, "") + Len(1, "") + Len(1, "");
  struct Case {
    std::string metric;
    int64_t items;
  };
  for (const Case& c : {
           // gauge, then sum: the sum replaces the gauge.
           Case{Len(1, "m") + Len(5, two_gauge_points) + Len(7, three_sum_points), 3},
           // sum, then gauge.
           Case{Len(1, "m") + Len(7, three_sum_points) + Len(5, two_gauge_points), 2},
           // the same member twice merges.
           Case{Len(1, "m") + Len(5, two_gauge_points) + Len(5, two_gauge_points), 4},
           // gauge, sum, gauge: only the last gauge.
           Case{Len(1, "m") + Len(5, two_gauge_points) + Len(7, three_sum_points) +
                    Len(5, Len(1, "")),
                1},
       }) {
    const std::string bytes = MetricsWithMetric(c.metric);
    Result<ScanReport> r = ScanExportRequest(Signal::kMetrics, bytes);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->items, c.items);
    EXPECT_EQ(ParsedItems(Signal::kMetrics, bytes), c.items);
  }
  // A histogram point invalid in a member that loses does not count.
  const std::string bad_histogram = Len(1, Len(6, std::string(16, '\1')));  // 2 counts, 0 bounds
  Result<ScanReport> r = ScanExportRequest(
      Signal::kMetrics,
      MetricsWithMetric(Len(1, "m") + Len(9, bad_histogram) + Len(5, two_gauge_points)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->items, 2);
  EXPECT_EQ(r->invalid_items, 0);
}

TEST(WireScan, LastOccurrenceOfASingularFieldWins) {
  // trace_id first too short, then right: valid, as the parsed span would be.
  const std::string span = Len(1, Id(3)) + GoodSpanIds();
  Result<ScanReport> r = ScanExportRequest(Signal::kTraces, TraceWithSpan(span));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->invalid_items, 0);
  r = ScanExportRequest(Signal::kTraces, TraceWithSpan(GoodSpanIds() + Len(1, Id(3))));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->invalid_items, 1);
}

// ---------------------------------------------------------------------------
// Broken structure.

Status ScanStatus(Signal signal, const std::string& bytes, ScanOptions options = {}) {
  Result<ScanReport> r = ScanExportRequest(signal, bytes, options);
  EXPECT_FALSE(r.ok()) << "accepted";
  return r.status();
}

TEST(WireScan, LengthBeyondTheMessageNamesOffsetAndPath) {
  // The span's attributes field claims 99999 bytes; 12 remain in the span.
  const std::string span = GoodSpanIds() + Tag(9, 2) + Varint(99999) + std::string(12, 'x');
  const std::string bytes = TraceWithSpan(span);
  const size_t length_at = bytes.size() - 12 - Varint(99999).size();
  Status s = ScanStatus(Signal::kTraces, bytes);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "malformed protobuf at byte " + std::to_string(length_at) +
                             " in resource_spans.scope_spans.spans.attributes: "
                             "length 99999 exceeds the remaining 12 bytes");
  EXPECT_FALSE(ParsedItems(Signal::kTraces, bytes).has_value());
}

TEST(WireScan, ErrorsInsideNestedMessagesNameTheirPath) {
  // A KeyValue whose key is a varint, inside span.events.attributes.
  const std::string event = Len(3, VarintField(1, 7));
  Status s = ScanStatus(Signal::kTraces, TraceWithSpan(GoodSpanIds() + Len(11, event)));
  EXPECT_NE(s.message().find(" in resource_spans.scope_spans.spans.events.attributes.key: "
                             "field 1 has wire type varint, want length-delimited"),
            std::string::npos)
      << s.message();
  // Top-level garbage has no path.
  s = ScanStatus(Signal::kLogs, Tag(1, 7));
  EXPECT_EQ(s.message(), "malformed protobuf at byte 0: invalid wire type 7");
}

TEST(WireScan, RefusesKnownFieldsWithTheWrongWireType) {
  struct Case {
    Signal signal;
    std::string bytes;
    std::string path;
  };
  for (const Case& c : {
           Case{Signal::kTraces, TraceWithSpan(VarintField(5, 1)), "spans.name"},
           Case{Signal::kTraces, TraceWithSpan(Fixed64Field(16)), "spans.flags"},
           Case{Signal::kTraces, TraceWithSpan(Tag(7, 5) + "abcd"), "spans.start_time_unix_nano"},
           Case{Signal::kTraces, Len(1, VarintField(2, 1)), "resource_spans.scope_spans"},
           Case{Signal::kLogs, LogsWithRecord(Len(2, "x")), "log_records.severity_number"},
           Case{Signal::kMetrics, MetricsWithMetric(Len(1, "m") + VarintField(5, 1)),
                "metrics.gauge"},
           Case{Signal::kMetrics, MetricsWithMetric(Len(9, Len(1, Tag(6, 5) + "abcd"))),
                "data_points.bucket_counts"},
           // a known field with a group wire type
           Case{Signal::kTraces, TraceWithSpan(Tag(9, 3) + Tag(9, 4)), "spans.attributes"},
       }) {
    Status s = ScanStatus(c.signal, c.bytes);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(c.path + ": field "), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(" has wire type "), std::string::npos) << s.message();
  }
}

TEST(WireScan, RefusesMalformedTagsVarintsAndLengths) {
  struct Case {
    std::string bytes;
    std::string detail;
  };
  for (const Case& c : {
           Case{"\x00"s, "field number 0"},
           Case{Tag(0, 2) + Varint(0), "field number 0"},
           Case{Tag(1, 6), "invalid wire type 6"},
           Case{Tag(1, 7), "invalid wire type 7"},
           Case{"\x80", "truncated tag"},
           Case{"\x88\x80\x80\x80\x80\x00"s, "tag exceeds 32 bits"},
           Case{"\x88\x80\x80\x80\x10", "tag exceeds 32 bits"},
           Case{Tag(50, 0) + "\x80\x80", "truncated varint"},
           Case{Tag(50, 0) + std::string(10, '\x80') + "\x01", "varint exceeds 64 bits"},
           Case{Tag(50, 0) + std::string(9, '\xff') + "\x02", "varint exceeds 64 bits"},
           Case{Tag(50, 1) + "1234567", "fixed64 needs 8 bytes, 7 remain"},
           Case{Tag(50, 5) + "123", "fixed32 needs 4 bytes, 3 remain"},
           Case{Tag(50, 2), "truncated length"},
           Case{Tag(50, 2) + "\x81\x80\x80\x80\x80\x00"s, "length exceeds 2 GiB"},
           Case{Tag(50, 2) + "\xff\xff\xff\xff\x07", "length exceeds 2 GiB"},
           Case{Tag(50, 2) + "\x05" + "abc", "length 5 exceeds the remaining 3 bytes"},
           Case{Tag(50, 4), "end-group tag of field 50 without a start-group"},
           Case{Tag(50, 3) + Tag(51, 4), "end-group tag of field 51 closes the group of field 50"},
           Case{Tag(50, 3) + VarintField(1, 1), "group of field 50 has no end-group tag"},
       }) {
    Status s = ScanStatus(Signal::kTraces, c.bytes);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(c.detail), std::string::npos)
        << "want '" << c.detail << "', got: " << s.message();
    // Whatever protobuf makes of it, a refusal never breaks the guarantee.
    CheckScanProperty(Signal::kTraces, c.bytes);
  }
  // A packed fixed64 run whose length is not a multiple of 8.
  Status s = ScanStatus(Signal::kMetrics,
                        MetricsWithMetric(Len(9, Len(1, Len(7, std::string(12, '\0'))))));
  EXPECT_NE(s.message().find("packed fixed64 run of 12 bytes is not a multiple of 8"),
            std::string::npos)
      << s.message();
  // A packed varint run that ends inside a varint.
  s = ScanStatus(Signal::kMetrics, MetricsWithMetric(Len(10, Len(1, Len(8, Len(2, "\x01\x80"))))));
  EXPECT_NE(s.message().find("positive.bucket_counts: truncated varint"), std::string::npos)
      << s.message();
}

TEST(WireScan, AcceptsTheLongestValidEncodings) {
  // A 5-byte tag for the highest field number, a 10-byte varint, a padded
  // 5-byte length: all valid protobuf.
  const std::string bytes = VarintField((1u << 29) - 1, ~uint64_t{0}) + Tag(60, 2) +
                            "\x83\x80\x80\x80\x00"s + "abc" + TraceWithSpan(GoodSpanIds());
  Result<ScanReport> r = ScanExportRequest(Signal::kTraces, bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->items, 1);
  CheckScanProperty(Signal::kTraces, bytes);
}

TEST(WireScan, ChecksUtf8OnlyInStringFieldsAndOnlyWhenAsked) {
  const std::string bad = "ok \xc3\x28";  // 0xC3 needs a continuation byte
  const std::string span = GoodSpanIds() + Len(9, Len(1, bad) + Len(2, Len(1, "v")));
  const std::string bytes = TraceWithSpan(span);
  Status s = ScanStatus(Signal::kTraces, bytes);
  const size_t bad_at = bytes.find('\xc3');
  EXPECT_EQ(s.message(), "malformed protobuf at byte " + std::to_string(bad_at) +
                             " in resource_spans.scope_spans.spans.attributes.key: invalid UTF-8");
  {
    google::protobuf::LogSilencer quiet;  // protobuf logs the UTF-8 error it finds
    EXPECT_FALSE(ParsedItems(Signal::kTraces, bytes).has_value()) << "protobuf refuses it too";
  }

  Result<ScanReport> r =
      ScanExportRequest(Signal::kTraces, bytes, ScanOptions{.check_utf8 = false});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->items, 1);

  // Bytes fields hold anything.
  const std::string binary = GoodSpanIds() + Len(9, Len(1, "k") + Len(2, Len(7, "\xff\xfe")));
  r = ScanExportRequest(Signal::kTraces, TraceWithSpan(binary));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

TEST(WireScan, Utf8RuleMatchesProtobuf) {
  auto same = [](const std::string& s) {
    return IsValidUtf8(s) == google::protobuf::internal::IsStructurallyValidUTF8(
                                 s.data(), static_cast<int>(s.size()));
  };
  // Every sequence of 1 to 3 bytes.
  int mismatches = 0;
  std::string s;
  for (uint32_t v = 0; v < (1u << 24); ++v) {
    const int n = v < 0x100 ? 1 : v < 0x10000 ? 2 : 3;
    // Little-endian: byte 0 leads; an ASCII lead only repeats a shorter case.
    if (n == 3 && (v & 0xFF) < 0x80) continue;
    s.assign(reinterpret_cast<const char*>(&v), static_cast<size_t>(n));
    if (!same(s)) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
  // 4-byte sequences: every lead and second byte, edge values for the rest.
  const uint8_t edges[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0, 0xff};
  for (uint32_t b0 = 0xe0; b0 <= 0xff; ++b0)
    for (uint32_t b1 = 0; b1 <= 0xff; ++b1)
      for (uint8_t b2 : edges)
        for (uint8_t b3 : edges) {
          const char seq[] = {static_cast<char>(b0), static_cast<char>(b1), static_cast<char>(b2),
                              static_cast<char>(b3)};
          s = "0123456789" + std::string(seq, 4) + "abcdefghijk";
          if (!same(s)) ++mismatches;
        }
  EXPECT_EQ(mismatches, 0);
  // The ASCII fast path reads whole words, the last one overlapping: one
  // bad byte anywhere in strings of every short length is found.
  for (size_t n = 1; n <= 40; ++n) {
    for (size_t at = 0; at < n; ++at) {
      std::string text(n, 'a');
      EXPECT_TRUE(IsValidUtf8(text));
      text[at] = '\xff';
      EXPECT_FALSE(IsValidUtf8(text)) << n << " " << at;
    }
  }
  EXPECT_TRUE(IsValidUtf8("plain ascii that is longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));           // U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));          // U+110000
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));              // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));                  // overlong '/'
  EXPECT_FALSE(IsValidUtf8("0123456789abcdef\xe2\x82"));  // cut short
}

// ---------------------------------------------------------------------------
// Depth.

// AnyValue nested `levels` deep through array_value, as a span attribute.
std::string NestedArrays(int levels) {
  std::string value = Len(1, "leaf");                              // string_value
  for (int i = 1; i < levels; ++i) value = Len(5, Len(1, value));  // array_value { values }
  return TraceWithSpan(GoodSpanIds() + Len(9, Len(1, "k") + Len(2, value)));
}

TEST(WireScan, LimitsAnyValueNesting) {
  Result<ScanReport> r = ScanExportRequest(Signal::kTraces, NestedArrays(kMaxAnyValueDepth));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  CheckScanProperty(Signal::kTraces, NestedArrays(kMaxAnyValueDepth));

  Status s = ScanStatus(Signal::kTraces, NestedArrays(kMaxAnyValueDepth + 1));
  EXPECT_NE(s.message().find("AnyValue nesting exceeds 32 levels"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("spans.attributes.value.array_value.values.array_value"),
            std::string::npos)
      << s.message();
  // Far deeper input is refused the same way, without deep recursion.
  s = ScanStatus(Signal::kTraces, NestedArrays(5000));
  EXPECT_NE(s.message().find("AnyValue nesting exceeds 32 levels"), std::string::npos);
}

// A chain of kvlist_value AnyValues `levels` deep in the filtered_attributes
// of an exemplar: 3 messages a level, starting 8 levels down, so protobuf's
// own depth limit of 100 bites before the AnyValue limit.
std::string DeepExemplar(int levels) {
  std::string value = Len(1, "leaf");
  for (int i = 1; i < levels; ++i) value = Len(6, Len(1, Len(1, "k") + Len(2, value)));
  const std::string exemplar = Len(7, Len(1, "k") + Len(2, value));
  return MetricsWithMetric(Len(1, "m") + Len(5, Len(1, Len(5, exemplar))));
}

TEST(WireScan, NeverAcceptsWhatProtobufRefusesForDepth) {
  int accepted_deepest = 0;
  for (int levels = 20; levels <= 40; ++levels) {
    const std::string bytes = DeepExemplar(levels);
    const bool scan_ok = ScanExportRequest(Signal::kMetrics, bytes).ok();
    const bool parse_ok = ParsedItems(Signal::kMetrics, bytes).has_value();
    if (scan_ok) accepted_deepest = levels;
    EXPECT_FALSE(scan_ok && !parse_ok) << levels;
    // Below the AnyValue limit the two agree exactly.
    if (levels <= kMaxAnyValueDepth) {
      EXPECT_EQ(scan_ok, parse_ok) << levels;
    }
  }
  EXPECT_EQ(accepted_deepest, 31)
      << "level L sits 8 + 3 * (L - 1) messages down: 98 at 31, 101 at 32";

  // Unknown groups count towards the depth as protobuf counts them.
  auto groups = [](int n) {
    std::string g;
    for (int i = 0; i < n; ++i) g += Tag(7, 3);
    for (int i = 0; i < n; ++i) g += Tag(7, 4);
    return g;
  };
  for (int n : {1, 50, 99, 100, 101, 500}) {
    const std::string bytes = groups(n);
    const bool scan_ok = ScanExportRequest(Signal::kLogs, bytes).ok();
    EXPECT_EQ(scan_ok, ParsedItems(Signal::kLogs, bytes).has_value()) << n;
    EXPECT_EQ(scan_ok, n <= kMaxMessageDepth) << n;
  }
}

// ---------------------------------------------------------------------------
// Item rules.

TEST(WireScan, CountsInvalidSpans) {
  struct Case {
    std::string span;
    std::string reason;
  };
  const std::string good_link = Len(13, Len(1, Id(16)) + Len(2, Id(8)));
  for (const Case& c : {
           Case{Len(2, Id(8)), "span 'trace_id' is not 16 bytes"},
           Case{Len(1, Id(17)) + Len(2, Id(8)), "span 'trace_id' is not 16 bytes"},
           Case{Len(1, Id(16, '\0')) + Len(2, Id(8)), "span 'trace_id' is all zero"},
           Case{Len(1, Id(16)), "span 'span_id' is not 8 bytes"},
           Case{Len(1, Id(16)) + Len(2, Id(8, '\0')), "span 'span_id' is all zero"},
           Case{GoodSpanIds() + Len(4, Id(4)),
                "span 'parent_span_id' is neither empty nor 8 bytes"},
           Case{GoodSpanIds() + good_link + Len(13, Len(1, Id(16))),
                "span link 'span_id' is not 8 bytes"},
           Case{GoodSpanIds() + Len(13, Len(1, Id(16, '\0')) + Len(2, Id(8))),
                "span link 'trace_id' is all zero"},
           Case{GoodSpanIds() + Len(13, Len(2, Id(8))), "span link 'trace_id' is not 16 bytes"},
           // Its own ids are reported before its links'.
           Case{Len(2, Id(8)) + Len(13, ""), "span 'trace_id' is not 16 bytes"},
       }) {
    const std::string bytes = TraceWithSpan(c.span);
    Result<ScanReport> r = ScanExportRequest(Signal::kTraces, bytes);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->items, 1);
    EXPECT_EQ(r->invalid_items, 1) << c.reason;
    EXPECT_EQ(r->first_invalid_reason, c.reason + " (item at byte 6)");
    CheckScanProperty(Signal::kTraces, bytes);
  }
  // Valid: a root span, an 8-byte parent, a good link.
  for (const std::string& span :
       {GoodSpanIds(), GoodSpanIds() + Len(4, Id(8)), GoodSpanIds() + good_link}) {
    Result<ScanReport> r = ScanExportRequest(Signal::kTraces, TraceWithSpan(span));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->invalid_items, 0) << r->first_invalid_reason;
  }
}

TEST(WireScan, CountsInvalidLogRecords) {
  struct Case {
    std::string record;
    int64_t invalid;
  };
  for (const Case& c : {
           Case{"", 0},
           Case{Len(9, Id(16)) + Len(10, Id(8)), 0},
           Case{Len(9, Id(16, '\0')), 0},  // all zero is allowed for logs
           Case{Len(9, Id(15)), 1},
           Case{Len(10, Id(9)), 1},
           Case{Len(9, Id(16)) + Len(10, Id(4)), 1},
       }) {
    const std::string bytes = LogsWithRecord(c.record);
    Result<ScanReport> r = ScanExportRequest(Signal::kLogs, bytes);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->items, 1);
    EXPECT_EQ(r->invalid_items, c.invalid) << r->first_invalid_reason;
    CheckScanProperty(Signal::kLogs, bytes);
  }
}

TEST(WireScan, MetricWithoutNameInvalidatesAllItsPoints) {
  const std::string sum = Len(7, Len(1, "") + Len(1, "") + Len(1, ""));
  Result<ScanReport> r = ScanExportRequest(
      Signal::kMetrics, MetricsWithMetric(sum) + MetricsWithMetric(Len(1, "ok") + sum));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->items, 6);
  EXPECT_EQ(r->invalid_items, 3);
  EXPECT_EQ(r->first_invalid_reason, "metric 'name' is empty (item at byte 6)");
  // An empty name given last wins over an earlier one.
  r = ScanExportRequest(Signal::kMetrics, MetricsWithMetric(Len(1, "x") + sum + Len(1, "")));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->invalid_items, 3);
}

TEST(WireScan, HistogramBucketCountsMustFitTheBounds) {
  const std::string f64(8, '\2');
  struct Case {
    int counts, bounds;
    bool valid;
  };
  for (Case c : {Case{0, 0, true}, Case{0, 3, true}, Case{1, 0, true}, Case{4, 3, true},
                 Case{3, 3, false}, Case{5, 3, false}, Case{2, 0, false}}) {
    std::string counts, bounds;
    for (int i = 0; i < c.counts; ++i) counts += f64;
    for (int i = 0; i < c.bounds; ++i) bounds += f64;
    const std::string point = Len(6, counts) + Len(7, bounds);
    const std::string bytes = MetricsWithMetric(Len(1, "h") + Len(9, Len(1, point) + Len(1, "")));
    Result<ScanReport> r = ScanExportRequest(Signal::kMetrics, bytes);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->items, 2);
    EXPECT_EQ(r->invalid_items, c.valid ? 0 : 1) << c.counts << " counts, " << c.bounds;
    if (!c.valid) {
      EXPECT_EQ(r->first_invalid_reason.rfind("histogram point 'bucket_counts' is not one longer "
                                              "than 'explicit_bounds' (item at byte ",
                                              0),
                0u)
          << r->first_invalid_reason;
    }
    CheckScanProperty(Signal::kMetrics, bytes);
  }
  // Exponential histograms have no such rule.
  Result<ScanReport> r = ScanExportRequest(
      Signal::kMetrics, MetricsWithMetric(Len(1, "e") + Len(10, Len(1, Len(8, Len(2, "\1\2\3"))))));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->invalid_items, 0);
}

TEST(WireScan, CountsInvalidItemsInRealisticRequests) {
  struct Want {
    Signal signal;
    int64_t items, invalid;
  };
  for (Want w :
       {Want{Signal::kTraces, 12, 3}, Want{Signal::kMetrics, 8, 3}, Want{Signal::kLogs, 6, 1}}) {
    const std::string bytes = Make(w.signal, true);
    Result<ScanReport> r = ScanExportRequest(w.signal, bytes);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->items, w.items) << SignalName(w.signal);
    EXPECT_EQ(r->invalid_items, w.invalid) << SignalName(w.signal);
    CheckScanProperty(w.signal, bytes);
  }
}

// ---------------------------------------------------------------------------
// The guarantee under damage.

TEST(WireScan, EveryTruncationKeepsTheGuarantee) {
  for (Signal signal : kSignals) {
    const std::string bytes = Make(signal, true);
    int accepted = 0;
    for (size_t n = 0; n < bytes.size(); ++n) {
      if (CheckScanProperty(signal, bytes.substr(0, n))) ++accepted;
    }
    // Only cuts between top-level fields are still valid requests.
    EXPECT_GE(accepted, 1) << SignalName(signal);
    EXPECT_LT(accepted, 10) << SignalName(signal);
  }
}

// Offsets of every length prefix in `bytes`, found by reading any
// length-delimited payload that parses as fields as a nested message.
void CollectLengthOffsets(const std::string& bytes, size_t begin, size_t end, int depth,
                          std::vector<size_t>* out) {
  size_t p = begin;
  auto varint = [&](uint64_t* v) {
    *v = 0;
    for (int shift = 0; p < end && shift < 64; shift += 7) {
      const auto b = static_cast<uint8_t>(bytes[p++]);
      *v |= uint64_t{b & 0x7Fu} << shift;
      if (b < 0x80) return true;
    }
    return false;
  };
  while (p < end) {
    uint64_t tag, v;
    if (!varint(&tag) || (tag >> 3) == 0) return;
    switch (tag & 7) {
      case 0:
        if (!varint(&v)) return;
        break;
      case 1: p += 8; break;
      case 5: p += 4; break;
      case 2: {
        const size_t at = p;
        if (!varint(&v) || v > end - p) return;
        out->push_back(at);
        if (depth < 40) CollectLengthOffsets(bytes, p, p + v, depth + 1, out);
        p += v;
        break;
      }
      default: return;
    }
    if (p > end) return;
  }
}

std::string Mutate(const std::string& base, std::mt19937_64& rng) {
  std::string m = base;
  if (m.empty()) return std::string(1, static_cast<char>(rng()));
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  switch (rng() % 7) {
    case 0:  // flip a bit
      m[pick(m.size())] ^= static_cast<char>(1u << (rng() % 8));
      break;
    case 1:  // truncate
      m.resize(pick(m.size()));
      break;
    case 2:  // insert 1 to 4 random bytes
      for (size_t i = 0, n = 1 + pick(4), at = pick(m.size() + 1); i < n; ++i) {
        m.insert(m.begin() + static_cast<ptrdiff_t>(at), static_cast<char>(rng()));
      }
      break;
    case 3: {  // change a length prefix, re-encoded (its size may change)
      std::vector<size_t> lengths;
      CollectLengthOffsets(m, 0, m.size(), 0, &lengths);
      if (lengths.empty()) break;
      const size_t at = lengths[pick(lengths.size())];
      size_t end = at;
      uint64_t v = 0;
      for (int shift = 0;; shift += 7) {
        const auto b = static_cast<uint8_t>(m[end++]);
        v |= uint64_t{b & 0x7Fu} << shift;
        if (b < 0x80) break;
      }
      const uint64_t nv = rng() % 4 == 0 ? rng() % 300 : v + (rng() % 7) - 3;
      m.replace(at, end - at, Varint(nv));
      break;
    }
    case 4:  // overwrite a byte
      m[pick(m.size())] = static_cast<char>(rng());
      break;
    case 5: {  // copy a slice elsewhere
      const size_t from = pick(m.size()), n = 1 + pick(std::min<size_t>(m.size() - from, 40));
      m.insert(pick(m.size() + 1), m.substr(from, n));
      break;
    }
    default: {  // delete a slice
      const size_t from = pick(m.size()), n = 1 + pick(std::min<size_t>(m.size() - from, 40));
      m.erase(from, n);
      break;
    }
  }
  return m;
}

TEST(WireScan, MutatedRequestsKeepTheGuarantee) {
  std::mt19937_64 rng(20240611);
  int accepted = 0, refused = 0, with_invalid_items = 0;
  constexpr int kMutations = 20000;
  for (int i = 0; i < kMutations; ++i) {
    const Signal signal = kSignals[i % 3];
    static const std::string bases[3][2] = {
        {MakeTraces(false), MakeTraces(true)},
        {MakeMetrics(false), MakeMetrics(true)},
        {MakeLogs(false), MakeLogs(true)},
    };
    const std::string& base = bases[i % 3][(i / 3) % 2];
    std::string bytes = Mutate(base, rng);
    if (rng() % 4 == 0) bytes = Mutate(bytes, rng);  // sometimes twice
    if (CheckScanProperty(signal, bytes)) {
      ++accepted;
      if (ScanExportRequest(signal, bytes)->invalid_items > 0) ++with_invalid_items;
    } else {
      ++refused;
    }
    if (HasFailure()) {
      ADD_FAILURE() << "mutation " << i << " of " << SignalName(signal);
      return;
    }
  }
  RecordProperty("accepted", accepted);
  RecordProperty("refused", refused);
  // Both outcomes are common, so the property was exercised both ways.
  EXPECT_GT(accepted, kMutations / 10);
  EXPECT_GT(refused, kMutations / 10);
  EXPECT_GT(with_invalid_items, kMutations / 20);
}

}  // namespace
}  // namespace telkit
