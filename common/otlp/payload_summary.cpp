#include "common/otlp/payload_summary.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <climits>
#include <cstring>
#include <map>
#include <memory>

#include "common/base/utf8.h"
#include "common/otlp/export_messages.h"
#include "common/otlp/otlp_json.h"

namespace telkit {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// ---------------------------------------------------------------- schema

enum class Kind : uint8_t { kNone, kVarint, kFixed64, kFixed32, kBytes, kString, kMessage };

constexpr uint32_t kWireVarint = 0;
constexpr uint32_t kWireFixed64 = 1;
constexpr uint32_t kWireLen = 2;
constexpr uint32_t kWireStartGroup = 3;
constexpr uint32_t kWireEndGroup = 4;
constexpr uint32_t kWireFixed32 = 5;

struct MessageRule;

struct FieldRule {
  Kind kind = Kind::kNone;
  bool repeated = false;
  const MessageRule* message = nullptr;
  std::string name;
};

struct MessageRule {
  std::string name;
  std::vector<FieldRule> by_number;  // index = field number; kNone for numbers not in the schema

  const FieldRule* Find(uint32_t number) const {
    if (number >= by_number.size() || by_number[number].kind == Kind::kNone) return nullptr;
    return &by_number[number];
  }
};

uint32_t WireTypeOf(Kind kind) {
  switch (kind) {
    case Kind::kVarint: return kWireVarint;
    case Kind::kFixed64: return kWireFixed64;
    case Kind::kFixed32: return kWireFixed32;
    default: return kWireLen;
  }
}

// The scan rules of the three request types and everything they contain,
// built once from the generated descriptors; immutable afterwards.
class RuleSet {
 public:
  static const RuleSet& Get() {
    static const RuleSet* rules = new RuleSet();
    return *rules;
  }

  const MessageRule* For(const Descriptor* d) const {
    auto it = rules_.find(d);
    return it == rules_.end() ? nullptr : it->second.get();
  }

 private:
  RuleSet() {
    for (Signal s : {Signal::kTraces, Signal::kMetrics, Signal::kLogs}) {
      Build(ExportRequestPrototype(s)->GetDescriptor());
    }
  }

  const MessageRule* Build(const Descriptor* d) {
    if (auto it = rules_.find(d); it != rules_.end()) return it->second.get();
    auto owned = std::make_unique<MessageRule>();
    MessageRule* rule = owned.get();
    rules_.emplace(d, std::move(owned));  // before recursing: the schema has cycles (AnyValue)
    rule->name = d->name();
    int max_number = 0;
    for (int i = 0; i < d->field_count(); ++i) max_number = std::max(max_number, d->field(i)->number());
    rule->by_number.resize(max_number + 1);
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      FieldRule& fr = rule->by_number[f->number()];
      fr.name = f->name();
      fr.repeated = f->is_repeated();
      switch (f->type()) {
        case FieldDescriptor::TYPE_INT32:
        case FieldDescriptor::TYPE_INT64:
        case FieldDescriptor::TYPE_UINT32:
        case FieldDescriptor::TYPE_UINT64:
        case FieldDescriptor::TYPE_SINT32:
        case FieldDescriptor::TYPE_SINT64:
        case FieldDescriptor::TYPE_BOOL:
        case FieldDescriptor::TYPE_ENUM:
          fr.kind = Kind::kVarint;
          break;
        case FieldDescriptor::TYPE_FIXED64:
        case FieldDescriptor::TYPE_SFIXED64:
        case FieldDescriptor::TYPE_DOUBLE:
          fr.kind = Kind::kFixed64;
          break;
        case FieldDescriptor::TYPE_FIXED32:
        case FieldDescriptor::TYPE_SFIXED32:
        case FieldDescriptor::TYPE_FLOAT:
          fr.kind = Kind::kFixed32;
          break;
        case FieldDescriptor::TYPE_STRING:
          // proto3 string fields must hold valid UTF-8 or the parse fails.
          fr.kind = f->file()->syntax() == google::protobuf::FileDescriptor::SYNTAX_PROTO3 ? Kind::kString
                                                                                         : Kind::kBytes;
          break;
        case FieldDescriptor::TYPE_BYTES:
          fr.kind = Kind::kBytes;
          break;
        case FieldDescriptor::TYPE_MESSAGE:
          fr.kind = Kind::kMessage;
          fr.message = Build(f->message_type());
          break;
        case FieldDescriptor::TYPE_GROUP:
          fr.kind = Kind::kNone;  // not in OTLP; scanned as an unknown group
          break;
      }
    }
    return rule;
  }

