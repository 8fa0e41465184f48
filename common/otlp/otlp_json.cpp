// OTLP/JSON by protobuf reflection.
//
// Why not google/protobuf/util/json_util.h: its output puts ids in base64 and
// enums as names, so a post-pass would have to re-parse and rewrite every
// document, and its input would need a pre-pass over a parsed document anyway
// to turn hex ids into base64. Walking the message with reflection does each
// direction in one pass: output is written straight into one std::string;
// input is parsed once by nlohmann/json (after a linear nesting check, so a
// hostile document cannot exhaust the stack or memory through depth) and the
// document is then walked into the message.
#include "common/otlp/otlp_json.h"

#include <google/protobuf/arena.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <vector>

#include "common/otlp/export_messages.h"
#include "common/otlp/payload_summary.h"
#include "opentelemetry/proto/logs/v1/logs.pb.h"
#include "opentelemetry/proto/metrics/v1/metrics.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace telkit {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;
using Json = nlohmann::json;

// The bytes fields the specification encodes as hex.
bool IsHexIdField(const FieldDescriptor* field) {
  static const std::array<const FieldDescriptor*, 9> kIdFields = [] {
    namespace tr = opentelemetry::proto::trace::v1;
    namespace me = opentelemetry::proto::metrics::v1;
    namespace lo = opentelemetry::proto::logs::v1;
    const Descriptor* span = tr::Span::descriptor();
    const Descriptor* link = tr::Span::Link::descriptor();
    const Descriptor* log = lo::LogRecord::descriptor();
    const Descriptor* exemplar = me::Exemplar::descriptor();
    return std::array<const FieldDescriptor*, 9>{
        span->FindFieldByName("trace_id"),     span->FindFieldByName("span_id"),
        span->FindFieldByName("parent_span_id"), link->FindFieldByName("trace_id"),
        link->FindFieldByName("span_id"),      log->FindFieldByName("trace_id"),
        log->FindFieldByName("span_id"),       exemplar->FindFieldByName("trace_id"),
        exemplar->FindFieldByName("span_id")};
  }();
  return field->type() == FieldDescriptor::TYPE_BYTES &&
         std::find(kIdFields.begin(), kIdFields.end(), field) != kIdFields.end();
}

// ---------------------------------------------------------------- output

template <typename T>
void AppendNumber(T v, std::string* out) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

template <typename T>
void AppendQuotedNumber(T v, std::string* out) {
  out->push_back('"');
  AppendNumber(v, out);
  out->push_back('"');
}

// Shortest representation that reads back to the same bits (std::to_chars);
// -0.0 keeps a fraction so that JSON readers that treat "-0" as the integer 0
// keep the sign.
template <typename T>
void AppendFloating(T v, std::string* out) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else if (v == 0 && std::signbit(v)) {
    out->append("-0.0");
  } else {
    AppendNumber(v, out);
  }
}

void AppendBytesValue(const FieldDescriptor* field, const std::string& bytes, std::string* out) {
  out->push_back('"');
  if (IsHexIdField(field)) {
    AppendHex(bytes, out);
  } else {
    out->append(Base64Encode(bytes));
  }
  out->push_back('"');
}

void AppendMessage(const Message& message, std::string* out);

void AppendValue(const Message& m, const Reflection* r, const FieldDescriptor* f, int index, std::string* out) {
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      AppendNumber(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f), out);
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      AppendNumber(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f), out);
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      AppendQuotedNumber(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f), out);
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      AppendQuotedNumber(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f), out);
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      AppendFloating(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f), out);
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      AppendFloating(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f), out);
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out->append((rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false");
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      AppendNumber(rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f), out);
      break;
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s =
          rep ? r->GetRepeatedStringReference(m, f, index, &scratch) : r->GetStringReference(m, f, &scratch);
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        AppendBytesValue(f, s, out);
      } else {
        AppendJsonString(s, out);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      AppendMessage(rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f), out);
      break;
  }
}

