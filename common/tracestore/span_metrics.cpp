#include "common/tracestore/span_metrics.h"

#include <algorithm>
#include <chrono>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"

namespace telkit {
namespace {

namespace pb = opentelemetry::proto;

constexpr const char* kKinds[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                  "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};
constexpr const char* kStatuses[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};
constexpr int kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5;

std::string Attr(const SpanRecord& s, std::string_view key) {
  for (const auto& [k, v] : s.attributes) {
    if (k == key) return v;
  }
  return "";
}

void AddLabel(google::protobuf::RepeatedPtrField<pb::common::v1::KeyValue>* attrs, const std::string& k,
              const std::string& v) {
  auto* kv = attrs->Add();
  kv->set_key(k);
  kv->mutable_value()->set_string_value(v);
}

}  // namespace

SpanMetricsGenerator::SpanMetricsGenerator(SpanMetricsOptions options)
    : options_(std::move(options)),
      start_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count()) {}

void SpanMetricsGenerator::Observe(Histogram& h, const std::vector<double>& buckets, double v,
                                   const std::string& trace, const std::string& span, int64_t t) {
  if (h.counts.empty()) h.counts.assign(buckets.size() + 1, 0);
  // Prometheus buckets are upper-inclusive: le=b counts v <= b.
  size_t i = std::lower_bound(buckets.begin(), buckets.end(), v) - buckets.begin();
  h.counts[i]++;
  h.sum += v;
  h.count++;
  h.exemplar_trace = trace;
  h.exemplar_span = span;
  h.exemplar_value = v;
  h.exemplar_time = t;
}

void SpanMetricsGenerator::Consume(const SpanRecord& s, int64_t now_ns) {
  std::lock_guard<std::mutex> l(mu_);
  stats_.spans++;
  const int kind = s.kind >= 0 && s.kind <= 5 ? s.kind : 0;
  const int status = s.status >= 0 && s.status <= 2 ? s.status : 0;
  const double seconds = static_cast<double>(s.duration_ns()) / 1e9;
  const auto end = static_cast<int64_t>(s.end_ns);
  auto& [calls, latency] = spans_[SpanKey{s.service, s.name, kKinds[kind], kStatuses[status]}];
  calls.value++;
  calls.exemplar_trace = s.trace_id;
  calls.exemplar_span = s.span_id;
  calls.exemplar_time = end;
  Observe(latency, options_.latency_buckets, seconds, s.trace_id, s.span_id, end);

  if (kind != kServer && kind != kClient && kind != kProducer && kind != kConsumer) return;
  Half h;
  h.service = s.service;
  h.messaging = kind == kProducer || kind == kConsumer;
  h.failed = status == 2;
  h.seconds = seconds;
  h.trace_id = s.trace_id;
  h.span_id = s.span_id;
  h.end_ns = end;
  h.seen_ns = now_ns;
  if (kind == kClient || kind == kProducer) {
    std::string key = s.trace_id + s.span_id;
    auto it = servers_.find(key);
    if (it != servers_.end()) {
      AddEdge({h.service, it->second.service, h.messaging ? "messaging_system" : ""}, &h, &it->second);
      servers_.erase(it);
      return;
    }
    if (std::string p = Attr(s, "peer.service"); !p.empty()) {
      h.peer = p;
      h.peer_type = "virtual_node";
    } else if (std::string d = Attr(s, "db.system"); !d.empty()) {
      h.peer = d;
      h.peer_type = "database";
    }
    if (clients_.size() >= options_.max_pending_edges) {
      stats_.edges_dropped++;
      return;
    }
    clients_[key] = std::move(h);
  } else {
    h.root = s.parent_span_id.empty();
    std::string key = s.trace_id + s.parent_span_id;
    auto it = h.root ? clients_.end() : clients_.find(key);
    if (it != clients_.end()) {
      AddEdge({it->second.service, h.service, h.messaging ? "messaging_system" : ""}, &it->second, &h);
      clients_.erase(it);
      return;
    }
    if (servers_.size() >= options_.max_pending_edges) {
      stats_.edges_dropped++;
      return;
    }
    if (h.root) key = s.trace_id + std::string(8, '\0') + s.span_id;  // never matched by a client
    servers_[key] = std::move(h);
  }
}

void SpanMetricsGenerator::AddEdge(const EdgeKey& key, const Half* client, const Half* server) {
  Edge& e = edges_[key];
  e.requests++;
  if ((client && client->failed) || (server && server->failed)) e.failed++;
  if (server) Observe(e.server, options_.graph_buckets, server->seconds, server->trace_id, server->span_id, server->end_ns);
  if (client) Observe(e.client, options_.graph_buckets, client->seconds, client->trace_id, client->span_id, client->end_ns);
  stats_.edges++;
}

void SpanMetricsGenerator::Expire(int64_t now_ns) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (now_ns - it->second.seen_ns < options_.edge_wait_ns) {
      ++it;
      continue;
    }
    const Half& c = it->second;
    if (!c.peer.empty()) {
      AddEdge({c.service, c.peer, c.peer_type}, &c, nullptr);
      stats_.virtual_edges++;
    } else {
      stats_.edges_expired++;
    }
    it = clients_.erase(it);
  }
  for (auto it = servers_.begin(); it != servers_.end();) {
    if (now_ns - it->second.seen_ns < options_.edge_wait_ns) {
      ++it;
      continue;
    }
    const Half& s = it->second;
    if (s.root) {
      AddEdge({"user", s.service, "virtual_node"}, nullptr, &s);
      stats_.virtual_edges++;
    } else {
      stats_.edges_expired++;
    }
    it = servers_.erase(it);
  }
}

