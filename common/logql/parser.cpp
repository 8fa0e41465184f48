#include "common/logql/parser.h"

#include <re2/re2.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>

#include "common/logql/pipeline.h"

namespace telkit::logql {

namespace {

enum class Tok { kEof, kIdent, kString, kNumber, kPunct };

struct Token {
  Tok kind = Tok::kEof;
  std::string text;  // identifier, unquoted string, number text, punctuation
  size_t pos = 0;
};

Status LexError(std::string_view src, size_t pos, const std::string& msg) {
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < pos && i < src.size(); ++i) {
    if (src[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return InvalidArgumentError("parse error at line " + std::to_string(line) + ", col " +
                              std::to_string(pos - line_start + 1) + ": " + msg);
}

Result<std::vector<Token>> Lex(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  auto is_ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '#') {
      while (i < s.size() && s[i] != '\n') ++i;
      continue;
    }
    Token t;
    t.pos = i;
    if (c == '"' || c == '`') {
      std::string v;
      size_t j = i + 1;
      bool closed = false;
      while (j < s.size()) {
        char d = s[j];
        if (d == c) {
          closed = true;
          ++j;
          break;
        }
        if (c == '"' && d == '\\') {
          if (j + 1 >= s.size()) break;
          char e = s[j + 1];
          j += 2;
          switch (e) {
            case 'n': v.push_back('\n'); break;
            case 't': v.push_back('\t'); break;
            case 'r': v.push_back('\r'); break;
            case 'a': v.push_back('\a'); break;
            case 'b': v.push_back('\b'); break;
            case 'f': v.push_back('\f'); break;
            case 'v': v.push_back('\v'); break;
            case '\\': v.push_back('\\'); break;
            case '"': v.push_back('"'); break;
            case '\'': v.push_back('\''); break;
            case 'x': case 'u': case 'U': {
              int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
              if (j + n > s.size()) return LexError(s, j, "invalid escape in string");
              uint32_t cp = std::strtoul(std::string(s.substr(j, n)).c_str(), nullptr, 16);
              j += n;
              if (e == 'x') {
                v.push_back(static_cast<char>(cp));
              } else if (cp < 0x80) {
                v.push_back(static_cast<char>(cp));
              } else if (cp < 0x800) {
                v.push_back(static_cast<char>(0xC0 | (cp >> 6)));
                v.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
              } else if (cp < 0x10000) {
                v.push_back(static_cast<char>(0xE0 | (cp >> 12)));
                v.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
                v.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
              } else {
                v.push_back(static_cast<char>(0xF0 | (cp >> 18)));
                v.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
                v.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
                v.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
              }
              break;
            }
            default: return LexError(s, j - 2, "invalid escape sequence '\\" + std::string(1, e) + "' in string");
          }
          continue;
        }
        v.push_back(d);
        ++j;
      }
      if (!closed) return LexError(s, i, "unterminated string");
      t.kind = Tok::kString;
      t.text = std::move(v);
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '.' ||
                              static_cast<unsigned char>(s[j]) >= 0x80)) {
        // 1e-3: a sign right after an exponent belongs to the number.
        ++j;
        if (j < s.size() && (s[j] == '-' || s[j] == '+') && (s[j - 1] == 'e' || s[j - 1] == 'E') &&
            j + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
          bool hex = s.substr(i, 2) == "0x";
          if (!hex) ++j;
        }
      }
      t.kind = Tok::kNumber;
      t.text = std::string(s.substr(i, j - i));
      i = j;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && is_ident(s[j])) ++j;
      t.kind = Tok::kIdent;
      t.text = std::string(s.substr(i, j - i));
      i = j;
    } else {
      static const char* kTwo[] = {"|=", "|~", "|>", "!=", "!~", "=~", "==", ">=", "<="};
      std::string_view two = s.substr(i, 2);
      bool matched = false;
      for (const char* p : kTwo) {
        if (two == p) {
          t.text = p;
          matched = true;
          break;
        }
      }
      if (!matched) {
        if (std::string_view("{}()[],|=<>+-*/%^").find(c) == std::string_view::npos) {
          return LexError(s, i, "syntax error: unexpected character '" + std::string(1, c) + "'");
        }
        t.text = std::string(1, c);
      }
      t.kind = Tok::kPunct;
      i += t.text.size();
    }
    out.push_back(std::move(t));
  }
  Token eof;
  eof.pos = s.size();
  out.push_back(eof);
  return out;
}

const std::map<std::string, RangeOp>& RangeOps() {
  static const auto* m = new std::map<std::string, RangeOp>{
      {"count_over_time", RangeOp::kCount},   {"rate", RangeOp::kRate},
      {"bytes_over_time", RangeOp::kBytes},   {"bytes_rate", RangeOp::kBytesRate},
      {"absent_over_time", RangeOp::kAbsent}, {"sum_over_time", RangeOp::kSum},
      {"avg_over_time", RangeOp::kAvg},       {"min_over_time", RangeOp::kMin},
      {"max_over_time", RangeOp::kMax},       {"stddev_over_time", RangeOp::kStddev},
      {"stdvar_over_time", RangeOp::kStdvar}, {"quantile_over_time", RangeOp::kQuantile},
      {"first_over_time", RangeOp::kFirst},   {"last_over_time", RangeOp::kLast},
      {"rate_counter", RangeOp::kRateCounter}};
  return *m;
}

