#include "common/traceql/parser.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace telkit::traceql {
namespace {

enum class Tok { kEof, kLBrace, kRBrace, kLParen, kRParen, kComma, kPipe, kString, kInt, kFloat, kDuration,
                 kIdent, kAttr, kScoped, kOp };

struct Token {
  Tok type = Tok::kEof;
  std::string text;  // ident / op text / string value / attribute name / scoped intrinsic name
  int64_t i = 0;
  double f = 0;
  Scope scope = Scope::kNone;  // kAttr
  bool parent = false;         // kAttr: parent.
  size_t pos = 0;              // byte offset
};

Status ErrorAt(std::string_view text, size_t pos, const std::string& message) {
  int line = 1, col = 1;
  for (size_t k = 0; k < pos && k < text.size(); ++k) {
    if (text[k] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return InvalidArgumentError("parse error at line " + std::to_string(line) + ", col " + std::to_string(col) + ": " +
                              message);
}

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
// Tempo's attribute runes: anything but white space and these.
bool IsAttrChar(char c) {
  if (std::isspace(static_cast<unsigned char>(c))) return false;
  switch (c) {
    case '{': case '}': case '(': case ')': case '=': case '~': case '!': case '<': case '>': case '&': case '|':
    case '^': case ',': case '"':
      return false;
    default:
      return true;
  }
}

const std::map<std::string, Intrinsic, std::less<>>& ScopedIntrinsics() {
  static const auto* m = new std::map<std::string, Intrinsic, std::less<>>{
      {"span:duration", Intrinsic::kDuration},       {"span:name", Intrinsic::kName},
      {"span:status", Intrinsic::kStatus},           {"span:statusMessage", Intrinsic::kStatusMessage},
      {"span:kind", Intrinsic::kKind},               {"span:childCount", Intrinsic::kChildCount},
      {"span:id", Intrinsic::kSpanId},               {"span:parentID", Intrinsic::kParentId},
      {"trace:rootName", Intrinsic::kRootName},      {"trace:rootService", Intrinsic::kRootServiceName},
      {"trace:duration", Intrinsic::kTraceDuration}, {"trace:id", Intrinsic::kTraceId},
      {"event:name", Intrinsic::kEventName},         {"link:traceID", Intrinsic::kLinkTraceId},
      {"link:spanID", Intrinsic::kLinkSpanId},       {"instrumentation:name", Intrinsic::kScopeName},
      {"instrumentation:version", Intrinsic::kScopeVersion},
  };
  return *m;
}

const std::map<std::string, Intrinsic, std::less<>>& Intrinsics() {
  static const auto* m = new std::map<std::string, Intrinsic, std::less<>>{
      {"duration", Intrinsic::kDuration},     {"name", Intrinsic::kName},
      {"status", Intrinsic::kStatus},         {"statusMessage", Intrinsic::kStatusMessage},
      {"kind", Intrinsic::kKind},             {"childCount", Intrinsic::kChildCount},
      {"parent", Intrinsic::kParent},         {"rootName", Intrinsic::kRootName},
      {"rootServiceName", Intrinsic::kRootServiceName}, {"traceDuration", Intrinsic::kTraceDuration},
  };
  return *m;
}

bool StaticKeyword(std::string_view w, Value* v) {
  static const auto* m = new std::map<std::string, Value, std::less<>>{
      {"true", Value::Bool(true)},        {"false", Value::Bool(false)},     {"nil", Value::Nil()},
      {"ok", Value::Status(kStatusOk)},   {"error", Value::Status(kStatusError)},
      {"unset", Value::Status(kStatusUnset)},
      {"unspecified", Value::Kind(0)},    {"internal", Value::Kind(1)},      {"server", Value::Kind(2)},
      {"client", Value::Kind(3)},         {"producer", Value::Kind(4)},      {"consumer", Value::Kind(5)},
  };
  auto it = m->find(w);
  if (it == m->end()) return false;
  *v = it->second;
  return true;
}

}  // namespace

Result<int64_t> ParseGoDuration(std::string_view text) {
  if (text.empty()) return InvalidArgumentError("empty duration");
  if (text == "0") return 0;
  size_t k = 0;
  double total = 0;
  bool any = false;
  while (k < text.size()) {
    size_t start = k;
    while (k < text.size() && (std::isdigit(static_cast<unsigned char>(text[k])) || text[k] == '.')) ++k;
    if (k == start) return InvalidArgumentError("invalid duration '" + std::string(text) + "'");
    double n = std::strtod(std::string(text.substr(start, k - start)).c_str(), nullptr);
    size_t u = k;
    while (k < text.size() && !std::isdigit(static_cast<unsigned char>(text[k])) && text[k] != '.') ++k;
    std::string_view unit = text.substr(u, k - u);
    double mult;
    if (unit == "ns") mult = 1;
    else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs") mult = 1e3;
    else if (unit == "ms") mult = 1e6;
    else if (unit == "s") mult = 1e9;
    else if (unit == "m") mult = 60e9;
    else if (unit == "h") mult = 3600e9;
    else return InvalidArgumentError("invalid duration '" + std::string(text) + "'");
    total += n * mult;
    any = true;
  }
  if (!any || total > 9.2e18) return InvalidArgumentError("invalid duration '" + std::string(text) + "'");
  return static_cast<int64_t>(std::llround(total));
}

namespace {

class Lexer {
 public:
  explicit Lexer(std::string_view text) : t_(text) {}

  Status Run(std::vector<Token>* out) {
    while (true) {
      while (k_ < t_.size() && std::isspace(static_cast<unsigned char>(t_[k_]))) ++k_;
      Token tok;
      tok.pos = k_;
      if (k_ >= t_.size()) {
        out->push_back(tok);
        return OkStatus();
      }
      const char c = t_[k_];
      auto single = [&](Tok type) {
        tok.type = type;
        tok.text = std::string(1, c);
        ++k_;
      };
      if (c == '{') single(Tok::kLBrace);
      else if (c == '}') single(Tok::kRBrace);
      else if (c == '(') single(Tok::kLParen);
      else if (c == ')') single(Tok::kRParen);
      else if (c == ',') single(Tok::kComma);
      else if (c == '"' || c == '`') {
        TELKIT_ASSIGN_OR_RETURN(tok.text, QuotedString());
        tok.type = Tok::kString;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        TELKIT_RETURN_IF_ERROR(Number(&tok));
      } else if (c == '.') {
        ++k_;
        tok.type = Tok::kAttr;
        TELKIT_ASSIGN_OR_RETURN(tok.text, AttrName(tok.pos));
      } else if (IsIdentStart(c)) {
        TELKIT_RETURN_IF_ERROR(Word(&tok));
      } else {
        // Operators, longest first.
        static const char* kOps[] = {"!>>", "!<<", "&&", "||", "!=", "=~", "!~", ">=", "<=", ">>", "<<", "!>",
                                     "!<",  "=",   ">",  "<",  "~",  "!",  "+",  "-",  "*",  "/",  "%",  "^", "|"};
        bool found = false;
        for (const char* op : kOps) {
          std::string_view o(op);
          if (t_.substr(k_, o.size()) == o) {
            tok.type = o == "|" ? Tok::kPipe : Tok::kOp;
            tok.text = std::string(o);
            k_ += o.size();
            found = true;
            break;
          }
        }
        if (!found) return ErrorAt(t_, k_, std::string("syntax error: unexpected character '") + c + "'");
      }
      out->push_back(std::move(tok));
    }
  }

 private:
  Result<std::string> QuotedString() {
    const char quote = t_[k_];
    const size_t start = k_++;
    std::string s;
    while (k_ < t_.size() && t_[k_] != quote) {
      char c = t_[k_++];
      if (c == '\\' && quote == '"') {
        if (k_ >= t_.size()) break;
        char e = t_[k_++];
        switch (e) {
          case 'n': s += '\n'; break;
          case 't': s += '\t'; break;
          case 'r': s += '\r'; break;
          case '\\': s += '\\'; break;
          case '"': s += '"'; break;
          default: s += '\\'; s += e; break;  // kept for regexes: "\d"
        }
      } else {
        s += c;
      }
    }
    if (k_ >= t_.size()) return ErrorAt(t_, start, "syntax error: unterminated string");
    ++k_;
    return s;
  }

  Status Number(Token* tok) {
    const size_t start = k_;
    while (k_ < t_.size() && std::isdigit(static_cast<unsigned char>(t_[k_]))) ++k_;
    bool is_float = false;
    if (k_ + 1 < t_.size() && t_[k_] == '.' && std::isdigit(static_cast<unsigned char>(t_[k_ + 1]))) {
      is_float = true;
      ++k_;
      while (k_ < t_.size() && std::isdigit(static_cast<unsigned char>(t_[k_]))) ++k_;
    }
    if (k_ < t_.size() && (t_[k_] == 'e' || t_[k_] == 'E') && k_ + 1 < t_.size() &&
        (std::isdigit(static_cast<unsigned char>(t_[k_ + 1])) || t_[k_ + 1] == '-' || t_[k_ + 1] == '+')) {
      is_float = true;
      k_ += 2;
      while (k_ < t_.size() && std::isdigit(static_cast<unsigned char>(t_[k_]))) ++k_;
    }
    // A duration: units (and further number+unit groups) follow at once.
    if (k_ < t_.size() && (std::isalpha(static_cast<unsigned char>(t_[k_])) || t_[k_] == '\xc2' || t_[k_] == '\xce')) {
      while (k_ < t_.size() && (std::isalnum(static_cast<unsigned char>(t_[k_])) || t_[k_] == '.' ||
                                static_cast<unsigned char>(t_[k_]) >= 0x80)) {
        ++k_;
      }
      std::string_view text = t_.substr(start, k_ - start);
      auto d = ParseGoDuration(text);
      if (!d.ok()) return ErrorAt(t_, start, "syntax error: invalid duration '" + std::string(text) + "'");
      tok->type = Tok::kDuration;
      tok->i = *d;
      tok->text = std::string(text);
      return OkStatus();
    }
    tok->text = std::string(t_.substr(start, k_ - start));
    if (is_float) {
      tok->type = Tok::kFloat;
      tok->f = std::strtod(tok->text.c_str(), nullptr);
    } else {
      tok->type = Tok::kInt;
      errno = 0;
      tok->i = std::strtoll(tok->text.c_str(), nullptr, 10);
      if (errno == ERANGE) return ErrorAt(t_, start, "syntax error: integer out of range '" + tok->text + "'");
    }
    return OkStatus();
  }

  // The attribute name after "scope." : quoted or a run of attribute runes.
  Result<std::string> AttrName(size_t start) {
    if (k_ < t_.size() && t_[k_] == '"') return QuotedString();
    size_t b = k_;
    while (k_ < t_.size() && IsAttrChar(t_[k_])) ++k_;
    if (k_ == b) return ErrorAt(t_, start, "syntax error: attribute name missing");
    return std::string(t_.substr(b, k_ - b));
  }

  Status Word(Token* tok) {
    const size_t start = k_;
    while (k_ < t_.size() && IsIdentChar(t_[k_])) ++k_;
    std::string word(t_.substr(start, k_ - start));
    if (k_ < t_.size() && t_[k_] == ':') {
      // span:name, trace:rootName, ...
      size_t e = k_ + 1;
      while (e < t_.size() && IsIdentChar(t_[e])) ++e;
      std::string full = word + ":" + std::string(t_.substr(k_ + 1, e - k_ - 1));
      if (!ScopedIntrinsics().contains(full)) {
        return ErrorAt(t_, start, "syntax error: unknown intrinsic '" + full + "'");
      }
      k_ = e;
      tok->type = Tok::kScoped;
      tok->text = full;
      return OkStatus();
    }
    if (k_ < t_.size() && t_[k_] == '.') {
      static const std::map<std::string, Scope, std::less<>> kScopes = {
          {"span", Scope::kSpan},   {"resource", Scope::kResource}, {"event", Scope::kEvent},
          {"link", Scope::kLink},   {"instrumentation", Scope::kInstrumentation}};
      if (word == "parent") {
        tok->parent = true;
        ++k_;
        // parent.span.x, parent.resource.x or parent.x
        size_t e = k_;
        while (e < t_.size() && IsIdentChar(t_[e])) ++e;
        std::string_view next = t_.substr(k_, e - k_);
        if ((next == "span" || next == "resource") && e < t_.size() && t_[e] == '.') {
          tok->scope = next == "span" ? Scope::kSpan : Scope::kResource;
          k_ = e + 1;
        }
        tok->type = Tok::kAttr;
        TELKIT_ASSIGN_OR_RETURN(tok->text, AttrName(start));
        return OkStatus();
      }
      if (auto it = kScopes.find(word); it != kScopes.end()) {
        ++k_;
        tok->type = Tok::kAttr;
        tok->scope = it->second;
        TELKIT_ASSIGN_OR_RETURN(tok->text, AttrName(start));
        return OkStatus();
      }
    }
    tok->type = Tok::kIdent;
    tok->text = word;
    return OkStatus();
  }

  std::string_view t_;
  size_t k_ = 0;
};

int FieldPrec(const std::string& op) {
  if (op == "&&" || op == "||") return 1;
  if (op == "=" || op == "!=" || op == "<" || op == "<=" || op == ">" || op == ">=" || op == "=~" || op == "!~") return 2;
  if (op == "+" || op == "-") return 3;
  if (op == "*" || op == "/" || op == "%") return 5;
  if (op == "^") return 6;
  return -1;
}

Op FieldOp(const std::string& op) {
  static const std::map<std::string, Op> m = {
      {"&&", Op::kAnd}, {"||", Op::kOr},  {"=", Op::kEq},   {"!=", Op::kNeq},     {"<", Op::kLt},
      {"<=", Op::kLte}, {">", Op::kGt},   {">=", Op::kGte}, {"=~", Op::kRegex},   {"!~", Op::kNotRegex},
      {"+", Op::kAdd},  {"-", Op::kSub},  {"*", Op::kMul},  {"/", Op::kDiv},      {"%", Op::kMod},
      {"^", Op::kPow}};
  auto it = m.find(op);
  return it == m.end() ? Op::kNone : it->second;
}

bool IsComparison(Op op) {
  return op == Op::kEq || op == Op::kNeq || op == Op::kLt || op == Op::kLte || op == Op::kGt || op == Op::kGte ||
         op == Op::kRegex || op == Op::kNotRegex;
}

bool IsAggregateWord(const std::string& w) {
  return w == "count" || w == "avg" || w == "min" || w == "max" || w == "sum";
}

// The static type a field expression has when known without data; kNil when
// it depends on the span (attributes).
enum class StaticKind { kUnknown, kNumeric, kString, kBool, kStatus, kKind, kNil };

class Parser {
 public:
  Parser(std::string_view text, std::vector<Token> toks, Query* q) : text_(text), toks_(std::move(toks)), q_(q) {}

  Status ParseQuery() {
    TELKIT_RETURN_IF_ERROR(ParsePipeline(&q_->pipeline));
    if (Peek().type != Tok::kEof) return Unexpected(Peek());
    return OkStatus();
  }

 private:
  const Token& Peek(size_t ahead = 0) const { return toks_[std::min(pos_ + ahead, toks_.size() - 1)]; }
  const Token& Next() { return toks_[std::min(pos_++, toks_.size() - 1)]; }
  bool IsOp(const Token& t, std::string_view op) const { return t.type == Tok::kOp && t.text == op; }

  Status Unexpected(const Token& t) {
    if (t.type == Tok::kEof) return ErrorAt(text_, t.pos, "syntax error: unexpected end of query");
    std::string shown = t.type == Tok::kString ? "\"" + t.text + "\"" : t.text;
    if (t.type == Tok::kAttr) shown = "attribute '" + t.text + "'";
    return ErrorAt(text_, t.pos, "syntax error: unexpected " + (t.type == Tok::kAttr ? shown : "'" + shown + "'"));
  }
  Status Expect(Tok type, const char* what) {
    if (Peek().type != type) {
      const Token& t = Peek();
      if (t.type == Tok::kEof) return ErrorAt(text_, t.pos, std::string("syntax error: unexpected end of query, expected ") + what);
      return ErrorAt(text_, t.pos, "syntax error: unexpected '" + t.text + "', expected " + what);
    }
    ++pos_;
    return OkStatus();
  }

  Status ParsePipeline(Pipeline* p) {
    while (true) {
      Stage stage;
      TELKIT_RETURN_IF_ERROR(ParseStage(&stage, p->stages.empty()));
      p->stages.push_back(std::move(stage));
      if (Peek().type != Tok::kPipe) return OkStatus();
      ++pos_;
    }
  }

  // Whether a scalar filter starts here: an aggregate or a number, maybe
  // behind parentheses.
  bool ScalarAhead() const {
    size_t k = 0;
    while (Peek(k).type == Tok::kLParen) ++k;
    const Token& t = Peek(k);
    if (t.type == Tok::kIdent && IsAggregateWord(t.text)) return true;
    return t.type == Tok::kInt || t.type == Tok::kFloat || t.type == Tok::kDuration;
  }

  Status ParseStage(Stage* stage, bool first) {
    const Token& t = Peek();
    if (t.type == Tok::kIdent && (t.text == "by" || t.text == "select" || t.text == "coalesce")) {
      const std::string word = t.text;
      ++pos_;
      TELKIT_RETURN_IF_ERROR(Expect(Tok::kLParen, "'('"));
      if (word == "coalesce") {
        stage->kind = Stage::Kind::kCoalesce;
      } else {
        stage->kind = word == "by" ? Stage::Kind::kBy : Stage::Kind::kSelect;
        while (true) {
          TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<FieldExpr> f, ParseField(1));
          Note(f.get());
          stage->fields.push_back(std::move(f));
          if (word == "select" && Peek().type == Tok::kComma) {
            ++pos_;
            continue;
          }
          break;
        }
      }
      return Expect(Tok::kRParen, "')'");
    }
    if (ScalarAhead()) {
      if (first) {
        // Tempo accepts a leading scalar filter; over the whole trace here.
      }
      stage->kind = Stage::Kind::kScalarFilter;
      TELKIT_ASSIGN_OR_RETURN(stage->lhs, ParseScalar(0));
      const Token& op = Peek();
      Op cmp = op.type == Tok::kOp ? FieldOp(op.text) : Op::kNone;
      if (!IsComparison(cmp) || cmp == Op::kRegex || cmp == Op::kNotRegex) {
        return op.type == Tok::kEof
                   ? ErrorAt(text_, op.pos, "syntax error: unexpected end of query, expected a comparison")
                   : ErrorAt(text_, op.pos, "syntax error: unexpected '" + op.text + "', expected a comparison");
      }
      ++pos_;
      stage->cmp = cmp;
      TELKIT_ASSIGN_OR_RETURN(stage->rhs, ParseScalar(0));
      return OkStatus();
    }
    stage->kind = Stage::Kind::kSpanset;
    TELKIT_ASSIGN_OR_RETURN(stage->spanset, ParseSpanset(0));
    return OkStatus();
  }

  static int SpansetPrec(const Token& t) {
    if (t.type != Tok::kOp) return -1;
    if (t.text == "&&" || t.text == "||") return 1;
    if (t.text == ">" || t.text == ">>" || t.text == "<" || t.text == "<<" || t.text == "~" || t.text == "!>" ||
        t.text == "!>>" || t.text == "!<" || t.text == "!<<" || t.text == "!~") {
      return 2;
    }
    return -1;
  }

  static SpansetOp SpansetOpOf(const std::string& s) {
    static const std::map<std::string, SpansetOp> m = {
        {"&&", SpansetOp::kAnd},        {"||", SpansetOp::kOr},           {">", SpansetOp::kChild},
        {">>", SpansetOp::kDescendant}, {"<", SpansetOp::kParent},        {"<<", SpansetOp::kAncestor},
        {"~", SpansetOp::kSibling},     {"!>", SpansetOp::kNotChild},     {"!>>", SpansetOp::kNotDescendant},
        {"!<", SpansetOp::kNotParent},  {"!<<", SpansetOp::kNotAncestor}, {"!~", SpansetOp::kNotSibling}};
    return m.at(s);
  }

  Result<std::unique_ptr<SpansetExpr>> ParseSpanset(int min_prec) {
    TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<SpansetExpr> lhs, ParseSpansetPrimary());
    while (true) {
      int prec = SpansetPrec(Peek());
      if (prec < 0 || prec < min_prec) return lhs;
      const std::string op = Next().text;
      TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<SpansetExpr> rhs, ParseSpanset(prec + 1));
      auto node = std::make_unique<SpansetExpr>();
      node->kind = SpansetExpr::Kind::kOperation;
      node->op = SpansetOpOf(op);
      node->lhs = std::move(lhs);
      node->rhs = std::move(rhs);
      lhs = std::move(node);
    }
  }

