// The Tempo HTTP API (tempo_api.h) served over HTTP/1.1 with cpp-httplib
// through HttpServerRunner: the listener `tel-query serve --tempo-listen`
// (default 127.0.0.1:3200) adds when --traces-data is given.
//
// Parameters come from the query string (and, for POST, a form body, which
// httplib merges). CORS: the request's Origin is echoed, as Tempo does with
// its default settings for Grafana's browser-side calls.
//
// Thread-safety: TempoApiServer's methods may be called from any thread.
#pragma once

#include <atomic>
#include <memory>

#include "common/admin/http_server.h"
#include "common/admin/metrics_registry.h"
#include "common/base/status.h"
#include "common/tempoapi/tempo_api.h"

namespace telkit::tempoapi {

struct TempoApiServerOptions {
  ListenAddress listen{"127.0.0.1", 3200};
  TempoApiOptions api;
  int threads = 8;
  int read_timeout_seconds = 30;
  int write_timeout_seconds = 120;
};

struct TempoApiCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> client_errors{0};  // 4xx
  std::atomic<uint64_t> server_errors{0};  // 5xx
};

class TempoApiServer {
 public:
  TempoApiServer(const TempoApiServer&) = delete;
  TempoApiServer& operator=(const TempoApiServer&) = delete;
  ~TempoApiServer();  // Stop()

  int port() const { return runner_->port(); }
  const TempoApiCounters& counters() const { return *counters_; }
  // tel_query_tempo_api_requests_total and the 4xx/5xx counts.
  void RegisterMetrics(MetricsRegistry& registry) const;
  // Stops accepting, finishes requests in progress. Idempotent.
  void Stop();

 private:
  friend Result<std::unique_ptr<TempoApiServer>> StartTempoApi(const TempoApiServerOptions&);
  TempoApiServer() = default;
  std::shared_ptr<const TempoApi> api_;
  std::shared_ptr<TempoApiCounters> counters_;
  std::unique_ptr<HttpServerRunner> runner_;
};

// UNAVAILABLE when the address cannot be bound; INVALID_ARGUMENT without a
// traces directory.
Result<std::unique_ptr<TempoApiServer>> StartTempoApi(const TempoApiServerOptions& options);

}  // namespace telkit::tempoapi
