// The fields of OTLP items that the filter language (filter_expr.h) looks at,
// decoded from the wire format one message level at a time: a span's name,
// kind, status, times and attribute list; a log record's severity, body and
// ids; a metric data point's metric name, type, value and attributes.
// Attribute lists are kept as views of the KeyValue messages and searched
// only when a condition asks for a key.
//
// The decoders are lenient where the filter is concerned: a field with an
// unexpected wire type is ignored rather than refused (the receiver already
// validated the request; a broken one fails DecomposeRequest first). They
// return false only when the item's own framing is broken.
// Thread-safety: values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace telkit {

// An AnyValue (or a field standing in for one) as the filter compares it.
struct AnyValueView {
  enum class Kind : uint8_t { kAbsent, kString, kBool, kInt, kDouble, kBytes, kArray, kKvlist, kEmpty };
  Kind kind = Kind::kAbsent;
  std::string_view str;  // kString; kBytes: the raw bytes
  int64_t int_value = 0;
  double double_value = 0;
  bool bool_value = false;

  bool is_number() const { return kind == Kind::kInt || kind == Kind::kDouble; }
  double number() const { return kind == Kind::kInt ? static_cast<double>(int_value) : double_value; }
};

// Decodes AnyValue message bytes (an empty AnyValue is Kind::kEmpty).
AnyValueView DecodeAnyValue(std::string_view bytes);

// The attributes of one message, found while walking it: usually one
// contiguous run of KeyValue fields, kept as a single view (no allocation
// per attribute); KeyValue views only when the run is interrupted.
class AttributeList {
 public:
  void Clear() {
    run_ = {};
    split_.clear();
  }
  // Adds one attribute field: `raw` the whole field, `key_value` its payload.
  void Add(std::string_view raw, std::string_view key_value);
  // The value of the first attribute whose key is `key`; Kind::kAbsent when
  // there is none.
  AnyValueView Find(std::string_view key) const;

 private:
  std::string_view run_;                // raw attribute fields, back to back
  std::vector<std::string_view> split_;  // KeyValue payloads once not back to back
};

// Fills *attributes (cleared first) with field `field` of `message` (e.g.
// Resource.attributes = 1). False when the framing is broken.
bool CollectAttributes(std::string_view message, uint32_t field, AttributeList* attributes);

// The value as text for == and =~: strings as they are, integers in
// decimal, doubles in the shortest form that reads back the same, booleans
// as true/false, bytes in lowercase hex. Arrays, maps and absent values have
// no text (returns false).
bool AnyValueText(const AnyValueView& v, std::string* out);

struct SpanFields {
  std::string_view trace_id, span_id, parent_span_id, name, status_message;
  int32_t kind = 0;         // Span.SpanKind
  int32_t status_code = 0;  // Status.StatusCode
  uint64_t start_time_unix_nano = 0, end_time_unix_nano = 0;
  AttributeList attributes;
};

struct LogFields {
  std::string_view trace_id, span_id, severity_text, event_name;
  int32_t severity_number = 0;
  AnyValueView body;
  AttributeList attributes;
};

// One data point with what the filter needs of its metric.
struct PointFields {
  std::string_view metric_name, metric_unit;
  uint32_t data_field = 0;  // Metric field number: 5 gauge, 7 sum, 9 histogram, 10 exponential, 11 summary
  AnyValueView value;       // gauge and sum points: as_double or as_int; absent otherwise
  AttributeList attributes;
};

// Decode into *out, reusing its storage; the attribute list only
// when `attributes` is set. False on broken framing.
bool DecodeSpanFields(std::string_view span, SpanFields* out, bool attributes = true);
bool DecodeLogFields(std::string_view log_record, LogFields* out, bool attributes = true);
// Fills the point-level members (value, attributes) from a data point of a
// metric whose data field is out->data_field.
bool DecodePointFields(std::string_view point, PointFields* out);

// The InstrumentationScope name and version in a scope entry header
// (ScopePart::header); empty when absent.
void ScopeNameVersion(std::string_view scope_header, std::string_view* name, std::string_view* version);

}  // namespace telkit
