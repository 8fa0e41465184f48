// prom_bench: CPU cost of the Prometheus conversions — translating OTLP
// metrics to Prometheus series (OtlpTranslator, per million OTLP data
// points), and on the remote-write path per million samples: snappy
// decompress, DecodeWriteRequest (parse and judge every series), encode,
// snappy compress.
//
// The OTLP request is bench/common/otlp_requests.h (variant 0): 512 data
// points of every kind with attributes. Its translation is the remote-write
// request of the second half.
//
// Usage: prom_bench [SECONDS_PER_CASE]   (default 0.5)
// Prints a table; asserts nothing.
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "bench/common/otlp_requests.h"
#include "common/codec/snappy.h"
#include "common/prom/otlp_translate.h"
#include "common/prom/remote_write.h"

namespace telkit {
namespace {

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double PerMillion(double seconds, int64_t items_per_call, const std::function<void()>& fn) {
  int64_t calls = 0;
  const double start = CpuSeconds();
  double elapsed = 0;
  do {
    for (int i = 0; i < 8; ++i) fn();
    calls += 8;
    elapsed = CpuSeconds() - start;
  } while (elapsed < seconds);
  return elapsed / static_cast<double>(calls * items_per_call) * 1e6;
}

int Main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.5;
  if (!(seconds > 0)) {
    std::fprintf(stderr, "usage: prom_bench [SECONDS_PER_CASE]\n");
    return 2;
  }
  const std::string otlp = MakeBenchMetricsRequest(0);
  OtlpTranslator probe;
  Result<TranslatedMetrics> translated = probe.Translate(otlp);
  if (!translated.ok() || translated->data_points == 0) {
    std::fprintf(stderr, "prom_bench: cannot translate the bench request\n");
    return 1;
  }
  const int64_t points = translated->data_points;
  const int64_t samples = translated->samples;
  const std::string rw = EncodeWriteRequest(translated->series, translated->metadata);
  const std::string rw_snappy = SnappyCompress(rw);
  int64_t sink = 0;

  std::printf("OTLP request: %zu bytes, %lld data points -> %zu series, %lld samples (%lld rejected)\n",
              otlp.size(), static_cast<long long>(points), translated->series.size(),
              static_cast<long long>(samples), static_cast<long long>(translated->rejected.Total()));
  std::printf("remote write: %zu bytes, %zu snappy (%.1f B/sample)\n", rw.size(), rw_snappy.size(),
              static_cast<double>(rw_snappy.size()) / static_cast<double>(samples));
  std::printf("%-28s %10s\n", "CPU seconds per million", "");
  std::printf("%-28s %10.3f  (per data point)\n", "OTLP -> Prometheus",
              PerMillion(seconds, points, [&] {
                OtlpTranslator t;  // fresh: delta points are new each time
                sink += t.Translate(otlp)->samples;
              }));
  std::printf("%-28s %10.3f  (per sample)\n", "snappy decompress",
              PerMillion(seconds, samples, [&] { sink += SnappyDecompress(rw_snappy, 64 << 20)->size(); }));
  std::printf("%-28s %10.3f\n", "DecodeWriteRequest",
              PerMillion(seconds, samples, [&] { sink += DecodeWriteRequest(rw)->samples; }));
  std::printf("%-28s %10.3f\n", "EncodeWriteRequest",
              PerMillion(seconds, samples, [&] {
                sink += EncodeWriteRequest(translated->series, translated->metadata).size();
              }));
  std::printf("%-28s %10.3f\n", "snappy compress",
              PerMillion(seconds, samples, [&] { sink += SnappyCompress(rw).size(); }));
  if (sink == 42) std::printf(" ");
  return 0;
}

}  // namespace
}  // namespace telkit

int main(int argc, char** argv) { return telkit::Main(argc, argv); }
