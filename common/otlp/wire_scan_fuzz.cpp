// libFuzzer target for ScanExportRequest: the first byte picks the signal,
// the rest is the request. Checks the guarantee of wire_scan.h (OK implies
// ParseFromString succeeds with as many items) and that RemoveInvalidItems
// agrees on the invalid items.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/otlp/item_filter.h"
#include "common/otlp/wire_scan.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace {

namespace otlp = opentelemetry::proto;

// Items per the generated messages, or -1 when the bytes do not parse.
int64_t ParsedItems(telkit::Signal signal, const std::string& bytes) {
  int64_t n = 0;
  if (signal == telkit::Signal::kTraces) {
    otlp::collector::trace::v1::ExportTraceServiceRequest r;
    if (!r.ParseFromString(bytes)) return -1;
    for (const auto& rs : r.resource_spans())
      for (const auto& ss : rs.scope_spans()) n += ss.spans_size();
  } else if (signal == telkit::Signal::kMetrics) {
    otlp::collector::metrics::v1::ExportMetricsServiceRequest r;
    if (!r.ParseFromString(bytes)) return -1;
    for (const auto& rm : r.resource_metrics())
      for (const auto& sm : rm.scope_metrics())
        for (const auto& m : sm.metrics()) {
          n += m.gauge().data_points_size() + m.sum().data_points_size() +
               m.histogram().data_points_size() + m.exponential_histogram().data_points_size() +
               m.summary().data_points_size();
        }
  } else {
    otlp::collector::logs::v1::ExportLogsServiceRequest r;
    if (!r.ParseFromString(bytes)) return -1;
    for (const auto& rl : r.resource_logs())
      for (const auto& sl : rl.scope_logs()) n += sl.log_records_size();
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const telkit::Signal signal = static_cast<telkit::Signal>(1 + data[0] % 3);
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  telkit::Result<telkit::ScanReport> scan = telkit::ScanExportRequest(signal, bytes);
  // Without UTF-8 checks the scan accepts a superset, with the same counts.
  telkit::Result<telkit::ScanReport> loose =
      telkit::ScanExportRequest(signal, bytes, telkit::ScanOptions{.check_utf8 = false});
  if (scan.ok() && (!loose.ok() || loose->items != scan->items)) std::abort();
  if (!scan.ok()) return 0;

  if (ParsedItems(signal, bytes) != scan->items) std::abort();
  telkit::Result<telkit::FilteredRequest> filtered = telkit::RemoveInvalidItems(signal, bytes);
  if (!filtered.ok() || filtered->removed != scan->invalid_items) std::abort();
  if (filtered->removed > 0) {
    telkit::Result<telkit::ScanReport> rescan = telkit::ScanExportRequest(signal, filtered->bytes);
    if (!rescan.ok() || rescan->invalid_items != 0 ||
        rescan->items != scan->items - scan->invalid_items) {
      std::abort();
    }
  }
  return 0;
}
