// What an OTLP payload holds, found by scanning its protobuf wire format
// instead of materialising messages (about ten times cheaper than parsing,
// see DESIGN "Where the time goes"): per resource its service.name and item
// count, and totals. The same scan validates the payload completely: it
// accepts exactly what protobuf's ParseFromString accepts for the request
// type (every nested message, wire types, lengths, packed fields, UTF-8 of
// string fields, nesting up to 100 levels, unknown fields and groups).
// (wire_scan.h's ScanExportRequest is the receiver's check: stricter than
// protobuf, with item rules. This one is for consumers that must accept
// exactly what protobuf accepts, such as the OTLP/JSON printer.)
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/otlp/signal.h"

namespace telkit {

struct ResourceSummary {
  // The resource's "service.name" attribute when it is a string, else "".
  // With several "service.name" attributes the first counts.
  std::string service_name;
  // Spans, metric data points (of every metric type) or log records.
  uint64_t items = 0;
  bool operator==(const ResourceSummary&) const = default;
};

struct PayloadSummary {
  Signal signal = Signal::kTraces;
  // One entry per Resource{Spans,Metrics,Logs}, in payload order.
  std::vector<ResourceSummary> resources;
  uint64_t total_items = 0;  // the sum over resources
  bool operator==(const PayloadSummary&) const = default;
};

// Summarizes a serialized Export*ServiceRequest of `signal`.
// INVALID_ARGUMENT when the bytes do not parse as that request, saying where
// ("field 'resource_spans[0].scope_spans[1].spans[3].name': invalid UTF-8");
// UNIMPLEMENTED for a signal that is not OTLP.
Result<PayloadSummary> SummarizePayload(Signal signal, std::string_view bytes);

// Only the validation part of SummarizePayload: OK exactly when
// ParseFromString of the request type would succeed. Errors as above.
Status ValidateOtlpPayload(Signal signal, std::string_view bytes);

}  // namespace telkit
