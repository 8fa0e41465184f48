#include "common/pipeline/filter_expr.h"

#include <re2/re2.h>

#include <array>
#include <cctype>
#include <charconv>
#include <optional>

#include "common/otlp/otlp_json.h"

namespace telkit {
namespace {

using Field = FilterExpr::Field;
using Op = FilterExpr::Op;

// Which operators a field takes.
enum class FieldClass { kString, kId, kEnum, kOrdered, kAny };

struct FieldInfo {
  std::string_view name;
  Field field;
  FieldClass cls;
};

constexpr std::array kSpanFields = {
    FieldInfo{"name", Field::kName, FieldClass::kString},
    FieldInfo{"kind", Field::kKind, FieldClass::kEnum},
    FieldInfo{"status", Field::kStatus, FieldClass::kEnum},
    FieldInfo{"status.message", Field::kStatusMessage, FieldClass::kString},
    FieldInfo{"duration_ms", Field::kDurationMs, FieldClass::kOrdered},
    FieldInfo{"trace_id", Field::kTraceId, FieldClass::kId},
    FieldInfo{"span_id", Field::kSpanId, FieldClass::kId},
    FieldInfo{"parent_span_id", Field::kParentSpanId, FieldClass::kId},
};
constexpr std::array kLogFields = {
    FieldInfo{"name", Field::kName, FieldClass::kString},
    FieldInfo{"severity", Field::kSeverity, FieldClass::kOrdered},
    FieldInfo{"severity_text", Field::kSeverityText, FieldClass::kString},
    FieldInfo{"body", Field::kBody, FieldClass::kString},
    FieldInfo{"trace_id", Field::kTraceId, FieldClass::kId},
    FieldInfo{"span_id", Field::kSpanId, FieldClass::kId},
};
constexpr std::array kPointFields = {
    FieldInfo{"name", Field::kName, FieldClass::kString},
    FieldInfo{"unit", Field::kUnit, FieldClass::kString},
    FieldInfo{"type", Field::kType, FieldClass::kEnum},
    FieldInfo{"value", Field::kValue, FieldClass::kOrdered},
};
constexpr std::array kCommonFields = {
    FieldInfo{"scope.name", Field::kScopeName, FieldClass::kString},
    FieldInfo{"scope.version", Field::kScopeVersion, FieldClass::kString},
};

struct EnumName {
  std::string_view name;
  int value;
};
constexpr std::array kKindNames = {EnumName{"unspecified", 0}, EnumName{"internal", 1}, EnumName{"server", 2},
                                   EnumName{"client", 3},      EnumName{"producer", 4}, EnumName{"consumer", 5}};
constexpr std::array kStatusNames = {EnumName{"unset", 0}, EnumName{"ok", 1}, EnumName{"error", 2}};
constexpr std::array kSeverityNames = {EnumName{"trace", 1}, EnumName{"debug", 5},  EnumName{"info", 9},
                                       EnumName{"warn", 13}, EnumName{"error", 17}, EnumName{"fatal", 21}};
constexpr std::array kTypeNames = {EnumName{"gauge", 5}, EnumName{"sum", 7}, EnumName{"histogram", 9},
                                   EnumName{"exponential_histogram", 10}, EnumName{"summary", 11}};

std::string_view NounOf(Signal signal) {
  switch (signal) {
    case Signal::kTraces: return "spans";
    case Signal::kLogs: return "log records";
    default: return "data points";
  }
}

template <typename Array>
std::string NameList(const Array& a) {
  std::string s;
  for (const auto& e : a) {
    if (!s.empty()) s += ' ';
    s += e.name;
  }
  return s;
}

std::string FieldList(Signal signal) {
  std::string s = signal == Signal::kTraces ? NameList(kSpanFields)
                  : signal == Signal::kLogs ? NameList(kLogFields)
                                            : NameList(kPointFields);
  return s + " " + NameList(kCommonFields) + " attr.KEY resource.KEY";
}

std::optional<FieldInfo> LookUpField(Signal signal, std::string_view name) {
  auto find = [&](const auto& table) -> std::optional<FieldInfo> {
    for (const FieldInfo& f : table) {
      if (f.name == name) return f;
    }
    return std::nullopt;
  };
  std::optional<FieldInfo> f = signal == Signal::kTraces ? find(kSpanFields)
                               : signal == Signal::kLogs ? find(kLogFields)
                                                         : find(kPointFields);
  return f ? f : find(kCommonFields);
}

bool IsKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == '/' || c == ':' ||
         c == '@';
}

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kEq: return "==";
    case Op::kNe: return "!=";
    case Op::kMatch: return "=~";
    case Op::kNotMatch: return "!~";
    case Op::kLt: return "<";
    case Op::kLe: return "<=";
    case Op::kGt: return ">";
    case Op::kGe: return ">=";
  }
  return "?";
}