// Fields in .proto declaration order; a field is written when it would be
// serialized (HasField is exactly that for proto3, -0.0 included).
void AppendMessage(const Message& message, std::string* out) {
  const Descriptor* d = message.GetDescriptor();
  const Reflection* r = message.GetReflection();
  out->push_back('{');
  bool first = true;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    int size = 0;
    if (f->is_repeated()) {
      size = r->FieldSize(message, f);
      if (size == 0) continue;
    } else if (!r->HasField(message, f)) {
      continue;
    }
    if (!first) out->push_back(',');
    first = false;
    out->push_back('"');
    out->append(f->json_name());
    out->append("\":");
    if (f->is_repeated()) {
      out->push_back('[');
      for (int j = 0; j < size; ++j) {
        if (j > 0) out->push_back(',');
        AppendValue(message, r, f, j, out);
      }
      out->push_back(']');
    } else {
      AppendValue(message, r, f, -1, out);
    }
  }
  out->push_back('}');
}

// ---------------------------------------------------------------- input

std::string_view JsonTypeName(const Json& j) {
  if (j.is_number_float()) return "a number";
  if (j.is_number()) return "an integer";
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    default: return "a value";
  }
}

// Short printable rendering of an offending value for messages.
std::string Excerpt(const Json& j) {
  std::string s = j.is_string() ? j.get_ref<const std::string&>() : j.dump();
  if (s.size() > 40) s = s.substr(0, 40) + "...";
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '\'') c = '?';
  }
  return s;
}

template <typename T>
std::string_view IntTypeName() {
  if constexpr (std::is_same_v<T, int32_t>) return "int32";
  if constexpr (std::is_same_v<T, uint32_t>) return "uint32";
  if constexpr (std::is_same_v<T, int64_t>) return "int64";
  return "uint64";
}

// An integral double into T; false when not integral or out of range.
template <typename T>
bool DoubleToInteger(double d, T* out) {
  if (!std::isfinite(d) || d != std::trunc(d)) return false;
  const double upper = std::ldexp(1.0, std::numeric_limits<T>::digits);  // 2^31, 2^32, 2^63, 2^64
  const double lower = std::is_signed_v<T> ? -upper : 0.0;
  if (!(d >= lower && d < upper)) return false;
  *out = static_cast<T>(d);
  return true;
}

// A JSON number, or a string holding one, into the integer type T.
// Returns "" on success, or why not.
template <typename T>
std::string JsonToInteger(const Json& j, T* out) {
  if (j.is_number_unsigned()) {
    const uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      return "value " + Excerpt(j) + " is out of range for " + std::string(IntTypeName<T>());
    }
    *out = static_cast<T>(u);
    return "";
  }
  if (j.is_number_integer()) {  // negative
    const int64_t s = j.get<int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      return "value " + Excerpt(j) + " is out of range for " + std::string(IntTypeName<T>());
    } else {
      if (s < static_cast<int64_t>(std::numeric_limits<T>::min())) {
        return "value " + Excerpt(j) + " is out of range for " + std::string(IntTypeName<T>());
      }
      *out = static_cast<T>(s);
      return "";
    }
  }
  if (j.is_number_float()) {
    if (!DoubleToInteger(j.get<double>(), out)) {
      return "value " + Excerpt(j) + " is not an integer in the range of " + std::string(IntTypeName<T>());
    }
    return "";
  }
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    const char* begin = s.data();
    const char* end = s.data() + s.size();
    auto [ptr, ec] = std::from_chars(begin, end, *out);
    if (ec == std::errc() && ptr == end) return "";
    if (ec == std::errc::result_out_of_range) {
      return "value '" + Excerpt(j) + "' is out of range for " + std::string(IntTypeName<T>());
    }
    // "1e3", "5.0": a decimal in another notation that is still an integer.
    double d = 0;
    auto [dptr, dec] = std::from_chars(begin, end, d);
    if (!s.empty() && dec == std::errc() && dptr == end && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) &&
        DoubleToInteger(d, out)) {
      return "";
    }
    return "value '" + Excerpt(j) + "' is not an integer in the range of " + std::string(IntTypeName<T>());
  }
  return "expected an integer, got " + std::string(JsonTypeName(j));
}

