// Span records: an ExportTraceServiceRequest split into one record per span,
// each keeping the span exactly as received (with its resource and scope) as
// a serialized ResourceSpans, plus the fields search needs. Format of the
// record inside blocks: docs/format/tracestore-block.md.
//
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/status.h"

namespace telkit {

// Per-request limits (0 = unlimited).
struct SpanLimits {
  // String attribute values (span, resource, event, link attributes) longer
  // than this are cut (at a UTF-8 character boundary).
  size_t max_attribute_bytes = 4096;
};

// Attributes copied into the search columns (besides the intrinsic fields).
std::span<const std::string_view> DefaultIndexedAttributes();

struct SpanRecord {
  std::string trace_id;  // 16 bytes
  std::string span_id;   // 8 bytes
  std::string parent_span_id;  // empty for a root span
  std::string service;   // resource attribute service.name ("" when absent)
  std::string name;
  int kind = 0;    // Span.SpanKind
  int status = 0;  // Status.StatusCode (0 unset, 1 ok, 2 error)
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  // Indexed attributes (span first, then resource) in string form.
  std::vector<std::pair<std::string, std::string>> attributes;
  // A serialized ResourceSpans holding the resource, the scope and this one
  // span, as received (after the attribute limit).
  std::string otlp;

  uint64_t duration_ns() const { return end_ns > start_ns ? end_ns - start_ns : 0; }
};

struct SplitStats {
  uint64_t spans = 0;
  uint64_t invalid_spans = 0;          // trace id not 16 bytes or span id not 8: dropped
  uint64_t truncated_attributes = 0;
};

// Splits a serialized ExportTraceServiceRequest. INVALID_ARGUMENT when the
// bytes do not parse. Spans with bad ids are dropped and counted. Walks the
// wire format and slices the resource, scope and span bytes (no message
// objects) unless an attribute value may need cutting.
Status SplitTraceRequest(std::string_view request, const SpanLimits& limits, std::vector<SpanRecord>* out,
                         SplitStats* stats);

// The same through protobuf message objects: what SplitTraceRequest falls
// back to for requests its wire-format walk does not take (attribute values
// to cut, malformed or unusual encodings). Exposed for tests.
Status SplitTraceRequestSlow(std::string_view request, const SpanLimits& limits, std::vector<SpanRecord>* out,
                             SplitStats* stats);

// Fills the search fields of `record` from record.otlp (used when reading
// blocks back). INVALID_ARGUMENT when otlp is not one ResourceSpans with one span.
Status ParseSpanRecord(std::string otlp, SpanRecord* record);

// One ExportTraceServiceRequest holding `spans`, spans with the same
// resource and scope merged under one ResourceSpans / ScopeSpans, in order of
// first appearance.
Result<std::string> SpansToTraceRequest(std::span<const SpanRecord> spans);

// The request holding the records' ResourceSpans as they are (one per span):
// the cheap form used to re-log live traces in the WAL.
std::string ConcatTraceRequest(std::span<const SpanRecord* const> spans);

// Lowercase hex of bytes; and back (INVALID_ARGUMENT on bad hex).
std::string HexId(std::string_view bytes);
Result<std::string> ParseHexId(std::string_view hex);

}  // namespace telkit
