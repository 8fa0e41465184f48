#include "common/traceql/engine.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace telkit::traceql {
namespace {

namespace pb = opentelemetry::proto;

Value FromAny(const pb::common::v1::AnyValue& v) {
  using AV = pb::common::v1::AnyValue;
  switch (v.value_case()) {
    case AV::kStringValue: return Value::String(v.string_value());
    case AV::kIntValue: return Value::Int(v.int_value());
    case AV::kDoubleValue: return Value::Float(v.double_value());
    case AV::kBoolValue: return Value::Bool(v.bool_value());
    default: return Value::Nil();  // arrays, maps, bytes: not comparable in TraceQL
  }
}

void Attrs(const google::protobuf::RepeatedPtrField<pb::common::v1::KeyValue>& in, std::vector<Attribute>* out) {
  out->reserve(in.size());
  for (const auto& kv : in) out->push_back({kv.key(), FromAny(kv.value())});
}

const Value* Find(const std::vector<Attribute>& attrs, const std::string& key) {
  for (const Attribute& a : attrs) {
    if (a.key == key) return &a.value;
  }
  return nullptr;
}

// The values a field may take for a span: one, or one per event / link.
void Candidates(const FieldExpr& f, const TraceView& t, int span, std::vector<Value>* out) {
  const SpanView& s = t.spans[span];
  if (f.kind == FieldExpr::Kind::kAttribute && (f.scope == Scope::kEvent || f.scope == Scope::kLink)) {
    bool any = false;
    if (f.scope == Scope::kEvent) {
      for (const auto& e : s.events) {
        if (const Value* v = Find(e.attributes, f.name)) out->push_back(*v), any = true;
      }
    } else {
      for (const auto& l : s.links) {
        if (const Value* v = Find(l.attributes, f.name)) out->push_back(*v), any = true;
      }
    }
    if (!any) out->push_back(Value::Nil());
    return;
  }
  if (f.kind == FieldExpr::Kind::kIntrinsic &&
      (f.intrinsic == Intrinsic::kEventName || f.intrinsic == Intrinsic::kLinkSpanId ||
       f.intrinsic == Intrinsic::kLinkTraceId)) {
    size_t n = f.intrinsic == Intrinsic::kEventName ? s.events.size() : s.links.size();
    for (size_t k = 0; k < n; ++k) {
      if (f.intrinsic == Intrinsic::kEventName) out->push_back(Value::String(s.events[k].name));
      else if (f.intrinsic == Intrinsic::kLinkSpanId) out->push_back(Value::String(HexId(s.links[k].span_id)));
      else out->push_back(Value::String(HexId(s.links[k].trace_id)));
    }
    if (n == 0) out->push_back(Value::Nil());
    return;
  }
  out->push_back(EvaluateField(f, t, span));
}

bool IsNumeric(const Value& v) { return v.is_numeric(); }

// -1, 0, 1 or 2 (incomparable).
int Compare(const Value& a, const Value& b) {
  if (IsNumeric(a) && IsNumeric(b)) {
    if (a.type != ValueType::kFloat && b.type != ValueType::kFloat) return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
    double x = a.AsDouble(), y = b.AsDouble();
    if (std::isnan(x) || std::isnan(y)) return 2;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.type != b.type) return 2;
  if (a.type == ValueType::kString) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
  return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
}

bool CompareOp(Op op, const Value& a, const Value& b, const FieldExpr& node) {
  if (a.is_nil() || b.is_nil()) {
    // Only comparisons with the literal nil see absent values.
    if (op == Op::kEq) return a.is_nil() && b.is_nil();
    if (op == Op::kNeq) {
      const bool literal_nil = (node.rhs->kind == FieldExpr::Kind::kStatic && node.rhs->value.is_nil()) ||
                               (node.lhs->kind == FieldExpr::Kind::kStatic && node.lhs->value.is_nil());
      return literal_nil && a.is_nil() != b.is_nil();
    }
    return false;
  }
  if (op == Op::kRegex || op == Op::kNotRegex) {
    if (a.type != ValueType::kString || b.type != ValueType::kString) return false;
    bool m;
    if (node.regex) {
      m = RE2::FullMatch(a.s, *node.regex);
    } else {
      RE2::Options o;
      o.set_log_errors(false);
      o.set_dot_nl(true);
      RE2 re("^(?:" + b.s + ")$", o);
      if (!re.ok()) return false;
      m = RE2::FullMatch(a.s, re);
    }
    return op == Op::kRegex ? m : !m;
  }
  int c = Compare(a, b);
  if (c == 2) return op == Op::kNeq && (a.type != b.type);
  switch (op) {
    case Op::kEq: return c == 0;
    case Op::kNeq: return c != 0;
    case Op::kLt: return c < 0;
    case Op::kLte: return c <= 0;
    case Op::kGt: return c > 0;
    case Op::kGte: return c >= 0;
    default: return false;
  }
}

Value Arith(Op op, const Value& a, const Value& b) {
  if (!IsNumeric(a) || !IsNumeric(b)) return Value::Nil();
  const bool ints = a.type != ValueType::kFloat && b.type != ValueType::kFloat;
  const bool dur = a.type == ValueType::kDuration || b.type == ValueType::kDuration;
  if (ints && op != Op::kDiv && op != Op::kPow) {
    int64_t x = a.i, y = b.i, r = 0;
    switch (op) {
      case Op::kAdd: r = x + y; break;
      case Op::kSub: r = x - y; break;
      case Op::kMul: r = x * y; break;
      case Op::kMod:
        if (y == 0) return Value::Nil();
        r = x % y;
        break;
      default: return Value::Nil();
    }
    return dur ? Value::Duration(r) : Value::Int(r);
  }
  double x = a.AsDouble(), y = b.AsDouble(), r = 0;
  switch (op) {
    case Op::kAdd: r = x + y; break;
    case Op::kSub: r = x - y; break;
    case Op::kMul: r = x * y; break;
    case Op::kDiv: r = x / y; break;
    case Op::kMod: r = std::fmod(x, y); break;
    case Op::kPow: r = std::pow(x, y); break;
    default: return Value::Nil();
  }
  if (dur && (op == Op::kAdd || op == Op::kSub || op == Op::kDiv) && !(a.type == ValueType::kDuration && b.type == ValueType::kDuration && op == Op::kDiv)) {
    return Value::Duration(static_cast<int64_t>(r));
  }
  return Value::Float(r);
}

bool Truthy(const Value& v) { return v.type == ValueType::kBool && v.i != 0; }

// --- Spanset evaluation ----------------------------------------------------

using SpanList = std::vector<int>;  // ascending

SpanList Union(const SpanList& a, const SpanList& b) {
  SpanList out;
  std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

SpanList Flatten(const std::vector<Spanset>& sets) {
  SpanList out;
  for (const Spanset& s : sets) out = Union(out, s.spans);
  return out;
}

class Evaluator {
 public:
  explicit Evaluator(const TraceView& t) : t_(t), in_(t.spans.size(), 0) {}

  std::vector<Spanset> RunPipeline(const Pipeline& p, std::vector<Spanset> input) {
    for (const Stage& stage : p.stages) {
      std::vector<Spanset> next;
      switch (stage.kind) {
        case Stage::Kind::kSpanset:
          for (Spanset& s : input) {
            Spanset out;
            out.spans = EvalSpanset(*stage.spanset, s.spans);
            if (out.spans.empty()) continue;
            out.attributes = std::move(s.attributes);
            next.push_back(std::move(out));
          }
          break;
        case Stage::Kind::kScalarFilter:
          for (Spanset& s : input) {
            Value l = EvalScalar(*stage.lhs, s.spans), r = EvalScalar(*stage.rhs, s.spans);
            if (l.is_nil() || r.is_nil()) continue;
            int c = Compare(l, r);
            bool keep = c != 2 && ((stage.cmp == Op::kEq && c == 0) || (stage.cmp == Op::kNeq && c != 0) ||
                                   (stage.cmp == Op::kLt && c < 0) || (stage.cmp == Op::kLte && c <= 0) ||
                                   (stage.cmp == Op::kGt && c > 0) || (stage.cmp == Op::kGte && c >= 0));
            if (!keep) continue;
            // The aggregate's value joins the spanset's attributes.
            const ScalarExpr* agg = stage.lhs->kind == ScalarExpr::Kind::kAggregate ? stage.lhs.get()
                                    : stage.rhs->kind == ScalarExpr::Kind::kAggregate ? stage.rhs.get()
                                                                                        : nullptr;
            if (agg != nullptr) {
              Value v = agg == stage.lhs.get() ? l : r;
              s.attributes.push_back({agg->ToString(), v});
            }
            next.push_back(std::move(s));
          }
          break;
        case Stage::Kind::kBy: {
          const FieldExpr& f = *stage.fields[0];
          const std::string label = "by(" + f.ToString() + ")";
          for (Spanset& s : input) {
            std::vector<std::pair<Value, Spanset>> groups;
            for (int span : s.spans) {
              Value v = EvaluateField(f, t_, span);
              auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == v; });
              if (it == groups.end()) {
                Spanset g;
                g.attributes = s.attributes;
                g.attributes.push_back({label, v});
                groups.emplace_back(v, std::move(g));
                it = groups.end() - 1;
              }
              it->second.spans.push_back(span);
            }
            for (auto& g : groups) next.push_back(std::move(g.second));
          }
          break;
        }
        case Stage::Kind::kSelect:
          next = std::move(input);  // the fields are noted in Query::fields
          break;
        case Stage::Kind::kCoalesce: {
          Spanset all;
          for (const Spanset& s : input) all.spans = Union(all.spans, s.spans);
          if (!all.spans.empty()) next.push_back(std::move(all));
          break;
        }
      }
      input = std::move(next);
      if (input.empty()) break;
    }
    return input;
  }

