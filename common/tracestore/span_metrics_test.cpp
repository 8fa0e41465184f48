#include "common/tracestore/span_metrics.h"

#include <gtest/gtest.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"

namespace telkit {
namespace {

namespace pb = opentelemetry::proto;

SpanRecord Span(int trace, int id, int parent, std::string service, std::string name, int kind, int status,
                uint64_t duration_ns, std::vector<std::pair<std::string, std::string>> attrs = {}) {
  SpanRecord s;
  s.trace_id = std::string(15, '\x01') + static_cast<char>(trace);
  s.span_id = std::string(7, '\x02') + static_cast<char>(id);
  if (parent >= 0) s.parent_span_id = std::string(7, '\x02') + static_cast<char>(parent);
  s.service = std::move(service);
  s.name = std::move(name);
  s.kind = kind;
  s.status = status;
  s.start_ns = 1'000'000'000;
  s.end_ns = s.start_ns + duration_ns;
  s.attributes = std::move(attrs);
  return s;
}

constexpr int kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5;

TEST(SpanMetrics, CallsAndLatencyWithTempoLabels) {
  SpanMetricsGenerator g;
  for (int i = 0; i < 5; ++i) g.Consume(Span(1, i, -1, "api", "GET /", kServer, 0, 3'000'000), 0);  // 3 ms
  g.Consume(Span(1, 9, -1, "api", "GET /", kServer, 2, 5'000'000'000), 0);                          // 5 s, error
  EXPECT_EQ(g.Calls({"api", "GET /", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET"}), 5u);
  EXPECT_EQ(g.Calls({"api", "GET /", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR"}), 1u);
  // 3 ms falls in le=0.004 (index 1); 5 s in +Inf (index 12).
  auto counts = g.LatencyCounts({"api", "GET /", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET"});
  ASSERT_EQ(counts.size(), 13u);
  EXPECT_EQ(counts[1], 5u);
  EXPECT_EQ(g.LatencyCounts({"api", "GET /", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR"})[12], 1u);

  pb::collector::metrics::v1::ExportMetricsServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(g.Collect(2'000'000'000)));
  const auto& metrics = req.resource_metrics(0).scope_metrics(0).metrics();
  ASSERT_EQ(metrics.size(), 2);
  EXPECT_EQ(metrics[0].name(), "traces_spanmetrics_calls_total");
  EXPECT_TRUE(metrics[0].sum().is_monotonic());
  EXPECT_EQ(metrics[0].sum().aggregation_temporality(), pb::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
  ASSERT_EQ(metrics[0].sum().data_points_size(), 2);
  const auto& p = metrics[0].sum().data_points(1);  // the UNSET one sorts after ERROR
  EXPECT_EQ(p.as_int(), 5);
  std::map<std::string, std::string> labels;
  for (const auto& kv : p.attributes()) labels[kv.key()] = kv.value().string_value();
  EXPECT_EQ(labels, (std::map<std::string, std::string>{{"service", "api"},
                                                        {"span_name", "GET /"},
                                                        {"span_kind", "SPAN_KIND_SERVER"},
                                                        {"status_code", "STATUS_CODE_UNSET"}}));
  ASSERT_EQ(p.exemplars_size(), 1);
  EXPECT_EQ(p.exemplars(0).trace_id(), std::string(15, '\x01') + '\x01');
  EXPECT_EQ(metrics[1].name(), "traces_spanmetrics_latency");
  const auto& h = metrics[1].histogram().data_points(1);
  EXPECT_EQ(h.count(), 5u);
  EXPECT_NEAR(h.sum(), 0.015, 1e-12);
  EXPECT_EQ(h.explicit_bounds_size(), 12);
  EXPECT_EQ(h.bucket_counts(1), 5u);
  ASSERT_EQ(h.exemplars_size(), 1);
  EXPECT_NEAR(h.exemplars(0).as_double(), 0.003, 1e-12);
}

TEST(SpanMetrics, ServiceGraphEdgesInEitherOrderAndVirtualNodes) {
  SpanMetricsGenerator g;
  // frontend -> checkout, client first, 3 times; once the server fails.
  for (int t = 0; t < 3; ++t) {
    g.Consume(Span(t, 1, 0, "frontend", "call", kClient, 0, 200'000'000), 0);
    g.Consume(Span(t, 2, 1, "checkout", "serve", kServer, t == 2 ? 2 : 0, 150'000'000), 0);
  }
  // Server first.
  g.Consume(Span(7, 2, 1, "checkout", "serve", kServer, 0, 100'000'000), 0);
  g.Consume(Span(7, 1, 0, "frontend", "call", kClient, 0, 120'000'000), 0);
  // Messaging.
  g.Consume(Span(8, 1, 0, "orders", "send", kProducer, 0, 1'000'000), 0);
  g.Consume(Span(8, 2, 1, "billing", "receive", kConsumer, 0, 1'000'000), 0);
  // Uninstrumented peers: a database and a peer service; an unnamed one.
  g.Consume(Span(9, 3, 0, "checkout", "SELECT", kClient, 0, 5'000'000, {{"db.system", "postgresql"}}), 0);
  g.Consume(Span(9, 4, 0, "checkout", "charge", kClient, 2, 5'000'000, {{"peer.service", "payments"}}), 0);
  g.Consume(Span(9, 5, 0, "checkout", "mystery", kClient, 0, 5'000'000), 0);
  // A root server span: from "user".
  g.Consume(Span(10, 1, -1, "frontend", "GET /", kServer, 0, 5'000'000), 0);
  EXPECT_EQ(g.EdgeRequests({"frontend", "checkout", ""}), 4u);
  EXPECT_EQ(g.EdgeFailed({"frontend", "checkout", ""}), 1u);
  EXPECT_EQ(g.EdgeRequests({"orders", "billing", "messaging_system"}), 1u);
  EXPECT_EQ(g.EdgeRequests({"checkout", "postgresql", "database"}), 0u);  // not expired yet
  g.Expire(5'000'000'000);
  EXPECT_EQ(g.EdgeRequests({"checkout", "postgresql", "database"}), 0u);
  g.Expire(10'000'000'000);
  EXPECT_EQ(g.EdgeRequests({"checkout", "postgresql", "database"}), 1u);
  EXPECT_EQ(g.EdgeRequests({"checkout", "payments", "virtual_node"}), 1u);
  EXPECT_EQ(g.EdgeFailed({"checkout", "payments", "virtual_node"}), 1u);
  EXPECT_EQ(g.EdgeRequests({"user", "frontend", "virtual_node"}), 1u);
  auto st = g.stats();
  EXPECT_EQ(st.edges, 8u);
  EXPECT_EQ(st.virtual_edges, 3u);
  EXPECT_EQ(st.edges_expired, 1u);

  pb::collector::metrics::v1::ExportMetricsServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(g.Collect(20'000'000'000)));
  std::map<std::string, const pb::metrics::v1::Metric*> by_name;
  for (const auto& m : req.resource_metrics(0).scope_metrics(0).metrics()) by_name[m.name()] = &m;
  ASSERT_TRUE(by_name.count("traces_service_graph_request_total"));
  ASSERT_TRUE(by_name.count("traces_service_graph_request_failed_total"));
  ASSERT_TRUE(by_name.count("traces_service_graph_request_server_seconds"));
  ASSERT_TRUE(by_name.count("traces_service_graph_request_client_seconds"));
  // frontend -> checkout server durations: 0.15 x3, 0.1 -> le=0.1: 1, le=0.2: 3.
  for (const auto& p : by_name["traces_service_graph_request_server_seconds"]->histogram().data_points()) {
    std::map<std::string, std::string> labels;
    for (const auto& kv : p.attributes()) labels[kv.key()] = kv.value().string_value();
    if (labels["client"] != "frontend" || labels["server"] != "checkout") continue;
    EXPECT_EQ(labels.count("connection_type"), 0u);
    EXPECT_EQ(p.count(), 4u);
    EXPECT_EQ(p.bucket_counts(0), 1u);
    EXPECT_EQ(p.bucket_counts(1), 3u);
  }
}

}  // namespace
}  // namespace telkit
