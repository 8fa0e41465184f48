// Validates OTLP Export{Trace,Metrics,Logs}ServiceRequest protobuf bytes
// without materialising messages, and counts their items.
//
// ScanExportRequest walks the protobuf wire format of the whole tree against
// the OTLP v1 schema (common/proto/opentelemetry/proto): every nested message
// down to AnyValue/ArrayValue/KeyValueList, checking tags, varints, lengths,
// the wire type of every known field, packed and unpacked repeated scalars,
// and (optionally) UTF-8 in string fields. Unknown fields, groups included,
// are checked for well-formedness and skipped. It allocates nothing per
// field and recurses only as deep as the message nesting of the input, which
// is bounded by kMaxMessageDepth.
//
// Guarantee (tested by wire_scan_test and wire_scan_fuzz): whenever
// ScanExportRequest returns OK with check_utf8 on, the generated C++
// message's ParseFromString succeeds on the same bytes and the parsed request
// holds exactly report.items items. The scanner is stricter than protobuf's
// parser in a few places, each a sign of a broken or hostile sender:
//   - a known field with the wrong wire type is an error (protobuf would keep
//     it as an unknown field);
//   - a varint whose 10th byte sets bits beyond 64 is an error;
//   - AnyValue values nest at most kMaxAnyValueDepth levels.
// Cost: about an eighth of a full ParseFromArray (bench/micro/wire_scan_bench
// prints both), which is why receivers validate with it and forward the bytes.
//
// Item rules. An item (span, metric data point, log record) can be well-formed
// yet semantically invalid. The rules are the *Defect functions below; both
// ScanExportRequest and RemoveInvalidItems (item_filter.h) apply exactly these
// functions, so they always agree on which items are invalid.
//
// Thread-safety: all functions are stateless and safe to call concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/status.h"
#include "common/otlp/signal.h"

namespace telkit {

// AnyValue nested in AnyValue (through ArrayValue or KeyValueList) deeper than
// this is refused: a legitimate attribute never nests that deep.
inline constexpr int kMaxAnyValueDepth = 32;
// Messages (and unknown groups) nested deeper than this below the request are
// refused; the same as protobuf's default recursion limit, so anything the
// scanner accepts protobuf parses.
inline constexpr int kMaxMessageDepth = 100;

struct ScanOptions {
  // Reject string fields that are not valid UTF-8 (RFC 3629: no overlong
  // forms, no surrogates, nothing above U+10FFFF), as protobuf's proto3 C++
  // parser does. Turning it off roughly halves the cost of the scan but
  // drops the ParseFromString guarantee for such strings.
  bool check_utf8 = true;
};

struct ScanReport {
  // Spans, metric data points (all five kinds) or log records, the way the
  // parsed message counts them (for a Metric whose data oneof appears more
  // than once, only the points of the member that wins).
  int64_t items = 0;
  // Resource{Spans,Metrics,Logs} entries.
  int64_t resources = 0;
  // Items among `items` that break an item rule (see the *Defect functions).
  int64_t invalid_items = 0;
  // Empty when invalid_items == 0, else why the first invalid item is
  // invalid and where it starts, e.g.
  // "span 'trace_id' is not 16 bytes (item at byte 1234)".
  std::string first_invalid_reason;
};

// Scans `bytes` as the Export*ServiceRequest of `signal`.
// REQUIRES: nothing; any bytes may be passed.
// Returns the report, or
//   INVALID_ARGUMENT  signal is not traces, metrics or logs; or the wire
//                     structure is broken: "malformed protobuf at byte N in
//                     PATH: DETAIL", PATH being the field path such as
//                     "resource_spans.scope_spans.spans.attributes"
//                     (DETAIL e.g. "length 99999 exceeds the remaining 12
//                     bytes", "invalid UTF-8", "AnyValue nesting exceeds 32
//                     levels");
//   RESOURCE_EXHAUSTED  bytes is 2 GiB or more (protobuf cannot parse it).
Result<ScanReport> ScanExportRequest(Signal signal, std::string_view bytes,
                                     const ScanOptions& options = {});


// The item rules. Each returns an empty view when the item passes, else a
// fixed reason ("span 'trace_id' is all zero"); the views point to static
// storage. Ids are the raw bytes fields.

// A span needs a 16-byte non-zero trace_id, an 8-byte non-zero span_id and a
// parent_span_id that is empty or 8 bytes. A span is also invalid when one of
// its links is (LinkIdsDefect); its own ids are reported first.
std::string_view SpanIdsDefect(std::string_view trace_id, std::string_view span_id,
                               std::string_view parent_span_id);
// A link needs a 16-byte non-zero trace_id and an 8-byte non-zero span_id.
std::string_view LinkIdsDefect(std::string_view trace_id, std::string_view span_id);
// A log record's trace_id is empty or 16 bytes, its span_id empty or 8 bytes.
std::string_view LogRecordIdsDefect(std::string_view trace_id, std::string_view span_id);
// A metric needs a non-empty name; otherwise every one of its points is invalid.
std::string_view MetricNameDefect(std::string_view name);
// A histogram data point's bucket_counts is empty or has one entry more than
// explicit_bounds. (Exponential histograms have no such rule.)
std::string_view HistogramBucketsDefect(size_t bucket_counts, size_t explicit_bounds);

}  // namespace telkit
