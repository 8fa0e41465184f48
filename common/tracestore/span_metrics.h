// SpanMetricsGenerator: Tempo's metrics generator (span metrics and service
// graphs) over the spans the trace store accepts, with Tempo's metric and
// label names, written as OTLP metrics (cumulative temporality) that
// tsdb-write ingests. See docs/tracestore.md, "Span metrics and service graphs".
//
//   traces_spanmetrics_calls_total{service, span_name, span_kind, status_code}
//   traces_spanmetrics_latency{...same}                 histogram, seconds
//   traces_service_graph_request_total{client, server, connection_type}
//   traces_service_graph_request_failed_total{...}
//   traces_service_graph_request_server_seconds{...}    histogram
//   traces_service_graph_request_client_seconds{...}    histogram
//
// span_kind is "SPAN_KIND_SERVER" etc., status_code "STATUS_CODE_OK" etc.
// (Tempo's values). Edges: a CLIENT (PRODUCER) span and the SERVER (CONSUMER)
// span whose parent it is, in whatever order they arrive;
// connection_type "" (direct) or "messaging_system". A client span still
// unpaired after `edge_wait_ns` becomes an edge to a virtual node when it
// names its peer: server = peer.service (connection_type "virtual_node") or
// db.system (connection_type "database"); otherwise it is dropped (counted).
// A root SERVER span unpaired after the wait is an edge from client "user".
// Each data point carries an exemplar: the trace and span id of its latest span.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/tracestore/span_record.h"

namespace telkit {

struct SpanMetricsOptions {
  std::vector<double> latency_buckets = {0.002, 0.004, 0.008, 0.016, 0.032, 0.064,
                                         0.128, 0.256, 0.512, 1.02,  2.05,  4.10};
  std::vector<double> graph_buckets = {0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8};
  int64_t edge_wait_ns = 10'000'000'000;
  size_t max_pending_edges = 100'000;  // unpaired spans kept; beyond: dropped (counted)
};

struct SpanMetricsStats {
  uint64_t spans = 0;
  uint64_t edges = 0;
  uint64_t virtual_edges = 0;
  uint64_t edges_expired = 0;   // unpaired and no peer: dropped
  uint64_t edges_dropped = 0;   // pending table full
};

class SpanMetricsGenerator {
 public:
  explicit SpanMetricsGenerator(SpanMetricsOptions options = {});

  // Counts one accepted span at wall time `now_ns` (for edge expiry).
  void Consume(const SpanRecord& span, int64_t now_ns);
  // Expires unpaired edge halves older than the wait.
  void Expire(int64_t now_ns);
  // The current cumulative values as a serialized ExportMetricsServiceRequest,
  // stamped `now_ns` (start time: the generator's creation, `start_ns`).
  std::string Collect(int64_t now_ns) const;
  SpanMetricsStats stats() const;

  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket (not cumulative) + the +Inf one
    double sum = 0;
    uint64_t count = 0;
    std::string exemplar_trace, exemplar_span;
    double exemplar_value = 0;
    int64_t exemplar_time = 0;
  };
  struct Counter {
    uint64_t value = 0;
    std::string exemplar_trace, exemplar_span;
    int64_t exemplar_time = 0;
  };
  // For tests: (service, span_name, span_kind, status_code) -> calls.
  using SpanKey = std::tuple<std::string, std::string, std::string, std::string>;
  using EdgeKey = std::tuple<std::string, std::string, std::string>;  // client, server, connection_type
  uint64_t Calls(const SpanKey& key) const;
  uint64_t EdgeRequests(const EdgeKey& key) const;
  uint64_t EdgeFailed(const EdgeKey& key) const;
  // Histogram counts per bucket (not cumulative), +Inf last.
  std::vector<uint64_t> LatencyCounts(const SpanKey& key) const;

 private:
  struct Half {
    std::string service;
    std::string peer;       // client: peer.service or db.system
    std::string peer_type;  // "virtual_node" | "database"
    bool messaging = false;
    bool failed = false;
    double seconds = 0;
    std::string trace_id, span_id;
    int64_t end_ns = 0;
    int64_t seen_ns = 0;
    bool root = false;
  };
  struct Edge {
    uint64_t requests = 0, failed = 0;
    Histogram server, client;
  };
  void Observe(Histogram& h, const std::vector<double>& buckets, double v, const std::string& trace,
               const std::string& span, int64_t t);
  void AddEdge(const EdgeKey& key, const Half* client, const Half* server);

  const SpanMetricsOptions options_;
  const int64_t start_ns_;
  mutable std::mutex mu_;
  std::map<SpanKey, std::pair<Counter, Histogram>> spans_;
  std::map<EdgeKey, Edge> edges_;
  // trace id + client span id -> the client half; trace id + parent span id
  // -> the server half.
  std::unordered_map<std::string, Half> clients_, servers_;
  SpanMetricsStats stats_;
};

}  // namespace telkit
