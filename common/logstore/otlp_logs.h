// OTLP logs -> log store streams, as Loki's native OTLP ingestion maps them
// (rules in docs/logs-mapping.md):
//   index labels   service_name (service.name, "unknown_service" when
//                  absent), service_namespace, deployment_environment, the
//                  resource attributes chosen in `index_attributes`
//                  (k8s.*, host.name, ...; dots become underscores), and
//                  level (from severity_number, else severity_text)
//   line           the body: a string as is, any other AnyValue as JSON
//   metadata       trace_id, span_id (lowercase hex), severity_text,
//                  severity_number, scope_name, scope_version, the scope's,
//                  the record's and the other resource attributes
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/logstore/log_store.h"

namespace opentelemetry::proto::collector::logs::v1 {
class ExportLogsServiceRequest;
}
namespace opentelemetry::proto::common::v1 {
class AnyValue;
}

namespace telkit {

struct OtlpLogsMapOptions {
  // Resource attributes (OTLP names) that become index labels besides the
  // three defaults, e.g. {"k8s.namespace.name", "k8s.pod.name", "host.name"}.
  std::vector<std::string> index_attributes;
  // The timestamp of records with neither time nor observed time.
  int64_t now_ns = 0;
};

// The label (or metadata) name of an OTLP attribute: every character
// outside [a-zA-Z0-9_] becomes '_', a leading digit gets a '_' prefix.
std::string OtlpAttributeName(std::string_view name);
// An AnyValue as text: strings as is, bytes as base64, everything else as JSON.
std::string AnyValueText(const opentelemetry::proto::common::v1::AnyValue& v);
// "trace", "debug", "info", "warn", "error", "fatal" or "unknown".
std::string SeverityLevel(int severity_number, std::string_view severity_text);

// One LogPush per (resource, scope) group's stream; records of one stream
// keep their order.
std::vector<LogPush> MapOtlpLogs(const opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest& request,
                                 const OtlpLogsMapOptions& options);

}  // namespace telkit