 private:
  SpanList EvalSpanset(const SpansetExpr& e, const SpanList& input) {
    switch (e.kind) {
      case SpansetExpr::Kind::kFilter: {
        if (!e.filter) return input;
        SpanList out;
        for (int s : input) {
          if (EvalBool(*e.filter, s)) out.push_back(s);
        }
        return out;
      }
      case SpansetExpr::Kind::kPipeline: {
        Spanset in;
        in.spans = input;
        return Flatten(RunPipeline(*e.pipeline, {std::move(in)}));
      }
      case SpansetExpr::Kind::kOperation: break;
    }
    SpanList l = EvalSpanset(*e.lhs, input);
    if (e.op == SpansetOp::kAnd) {
      if (l.empty()) return {};
      SpanList r = EvalSpanset(*e.rhs, input);
      return r.empty() ? SpanList{} : Union(l, r);
    }
    SpanList r = EvalSpanset(*e.rhs, input);
    if (e.op == SpansetOp::kOr) return Union(l, r);
    // Structural: the spans of r related to some span of l.
    std::fill(in_.begin(), in_.end(), 0);
    for (int s : l) in_[s] = 1;
    bool negate = false;
    SpansetOp op = e.op;
    switch (op) {
      case SpansetOp::kNotChild: op = SpansetOp::kChild; negate = true; break;
      case SpansetOp::kNotDescendant: op = SpansetOp::kDescendant; negate = true; break;
      case SpansetOp::kNotParent: op = SpansetOp::kParent; negate = true; break;
      case SpansetOp::kNotAncestor: op = SpansetOp::kAncestor; negate = true; break;
      case SpansetOp::kNotSibling: op = SpansetOp::kSibling; negate = true; break;
      default: break;
    }
    // For < and <<: mark the parents / ancestors of l.
    std::vector<char> mark;
    if (op == SpansetOp::kParent || op == SpansetOp::kAncestor || op == SpansetOp::kSibling) {
      mark.assign(t_.spans.size(), 0);
      for (int s : l) {
        int p = t_.spans[s].parent;
        if (op == SpansetOp::kSibling) {
          if (p >= 0 && mark[p] < 127) ++mark[p];  // children in l per parent (2 is enough)
          continue;
        }
        while (p >= 0 && !mark[p]) {
          mark[p] = 1;
          if (op == SpansetOp::kParent) break;
          p = t_.spans[p].parent;
        }
      }
    }
    // For >>: below[s] = 1 when an ancestor of s is in l (memoised walk up,
    // O(spans) however deep the tree).
    std::vector<char> below;
    if (op == SpansetOp::kDescendant) {
      below.assign(t_.spans.size(), 2);  // 2: not known yet
      std::vector<int> path;
      for (int s : r) {
        int p = s;
        while (p >= 0 && below[p] == 2) {
          path.push_back(p);
          p = t_.spans[p].parent;
        }
        // Resolve from the top down: a span is below l when its parent is
        // in l or below l.
        char known = p >= 0 ? static_cast<char>(below[p] == 1 || in_[p]) : 0;
        for (auto it = path.rbegin(); it != path.rend(); ++it) {
          below[*it] = known;
          known = static_cast<char>(known || in_[*it]);
        }
        path.clear();
      }
    }
    SpanList out;
    for (int s : r) {
      bool hit = false;
      const int parent = t_.spans[s].parent;
      switch (op) {
        case SpansetOp::kChild: hit = parent >= 0 && in_[parent]; break;
        case SpansetOp::kDescendant: hit = below[s] == 1; break;
        case SpansetOp::kParent:
        case SpansetOp::kAncestor: hit = mark[s] != 0; break;
        case SpansetOp::kSibling:
          // A sibling in l other than s itself.
          hit = parent >= 0 && mark[parent] - (in_[s] ? 1 : 0) > 0;
          break;
        default: break;
      }
      if (hit != negate) out.push_back(s);
    }
    return out;
  }

