#include "common/tempoapi/tempo_api_server.h"

#include <httplib.h>

#include <algorithm>

namespace telkit::tempoapi {

TempoApiServer::~TempoApiServer() { Stop(); }

void TempoApiServer::Stop() {
  if (runner_) runner_->Stop();
}

void TempoApiServer::RegisterMetrics(MetricsRegistry& registry) const {
  std::shared_ptr<TempoApiCounters> c = counters_;
  auto read = [c](std::atomic<uint64_t> TempoApiCounters::*field) {
    return [c, field] { return static_cast<double>((*c.*field).load(std::memory_order_relaxed)); };
  };
  registry.AddCallback("tel_query_tempo_api_requests_total", "Tempo API requests answered.", MetricType::kCounter, {},
                       read(&TempoApiCounters::requests));
  registry.AddCallback("tel_query_tempo_api_error_responses_total", "Tempo API error responses by class.",
                       MetricType::kCounter, {{"class", "4xx"}}, read(&TempoApiCounters::client_errors));
  registry.AddCallback("tel_query_tempo_api_error_responses_total", "Tempo API error responses by class.",
                       MetricType::kCounter, {{"class", "5xx"}}, read(&TempoApiCounters::server_errors));
}

Result<std::unique_ptr<TempoApiServer>> StartTempoApi(const TempoApiServerOptions& options) {
  if (options.api.traces_dir.empty()) return InvalidArgumentError("tempo api: no traces directory");
  auto api = std::make_shared<const TempoApi>(options.api);
  auto counters = std::make_shared<TempoApiCounters>();
  auto server = std::make_unique<httplib::Server>();
  const int threads = std::max(1, options.threads);
  server->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server->set_read_timeout(options.read_timeout_seconds, 0);
  server->set_write_timeout(options.write_timeout_seconds, 0);
  server->set_payload_max_length(1u << 20);
  auto handler = [api, counters](const httplib::Request& req, httplib::Response& res) {
    counters->requests.fetch_add(1, std::memory_order_relaxed);
    TempoRequest r;
    r.method = req.method;
    r.path = req.path;
    r.accept = req.get_header_value("Accept");
    for (const auto& [k, v] : req.params) r.params.emplace_back(k, v);
    TempoResponse out = api->Handle(r);
    if (out.status >= 500) counters->server_errors.fetch_add(1, std::memory_order_relaxed);
    else if (out.status >= 400) counters->client_errors.fetch_add(1, std::memory_order_relaxed);
    if (std::string origin = req.get_header_value("Origin"); !origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Access-Control-Allow-Headers", "Accept, Authorization, Content-Type, Origin");
    }
    res.status = out.status;
    res.set_content(std::move(out.body), out.content_type.c_str());
  };
  server->Get(".*", handler);
  server->Post(".*", handler);
  TELKIT_ASSIGN_OR_RETURN(auto runner, HttpServerRunner::Start(std::move(server), options.listen));
  std::unique_ptr<TempoApiServer> out(new TempoApiServer());
  out->api_ = std::move(api);
  out->counters_ = std::move(counters);
  out->runner_ = std::move(runner);
  return out;
}

}  // namespace telkit::tempoapi
