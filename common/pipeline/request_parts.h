// An OTLP export request taken apart at the protobuf wire level into what
// the pipeline processors and the batcher work on: its resource entries,
// their scope entries, and the items of each scope as byte views — never
// parsed into messages (see proto_wire.h for why).
//
// The three OTLP requests share one shape, field numbers included:
//
//   Export{Trace,Metrics,Logs}ServiceRequest
//     1  resource_{spans,metrics,logs}   Resource{Spans,Metrics,Logs}
//          1  resource     Resource          ] the resource entry's "header":
//          3  schema_url   string            ] every field but the scope
//          (unknown fields)                  ] entries
//          2  scope_{spans,metrics,logs}  Scope{Spans,Metrics,Logs}
//               1  scope        InstrumentationScope  ] the scope entry's
//               3  schema_url   string                ] "header": every
//               (unknown fields)                      ] field but the items
//               2  spans | metrics | log_records      the items
//
// So merging requests is concatenating item lists whose resource headers and
// scope headers are byte-identical, and concatenating two encoded requests is
// already a valid request (protobuf merges repeated fields by appending).
// Items are spans, log records, or whole Metric messages; item_count counts
// what OTLP counts: spans, log records, or metric data points.
//
// Views point into the decomposed payload or into strings the parts own
// (storage); the parts keep them alive, so RequestParts can be moved around
// and merged freely.
// Thread-safety: values; one thread at a time. The shared payloads are
// immutable, so parts sharing storage may live on different threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/base/status.h"
#include "common/otlp/signal.h"

namespace telkit {

// Field numbers shared by the three requests (see above).
inline constexpr uint32_t kRequestResourceField = 1;
inline constexpr uint32_t kResourceEntryScopeField = 2;
inline constexpr uint32_t kResourceEntryResourceField = 1;
inline constexpr uint32_t kScopeEntryItemField = 2;
inline constexpr uint32_t kScopeEntryScopeField = 1;

struct ScopePart {
  // The raw fields of the Scope* message other than its items.
  std::string_view header;
  // Each item's message bytes (a Span, LogRecord or Metric), in order.
  std::vector<std::string_view> items;
  // Spans, log records, or metric data points in `items`.
  int64_t item_count = 0;
};

struct ResourcePart {
  // The raw fields of the Resource* message other than its scope entries.
  std::string_view header;
  std::vector<ScopePart> scopes;
};

struct RequestParts {
  Signal signal = Signal::kTraces;
  std::vector<ResourcePart> resources;
  // Top-level fields other than the resource entries (unknown fields), raw.
  std::vector<std::string_view> extra;
  // Keeps every view above alive.
  std::vector<std::shared_ptr<const std::string>> storage;

  // Keeps `bytes` alive for as long as these parts (or parts they are merged
  // into) live, and returns a view of it.
  std::string_view Own(std::string bytes);
  // Sum of item_count over every scope.
  int64_t ItemCount() const;
  // Exactly what EncodeRequest produces, in bytes.
  size_t EncodedSize() const;
};

// Takes `payload`, a serialized Export*ServiceRequest of `signal`, apart.
// Walks the resource and scope entries and every item's framing (for
// metrics, down to the data points of each Metric, to count them).
// REQUIRES: payload != nullptr.
// INVALID_ARGUMENT when the signal is not traces, metrics or logs, or the
// framing is broken ("malformed traces payload at byte 123: truncated varint").
Result<RequestParts> DecomposeRequest(Signal signal, std::shared_ptr<const std::string> payload);

// The serialized request: resource entries in order, then the extra fields.
// Each entry is written as: its header fields numbered below the child
// field (resource, scope), the children (scope entries, items), then the
// remaining header fields (schema_url, unknown fields). So decomposing and
// encoding a request written in field-number order, as protobuf libraries
// and OTLP SDKs write them, gives back the same bytes.
std::string EncodeRequest(const RequestParts& parts);

// Data points of one Metric message (0 for a metric without data); the points
// of the data member that appears last, as protobuf's parser keeps them.
// INVALID_ARGUMENT when its framing is broken.
Result<int64_t> CountMetricPoints(std::string_view metric);

// Merges requests of one signal: items of scope entries whose resource
// header and scope header are byte-identical end up in one scope entry, in
// arrival order; everything else keeps its order of first appearance.
// Thread-compatible.
class RequestMerger {
 public:
  explicit RequestMerger(Signal signal) { merged_.signal = signal; }

  // REQUIRES: parts.signal is this merger's signal.
  void Add(RequestParts&& parts);
  // The merged request; the merger is empty afterwards.
  RequestParts Take();

  bool empty() const { return merged_.resources.empty() && merged_.extra.empty(); }
  int64_t item_count() const { return items_; }
  // An upper bound of the encoded size of Take() (exact up to a few bytes a
  // resource and scope entry).
  size_t approx_bytes() const { return bytes_; }

 private:
  struct ResourceIndex {
    std::unordered_map<std::string_view, size_t> scopes;
  };

  RequestParts merged_;
  std::unordered_map<std::string_view, size_t> resource_index_;
  std::vector<ResourceIndex> scope_index_;
  int64_t items_ = 0;
  size_t bytes_ = 0;
};

}  // namespace telkit