Status ErrorAt(size_t pos, std::string what) {
  return InvalidArgumentError("column " + std::to_string(pos + 1) + ": " + what);
}

void SkipSpace(std::string_view text, size_t& pos) {
  while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
}

// A "quoted string" starting at text[pos] == '"'; pos ends after the quote.
Result<std::string> ParseQuoted(std::string_view text, size_t& pos) {
  const size_t start = pos++;
  std::string out;
  while (pos < text.size()) {
    char c = text[pos++];
    if (c == '"') return out;
    if (c == '\\' && pos < text.size() && (text[pos] == '"' || text[pos] == '\\')) c = text[pos++];
    out += c;
  }
  return ErrorAt(start, "unterminated string");
}

std::optional<double> ParseNumber(std::string_view s) {
  if (s.empty()) return std::nullopt;
  if (s.front() == '+') s.remove_prefix(1);
  double d;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return d;
}

template <typename Array>
std::optional<int> LookUpEnum(const Array& names, std::string_view value) {
  std::string lower;
  for (char c : value) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const EnumName& e : names) {
    if (e.name == lower) return e.value;
  }
  return std::nullopt;
}

bool HasText(const AnyValueView& v, std::string* scratch, std::string_view* text) {
  if (v.kind == AnyValueView::Kind::kString) {
    *text = v.str;
    return true;
  }
  if (!AnyValueText(v, scratch)) return false;
  *text = *scratch;
  return true;
}

}  // namespace