  struct Depth {
    explicit Depth(int* d) : d_(d) { ++*d_; }
    ~Depth() { --*d_; }
    int* d_;
  };
  static constexpr int kMaxDepth = 100;

  Result<std::unique_ptr<SpansetExpr>> ParseSpansetPrimary() {
    const Token& t = Peek();
    Depth depth(&depth_);
    if (depth_ > kMaxDepth) return ErrorAt(text_, t.pos, "query nested too deeply");
    if (t.type == Tok::kLBrace) {
      ++pos_;
      auto node = std::make_unique<SpansetExpr>();
      node->kind = SpansetExpr::Kind::kFilter;
      if (Peek().type != Tok::kRBrace) {
        filter_start_ = Peek().pos;
        TELKIT_ASSIGN_OR_RETURN(node->filter, ParseField(1));
        TELKIT_RETURN_IF_ERROR(CheckFilter(*node->filter));
      }
      TELKIT_RETURN_IF_ERROR(Expect(Tok::kRBrace, "'}'"));
      return node;
    }
    if (t.type == Tok::kLParen) {
      ++pos_;
      auto p = std::make_unique<Pipeline>();
      TELKIT_RETURN_IF_ERROR(ParsePipeline(p.get()));
      TELKIT_RETURN_IF_ERROR(Expect(Tok::kRParen, "')'"));
      if (p->stages.size() == 1 && p->stages[0].kind == Stage::Kind::kSpanset) return std::move(p->stages[0].spanset);
      auto node = std::make_unique<SpansetExpr>();
      node->kind = SpansetExpr::Kind::kPipeline;
      node->pipeline = std::move(p);
      return node;
    }
    if (t.type == Tok::kIdent && (t.text == "rate" || t.text == "count_over_time" || t.text == "quantile_over_time" ||
                                  t.text == "histogram_over_time" || t.text == "compare")) {
      return ErrorAt(text_, t.pos, "metrics query '" + t.text + "()' is not supported");
    }
    return Unexpected(t);
  }

