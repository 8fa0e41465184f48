// Sends OTLP export requests to any OpenTelemetry endpoint: gRPC (a generic
// stub: the payload bytes go out as they are, never re-encoded), HTTP/protobuf
// and HTTP/JSON. Retries retryable failures only (gRPC UNAVAILABLE,
// RESOURCE_EXHAUSTED, ABORTED, DEADLINE_EXCEEDED; HTTP 429, 502, 503, 504 and
// connection errors) with exponential backoff, honouring Retry-After.
// Thread-safe: Export() may be called from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "common/otlp/signal.h"

namespace telkit {

enum class OtlpProtocol { kGrpc, kHttpProtobuf, kHttpJson };

// "grpc", "http/protobuf", "http/json" (the OTEL_EXPORTER_OTLP_PROTOCOL names).
Result<OtlpProtocol> ParseOtlpProtocol(std::string_view name);

struct OtlpExporterOptions {
  // gRPC: host:port, or http://host:port (plaintext) / https://host:port (TLS).
  // HTTP: http(s)://host:port[/prefix]; /v1/traces etc. is appended.
  std::string endpoint;
  OtlpProtocol protocol = OtlpProtocol::kGrpc;
  std::vector<std::pair<std::string, std::string>> headers;  // also gRPC metadata
  bool gzip = false;
  std::string ca_file;          // TLS: trust these roots instead of the system's
  bool insecure_skip_verify = false;
  int timeout_ms = 10000;       // per attempt
  int max_attempts = 5;
  int initial_backoff_ms = 100;
  int max_backoff_ms = 5000;
};

// What the endpoint said about an accepted request.
struct ExportResult {
  int64_t rejected = 0;       // partial success: items the endpoint refused
  std::string error_message;  // partial success message, if any
  int attempts = 1;
};

class OtlpExporter {
 public:
  virtual ~OtlpExporter() = default;
  // Sends `payload`, an Export*ServiceRequest protobuf of `signal`.
  // INVALID_ARGUMENT when the endpoint refuses the data (not retried) or the
  // signal is not an OTLP one; UNAVAILABLE etc. after the last failed attempt.
  virtual Result<ExportResult> Export(Signal signal, std::string_view payload) = 0;
};

// INVALID_ARGUMENT for a malformed endpoint.
Result<std::unique_ptr<OtlpExporter>> CreateOtlpExporter(const OtlpExporterOptions& options);

}  // namespace telkit
