#include "common/admin/admin_server.h"

#include <httplib.h>

namespace telkit {

Result<std::unique_ptr<AdminServer>> AdminServer::Start(const AdminServerOptions& options,
                                                        const MetricsRegistry& registry) {
  auto server = std::make_unique<httplib::Server>();
  const int threads = options.threads > 0 ? options.threads : 1;
  server->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server->set_read_timeout(5, 0);
  server->set_write_timeout(5, 0);
  server->set_keep_alive_timeout(5);
  server->set_keep_alive_max_count(100);
  // Probes and scrapes have no body.
  server->set_payload_max_length(64 * 1024);

  server->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain; charset=utf-8");
  });
  auto ready = options.ready;
  server->Get("/readyz", [ready](const httplib::Request&, httplib::Response& res) {
    if (!ready || ready()) {
      res.set_content("ready\n", "text/plain; charset=utf-8");
    } else {
      res.status = 503;
      res.set_content("not ready\n", "text/plain; charset=utf-8");
    }
  });
  server->Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry.ExpositionText(), std::string(MetricsRegistry::kContentType).c_str());
  });
  if (options.extra_routes) options.extra_routes(*server);
  // Everything else: 404, or 405 for a known path with another method.
  server->set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Handled;
        const bool known = req.path == "/healthz" || req.path == "/readyz" || req.path == "/metrics";
        if (res.status == 404 && known) {
          res.status = 405;
          res.set_header("Allow", "GET, HEAD");
        }
        res.set_content(res.status == 404   ? "not found\n"
                        : res.status == 405 ? "method not allowed\n"
                                            : "bad request\n",
                        "text/plain; charset=utf-8");
        return httplib::Server::HandlerResponse::Handled;
      }));

  TELKIT_ASSIGN_OR_RETURN(auto runner, HttpServerRunner::Start(std::move(server), options.listen));
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(runner)));
}

AdminServer::~AdminServer() { Stop(); }

}  // namespace telkit