  // A filter must be boolean: {.a} or {1} are errors, as in Tempo.
  Status CheckFilter(const FieldExpr& f) {
    StaticKind k = KindOf(f);
    if (k == StaticKind::kBool || k == StaticKind::kUnknown) return OkStatus();
    return ErrorAt(text_, filter_start_, "filter does not evaluate to a boolean: " + f.ToString());
  }

  StaticKind KindOf(const FieldExpr& f) const {
    switch (f.kind) {
      case FieldExpr::Kind::kStatic:
        switch (f.value.type) {
          case ValueType::kInt: case ValueType::kFloat: case ValueType::kDuration: return StaticKind::kNumeric;
          case ValueType::kString: return StaticKind::kString;
          case ValueType::kBool: return StaticKind::kBool;
          case ValueType::kStatus: return StaticKind::kStatus;
          case ValueType::kKind: return StaticKind::kKind;
          case ValueType::kNil: return StaticKind::kNil;
        }
        return StaticKind::kUnknown;
      case FieldExpr::Kind::kIntrinsic:
        switch (f.intrinsic) {
          case Intrinsic::kDuration: case Intrinsic::kTraceDuration: case Intrinsic::kChildCount:
            return StaticKind::kNumeric;
          case Intrinsic::kStatus: return StaticKind::kStatus;
          case Intrinsic::kKind: return StaticKind::kKind;
          case Intrinsic::kParent: return StaticKind::kUnknown;
          default: return StaticKind::kString;
        }
      case FieldExpr::Kind::kAttribute: return StaticKind::kUnknown;
      case FieldExpr::Kind::kUnary: return f.op == Op::kNot ? StaticKind::kBool : StaticKind::kNumeric;
      case FieldExpr::Kind::kBinary:
        if (IsComparison(f.op) || f.op == Op::kAnd || f.op == Op::kOr) return StaticKind::kBool;
        return StaticKind::kNumeric;
    }
    return StaticKind::kUnknown;
  }