  bool EvalBool(const FieldExpr& f, int span) { return Truthy(Eval(f, span)); }

 public:
  Value Eval(const FieldExpr& f, int span) {
    switch (f.kind) {
      case FieldExpr::Kind::kBinary: {
        if (f.op == Op::kAnd) return Value::Bool(EvalBool(*f.lhs, span) && EvalBool(*f.rhs, span));
        if (f.op == Op::kOr) return Value::Bool(EvalBool(*f.lhs, span) || EvalBool(*f.rhs, span));
        const bool cmp = f.op == Op::kEq || f.op == Op::kNeq || f.op == Op::kLt || f.op == Op::kLte ||
                         f.op == Op::kGt || f.op == Op::kGte || f.op == Op::kRegex || f.op == Op::kNotRegex;
        if (cmp) {
          std::vector<Value> ls, rs;
          Candidates(*f.lhs, t_, span, &ls);
          Candidates(*f.rhs, t_, span, &rs);
          for (const Value& a : ls) {
            for (const Value& b : rs) {
              if (CompareOp(f.op, a, b, f)) return Value::Bool(true);
            }
          }
          return Value::Bool(false);
        }
        return Arith(f.op, Eval(*f.lhs, span), Eval(*f.rhs, span));
      }
      case FieldExpr::Kind::kUnary: {
        Value v = Eval(*f.lhs, span);
        if (f.op == Op::kNot) return v.type == ValueType::kBool ? Value::Bool(!v.i) : Value::Nil();
        if (v.type == ValueType::kFloat) return Value::Float(-v.f);
        if (v.type == ValueType::kInt) return Value::Int(-v.i);
        if (v.type == ValueType::kDuration) return Value::Duration(-v.i);
        return Value::Nil();
      }
      default: return EvaluateField(f, t_, span);
    }
  }


