// The kinds of telemetry a stream frame can carry (docs/format/stream.md).
// The numbers are part of the stream format: never reuse or renumber one.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace telkit {

enum class Signal : uint8_t {
  kTraces = 1,                 // ExportTraceServiceRequest protobuf
  kMetrics = 2,                // ExportMetricsServiceRequest protobuf
  kLogs = 3,                   // ExportLogsServiceRequest protobuf
  kPrometheusRemoteWrite = 4,  // prometheus.WriteRequest protobuf (uncompressed)
};

// "traces", "metrics", "logs", "prom-rw"; "signal-N" for numbers this build does not know.
std::string_view SignalName(Signal signal);
// Inverse of SignalName for the known signals; nullopt otherwise.
std::optional<Signal> ParseSignal(std::string_view name);
// True for the values this build defines. Unknown values are passed through
// by stream tools (forward compatibility) but not interpreted.
bool IsKnownSignal(uint8_t value);

}  // namespace telkit