const std::map<std::string, AggOp>& AggOps() {
  static const auto* m = new std::map<std::string, AggOp>{
      {"sum", AggOp::kSum},       {"avg", AggOp::kAvg},         {"min", AggOp::kMin},
      {"max", AggOp::kMax},       {"count", AggOp::kCount},     {"stddev", AggOp::kStddev},
      {"stdvar", AggOp::kStdvar}, {"topk", AggOp::kTopk},       {"bottomk", AggOp::kBottomk},
      {"sort", AggOp::kSort},     {"sort_desc", AggOp::kSortDesc}};
  return *m;
}

bool IsStageKeyword(const std::string& s) {
  return s == "json" || s == "logfmt" || s == "regexp" || s == "pattern" || s == "unpack" || s == "line_format" ||
         s == "label_format" || s == "drop" || s == "keep" || s == "decolorize" || s == "unwrap";
}

class Parser {
 public:
  Parser(std::string_view src, std::vector<Token> toks) : src_(src), toks_(std::move(toks)) {}

  Result<std::unique_ptr<Expr>> Parse() {
    TELKIT_ASSIGN_OR_RETURN(auto e, ParseBinary(0));
    if (Peek().kind != Tok::kEof) return Unexpected(Peek());
    return e;
  }

 private:
  const Token& Peek(size_t k = 0) const { return toks_[std::min(p_ + k, toks_.size() - 1)]; }
  Token Next() {
    Token t = Peek();
    if (p_ < toks_.size() - 1) ++p_;
    return t;
  }
  bool IsPunct(const char* s, size_t k = 0) const { return Peek(k).kind == Tok::kPunct && Peek(k).text == s; }
  bool IsIdent(const char* s, size_t k = 0) const { return Peek(k).kind == Tok::kIdent && Peek(k).text == s; }
  Status Err(const Token& t, const std::string& msg) const { return LexError(src_, t.pos, msg); }
  Status Unexpected(const Token& t) const {
    std::string what;
    switch (t.kind) {
      case Tok::kEof: what = "end of input"; break;
      case Tok::kIdent: what = "IDENTIFIER"; break;
      case Tok::kString: what = "STRING"; break;
      case Tok::kNumber: what = "NUMBER"; break;
      case Tok::kPunct: what = t.text; break;
    }
    return Err(t, "syntax error: unexpected " + what);
  }
  Status Expect(const char* punct) {
    if (!IsPunct(punct)) return Err(Peek(), std::string("syntax error: unexpected ") + Describe(Peek()) +
                                                ", expecting " + punct);
    Next();
    return OkStatus();
  }
  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEof: return "end of input";
      case Tok::kIdent: return "IDENTIFIER";
      case Tok::kString: return "STRING";
      case Tok::kNumber: return "NUMBER";
      case Tok::kPunct: return t.text;
    }
    return "";
  }

  // ---- binary expressions ----

  static int Precedence(const Token& t, BinOp* op) {
    if (t.kind == Tok::kIdent) {
      if (t.text == "or") return *op = BinOp::kOr, 1;
      if (t.text == "and") return *op = BinOp::kAnd, 2;
      if (t.text == "unless") return *op = BinOp::kUnless, 2;
      return 0;
    }
    if (t.kind != Tok::kPunct) return 0;
    static const std::map<std::string, std::pair<BinOp, int>> kOps = {
        {"==", {BinOp::kEq, 3}}, {"!=", {BinOp::kNe, 3}},  {">", {BinOp::kGt, 3}},  {">=", {BinOp::kGe, 3}},
        {"<", {BinOp::kLt, 3}},  {"<=", {BinOp::kLe, 3}},  {"+", {BinOp::kAdd, 4}}, {"-", {BinOp::kSub, 4}},
        {"*", {BinOp::kMul, 5}}, {"/", {BinOp::kDiv, 5}},  {"%", {BinOp::kMod, 5}}, {"^", {BinOp::kPow, 6}}};
    auto it = kOps.find(t.text);
    if (it == kOps.end()) return 0;
    *op = it->second.first;
    return it->second.second;
  }

  Result<std::unique_ptr<Expr>> ParseBinary(int min_prec) {
    TELKIT_ASSIGN_OR_RETURN(auto lhs, ParseUnary());
    while (true) {
      BinOp op;
      int prec = Precedence(Peek(), &op);
      if (prec == 0 || prec < min_prec) break;
      Token op_tok = Next();
      auto e = std::make_unique<Expr>();
      e->kind = Expr::Kind::kBinary;
      e->bin_op = op;
      bool comparison = op >= BinOp::kEq && op <= BinOp::kLe;
      if (IsIdent("bool")) {
        if (!comparison) return Err(Peek(), "bool modifier can only be used on comparison operators");
        Next();
        e->return_bool = true;
      }
      if (IsIdent("on") || IsIdent("ignoring")) {
        e->has_matching = true;
        e->on = Next().text == "on";
        TELKIT_RETURN_IF_ERROR(ParseLabelList(&e->matching));
        if (IsIdent("group_left") || IsIdent("group_right")) {
          e->card = Next().text == "group_left" ? Expr::Card::kManyToOne : Expr::Card::kOneToMany;
          if (IsPunct("(")) TELKIT_RETURN_IF_ERROR(ParseLabelList(&e->include));
        }
      }
      int next_min = op == BinOp::kPow ? prec : prec + 1;
      TELKIT_ASSIGN_OR_RETURN(auto rhs, ParseBinary(next_min));
      if (lhs->IsLog() || rhs->IsLog()) {
        return Err(op_tok, "unexpected log query in binary operation: a binary operation needs metric queries");
      }
      bool lscalar = lhs->kind == Expr::Kind::kNumber, rscalar = rhs->kind == Expr::Kind::kNumber;
      if (comparison && lscalar && rscalar && !e->return_bool) {
        return Err(op_tok, "comparisons between scalars must use BOOL modifier");
      }
      if ((op == BinOp::kAnd || op == BinOp::kOr || op == BinOp::kUnless) && (lscalar || rscalar)) {
        return Err(op_tok, "set operator not allowed in binary scalar expression");
      }
      e->lhs = std::move(lhs);
      e->rhs = std::move(rhs);
      lhs = std::move(e);
    }
    return lhs;
  }

  Result<std::unique_ptr<Expr>> ParseUnary() {
    if (IsPunct("-") || IsPunct("+")) {
      bool neg = Next().text == "-";
      TELKIT_ASSIGN_OR_RETURN(auto e, ParseUnary());
      if (!neg) return e;
      if (e->kind == Expr::Kind::kNumber) {
        e->number = -e->number;
        return e;
      }
      auto m = std::make_unique<Expr>();
      m->kind = Expr::Kind::kBinary;
      m->bin_op = BinOp::kMul;
      m->lhs = std::make_unique<Expr>();
      m->lhs->number = -1;
      m->rhs = std::move(e);
      return m;
    }
    return ParsePrimary();
  }

  Result<double> ParseNumber(const Token& t) {
    std::string s = t.text;
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size()) return Err(t, "syntax error: invalid number '" + s + "'");
    return v;
  }

  Result<std::unique_ptr<Expr>> ParsePrimary() {
    const Token& t = Peek();
    if (t.kind == Tok::kNumber) {
      Token n = Next();
      auto e = std::make_unique<Expr>();
      e->kind = Expr::Kind::kNumber;
      TELKIT_ASSIGN_OR_RETURN(e->number, ParseNumber(n));
      return e;
    }
    if (IsPunct("(")) {
      Next();
      TELKIT_ASSIGN_OR_RETURN(auto e, ParseBinary(0));
      TELKIT_RETURN_IF_ERROR(Expect(")"));
      return e;
    }
    if (IsPunct("{")) {
      auto e = std::make_unique<Expr>();
      e->kind = Expr::Kind::kLog;
      TELKIT_RETURN_IF_ERROR(ParseSelector(&e->selector));
      TELKIT_RETURN_IF_ERROR(ParsePipeline(&e->selector.stages, nullptr));
      if (IsPunct("[")) return Err(Peek(), "syntax error: unexpected RANGE: a range needs a range aggregation such "
                                           "as count_over_time");
      return e;
    }
    if (t.kind == Tok::kIdent) {
      if (RangeOps().count(t.text)) return ParseRangeAgg();
      if (AggOps().count(t.text)) return ParseVectorAgg();
      if (t.text == "vector") {
        Next();
        TELKIT_RETURN_IF_ERROR(Expect("("));
        const Token& n = Peek();
        if (n.kind != Tok::kNumber) return Unexpected(n);
        auto e = std::make_unique<Expr>();
        e->kind = Expr::Kind::kVector;
        TELKIT_ASSIGN_OR_RETURN(e->number, ParseNumber(Next()));
        TELKIT_RETURN_IF_ERROR(Expect(")"));
        return e;
      }
    }
    return Unexpected(t);
  }

  Status ParseLabelList(std::vector<std::string>* out) {
    TELKIT_RETURN_IF_ERROR(Expect("("));
    while (!IsPunct(")")) {
      if (Peek().kind != Tok::kIdent) return Unexpected(Peek());
      out->push_back(Next().text);
      if (IsPunct(",")) {
        Next();
        continue;
      }
      if (!IsPunct(")")) return Unexpected(Peek());
    }
    Next();
    return OkStatus();
  }

  Status ParseGrouping(Grouping* g) {
    g->present = true;
    g->without = Next().text == "without";
    return ParseLabelList(&g->labels);
  }

  // ---- aggregations ----

  Result<std::unique_ptr<Expr>> ParseRangeAgg() {
    Token name = Next();
    auto e = std::make_unique<Expr>();
    e->kind = Expr::Kind::kRange;
    e->range_op = RangeOps().at(name.text);
    TELKIT_RETURN_IF_ERROR(Expect("("));
    if (e->range_op == RangeOp::kQuantile) {
      if (Peek().kind != Tok::kNumber) return Err(Peek(), "syntax error: quantile_over_time needs a parameter");
      TELKIT_ASSIGN_OR_RETURN(e->param, ParseNumber(Next()));
      TELKIT_RETURN_IF_ERROR(Expect(","));
    }
    // The log range: selector [range] pipeline, selector pipeline [range],
    // or (selector pipeline) [range]; then an optional offset.
    bool paren = false;
    if (IsPunct("(")) {
      paren = true;
      Next();
    }
    if (!IsPunct("{")) return Unexpected(Peek());
    TELKIT_RETURN_IF_ERROR(ParseSelector(&e->selector));
    bool have_range = false;
    if (!paren && IsPunct("[")) {
      TELKIT_RETURN_IF_ERROR(ParseRange(&e->range_ns));
      have_range = true;
    }
    TELKIT_RETURN_IF_ERROR(ParsePipeline(&e->selector.stages, &e->unwrap));
    if (paren) TELKIT_RETURN_IF_ERROR(Expect(")"));
    if (!have_range) {
      if (!IsPunct("[")) return Err(Peek(), "syntax error: unexpected " + Describe(Peek()) + ", expecting [");
      TELKIT_RETURN_IF_ERROR(ParseRange(&e->range_ns));
    }
    if (IsIdent("offset")) {
      Next();
      if (Peek().kind != Tok::kNumber) return Unexpected(Peek());
      Token d = Next();
      auto off = ParseRangeDuration(d.text);
      if (!off.ok()) return Err(d, off.status().message());
      e->offset_ns = *off;
    }
    TELKIT_RETURN_IF_ERROR(Expect(")"));
    if (IsIdent("by") || IsIdent("without")) TELKIT_RETURN_IF_ERROR(ParseGrouping(&e->grouping));

    bool needs_unwrap = e->range_op != RangeOp::kCount && e->range_op != RangeOp::kRate &&
                        e->range_op != RangeOp::kBytes && e->range_op != RangeOp::kBytesRate &&
                        e->range_op != RangeOp::kAbsent;
    bool allows_unwrap = needs_unwrap || e->range_op == RangeOp::kRate;
    if (needs_unwrap && !e->unwrap) {
      return InvalidArgumentError("invalid aggregation " + name.text + " without unwrap");
    }
    if (!allows_unwrap && e->unwrap) {
      return InvalidArgumentError("invalid aggregation " + name.text + " with unwrap");
    }
    if (e->grouping.present) {
      bool grouping_ok = e->range_op == RangeOp::kAvg || e->range_op == RangeOp::kMin ||
                         e->range_op == RangeOp::kMax || e->range_op == RangeOp::kStddev ||
                         e->range_op == RangeOp::kStdvar || e->range_op == RangeOp::kQuantile ||
                         e->range_op == RangeOp::kFirst || e->range_op == RangeOp::kLast;
      if (!grouping_ok) return InvalidArgumentError("grouping not allowed for " + name.text + " aggregation");
    }
    return e;
  }

  Status ParseRange(int64_t* ns) {
    TELKIT_RETURN_IF_ERROR(Expect("["));
    if (Peek().kind != Tok::kNumber) return Unexpected(Peek());
    Token d = Next();
    auto r = ParseRangeDuration(d.text);
    if (!r.ok()) return Err(d, r.status().message());
    if (*r <= 0) return Err(d, "range must be positive");
    *ns = *r;
    return Expect("]");
  }

  Result<std::unique_ptr<Expr>> ParseVectorAgg() {
    Token name = Next();
    auto e = std::make_unique<Expr>();
    e->kind = Expr::Kind::kVectorAgg;
    e->agg_op = AggOps().at(name.text);
    if (IsIdent("by") || IsIdent("without")) TELKIT_RETURN_IF_ERROR(ParseGrouping(&e->grouping));
    TELKIT_RETURN_IF_ERROR(Expect("("));
    if (e->agg_op == AggOp::kTopk || e->agg_op == AggOp::kBottomk) {
      if (Peek().kind != Tok::kNumber) return Err(Peek(), "syntax error: " + name.text + " needs a parameter");
      Token n = Next();
      TELKIT_ASSIGN_OR_RETURN(e->param, ParseNumber(n));
      if (e->param != std::floor(e->param) || e->param <= 0) {
        return Err(n, "invalid parameter for " + name.text + ": must be a positive integer");
      }
      TELKIT_RETURN_IF_ERROR(Expect(","));
    }
    TELKIT_ASSIGN_OR_RETURN(e->lhs, ParseBinary(0));
    TELKIT_RETURN_IF_ERROR(Expect(")"));
    if (IsIdent("by") || IsIdent("without")) {
      if (e->grouping.present) return Err(Peek(), "syntax error: grouping given twice");
      TELKIT_RETURN_IF_ERROR(ParseGrouping(&e->grouping));
    }
    if (e->lhs->IsLog()) {
      return InvalidArgumentError("unexpected log query in vector aggregation " + name.text +
                                  ": wrap it in a range aggregation such as count_over_time");
    }
    if ((e->agg_op == AggOp::kSort || e->agg_op == AggOp::kSortDesc) && e->grouping.present) {
      return InvalidArgumentError(name.text + " does not take a grouping");
    }
    return e;
  }

  // ---- log selectors and pipelines ----

  Status ParseSelector(LogSelector* sel) {
    Token open = Next();  // {
    while (!IsPunct("}")) {
      if (Peek().kind != Tok::kIdent) return Unexpected(Peek());
      Token name = Next();
      const Token& op = Peek();
      MatchType mt;
      if (op.kind == Tok::kPunct && op.text == "=") mt = MatchType::kEqual;
      else if (op.kind == Tok::kPunct && op.text == "!=") mt = MatchType::kNotEqual;
      else if (op.kind == Tok::kPunct && op.text == "=~") mt = MatchType::kRegexMatch;
      else if (op.kind == Tok::kPunct && op.text == "!~") mt = MatchType::kRegexNoMatch;
      else return Unexpected(op);
      Next();
      if (Peek().kind != Tok::kString) return Unexpected(Peek());
      Token val = Next();
      auto m = LabelMatcher::Make(mt, name.text, val.text);
      if (!m.ok()) return Err(val, m.status().message());
      sel->matchers.push_back(std::move(*m));
      if (IsPunct(",")) {
        Next();
        continue;
      }
      if (!IsPunct("}")) return Unexpected(Peek());
    }
    Next();
    bool ok = false;
    for (const LabelMatcher& m : sel->matchers) ok = ok || !m.MatchesEmpty();
    if (!ok) {
      return Err(open,
                 "queries require at least one regexp or equality matcher that does not have an empty-compatible "
                 "value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will");
    }
    return OkStatus();
  }

  // Stages until something that is not part of a pipeline. With `unwrap`
  // non-null, `| unwrap` is accepted (range aggregations).
  Status ParsePipeline(std::vector<Stage>* stages, std::optional<Unwrap>* unwrap) {
    while (true) {
      const Token& t = Peek();
      if (t.kind != Tok::kPunct) return OkStatus();
      if (t.text == "|=" || t.text == "!=" || t.text == "|~" || t.text == "!~") {
        if (unwrap && *unwrap) return Err(t, "syntax error: only label filters may follow unwrap");
        Token op = Next();
        Stage st;
        st.kind = Stage::Kind::kLineFilter;
        st.line_filter.op = op.text == "|=" ? LineFilterOp::kContains
                            : op.text == "!=" ? LineFilterOp::kNotContains
                            : op.text == "|~" ? LineFilterOp::kRegex
                                              : LineFilterOp::kNotRegex;
        while (true) {
          if (Peek().kind == Tok::kIdent && Peek().text == "ip") return Err(Peek(), "ip() line filters are not supported");
          if (Peek().kind != Tok::kString) return Unexpected(Peek());
          Token v = Next();
          if (st.line_filter.op == LineFilterOp::kRegex || st.line_filter.op == LineFilterOp::kNotRegex) {
            RE2::Options o;
            o.set_log_errors(false);
            o.set_dot_nl(true);
            auto re = std::make_shared<RE2>(v.text, o);
            if (!re->ok()) return Err(v, "invalid regex '" + v.text + "': " + re->error());
            st.line_filter.regexes.push_back(std::move(re));
          }
          st.line_filter.values.push_back(v.text);
          if (IsIdent("or") && Peek(1).kind == Tok::kString) {
            Next();
            continue;
          }
          break;
        }
        stages->push_back(std::move(st));
        continue;
      }
      if (t.text != "|") return OkStatus();
      Next();
      const Token& k = Peek();
      if (k.kind == Tok::kIdent && IsStageKeyword(k.text) && !IsLabelFilterStart()) {
        if (unwrap && *unwrap) return Err(k, "syntax error: only label filters may follow unwrap");
        if (k.text == "unwrap") {
          if (!unwrap) return Err(k, "syntax error: unwrap is only allowed in a range aggregation");
          TELKIT_RETURN_IF_ERROR(ParseUnwrap(unwrap));
          continue;
        }
        Stage st;
        TELKIT_RETURN_IF_ERROR(ParseStage(&st));
        stages->push_back(std::move(st));
        continue;
      }
      if (k.kind == Tok::kIdent || (k.kind == Tok::kPunct && k.text == "(")) {
        Stage st;
        st.kind = Stage::Kind::kLabelFilter;
        size_t start = k.pos;
        TELKIT_ASSIGN_OR_RETURN(auto f, ParseLabelFilterOr());
        st.label_filter = std::move(f);
        st.text = std::string(src_.substr(start, Peek().pos - start));
        if (unwrap && *unwrap) {
          (*unwrap)->post_filters.push_back(std::move(st));
        } else {
          stages->push_back(std::move(st));
        }
        continue;
      }
      return Unexpected(k);
    }
  }

  // A keyword used as a label name: `| json = "x"`.
  bool IsLabelFilterStart() const {
    const Token& n = Peek(1);
    return n.kind == Tok::kPunct &&
           (n.text == "=" || n.text == "!=" || n.text == "=~" || n.text == "!~" || n.text == "==" ||
            n.text == ">" || n.text == ">=" || n.text == "<" || n.text == "<=");
  }

  Status ParseUnwrap(std::optional<Unwrap>* unwrap) {
    Next();  // unwrap
    Unwrap u;
    if (Peek().kind != Tok::kIdent) return Unexpected(Peek());
    Token n = Next();
    if (IsPunct("(") && (n.text == "duration" || n.text == "duration_seconds" || n.text == "bytes")) {
      Next();
      u.conv = n.text == "bytes" ? UnwrapConv::kBytes : UnwrapConv::kDuration;
      if (Peek().kind != Tok::kIdent) return Unexpected(Peek());
      u.label = Next().text;
      TELKIT_RETURN_IF_ERROR(Expect(")"));
    } else {
      u.label = n.text;
    }
    *unwrap = std::move(u);
    return OkStatus();
  }

  Result<std::shared_ptr<const re2::RE2>> CompileRegex(const Token& v) {
    RE2::Options o;
    o.set_log_errors(false);
    auto re = std::make_shared<RE2>(v.text, o);
    if (!re->ok()) return Err(v, "invalid regex '" + v.text + "': " + re->error());
    return std::shared_ptr<const re2::RE2>(std::move(re));
  }

  Status ParseStage(Stage* st) {
    Token k = Next();
    size_t start = k.pos;
    const std::string& kw = k.text;
    if (kw == "json" || kw == "logfmt") {
      st->kind = kw == "json" ? Stage::Kind::kJson : Stage::Kind::kLogfmt;
      if (kw == "logfmt") {
        while (IsPunct("-") && IsPunct("-", 1) && Peek(2).kind == Tok::kIdent) {
          Next();
          Next();
          Token f = Next();
          if (f.text == "strict") st->logfmt_strict = true;
          else if (f.text == "keep_empty") st->logfmt_keep_empty = true;
          else return Err(f, "unknown logfmt flag '--" + f.text + "'");
        }
      }
      while (Peek().kind == Tok::kIdent) {
        Token name = Next();
        JsonParam p;
        p.label = name.text;
        std::string expr = name.text;
        if (IsPunct("=")) {
          Next();
          if (Peek().kind != Tok::kString) return Unexpected(Peek());
          expr = Next().text;
        }
        if (st->kind == Stage::Kind::kLogfmt) {
          p.path = {expr};
        } else {
          TELKIT_RETURN_IF_ERROR(ParseJsonPath(name, expr, &p.path));
        }
        st->json_params.push_back(std::move(p));
        if (IsPunct(",")) {
          Next();
          continue;
        }
        break;
      }
    } else if (kw == "regexp") {
      st->kind = Stage::Kind::kRegexp;
      if (Peek().kind != Tok::kString) return Unexpected(Peek());
      Token v = Next();
      TELKIT_ASSIGN_OR_RETURN(st->regexp, CompileRegex(v));
      if (st->regexp->NamedCapturingGroups().empty()) {
        return Err(v, "at least one named capture must be supported");
      }
      for (const auto& [name, idx] : st->regexp->NamedCapturingGroups()) {
        if (!IsValidLabelName(name)) return Err(v, "invalid extracted label name '" + name + "'");
      }
    } else if (kw == "pattern") {
      st->kind = Stage::Kind::kPattern;
      if (Peek().kind != Tok::kString) return Unexpected(Peek());
      Token v = Next();
      TELKIT_RETURN_IF_ERROR(ParsePattern(v, st));
    } else if (kw == "unpack") {
      st->kind = Stage::Kind::kUnpack;
    } else if (kw == "decolorize") {
      st->kind = Stage::Kind::kDecolorize;
    } else if (kw == "line_format") {
      st->kind = Stage::Kind::kLineFormat;
      if (Peek().kind != Tok::kString) return Unexpected(Peek());
      Token v = Next();
      auto t = ParseTemplate(v.text);
      if (!t.ok()) return Err(v, t.status().message());
      st->tmpl = *t;
    } else if (kw == "label_format") {
      st->kind = Stage::Kind::kLabelFormat;
      while (true) {
        if (Peek().kind != Tok::kIdent) return Unexpected(Peek());
        LabelFormatItem it;
        it.dst = Next().text;
        TELKIT_RETURN_IF_ERROR(Expect("="));
        if (Peek().kind == Tok::kIdent) {
          it.rename = true;
          it.src = Next().text;
        } else if (Peek().kind == Tok::kString) {
          Token v = Next();
          auto t = ParseTemplate(v.text);
          if (!t.ok()) return Err(v, t.status().message());
          it.tmpl = *t;
        } else {
          return Unexpected(Peek());
        }
        for (const LabelFormatItem& o : st->label_format) {
          if (o.dst == it.dst) return Err(k, "multiple label name '" + it.dst + "' in label_format");
        }
        st->label_format.push_back(std::move(it));
        if (IsPunct(",")) {
          Next();
          continue;
        }
        break;
      }
    } else if (kw == "drop" || kw == "keep") {
      st->kind = kw == "drop" ? Stage::Kind::kDrop : Stage::Kind::kKeep;
      while (true) {
        if (Peek().kind != Tok::kIdent) return Unexpected(Peek());
        Token name = Next();
        const Token& op = Peek();
        if (op.kind == Tok::kPunct && (op.text == "=" || op.text == "!=" || op.text == "=~" || op.text == "!~")) {
          MatchType mt = op.text == "=" ? MatchType::kEqual
                         : op.text == "!=" ? MatchType::kNotEqual
                         : op.text == "=~" ? MatchType::kRegexMatch
                                           : MatchType::kRegexNoMatch;
          Next();
          if (Peek().kind != Tok::kString) return Unexpected(Peek());
          Token v = Next();
          auto m = LabelMatcher::Make(mt, name.text, v.text);
          if (!m.ok()) return Err(v, m.status().message());
          st->name_matchers.push_back(std::move(*m));
        } else {
          st->names.push_back(name.text);
        }
        if (IsPunct(",")) {
          Next();
          continue;
        }
        break;
      }
    }
    st->text = std::string(src_.substr(start, Peek().pos - start));
    return OkStatus();
  }

  // json params: a.b.c, a[0], a["b c"], .a
  Status ParseJsonPath(const Token& at, const std::string& expr, std::vector<std::string>* path) {
    size_t i = 0;
    std::string cur;
    auto flush = [&] {
      if (!cur.empty()) path->push_back(cur);
      cur.clear();
    };
    while (i < expr.size()) {
      char c = expr[i];
      if (c == '.') {
        flush();
        ++i;
      } else if (c == '[') {
        flush();
        size_t e = expr.find(']', i);
        if (e == std::string::npos) return Err(at, "invalid json expression '" + expr + "'");
        std::string inner = expr.substr(i + 1, e - i - 1);
        if (inner.size() >= 2 && (inner.front() == '"' || inner.front() == '\'') && inner.back() == inner.front()) {
          path->push_back(inner.substr(1, inner.size() - 2));
        } else {
          for (char d : inner) {
            if (!std::isdigit(static_cast<unsigned char>(d))) return Err(at, "invalid json expression '" + expr + "'");
          }
          if (inner.empty()) return Err(at, "invalid json expression '" + expr + "'");
          path->push_back("[" + inner + "]");
        }
        i = e + 1;
      } else {
        cur.push_back(c);
        ++i;
      }
    }
    flush();
    if (path->empty()) return Err(at, "invalid json expression '" + expr + "'");
    return OkStatus();
  }

  Status ParsePattern(const Token& v, Stage* st) {
    const std::string& p = v.text;
    std::string lit;
    st->pattern_literals.clear();
    size_t i = 0;
    bool last_capture = false;
    while (i < p.size()) {
      if (p[i] == '<') {
        size_t e = p.find('>', i);
        std::string name = e == std::string::npos ? "" : p.substr(i + 1, e - i - 1);
        bool valid = !name.empty() && (name == "_" || IsValidLabelName(name));
        if (valid) {
          if (last_capture && lit.empty()) return Err(v, "syntax error: consecutive captures are not allowed");
          st->pattern_literals.push_back(lit);
          lit.clear();
          st->pattern_names.push_back(name == "_" ? "" : name);
          i = e + 1;
          last_capture = true;
          continue;
        }
      }
      lit.push_back(p[i++]);
      last_capture = false;
    }
    st->pattern_literals.push_back(lit);
    if (st->pattern_names.empty()) return Err(v, "at least one capture is required");
    bool named = false;
    for (const auto& n : st->pattern_names) named = named || !n.empty();
    if (!named) return Err(v, "at least one named capture is required");
    return OkStatus();
  }

  // ---- label filter expressions ----

  Result<std::unique_ptr<LabelFilter>> ParseLabelFilterOr() {
    TELKIT_ASSIGN_OR_RETURN(auto l, ParseLabelFilterAnd());
    while (IsIdent("or")) {
      Next();
      TELKIT_ASSIGN_OR_RETURN(auto r, ParseLabelFilterAnd());
      auto n = std::make_unique<LabelFilter>();
      n->kind = LabelFilter::Kind::kOr;
      n->left = std::move(l);
      n->right = std::move(r);
      l = std::move(n);
    }
    return l;
  }

  bool StartsLabelPredicate() const {
    if (IsPunct("(")) return true;
    return Peek().kind == Tok::kIdent && Peek().text != "or" && Peek().text != "and" && IsLabelFilterStart();
  }

  Result<std::unique_ptr<LabelFilter>> ParseLabelFilterAnd() {
    TELKIT_ASSIGN_OR_RETURN(auto l, ParseLabelFilterPrimary());
    while (true) {
      if (IsIdent("and") || IsPunct(",")) {
        Next();
      } else if (!StartsLabelPredicate()) {
        break;
      }
      TELKIT_ASSIGN_OR_RETURN(auto r, ParseLabelFilterPrimary());
      auto n = std::make_unique<LabelFilter>();
      n->kind = LabelFilter::Kind::kAnd;
      n->left = std::move(l);
      n->right = std::move(r);
      l = std::move(n);
    }
    return l;
  }

  Result<std::unique_ptr<LabelFilter>> ParseLabelFilterPrimary() {
    if (IsPunct("(")) {
      Next();
      TELKIT_ASSIGN_OR_RETURN(auto f, ParseLabelFilterOr());
      TELKIT_RETURN_IF_ERROR(Expect(")"));
      return f;
    }
    if (Peek().kind != Tok::kIdent) return Unexpected(Peek());
    if (!IsLabelFilterStart()) return Unexpected(Peek(1));
    Token name = Next();
    Token op = Next();
    auto f = std::make_unique<LabelFilter>();
    const Token& v = Peek();
    if (v.kind == Tok::kString) {
      Next();
      MatchType mt;
      if (op.text == "=" || op.text == "==") mt = MatchType::kEqual;
      else if (op.text == "!=") mt = MatchType::kNotEqual;
      else if (op.text == "=~") mt = MatchType::kRegexMatch;
      else if (op.text == "!~") mt = MatchType::kRegexNoMatch;
      else return Err(v, "syntax error: unexpected STRING, expecting NUMBER or DURATION or BYTES");
      auto m = LabelMatcher::Make(mt, name.text, v.text);
      if (!m.ok()) return Err(v, m.status().message());
      f->kind = LabelFilter::Kind::kMatcher;
      f->matcher = std::move(*m);
      return f;
    }
    bool neg = false;
    if (IsPunct("-") && Peek(1).kind == Tok::kNumber) {
      Next();
      neg = true;
    }
    if (Peek().kind != Tok::kNumber) return Unexpected(Peek());
    if (op.text == "=~" || op.text == "!~") return Err(Peek(), "syntax error: unexpected NUMBER, expecting STRING");
    Token n = Next();
    f->name = name.text;
    f->op = op.text == "=" || op.text == "==" ? CmpOp::kEq
            : op.text == "!="                ? CmpOp::kNe
            : op.text == ">"                 ? CmpOp::kGt
            : op.text == ">="                ? CmpOp::kGe
            : op.text == "<"                 ? CmpOp::kLt
                                             : CmpOp::kLe;
    char* end = nullptr;
    double d = std::strtod(n.text.c_str(), &end);
    if (end == n.text.c_str() + n.text.size()) {
      f->kind = LabelFilter::Kind::kNumber;
      f->value = neg ? -d : d;
      return f;
    }
    auto dur = ParseDurationSeconds(n.text);
    if (dur.ok()) {
      f->kind = LabelFilter::Kind::kDuration;
      f->value = neg ? -*dur : *dur;
      return f;
    }
    auto bytes = ParseBytes(n.text);
    if (bytes.ok()) {
      f->kind = LabelFilter::Kind::kBytes;
      f->value = neg ? -*bytes : *bytes;
      return f;
    }
    return Err(n, "syntax error: invalid number, duration or bytes '" + n.text + "'");
  }

  std::string_view src_;
  std::vector<Token> toks_;
  size_t p_ = 0;
};

}  // namespace