 private:
  Value EvalScalar(const ScalarExpr& e, const SpanList& spans) {
    switch (e.kind) {
      case ScalarExpr::Kind::kStatic: return e.value;
      case ScalarExpr::Kind::kBinary: return Arith(e.op, EvalScalar(*e.lhs, spans), EvalScalar(*e.rhs, spans));
      case ScalarExpr::Kind::kAggregate: break;
    }
    if (e.aggregate == Aggregate::kCount) return Value::Int(static_cast<int64_t>(spans.size()));
    bool any = false, all_int = true, dur = false;
    double sum = 0, mn = 0, mx = 0;
    size_t n = 0;
    for (int s : spans) {
      Value v = Eval(*e.field, s);
      if (!v.is_numeric()) continue;
      double x = v.AsDouble();
      if (v.type == ValueType::kFloat) all_int = false;
      if (v.type == ValueType::kDuration) dur = true;
      mn = any ? std::min(mn, x) : x;
      mx = any ? std::max(mx, x) : x;
      sum += x;
      ++n;
      any = true;
    }
    if (!any) return Value::Nil();
    double r = e.aggregate == Aggregate::kSum   ? sum
               : e.aggregate == Aggregate::kMin ? mn
               : e.aggregate == Aggregate::kMax ? mx
                                                : sum / static_cast<double>(n);
    if (dur) return Value::Duration(static_cast<int64_t>(std::llround(r)));
    if (all_int && e.aggregate != Aggregate::kAvg) return Value::Int(static_cast<int64_t>(r));
    return Value::Float(r);
  }