std::string SpanMetricsGenerator::Collect(int64_t now_ns) const {
  std::lock_guard<std::mutex> l(mu_);
  pb::collector::metrics::v1::ExportMetricsServiceRequest req;
  auto* rm = req.add_resource_metrics();
  auto* sm = rm->add_scope_metrics();
  sm->mutable_scope()->set_name("telkit.trace-store.metrics-generator");
  auto counter = [&](const char* name) {
    auto* m = sm->add_metrics();
    m->set_name(name);
    m->mutable_sum()->set_aggregation_temporality(pb::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
    m->mutable_sum()->set_is_monotonic(true);
    return m->mutable_sum();
  };
  auto histogram = [&](const char* name) {
    auto* m = sm->add_metrics();
    m->set_name(name);
    m->mutable_histogram()->set_aggregation_temporality(pb::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
    return m->mutable_histogram();
  };
  auto exemplar = [&](google::protobuf::RepeatedPtrField<pb::metrics::v1::Exemplar>* ex, const std::string& trace,
                      const std::string& span, double v, int64_t t) {
    if (trace.empty()) return;
    auto* e = ex->Add();
    e->set_trace_id(trace);
    e->set_span_id(span);
    e->set_as_double(v);
    e->set_time_unix_nano(static_cast<uint64_t>(t));
  };
  auto hist_point = [&](pb::metrics::v1::Histogram* hm, const Histogram& h, const std::vector<double>& buckets) {
    auto* p = hm->add_data_points();
    p->set_start_time_unix_nano(static_cast<uint64_t>(start_ns_));
    p->set_time_unix_nano(static_cast<uint64_t>(now_ns));
    p->set_count(h.count);
    p->set_sum(h.sum);
    for (double b : buckets) p->add_explicit_bounds(b);
    for (size_t i = 0; i <= buckets.size(); ++i) p->add_bucket_counts(i < h.counts.size() ? h.counts[i] : 0);
    exemplar(p->mutable_exemplars(), h.exemplar_trace, h.exemplar_span, h.exemplar_value, h.exemplar_time);
    return p;
  };
  if (!spans_.empty()) {
    auto* calls = counter("traces_spanmetrics_calls_total");
    auto* latency = histogram("traces_spanmetrics_latency");
    for (const auto& [key, v] : spans_) {
      const auto& [service, name, kind, status] = key;
      auto label = [&](auto* attrs) {
        AddLabel(attrs, "service", service);
        AddLabel(attrs, "span_name", name);
        AddLabel(attrs, "span_kind", kind);
        AddLabel(attrs, "status_code", status);
      };
      auto* p = calls->add_data_points();
      p->set_start_time_unix_nano(static_cast<uint64_t>(start_ns_));
      p->set_time_unix_nano(static_cast<uint64_t>(now_ns));
      p->set_as_int(static_cast<int64_t>(v.first.value));
      label(p->mutable_attributes());
      exemplar(p->mutable_exemplars(), v.first.exemplar_trace, v.first.exemplar_span, 1, v.first.exemplar_time);
      label(hist_point(latency, v.second, options_.latency_buckets)->mutable_attributes());
    }
  }
  if (!edges_.empty()) {
    auto* total = counter("traces_service_graph_request_total");
    auto* failed = counter("traces_service_graph_request_failed_total");
    auto* server = histogram("traces_service_graph_request_server_seconds");
    auto* client = histogram("traces_service_graph_request_client_seconds");
    for (const auto& [key, e] : edges_) {
      const auto& [c, s, type] = key;
      auto label = [&](auto* attrs) {
        AddLabel(attrs, "client", c);
        AddLabel(attrs, "server", s);
        if (!type.empty()) AddLabel(attrs, "connection_type", type);
      };
      for (auto [sum, value] : {std::pair{total, e.requests}, std::pair{failed, e.failed}}) {
        auto* p = sum->add_data_points();
        p->set_start_time_unix_nano(static_cast<uint64_t>(start_ns_));
        p->set_time_unix_nano(static_cast<uint64_t>(now_ns));
        p->set_as_int(static_cast<int64_t>(value));
        label(p->mutable_attributes());
      }
      if (e.server.count > 0) label(hist_point(server, e.server, options_.graph_buckets)->mutable_attributes());
      if (e.client.count > 0) label(hist_point(client, e.client, options_.graph_buckets)->mutable_attributes());
    }
  }
  return req.SerializeAsString();
}

SpanMetricsStats SpanMetricsGenerator::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

uint64_t SpanMetricsGenerator::Calls(const SpanKey& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = spans_.find(key);
  return it == spans_.end() ? 0 : it->second.first.value;
}
uint64_t SpanMetricsGenerator::EdgeRequests(const EdgeKey& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = edges_.find(key);
  return it == edges_.end() ? 0 : it->second.requests;
}
uint64_t SpanMetricsGenerator::EdgeFailed(const EdgeKey& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = edges_.find(key);
  return it == edges_.end() ? 0 : it->second.failed;
}
std::vector<uint64_t> SpanMetricsGenerator::LatencyCounts(const SpanKey& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = spans_.find(key);
  return it == spans_.end() ? std::vector<uint64_t>{} : it->second.second.counts;
}

}  // namespace telkit
