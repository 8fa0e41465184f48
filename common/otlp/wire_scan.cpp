#include "common/otlp/wire_scan.h"

#include <climits>
#include <cstring>
#include <string>

#include "common/base/utf8.h"

namespace telkit {
namespace {

// Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLen = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

std::string WireTypeName(uint32_t wire_type) {
  switch (wire_type) {
    case kVarint: return "varint";
    case kFixed64: return "fixed64";
    case kLen: return "length-delimited";
    case kStartGroup: return "start-group";
    case kEndGroup: return "end-group";
    case kFixed32: return "fixed32";
  }
  return "invalid wire type " + std::to_string(wire_type);
}

// Protobuf refuses lengths this close to INT_MAX (parse_context.h, kSlopBytes).
constexpr uint32_t kMaxLength = INT_MAX - 16;

struct Tag {
  uint32_t number;
  uint32_t wire_type;
  const uint8_t* start;  // where the tag begins, for error offsets
};

// Where the data points of one Metric stand while it is scanned. Only the
// data oneof member seen last survives a parse, so a different member resets
// the counts; the same member again adds to them (protobuf merges).
struct MetricState {
  uint32_t kind = 0;  // field number of the data member seen last, 0 for none
  int64_t points = 0;
  int64_t invalid = 0;
  std::string_view defect;  // first point defect of the current member
  const uint8_t* defect_at = nullptr;

  void SwitchTo(uint32_t field_number) {
    if (kind == field_number) return;
    kind = field_number;
    points = 0;
    invalid = 0;
    defect = {};
    defect_at = nullptr;
  }
  void AddPoint(std::string_view point_defect, const uint8_t* at) {
    ++points;
    if (point_defect.empty()) return;
    if (invalid++ == 0) {
      defect = point_defect;
      defect_at = at;
    }
  }
};

bool AllZero(std::string_view id) {
  for (char ch : id) {
    if (ch != 0) return false;
  }
  return true;
}

using Ptr = const uint8_t*;

#define TELKIT_INLINE [[gnu::always_inline]] inline

// Walks one request. Every reader takes the position `p` and the end `end` of
// the enclosing message and returns the position after what it consumed, or
// nullptr once it has recorded an error in error_ (internal only: the public
// API returns the Status). Positions stay in registers that way. Every Scan*
// function scans the payload [p, end) of one message of the type it names.
class Scanner {
 public:
  Scanner(std::string_view bytes, const ScanOptions& options)
      : base_(reinterpret_cast<Ptr>(bytes.data())),
        size_(bytes.size()),
        check_utf8_(options.check_utf8) {}

  Result<ScanReport> Run(Signal signal);

 private:
  using ScanFn = bool (Scanner::*)(Ptr, Ptr);

  // --- Errors: cold, out of line, so the readers stay small. ---

  [[gnu::noinline, gnu::cold]] Ptr Fail(Ptr at, const char* field, std::string_view detail);
  [[gnu::noinline, gnu::cold]] Ptr WrongWireType(Tag t, const char* field, std::string_view want);
  [[gnu::noinline, gnu::cold]] Ptr BadTag(Tag t);
  [[gnu::noinline, gnu::cold]] Ptr LengthPastEnd(Ptr at, const char* field, uint64_t length,
                                                 Ptr payload, Ptr end);
  [[gnu::noinline, gnu::cold]] Ptr FixedPastEnd(Ptr p, const char* field, size_t n, Ptr end);
  [[gnu::noinline, gnu::cold]] Ptr TooDeep(Tag t, const char* field);

  // --- Primitive readers. ---

  // REQUIRES: p < end.
  TELKIT_INLINE Ptr ReadTag(Ptr p, Ptr end, Tag* t) {
    t->start = p;
    uint32_t tag = *p;
    if (tag < 0x80) [[likely]] {
      ++p;
    } else {
      p = ReadTagSlow(p, end, &tag);
      if (p == nullptr) return nullptr;
    }
    t->number = tag >> 3;
    t->wire_type = tag & 7;
    if (t->number == 0 || t->wire_type > kFixed32) [[unlikely]] {
      return BadTag(*t);
    }
    return p;
  }
  Ptr ReadTagSlow(Ptr p, Ptr end, uint32_t* tag);

  TELKIT_INLINE Ptr SkipVarint(Ptr p, Ptr end, const char* field) {
    if (p < end && *p < 0x80) [[likely]] {
      return p + 1;
    }
    return SkipVarintSlow(p, end, field);
  }
  Ptr SkipVarintSlow(Ptr p, Ptr end, const char* field);

  // Reads a length prefix; returns where its payload starts and sets
  // *payload_end to where it ends (which is where the next field starts).
  TELKIT_INLINE Ptr ReadPayload(Ptr p, Ptr end, const char* field, Ptr* payload_end) {
    const Ptr at = p;
    uint32_t length = 0;
    if (p < end && *p < 0x80) [[likely]] {
      length = *p++;
    } else {
      p = ReadLengthSlow(p, end, field, &length);
      if (p == nullptr) return nullptr;
    }
    if (length > static_cast<size_t>(end - p)) [[unlikely]] {
      return LengthPastEnd(at, field, length, p, end);
    }
    *payload_end = p + length;
    return p;
  }
  Ptr ReadLengthSlow(Ptr p, Ptr end, const char* field, uint32_t* length);

