#include "common/promql/ast.h"

#include <sstream>

#include <charconv>
#include <cmath>

#include "common/promql/functions.h"

namespace telkit::promql {

std::string_view ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kNone: return "none";
    case ValueType::kScalar: return "scalar";
    case ValueType::kVector: return "instant vector";
    case ValueType::kMatrix: return "range vector";
    case ValueType::kString: return "string";
  }
  return "none";
}

std::string_view ValueTypeApiName(ValueType t) {
  switch (t) {
    case ValueType::kNone: return "none";
    case ValueType::kScalar: return "scalar";
    case ValueType::kVector: return "vector";
    case ValueType::kMatrix: return "matrix";
    case ValueType::kString: return "string";
  }
  return "none";
}

std::string_view BinOpString(BinOp op) {
  switch (op) {
    case BinOp::kAdd: return "+";
    case BinOp::kSub: return "-";
    case BinOp::kMul: return "*";
    case BinOp::kDiv: return "/";
    case BinOp::kMod: return "%";
    case BinOp::kPow: return "^";
    case BinOp::kAtan2: return "atan2";
    case BinOp::kEql: return "==";
    case BinOp::kNeq: return "!=";
    case BinOp::kGtr: return ">";
    case BinOp::kLss: return "<";
    case BinOp::kGte: return ">=";
    case BinOp::kLte: return "<=";
    case BinOp::kAnd: return "and";
    case BinOp::kOr: return "or";
    case BinOp::kUnless: return "unless";
  }
  return "?";
}

bool IsComparison(BinOp op) {
  return op == BinOp::kEql || op == BinOp::kNeq || op == BinOp::kGtr || op == BinOp::kLss || op == BinOp::kGte ||
         op == BinOp::kLte;
}

bool IsSetOperator(BinOp op) { return op == BinOp::kAnd || op == BinOp::kOr || op == BinOp::kUnless; }

std::string_view AggOpString(AggOp op) {
  switch (op) {
    case AggOp::kSum: return "sum";
    case AggOp::kAvg: return "avg";
    case AggOp::kCount: return "count";
    case AggOp::kMin: return "min";
    case AggOp::kMax: return "max";
    case AggOp::kGroup: return "group";
    case AggOp::kStddev: return "stddev";
    case AggOp::kStdvar: return "stdvar";
    case AggOp::kTopk: return "topk";
    case AggOp::kBottomk: return "bottomk";
    case AggOp::kQuantile: return "quantile";
    case AggOp::kCountValues: return "count_values";
    case AggOp::kLimitk: return "limitk";
    case AggOp::kLimitRatio: return "limit_ratio";
  }
  return "?";
}

ValueType Expr::Type() const {
  switch (kind) {
    case NodeKind::kNumber: return ValueType::kScalar;
    case NodeKind::kString: return ValueType::kString;
    case NodeKind::kVectorSelector: return ValueType::kVector;
    case NodeKind::kMatrixSelector:
    case NodeKind::kSubquery: return ValueType::kMatrix;
    case NodeKind::kParen: return static_cast<const ParenExpr*>(this)->expr->Type();
    case NodeKind::kUnary: return static_cast<const UnaryExpr*>(this)->expr->Type();
    case NodeKind::kBinary: {
      const auto* b = static_cast<const BinaryExpr*>(this);
      if (b->lhs->Type() == ValueType::kScalar && b->rhs->Type() == ValueType::kScalar) return ValueType::kScalar;
      return ValueType::kVector;
    }
    case NodeKind::kAggregate: return ValueType::kVector;
    case NodeKind::kCall: return static_cast<const Call*>(this)->func->return_type;
  }
  return ValueType::kNone;
}

std::string FormatDuration(int64_t ms) {
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  static constexpr std::pair<const char*, int64_t> kUnits[] = {
      {"y", 365LL * 24 * 3600 * 1000}, {"w", 7LL * 24 * 3600 * 1000}, {"d", 24LL * 3600 * 1000},
      {"h", 3600LL * 1000},           {"m", 60LL * 1000},             {"s", 1000},
      {"ms", 1},
  };
  for (const auto& [unit, size] : kUnits) {
    if (ms >= size) {
      out += std::to_string(ms / size) + unit;
      ms %= size;
    }
  }
  return out;
}

const Expr* Unparen(const Expr* e) {
  while (e != nullptr && e->kind == NodeKind::kParen) e = static_cast<const ParenExpr*>(e)->expr.get();
  return e;
}

namespace {

std::string FormatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[400];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

std::string QuoteString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char* kHex = "0123456789abcdef";
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ", ";
    out += v[i];
  }
  return out;
}

