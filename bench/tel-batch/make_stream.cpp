// tel-batch-make-stream SIGNAL ITEMS FILE: writes a telemetry stream of
// about ITEMS spans, metric data points or log records (requests of 512,
// 32 distinct ones cycled, from bench/common/otlp_requests.h) to FILE, and
// prints "items=N frames=N bytes=N".
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "bench/common/otlp_requests.h"
#include "common/stream/stream_output.h"

int main(int argc, char** argv) {
  using namespace telkit;
  if (argc != 4) {
    std::fprintf(stderr, "usage: tel-batch-make-stream traces|metrics|logs ITEMS FILE\n");
    return 2;
  }
  const std::string_view name = argv[1];
  Signal signal = Signal::kTraces;
  if (name == "metrics") {
    signal = Signal::kMetrics;
  } else if (name == "logs") {
    signal = Signal::kLogs;
  } else if (name != "traces") {
    std::fprintf(stderr, "tel-batch-make-stream: unknown signal '%s'\n", argv[1]);
    return 2;
  }
  const long long items = std::atoll(argv[2]);
  std::vector<std::string> variants;
  for (uint64_t v = 0; v < 32; ++v) variants.push_back(MakeBenchRequest(signal, v));
  Result<std::unique_ptr<StreamOutput>> out = OpenStreamOutput(argv[3]);
  if (!out.ok()) {
    std::fprintf(stderr, "tel-batch-make-stream: %s\n", out.status().ToString().c_str());
    return 1;
  }
  long long frames = 0, bytes = 0;
  for (long long done = 0; done < items; done += kBenchItemsPerRequest, ++frames) {
    Frame f;
    f.signal = static_cast<uint8_t>(signal);
    f.payload = variants[static_cast<size_t>(frames) % variants.size()];
    bytes += static_cast<long long>(f.payload.size());
    if (Status s = (*out)->Write(std::move(f)); !s.ok()) {
      std::fprintf(stderr, "tel-batch-make-stream: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::printf("items=%lld frames=%lld bytes=%lld\n", frames * kBenchItemsPerRequest, frames, bytes);
  return 0;
}