  TELKIT_INLINE Ptr SkipFixed(Ptr p, Ptr end, const char* field, size_t n) {
    if (static_cast<size_t>(end - p) < n) [[unlikely]] {
      return FixedPastEnd(p, field, n, end);
    }
    return p + n;
  }

  // --- Typed fields of the schema: check the wire type, then consume. ---

  TELKIT_INLINE Ptr Varint(Ptr p, Ptr end, Tag t, const char* field) {
    if (t.wire_type != kVarint) [[unlikely]] {
      return WrongWireType(t, field, "varint");
    }
    return SkipVarint(p, end, field);
  }
  TELKIT_INLINE Ptr Fixed64(Ptr p, Ptr end, Tag t, const char* field) {
    if (t.wire_type != kFixed64) [[unlikely]] {
      return WrongWireType(t, field, "fixed64");
    }
    return SkipFixed(p, end, field, 8);
  }
  TELKIT_INLINE Ptr Fixed32(Ptr p, Ptr end, Tag t, const char* field) {
    if (t.wire_type != kFixed32) [[unlikely]] {
      return WrongWireType(t, field, "fixed32");
    }
    return SkipFixed(p, end, field, 4);
  }
  TELKIT_INLINE Ptr Bytes(Ptr p, Ptr end, Tag t, const char* field,
                          std::string_view* out = nullptr) {
    if (t.wire_type != kLen) [[unlikely]] {
      return WrongWireType(t, field, "length-delimited");
    }
    Ptr payload_end = nullptr;
    const Ptr payload = ReadPayload(p, end, field, &payload_end);
    if (payload == nullptr) return nullptr;
    if (out != nullptr) {
      *out = std::string_view(reinterpret_cast<const char*>(payload),
                              static_cast<size_t>(payload_end - payload));
    }
    return payload_end;
  }
  TELKIT_INLINE Ptr String(Ptr p, Ptr end, Tag t, const char* field,
                           std::string_view* out = nullptr) {
    if (t.wire_type != kLen) [[unlikely]] {
      return WrongWireType(t, field, "length-delimited");
    }
    Ptr payload_end = nullptr;
    const Ptr payload = ReadPayload(p, end, field, &payload_end);
    if (payload == nullptr) return nullptr;
    if (check_utf8_) {
      const Ptr bad = FindInvalidUtf8(payload, payload_end);
      if (bad != nullptr) [[unlikely]] {
        return Fail(bad, field, "invalid UTF-8");
      }
    }
    if (out != nullptr) {
      *out = std::string_view(reinterpret_cast<const char*>(payload),
                              static_cast<size_t>(payload_end - payload));
    }
    return payload_end;
  }
  // repeated fixed64/double: one element unpacked, or a packed run.
  Ptr RepeatedFixed64(Ptr p, Ptr end, Tag t, const char* field, int64_t* count);
  // repeated uint64: one element unpacked, or a packed run.
  Ptr RepeatedVarint(Ptr p, Ptr end, Tag t, const char* field, int64_t* count);

  // A nested message: checks the wire type and the depth, then runs
  // scan(payload, payload_end).
  template <typename Fn>
  TELKIT_INLINE Ptr Nested(Ptr p, Ptr end, Tag t, const char* field, Fn&& scan) {
    if (t.wire_type != kLen) [[unlikely]] {
      return WrongWireType(t, field, "length-delimited");
    }
    Ptr payload_end = nullptr;
    const Ptr payload = ReadPayload(p, end, field, &payload_end);
    if (payload == nullptr) return nullptr;
    if (depth_ == kMaxMessageDepth) [[unlikely]] {
      return TooDeep(t, field);
    }
    path_[depth_++] = field;
    const bool ok = scan(payload, payload_end);
    --depth_;
    return ok ? payload_end : nullptr;
  }
  template <ScanFn fn>
  TELKIT_INLINE Ptr Nested(Ptr p, Ptr end, Tag t, const char* field) {
    return Nested(p, end, t, field, [this](Ptr b, Ptr e) { return (this->*fn)(b, e); });
  }

  // Calls on_field(position after the tag, tag) for each field of the
  // message [p, end); on_field consumes the value and returns the position
  // after it, or nullptr.
  template <typename OnField>
  TELKIT_INLINE bool Fields(Ptr p, Ptr end, OnField&& on_field) {
    while (p < end) {
      Tag t;
      p = ReadTag(p, end, &t);
      if (p == nullptr) return false;
      p = on_field(p, t);
      if (p == nullptr) return false;
    }
    return true;
  }

  Ptr SkipUnknown(Ptr p, Ptr end, Tag t);
  Ptr SkipGroup(Ptr p, Ptr end, Tag open);

