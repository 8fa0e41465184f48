// TraceQL's typed values and syntax tree (Tempo's grammar, pkg/traceql/expr.y):
//
//   query     := pipeline
//   pipeline  := stage ('|' stage)*
//   stage     := spanset | scalarFilter | by(field) | select(field, ...) | coalesce()
//   spanset   := spanset ('&&' | '||') spanset          (lowest)
//              | spanset ('>' | '>>' | '<' | '<<' | '~' | '!>' | '!>>' | '!<' | '!<<' | '!~') spanset
//              | '{' [field] '}' | '(' pipeline ')'
//   scalarFilter := scalar ('=' | '!=' | '<' | '<=' | '>' | '>=') scalar
//   scalar    := count() | avg|min|max|sum '(' field ')' | static | scalar (+ - * / % ^) scalar
//   field     := field op field | '!' field | '-' field | static | intrinsic | attribute
//
// Field operator precedence (increasing): && ||; comparisons and regex;
// + -; !; * / %; ^ (right-associative). Values built by the parser (parser.h)
// and read by the engine (engine.h).
//
// Thread-compatible; a parsed Query is immutable and may be shared.
#pragma once

#include <re2/re2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace telkit::traceql {

enum class ValueType { kNil, kInt, kFloat, kString, kBool, kDuration, kStatus, kKind };

// OTLP status codes and span kinds, as stored (Status.StatusCode, Span.SpanKind).
inline constexpr int kStatusUnset = 0, kStatusOk = 1, kStatusError = 2;

struct Value {
  ValueType type = ValueType::kNil;
  int64_t i = 0;  // kInt, kBool (0/1), kDuration (ns), kStatus, kKind
  double f = 0;   // kFloat
  std::string s;  // kString

  static Value Nil() { return {}; }
  static Value Int(int64_t v) { return {ValueType::kInt, v, 0, {}}; }
  static Value Float(double v) { return {ValueType::kFloat, 0, v, {}}; }
  static Value String(std::string v) { return {ValueType::kString, 0, 0, std::move(v)}; }
  static Value Bool(bool v) { return {ValueType::kBool, v ? 1 : 0, 0, {}}; }
  static Value Duration(int64_t ns) { return {ValueType::kDuration, ns, 0, {}}; }
  static Value Status(int code) { return {ValueType::kStatus, code, 0, {}}; }
  static Value Kind(int kind) { return {ValueType::kKind, kind, 0, {}}; }

  bool is_nil() const { return type == ValueType::kNil; }
  bool is_numeric() const {
    return type == ValueType::kInt || type == ValueType::kFloat || type == ValueType::kDuration;
  }
  double AsDouble() const { return type == ValueType::kFloat ? f : static_cast<double>(i); }
  bool operator==(const Value& o) const { return type == o.type && i == o.i && f == o.f && s == o.s; }
  // TraceQL text: "x" for strings, 1.5s for durations, error, server, nil.
  std::string ToString() const;
  // As a plain string (no quotes); durations as Go prints them (1.5s).
  std::string Plain() const;
};

// Go's time.Duration.String(): 1h2m3.5s, 1.5ms, 0s.
std::string FormatDuration(int64_t ns);

enum class Op {
  kNone,
  kAdd, kSub, kMul, kDiv, kMod, kPow,
  kEq, kNeq, kLt, kLte, kGt, kGte, kRegex, kNotRegex,
  kAnd, kOr, kNot,
};
const char* OpText(Op op);

enum class Intrinsic {
  kNone,
  kDuration, kName, kStatus, kStatusMessage, kKind, kChildCount, kParent,
  kRootName, kRootServiceName, kTraceDuration, kTraceId, kSpanId, kParentId,
  kEventName, kLinkTraceId, kLinkSpanId, kScopeName, kScopeVersion,
};

enum class Scope { kNone, kSpan, kResource, kEvent, kLink, kInstrumentation };

struct FieldExpr {
  enum class Kind { kStatic, kIntrinsic, kAttribute, kBinary, kUnary };
  Kind kind = Kind::kStatic;
  Value value;                             // kStatic
  Intrinsic intrinsic = Intrinsic::kNone;  // kIntrinsic
  Scope scope = Scope::kNone;              // kAttribute
  bool parent = false;                     // kAttribute: parent.x (of the parent span)
  std::string name;                        // kAttribute: the key; else the text for messages
  Op op = Op::kNone;                       // kBinary, kUnary
  std::unique_ptr<FieldExpr> lhs, rhs;     // kUnary: lhs only
  std::shared_ptr<RE2> regex;              // kRegex/kNotRegex with a static string right side

  // TraceQL text of the expression (for select() and by() labels).
  std::string ToString() const;
};

enum class SpansetOp { kAnd, kOr, kChild, kDescendant, kParent, kAncestor, kSibling,
                       kNotChild, kNotDescendant, kNotParent, kNotAncestor, kNotSibling };

struct Pipeline;

struct SpansetExpr {
  enum class Kind { kFilter, kOperation, kPipeline };
  Kind kind = Kind::kFilter;
  std::unique_ptr<FieldExpr> filter;  // kFilter; nullptr: {} (every span)
  SpansetOp op = SpansetOp::kAnd;     // kOperation
  std::unique_ptr<SpansetExpr> lhs, rhs;
  std::unique_ptr<Pipeline> pipeline;  // kPipeline: a wrapped (...) pipeline
};

enum class Aggregate { kCount, kAvg, kMin, kMax, kSum };

struct ScalarExpr {
  enum class Kind { kAggregate, kStatic, kBinary };
  Kind kind = Kind::kStatic;
  Aggregate aggregate = Aggregate::kCount;  // kAggregate
  std::unique_ptr<FieldExpr> field;         // kAggregate except count()
  Value value;                              // kStatic
  Op op = Op::kNone;                        // kBinary: + - * / % ^
  std::unique_ptr<ScalarExpr> lhs, rhs;
  std::string ToString() const;
};

struct Stage {
  enum class Kind { kSpanset, kScalarFilter, kBy, kSelect, kCoalesce };
  Kind kind = Kind::kSpanset;
  std::unique_ptr<SpansetExpr> spanset;            // kSpanset
  Op cmp = Op::kNone;                              // kScalarFilter
  std::unique_ptr<ScalarExpr> lhs, rhs;            // kScalarFilter
  std::vector<std::unique_ptr<FieldExpr>> fields;  // kBy (one), kSelect
};

struct Pipeline {
  std::vector<Stage> stages;
};

struct Query {
  std::string text;
  Pipeline pipeline;
  // Attribute and intrinsic fields the query names (in filters, by() and
  // select()), in order of appearance, each once: returned with matched spans.
  std::vector<const FieldExpr*> fields;
};

}  // namespace telkit::traceql