// A JSON number, or a string holding one or "NaN" / "Infinity" / "-Infinity".
std::string JsonToDouble(const Json& j, double* out) {
  if (j.is_number()) {
    *out = j.get<double>();
    return "";
  }
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (s == "NaN") {
      *out = std::numeric_limits<double>::quiet_NaN();
      return "";
    }
    if (s == "Infinity") {
      *out = std::numeric_limits<double>::infinity();
      return "";
    }
    if (s == "-Infinity") {
      *out = -std::numeric_limits<double>::infinity();
      return "";
    }
    const char* end = s.data() + s.size();
    auto [ptr, ec] = std::from_chars(s.data(), end, *out);
    if (ec == std::errc::result_out_of_range) return "value '" + Excerpt(j) + "' is out of range for a double";
    if (ec != std::errc() || ptr != end || !std::isfinite(*out)) {
      return "value '" + Excerpt(j) + "' is not a number";
    }
    return "";
  }
  return "expected a number, got " + std::string(JsonTypeName(j));
}

class JsonToMessage {
 public:
  Status Convert(const Json& j, Message* m) { return ConvertMessage(j, m, 0); }

 private:
  // One step of the path to the value being converted, for error messages.
  struct PathStep {
    const std::string* key = nullptr;  // an object key, or
    size_t index = 0;                  // an array index when key is null
  };

  Status Error(std::string_view what) const {
    if (path_.empty()) return InvalidArgumentError(std::string(what));
    std::string path;
    for (const PathStep& step : path_) {
      if (step.key != nullptr) {
        if (!path.empty()) path.push_back('.');
        path.append(*step.key);
      } else {
        path.append("[" + std::to_string(step.index) + "]");
      }
    }
    for (char& c : path) {
      if (static_cast<unsigned char>(c) < 0x20 || c == '\'') c = '?';
    }
    return InvalidArgumentError("field '" + path + "': " + std::string(what));
  }