  void NoteInvalid(int64_t count, std::string_view defect, Ptr at);

  // --- The OTLP v1 schema, one function a message type. ---

  // common.proto, resource.proto
  bool ScanAnyValue(Ptr p, Ptr end);
  bool ScanArrayValue(Ptr p, Ptr end);
  bool ScanKeyValueList(Ptr p, Ptr end);
  bool ScanKeyValue(Ptr p, Ptr end);
  bool ScanScope(Ptr p, Ptr end);
  bool ScanEntityRef(Ptr p, Ptr end);
  bool ScanResource(Ptr p, Ptr end);
  // trace.proto
  bool ScanResourceSpans(Ptr p, Ptr end);
  bool ScanScopeSpans(Ptr p, Ptr end);
  bool ScanSpan(Ptr p, Ptr end);
  bool ScanEvent(Ptr p, Ptr end);
  bool ScanLink(Ptr p, Ptr end, std::string_view* first_defect);
  bool ScanStatus(Ptr p, Ptr end);
  // metrics.proto
  bool ScanResourceMetrics(Ptr p, Ptr end);
  bool ScanScopeMetrics(Ptr p, Ptr end);
  bool ScanMetric(Ptr p, Ptr end);
  bool ScanNumberPoints(Ptr p, Ptr end, MetricState* m);  // Gauge, Sum
  bool ScanHistogram(Ptr p, Ptr end, MetricState* m);
  bool ScanExponentialHistogram(Ptr p, Ptr end, MetricState* m);
  bool ScanSummary(Ptr p, Ptr end, MetricState* m);
  bool ScanNumberDataPoint(Ptr p, Ptr end);
  bool ScanHistogramDataPoint(Ptr p, Ptr end, std::string_view* defect);
  bool ScanExponentialHistogramDataPoint(Ptr p, Ptr end);
  bool ScanBuckets(Ptr p, Ptr end);
  bool ScanSummaryDataPoint(Ptr p, Ptr end);
  bool ScanValueAtQuantile(Ptr p, Ptr end);
  bool ScanExemplar(Ptr p, Ptr end);
  // logs.proto
  bool ScanResourceLogs(Ptr p, Ptr end);
  bool ScanScopeLogs(Ptr p, Ptr end);
  bool ScanLogRecord(Ptr p, Ptr end);

