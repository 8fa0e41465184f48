#include "common/lokiapi/loki_api_server.h"

#include <httplib.h>

#include <chrono>
#include <thread>

#include "common/api/prometheus_api_server.h"
#include "common/lokiapi/websocket.h"

namespace telkit::lokiapi {

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool HasToken(const std::string& header, std::string_view token) {
  std::string h = Lower(header);
  size_t pos = 0;
  while (pos <= h.size()) {
    size_t comma = h.find(',', pos);
    std::string item = h.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos && item.substr(b, e - b + 1) == token) return true;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return false;
}

void SetText(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "text/plain; charset=utf-8");
}

}  // namespace

LokiApiServer::~LokiApiServer() { Stop(); }

void LokiApiServer::RegisterMetrics(MetricsRegistry& registry) const {
  std::shared_ptr<LokiApiCounters> c = counters_;
  auto read = [c](std::atomic<uint64_t> LokiApiCounters::*field) {
    return [c, field] { return static_cast<double>((*c.*field).load(std::memory_order_relaxed)); };
  };
  registry.AddCallback("tel_query_loki_requests_total", "Loki API requests answered.", MetricType::kCounter, {},
                       read(&LokiApiCounters::requests));
  registry.AddCallback("tel_query_loki_error_responses_total", "Loki API error responses by class.",
                       MetricType::kCounter, {{"class", "4xx"}}, read(&LokiApiCounters::client_errors));
  registry.AddCallback("tel_query_loki_error_responses_total", "Loki API error responses by class.",
                       MetricType::kCounter, {{"class", "5xx"}}, read(&LokiApiCounters::server_errors));
  registry.AddCallback("tel_query_loki_tails_started_total", "Loki /tail WebSocket sessions started.",
                       MetricType::kCounter, {}, read(&LokiApiCounters::tails_started));
  registry.AddCallback("tel_query_loki_tails_active", "Loki /tail WebSocket sessions running.", MetricType::kGauge,
                       {}, read(&LokiApiCounters::tails_active));
}

void LokiApiServer::Stop() {
  if (stopping_) stopping_->store(true);
  if (runner_) runner_->Stop();
}

