// libFuzzer target for the Loki push decoders (JSON and protobuf): any input
// is decoded or refused with INVALID_ARGUMENT; what is kept respects the
// limits and converts to a parsable OTLP logs request.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/recv/loki_push.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  telkit::LokiPushLimits limits;
  limits.max_line_bytes = 1024;
  for (bool json : {true, false}) {
    auto d = json ? telkit::DecodeLokiPushJson(in, limits) : telkit::DecodeLokiPushProtobuf(in, limits);
    if (!d.ok()) {
      if (d.status().code() != telkit::StatusCode::kInvalidArgument) std::abort();
      continue;
    }
    for (const auto& s : d->streams) {
      if (s.labels.empty() || s.labels.size() > limits.max_labels_per_stream) std::abort();
      for (const auto& e : s.entries) {
        if (e.line.size() > limits.max_line_bytes) std::abort();
      }
    }
    opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest req;
    if (!req.ParseFromString(telkit::LokiPushToOtlpLogs(*d))) std::abort();
  }
  return 0;
}