  std::map<const Descriptor*, std::unique_ptr<MessageRule>> rules_;
};

// ---------------------------------------------------------------- wire primitives
// Limits as protobuf 3.21's parser: a varint has at most 10 bytes, a tag at
// most 5 (kept to 32 bits), a length at most 5 bytes and below 2^31.

// A base-128 varint of at most `max_bytes` bytes.
bool ReadVarintOf(const uint8_t*& p, const uint8_t* end, int max_bytes, uint64_t* value) {
  uint64_t result = 0;
  for (int i = 0; i < max_bytes; ++i) {
    if (p >= end) return false;
    const uint8_t b = *p++;
    result |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
    if (b < 0x80) {
      *value = result;
      return true;
    }
  }
  return false;
}

bool ReadVarint(const uint8_t*& p, const uint8_t* end, uint64_t* value) { return ReadVarintOf(p, end, 10, value); }

bool ReadTag(const uint8_t*& p, const uint8_t* end, uint32_t* tag) {
  uint64_t result = 0;
  if (!ReadVarintOf(p, end, 5, &result)) return false;
  *tag = static_cast<uint32_t>(result);
  return true;
}

bool ReadLength(const uint8_t*& p, const uint8_t* end, uint32_t* length) {
  uint64_t result = 0;
  for (int i = 0; i < 5; ++i) {
    if (p >= end) return false;
    const uint8_t b = *p++;
    if (i == 4 && b >= 8) return false;
    result |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
    if (b < 0x80) {
      if (result > static_cast<uint64_t>(INT_MAX - 16)) return false;
      *length = static_cast<uint32_t>(result);
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------- validation

class Validator {
 public:
  explicit Validator(const uint8_t* base) : base_(base) {}

  // Validates a whole message of `rule` in [p, end).
  bool Message(const MessageRule* rule, const uint8_t* p, const uint8_t* end) {
    return Fields(rule, p, end, 0, 0);
  }

  // "field 'a[0].b': what at byte N" or "what at byte N". A very deep path
  // keeps its start and its end.
  std::string ErrorText() const {
    if (path_.empty()) return what_;
    std::string path = path_;
    if (path.size() > 400) path = path.substr(0, 150) + "..." + path.substr(path.size() - 200);
    return "field '" + path + "': " + what_;
  }

 private:
  bool Fail(const uint8_t* at, std::string what) {
    what_ = std::move(what) + " at byte " + std::to_string(at - base_);
    return false;
  }

  // Prepends the step into field `number` (starting at `field_at`) of the
  // message that starts at `message_at` to the error path.
  bool Nest(const MessageRule* rule, uint32_t number, const uint8_t* message_at, const uint8_t* field_at) {
    const FieldRule* fr = rule != nullptr ? rule->Find(number) : nullptr;
    std::string step = fr != nullptr ? fr->name : std::to_string(number);
    if (fr != nullptr && fr->repeated) {
      // Which occurrence: count the earlier ones (only on the error path).
      size_t index = 0;
      const uint8_t* q = message_at;
      while (q < field_at) {
        uint32_t tag = 0;
        ReadTag(q, field_at, &tag);
        if ((tag >> 3) == number) ++index;
        SkipValidated(q, field_at, tag);
      }
      step += "[" + std::to_string(index) + "]";
    }
    path_ = path_.empty() ? step : step + "." + path_;
    return false;
  }

  // Skips the value of an already validated field.
  static void SkipValidated(const uint8_t*& p, const uint8_t* end, uint32_t tag) {
    uint64_t v = 0;
    uint32_t len = 0;
    switch (tag & 7) {
      case kWireVarint: ReadVarint(p, end, &v); break;
      case kWireFixed64: p += 8; break;
      case kWireFixed32: p += 4; break;
      case kWireLen: ReadLength(p, end, &len); p += len; break;
      case kWireStartGroup:
        while (p < end) {
          uint32_t inner = 0;
          ReadTag(p, end, &inner);
          if ((inner & 7) == kWireEndGroup) break;
          SkipValidated(p, end, inner);
        }
        break;
      default: break;
    }
  }

  // Validates fields from `p` until `end` (a message) or, when group_number is
  // nonzero, until that group's end tag (then `p` is left after it).
  bool Fields(const MessageRule* rule, const uint8_t*& p, const uint8_t* end, int depth, uint32_t group_number) {
    const uint8_t* message_at = p;
    while (p < end) {
      const uint8_t* field_at = p;
      uint32_t tag = 0;
      if (!ReadTag(p, end, &tag)) return Fail(field_at, "truncated or overlong tag");
      const uint32_t number = tag >> 3;
      const uint32_t wire = tag & 7;
      if (number == 0) return Fail(field_at, "field number 0");
      if (wire == kWireEndGroup) {
        if (number == group_number) return true;
        return Fail(field_at, "end-group tag of field " + std::to_string(number) + " without its start");
      }
      const FieldRule* fr = rule != nullptr ? rule->Find(number) : nullptr;
      if (fr != nullptr) {
        if (wire == WireTypeOf(fr->kind)) {
          if (!Known(*fr, p, end, depth, field_at)) return Nest(rule, number, message_at, field_at);
          continue;
        }
        const bool numeric = fr->kind == Kind::kVarint || fr->kind == Kind::kFixed64 || fr->kind == Kind::kFixed32;
        if (fr->repeated && numeric && wire == kWireLen) {
          if (!Packed(*fr, p, end, field_at)) return Nest(rule, number, message_at, field_at);
          continue;
        }
        // Any other wire type: protobuf keeps it as an unknown field.
      }
      if (!Unknown(wire, number, p, end, depth, field_at)) return false;
    }
    if (group_number != 0) return Fail(p, "group of field " + std::to_string(group_number) + " has no end tag");
    return true;
  }

  bool Known(const FieldRule& fr, const uint8_t*& p, const uint8_t* end, int depth, const uint8_t* field_at) {
    uint64_t v = 0;
    switch (fr.kind) {
      case Kind::kVarint:
        if (!ReadVarint(p, end, &v)) return Fail(field_at, "truncated or overlong varint");
        return true;
      case Kind::kFixed64:
        if (end - p < 8) return Fail(field_at, "truncated 64-bit value");
        p += 8;
        return true;
      case Kind::kFixed32:
        if (end - p < 4) return Fail(field_at, "truncated 32-bit value");
        p += 4;
        return true;
      default: break;
    }
    uint32_t len = 0;
    if (!ReadLength(p, end, &len) || len > static_cast<size_t>(end - p)) {
      return Fail(field_at, "length past the end of the message");
    }
    const uint8_t* value_end = p + len;
    if (fr.kind == Kind::kString && FindInvalidUtf8(p, value_end) != nullptr) return Fail(field_at, "invalid UTF-8");
    if (fr.kind == Kind::kMessage) {
      if (depth + 1 > kMaxMessageNesting) {
        return Fail(field_at, "messages nested deeper than " + std::to_string(kMaxMessageNesting) + " levels");
      }
      const uint8_t* q = p;
      if (!Fields(fr.message, q, value_end, depth + 1, 0)) return false;
    }
    p = value_end;
    return true;
  }

  bool Packed(const FieldRule& fr, const uint8_t*& p, const uint8_t* end, const uint8_t* field_at) {
    uint32_t len = 0;
    if (!ReadLength(p, end, &len) || len > static_cast<size_t>(end - p)) {
      return Fail(field_at, "length past the end of the message");
    }
    const uint8_t* value_end = p + len;
    if (fr.kind == Kind::kVarint) {
      while (p < value_end) {
        uint64_t v = 0;
        if (!ReadVarint(p, value_end, &v)) return Fail(field_at, "bad varint in packed field");
      }
    } else {
      const uint32_t width = fr.kind == Kind::kFixed64 ? 8 : 4;
      if (len % width != 0) return Fail(field_at, "packed length " + std::to_string(len) + " is not a multiple of " +
                                                      std::to_string(width));
      p = value_end;
    }
    return true;
  }

  bool Unknown(uint32_t wire, uint32_t number, const uint8_t*& p, const uint8_t* end, int depth,
               const uint8_t* field_at) {
    uint64_t v = 0;
    uint32_t len = 0;
    switch (wire) {
      case kWireVarint:
        if (!ReadVarint(p, end, &v)) return Fail(field_at, "truncated or overlong varint");
        return true;
      case kWireFixed64:
        if (end - p < 8) return Fail(field_at, "truncated 64-bit value");
        p += 8;
        return true;
      case kWireFixed32:
        if (end - p < 4) return Fail(field_at, "truncated 32-bit value");
        p += 4;
        return true;
      case kWireLen:
        if (!ReadLength(p, end, &len) || len > static_cast<size_t>(end - p)) {
          return Fail(field_at, "length past the end of the message");
        }
        p += len;
        return true;
      case kWireStartGroup:
        if (depth + 1 > kMaxMessageNesting) {
          return Fail(field_at, "groups nested deeper than " + std::to_string(kMaxMessageNesting) + " levels");
        }
        return Fields(nullptr, p, end, depth + 1, number);
      default:
        return Fail(field_at, "invalid wire type " + std::to_string(wire));
    }
  }

  const uint8_t* base_;
  std::string path_;
  std::string what_;
};

// ---------------------------------------------------------------- summary
// Runs only on validated bytes, so it needs no error handling; it still never
// reads past `end`.

struct Slice {
  const uint8_t* p;
  const uint8_t* end;
};

// Calls fn(number, wire_type, slice) for each field of a validated message;
// the slice is the value of a length-delimited field (empty otherwise).
template <typename Fn>
void ForEachField(Slice m, Fn&& fn) {
  const uint8_t* p = m.p;
  while (p < m.end) {
    uint32_t tag = 0;
    if (!ReadTag(p, m.end, &tag)) return;
    const uint32_t wire = tag & 7;
    if (wire == kWireLen) {
      uint32_t len = 0;
      if (!ReadLength(p, m.end, &len) || len > static_cast<size_t>(m.end - p)) return;
      fn(tag >> 3, wire, Slice{p, p + len});
      p += len;
      continue;
    }
    uint64_t v = 0;
    switch (wire) {
      case kWireVarint: ReadVarint(p, m.end, &v); break;
      case kWireFixed64: p += 8; break;
      case kWireFixed32: p += 4; break;
      case kWireStartGroup: {
        int open = 1;  // skip to the matching end tag
        while (open > 0 && p < m.end) {
          uint32_t inner = 0;
          if (!ReadTag(p, m.end, &inner)) return;
          switch (inner & 7) {
            case kWireVarint: ReadVarint(p, m.end, &v); break;
            case kWireFixed64: p += 8; break;
            case kWireFixed32: p += 4; break;
            case kWireLen: {
              uint32_t len = 0;
              if (!ReadLength(p, m.end, &len)) return;
              p += len;
              break;
            }
            case kWireStartGroup: ++open; break;
            case kWireEndGroup: --open; break;
            default: return;
          }
        }
        break;
      }
      default: return;
    }
    fn(tag >> 3, wire, Slice{p, p});
  }
}

uint64_t CountField(Slice m, uint32_t number) {
  uint64_t n = 0;
  ForEachField(m, [&](uint32_t f, uint32_t wire, Slice) { n += (f == number && wire == kWireLen); });
  return n;
}

std::string_view AsView(Slice s) {
  return {reinterpret_cast<const char*>(s.p), static_cast<size_t>(s.end - s.p)};
}

// Looks for "service.name" in Resource.attributes (field 1, KeyValue).
// KeyValue: key = 1, value = 2 (AnyValue: string_value = 1, oneof members 1..7).
// Repeated occurrences merge as protobuf does: the last key wins, AnyValues
// merge and the last oneof member set wins.
void FindServiceName(Slice resource, bool* found, std::string* name) {
  ForEachField(resource, [&](uint32_t f, uint32_t wire, Slice kv) {
    if (*found || f != 1 || wire != kWireLen) return;
    std::string_view key;
    uint32_t member = 0;
    std::string_view string_value;
    ForEachField(kv, [&](uint32_t kf, uint32_t kwire, Slice v) {
      if (kf == 1 && kwire == kWireLen) key = AsView(v);
      if (kf != 2 || kwire != kWireLen) return;
      ForEachField(v, [&](uint32_t af, uint32_t awire, Slice s) {
        static constexpr uint32_t kMemberWire[8] = {9, kWireLen, kWireVarint, kWireVarint, kWireFixed64,
                                                    kWireLen, kWireLen, kWireLen};
        if (af < 1 || af > 7 || kMemberWire[af] != awire) return;
        member = af;
        if (af == 1) string_value = AsView(s);
      });
    });
    if (key == "service.name") {
      *found = true;
      if (member == 1) *name = std::string(string_value);
    }
  });
}

// Data points of one Metric: its oneof `data` (gauge 5, sum 7, histogram 9,
// exponential_histogram 10, summary 11), each with data_points = 1. A later
// member replaces an earlier one; the same member again merges.
uint64_t CountDataPoints(Slice metric) {
  uint32_t member = 0;
  uint64_t count = 0;
  ForEachField(metric, [&](uint32_t f, uint32_t wire, Slice data) {
    if (wire != kWireLen || !(f == 5 || f == 7 || f == 9 || f == 10 || f == 11)) return;
    if (f != member) {
      member = f;
      count = 0;
    }
    count += CountField(data, 1);
  });
  return count;
}

// Resource{Spans,Metrics,Logs}: resource = 1, scope_* = 2; Scope*: items = 2.
ResourceSummary SummarizeResource(Signal signal, Slice resource_x) {
  ResourceSummary out;
  bool found = false;
  ForEachField(resource_x, [&](uint32_t f, uint32_t wire, Slice v) {
    if (wire != kWireLen) return;
    if (f == 1) {
      if (!found) FindServiceName(v, &found, &out.service_name);
    } else if (f == 2) {
      ForEachField(v, [&](uint32_t sf, uint32_t swire, Slice item) {
        if (sf != 2 || swire != kWireLen) return;
        out.items += signal == Signal::kMetrics ? CountDataPoints(item) : 1;
      });
    }
  });
  return out;
}

}  // namespace

Status ValidateOtlpPayload(Signal signal, std::string_view bytes) {
  const google::protobuf::Message* prototype = ExportRequestPrototype(signal);
  if (prototype == nullptr) {
    return UnimplementedError("signal '" + std::string(SignalName(signal)) + "' is not an OTLP signal");
  }
  const std::string& type_name = prototype->GetDescriptor()->name();
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return InvalidArgumentError("invalid " + type_name + ": " + std::to_string(bytes.size()) +
                                " bytes exceed the 2 GiB protobuf limit");
  }
  const MessageRule* rule = RuleSet::Get().For(prototype->GetDescriptor());
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  Validator validator(p);
  if (!validator.Message(rule, p, p + bytes.size())) {
    return InvalidArgumentError("invalid " + type_name + ": " + validator.ErrorText());
  }
  return OkStatus();
}

Result<PayloadSummary> SummarizePayload(Signal signal, std::string_view bytes) {
  TELKIT_RETURN_IF_ERROR(ValidateOtlpPayload(signal, bytes));
  PayloadSummary summary;
  summary.signal = signal;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  ForEachField(Slice{p, p + bytes.size()}, [&](uint32_t f, uint32_t wire, Slice v) {
    if (f != 1 || wire != kWireLen) return;
    summary.resources.push_back(SummarizeResource(signal, v));
    summary.total_items += summary.resources.back().items;
  });
  return summary;
}

}  // namespace telkit