  const TraceView& t_;
  std::vector<char> in_;
};

}  // namespace

Value EvaluateField(const FieldExpr& f, const TraceView& t, int span) {
  const SpanView& s = t.spans[span];
  switch (f.kind) {
    case FieldExpr::Kind::kStatic: return f.value;
    case FieldExpr::Kind::kAttribute: {
      const SpanView* target = &s;
      if (f.parent) {
        if (s.parent < 0) return Value::Nil();
        target = &t.spans[s.parent];
      }
      const Value* v = nullptr;
      switch (f.scope) {
        case Scope::kNone:
          v = Find(target->attributes, f.name);
          if (v == nullptr) v = Find(target->resource, f.name);
          break;
        case Scope::kSpan: v = Find(target->attributes, f.name); break;
        case Scope::kResource: v = Find(target->resource, f.name); break;
        case Scope::kInstrumentation: v = Find(target->scope_attributes, f.name); break;
        case Scope::kEvent:
          for (const auto& e : target->events) {
            if ((v = Find(e.attributes, f.name)) != nullptr) break;
          }
          break;
        case Scope::kLink:
          for (const auto& l : target->links) {
            if ((v = Find(l.attributes, f.name)) != nullptr) break;
          }
          break;
      }
      return v ? *v : Value::Nil();
    }
    case FieldExpr::Kind::kIntrinsic:
      switch (f.intrinsic) {
        case Intrinsic::kDuration: return Value::Duration(static_cast<int64_t>(s.duration_ns()));
        case Intrinsic::kName: return Value::String(s.name);
        case Intrinsic::kStatus: return Value::Status(s.status);
        case Intrinsic::kStatusMessage: return Value::String(s.status_message);
        case Intrinsic::kKind: return Value::Kind(s.kind);
        case Intrinsic::kChildCount: return Value::Int(s.child_count);
        case Intrinsic::kParent: return s.parent_id.empty() ? Value::Nil() : Value::String(HexId(s.parent_id));
        case Intrinsic::kRootName: return t.root >= 0 ? Value::String(t.root_name) : Value::Nil();
        case Intrinsic::kRootServiceName: return t.root >= 0 ? Value::String(t.root_service) : Value::Nil();
        case Intrinsic::kTraceDuration: return Value::Duration(static_cast<int64_t>(t.duration_ns()));
        case Intrinsic::kTraceId: return Value::String(HexId(t.trace_id));
        case Intrinsic::kSpanId: return Value::String(HexId(s.span_id));
        case Intrinsic::kParentId: return s.parent_id.empty() ? Value::Nil() : Value::String(HexId(s.parent_id));
        case Intrinsic::kEventName: return s.events.empty() ? Value::Nil() : Value::String(s.events[0].name);
        case Intrinsic::kLinkTraceId: return s.links.empty() ? Value::Nil() : Value::String(HexId(s.links[0].trace_id));
        case Intrinsic::kLinkSpanId: return s.links.empty() ? Value::Nil() : Value::String(HexId(s.links[0].span_id));
        case Intrinsic::kScopeName: return Value::String(s.scope_name);
        case Intrinsic::kScopeVersion: return Value::String(s.scope_version);
        case Intrinsic::kNone: break;
      }
      return Value::Nil();
    case FieldExpr::Kind::kBinary:
    case FieldExpr::Kind::kUnary: return Evaluator(t).Eval(f, span);
  }
  return Value::Nil();
}