  const Ptr base_;
  const size_t size_;
  const bool check_utf8_;
  int depth_ = 0;      // messages entered below the request
  int any_depth_ = 0;  // AnyValue messages entered
  const char* path_[kMaxMessageDepth];
  ScanReport report_;
  Status error_;
};

Ptr Scanner::Fail(Ptr at, const char* field, std::string_view detail) {
  std::string m = "malformed protobuf at byte " + std::to_string(at - base_);
  if (depth_ > 0 || field != nullptr) {
    m += " in ";
    for (int i = 0; i < depth_; ++i) {
      if (i > 0) m += '.';
      m += path_[i];
    }
    if (field != nullptr) {
      if (depth_ > 0) m += '.';
      m += field;
    }
  }
  m += ": ";
  m += detail;
  error_ = InvalidArgumentError(std::move(m));
  return nullptr;
}

Ptr Scanner::WrongWireType(Tag t, const char* field, std::string_view want) {
  std::string detail = "field " + std::to_string(t.number) + " has wire type " +
                       WireTypeName(t.wire_type) + ", want ";
  detail += want;
  return Fail(t.start, field, detail);
}

Ptr Scanner::BadTag(Tag t) {
  if (t.number == 0) return Fail(t.start, nullptr, "field number 0");
  return Fail(t.start, nullptr, "invalid wire type " + std::to_string(t.wire_type));
}

Ptr Scanner::LengthPastEnd(Ptr at, const char* field, uint64_t length, Ptr payload, Ptr end) {
  return Fail(at, field,
              "length " + std::to_string(length) + " exceeds the remaining " +
                  std::to_string(end - payload) + " bytes");
}

Ptr Scanner::FixedPastEnd(Ptr p, const char* field, size_t n, Ptr end) {
  return Fail(p, field,
              "fixed" + std::to_string(n * 8) + " needs " + std::to_string(n) + " bytes, " +
                  std::to_string(end - p) + " remain");
}

Ptr Scanner::TooDeep(Tag t, const char* field) {
  return Fail(t.start, field,
              "messages nest deeper than " + std::to_string(kMaxMessageDepth) + " levels");
}

Ptr Scanner::ReadTagSlow(Ptr p, Ptr end, uint32_t* tag) {
  // At most 5 bytes; the 5th may hold only the top 4 bits of 32.
  const Ptr start = p;
  uint32_t value = 0;
  for (int i = 0; i < 5; ++i) {
    if (p == end) return Fail(start, nullptr, "truncated tag");
    const uint32_t b = *p++;
    if (i == 4 && b > 0x0F) break;
    value |= (b & 0x7F) << (7 * i);
    if (b < 0x80) {
      *tag = value;
      return p;
    }
  }
  return Fail(start, nullptr, "tag exceeds 32 bits");
}

Ptr Scanner::SkipVarintSlow(Ptr p, Ptr end, const char* field) {
  // At most 10 bytes; the 10th may hold only the top bit of 64.
  const Ptr start = p;
  for (int i = 0; i < 10; ++i) {
    if (p == end) return Fail(start, field, "truncated varint");
    const uint8_t b = *p++;
    if (i == 9 && b > 1) break;
    if (b < 0x80) return p;
  }
  return Fail(start, field, "varint exceeds 64 bits");
}

Ptr Scanner::ReadLengthSlow(Ptr p, Ptr end, const char* field, uint32_t* length) {
  // Protobuf reads lengths as at most 5 bytes below 2 GiB (ReadSize).
  const Ptr start = p;
  uint64_t v = 0;
  for (int i = 0; i < 5; ++i) {
    if (p == end) return Fail(start, field, "truncated length");
    const uint64_t b = *p++;
    v |= (b & 0x7F) << (7 * i);
    if (b < 0x80) {
      if (v > kMaxLength) break;
      *length = static_cast<uint32_t>(v);
      return p;
    }
  }
  return Fail(start, field, "length exceeds 2 GiB");
}

Ptr Scanner::RepeatedFixed64(Ptr p, Ptr end, Tag t, const char* field, int64_t* count) {
  if (t.wire_type == kFixed64) {
    ++*count;
    return SkipFixed(p, end, field, 8);
  }
  if (t.wire_type != kLen) return WrongWireType(t, field, "fixed64 or length-delimited (packed)");
  Ptr run_end = nullptr;
  const Ptr run = ReadPayload(p, end, field, &run_end);
  if (run == nullptr) return nullptr;
  const size_t n = static_cast<size_t>(run_end - run);
  if (n % 8 != 0) {
    return Fail(run, field,
                "packed fixed64 run of " + std::to_string(n) + " bytes is not a multiple of 8");
  }
  *count += static_cast<int64_t>(n / 8);
  return run_end;
}

Ptr Scanner::RepeatedVarint(Ptr p, Ptr end, Tag t, const char* field, int64_t* count) {
  if (t.wire_type == kVarint) {
    ++*count;
    return SkipVarint(p, end, field);
  }
  if (t.wire_type != kLen) return WrongWireType(t, field, "varint or length-delimited (packed)");
  Ptr run_end = nullptr;
  Ptr run = ReadPayload(p, end, field, &run_end);
  if (run == nullptr) return nullptr;
  while (run < run_end) {
    run = SkipVarint(run, run_end, field);
    if (run == nullptr) return nullptr;
    ++*count;
  }
  return run_end;
}

Ptr Scanner::SkipUnknown(Ptr p, Ptr end, Tag t) {
  switch (t.wire_type) {
    case kVarint: return SkipVarint(p, end, nullptr);
    case kFixed64: return SkipFixed(p, end, nullptr, 8);
    case kLen: {
      Ptr payload_end = nullptr;
      return ReadPayload(p, end, nullptr, &payload_end) == nullptr ? nullptr : payload_end;
    }
    case kFixed32: return SkipFixed(p, end, nullptr, 4);
    case kStartGroup: return SkipGroup(p, end, t);
    case kEndGroup:
      return Fail(t.start, nullptr,
                  "end-group tag of field " + std::to_string(t.number) + " without a start-group");
    default:  // ReadTag refuses wire types 6 and 7
      return BadTag(t);
  }
}

Ptr Scanner::SkipGroup(Ptr p, Ptr end, Tag open) {
  // Groups (proto2) appear here only as unknown fields. Iterative, with the
  // field numbers of the open groups on a bounded stack; each counts as a
  // level of nesting, as in protobuf.
  uint32_t open_numbers[kMaxMessageDepth];
  int open_count = 0;
  auto push = [&](Tag t) {
    if (depth_ + open_count >= kMaxMessageDepth) return TooDeep(t, nullptr) != nullptr;
    open_numbers[open_count++] = t.number;
    return true;
  };
  if (!push(open)) return nullptr;
  while (p < end) {
    Tag t;
    p = ReadTag(p, end, &t);
    if (p == nullptr) return nullptr;
    if (t.wire_type == kEndGroup) {
      if (t.number != open_numbers[open_count - 1]) {
        return Fail(t.start, nullptr,
                    "end-group tag of field " + std::to_string(t.number) +
                        " closes the group of field " +
                        std::to_string(open_numbers[open_count - 1]));
      }
      if (--open_count == 0) return p;
    } else if (t.wire_type == kStartGroup) {
      if (!push(t)) return nullptr;
    } else {
      p = SkipUnknown(p, end, t);
      if (p == nullptr) return nullptr;
    }
  }
  return Fail(open.start, nullptr,
              "group of field " + std::to_string(open.number) + " has no end-group tag");
}

void Scanner::NoteInvalid(int64_t count, std::string_view defect, Ptr at) {
  if (count == 0) return;
  if (report_.invalid_items == 0) {
    report_.first_invalid_reason =
        std::string(defect) + " (item at byte " + std::to_string(at - base_) + ")";
  }
  report_.invalid_items += count;
}

// --- common.proto, resource.proto ---

bool Scanner::ScanAnyValue(Ptr p, Ptr end) {
  if (any_depth_ == kMaxAnyValueDepth) [[unlikely]] {
    return Fail(p, nullptr,
                "AnyValue nesting exceeds " + std::to_string(kMaxAnyValueDepth) + " levels");
  }
  ++any_depth_;
  const bool ok = Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return String(q, end, t, "string_value");
      case 2: return Varint(q, end, t, "bool_value");
      case 3: return Varint(q, end, t, "int_value");
      case 4: return Fixed64(q, end, t, "double_value");
      case 5: return Nested<&Scanner::ScanArrayValue>(q, end, t, "array_value");
      case 6: return Nested<&Scanner::ScanKeyValueList>(q, end, t, "kvlist_value");
      case 7: return Bytes(q, end, t, "bytes_value");
      default: return SkipUnknown(q, end, t);
    }
  });
  --any_depth_;
  return ok;
}