  // Type checks of a binary field operation, as Tempo's validate().
  Status CheckBinary(const FieldExpr& f, size_t pos) {
    StaticKind l = KindOf(*f.lhs), r = KindOf(*f.rhs);
    auto bad = [&] {
      return ErrorAt(text_, pos, "invalid binary operation: " + f.lhs->ToString() + " " + OpText(f.op) + " " +
                                     f.rhs->ToString());
    };
    if (l == StaticKind::kUnknown || r == StaticKind::kUnknown) return OkStatus();
    if (f.op == Op::kAnd || f.op == Op::kOr) return l == StaticKind::kBool && r == StaticKind::kBool ? OkStatus() : bad();
    if (f.op == Op::kRegex || f.op == Op::kNotRegex) return l == StaticKind::kString && r == StaticKind::kString ? OkStatus() : bad();
    if (l == StaticKind::kNil || r == StaticKind::kNil) {
      return f.op == Op::kEq || f.op == Op::kNeq ? OkStatus() : bad();
    }
    if (IsComparison(f.op)) {
      if (l != r) return bad();
      if ((l == StaticKind::kStatus || l == StaticKind::kKind || l == StaticKind::kBool) && f.op != Op::kEq &&
          f.op != Op::kNeq) {
        return bad();
      }
      return OkStatus();
    }
    // Arithmetic.
    return l == StaticKind::kNumeric && r == StaticKind::kNumeric ? OkStatus() : bad();
  }