Result<TraceView> DecodeTrace(std::span<const SpanRecord> records) {
  TraceView t;
  if (records.empty()) return t;
  t.trace_id = records.front().trace_id;
  t.spans.reserve(records.size());
  pb::trace::v1::ResourceSpans rs;
  for (const SpanRecord& r : records) {
    if (!rs.ParseFromString(r.otlp) || rs.scope_spans_size() != 1 || rs.scope_spans(0).spans_size() != 1) {
      return InvalidArgumentError("span record of trace " + HexId(r.trace_id) + " does not parse");
    }
    t.bytes += r.otlp.size();
    const auto& scope = rs.scope_spans(0).scope();
    const auto& span = rs.scope_spans(0).spans(0);
    SpanView v;
    v.span_id = span.span_id();
    v.parent_id = span.parent_span_id();
    v.name = span.name();
    v.status_message = span.status().message();
    v.kind = span.kind();
    v.status = span.status().code();
    v.start_ns = span.start_time_unix_nano();
    v.end_ns = span.end_time_unix_nano();
    Attrs(span.attributes(), &v.attributes);
    Attrs(rs.resource().attributes(), &v.resource);
    Attrs(scope.attributes(), &v.scope_attributes);
    v.scope_name = scope.name();
    v.scope_version = scope.version();
    if (const Value* svc = Find(v.resource, "service.name"); svc && svc->type == ValueType::kString) v.service = svc->s;
    for (const auto& e : span.events()) {
      SpanView::Event ev{e.name(), e.time_unix_nano(), {}};
      Attrs(e.attributes(), &ev.attributes);
      v.events.push_back(std::move(ev));
    }
    for (const auto& l : span.links()) {
      SpanView::Link lk{l.trace_id(), l.span_id(), {}};
      Attrs(l.attributes(), &lk.attributes);
      v.links.push_back(std::move(lk));
    }
    t.spans.push_back(std::move(v));
  }
  std::stable_sort(t.spans.begin(), t.spans.end(), [](const SpanView& a, const SpanView& b) {
    return a.start_ns != b.start_ns ? a.start_ns < b.start_ns : a.span_id < b.span_id;
  });
  std::unordered_map<std::string, int> by_id;
  for (size_t k = 0; k < t.spans.size(); ++k) by_id.emplace(t.spans[k].span_id, static_cast<int>(k));
  t.start_ns = t.spans.front().start_ns;
  for (size_t k = 0; k < t.spans.size(); ++k) {
    SpanView& s = t.spans[k];
    t.start_ns = std::min(t.start_ns, s.start_ns);
    t.end_ns = std::max(t.end_ns, s.end_ns);
    if (s.parent_id.empty()) {
      if (t.root < 0) t.root = static_cast<int>(k);
      continue;
    }
    auto it = by_id.find(s.parent_id);
    if (it != by_id.end() && it->second != static_cast<int>(k)) {
      s.parent = it->second;
      ++t.spans[it->second].child_count;
    }
  }
  // A cycle of parent ids (bad input) must not loop: cut the link that
  // closes one. Each span is walked once (O(spans)).
  std::vector<int> state(t.spans.size(), 0);  // 0 new, 1 done, k + 2: on the path from k
  for (size_t k = 0; k < t.spans.size(); ++k) {
    const int stamp = static_cast<int>(k) + 2;
    int p = static_cast<int>(k);
    while (p >= 0 && state[p] == 0) {
      state[p] = stamp;
      p = t.spans[p].parent;
    }
    if (p >= 0 && state[p] == stamp) {  // back on this path: a cycle through p
      --t.spans[t.spans[p].parent].child_count;
      t.spans[p].parent = -1;
    }
    for (p = static_cast<int>(k); p >= 0 && state[p] == stamp; p = t.spans[p].parent) state[p] = 1;
  }
  if (t.root >= 0) {
    t.root_name = t.spans[t.root].name;
    t.root_service = t.spans[t.root].service;
  }
  return t;
}

