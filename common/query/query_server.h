// `tel-query serve`: the query APIs over the metrics store, each on its own
// listener, plus the admin endpoint. Today one API: Prometheus' HTTP API v1
// (default 127.0.0.1:9090, what Grafana's Prometheus data source talks to).
// Loki (:3100) and Tempo (:3200) are meant to join as further optional
// listeners in QueryServerOptions, each with its own backend, started and
// stopped by QueryServer alongside the Prometheus one; nothing here is
// specific to one API beyond its options and its start call.
//
// Data: `--data DIR` is read through OpenMetricsReader, reopened for every
// request so that blocks cut and samples appended by a running tsdb-write
// are seen at once (its head over DIR/head.sock), and a store whose daemon
// is stopped is read from its files with the writer lock held only for the
// length of one request (so tsdb-write can start again meanwhile; the
// request then answers 503 unavailable). Such stopped-store reads are
// serialised in this process. `--load FILE` serves files from memory (tests).
//
// Thread-safety: Stop() and the accessors from any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/admin/admin_server.h"
#include "common/admin/metrics_registry.h"
#include "common/api/prometheus_api_server.h"
#include "common/base/status.h"
#include "common/query/query_cli.h"

namespace telkit::query {

struct QueryServerOptions {
  DataSource data;
  // The Prometheus HTTP API; nullopt: not served.
  std::optional<api::PrometheusApiServerOptions> prometheus;
  // /healthz /readyz /metrics; nullopt: not served.
  std::optional<ListenAddress> admin;
  // tel-rules' state file (docs/format/rules-state.md), read on every
  // /api/v1/rules and /api/v1/alerts request; "": no rules, no alerts.
  std::string rules_state;
};

class QueryServer {
 public:
  // Opens the data source once (a missing store is NOT_FOUND here rather than
  // on every request), then starts every listener. UNAVAILABLE when an
  // address cannot be bound; INVALID_ARGUMENT when no API is enabled.
  static Result<std::unique_ptr<QueryServer>> Start(const QueryServerOptions& options);
  ~QueryServer();  // Stop()

  int prometheus_port() const { return prometheus_ ? prometheus_->port() : 0; }
  int admin_port() const { return admin_ ? admin_->port() : 0; }
  const MetricsRegistry& registry() const { return *registry_; }

  // Stops every listener, finishing requests in progress. Idempotent.
  void Stop();

 private:
  QueryServer() = default;
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<api::PrometheusApiServer> prometheus_;
  std::unique_ptr<AdminServer> admin_;
};

// The API backend over `source`: a fixed in-memory Querier for load_files,
// a MetricsReader per request for data_dir (see the file comment).
Result<api::PrometheusApiBackend> MakeBackend(const DataSource& source, int64_t default_t_ms);

}  // namespace telkit::query
