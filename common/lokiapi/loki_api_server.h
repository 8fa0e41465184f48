// Loki's HTTP API (loki_api.h) served over HTTP/1.1 with cpp-httplib through
// HttpServerRunner: what `tel-query serve --logs-data DIR` listens with on
// --loki-listen (default 127.0.0.1:3100), for Grafana's Loki data source.
//
// /loki/api/v1/tail is a WebSocket (RFC 6455, server side in websocket.h):
// cpp-httplib has no WebSocket server, so the handler answers the upgrade
// with 101 and streams frames through a length-less content provider on the
// raw connection. It sends a text frame per batch of new lines (polled every
// tail_poll_ms), a ping every tail_ping_seconds, and a close frame (1000)
// after tail_max_seconds or when the server stops; frames from the client
// are not read (Loki's clients send none but pings and close), and a client
// that went away is noticed when a write fails. At most max_tails tails run
// at once (429 beyond).
//
// Thread-safety: LokiApiServer's methods may be called from any thread.
#pragma once

#include <atomic>
#include <memory>

#include "common/admin/http_server.h"
#include "common/admin/metrics_registry.h"
#include "common/base/status.h"
#include "common/lokiapi/loki_api.h"

namespace telkit::lokiapi {

struct LokiApiServerOptions {
  ListenAddress listen{"127.0.0.1", 3100};
  LokiApiOptions api;
  int threads = 8;
  size_t max_request_bytes = 8u << 20;
  int read_timeout_seconds = 30;
  int write_timeout_seconds = 120;
  int keep_alive_timeout_seconds = 30;
  int tail_poll_ms = 1000;
  int tail_ping_seconds = 15;
  int tail_max_seconds = 3600;
  int max_tails = 4;
};

struct LokiApiCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> client_errors{0};
  std::atomic<uint64_t> server_errors{0};
  std::atomic<uint64_t> tails_started{0};
  std::atomic<uint64_t> tails_active{0};
  std::atomic<uint64_t> tail_frames{0};
};

class LokiApiServer {
 public:
  ~LokiApiServer();  // Stop()
  int port() const { return runner_->port(); }
  const LokiApiCounters& counters() const { return *counters_; }
  // Adds tel_query_loki_* callback metrics to `registry`.
  void RegisterMetrics(MetricsRegistry& registry) const;
  // Ends running tails (close frame), stops accepting, finishes requests in
  // progress, joins. Idempotent.
  void Stop();

 private:
  friend Result<std::unique_ptr<LokiApiServer>> StartLokiApi(const LokiApiServerOptions&, std::shared_ptr<LogQuerier>);
  LokiApiServer() = default;
  std::shared_ptr<const LokiApi> api_;
  std::shared_ptr<LokiApiCounters> counters_;
  std::shared_ptr<std::atomic<bool>> stopping_;
  std::unique_ptr<HttpServerRunner> runner_;
};

// Starts serving `querier` (REQUIRES: non-null, thread-safe). UNAVAILABLE
// when the address cannot be bound.
Result<std::unique_ptr<LokiApiServer>> StartLokiApi(const LokiApiServerOptions& options,
                                                    std::shared_ptr<LogQuerier> querier);

}  // namespace telkit::lokiapi
