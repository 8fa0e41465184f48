// promql_bench: times typical dashboard range queries over an in-memory
// store. Prints figures; run by hand (see bench/promql/README.md).
//   promql_bench [series] [hours]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/model/memory_store.h"
#include "common/promql/engine.h"

using telkit::Labels;
using telkit::MemoryStore;
using telkit::Sample;

// CPU time of this process: the machine's cores are shared, wall time is noisy.
double CpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  int series = argc > 1 ? std::atoi(argv[1]) : 500;
  int hours = argc > 2 ? std::atoi(argv[2]) : 6;
  const int64_t scrape = 15000;
  const int64_t end = int64_t{hours} * 3600 * 1000;
  MemoryStore store;
  size_t samples = 0;
  std::vector<Sample> buf;
  const char* les[] = {"0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"};
  for (int i = 0; i < series; ++i) {
    Labels l{{"__name__", "http_requests_total"}, {"job", "job" + std::to_string(i % 10)},
             {"instance", "host" + std::to_string(i)}};
    buf.clear();
    double v = 0;
    for (int64_t t = 0; t <= end; t += scrape) {
      v += (i % 7) + 1;
      buf.push_back({t, v});
    }
    store.Append(l, buf);
    samples += buf.size();
  }
  for (int i = 0; i < series / 10; ++i) {
    for (int b = 0; b < 7; ++b) {
      Labels l{{"__name__", "request_duration_seconds_bucket"}, {"instance", "host" + std::to_string(i)},
               {"le", les[b]}};
      buf.clear();
      double v = 0;
      for (int64_t t = 0; t <= end; t += scrape) {
        v += b + 1;
        buf.push_back({t, v});
      }
      store.Append(l, buf);
      samples += buf.size();
    }
  }
  std::printf("store: %d counters + %d histograms, %zu samples over %dh (15s scrape)\n", series, series / 10, samples,
              hours);
  telkit::promql::Engine engine;
  const char* queries[] = {
      "http_requests_total",
      "rate(http_requests_total[5m])",
      "sum by (job) (rate(http_requests_total[5m]))",
      "topk(5, rate(http_requests_total[5m]))",
      "avg_over_time(http_requests_total[10m])",
      "rate(http_requests_total[5m]) / on(instance) group_left sum by (instance) (rate(http_requests_total[5m]))",
      "histogram_quantile(0.99, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
      "max_over_time(rate(http_requests_total[5m])[30m:1m])",
  };
  for (int64_t step : {int64_t{15000}, int64_t{60000}}) {
    std::printf("\nrange query over %dh, step %llds (%lld steps)\n", hours, static_cast<long long>(step / 1000),
                static_cast<long long>(end / step + 1));
    std::printf("%10s %12s  %s\n", "CPU ms", "points out", "query");
    for (const char* q : queries) {
      double t0 = CpuMs();
      auto r = engine.RangeQuery(store, q, 0, end, step);
      double t1 = CpuMs();
      if (!r.ok()) {
        std::printf("error: %s: %s\n", q, r.status().ToString().c_str());
        return 1;
      }
      size_t points = 0;
      for (const auto& s : r->series) points += s.points.size();
      std::printf("%10.1f %12zu  %s\n", t1 - t0, points, q);
    }
  }
  return 0;
}
