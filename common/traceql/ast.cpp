#include "common/traceql/ast.h"

#include <cstdio>
#include <cstdlib>

namespace telkit::traceql {
namespace {

std::string FormatFloat(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Go's fmtFrac / fmtInt for Duration.String.
std::string Fraction(uint64_t v, int prec, uint64_t* rest) {
  std::string digits;
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    int d = static_cast<int>(v % 10);
    print = print || d != 0;
    if (print) digits.insert(digits.begin(), static_cast<char>('0' + d));
    v /= 10;
  }
  *rest = v;
  return print ? "." + digits : "";
}

const char* KindName(int k) {
  switch (k) {
    case 0: return "unspecified";
    case 1: return "internal";
    case 2: return "server";
    case 3: return "client";
    case 4: return "producer";
    case 5: return "consumer";
    default: return "unspecified";
  }
}

const char* StatusName(int s) { return s == kStatusOk ? "ok" : s == kStatusError ? "error" : "unset"; }

const char* IntrinsicName(Intrinsic i) {
  switch (i) {
    case Intrinsic::kDuration: return "duration";
    case Intrinsic::kName: return "name";
    case Intrinsic::kStatus: return "status";
    case Intrinsic::kStatusMessage: return "statusMessage";
    case Intrinsic::kKind: return "kind";
    case Intrinsic::kChildCount: return "childCount";
    case Intrinsic::kParent: return "parent";
    case Intrinsic::kRootName: return "rootName";
    case Intrinsic::kRootServiceName: return "rootServiceName";
    case Intrinsic::kTraceDuration: return "traceDuration";
    case Intrinsic::kTraceId: return "trace:id";
    case Intrinsic::kSpanId: return "span:id";
    case Intrinsic::kParentId: return "span:parentID";
    case Intrinsic::kEventName: return "event:name";
    case Intrinsic::kLinkTraceId: return "link:traceID";
    case Intrinsic::kLinkSpanId: return "link:spanID";
    case Intrinsic::kScopeName: return "instrumentation:name";
    case Intrinsic::kScopeVersion: return "instrumentation:version";
    case Intrinsic::kNone: break;
  }
  return "";
}

}  // namespace

std::string FormatDuration(int64_t ns) {
  if (ns == 0) return "0s";
  const bool neg = ns < 0;
  uint64_t u = neg ? static_cast<uint64_t>(-ns) : static_cast<uint64_t>(ns);
  std::string out;
  if (u < 1'000'000'000) {
    int prec;
    const char* unit;
    if (u < 1000) {
      out = std::to_string(u) + "ns";
      return neg ? "-" + out : out;
    } else if (u < 1'000'000) {
      prec = 3;
      unit = "\xc2\xb5s";
    } else {
      prec = 6;
      unit = "ms";
    }
    uint64_t rest;
    std::string frac = Fraction(u, prec, &rest);
    out = std::to_string(rest) + frac + unit;
  } else {
    uint64_t rest;
    std::string frac = Fraction(u, 9, &rest);
    out = std::to_string(rest % 60) + frac + "s";
    rest /= 60;
    if (rest > 0) {
      out = std::to_string(rest % 60) + "m" + out;
      rest /= 60;
      if (rest > 0) out = std::to_string(rest) + "h" + out;
    }
  }
  return neg ? "-" + out : out;
}

std::string Value::Plain() const {
  switch (type) {
    case ValueType::kNil: return "nil";
    case ValueType::kInt: return std::to_string(i);
    case ValueType::kFloat: return FormatFloat(f);
    case ValueType::kString: return s;
    case ValueType::kBool: return i ? "true" : "false";
    case ValueType::kDuration: return FormatDuration(i);
    case ValueType::kStatus: return StatusName(static_cast<int>(i));
    case ValueType::kKind: return KindName(static_cast<int>(i));
  }
  return "";
}

std::string Value::ToString() const {
  if (type == ValueType::kString) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"";
  }
  return Plain();
}

const char* OpText(Op op) {
  switch (op) {
    case Op::kAdd: return "+";
    case Op::kSub: return "-";
    case Op::kMul: return "*";
    case Op::kDiv: return "/";
    case Op::kMod: return "%";
    case Op::kPow: return "^";
    case Op::kEq: return "=";
    case Op::kNeq: return "!=";
    case Op::kLt: return "<";
    case Op::kLte: return "<=";
    case Op::kGt: return ">";
    case Op::kGte: return ">=";
    case Op::kRegex: return "=~";
    case Op::kNotRegex: return "!~";
    case Op::kAnd: return "&&";
    case Op::kOr: return "||";
    case Op::kNot: return "!";
    case Op::kNone: break;
  }
  return "";
}

std::string FieldExpr::ToString() const {
  switch (kind) {
    case Kind::kStatic: return value.ToString();
    case Kind::kIntrinsic: return IntrinsicName(intrinsic);
    case Kind::kAttribute: {
      std::string p = parent ? "parent." : "";
      switch (scope) {
        case Scope::kNone: return parent ? p + name : "." + name;
        case Scope::kSpan: return p + "span." + name;
        case Scope::kResource: return p + "resource." + name;
        case Scope::kEvent: return "event." + name;
        case Scope::kLink: return "link." + name;
        case Scope::kInstrumentation: return "instrumentation." + name;
      }
      return name;
    }
    case Kind::kUnary: return std::string(OpText(op)) + lhs->ToString();
    case Kind::kBinary: return "(" + lhs->ToString() + " " + OpText(op) + " " + rhs->ToString() + ")";
  }
  return "";
}

std::string ScalarExpr::ToString() const {
  switch (kind) {
    case Kind::kStatic: return value.ToString();
    case Kind::kBinary: return "(" + lhs->ToString() + " " + OpText(op) + " " + rhs->ToString() + ")";
    case Kind::kAggregate: {
      const char* n = aggregate == Aggregate::kCount ? "count"
                      : aggregate == Aggregate::kAvg ? "avg"
                      : aggregate == Aggregate::kMin ? "min"
                      : aggregate == Aggregate::kMax ? "max"
                                                     : "sum";
      return std::string(n) + "(" + (field ? field->ToString() : "") + ")";
    }
  }
  return "";
}

}  // namespace telkit::traceql
