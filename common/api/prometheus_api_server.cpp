#include "common/api/prometheus_api_server.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>

#include "common/api/json_writer.h"
#include "common/codec/gzip.h"

namespace telkit::api {
namespace {

// The request header Accept-Encoding is moved here before routing, so that
// httplib does not compress on its own (see the header).
constexpr char kAcceptEncodingCopy[] = "X-Telkit-Accept-Encoding";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= s.size()) {
        return InvalidArgumentError("invalid URL escape \"" + std::string(s.substr(i, 3)) + "\"");
      }
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return InvalidArgumentError("invalid URL escape \"" + std::string(s.substr(i, 3)) + "\"");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> ParseFormUrlEncoded(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!text.empty()) {
    size_t amp = text.find('&');
    std::string_view part = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    TELKIT_ASSIGN_OR_RETURN(std::string key, Unescape(part.substr(0, eq)));
    std::string value;
    if (eq != std::string_view::npos) {
      TELKIT_ASSIGN_OR_RETURN(value, Unescape(part.substr(eq + 1)));
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

bool AcceptsGzip(std::string_view header) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = Trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    size_t semi = item.find(';');
    std::string coding = Lower(Trim(item.substr(0, semi)));
    if (coding != "gzip" && coding != "x-gzip" && coding != "*") continue;
    if (semi == std::string_view::npos) return true;
    std::string params = Lower(item.substr(semi + 1));
    size_t q = params.find("q=");
    if (q == std::string::npos) return true;
    double v = std::strtod(params.c_str() + q + 2, nullptr);
    if (v > 0) return true;
    if (coding != "*") return false;  // an explicit gzip;q=0 wins over *
  }
  return false;
}

PrometheusApiServer::~PrometheusApiServer() { Stop(); }

void PrometheusApiServer::RegisterMetrics(MetricsRegistry& registry) const {
  std::shared_ptr<PrometheusApiCounters> c = counters_;
  auto read = [c](std::atomic<uint64_t> PrometheusApiCounters::*field) {
    return [c, field] { return static_cast<double>((*c.*field).load(std::memory_order_relaxed)); };
  };
  registry.AddCallback("tel_query_api_requests_total", "Prometheus API requests answered.", MetricType::kCounter, {},
                       read(&PrometheusApiCounters::requests));
  registry.AddCallback("tel_query_api_error_responses_total", "Prometheus API error responses by class.",
                       MetricType::kCounter, {{"class", "4xx"}}, read(&PrometheusApiCounters::client_errors));
  registry.AddCallback("tel_query_api_error_responses_total", "Prometheus API error responses by class.",
                       MetricType::kCounter, {{"class", "5xx"}}, read(&PrometheusApiCounters::server_errors));
  registry.AddCallback("tel_query_api_response_bytes_total", "Prometheus API response body bytes sent.",
                       MetricType::kCounter, {}, read(&PrometheusApiCounters::response_bytes));
  registry.AddCallback("tel_query_api_gzip_responses_total", "Prometheus API responses sent gzip-compressed.",
                       MetricType::kCounter, {}, read(&PrometheusApiCounters::gzip_responses));
}

void PrometheusApiServer::Stop() {
  if (runner_) runner_->Stop();
}

Result<std::unique_ptr<PrometheusApiServer>> StartPrometheusApi(const PrometheusApiServerOptions& options,
                                                                PrometheusApiBackend backend) {
  if (!backend.querier) return InvalidArgumentError("prometheus api: no querier in the backend");
  auto api = std::make_shared<const PrometheusApi>(options.api, std::move(backend));
  auto counters = std::make_shared<PrometheusApiCounters>();

  auto server = std::make_unique<httplib::Server>();
  int threads = std::max(1, options.threads);
  server->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server->set_read_timeout(options.read_timeout_seconds, 0);
  server->set_write_timeout(options.write_timeout_seconds, 0);
  server->set_keep_alive_timeout(options.keep_alive_timeout_seconds);
  server->set_payload_max_length(options.max_request_bytes);
  server->set_pre_routing_handler([](const httplib::Request& req, httplib::Response&) {
    // httplib compresses any application/json body itself when the request
    // accepts gzip or br, brotli first, at quality 11. Hide the header from
    // it; the handler compresses. The Request object is httplib's own
    // mutable local, handed out as const.
    auto& mutable_req = const_cast<httplib::Request&>(req);
    auto it = mutable_req.headers.find("Accept-Encoding");
    if (it != mutable_req.headers.end()) {
      std::string value = it->second;
      mutable_req.headers.erase("Accept-Encoding");
      mutable_req.headers.emplace(kAcceptEncodingCopy, std::move(value));
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  auto handler = [api, counters](const httplib::Request& req, httplib::Response& res) {
    counters->requests.fetch_add(1, std::memory_order_relaxed);
    ApiRequest request;
    request.method = req.method;
    request.path = req.path;
    ApiResponse response;
    // Parameters as Go's Request.ParseForm orders them: the form body's
    // first, then the query string's (FormValue takes the first).
    auto bad_data = [](std::string_view message) {
      JsonWriter w;
      w.Raw(R"({"status":"error","errorType":"bad_data","error":)");
      w.String(message);
      w.Char('}');
      return ApiResponse{400, "application/json", w.Take()};
    };
    bool bad = false;
    if (req.method == "POST" && !req.body.empty()) {
      std::string type = Lower(req.get_header_value("Content-Type"));
      if (!type.starts_with("application/x-www-form-urlencoded")) {
        response = bad_data("unsupported Content-Type \"" + type +
                            "\" of the request body: use application/x-www-form-urlencoded");
        bad = true;
      } else if (auto form = ParseFormUrlEncoded(req.body); !form.ok()) {
        response = bad_data("error parsing form values: " + form.status().message());
        bad = true;
      } else {
        request.params = std::move(*form);
      }
    }
    if (size_t q = req.target.find('?'); !bad && q != std::string::npos) {
      if (auto query = ParseFormUrlEncoded(std::string_view(req.target).substr(q + 1)); !query.ok()) {
        response = bad_data("error parsing form values: " + query.status().message());
        bad = true;
      } else {
        for (auto& kv : *query) request.params.push_back(std::move(kv));
      }
    }
    if (!bad) response = api->Handle(request);
    if (response.status >= 500) {
      counters->server_errors.fetch_add(1, std::memory_order_relaxed);
    } else if (response.status >= 400) {
      counters->client_errors.fetch_add(1, std::memory_order_relaxed);
    }
    res.status = response.status;
    const auto& o = api->options();
    if (o.gzip && response.body.size() >= o.gzip_min_bytes && req.method != "HEAD" &&
        AcceptsGzip(req.get_header_value(kAcceptEncodingCopy))) {
      response.body = GzipCompress(response.body, o.gzip_level);
      res.set_header("Content-Encoding", "gzip");
      counters->gzip_responses.fetch_add(1, std::memory_order_relaxed);
    }
    if (response.status != 204) res.set_header("Vary", "Accept-Encoding");
    // CORS as Prometheus' default --web.cors.origin=".*": echo the origin.
    if (std::string origin = req.get_header_value("Origin"); !origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Access-Control-Allow-Headers", "Accept, Authorization, Content-Type, Origin");
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Expose-Headers", "Date");
    }
    counters->response_bytes.fetch_add(response.body.size(), std::memory_order_relaxed);
    if (!response.content_type.empty()) {
      res.set_content(std::move(response.body), response.content_type.c_str());
    }
  };
  server->Get(".*", handler);
  server->Post(".*", handler);
  server->Options(".*", handler);
  server->Put(".*", handler);
  server->Delete(".*", handler);

  TELKIT_ASSIGN_OR_RETURN(auto runner, HttpServerRunner::Start(std::move(server), options.listen));
  std::unique_ptr<PrometheusApiServer> out(new PrometheusApiServer());
  out->api_ = std::move(api);
  out->counters_ = std::move(counters);
  out->runner_ = std::move(runner);
  return out;
}

}  // namespace telkit::api
