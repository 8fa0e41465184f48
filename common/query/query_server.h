// `tel-query serve`: the query APIs over the stores, each on its own
// listener, plus the admin endpoint: Prometheus' HTTP API v1 over the
// metrics store (default 127.0.0.1:9090, what Grafana's Prometheus data
// source talks to) and Tempo's HTTP API over a trace store (tempoapi/,
// default 127.0.0.1:3200). Loki (:3100) is meant to join the same way: an
// optional listener in QueryServerOptions with its own backend, started and
// stopped by QueryServer alongside the others; nothing here is specific to
// one API beyond its options and its start call.
//
// Data: `--data DIR` is read through one OpenMetricsReader, kept across
// requests while ObserveStore() (a few stat calls and a lock probe) says the
// store is as it was when it was opened, and reopened otherwise: blocks cut
// and samples appended by a running tsdb-write are seen at once (its head
// over DIR/head.sock, its blocks read per call); a store whose daemon is
// stopped is read from its files once (read-only, under the writer lock,
// which is then let go so tsdb-write can start again meanwhile) and read
// again when its files change. While another process holds the lock and
// serves no head (an import), requests answer 503 unavailable. `--load
// FILE` serves files from memory (tests).
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
#include "common/lokiapi/loki_api_server.h"
#include "common/query/query_cli.h"
#include "common/tempoapi/tempo_api_server.h"

namespace telkit::query {

struct QueryServerOptions {
  DataSource data;
  // The Prometheus HTTP API; nullopt: not served.
  std::optional<api::PrometheusApiServerOptions> prometheus;
  // Loki's HTTP API over the log store in `logs_data` (read through
  // LogReader, opened once); nullopt: not served.
  std::optional<lokiapi::LokiApiServerOptions> loki;
  std::string logs_data;
  // /healthz /readyz /metrics; nullopt: not served.
  std::optional<ListenAddress> admin;
  // Tempo's HTTP API over a trace store directory (tempoapi/); nullopt: not
  // served. Needs no metrics data: with only this, `data` may be empty.
  std::optional<tempoapi::TempoApiServerOptions> tempo;
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
  int tempo_port() const { return tempo_ ? tempo_->port() : 0; }
  int loki_port() const { return loki_ ? loki_->port() : 0; }
  const MetricsRegistry& registry() const { return *registry_; }

  // Stops every listener, finishing requests in progress. Idempotent.
  void Stop();

 private:
  QueryServer() = default;
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<api::PrometheusApiServer> prometheus_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<tempoapi::TempoApiServer> tempo_;
  std::unique_ptr<lokiapi::LokiApiServer> loki_;
};

// The API backend over `source`: a fixed in-memory Querier for load_files,
// a cached MetricsReader for data_dir (see the file comment).
Result<api::PrometheusApiBackend> MakeBackend(const DataSource& source, int64_t default_t_ms);

}  // namespace telkit::query
