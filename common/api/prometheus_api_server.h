// The Prometheus HTTP API (prometheus_api.h) served over HTTP/1.1 with
// cpp-httplib through HttpServerRunner (common/admin/http_server.h): what
// `tel-query serve` listens with on :9090.
//
// Transport rules (docs/format/prometheus-http-api.md):
//  * GET parameters from the query string; POST also from an
//    application/x-www-form-urlencoded body (body values first, as Go's
//    Request.FormValue). Other POST bodies: 400 bad_data.
//  * A response of at least gzip_min_bytes is gzip-compressed when the
//    request's Accept-Encoding names gzip (not "gzip;q=0"). httplib's own
//    compression is bypassed: it prefers brotli at quality 11, far too slow
//    for tens of megabytes of JSON.
//  * Request bodies are limited to max_request_bytes (413 beyond).
//
// Thread-safety: PrometheusApiServer's methods may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "common/admin/http_server.h"
#include "common/admin/metrics_registry.h"
#include "common/api/prometheus_api.h"
#include "common/base/status.h"

namespace telkit::api {

struct PrometheusApiServerOptions {
  ListenAddress listen{"127.0.0.1", 9090};
  PrometheusApiOptions api;
  int threads = 8;                  // concurrent requests
  size_t max_request_bytes = 8u << 20;
  int read_timeout_seconds = 30;
  int write_timeout_seconds = 120;  // a big answer to a slow client
  int keep_alive_timeout_seconds = 30;
};

// Counters of what the server answered, for the owner's /metrics.
struct PrometheusApiCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> client_errors{0};  // 4xx: bad parameters, unknown paths
  std::atomic<uint64_t> server_errors{0};  // 5xx: timeouts, storage
  std::atomic<uint64_t> response_bytes{0};  // as sent (after compression)
  std::atomic<uint64_t> gzip_responses{0};
};

class PrometheusApiServer {
 public:
  PrometheusApiServer(const PrometheusApiServer&) = delete;
  PrometheusApiServer& operator=(const PrometheusApiServer&) = delete;
  ~PrometheusApiServer();  // Stop()

  int port() const { return runner_->port(); }
  ListenAddress address() const { return runner_->address(); }
  const PrometheusApiCounters& counters() const { return *counters_; }

  // Adds the counters to `registry` as tel_query_api_* callback metrics
  // (requests, 4xx/5xx responses, bytes sent, gzip responses). They stay
  // valid after the server is destroyed (they then stop changing).
  void RegisterMetrics(MetricsRegistry& registry) const;

  // Stops accepting, finishes requests in progress, joins. Idempotent.
  void Stop();

 private:
  friend Result<std::unique_ptr<PrometheusApiServer>> StartPrometheusApi(const PrometheusApiServerOptions&,
                                                                          PrometheusApiBackend);
  PrometheusApiServer() = default;

  std::shared_ptr<const PrometheusApi> api_;
  std::shared_ptr<PrometheusApiCounters> counters_;
  std::unique_ptr<HttpServerRunner> runner_;
};

// Starts serving. REQUIRES: backend.querier is set.
// INVALID_ARGUMENT without a querier, UNAVAILABLE when the address cannot be
// bound, INTERNAL when the server thread does not start.
Result<std::unique_ptr<PrometheusApiServer>> StartPrometheusApi(const PrometheusApiServerOptions& options,
                                                                PrometheusApiBackend backend);

// Decodes application/x-www-form-urlencoded text ("a=1&b=%20x+y") into
// pairs, in order. INVALID_ARGUMENT for a bad %-escape.
Result<std::vector<std::pair<std::string, std::string>>> ParseFormUrlEncoded(std::string_view text);

// Whether an Accept-Encoding header value accepts gzip (a "gzip" or "*"
// coding whose q is not 0).
bool AcceptsGzip(std::string_view accept_encoding);

}  // namespace telkit::api
