// The admin endpoint every telkit daemon serves (--admin-listen):
//   GET /healthz  200 "ok" while the process serves HTTP at all (liveness)
//   GET /readyz   200 "ready" when the daemon's readiness check passes,
//                 503 "not ready" otherwise (starting, draining, output down)
//   GET /metrics  the MetricsRegistry in the Prometheus text format 0.0.4
// Anything else: 404; a method other than GET/HEAD on these paths: 405.
// Meant for 127.0.0.1 or a private interface: it has no authentication.
// Thread-safety: Stop() and port() from any thread; the readiness check and
// the registry are called from the server's threads.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/admin/http_server.h"
#include "common/admin/metrics_registry.h"
#include "common/base/status.h"

namespace telkit {

struct AdminServerOptions {
  ListenAddress listen{"127.0.0.1", 0};
  // Called for every /readyz request; must be thread-safe and fast. Unset:
  // always ready.
  std::function<bool()> ready;
  // Worker threads (scrapes and probes are short; two suffice).
  int threads = 2;
  // Adds a daemon's own routes (tsdb-write's POST /api/v1/admin/tsdb/...)
  // before the server starts. Handlers run on the server's threads.
  std::function<void(httplib::Server&)> extra_routes;
};

class AdminServer {
 public:
  // Binds and starts serving. `registry` must outlive the server.
  // UNAVAILABLE when the address cannot be bound.
  static Result<std::unique_ptr<AdminServer>> Start(const AdminServerOptions& options, const MetricsRegistry& registry);
  ~AdminServer();  // Stop()

  int port() const { return runner_->port(); }
  // Stops serving and joins the server's threads. Idempotent.
  void Stop() { runner_->Stop(); }

 private:
  explicit AdminServer(std::unique_ptr<HttpServerRunner> runner) : runner_(std::move(runner)) {}
  std::unique_ptr<HttpServerRunner> runner_;
};

}  // namespace telkit