std::vector<Spanset> EvaluateTrace(const Query& query, const TraceView& trace) {
  if (trace.spans.empty()) return {};
  Spanset all;
  all.spans.resize(trace.spans.size());
  for (size_t k = 0; k < all.spans.size(); ++k) all.spans[k] = static_cast<int>(k);
  Evaluator ev(trace);
  return ev.RunPipeline(query.pipeline, {std::move(all)});
}

TraceMatch MatchOf(const Query& query, const TraceView& t, const std::vector<Spanset>& sets,
                   size_t spans_per_spanset) {
  TraceMatch m;
  m.trace_id = t.trace_id;
  m.root_service = t.root >= 0 ? t.root_service : kRootNotReceived;
  m.root_name = t.root >= 0 ? t.root_name : "";
  m.start_ns = t.start_ns;
  m.duration_ns = t.duration_ns();
  m.spans = t.spans.size();
  for (const Spanset& s : sets) {
    MatchedSpanset ms;
    ms.matched = s.spans.size();
    ms.attributes = s.attributes;
    for (int idx : s.spans) {
      if (spans_per_spanset != 0 && ms.spans.size() >= spans_per_spanset) break;
      const SpanView& v = t.spans[idx];
      MatchedSpan sp{v.span_id, v.name, v.start_ns, v.duration_ns(), {}};
      for (const FieldExpr* f : query.fields) {
        // Name and duration are fields of the span itself; the rest attributes.
        if (f->kind == FieldExpr::Kind::kIntrinsic &&
            (f->intrinsic == Intrinsic::kName || f->intrinsic == Intrinsic::kDuration)) {
          continue;
        }
        Value val = EvaluateField(*f, t, idx);
        if (val.is_nil()) continue;
        std::string key = f->kind == FieldExpr::Kind::kAttribute ? f->name : f->ToString();
        sp.attributes.push_back({std::move(key), std::move(val)});
      }
      ms.spans.push_back(std::move(sp));
    }
    m.spansets.push_back(std::move(ms));
  }
  return m;
}