bool Scanner::ScanArrayValue(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    if (t.number == 1) return Nested<&Scanner::ScanAnyValue>(q, end, t, "values");
    return SkipUnknown(q, end, t);
  });
}

bool Scanner::ScanKeyValueList(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    if (t.number == 1) return Nested<&Scanner::ScanKeyValue>(q, end, t, "values");
    return SkipUnknown(q, end, t);
  });
}

bool Scanner::ScanKeyValue(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return String(q, end, t, "key");
      case 2: return Nested<&Scanner::ScanAnyValue>(q, end, t, "value");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanScope(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return String(q, end, t, "name");
      case 2: return String(q, end, t, "version");
      case 3: return Nested<&Scanner::ScanKeyValue>(q, end, t, "attributes");
      case 4: return Varint(q, end, t, "dropped_attributes_count");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanEntityRef(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return String(q, end, t, "schema_url");
      case 2: return String(q, end, t, "type");
      case 3: return String(q, end, t, "id_keys");
      case 4: return String(q, end, t, "description_keys");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanResource(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Nested<&Scanner::ScanKeyValue>(q, end, t, "attributes");
      case 2: return Varint(q, end, t, "dropped_attributes_count");
      case 3: return Nested<&Scanner::ScanEntityRef>(q, end, t, "entity_refs");
      default: return SkipUnknown(q, end, t);
    }
  });
}

// --- trace.proto ---

bool Scanner::ScanResourceSpans(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Nested<&Scanner::ScanResource>(q, end, t, "resource");
      case 2: return Nested<&Scanner::ScanScopeSpans>(q, end, t, "scope_spans");
      case 3: return String(q, end, t, "schema_url");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanScopeSpans(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Nested<&Scanner::ScanScope>(q, end, t, "scope");
      case 2: return Nested<&Scanner::ScanSpan>(q, end, t, "spans");
      case 3: return String(q, end, t, "schema_url");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanSpan(Ptr p, Ptr end) {
  const Ptr start = p;
  std::string_view trace_id, span_id, parent_span_id, link_defect;
  const bool ok = Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Bytes(q, end, t, "trace_id", &trace_id);
      case 2: return Bytes(q, end, t, "span_id", &span_id);
      case 3: return String(q, end, t, "trace_state");
      case 4: return Bytes(q, end, t, "parent_span_id", &parent_span_id);
      case 5: return String(q, end, t, "name");
      case 6: return Varint(q, end, t, "kind");
      case 7: return Fixed64(q, end, t, "start_time_unix_nano");
      case 8: return Fixed64(q, end, t, "end_time_unix_nano");
      case 9: return Nested<&Scanner::ScanKeyValue>(q, end, t, "attributes");
      case 10: return Varint(q, end, t, "dropped_attributes_count");
      case 11: return Nested<&Scanner::ScanEvent>(q, end, t, "events");
      case 12: return Varint(q, end, t, "dropped_events_count");
      case 13:
        return Nested(q, end, t, "links",
                      [&](Ptr b, Ptr e) { return ScanLink(b, e, &link_defect); });
      case 14: return Varint(q, end, t, "dropped_links_count");
      case 15: return Nested<&Scanner::ScanStatus>(q, end, t, "status");
      case 16: return Fixed32(q, end, t, "flags");
      default: return SkipUnknown(q, end, t);
    }
  });
  if (!ok) return false;
  ++report_.items;
  std::string_view defect = SpanIdsDefect(trace_id, span_id, parent_span_id);
  if (defect.empty()) defect = link_defect;
  if (!defect.empty()) NoteInvalid(1, defect, start);
  return true;
}

