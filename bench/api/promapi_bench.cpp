// promapi_bench [SERIES] [POINTS]: a range query over SERIES series (default
// 10,000) of POINTS steps (default 120: one hour at 30 s) end to end through
// the Prometheus HTTP API — a real loopback server and an httplib client —
// plain and gzip, and the same split into its phases (engine, JSON encoding,
// gzip). Prints the best of three runs of each. Run by hand; never asserted.
#include <httplib.h>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "common/api/json_writer.h"
#include "common/api/prometheus_api.h"
#include "common/api/prometheus_api_server.h"
#include "common/codec/gzip.h"
#include "common/model/memory_store.h"

using namespace telkit;
using Clock = std::chrono::steady_clock;

static double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

static double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

static double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

int main(int argc, char** argv) {
  const int series = argc > 1 ? std::stoi(argv[1]) : 10000;
  const int points = argc > 2 ? std::stoi(argv[2]) : 120;
  const int64_t t0 = 1700000000000;
  const int64_t step = 30000;
  auto store = std::make_shared<MemoryStore>();
  for (int s = 0; s < series; ++s) {
    Labels l({{"__name__", "http_server_requests_seconds_count"},
              {"instance", "host-" + std::to_string(s % 50) + ":8080"},
              {"job", "checkout"},
              {"method", s % 2 ? "GET" : "POST"},
              {"uri", "/api/v1/orders/" + std::to_string(s)}});
    std::vector<Sample> samples;
    for (int i = 0; i < points; ++i) samples.push_back({t0 + i * step, static_cast<double>(s + i) * 1.25});
    store->Append(l, samples);
  }
  const std::string start = std::to_string(t0 / 1000);
  const std::string end = std::to_string((t0 + (points - 1) * step) / 1000);
  const std::string query = "http_server_requests_seconds_count";

  // Phases, in process, in CPU seconds of this thread (the machine is shared).
  promql::Engine engine;
  double best_engine = 1e9, best_json = 1e9, best_gzip = 1e9, best_nlohmann = 1e9;
  size_t body_bytes = 0, gzip_bytes = 0, nlohmann_bytes = 0;
  for (int run = 0; run < 3; ++run) {
    double a = CpuSeconds();
    auto r = engine.RangeQuery(*store, query, t0, t0 + (points - 1) * step, step);
    double b = CpuSeconds();
    if (!r.ok()) {
      std::fprintf(stderr, "promapi_bench: %s\n", r.status().ToString().c_str());
      return 1;
    }
    best_engine = std::min(best_engine, b - a);
    a = CpuSeconds();
    auto body = api::FormatQueryResponse(*r, {});
    b = CpuSeconds();
    best_json = std::min(best_json, b - a);
    body_bytes = body->size();
    a = CpuSeconds();
    {
      // The same document through nlohmann::json, for comparison.
      nlohmann::json result = nlohmann::json::array();
      for (const auto& series : r->series) {
        nlohmann::json metric = nlohmann::json::object();
        for (const auto& l : series.labels) metric[l.name] = l.value;
        nlohmann::json values = nlohmann::json::array();
        for (const auto& p : series.points) values.push_back({p.t / 1000.0, promql::FormatValue(p.v)});
        result.push_back({{"metric", std::move(metric)}, {"values", std::move(values)}});
      }
      nlohmann::json doc = {{"status", "success"}, {"data", {{"resultType", "matrix"}, {"result", std::move(result)}}}};
      nlohmann_bytes = doc.dump().size();
    }
    b = CpuSeconds();
    best_nlohmann = std::min(best_nlohmann, b - a);
    a = CpuSeconds();
    std::string gz = GzipCompress(*body, 1);
    b = CpuSeconds();
    best_gzip = std::min(best_gzip, b - a);
    gzip_bytes = gz.size();
  }

  // End to end over HTTP.
  api::PrometheusApiServerOptions options;
  options.listen = {"127.0.0.1", 0};
  options.threads = 2;
  auto server = api::StartPrometheusApi(options, api::PrometheusApiBackend::ForQuerier(store));
  if (!server.ok()) {
    std::fprintf(stderr, "promapi_bench: %s\n", server.status().ToString().c_str());
    return 1;
  }
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_read_timeout(120, 0);
  client.set_decompress(false);
  std::string path = "/api/v1/query_range?query=" + query + "&start=" + start + "&end=" + end + "&step=30";
  double best_plain = 1e9, best_gz = 1e9, cpu_plain = 1e9, cpu_gz = 1e9;
  for (int run = 0; run < 3; ++run) {
    double c = ProcessCpuSeconds();
    auto a = Clock::now();
    auto r = client.Get(path);
    auto b = Clock::now();
    cpu_plain = std::min(cpu_plain, ProcessCpuSeconds() - c);
    if (!r || r->status != 200) {
      std::fprintf(stderr, "promapi_bench: request failed\n");
      return 1;
    }
    best_plain = std::min(best_plain, Seconds(a, b));
    c = ProcessCpuSeconds();
    a = Clock::now();
    r = client.Get(path, {{"Accept-Encoding", "gzip"}});
    b = Clock::now();
    cpu_gz = std::min(cpu_gz, ProcessCpuSeconds() - c);
    if (!r || r->status != 200) {
      std::fprintf(stderr, "promapi_bench: request failed\n");
      return 1;
    }
    best_gz = std::min(best_gz, Seconds(a, b));
  }
  std::printf("range query: %d series x %d points = %.2f M points\n", series, points, series * points / 1e6);
  std::printf("  engine (select + eval)   %7.3f CPU s\n", best_engine);
  std::printf("  JSON encoding            %7.3f CPU s   %.1f MB, %.0f MB/s\n", best_json, body_bytes / 1e6,
              body_bytes / 1e6 / best_json);
  std::printf("  (nlohmann::json instead   %7.3f CPU s   %.1f MB)\n", best_nlohmann, nlohmann_bytes / 1e6);
  std::printf("  gzip level 1             %7.3f CPU s   %.1f MB (%.1fx)\n", best_gzip, gzip_bytes / 1e6,
              static_cast<double>(body_bytes) / gzip_bytes);
  std::printf("  HTTP end to end, identity %7.3f s wall, %.3f CPU s (server + client)\n", best_plain,
              cpu_plain);
  std::printf("  HTTP end to end, gzip     %7.3f s wall, %.3f CPU s (server + client)\n", best_gz, cpu_gz);
  return 0;
}
