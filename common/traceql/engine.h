// The TraceQL engine: evaluates a parsed Query (ast.h) on whole traces.
//
// Semantics (Tempo's, pkg/traceql):
//  * A spanset filter { cond } selects the spans of a trace for which cond is
//    true; a trace matches when the query leaves at least one non-empty
//    spanset. {} selects every span.
//  * Attribute lookups: span.x (span), resource.x, .x (span, else resource),
//    parent.x (the parent span's), event.x / link.x (any event / link: a
//    comparison holds when it holds for one of them), instrumentation.x
//    (scope attributes). A missing attribute is nil: every comparison with
//    it is false except `= nil`; `!= nil` holds when it exists.
//  * Values keep their OTLP type; int and float compare numerically, other
//    types compare only with their own (else = is false, != true). Regexes
//    (=~ !~, RE2) are fully anchored.
//  * Spanset operators: A && B: both non-empty, their union; A || B: the
//    union; A > B: spans of B whose parent is in A; A >> B: spans of B with an
//    ancestor in A; A < B: spans of B that are the parent of a span in A;
//    A << B: spans of B that are an ancestor of a span in A; A ~ B: spans of
//    B with a sibling (same parent, another span) in A; !> !>> !< !<< !~: the
//    spans of B for which that does not hold.
//  * Pipelines: each stage maps every spanset: a spanset expression filters
//    its spans; count() avg() min() max() sum() comparisons keep or drop it
//    (the value joins the spanset's attributes, e.g. "count()"); by(f)
//    splits it by f's value (attribute "by(f)"); select(f...) adds fields to
//    the returned spans; coalesce() merges all spansets into one.
//
// Thread-safe: the functions keep no state; a Query may be shared.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "common/traceql/ast.h"
#include "common/traceql/trace_source.h"
#include "common/tracestore/span_record.h"

namespace telkit::traceql {

struct Attribute {
  std::string key;
  Value value;
};

// A span decoded from its SpanRecord.otlp with typed attributes.
struct SpanView {
  std::string span_id, parent_id;  // bytes
  std::string name, status_message, service;
  int kind = 0, status = 0;
  uint64_t start_ns = 0, end_ns = 0;
  std::vector<Attribute> attributes, resource, scope_attributes;
  std::string scope_name, scope_version;
  struct Event {
    std::string name;
    uint64_t time_ns = 0;
    std::vector<Attribute> attributes;
  };
  struct Link {
    std::string trace_id, span_id;
    std::vector<Attribute> attributes;
  };
  std::vector<Event> events;
  std::vector<Link> links;
  int parent = -1;  // index in TraceView::spans; -1: root or parent not stored
  int child_count = 0;
  uint64_t duration_ns() const { return end_ns > start_ns ? end_ns - start_ns : 0; }
};

struct TraceView {
  std::string trace_id;  // bytes
  std::vector<SpanView> spans;  // by start time
  int root = -1;                // the span without parent; -1 when not stored
  uint64_t start_ns = 0, end_ns = 0;
  std::string root_name, root_service;  // "" without a root
  uint64_t bytes = 0;                   // OTLP bytes of the spans
  uint64_t duration_ns() const { return end_ns > start_ns ? end_ns - start_ns : 0; }
};

// Decodes a trace's records. INVALID_ARGUMENT when a record's otlp does not
// parse. REQUIRES: every record has the same trace id.
Result<TraceView> DecodeTrace(std::span<const SpanRecord> spans);

// Tempo's name for a trace whose root span is not stored.
inline constexpr const char* kRootNotReceived = "<root span not yet received>";

struct Spanset {
  std::vector<int> spans;  // indices into TraceView::spans, ascending
  std::vector<Attribute> attributes;  // by(...) values and aggregates
};

// The non-empty spansets `query` leaves of `trace` (empty: no match).
std::vector<Spanset> EvaluateTrace(const Query& query, const TraceView& trace);

// The value of a field for one span (nil when absent).
Value EvaluateField(const FieldExpr& field, const TraceView& trace, int span);

struct SearchOptions {
  int64_t start_ns = 0;  // traces with a span starting in [start_ns, end_ns)
  int64_t end_ns = std::numeric_limits<int64_t>::max();
  size_t limit = 20;              // traces returned (latest start first)
  size_t spans_per_spanset = 3;   // spans listed per spanset (0: all)
  uint64_t min_duration_ns = 0;   // trace duration bounds (0: none)
  uint64_t max_duration_ns = 0;
};

struct MatchedSpan {
  std::string span_id;  // bytes
  std::string name;
  uint64_t start_ns = 0, duration_ns = 0;
  std::vector<Attribute> attributes;  // the fields the query names
};

struct MatchedSpanset {
  std::vector<MatchedSpan> spans;  // at most spans_per_spanset
  size_t matched = 0;              // all matching spans
  std::vector<Attribute> attributes;
};

struct TraceMatch {
  std::string trace_id;  // bytes
  std::string root_service, root_name;
  uint64_t start_ns = 0, duration_ns = 0;
  size_t spans = 0;  // spans in the trace
  std::vector<MatchedSpanset> spansets;
};

struct SearchResult {
  std::vector<TraceMatch> traces;  // latest start first, at most limit
  uint64_t inspected_traces = 0, inspected_spans = 0, inspected_bytes = 0;
};

// Span conditions every trace matching `query` has a span meeting (from a
// leading spanset filter's top-level && of equalities on name, kind, status,
// resource.service.name and indexed attributes, and duration bounds): what
// Search asks the source to narrow by.
TraceSearchRequest Prefilter(const Query& query);

// Runs `query` over the traces of `source` in the window. Errors of the
// source come back as they are.
Result<SearchResult> Search(TraceSource& source, const Query& query, const SearchOptions& options);

// The match of one trace (its spansets), as Search lists it; nullopt-like
// empty spansets when it does not match.
TraceMatch MatchOf(const Query& query, const TraceView& trace, const std::vector<Spanset>& sets,
                   size_t spans_per_spanset);

}  // namespace telkit::traceql