bool Scanner::ScanEvent(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Fixed64(q, end, t, "time_unix_nano");
      case 2: return String(q, end, t, "name");
      case 3: return Nested<&Scanner::ScanKeyValue>(q, end, t, "attributes");
      case 4: return Varint(q, end, t, "dropped_attributes_count");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanLink(Ptr p, Ptr end, std::string_view* first_defect) {
  std::string_view trace_id, span_id;
  const bool ok = Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Bytes(q, end, t, "trace_id", &trace_id);
      case 2: return Bytes(q, end, t, "span_id", &span_id);
      case 3: return String(q, end, t, "trace_state");
      case 4: return Nested<&Scanner::ScanKeyValue>(q, end, t, "attributes");
      case 5: return Varint(q, end, t, "dropped_attributes_count");
      case 6: return Fixed32(q, end, t, "flags");
      default: return SkipUnknown(q, end, t);
    }
  });
  if (!ok) return false;
  if (first_defect->empty()) *first_defect = LinkIdsDefect(trace_id, span_id);
  return true;
}

bool Scanner::ScanStatus(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 2: return String(q, end, t, "message");
      case 3: return Varint(q, end, t, "code");
      default: return SkipUnknown(q, end, t);
    }
  });
}

// --- metrics.proto ---

bool Scanner::ScanResourceMetrics(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Nested<&Scanner::ScanResource>(q, end, t, "resource");
      case 2: return Nested<&Scanner::ScanScopeMetrics>(q, end, t, "scope_metrics");
      case 3: return String(q, end, t, "schema_url");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanScopeMetrics(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Nested<&Scanner::ScanScope>(q, end, t, "scope");
      case 2: return Nested<&Scanner::ScanMetric>(q, end, t, "metrics");
      case 3: return String(q, end, t, "schema_url");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanMetric(Ptr p, Ptr end) {
  const Ptr start = p;
  std::string_view name;
  MetricState m;
  const bool ok = Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return String(q, end, t, "name", &name);
      case 2: return String(q, end, t, "description");
      case 3: return String(q, end, t, "unit");
      case 5:
        m.SwitchTo(t.number);
        return Nested(q, end, t, "gauge", [&](Ptr b, Ptr e) { return ScanNumberPoints(b, e, &m); });
      case 7:
        m.SwitchTo(t.number);
        return Nested(q, end, t, "sum", [&](Ptr b, Ptr e) { return ScanNumberPoints(b, e, &m); });
      case 9:
        m.SwitchTo(t.number);
        return Nested(q, end, t, "histogram",
                      [&](Ptr b, Ptr e) { return ScanHistogram(b, e, &m); });
      case 10:
        m.SwitchTo(t.number);
        return Nested(q, end, t, "exponential_histogram",
                      [&](Ptr b, Ptr e) { return ScanExponentialHistogram(b, e, &m); });
      case 11:
        m.SwitchTo(t.number);
        return Nested(q, end, t, "summary", [&](Ptr b, Ptr e) { return ScanSummary(b, e, &m); });
      case 12: return Nested<&Scanner::ScanKeyValue>(q, end, t, "metadata");
      default: return SkipUnknown(q, end, t);
    }
  });
  if (!ok) return false;
  report_.items += m.points;
  const std::string_view name_defect = MetricNameDefect(name);
  if (!name_defect.empty()) {
    NoteInvalid(m.points, name_defect, start);
  } else {
    NoteInvalid(m.invalid, m.defect, m.defect_at);
  }
  return true;
}

bool Scanner::ScanNumberPoints(Ptr p, Ptr end, MetricState* m) {
  // Gauge (data_points = 1) and Sum (data_points = 1, aggregation_temporality
  // = 2, is_monotonic = 3) share their field numbers and types.
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: {
        Ptr at = nullptr;
        const Ptr next = Nested(q, end, t, "data_points", [&](Ptr b, Ptr e) {
          at = b;
          return ScanNumberDataPoint(b, e);
        });
        if (next != nullptr) m->AddPoint({}, at);
        return next;
      }
      case 2: return Varint(q, end, t, "aggregation_temporality");
      case 3: return Varint(q, end, t, "is_monotonic");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanHistogram(Ptr p, Ptr end, MetricState* m) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: {
        std::string_view defect;
        Ptr at = nullptr;
        const Ptr next = Nested(q, end, t, "data_points", [&](Ptr b, Ptr e) {
          at = b;
          return ScanHistogramDataPoint(b, e, &defect);
        });
        if (next != nullptr) m->AddPoint(defect, at);
        return next;
      }
      case 2: return Varint(q, end, t, "aggregation_temporality");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanExponentialHistogram(Ptr p, Ptr end, MetricState* m) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: {
        Ptr at = nullptr;
        const Ptr next = Nested(q, end, t, "data_points", [&](Ptr b, Ptr e) {
          at = b;
          return ScanExponentialHistogramDataPoint(b, e);
        });
        if (next != nullptr) m->AddPoint({}, at);
        return next;
      }
      case 2: return Varint(q, end, t, "aggregation_temporality");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanSummary(Ptr p, Ptr end, MetricState* m) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    if (t.number != 1) return SkipUnknown(q, end, t);
    Ptr at = nullptr;
    const Ptr next = Nested(q, end, t, "data_points", [&](Ptr b, Ptr e) {
      at = b;
      return ScanSummaryDataPoint(b, e);
    });
    if (next != nullptr) m->AddPoint({}, at);
    return next;
  });
}

