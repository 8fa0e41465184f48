// Removes semantically invalid items from an OTLP export request, for the
// OTLP partial-success answer (the client learns how many items were
// rejected and why; the rest is accepted).
//
// The slow path: the request is fully parsed into the generated messages,
// filtered and serialized again. The fast path is ScanExportRequest
// (wire_scan.h), which tells whether there is anything to remove at all; both
// apply the same item rules (the *Defect functions of wire_scan.h), so
// `removed` here equals ScanReport::invalid_items there for any request both
// accept.
//
// Thread-safety: stateless; safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/status.h"
#include "common/otlp/signal.h"

namespace telkit {

struct FilteredRequest {
  // The request without the invalid items. Unchanged (byte for byte) when
  // removed == 0; otherwise re-serialized, unknown fields kept.
  std::string bytes;
  // Items (spans, metric data points, log records) removed.
  int64_t removed = 0;
  // Why the first removed item was invalid (a *Defect reason); empty when
  // removed == 0.
  std::string reason;
};

// Parses `bytes` as the Export*ServiceRequest of `signal` and removes every
// item that breaks an item rule: a span with bad ids or with a link with bad
// ids, every point of a metric without a name, a histogram point whose
// bucket_counts does not fit its explicit_bounds, a log record with bad ids.
// Containers emptied by the removal (metric, scope, resource entries) are
// dropped too; containers that were empty before are kept.
// REQUIRES: nothing; any bytes may be passed.
// Returns the filtered request, or
//   INVALID_ARGUMENT  signal is not traces, metrics or logs, or the bytes do
//                     not parse as that request.
Result<FilteredRequest> RemoveInvalidItems(Signal signal, std::string_view bytes);

}  // namespace telkit
