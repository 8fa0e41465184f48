#include "common/otlp/signal.h"

namespace telkit {

std::string_view SignalName(Signal signal) {
  switch (signal) {
    case Signal::kTraces: return "traces";
    case Signal::kMetrics: return "metrics";
    case Signal::kLogs: return "logs";
    case Signal::kPrometheusRemoteWrite: return "prom-rw";
  }
  return "unknown";
}

std::optional<Signal> ParseSignal(std::string_view name) {
  for (uint8_t v = 1; IsKnownSignal(v); ++v) {
    if (SignalName(static_cast<Signal>(v)) == name) return static_cast<Signal>(v);
  }
  return std::nullopt;
}

bool IsKnownSignal(uint8_t value) { return value >= 1 && value <= 4; }

}  // namespace telkit
