// tel-batch's Prometheus remote-write output (pipeline_output.h routes the
// specs here):
//
//   prom-rw+http://HOST:PORT/PATH    remote write 1.0 over HTTP (PATH defaults
//                                    to /api/v1/write)
//   prom-rw+https://HOST:PORT/PATH   the same over TLS
//
// Metrics frames are translated to Prometheus series (common/prom/
// otlp_translate.h; the translator's running totals for DELTA series live
// as long as the output) and sent in requests of at most 5000 samples;
// prom-rw frames are forwarded as they are. Both go out snappy-compressed
// through common/export/prom_remote_writer.h. Retryable failures (5xx, 429,
// no connection) are retried for as long as it takes, pausing 1 s doubling
// to 30 s (backpressure); other 4xx drop the frame's items, counted as
// export_rejected, as are the data points the translator rejects. Traces and
// logs cannot be sent this way (unsupported_signal).
#pragma once

#include <memory>
#include <string_view>

#include "common/base/status.h"
#include "common/export/otlp_exporter.h"
#include "common/export/prom_remote_writer.h"

namespace telkit {

class OutputSink;

bool IsPromRwOutputSpec(std::string_view spec);

// The writer options of a prom-rw+ spec; headers, timeouts and TLS files come
// from `exporter_defaults` (tel-batch's --export-* flags).
// INVALID_ARGUMENT for another scheme or no host.
Result<PromRemoteWriterOptions> ParsePromRwOutputSpec(std::string_view spec,
                                                      const OtlpExporterOptions& exporter_defaults);

Result<std::unique_ptr<OutputSink>> OpenPromRwSink(const PromRemoteWriterOptions& options);

}  // namespace telkit
