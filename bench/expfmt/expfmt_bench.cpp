// expfmt_bench FILE [openmetrics|prometheus] [batch]: parses a text exposition
// file (e.g. ../shared/bench/metrics-ingest/gen.py's dataset.om.txt) from
// memory three times and prints samples/s and MB/s of the best run, by wall
// time and by CPU time (the fairer figure on a shared machine). Run by hand;
// never asserted.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "common/expfmt/exposition.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: expfmt_bench FILE [openmetrics|prometheus] [batch]\n");
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  telkit::ExpositionOptions o;
  o.format = argc > 2 && std::string(argv[2]) == "prometheus" ? telkit::ExpositionFormat::kPrometheusText
                                                              : telkit::ExpositionFormat::kOpenMetrics;
  o.batch_samples = argc > 3 ? std::stoul(argv[3]) : 10000;
  auto cpu_now = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
  };
  double best = 1e9, best_cpu = 1e9;
  uint64_t samples = 0, series = 0;
  for (int run = 0; run < 3; ++run) {
    series = 0;
    telkit::ExpositionParser p(o, [&](telkit::ExpositionBatch& b) {
      series += b.series.size();
      return telkit::OkStatus();
    });
    auto start = std::chrono::steady_clock::now();
    double cpu_start = cpu_now();
    for (size_t i = 0; i < data.size(); i += 1 << 20) {
      if (auto s = p.Feed(std::string_view(data).substr(i, 1 << 20)); !s.ok()) {
        std::fprintf(stderr, "expfmt_bench: %s\n", s.message().c_str());
        return 1;
      }
    }
    if (auto s = p.Finish(); !s.ok()) {
      std::fprintf(stderr, "expfmt_bench: %s\n", s.message().c_str());
      return 1;
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    best_cpu = std::min(best_cpu, cpu_now() - cpu_start);
    samples = p.stats().samples;
    if (p.stats().errors) std::fprintf(stderr, "expfmt_bench: %llu lines refused\n", (unsigned long long)p.stats().errors);
  }
  std::printf("%s: %llu samples, %llu TimeSeries, %.1f MB in %.3f s (%.3f CPU s): %.2f M samples/s, "
              "%.2f M samples per CPU s, %.0f MB/s\n",
              std::string(telkit::ExpositionFormatName(o.format)).c_str(), (unsigned long long)samples,
              (unsigned long long)series, data.size() / 1e6, best, best_cpu, samples / best / 1e6,
              samples / best_cpu / 1e6, data.size() / 1e6 / best);
}