  Status ConvertMessage(const Json& j, Message* m, int depth) {
    if (!j.is_object()) return Error("expected an object, got " + std::string(JsonTypeName(j)));
    if (depth > kMaxMessageNesting) {
      return Error("messages nested deeper than " + std::to_string(kMaxMessageNesting) + " levels");
    }
    const Descriptor* d = m->GetDescriptor();
    uint64_t seen = 0;  // field numbers below 64 already given (all of OTLP's)
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      const FieldDescriptor* f = d->FindFieldByName(key);
      if (f == nullptr) f = d->FindFieldByCamelcaseName(key);
      if (f == nullptr || it.value().is_null()) continue;  // unknown keys are ignored
      path_.push_back({&key, 0});
      if (f->number() < 64) {
        const uint64_t bit = uint64_t{1} << f->number();
        if (seen & bit) return Error("given twice, as '" + f->json_name() + "' and as '" + f->name() + "'");
        seen |= bit;
      }
      TELKIT_RETURN_IF_ERROR(ConvertField(it.value(), m, f, depth));
      path_.pop_back();
    }
    return OkStatus();
  }

  Status ConvertField(const Json& j, Message* m, const FieldDescriptor* f, int depth) {
    const Reflection* r = m->GetReflection();
    if (f->is_repeated()) {
      if (!j.is_array()) return Error("expected an array, got " + std::string(JsonTypeName(j)));
      for (size_t i = 0; i < j.size(); ++i) {
        path_.push_back({nullptr, i});
        const Json& element = j[i];
        if (element.is_null()) return Error("null is not allowed in an array");
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          TELKIT_RETURN_IF_ERROR(ConvertMessage(element, r->AddMessage(m, f), depth + 1));
        } else {
          TELKIT_RETURN_IF_ERROR(ConvertScalar(element, m, r, f, /*add=*/true));
        }
        path_.pop_back();
      }
      return OkStatus();
    }
    if (const OneofDescriptor* oneof = f->real_containing_oneof(); oneof != nullptr && r->HasOneof(*m, oneof)) {
      return Error("more than one member of oneof '" + oneof->name() + "' is set");
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      return ConvertMessage(j, r->MutableMessage(m, f), depth + 1);
    }
    return ConvertScalar(j, m, r, f, /*add=*/false);
  }

  Status ConvertScalar(const Json& j, Message* m, const Reflection* r, const FieldDescriptor* f, bool add) {
    std::string why;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t v = 0;
        why = JsonToInteger(j, &v);
        if (why.empty()) add ? r->AddInt32(m, f, v) : r->SetInt32(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t v = 0;
        why = JsonToInteger(j, &v);
        if (why.empty()) add ? r->AddUInt32(m, f, v) : r->SetUInt32(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v = 0;
        why = JsonToInteger(j, &v);
        if (why.empty()) add ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t v = 0;
        why = JsonToInteger(j, &v);
        if (why.empty()) add ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        double v = 0;
        why = JsonToDouble(j, &v);
        if (why.empty()) add ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double v = 0;
        why = JsonToDouble(j, &v);
        if (why.empty() && std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max()) {
          why = "value " + Excerpt(j) + " is out of range for a float";
        }
        if (why.empty()) add ? r->AddFloat(m, f, static_cast<float>(v)) : r->SetFloat(m, f, static_cast<float>(v));
        break;
      }
      case FieldDescriptor::CPPTYPE_BOOL:
        if (!j.is_boolean()) {
          why = "expected true or false, got " + std::string(JsonTypeName(j));
        } else {
          add ? r->AddBool(m, f, j.get<bool>()) : r->SetBool(m, f, j.get<bool>());
        }
        break;
      case FieldDescriptor::CPPTYPE_ENUM: {
        int32_t v = 0;
        if (j.is_string()) {
          const EnumValueDescriptor* e = f->enum_type()->FindValueByName(j.get_ref<const std::string&>());
          if (e == nullptr) {
            why = "'" + Excerpt(j) + "' is not a value of enum '" + f->enum_type()->full_name() + "'";
          } else {
            v = e->number();
          }
        } else {
          why = JsonToInteger(j, &v);
        }
        if (why.empty()) add ? r->AddEnumValue(m, f, v) : r->SetEnumValue(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        if (!j.is_string()) {
          why = "expected a string, got " + std::string(JsonTypeName(j));
          break;
        }
        const std::string& s = j.get_ref<const std::string&>();
        if (f->type() != FieldDescriptor::TYPE_BYTES) {
          add ? r->AddString(m, f, s) : r->SetString(m, f, s);
          break;
        }
        Result<std::string> bytes = IsHexIdField(f) ? HexDecode(s) : Base64Decode(s);
        if (!bytes.ok()) {
          why = bytes.status().message();
        } else {
          add ? r->AddString(m, f, std::move(bytes).value()) : r->SetString(m, f, std::move(bytes).value());
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        why = "internal: message handled as scalar";
        break;
    }
    return why.empty() ? OkStatus() : Error(why);
  }

  std::vector<PathStep> path_;
};

int Base64Value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

int HexValue(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Length of the valid UTF-8 sequence at s[i], 0 when invalid (overlong forms,
// surrogates and code points over U+10FFFF are invalid).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  const size_t left = s.size() - i;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && (byte(i + 1) & 0xC0) == 0x80 ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3) return 0;
    const unsigned char c1 = byte(i + 1);
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return c1 >= lo && c1 <= hi && (byte(i + 2) & 0xC0) == 0x80 ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4) return 0;
    const unsigned char c1 = byte(i + 1);
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return c1 >= lo && c1 <= hi && (byte(i + 2) & 0xC0) == 0x80 && (byte(i + 3) & 0xC0) == 0x80 ? 4 : 0;
  }
  return 0;
}

// nlohmann's what() without its "[json.exception.x.y] " prefix, printable.
std::string CleanJsonError(const char* what) {
  std::string s = what;
  if (s.rfind("[json.exception.", 0) == 0) {
    size_t close = s.find("] ");
    if (close != std::string::npos) s.erase(0, close + 2);
  }
  for (char& c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7F) c = '?';
  }
  return s;
}

}  // namespace

// ---------------------------------------------------------------- public

Result<nlohmann::json> ParseJsonDocument(std::string_view text, int max_nesting) {
  // Nesting is checked by a linear scan first: brackets outside strings.
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_nesting) {
        return InvalidArgumentError("invalid JSON: nested deeper than " + std::to_string(max_nesting) +
                                    " levels at byte " + std::to_string(i));
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return InvalidArgumentError("invalid JSON: " + CleanJsonError(e.what()));
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory parsing " + std::to_string(text.size()) + " bytes of JSON");
  }
}