Result<std::unique_ptr<Expr>> ParseExpr(std::string_view input) {
  TELKIT_ASSIGN_OR_RETURN(auto toks, Lex(input));
  if (toks.size() == 1) return LexError(input, 0, "syntax error: empty query");
  Parser p(input, std::move(toks));
  return p.Parse();
}

std::string RangeOpName(RangeOp op) {
  for (const auto& [name, o] : RangeOps()) {
    if (o == op) return name;
  }
  return "";
}

std::string AggOpName(AggOp op) {
  for (const auto& [name, o] : AggOps()) {
    if (o == op) return name;
  }
  return "";
}

std::string LabelFilter::ToString() const {
  switch (kind) {
    case Kind::kMatcher: return matcher->ToString();
    case Kind::kAnd: return left->ToString() + " and " + right->ToString();
    case Kind::kOr: return left->ToString() + " or " + right->ToString();
    default: break;
  }
  static const char* kOps[] = {"==", "!=", ">", ">=", "<", "<="};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", value);
  return name + kOps[static_cast<int>(op)] + buf;
}

std::string LogSelector::String() const {
  std::string out = "{";
  for (size_t i = 0; i < matchers.size(); ++i) {
    if (i) out += ", ";
    out += matchers[i].ToString();
  }
  return out + "}";
}

}  // namespace telkit::logql
