// The PromQL abstract syntax tree, as the parser (parser.h) builds it and the
// engine (engine.h) evaluates it. Node kinds, value types and operators follow
// Prometheus 2.42 (github.com/prometheus/prometheus/promql/parser/ast.go).
//
// Trees are values owned through std::unique_ptr; a parsed tree is immutable
// and may be evaluated from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/model/matcher.h"

namespace telkit::promql {

enum class ValueType { kNone, kScalar, kVector, kMatrix, kString };
// "scalar", "instant vector", "range vector", "string" — as Prometheus names
// them in type errors.
std::string_view ValueTypeName(ValueType t);
// "scalar", "vector", "matrix", "string" — the API's resultType.
std::string_view ValueTypeApiName(ValueType t);

enum class BinOp {
  kAdd, kSub, kMul, kDiv, kMod, kPow, kAtan2,
  kEql, kNeq, kGtr, kLss, kGte, kLte,
  kAnd, kOr, kUnless,
};
std::string_view BinOpString(BinOp op);
bool IsComparison(BinOp op);
bool IsSetOperator(BinOp op);

enum class AggOp {
  kSum, kAvg, kCount, kMin, kMax, kGroup, kStddev, kStdvar,
  kTopk, kBottomk, kQuantile, kCountValues, kLimitk, kLimitRatio,
};
std::string_view AggOpString(AggOp op);

// Byte offsets into the query text, [start, end).
struct PosRange {
  int start = 0;
  int end = 0;
};

enum class NodeKind {
  kNumber, kString, kVectorSelector, kMatrixSelector, kSubquery, kParen,
  kUnary, kBinary, kAggregate, kCall,
};

struct Function;  // functions.h

struct Expr {
  explicit Expr(NodeKind k) : kind(k) {}
  virtual ~Expr() = default;
  Expr(const Expr&) = delete;
  Expr& operator=(const Expr&) = delete;

  // The type the expression evaluates to.
  ValueType Type() const;
  // The expression printed back as PromQL (Prometheus' String() form).
  std::string ToString() const;

  NodeKind kind;
  PosRange pos;
  // 1 for a leaf, else 1 + the greatest height of the children. The parser
  // refuses trees higher than kMaxExprHeight, so recursion over a tree is
  // bounded.
  int height = 1;
};
inline constexpr int kMaxExprHeight = 300;
using ExprPtr = std::unique_ptr<Expr>;

struct NumberLiteral : Expr {
  NumberLiteral() : Expr(NodeKind::kNumber) {}
  double value = 0;
};

struct StringLiteral : Expr {
  StringLiteral() : Expr(NodeKind::kString) {}
  std::string value;
};

// The `@` modifier: a fixed time, or the query's start() / end().
enum class AtKind { kNone, kTimestamp, kStart, kEnd };

// Offset and @ of a selector or subquery. The engine resolves start()/end()
// to the query's times before evaluation (ResolveAt).
struct TimeModifiers {
  int64_t offset_ms = 0;  // may be negative
  AtKind at = AtKind::kNone;
  int64_t at_ms = 0;  // for kTimestamp, and after ResolveAt for kStart/kEnd
  // 3.x extended selectors (selectors only, never subqueries): `anchored`
  // pins a range's ends to the samples at or before them, `smoothed`
  // interpolates the value at the range's ends (and at an instant
  // selector's evaluation time).
  bool anchored = false;
  bool smoothed = false;
};

struct VectorSelector : Expr {
  VectorSelector() : Expr(NodeKind::kVectorSelector) {}
  std::string name;  // may be empty ({job="x"})
  std::vector<LabelMatcher> matchers;  // includes __name__="name" when named
  TimeModifiers mod;
};

struct MatrixSelector : Expr {
  MatrixSelector() : Expr(NodeKind::kMatrixSelector) {}
  std::unique_ptr<VectorSelector> vs;  // holds offset and @
  int64_t range_ms = 0;
};

struct SubqueryExpr : Expr {
  SubqueryExpr() : Expr(NodeKind::kSubquery) {}
  ExprPtr expr;
  int64_t range_ms = 0;
  int64_t step_ms = 0;  // 0: the engine's default subquery step
  TimeModifiers mod;
};

struct ParenExpr : Expr {
  ParenExpr() : Expr(NodeKind::kParen) {}
  ExprPtr expr;
};

struct UnaryExpr : Expr {
  UnaryExpr() : Expr(NodeKind::kUnary) {}
  bool negate = true;  // '-' (false: '+')
  ExprPtr expr;
};

enum class Cardinality { kOneToOne, kManyToOne, kOneToMany, kManyToMany };

struct VectorMatching {
  Cardinality card = Cardinality::kOneToOne;
  bool on = false;  // on(...) given; otherwise ignoring(...) (possibly empty)
  bool explicit_matching = false;  // on/ignoring written in the query
  std::vector<std::string> labels;   // the on / ignoring labels
  std::vector<std::string> include;  // group_left/group_right labels
};

struct BinaryExpr : Expr {
  BinaryExpr() : Expr(NodeKind::kBinary) {}
  BinOp op = BinOp::kAdd;
  ExprPtr lhs, rhs;
  bool return_bool = false;
  VectorMatching matching;  // meaningful when both sides are vectors
  // 3.x fill()/fill_left()/fill_right(): the value a missing left / right
  // element takes, so that unmatched series still yield a result.
  std::optional<double> fill_left, fill_right;
};

struct AggregateExpr : Expr {
  AggregateExpr() : Expr(NodeKind::kAggregate) {}
  AggOp op = AggOp::kSum;
  ExprPtr expr;
  ExprPtr param;  // topk/bottomk/quantile/count_values/limitk/limit_ratio
  std::vector<std::string> grouping;
  bool without = false;
  bool has_grouping = false;  // by()/without() written
};

struct Call : Expr {
  Call() : Expr(NodeKind::kCall) {}
  const Function* func = nullptr;
  std::vector<ExprPtr> args;
};

// Formats a duration in milliseconds as PromQL writes it: "1h30m", "90ms", "0s".
std::string FormatDuration(int64_t ms);

// Strips any number of enclosing parentheses.
const Expr* Unparen(const Expr* e);

}  // namespace telkit::promql