bool Scanner::ScanNumberDataPoint(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 2: return Fixed64(q, end, t, "start_time_unix_nano");
      case 3: return Fixed64(q, end, t, "time_unix_nano");
      case 4: return Fixed64(q, end, t, "as_double");
      case 5: return Nested<&Scanner::ScanExemplar>(q, end, t, "exemplars");
      case 6: return Fixed64(q, end, t, "as_int");
      case 7: return Nested<&Scanner::ScanKeyValue>(q, end, t, "attributes");
      case 8: return Varint(q, end, t, "flags");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanHistogramDataPoint(Ptr p, Ptr end, std::string_view* defect) {
  int64_t bucket_counts = 0;
  int64_t explicit_bounds = 0;
  const bool ok = Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 2: return Fixed64(q, end, t, "start_time_unix_nano");
      case 3: return Fixed64(q, end, t, "time_unix_nano");
      case 4: return Fixed64(q, end, t, "count");
      case 5: return Fixed64(q, end, t, "sum");
      case 6: return RepeatedFixed64(q, end, t, "bucket_counts", &bucket_counts);
      case 7: return RepeatedFixed64(q, end, t, "explicit_bounds", &explicit_bounds);
      case 8: return Nested<&Scanner::ScanExemplar>(q, end, t, "exemplars");
      case 9: return Nested<&Scanner::ScanKeyValue>(q, end, t, "attributes");
      case 10: return Varint(q, end, t, "flags");
      case 11: return Fixed64(q, end, t, "min");
      case 12: return Fixed64(q, end, t, "max");
      default: return SkipUnknown(q, end, t);
    }
  });
  if (!ok) return false;
  *defect = HistogramBucketsDefect(static_cast<size_t>(bucket_counts),
                                   static_cast<size_t>(explicit_bounds));
  return true;
}

bool Scanner::ScanExponentialHistogramDataPoint(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Nested<&Scanner::ScanKeyValue>(q, end, t, "attributes");
      case 2: return Fixed64(q, end, t, "start_time_unix_nano");
      case 3: return Fixed64(q, end, t, "time_unix_nano");
      case 4: return Fixed64(q, end, t, "count");
      case 5: return Fixed64(q, end, t, "sum");
      case 6: return Varint(q, end, t, "scale");
      case 7: return Fixed64(q, end, t, "zero_count");
      case 8: return Nested<&Scanner::ScanBuckets>(q, end, t, "positive");
      case 9: return Nested<&Scanner::ScanBuckets>(q, end, t, "negative");
      case 10: return Varint(q, end, t, "flags");
      case 11: return Nested<&Scanner::ScanExemplar>(q, end, t, "exemplars");
      case 12: return Fixed64(q, end, t, "min");
      case 13: return Fixed64(q, end, t, "max");
      case 14: return Fixed64(q, end, t, "zero_threshold");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanBuckets(Ptr p, Ptr end) {
  int64_t ignored = 0;
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Varint(q, end, t, "offset");
      case 2: return RepeatedVarint(q, end, t, "bucket_counts", &ignored);
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanSummaryDataPoint(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 2: return Fixed64(q, end, t, "start_time_unix_nano");
      case 3: return Fixed64(q, end, t, "time_unix_nano");
      case 4: return Fixed64(q, end, t, "count");
      case 5: return Fixed64(q, end, t, "sum");
      case 6: return Nested<&Scanner::ScanValueAtQuantile>(q, end, t, "quantile_values");
      case 7: return Nested<&Scanner::ScanKeyValue>(q, end, t, "attributes");
      case 8: return Varint(q, end, t, "flags");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanValueAtQuantile(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Fixed64(q, end, t, "quantile");
      case 2: return Fixed64(q, end, t, "value");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanExemplar(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 2: return Fixed64(q, end, t, "time_unix_nano");
      case 3: return Fixed64(q, end, t, "as_double");
      case 4: return Bytes(q, end, t, "span_id");
      case 5: return Bytes(q, end, t, "trace_id");
      case 6: return Fixed64(q, end, t, "as_int");
      case 7: return Nested<&Scanner::ScanKeyValue>(q, end, t, "filtered_attributes");
      default: return SkipUnknown(q, end, t);
    }
  });
}

// --- logs.proto ---

bool Scanner::ScanResourceLogs(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Nested<&Scanner::ScanResource>(q, end, t, "resource");
      case 2: return Nested<&Scanner::ScanScopeLogs>(q, end, t, "scope_logs");
      case 3: return String(q, end, t, "schema_url");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanScopeLogs(Ptr p, Ptr end) {
  return Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Nested<&Scanner::ScanScope>(q, end, t, "scope");
      case 2: return Nested<&Scanner::ScanLogRecord>(q, end, t, "log_records");
      case 3: return String(q, end, t, "schema_url");
      default: return SkipUnknown(q, end, t);
    }
  });
}

