// query_socket_bench [series] [samples]: a head of `series` series with
// `samples` samples each (15 s apart +- 5 ms, counters and decimal gauges,
// as node-exporter data) served from a MemoryStore over the query socket;
// prints the Select response size (bytes/sample) and how long a Select of
// everything takes directly and over the socket. Run by hand; never asserted.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "common/model/memory_store.h"
#include "common/tsdb/query_socket.h"

int main(int argc, char** argv) {
  using namespace telkit;
  int num_series = argc > 1 ? std::stoi(argv[1]) : 2000;
  int num_samples = argc > 2 ? std::stoi(argv[2]) : 240;
  MemoryStore store;
  std::mt19937_64 rng(1);
  for (int s = 0; s < num_series; ++s) {
    Labels l{{"__name__", "metric_" + std::to_string(s % 50)}, {"instance", "host-" + std::to_string(s / 50)},
             {"job", "node"}};
    std::vector<Sample> samples;
    int64_t t = 1'795'564'800'000 + static_cast<int64_t>(rng() % 15000);
    double v = static_cast<double>(rng() % 100000);
    for (int i = 0; i < num_samples; ++i) {
      samples.push_back({t, s % 2 ? v : static_cast<double>(rng() % 10000) / 100});
      v += static_cast<double>(rng() % 100);
      t += 15000 + static_cast<int64_t>(rng() % 11) - 5;
    }
    store.Append(l, samples);
  }
  std::string path = "/tmp/query_socket_bench." + std::to_string(::getpid()) + ".sock";
  auto server = QuerySocketServer::Start(path, &store);
  if (!server.ok()) {
    std::fprintf(stderr, "query_socket_bench: %s\n", server.status().message().c_str());
    return 1;
  }
  QuerySocketClient client(path);
  auto m = LabelMatcher::Make(MatchType::kEqual, "job", "node");
  std::vector<LabelMatcher> matchers = {*m};
  auto time = [&](auto&& f) {
    double best = 1e9;
    for (int i = 0; i < 5; ++i) {
      auto start = std::chrono::steady_clock::now();
      f();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return best;
  };
  auto direct = store.Select(INT64_MIN, INT64_MAX, matchers);
  auto payload = EncodeSelectResult(*direct);
  double total = static_cast<double>(num_series) * num_samples;
  double t_direct = time([&] { (void)store.Select(INT64_MIN, INT64_MAX, matchers); });
  double t_encode = time([&] { (void)EncodeSelectResult(*direct); });
  double t_socket = time([&] {
    auto r = client.Select(INT64_MIN, INT64_MAX, matchers);
    if (!r.ok() || r->size() != direct->size()) std::abort();
  });
  std::printf("%d series x %d samples: response %.2f MB, %.2f bytes/sample (raw pairs: 16)\n", num_series, num_samples,
              payload->size() / 1e6, payload->size() / total);
  std::printf("Select everything: direct %.1f ms, encode %.1f ms, over the socket %.1f ms (%.1f M samples/s)\n",
              t_direct * 1e3, t_encode * 1e3, t_socket * 1e3, total / t_socket / 1e6);
  (*server)->Stop();
}