Result<std::unique_ptr<LokiApiServer>> StartLokiApi(const LokiApiServerOptions& options,
                                                    std::shared_ptr<LogQuerier> querier) {
  if (!querier) return InvalidArgumentError("loki api: no log store reader");
  auto api = std::make_shared<const LokiApi>(options.api, std::move(querier));
  auto counters = std::make_shared<LokiApiCounters>();
  auto stopping = std::make_shared<std::atomic<bool>>(false);

  auto server = std::make_unique<httplib::Server>();
  int threads = std::max(2, options.threads);
  server->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server->set_read_timeout(options.read_timeout_seconds, 0);
  server->set_write_timeout(options.write_timeout_seconds, 0);
  server->set_keep_alive_timeout(options.keep_alive_timeout_seconds);
  server->set_payload_max_length(options.max_request_bytes);

  auto params_of = [](const httplib::Request& req, Params* out) -> Status {
    if (req.method == "POST" && !req.body.empty()) {
      std::string type = Lower(req.get_header_value("Content-Type"));
      if (!type.starts_with("application/x-www-form-urlencoded")) {
        return InvalidArgumentError("unsupported Content-Type \"" + type + "\": use application/x-www-form-urlencoded");
      }
      TELKIT_ASSIGN_OR_RETURN(*out, api::ParseFormUrlEncoded(req.body));
    }
    if (size_t q = req.target.find('?'); q != std::string::npos) {
      TELKIT_ASSIGN_OR_RETURN(auto query, api::ParseFormUrlEncoded(std::string_view(req.target).substr(q + 1)));
      for (auto& kv : query) out->push_back(std::move(kv));
    }
    return OkStatus();
  };

  auto tail = [api, counters, stopping, options, params_of](const httplib::Request& req, httplib::Response& res) {
    counters->requests.fetch_add(1, std::memory_order_relaxed);
    if (!HasToken(req.get_header_value("Connection"), "upgrade") ||
        Lower(req.get_header_value("Upgrade")) != "websocket") {
      counters->client_errors.fetch_add(1, std::memory_order_relaxed);
      SetText(res, 400, "websocket: the client is not using the websocket protocol: 'upgrade' token not found in "
                        "'Connection' header\n");
      return;
    }
    std::string key = req.get_header_value("Sec-WebSocket-Key");
    if (key.empty() || req.get_header_value("Sec-WebSocket-Version") != "13") {
      counters->client_errors.fetch_add(1, std::memory_order_relaxed);
      SetText(res, 400, "websocket: not a websocket handshake: 'Sec-WebSocket-Key' missing or version not 13\n");
      return;
    }
    Params params;
    Status st = params_of(req, &params);
    Result<LokiApi::Tail> t = st.ok() ? api->StartTail(params) : Result<LokiApi::Tail>(st);
    if (!t.ok()) {
      counters->client_errors.fetch_add(1, std::memory_order_relaxed);
      SetText(res, 400, t.status().message() + "\n");
      return;
    }
    uint64_t active = counters->tails_active.fetch_add(1);
    if (active >= static_cast<uint64_t>(options.max_tails)) {
      counters->tails_active.fetch_sub(1);
      counters->client_errors.fetch_add(1, std::memory_order_relaxed);
      SetText(res, 429, "too many tail requests\n");
      return;
    }
    counters->tails_started.fetch_add(1);
    res.status = 101;
    res.set_header("Upgrade", "websocket");
    res.set_header("Connection", "Upgrade");
    res.set_header("Sec-WebSocket-Accept", WebSocketAccept(key));
    auto state = std::make_shared<LokiApi::Tail>(std::move(*t));
    res.set_content_provider(
        "application/octet-stream",
        [api, counters, stopping, options, state](size_t, httplib::DataSink& sink) {
          auto started = std::chrono::steady_clock::now();
          auto last_ping = started;
          auto write = [&](const std::string& frame) { return sink.write(frame.data(), frame.size()); };
          while (!stopping->load()) {
            auto now = std::chrono::steady_clock::now();
            if (now - started >= std::chrono::seconds(options.tail_max_seconds)) break;
            Result<std::string> msg = api->PollTail(state.get());
            if (!msg.ok()) {
              write(EncodeWsClose(1011, msg.status().message()));
              sink.done();
              return true;
            }
            if (!msg->empty()) {
              if (!write(EncodeWsFrame(WsOpcode::kText, *msg))) return false;
              counters->tail_frames.fetch_add(1);
            }
            if (now - last_ping >= std::chrono::seconds(options.tail_ping_seconds)) {
              if (!write(EncodeWsFrame(WsOpcode::kPing, ""))) return false;
              last_ping = now;
            }
            for (int waited = 0; waited < options.tail_poll_ms && !stopping->load(); waited += 20) {
              std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
          }
          write(EncodeWsClose(1000, ""));
          sink.done();
          return true;
        },
        [counters](bool) { counters->tails_active.fetch_sub(1); });
  };

  auto handler = [api, counters, params_of](const httplib::Request& req, httplib::Response& res) {
    counters->requests.fetch_add(1, std::memory_order_relaxed);
    LokiRequest request;
    request.method = req.method;
    request.path = req.path;
    Status st = params_of(req, &request.params);
    LokiResponse response;
    if (!st.ok()) {
      response.status = 400;
      response.content_type = "text/plain; charset=utf-8";
      response.body = st.message() + "\n";
    } else {
      response = api->Handle(request);
    }
    if (response.status >= 500) counters->server_errors.fetch_add(1, std::memory_order_relaxed);
    else if (response.status >= 400) counters->client_errors.fetch_add(1, std::memory_order_relaxed);
    res.status = response.status;
    if (std::string origin = req.get_header_value("Origin"); !origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", origin);
    }
    res.set_content(std::move(response.body), response.content_type.c_str());
  };
  server->Get("/loki/api/v1/tail", tail);
  server->Get(".*", handler);
  server->Post(".*", handler);

  TELKIT_ASSIGN_OR_RETURN(auto runner, HttpServerRunner::Start(std::move(server), options.listen));
  std::unique_ptr<LokiApiServer> out(new LokiApiServer());
  out->api_ = std::move(api);
  out->counters_ = std::move(counters);
  out->stopping_ = std::move(stopping);
  out->runner_ = std::move(runner);
  return out;
}

}  // namespace telkit::lokiapi