bool Scanner::ScanLogRecord(Ptr p, Ptr end) {
  const Ptr start = p;
  std::string_view trace_id, span_id;
  const bool ok = Fields(p, end, [&](Ptr q, Tag t) -> Ptr {
    switch (t.number) {
      case 1: return Fixed64(q, end, t, "time_unix_nano");
      case 2: return Varint(q, end, t, "severity_number");
      case 3: return String(q, end, t, "severity_text");
      case 5: return Nested<&Scanner::ScanAnyValue>(q, end, t, "body");
      case 6: return Nested<&Scanner::ScanKeyValue>(q, end, t, "attributes");
      case 7: return Varint(q, end, t, "dropped_attributes_count");
      case 8: return Fixed32(q, end, t, "flags");
      case 9: return Bytes(q, end, t, "trace_id", &trace_id);
      case 10: return Bytes(q, end, t, "span_id", &span_id);
      case 11: return Fixed64(q, end, t, "observed_time_unix_nano");
      case 12: return String(q, end, t, "event_name");
      default: return SkipUnknown(q, end, t);
    }
  });
  if (!ok) return false;
  ++report_.items;
  const std::string_view defect = LogRecordIdsDefect(trace_id, span_id);
  if (!defect.empty()) NoteInvalid(1, defect, start);
  return true;
}

Result<ScanReport> Scanner::Run(Signal signal) {
  if (size_ > static_cast<size_t>(INT_MAX)) {
    return ResourceExhaustedError("request of " + std::to_string(size_) +
                                  " bytes exceeds the protobuf limit of 2 GiB");
  }
  ScanFn scan_resource = nullptr;
  const char* field = nullptr;
  switch (signal) {
    case Signal::kTraces:
      scan_resource = &Scanner::ScanResourceSpans;
      field = "resource_spans";
      break;
    case Signal::kMetrics:
      scan_resource = &Scanner::ScanResourceMetrics;
      field = "resource_metrics";
      break;
    case Signal::kLogs:
      scan_resource = &Scanner::ScanResourceLogs;
      field = "resource_logs";
      break;
    default:
      return InvalidArgumentError("signal '" + std::string(SignalName(signal)) +
                                  "' is not an OTLP export request");
  }
  const Ptr end = base_ + size_;
  const bool ok = Fields(base_, end, [&](Ptr q, Tag t) -> Ptr {
    if (t.number != 1) return SkipUnknown(q, end, t);
    const Ptr next =
        Nested(q, end, t, field, [&](Ptr b, Ptr e) { return (this->*scan_resource)(b, e); });
    if (next != nullptr) ++report_.resources;
    return next;
  });
  if (!ok) return error_;
  return std::move(report_);
}

}  // namespace

Result<ScanReport> ScanExportRequest(Signal signal, std::string_view bytes,
                                     const ScanOptions& options) {
  return Scanner(bytes, options).Run(signal);
}

std::string_view SpanIdsDefect(std::string_view trace_id, std::string_view span_id,
                               std::string_view parent_span_id) {
  if (trace_id.size() != 16) return "span 'trace_id' is not 16 bytes";
  if (AllZero(trace_id)) return "span 'trace_id' is all zero";
  if (span_id.size() != 8) return "span 'span_id' is not 8 bytes";
  if (AllZero(span_id)) return "span 'span_id' is all zero";
  if (!parent_span_id.empty() && parent_span_id.size() != 8) {
    return "span 'parent_span_id' is neither empty nor 8 bytes";
  }
  return {};
}

std::string_view LinkIdsDefect(std::string_view trace_id, std::string_view span_id) {
  if (trace_id.size() != 16) return "span link 'trace_id' is not 16 bytes";
  if (AllZero(trace_id)) return "span link 'trace_id' is all zero";
  if (span_id.size() != 8) return "span link 'span_id' is not 8 bytes";
  if (AllZero(span_id)) return "span link 'span_id' is all zero";
  return {};
}

std::string_view LogRecordIdsDefect(std::string_view trace_id, std::string_view span_id) {
  if (!trace_id.empty() && trace_id.size() != 16) {
    return "log record 'trace_id' is neither empty nor 16 bytes";
  }
  if (!span_id.empty() && span_id.size() != 8) {
    return "log record 'span_id' is neither empty nor 8 bytes";
  }
  return {};
}

std::string_view MetricNameDefect(std::string_view name) {
  if (name.empty()) return "metric 'name' is empty";
  return {};
}

std::string_view HistogramBucketsDefect(size_t bucket_counts, size_t explicit_bounds) {
  if (bucket_counts != 0 && bucket_counts != explicit_bounds + 1) {
    return "histogram point 'bucket_counts' is not one longer than 'explicit_bounds'";
  }
  return {};
}

}  // namespace telkit

#undef TELKIT_INLINE