Status OtlpJsonValueToMessage(const nlohmann::json& value, google::protobuf::Message* message) {
  try {
    JsonToMessage converter;
    return converter.Convert(value, message);
  } catch (const Json::exception& e) {
    return InvalidArgumentError("invalid OTLP/JSON: " + CleanJsonError(e.what()));
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory converting OTLP/JSON");
  }
}

void AppendOtlpJson(const google::protobuf::Message& message, std::string* out) { AppendMessage(message, out); }

Result<std::string> OtlpJsonToProtobuf(Signal signal, std::string_view json) {
  const Message* prototype = ExportRequestPrototype(signal);
  if (prototype == nullptr) {
    return UnimplementedError("signal '" + std::string(SignalName(signal)) + "' has no OTLP/JSON form");
  }
  TELKIT_ASSIGN_OR_RETURN(Json doc, ParseJsonDocument(json));
  google::protobuf::Arena arena;
  Message* request = prototype->New(&arena);
  TELKIT_RETURN_IF_ERROR(OtlpJsonValueToMessage(doc, request));
  std::string out;
  if (!request->SerializeToString(&out)) {
    return InvalidArgumentError("request from " + std::to_string(json.size()) +
                                " bytes of OTLP/JSON is too large to serialize");
  }
  return out;
}

Result<std::string> ProtobufToOtlpJson(Signal signal, std::string_view bytes) {
  const Message* prototype = ExportRequestPrototype(signal);
  if (prototype == nullptr) {
    return UnimplementedError("signal '" + std::string(SignalName(signal)) + "' has no OTLP/JSON form");
  }
  // The scan names the fault precisely, and keeps protobuf from logging about
  // invalid UTF-8 on its own.
  TELKIT_RETURN_IF_ERROR(ValidateOtlpPayload(signal, bytes));
  google::protobuf::Arena arena;
  Message* request = prototype->New(&arena);
  if (bytes.size() > static_cast<size_t>(INT_MAX) ||
      !request->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("payload is not a valid " + prototype->GetDescriptor()->name());
  }
  std::string out;
  out.reserve(bytes.size() * 2);
  AppendMessage(*request, &out);
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  size_t n = text.size();
  if (n % 4 == 0 && n > 0 && text[n - 1] == '=') {
    --n;
    if (text[n - 1] == '=') --n;
  }
  if (n % 4 == 1) return InvalidArgumentError("invalid base64: bad length " + std::to_string(text.size()));
  std::string out;
  out.reserve(n / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    const int v = Base64Value(static_cast<unsigned char>(text[i]));
    if (v < 0) return InvalidArgumentError("invalid base64: bad character at offset " + std::to_string(i));
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;  // like most decoders, leftover bits of the last digit are ignored
}

void AppendHex(std::string_view bytes, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const size_t start = out->size();
  out->resize(start + bytes.size() * 2);
  char* p = out->data() + start;
  for (unsigned char c : bytes) {
    *p++ = kDigits[c >> 4];
    *p++ = kDigits[c & 15];
  }
}

Result<std::string> HexDecode(std::string_view text) {
  if (text.size() % 2 != 0) {
    return InvalidArgumentError("invalid hex: odd number of digits (" + std::to_string(text.size()) + ")");
  }
  std::string out(text.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexValue(static_cast<unsigned char>(text[2 * i]));
    const int lo = HexValue(static_cast<unsigned char>(text[2 * i + 1]));
    if (hi < 0 || lo < 0) {
      return InvalidArgumentError("invalid hex: bad digit at offset " + std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    }
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Copy the run that needs no escaping in one go.
    size_t run = i;
    while (run < s.size()) {
      const auto c = static_cast<unsigned char>(s[run]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
      ++run;
    }
    out->append(s.data() + i, run - i);
    i = run;
    if (i == s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = Utf8SequenceLength(s, i);
      if (len == 0) {
        out->append("\\ufffd");
        ++i;
      } else {
        out->append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        out->append("\\u00");
        out->push_back(kDigits[c >> 4]);
        out->push_back(kDigits[c & 15]);
    }
    ++i;
  }
  out->push_back('"');
}

}  // namespace telkit