  void Note(const FieldExpr* f) {
    if (f->kind == FieldExpr::Kind::kAttribute || f->kind == FieldExpr::Kind::kIntrinsic) {
      std::string s = f->ToString();
      if (noted_.insert(s).second) q_->fields.push_back(f);
      return;
    }
    if (f->lhs) Note(f->lhs.get());
    if (f->rhs) Note(f->rhs.get());
  }

  Result<std::unique_ptr<FieldExpr>> ParseField(int min_prec) {
    TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<FieldExpr> lhs, ParseFieldUnary());
    while (true) {
      const Token& t = Peek();
      if (t.type != Tok::kOp) return lhs;
      int prec = FieldPrec(t.text);
      if (prec < 0 || prec < min_prec) return lhs;
      const size_t op_pos = t.pos;
      const Op op = FieldOp(Next().text);
      // ^ is right-associative; the rest left.
      TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<FieldExpr> rhs, ParseField(op == Op::kPow ? prec : prec + 1));
      auto node = std::make_unique<FieldExpr>();
      node->kind = FieldExpr::Kind::kBinary;
      node->op = op;
      node->lhs = std::move(lhs);
      node->rhs = std::move(rhs);
      TELKIT_RETURN_IF_ERROR(CheckBinary(*node, op_pos));
      if ((op == Op::kRegex || op == Op::kNotRegex) && node->rhs->kind == FieldExpr::Kind::kStatic &&
          node->rhs->value.type == ValueType::kString) {
        RE2::Options opts;
        opts.set_log_errors(false);
        opts.set_dot_nl(true);
        auto re = std::make_shared<RE2>("^(?:" + node->rhs->value.s + ")$", opts);
        if (!re->ok()) {
          return ErrorAt(text_, node->rhs ? op_pos : op_pos, "invalid regular expression \"" + node->rhs->value.s + "\": " + re->error());
        }
        node->regex = std::move(re);
      }
      Note(node.get());
      lhs = std::move(node);
    }
  }

  Result<std::unique_ptr<FieldExpr>> ParseFieldUnary() {
    const Token& t = Peek();
    Depth depth(&depth_);
    if (depth_ > kMaxDepth) return ErrorAt(text_, t.pos, "query nested too deeply");
    if (IsOp(t, "!") || IsOp(t, "-")) {
      const size_t p = t.pos;
      const bool is_not = t.text == "!";
      ++pos_;
      TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<FieldExpr> operand, ParseField(5));
      // -3 and -1.5s are statics.
      if (!is_not && operand->kind == FieldExpr::Kind::kStatic && operand->value.is_numeric()) {
        operand->value.i = -operand->value.i;
        operand->value.f = -operand->value.f;
        return operand;
      }
      StaticKind k = KindOf(*operand);
      if (k != StaticKind::kUnknown && k != (is_not ? StaticKind::kBool : StaticKind::kNumeric)) {
        return ErrorAt(text_, p, std::string("invalid unary operation: ") + (is_not ? "!" : "-") + operand->ToString());
      }
      auto node = std::make_unique<FieldExpr>();
      node->kind = FieldExpr::Kind::kUnary;
      node->op = is_not ? Op::kNot : Op::kSub;
      node->lhs = std::move(operand);
      return node;
    }
    return ParseFieldPrimary();
  }

  Result<std::unique_ptr<FieldExpr>> ParseFieldPrimary() {
    Depth depth(&depth_);
    if (depth_ > kMaxDepth) return ErrorAt(text_, Peek().pos, "query nested too deeply");
    const Token& t = Next();
    auto node = std::make_unique<FieldExpr>();
    switch (t.type) {
      case Tok::kLParen: {
        TELKIT_ASSIGN_OR_RETURN(node, ParseField(1));
        TELKIT_RETURN_IF_ERROR(Expect(Tok::kRParen, "')'"));
        return node;
      }
      case Tok::kString: node->value = Value::String(t.text); return node;
      case Tok::kInt: node->value = Value::Int(t.i); return node;
      case Tok::kFloat: node->value = Value::Float(t.f); return node;
      case Tok::kDuration: node->value = Value::Duration(t.i); return node;
      case Tok::kAttr:
        node->kind = FieldExpr::Kind::kAttribute;
        node->scope = t.scope;
        node->parent = t.parent;
        node->name = t.text;
        return node;
      case Tok::kScoped:
        node->kind = FieldExpr::Kind::kIntrinsic;
        node->intrinsic = ScopedIntrinsics().at(t.text);
        node->name = t.text;
        return node;
      case Tok::kIdent: {
        if (StaticKeyword(t.text, &node->value)) return node;
        if (auto it = Intrinsics().find(t.text); it != Intrinsics().end()) {
          node->kind = FieldExpr::Kind::kIntrinsic;
          node->intrinsic = it->second;
          node->name = t.text;
          return node;
        }
        return ErrorAt(text_, t.pos, "syntax error: unexpected identifier '" + t.text + "'");
      }
      default:
        --pos_;
        return Unexpected(t);
    }
  }

  static int ScalarPrec(const Token& t) {
    if (t.type != Tok::kOp) return -1;
    if (t.text == "+" || t.text == "-") return 1;
    if (t.text == "*" || t.text == "/" || t.text == "%") return 2;
    if (t.text == "^") return 3;
    return -1;
  }

  Result<std::unique_ptr<ScalarExpr>> ParseScalar(int min_prec) {
    TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<ScalarExpr> lhs, ParseScalarPrimary());
    while (true) {
      int prec = ScalarPrec(Peek());
      if (prec < 0 || prec < min_prec) return lhs;
      Op op = FieldOp(Next().text);
      TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<ScalarExpr> rhs, ParseScalar(op == Op::kPow ? prec : prec + 1));
      auto node = std::make_unique<ScalarExpr>();
      node->kind = ScalarExpr::Kind::kBinary;
      node->op = op;
      node->lhs = std::move(lhs);
      node->rhs = std::move(rhs);
      lhs = std::move(node);
    }
  }

  Result<std::unique_ptr<ScalarExpr>> ParseScalarPrimary() {
    Depth depth(&depth_);
    if (depth_ > kMaxDepth) return ErrorAt(text_, Peek().pos, "query nested too deeply");
    const Token& t = Next();
    auto node = std::make_unique<ScalarExpr>();
    switch (t.type) {
      case Tok::kLParen: {
        TELKIT_ASSIGN_OR_RETURN(node, ParseScalar(0));
        TELKIT_RETURN_IF_ERROR(Expect(Tok::kRParen, "')'"));
        return node;
      }
      case Tok::kInt: node->value = Value::Int(t.i); return node;
      case Tok::kFloat: node->value = Value::Float(t.f); return node;
      case Tok::kDuration: node->value = Value::Duration(t.i); return node;
      case Tok::kOp:
        if (t.text == "-" && (Peek().type == Tok::kInt || Peek().type == Tok::kFloat || Peek().type == Tok::kDuration)) {
          const Token& n = Next();
          node->value = n.type == Tok::kInt ? Value::Int(-n.i) : n.type == Tok::kFloat ? Value::Float(-n.f) : Value::Duration(-n.i);
          return node;
        }
        break;
      case Tok::kIdent:
        if (IsAggregateWord(t.text)) {
          node->kind = ScalarExpr::Kind::kAggregate;
          node->aggregate = t.text == "count" ? Aggregate::kCount
                            : t.text == "avg" ? Aggregate::kAvg
                            : t.text == "min" ? Aggregate::kMin
                            : t.text == "max" ? Aggregate::kMax
                                              : Aggregate::kSum;
          TELKIT_RETURN_IF_ERROR(Expect(Tok::kLParen, "'('"));
          if (node->aggregate != Aggregate::kCount) {
            TELKIT_ASSIGN_OR_RETURN(node->field, ParseField(1));
            StaticKind k = KindOf(*node->field);
            if (k != StaticKind::kUnknown && k != StaticKind::kNumeric) {
              return ErrorAt(text_, t.pos, "aggregate field must be numeric: " + node->field->ToString());
            }
            Note(node->field.get());
          }
          TELKIT_RETURN_IF_ERROR(Expect(Tok::kRParen, "')'"));
          return node;
        }
        break;
      default: break;
    }
    --pos_;
    return Unexpected(t);
  }

  std::string_view text_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  Query* q_;
  size_t filter_start_ = 0;
  int depth_ = 0;
  std::set<std::string> noted_;
};

}  // namespace

Result<std::unique_ptr<Query>> Parse(std::string_view text) {
  std::vector<Token> toks;
  TELKIT_RETURN_IF_ERROR(Lexer(text).Run(&toks));
  auto q = std::make_unique<Query>();
  q->text = std::string(text);
  Parser p(text, std::move(toks), q.get());
  TELKIT_RETURN_IF_ERROR(p.ParseQuery());
  return q;
}

}  // namespace telkit::traceql