std::string ModifiersString(const TimeModifiers& m) {
  std::string out;
  if (m.offset_ms != 0) out += " offset " + FormatDuration(m.offset_ms);
  switch (m.at) {
    case AtKind::kNone: break;
    case AtKind::kStart: out += " @ start()"; break;
    case AtKind::kEnd: out += " @ end()"; break;
    case AtKind::kTimestamp: {
      char buf[64];
      int64_t ms = m.at_ms;
      std::snprintf(buf, sizeof buf, " @ %s%lld.%03lld", ms < 0 ? "-" : "", static_cast<long long>(std::llabs(ms) / 1000),
                    static_cast<long long>(std::llabs(ms) % 1000));
      out += buf;
      break;
    }
  }
  if (m.anchored) out += " anchored";
  if (m.smoothed) out += " smoothed";
  return out;
}

std::string SelectorString(const VectorSelector& vs) {
  std::string out = vs.name;
  std::vector<std::string> ms;
  for (const LabelMatcher& m : vs.matchers) {
    if (!vs.name.empty() && m.name() == kMetricNameLabel && m.type() == MatchType::kEqual) continue;
    ms.push_back(m.name() + std::string(MatchTypeString(m.type())) + QuoteString(m.value()));
  }
  if (!ms.empty() || vs.name.empty()) {
    out += "{";
    for (size_t i = 0; i < ms.size(); ++i) {
      if (i > 0) out += ", ";
      out += ms[i];
    }
    out += "}";
  }
  return out;
}

}  // namespace

std::string Expr::ToString() const {
  switch (kind) {
    case NodeKind::kNumber: return FormatNumber(static_cast<const NumberLiteral*>(this)->value);
    case NodeKind::kString: return QuoteString(static_cast<const StringLiteral*>(this)->value);
    case NodeKind::kVectorSelector: {
      const auto* vs = static_cast<const VectorSelector*>(this);
      return SelectorString(*vs) + ModifiersString(vs->mod);
    }
    case NodeKind::kMatrixSelector: {
      const auto* m = static_cast<const MatrixSelector*>(this);
      return SelectorString(*m->vs) + "[" + FormatDuration(m->range_ms) + "]" + ModifiersString(m->vs->mod);
    }
    case NodeKind::kSubquery: {
      const auto* s = static_cast<const SubqueryExpr*>(this);
      return s->expr->ToString() + "[" + FormatDuration(s->range_ms) + ":" +
             (s->step_ms != 0 ? FormatDuration(s->step_ms) : "") + "]" + ModifiersString(s->mod);
    }
    case NodeKind::kParen: return "(" + static_cast<const ParenExpr*>(this)->expr->ToString() + ")";
    case NodeKind::kUnary: {
      const auto* u = static_cast<const UnaryExpr*>(this);
      return (u->negate ? "-" : "+") + u->expr->ToString();
    }
    case NodeKind::kBinary: {
      const auto* b = static_cast<const BinaryExpr*>(this);
      std::string op(BinOpString(b->op));
      if (b->return_bool) op += " bool";
      const VectorMatching& vm = b->matching;
      if (vm.explicit_matching && (!vm.labels.empty() || vm.on)) {
        op += std::string(vm.on ? " on" : " ignoring") + " (" + Join(vm.labels) + ")";
        if (vm.card == Cardinality::kManyToOne || vm.card == Cardinality::kOneToMany) {
          op += std::string(vm.card == Cardinality::kManyToOne ? " group_left" : " group_right") + " (" +
                Join(vm.include) + ")";
        }
      }
      auto num = [](double v) {
        std::ostringstream os;
        if (std::isnan(v)) return std::string("NaN");
        if (std::isinf(v)) return std::string(v > 0 ? "Inf" : "-Inf");
        os << v;
        return os.str();
      };
      if (b->fill_left && b->fill_right && num(*b->fill_left) == num(*b->fill_right)) {
        op += " fill(" + num(*b->fill_left) + ")";
      } else {
        if (b->fill_left) op += " fill_left(" + num(*b->fill_left) + ")";
        if (b->fill_right) op += " fill_right(" + num(*b->fill_right) + ")";
      }
      return b->lhs->ToString() + " " + op + " " + b->rhs->ToString();
    }
    case NodeKind::kAggregate: {
      const auto* a = static_cast<const AggregateExpr*>(this);
      std::string out(AggOpString(a->op));
      if (a->without) {
        out += " without (" + Join(a->grouping) + ") ";
      } else if (!a->grouping.empty()) {
        out += " by (" + Join(a->grouping) + ") ";
      }
      out += "(";
      if (a->param) out += a->param->ToString() + ", ";
      return out + a->expr->ToString() + ")";
    }
    case NodeKind::kCall: {
      const auto* c = static_cast<const Call*>(this);
      std::string out = std::string(c->func->name) + "(";
      for (size_t i = 0; i < c->args.size(); ++i) {
        if (i > 0) out += ", ";
        out += c->args[i]->ToString();
      }
      return out + ")";
    }
  }
  return "";
}

}  // namespace telkit::promql
