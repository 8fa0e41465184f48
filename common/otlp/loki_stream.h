// The attribute convention that carries a Loki push through the telemetry
// stream as OTLP logs (docs/logs-mapping.md, "Loki push"): otlp-recv writes
// it (common/recv/loki_push.h), log-ingest reads it (MapOtlpLogs).
#pragma once

#include <string_view>

namespace telkit {

// A resource attribute, bool true, that marks a ResourceLogs as one Loki
// stream: its other resource attributes are the stream's labels verbatim,
// each record's attributes its structured metadata, the string body its line.
inline constexpr std::string_view kLokiStreamAttribute = "telkit.loki.stream";

}  // namespace telkit
