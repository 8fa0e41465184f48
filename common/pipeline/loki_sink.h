// Loki push output of tel-batch: output spec loki+http://HOST:PORT[/PREFIX]
// (or loki+https://). OTLP log records become Loki streams the way Loki's
// own OTLP ingestion (/otlp/v1/logs) maps them, so queries work the same
// whichever way logs arrive (docs/tel-batch.md "Loki"):
//   - stream labels: the resource attributes Loki indexes by default
//     (kLokiIndexLabels), dots turned into underscores; service_name is
//     "unknown_service" when the resource has no service.name;
//   - log line: the body (strings as they are, other values as JSON);
//   - timestamp: time_unix_nano, or observed_time_unix_nano when 0, in ns;
//   - structured metadata: every other resource attribute, the log record's
//     attributes, scope_name, scope_version, severity_text, severity_number,
//     trace_id, span_id (hex), flags, event_name; names with '.' -> '_'.
// Requests are POST PREFIX/loki/api/v1/push, JSON, gzip (--export-gzip is
// not needed: always compressed). Retries with exponential backoff (1 s
// doubling to 30 s, for as long as it takes: backpressure) on 5xx, 429 and
// connection errors only; other 4xx drop the request's records, counted as
// export_rejected. Frames of other signals are dropped (unsupported_signal).
// Thread-safety: as OutputSink.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "common/base/status.h"
#include "common/export/otlp_exporter.h"
#include "common/pipeline/pipeline_output.h"

namespace telkit {

// Loki's default otlp_config index labels (resource attributes).
inline constexpr std::array<std::string_view, 18> kLokiIndexLabels = {
    "service.name",       "service.namespace",   "service.instance.id", "deployment.environment",
    "deployment.environment.name", "cloud.region", "cloud.availability_zone", "k8s.cluster.name",
    "k8s.namespace.name", "k8s.pod.name",        "k8s.container.name",  "container.name",
    "k8s.replicaset.name", "k8s.deployment.name", "k8s.statefulset.name", "k8s.daemonset.name",
    "k8s.cronjob.name",   "k8s.job.name"};

bool IsLokiSpec(std::string_view spec);

// The push request (JSON, uncompressed) for one ExportLogsServiceRequest,
// and how many log records it holds. INVALID_ARGUMENT when the request's
// framing is broken.
Result<std::string> LokiPushBody(std::string_view logs_request, int64_t* records = nullptr);

// Opens a loki+ output; `defaults` gives headers, timeout and CA file.
// INVALID_ARGUMENT for a spec that is not loki+http(s)://HOST:PORT[/PREFIX].
Result<std::unique_ptr<OutputSink>> OpenLokiSink(std::string_view spec, const OtlpExporterOptions& defaults);

}  // namespace telkit
