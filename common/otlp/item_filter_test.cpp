#include "common/otlp/item_filter.h"

#include <gtest/gtest.h>

#include <string>

#include "common/otlp/wire_scan.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace otlp = opentelemetry::proto;
using otlp::collector::logs::v1::ExportLogsServiceRequest;
using otlp::collector::metrics::v1::ExportMetricsServiceRequest;
using otlp::collector::trace::v1::ExportTraceServiceRequest;

std::string Id(size_t n, char fill = '\x33') { return std::string(n, fill); }

otlp::trace::v1::Span* AddSpan(otlp::trace::v1::ScopeSpans* scope, const std::string& name,
                               std::string trace_id = Id(16)) {
  auto* span = scope->add_spans();
  span->set_name(name);
  span->set_trace_id(std::move(trace_id));
  span->set_span_id(Id(8));
  return span;
}

TEST(RemoveInvalidItems, LeavesValidRequestsByteForByte) {
  ExportTraceServiceRequest r;
  auto* scope = r.add_resource_spans()->add_scope_spans();
  AddSpan(scope, "a");
  r.add_resource_spans();  // an empty resource stays: nothing was removed from it
  std::string bytes = r.SerializeAsString();
  bytes += std::string("\xa0\x06\x01", 3);  // unknown field 100 = 1 at the end
  Result<FilteredRequest> f = RemoveInvalidItems(Signal::kTraces, bytes);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->removed, 0);
  EXPECT_EQ(f->reason, "");
  EXPECT_EQ(f->bytes, bytes);
}

TEST(RemoveInvalidItems, RemovesInvalidSpansAndTheContainersTheyLeaveEmpty) {
  ExportTraceServiceRequest r;
  auto* rs1 = r.add_resource_spans();
  rs1->mutable_resource()->add_attributes()->set_key("service.name");
  auto* keep_scope = rs1->add_scope_spans();
  AddSpan(keep_scope, "good1");
  AddSpan(keep_scope, "short trace id", Id(15));
  AddSpan(keep_scope, "good2");
  auto* empty_after = rs1->add_scope_spans();
  AddSpan(empty_after, "zero trace id", Id(16, '\0'));
  rs1->add_scope_spans();              // empty before: kept
  auto* rs2 = r.add_resource_spans();  // every span invalid: the whole resource goes
  auto* bad_link = AddSpan(rs2->add_scope_spans(), "bad link");
  bad_link->add_links()->set_trace_id(Id(16));

  Result<FilteredRequest> f = RemoveInvalidItems(Signal::kTraces, r.SerializeAsString());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->removed, 3);
  EXPECT_EQ(f->reason, "span 'trace_id' is not 16 bytes");

  ExportTraceServiceRequest out;
  ASSERT_TRUE(out.ParseFromString(f->bytes));
  ASSERT_EQ(out.resource_spans_size(), 1);
  EXPECT_EQ(out.resource_spans(0).resource().attributes(0).key(), "service.name");
  ASSERT_EQ(out.resource_spans(0).scope_spans_size(), 2);
  const auto& spans = out.resource_spans(0).scope_spans(0).spans();
  ASSERT_EQ(spans.size(), 2);
  EXPECT_EQ(spans[0].name(), "good1");
  EXPECT_EQ(spans[1].name(), "good2");
  EXPECT_EQ(out.resource_spans(0).scope_spans(1).spans_size(), 0);
}

TEST(RemoveInvalidItems, RemovesPointsOfNamelessMetricsAndBadHistogramPoints) {
  ExportMetricsServiceRequest r;
  auto* scope = r.add_resource_metrics()->add_scope_metrics();
  auto* nameless = scope->add_metrics();
  for (int i = 0; i < 3; ++i) nameless->mutable_gauge()->add_data_points()->set_as_int(i);
  auto* hist = scope->add_metrics();
  hist->set_name("latency");
  auto* good = hist->mutable_histogram()->add_data_points();
  good->add_explicit_bounds(1.0);
  good->add_bucket_counts(1);
  good->add_bucket_counts(2);
  auto* bad = hist->mutable_histogram()->add_data_points();
  bad->add_explicit_bounds(1.0);
  bad->add_bucket_counts(1);
  auto* all_bad = scope->add_metrics();
  all_bad->set_name("only.bad");
  all_bad->mutable_histogram()->add_data_points()->add_bucket_counts(1);
  all_bad->mutable_histogram()->mutable_data_points(0)->add_bucket_counts(1);
  auto* nameless_empty = scope->add_metrics();  // no points, nothing invalid: kept
  nameless_empty->set_unit("s");

  const std::string bytes = r.SerializeAsString();
  Result<FilteredRequest> f = RemoveInvalidItems(Signal::kMetrics, bytes);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->removed, 5);
  EXPECT_EQ(f->reason, "metric 'name' is empty");
  Result<ScanReport> scan = ScanExportRequest(Signal::kMetrics, bytes);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->invalid_items, f->removed);

  ExportMetricsServiceRequest out;
  ASSERT_TRUE(out.ParseFromString(f->bytes));
  const auto& metrics = out.resource_metrics(0).scope_metrics(0).metrics();
  ASSERT_EQ(metrics.size(), 2);
  EXPECT_EQ(metrics[0].name(), "latency");
  ASSERT_EQ(metrics[0].histogram().data_points_size(), 1);
  EXPECT_EQ(metrics[0].histogram().data_points(0).bucket_counts_size(), 2);
  EXPECT_EQ(metrics[1].unit(), "s");
}

TEST(RemoveInvalidItems, RemovesLogRecordsWithBadIds) {
  ExportLogsServiceRequest r;
  auto* scope = r.add_resource_logs()->add_scope_logs();
  scope->add_log_records()->mutable_body()->set_string_value("no ids: fine");
  auto* bad = scope->add_log_records();
  bad->set_span_id(Id(7));
  auto* with_ids = scope->add_log_records();
  with_ids->set_trace_id(Id(16));
  with_ids->set_span_id(Id(8));

  Result<FilteredRequest> f = RemoveInvalidItems(Signal::kLogs, r.SerializeAsString());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->removed, 1);
  EXPECT_EQ(f->reason, "log record 'span_id' is neither empty nor 8 bytes");
  ExportLogsServiceRequest out;
  ASSERT_TRUE(out.ParseFromString(f->bytes));
  ASSERT_EQ(out.resource_logs(0).scope_logs(0).log_records_size(), 2);
  EXPECT_EQ(out.resource_logs(0).scope_logs(0).log_records(1).trace_id(), Id(16));
}

TEST(RemoveInvalidItems, RefusesWhatDoesNotParse) {
  Result<FilteredRequest> f = RemoveInvalidItems(Signal::kTraces, std::string("\x0a\x05", 2));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f.status().message(), "'traces' request does not parse as protobuf");
  f = RemoveInvalidItems(Signal::kPrometheusRemoteWrite, "");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace telkit
