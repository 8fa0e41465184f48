// The filter language of tel-batch's --drop-* and --keep-* flags: one
// expression is one or more conditions joined with `&&`, each
//
//   FIELD OP VALUE
//
//   OP     ==  !=          equal, not equal
//          =~  !~          RE2 regular expression, fully anchored (the whole
//                          text must match: `name =~ GET.*`)
//          <  <=  >  >=    numbers
//   VALUE  a bare word (up to whitespace or &&) or a "double-quoted string"
//          (\" and \\ are escapes; other backslashes stay, for regexes)
//
// Fields, by the item the expression is about:
//   every item   attr.KEY      the item's attribute (data point attributes for
//                              metrics); KEY may contain dots: attr.http.route,
//                              or be quoted: attr."my key"
//                resource.KEY  the resource attribute
//                scope.name, scope.version
//   spans        name, kind (unspecified internal server client producer
//                consumer, or the number), status (unset ok error, or the
//                number), status.message, duration_ms (end - start, in
//                milliseconds, fractional), trace_id, span_id, parent_span_id
//                (lowercase hex)
//   log records  name (the event name), severity (a number, or trace debug
//                info warn error fatal = 1 5 9 13 17 21), severity_text, body
//                (string bodies), trace_id, span_id
//   data points  name, unit and type (gauge sum histogram
//                exponential_histogram summary) of the metric; value (gauge
//                and sum points)
//
// Semantics. Names and string fields take == != =~ !~; kind, status and type
// take == !=; severity, duration_ms and value take == != < <= > >=;
// attributes take everything. An attribute compares as text with == and =~
// (integers in decimal, doubles in shortest form, booleans true/false) and
// as a number with == when both sides are numbers (attr.code == 200 matches
// the integer 200 and the double 200.0). An absent field never equals,
// matches or compares: == =~ < <= > >= are false and != !~ are true.
//
// Errors point at the column (1-based) of the offending token:
//   column 6: expected an operator (== != =~ !~ < <= > >=)
//   column 1: unknown field 'nmae' for spans (name kind status ...)
//   column 9: invalid regular expression: missing ): (a
// Thread-safety: FilterExpr is immutable after Parse; Matches may be called
// from any number of threads (RE2 is thread-safe).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/otlp/signal.h"
#include "common/pipeline/item_fields.h"

namespace re2 {
class RE2;
}

namespace telkit {

// One item with its resource and scope, as an expression sees it. Exactly
// one of span, log and point is set, matching the expression's signal.
struct FilterSubject {
  const AttributeList* resource_attributes = nullptr;
  std::string_view scope_name, scope_version;
  const SpanFields* span = nullptr;
  const LogFields* log = nullptr;
  const PointFields* point = nullptr;
};

class FilterExpr {
 public:
  // Parses `text` as an expression about items of `signal` (traces, metrics
  // or logs). INVALID_ARGUMENT "column N: what is wrong" otherwise.
  static Result<FilterExpr> Parse(Signal signal, std::string_view text);

  // True when every condition holds for `subject`.
  // REQUIRES: the member of `subject` for this expression's signal is set.
  bool Matches(const FilterSubject& subject) const;

  Signal signal() const { return signal_; }
  const std::string& text() const { return text_; }
  // Whether a condition looks at resource attributes, or at the item's
  // attributes (so callers collect them only when needed).
  bool uses_resource() const { return uses_resource_; }
  bool uses_attributes() const { return uses_attributes_; }

  enum class Field : uint8_t {
    kName, kKind, kStatus, kStatusMessage, kDurationMs, kTraceId, kSpanId, kParentSpanId,
    kSeverity, kSeverityText, kBody, kUnit, kType, kValue, kAttr, kResource, kScopeName, kScopeVersion,
  };
  enum class Op : uint8_t { kEq, kNe, kMatch, kNotMatch, kLt, kLe, kGt, kGe };

 private:
  struct Condition {
    Field field = Field::kName;
    std::string key;    // kAttr, kResource
    Op op = Op::kEq;
    std::string text;   // the value as written (ids: lowercase hex)
    std::string bytes;  // ids: the value as bytes
    bool has_number = false;
    double number = 0;  // the value as a number, when it is one (enum names resolved)
    std::shared_ptr<const re2::RE2> regex;
  };

  bool Holds(const Condition& c, const FilterSubject& s) const;
  AnyValueView Value(const Condition& c, const FilterSubject& s) const;
  static Status ParseCondition(Signal signal, std::string_view text, size_t& pos, Condition* c);

  Signal signal_ = Signal::kTraces;
  std::string text_;
  bool uses_resource_ = false;
  bool uses_attributes_ = false;
  std::vector<Condition> conditions_;
};

}  // namespace telkit