namespace {

bool Indexed(const std::string& key) {
  for (std::string_view k : DefaultIndexedAttributes()) {
    if (k == key) return true;
  }
  return false;
}

// Adds the conditions of `f` that every matching span meets to `req`: the
// operands of a top-level && of equalities (and duration bounds).
void CollectPrefilter(const FieldExpr& f, TraceSearchRequest* req) {
  if (f.kind != FieldExpr::Kind::kBinary) return;
  if (f.op == Op::kAnd) {
    CollectPrefilter(*f.lhs, req);
    CollectPrefilter(*f.rhs, req);
    return;
  }
  const FieldExpr* field = f.lhs.get();
  const FieldExpr* value = f.rhs.get();
  if (field->kind == FieldExpr::Kind::kStatic) std::swap(field, value);
  if (value->kind != FieldExpr::Kind::kStatic) return;
  const Value& v = value->value;
  if (field->kind == FieldExpr::Kind::kIntrinsic) {
    if (f.op == Op::kEq) {
      if (field->intrinsic == Intrinsic::kName && v.type == ValueType::kString) req->name = v.s;
      if (field->intrinsic == Intrinsic::kKind && v.type == ValueType::kKind) req->kind = static_cast<int>(v.i);
      if (field->intrinsic == Intrinsic::kStatus && v.type == ValueType::kStatus) req->status = static_cast<int>(v.i);
    }
    if (field->intrinsic == Intrinsic::kDuration && v.type == ValueType::kDuration && v.i > 0 && field == f.lhs.get()) {
      if (f.op == Op::kGt || f.op == Op::kGte) req->min_duration_ns = std::max<uint64_t>(req->min_duration_ns, v.i);
      if (f.op == Op::kLt || f.op == Op::kLte) req->max_duration_ns = static_cast<uint64_t>(v.i);
    }
    return;
  }
  if (field->kind != FieldExpr::Kind::kAttribute || field->parent || f.op != Op::kEq) return;
  if (field->name == "service.name" && (field->scope == Scope::kResource || field->scope == Scope::kNone) &&
      v.type == ValueType::kString) {
    // Unscoped .service.name may also be a span attribute: only the resource form is sure.
    if (field->scope == Scope::kResource) req->service = v.s;
    return;
  }
  if ((field->scope == Scope::kSpan || field->scope == Scope::kResource || field->scope == Scope::kNone) &&
      Indexed(field->name) && (v.type == ValueType::kString || v.type == ValueType::kInt)) {
    req->attributes.emplace_back(field->name, v.type == ValueType::kString ? v.s : std::to_string(v.i));
  }
}

}  // namespace

TraceSearchRequest Prefilter(const Query& query) {
  TraceSearchRequest req;
  const auto& stages = query.pipeline.stages;
  if (stages.empty() || stages[0].kind != Stage::Kind::kSpanset) return req;
  const SpansetExpr& e = *stages[0].spanset;
  if (e.kind == SpansetExpr::Kind::kFilter && e.filter) CollectPrefilter(*e.filter, &req);
  return req;
}

Result<SearchResult> Search(TraceSource& source, const Query& query, const SearchOptions& o) {
  SearchResult result;
  Status inner;
  TraceSearchRequest prefilter = Prefilter(query);
  const bool latest_first = source.LatestFirst();
  TELKIT_RETURN_IF_ERROR(source.ForEachTrace(o.start_ns, o.end_ns, prefilter, [&](std::span<const SpanRecord> spans) {
    ++result.inspected_traces;
    result.inspected_spans += spans.size();
    Result<TraceView> t = DecodeTrace(spans);
    if (!t.ok()) {
      inner = t.status();
      return false;
    }
    result.inspected_bytes += t->bytes;
    const uint64_t d = t->duration_ns();
    if (d < o.min_duration_ns || (o.max_duration_ns != 0 && d > o.max_duration_ns)) return true;
    std::vector<Spanset> sets = EvaluateTrace(query, *t);
    if (sets.empty()) return true;
    result.traces.push_back(MatchOf(query, *t, sets, o.spans_per_spanset));
    // Latest first: the first `limit` matches are the answer.
    return !(latest_first && o.limit != 0 && result.traces.size() >= o.limit);
  }));
  TELKIT_RETURN_IF_ERROR(inner);
  std::sort(result.traces.begin(), result.traces.end(), [](const TraceMatch& a, const TraceMatch& b) {
    return a.start_ns != b.start_ns ? a.start_ns > b.start_ns : a.trace_id < b.trace_id;
  });
  if (o.limit != 0 && result.traces.size() > o.limit) result.traces.resize(o.limit);
  return result;
}

}  // namespace telkit::traceql