Status FilterExpr::ParseCondition(Signal signal, std::string_view text, size_t& pos, Condition* c) {
  // FIELD
  const size_t field_pos = pos;
  while (pos < text.size() && IsKeyChar(text[pos])) ++pos;
  std::string_view name = text.substr(field_pos, pos - field_pos);
  if (name.empty()) {
    if (pos >= text.size()) return ErrorAt(pos, "expected a field");
    return ErrorAt(pos, "expected a field, found '" + std::string(1, text[pos]) + "'");
  }
  FieldClass cls = FieldClass::kAny;
  auto prefixed = [&](std::string_view prefix, Field field) -> Result<bool> {
    if (name.substr(0, prefix.size()) != prefix) return false;
    c->field = field;
    c->key = std::string(name.substr(prefix.size()));
    if (c->key.empty() && pos < text.size() && text[pos] == '"') {
      TELKIT_ASSIGN_OR_RETURN(c->key, ParseQuoted(text, pos));
    }
    if (c->key.empty()) return ErrorAt(field_pos, "'" + std::string(name) + "' needs a key after the dot");
    return true;
  };
  TELKIT_ASSIGN_OR_RETURN(bool is_attr, prefixed("attr.", Field::kAttr));
  bool is_resource = false;
  if (!is_attr) {
    TELKIT_ASSIGN_OR_RETURN(is_resource, prefixed("resource.", Field::kResource));
  }
  if (!is_attr && !is_resource) {
    std::optional<FieldInfo> info = LookUpField(signal, name);
    if (!info) {
      return ErrorAt(field_pos, "unknown field '" + std::string(name) + "' for " + std::string(NounOf(signal)) +
                                    " (" + FieldList(signal) + ")");
    }
    c->field = info->field;
    cls = info->cls;
  }
  // OP
  SkipSpace(text, pos);
  const size_t op_pos = pos;
  auto starts = [&](std::string_view s) { return text.substr(pos, s.size()) == s; };
  if (starts("==")) {
    c->op = Op::kEq, pos += 2;
  } else if (starts("!=")) {
    c->op = Op::kNe, pos += 2;
  } else if (starts("=~")) {
    c->op = Op::kMatch, pos += 2;
  } else if (starts("!~")) {
    c->op = Op::kNotMatch, pos += 2;
  } else if (starts("<=")) {
    c->op = Op::kLe, pos += 2;
  } else if (starts(">=")) {
    c->op = Op::kGe, pos += 2;
  } else if (starts("<")) {
    c->op = Op::kLt, pos += 1;
  } else if (starts(">")) {
    c->op = Op::kGt, pos += 1;
  } else {
    return ErrorAt(op_pos, "expected an operator (== != =~ !~ < <= > >=) after '" + std::string(name) + "'");
  }
  const bool regex_op = c->op == Op::kMatch || c->op == Op::kNotMatch;
  const bool order_op = c->op == Op::kLt || c->op == Op::kLe || c->op == Op::kGt || c->op == Op::kGe;
  if ((regex_op && (cls == FieldClass::kEnum || cls == FieldClass::kOrdered)) ||
      (order_op && (cls == FieldClass::kString || cls == FieldClass::kId || cls == FieldClass::kEnum))) {
    const char* takes = cls == FieldClass::kEnum      ? "== !="
                        : cls == FieldClass::kOrdered ? "== != < <= > >="
                                                      : "== != =~ !~";
    return ErrorAt(op_pos, "'" + std::string(name) + "' takes " + takes + ", not '" + std::string(OpName(c->op)) + "'");
  }
  // VALUE
  SkipSpace(text, pos);
  const size_t value_pos = pos;
  if (pos < text.size() && text[pos] == '"') {
    TELKIT_ASSIGN_OR_RETURN(c->text, ParseQuoted(text, pos));
  } else {
    while (pos < text.size() && !std::isspace(static_cast<unsigned char>(text[pos])) && !starts("&&")) ++pos;
    c->text = std::string(text.substr(value_pos, pos - value_pos));
    if (c->text.empty()) return ErrorAt(value_pos, "expected a value after '" + std::string(OpName(c->op)) + "'");
  }
  if (std::optional<double> n = ParseNumber(c->text)) {
    c->has_number = true;
    c->number = *n;
  }
  // Enumerations by name.
  auto resolve = [&](const auto& names, const char* what) -> Status {
    if (c->has_number) return OkStatus();
    std::optional<int> v = LookUpEnum(names, c->text);
    if (!v) return ErrorAt(value_pos, "unknown " + std::string(what) + " '" + c->text + "' (" + NameList(names) + ")");
    c->has_number = true;
    c->number = *v;
    return OkStatus();
  };
  switch (c->field) {
    case Field::kKind: TELKIT_RETURN_IF_ERROR(resolve(kKindNames, "span kind")); break;
    case Field::kStatus: TELKIT_RETURN_IF_ERROR(resolve(kStatusNames, "status")); break;
    case Field::kSeverity: TELKIT_RETURN_IF_ERROR(resolve(kSeverityNames, "severity")); break;
    case Field::kType: TELKIT_RETURN_IF_ERROR(resolve(kTypeNames, "metric type")); break;
    default: break;
  }
  if (cls == FieldClass::kOrdered && !c->has_number) {
    return ErrorAt(value_pos, "'" + std::string(name) + "' compares numbers, not '" + c->text + "'");
  }
  if (order_op && !c->has_number) {
    return ErrorAt(value_pos, "'" + std::string(OpName(c->op)) + "' needs a number, not '" + c->text + "'");
  }
  if (cls == FieldClass::kId && !regex_op) {
    for (char& ch : c->text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    Result<std::string> bytes = HexDecode(c->text);
    if (!bytes.ok()) return ErrorAt(value_pos, "'" + std::string(name) + "' is hex, not '" + c->text + "'");
    c->bytes = std::move(*bytes);
  }
  if (regex_op) {
    RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_shared<const RE2>(c->text, options);
    if (!re->ok()) return ErrorAt(value_pos, "invalid regular expression: " + re->error());
    c->regex = std::move(re);
  }
  return OkStatus();
}

Result<FilterExpr> FilterExpr::Parse(Signal signal, std::string_view text) {
  if (signal != Signal::kTraces && signal != Signal::kMetrics && signal != Signal::kLogs) {
    return InvalidArgumentError("signal '" + std::string(SignalName(signal)) + "' has no items to filter");
  }
  FilterExpr expr;
  expr.signal_ = signal;
  expr.text_ = std::string(text);
  size_t pos = 0;
  for (;;) {
    SkipSpace(text, pos);
    Condition c;
    TELKIT_RETURN_IF_ERROR(ParseCondition(signal, text, pos, &c));
    expr.uses_resource_ |= c.field == Field::kResource;
    expr.uses_attributes_ |= c.field == Field::kAttr;
    expr.conditions_.push_back(std::move(c));
    SkipSpace(text, pos);
    if (pos >= text.size()) break;
    if (text.substr(pos, 2) != "&&") {
      return ErrorAt(pos, "expected '&&' or the end of the expression, found '" + std::string(text.substr(pos, 10)) +
                              "'");
    }
    pos += 2;
  }
  return expr;
}

AnyValueView FilterExpr::Value(const Condition& c, const FilterSubject& s) const {
  AnyValueView v;
  auto str = [&](std::string_view x) {
    v.kind = AnyValueView::Kind::kString;
    v.str = x;
    return v;
  };
  auto integer = [&](int64_t x) {
    v.kind = AnyValueView::Kind::kInt;
    v.int_value = x;
    return v;
  };
  auto bytes = [&](std::string_view x) {
    if (x.empty()) return v;  // an empty id is an absent one
    v.kind = AnyValueView::Kind::kBytes;
    v.str = x;
    return v;
  };
  switch (c.field) {
    case Field::kName:
      return str(s.span ? s.span->name : s.log ? s.log->event_name : s.point->metric_name);
    case Field::kKind: return integer(s.span->kind);
    case Field::kStatus: return integer(s.span->status_code);
    case Field::kStatusMessage: return str(s.span->status_message);
    case Field::kDurationMs:
      v.kind = AnyValueView::Kind::kDouble;
      // The difference in integers first: doubles cannot hold nanosecond timestamps exactly.
      v.double_value =
          static_cast<double>(static_cast<int64_t>(s.span->end_time_unix_nano - s.span->start_time_unix_nano)) / 1e6;
      return v;
    case Field::kTraceId: return bytes(s.span ? s.span->trace_id : s.log->trace_id);
    case Field::kSpanId: return bytes(s.span ? s.span->span_id : s.log->span_id);
    case Field::kParentSpanId: return bytes(s.span->parent_span_id);
    case Field::kSeverity: return integer(s.log->severity_number);
    case Field::kSeverityText: return str(s.log->severity_text);
    case Field::kBody: return s.log->body;
    case Field::kUnit: return str(s.point->metric_unit);
    case Field::kType: return integer(s.point->data_field);
    case Field::kValue: return s.point->value;
    case Field::kAttr:
      return (s.span ? s.span->attributes : s.log ? s.log->attributes : s.point->attributes).Find(c.key);
    case Field::kResource:
      return s.resource_attributes ? s.resource_attributes->Find(c.key) : v;
    case Field::kScopeName: return str(s.scope_name);
    case Field::kScopeVersion: return str(s.scope_version);
  }
  return v;
}

bool FilterExpr::Holds(const Condition& c, const FilterSubject& s) const {
  const AnyValueView v = Value(c, s);
  if (v.kind == AnyValueView::Kind::kAbsent) return c.op == Op::kNe || c.op == Op::kNotMatch;
  std::string scratch;
  std::string_view text;
  switch (c.op) {
    case Op::kEq:
    case Op::kNe: {
      bool equal;
      if (c.has_number && v.is_number()) {
        equal = v.number() == c.number;
      } else if (v.kind == AnyValueView::Kind::kBytes && !c.bytes.empty()) {
        equal = v.str == c.bytes;
      } else {
        equal = HasText(v, &scratch, &text) && text == c.text;
      }
      return equal == (c.op == Op::kEq);
    }
    case Op::kMatch:
    case Op::kNotMatch: {
      const bool matches = HasText(v, &scratch, &text) && RE2::FullMatch(text, *c.regex);
      return matches == (c.op == Op::kMatch);
    }
    case Op::kLt: return v.is_number() && v.number() < c.number;
    case Op::kLe: return v.is_number() && v.number() <= c.number;
    case Op::kGt: return v.is_number() && v.number() > c.number;
    case Op::kGe: return v.is_number() && v.number() >= c.number;
  }
  return false;
}

bool FilterExpr::Matches(const FilterSubject& subject) const {
  for (const Condition& c : conditions_) {
    if (!Holds(c, subject)) return false;
  }
  return true;
}

}  // namespace telkit
