// wire_scan_bench: CPU cost of validating OTLP requests by wire-format scan
// (ScanExportRequest, with and without UTF-8 checks) against full protobuf
// parsing (ParseFromArray into a fresh arena per request), and of gzip
// inflate for reference, per million items.
//
// Requests come from bench/common/otlp_requests.h (variant 0): 512 spans
// with ~10 attributes of mixed types and events; 512 metric data points of
// all kinds with attributes; 512 log records with bodies and attributes.
//
// Usage: wire_scan_bench [SECONDS_PER_CASE]   (default 0.5)
// Prints a table; asserts nothing. Pin to a core for stable figures.
#include <google/protobuf/arena.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "bench/common/otlp_requests.h"
#include "common/codec/gzip.h"
#include "common/otlp/wire_scan.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace otlp = opentelemetry::proto;
using otlp::collector::logs::v1::ExportLogsServiceRequest;
using otlp::collector::metrics::v1::ExportMetricsServiceRequest;
using otlp::collector::trace::v1::ExportTraceServiceRequest;

constexpr int kItemsPerRequest = kBenchItemsPerRequest;

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs `fn` (one request) repeatedly for about `seconds` of CPU; returns CPU
// seconds per million items.
double PerMillionItems(double seconds, int64_t items_per_call, const std::function<void()>& fn) {
  int64_t calls = 0;
  const double start = CpuSeconds();
  double elapsed = 0;
  do {
    for (int i = 0; i < 16; ++i) fn();
    calls += 16;
    elapsed = CpuSeconds() - start;
  } while (elapsed < seconds);
  return elapsed / static_cast<double>(calls * items_per_call) * 1e6;
}

template <typename Request>
int BenchOne(const char* name, Signal signal, const std::string& bytes, double seconds) {
  Result<ScanReport> check = ScanExportRequest(signal, bytes);
  if (!check.ok() || check->items != kItemsPerRequest || check->invalid_items != 0) {
    std::fprintf(stderr, "wire_scan_bench: bad %s request: %s\n", name,
                 check.status().ToString().c_str());
    return 1;
  }
  const std::string gz = GzipCompress(bytes);
  int64_t sink = 0;
  const double scan_utf8 = PerMillionItems(
      seconds, kItemsPerRequest, [&] { sink += ScanExportRequest(signal, bytes)->items; });
  const double scan_plain = PerMillionItems(seconds, kItemsPerRequest, [&] {
    sink += ScanExportRequest(signal, bytes, ScanOptions{.check_utf8 = false})->items;
  });
  const double parse = PerMillionItems(seconds, kItemsPerRequest, [&] {
    google::protobuf::Arena arena;
    auto* request = google::protobuf::Arena::CreateMessage<Request>(&arena);
    sink += request->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  });
  const double inflate = PerMillionItems(seconds, kItemsPerRequest, [&] {
    sink += static_cast<int64_t>(GzipDecompress(gz, bytes.size())->size());
  });
  std::printf("%-8s %9.0f %10.3f %10.3f %10.3f %7.1fx %10.3f\n", name,
              static_cast<double>(bytes.size()) / kItemsPerRequest, scan_utf8, scan_plain, parse,
              parse / scan_utf8, inflate);
  if (sink == 42) std::printf(" ");  // keeps the work observable
  return 0;
}

int Main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.5;
  if (!(seconds > 0)) {
    std::fprintf(stderr, "usage: wire_scan_bench [SECONDS_PER_CASE]\n");
    return 2;
  }
  std::printf("CPU seconds per million items (%d items a request)\n", kItemsPerRequest);
  std::printf("%-8s %9s %10s %10s %10s %8s %10s\n", "signal", "B/item", "scan+utf8", "scan",
              "parse", "parse/", "gunzip");
  std::printf("%-8s %9s %10s %10s %10s %8s %10s\n", "", "", "", "", "(arena)", "scan+utf8",
              "(ref.)");
  int rc = 0;
  rc |= BenchOne<ExportTraceServiceRequest>("traces", Signal::kTraces, MakeBenchTraceRequest(0), seconds);
  rc |= BenchOne<ExportMetricsServiceRequest>("metrics", Signal::kMetrics, MakeBenchMetricsRequest(0), seconds);
  rc |= BenchOne<ExportLogsServiceRequest>("logs", Signal::kLogs, MakeBenchLogsRequest(0), seconds);
  return rc;
}

}  // namespace
}  // namespace telkit

int main(int argc, char** argv) { return telkit::Main(argc, argv); }
