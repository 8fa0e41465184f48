#include "common/promql/parser.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "common/base/utf8.h"
#include "common/promql/functions.h"

namespace telkit::promql {
namespace {

enum class Tok {
  kEOF, kIdent, kNumber, kDuration, kString,
  kLParen, kRParen, kLBrace, kRBrace, kLBracket, kRBracket, kComma, kColon, kAt,
  kAssign, kEqlRegex, kNeqRegex,
  kAdd, kSub, kMul, kDiv, kMod, kPow, kEql, kNeq, kGtr, kLss, kGte, kLte,
};

struct Token {
  Tok type = Tok::kEOF;
  int pos = 0;
  std::string_view text;
};

std::string_view TokDesc(Tok t) {
  switch (t) {
    case Tok::kEOF: return "end of input";
    case Tok::kIdent: return "identifier";
    case Tok::kNumber: return "number";
    case Tok::kDuration: return "duration";
    case Tok::kString: return "string";
    case Tok::kLParen: return "\"(\"";
    case Tok::kRParen: return "\")\"";
    case Tok::kLBrace: return "\"{\"";
    case Tok::kRBrace: return "\"}\"";
    case Tok::kLBracket: return "\"[\"";
    case Tok::kRBracket: return "\"]\"";
    case Tok::kComma: return "\",\"";
    case Tok::kColon: return "\":\"";
    case Tok::kAt: return "\"@\"";
    case Tok::kAssign: return "\"=\"";
    case Tok::kEqlRegex: return "\"=~\"";
    case Tok::kNeqRegex: return "\"!~\"";
    case Tok::kAdd: return "\"+\"";
    case Tok::kSub: return "\"-\"";
    case Tok::kMul: return "\"*\"";
    case Tok::kDiv: return "\"/\"";
    case Tok::kMod: return "\"%\"";
    case Tok::kPow: return "\"^\"";
    case Tok::kEql: return "\"==\"";
    case Tok::kNeq: return "\"!=\"";
    case Tok::kGtr: return "\">\"";
    case Tok::kLss: return "\"<\"";
    case Tok::kGte: return "\">=\"";
    case Tok::kLte: return "\"<=\"";
  }
  return "token";
}

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return IsAlpha(c) || IsDigit(c); }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Whether text starting at `i` is a duration: digits followed by units.
size_t ScanDuration(std::string_view q, size_t i) {
  size_t j = i;
  bool any = false;
  while (j < q.size() && IsDigit(q[j])) {
    while (j < q.size() && IsDigit(q[j])) ++j;
    if (j >= q.size()) return any ? j : 0;
    char c = q[j];
    if (c == 'm' && j + 1 < q.size() && q[j + 1] == 's') {
      j += 2;
    } else if (c == 'y' || c == 'w' || c == 'd' || c == 'h' || c == 'm' || c == 's') {
      ++j;
    } else {
      return any ? j : 0;
    }
    any = true;
  }
  if (!any) return 0;
  if (j < q.size() && (IsAlnum(q[j]) || q[j] == '.')) return 0;
  return j;
}

class Lexer {
 public:
  explicit Lexer(std::string_view q) : q_(q) {}

  // kEOF at the end; an error Status for characters no token starts with.
  Result<Token> Next() {
    SkipSpaceAndComments();
    Token t;
    t.pos = static_cast<int>(i_);
    if (i_ >= q_.size()) return t;
    char c = q_[i_];
    auto one = [&](Tok type, size_t len) {
      t.type = type;
      t.text = q_.substr(i_, len);
      i_ += len;
      return t;
    };
    auto next_is = [&](char d) { return i_ + 1 < q_.size() && q_[i_ + 1] == d; };
    switch (c) {
      case '(': return one(Tok::kLParen, 1);
      case ')': return one(Tok::kRParen, 1);
      case '{': return one(Tok::kLBrace, 1);
      case '}': return one(Tok::kRBrace, 1);
      case '[': return one(Tok::kLBracket, 1);
      case ']': return one(Tok::kRBracket, 1);
      case ',': return one(Tok::kComma, 1);
      case ':':
        if (bracket_) return one(Tok::kColon, 1);
        break;
      case '@': return one(Tok::kAt, 1);
      case '+': return one(Tok::kAdd, 1);
      case '-': return one(Tok::kSub, 1);
      case '*': return one(Tok::kMul, 1);
      case '/': return one(Tok::kDiv, 1);
      case '%': return one(Tok::kMod, 1);
      case '^': return one(Tok::kPow, 1);
      case '=':
        if (next_is('=')) return one(Tok::kEql, 2);
        if (next_is('~')) return one(Tok::kEqlRegex, 2);
        return one(Tok::kAssign, 1);
      case '!':
        if (next_is('=')) return one(Tok::kNeq, 2);
        if (next_is('~')) return one(Tok::kNeqRegex, 2);
        return Err(t.pos, "unexpected character after '!': " + CharDesc(i_ + 1));
      case '>':
        if (next_is('=')) return one(Tok::kGte, 2);
        return one(Tok::kGtr, 1);
      case '<':
        if (next_is('=')) return one(Tok::kLte, 2);
        return one(Tok::kLss, 1);
      case '"':
      case '\'':
      case '`': {
        size_t j = i_ + 1;
        while (j < q_.size() && q_[j] != c) {
          if (q_[j] == '\\' && c != '`') ++j;
          else if (q_[j] == '\n' && c != '`') return Err(t.pos, "unterminated quoted string");
          ++j;
        }
        if (j >= q_.size()) return Err(t.pos, "unterminated quoted string");
        return one(Tok::kString, j + 1 - i_);
      }
      default: break;
    }
    if (IsDigit(c) || (c == '.' && i_ + 1 < q_.size() && IsDigit(q_[i_ + 1]))) {
      if (size_t end = ScanDuration(q_, i_); end != 0) {
        return one(Tok::kDuration, end - i_);
      }
      size_t j = i_;
      if (c == '0' && j + 1 < q_.size() && (q_[j + 1] == 'x' || q_[j + 1] == 'X')) {
        j += 2;
        while (j < q_.size() && std::isxdigit(static_cast<unsigned char>(q_[j]))) ++j;
      } else {
        while (j < q_.size() && IsDigit(q_[j])) ++j;
        if (j < q_.size() && q_[j] == '.') {
          ++j;
          while (j < q_.size() && IsDigit(q_[j])) ++j;
        }
        if (j < q_.size() && (q_[j] == 'e' || q_[j] == 'E')) {
          size_t k = j + 1;
          if (k < q_.size() && (q_[k] == '+' || q_[k] == '-')) ++k;
          if (k < q_.size() && IsDigit(q_[k])) {
            j = k;
            while (j < q_.size() && IsDigit(q_[j])) ++j;
          }
        }
      }
      if (j < q_.size() && (IsAlpha(q_[j]) || q_[j] == '.')) {
        return Err(t.pos, "bad number or duration syntax: \"" + std::string(q_.substr(i_, j + 1 - i_)) + "\"");
      }
      return one(Tok::kNumber, j - i_);
    }
    if (IsAlpha(c) || c == ':') {
      size_t j = i_;
      while (j < q_.size() && (IsAlnum(q_[j]) || q_[j] == ':')) ++j;
      return one(Tok::kIdent, j - i_);
    }
    return Err(t.pos, "unexpected character: " + CharDesc(i_));
  }

  void set_bracket(bool b) { bracket_ = b; }

 private:
  std::string CharDesc(size_t at) const {
    if (at >= q_.size()) return "end of input";
    return "'" + std::string(1, q_[at]) + "'";
  }

  Status Err(int pos, const std::string& msg) const {
    return Status(StatusCode::kInvalidArgument, std::to_string(pos) + "\x01" + msg);
  }

  void SkipSpaceAndComments() {
    while (i_ < q_.size()) {
      if (IsSpace(q_[i_])) {
        ++i_;
      } else if (q_[i_] == '#') {
        while (i_ < q_.size() && q_[i_] != '\n') ++i_;
      } else {
        break;
      }
    }
  }

  std::string_view q_;
  size_t i_ = 0;
  bool bracket_ = false;
};

std::optional<AggOp> AggregatorByName(std::string_view lower) {
  static const std::pair<std::string_view, AggOp> kAggs[] = {
      {"sum", AggOp::kSum},       {"avg", AggOp::kAvg},         {"count", AggOp::kCount},
      {"min", AggOp::kMin},       {"max", AggOp::kMax},         {"group", AggOp::kGroup},
      {"stddev", AggOp::kStddev}, {"stdvar", AggOp::kStdvar},   {"topk", AggOp::kTopk},
      {"bottomk", AggOp::kBottomk}, {"quantile", AggOp::kQuantile}, {"count_values", AggOp::kCountValues},
      {"limitk", AggOp::kLimitk}, {"limit_ratio", AggOp::kLimitRatio},
  };
  for (const auto& [n, op] : kAggs) {
    if (n == lower) return op;
  }
  return std::nullopt;
}

bool AggHasParam(AggOp op) {
  return op == AggOp::kTopk || op == AggOp::kBottomk || op == AggOp::kQuantile || op == AggOp::kCountValues ||
         op == AggOp::kLimitk || op == AggOp::kLimitRatio;
}

std::optional<BinOp> BinOpOf(const Token& t) {
  switch (t.type) {
    case Tok::kAdd: return BinOp::kAdd;
    case Tok::kSub: return BinOp::kSub;
    case Tok::kMul: return BinOp::kMul;
    case Tok::kDiv: return BinOp::kDiv;
    case Tok::kMod: return BinOp::kMod;
    case Tok::kPow: return BinOp::kPow;
    case Tok::kEql: return BinOp::kEql;
    case Tok::kNeq: return BinOp::kNeq;
    case Tok::kGtr: return BinOp::kGtr;
    case Tok::kLss: return BinOp::kLss;
    case Tok::kGte: return BinOp::kGte;
    case Tok::kLte: return BinOp::kLte;
    case Tok::kIdent: {
      std::string l = Lower(t.text);
      if (l == "and") return BinOp::kAnd;
      if (l == "or") return BinOp::kOr;
      if (l == "unless") return BinOp::kUnless;
      if (l == "atan2") return BinOp::kAtan2;
      return std::nullopt;
    }
    default: return std::nullopt;
  }
}

int Precedence(BinOp op) {
  switch (op) {
    case BinOp::kOr: return 1;
    case BinOp::kAnd:
    case BinOp::kUnless: return 2;
    case BinOp::kEql:
    case BinOp::kNeq:
    case BinOp::kGtr:
    case BinOp::kLss:
    case BinOp::kGte:
    case BinOp::kLte: return 3;
    case BinOp::kAdd:
    case BinOp::kSub: return 4;
    case BinOp::kMul:
    case BinOp::kDiv:
    case BinOp::kMod:
    case BinOp::kAtan2: return 5;
    case BinOp::kPow: return 6;
  }
  return 0;
}

class Parser {
 public:
  Parser(std::string_view q, const ParseOptions& o) : q_(q), lex_(q), opts_(o) {}

  Result<ExprPtr> Parse() {
    TELKIT_RETURN_IF_ERROR(Advance());
    if (cur_.type == Tok::kEOF) return Fail(0, "no expression found in input");
    TELKIT_ASSIGN_OR_RETURN(ExprPtr e, ParseBinary(0));
    if (cur_.type != Tok::kEOF) return Unexpected("");
    TELKIT_RETURN_IF_ERROR(Check(*e));
    return e;
  }

  Result<std::vector<LabelMatcher>> ParseSelectorOnly() {
    TELKIT_RETURN_IF_ERROR(Advance());
    if (cur_.type == Tok::kEOF) return Fail(0, "unexpected end of input");
    if (cur_.type != Tok::kIdent && cur_.type != Tok::kLBrace) return Unexpected(" in series selector");
    TELKIT_ASSIGN_OR_RETURN(ExprPtr e, ParsePrimary());
    if (cur_.type != Tok::kEOF || e->kind != NodeKind::kVectorSelector) return Unexpected(" in series selector");
    return static_cast<VectorSelector&>(*e).matchers;
  }

 private:
  // Errors carry "pos\x01message" from the lexer; Finish() formats them.
  Status Fail(int pos, const std::string& msg) const {
    int line = 1, col = 1;
    for (int i = 0; i < pos && i < static_cast<int>(q_.size()); ++i) {
      if (q_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return InvalidArgumentError(std::to_string(line) + ":" + std::to_string(col) + ": parse error: " + msg);
  }

  Status Unexpected(std::string_view context) const {
    std::string what;
    if (cur_.type == Tok::kEOF) {
      what = "end of input";
    } else if (cur_.type == Tok::kIdent) {
      what = "identifier \"" + std::string(cur_.text) + "\"";
    } else if (cur_.type == Tok::kNumber || cur_.type == Tok::kDuration || cur_.type == Tok::kString) {
      what = std::string(TokDesc(cur_.type)) + " \"" + std::string(cur_.text) + "\"";
    } else {
      what = std::string(TokDesc(cur_.type));
    }
    return Fail(cur_.pos, "unexpected " + what + std::string(context));
  }

  Status Advance() {
    prev_end_ = cur_.pos + static_cast<int>(cur_.text.size());
    Result<Token> t = lex_.Next();
    if (!t.ok()) {
      Status st = t.status();
      const std::string& m = st.message();
      size_t sep = m.find('\x01');
      return Fail(std::stoi(m.substr(0, sep)), m.substr(sep + 1));
    }
    cur_ = *t;
    return OkStatus();
  }

  bool allow_empty_selector_ = false;

  Result<Token> Peek() {
    Lexer copy = lex_;
    Result<Token> t = copy.Next();
    if (!t.ok()) return Token{};
    return t;
  }

  Status Expect(Tok type, std::string_view context) {
    if (cur_.type != type) return Unexpected(context);
    return Advance();
  }

  bool IsIdent(std::string_view lower) const { return cur_.type == Tok::kIdent && Lower(cur_.text) == lower; }

  // Nesting deeper than this is refused rather than risking the stack.
  static constexpr int kMaxDepth = kMaxExprHeight;

  struct DepthGuard {
    explicit DepthGuard(int& d) : d_(d) { ++d_; }
    ~DepthGuard() { --d_; }
    int& d_;
  };

  Result<ExprPtr> ParseBinary(int min_prec) {
    DepthGuard guard(depth_);
    if (depth_ > kMaxDepth) {
      return Fail(cur_.pos, "expression nested too deeply (more than " + std::to_string(kMaxExprHeight) + " levels)");
    }
    TELKIT_ASSIGN_OR_RETURN(ExprPtr lhs, ParseUnary());
    for (;;) {
      std::optional<BinOp> op = BinOpOf(cur_);
      if (!op || Precedence(*op) < min_prec) return lhs;
      TELKIT_RETURN_IF_ERROR(Advance());
      auto bin = std::make_unique<BinaryExpr>();
      bin->op = *op;
      if (IsIdent("bool")) {
        bin->return_bool = true;
        TELKIT_RETURN_IF_ERROR(Advance());
      }
      if (IsIdent("on") || IsIdent("ignoring")) {
        bin->matching.on = IsIdent("on");
        bin->matching.explicit_matching = true;
        TELKIT_RETURN_IF_ERROR(Advance());
        TELKIT_ASSIGN_OR_RETURN(bin->matching.labels, ParseLabelList());
        if (IsIdent("group_left") || IsIdent("group_right")) {
          bin->matching.card = IsIdent("group_left") ? Cardinality::kManyToOne : Cardinality::kOneToMany;
          TELKIT_RETURN_IF_ERROR(Advance());
          if (cur_.type == Tok::kLParen) {
            TELKIT_ASSIGN_OR_RETURN(bin->matching.include, ParseLabelList());
          }
        }
      } else if (IsIdent("group_left") || IsIdent("group_right")) {
        return Fail(cur_.pos, "unexpected <group_left/group_right> without on/ignoring");
      }
      while (IsIdent("fill") || IsIdent("fill_left") || IsIdent("fill_right")) {
        TELKIT_ASSIGN_OR_RETURN(Token next, Peek());
        if (next.type != Tok::kLParen) break;
        const bool left = !IsIdent("fill_right"), right = !IsIdent("fill_left");
        TELKIT_RETURN_IF_ERROR(Advance());
        TELKIT_RETURN_IF_ERROR(Advance());
        bool neg = false;
        if (cur_.type == Tok::kSub || cur_.type == Tok::kAdd) {
          neg = cur_.type == Tok::kSub;
          TELKIT_RETURN_IF_ERROR(Advance());
        }
        const bool special = cur_.type == Tok::kIdent && (IsIdent("nan") || IsIdent("inf"));
        if (cur_.type != Tok::kNumber && !special) return Unexpected(" in fill modifier, expected number");
        Result<double> v = special ? Result<double>(IsIdent("nan") ? std::numeric_limits<double>::quiet_NaN()
                                                                    : std::numeric_limits<double>::infinity())
                                   : ParseNumber(cur_.text);
        if (!v.ok()) return Fail(cur_.pos, v.status().message());
        double x = neg ? -*v : *v;
        TELKIT_RETURN_IF_ERROR(Advance());
        TELKIT_RETURN_IF_ERROR(Expect(Tok::kRParen, " in fill modifier, expected \")\""));
        if (left) bin->fill_left = x;
        if (right) bin->fill_right = x;
      }
      int next_prec = *op == BinOp::kPow ? Precedence(*op) : Precedence(*op) + 1;
      TELKIT_ASSIGN_OR_RETURN(bin->rhs, ParseBinary(next_prec));
      bin->lhs = std::move(lhs);
      bin->pos = {bin->lhs->pos.start, bin->rhs->pos.end};
      TELKIT_RETURN_IF_ERROR(SetHeight(*bin, {bin->lhs.get(), bin->rhs.get()}));
      // Set operators match many-to-many; group_left/right on them is an
      // error that Check() reports, so keep the written cardinality then.
      if (IsSetOperator(bin->op) && bin->matching.card == Cardinality::kOneToOne) {
        bin->matching.card = Cardinality::kManyToMany;
      }
      lhs = std::move(bin);
    }
  }

  Result<std::vector<std::string>> ParseLabelList() {
    std::vector<std::string> out;
    TELKIT_RETURN_IF_ERROR(Expect(Tok::kLParen, " in grouping opts, expected \"(\""));
    while (cur_.type != Tok::kRParen) {
      if (cur_.type != Tok::kIdent || !IsValidLabelName(cur_.text)) {
        return Unexpected(" in grouping opts, expected label");
      }
      out.emplace_back(cur_.text);
      TELKIT_RETURN_IF_ERROR(Advance());
      if (cur_.type == Tok::kComma) {
        TELKIT_RETURN_IF_ERROR(Advance());
      } else if (cur_.type != Tok::kRParen) {
        return Unexpected(" in grouping opts, expected \")\" or \",\"");
      }
    }
    TELKIT_RETURN_IF_ERROR(Advance());
    return out;
  }

  Result<ExprPtr> ParseUnary() {
    if (cur_.type == Tok::kSub || cur_.type == Tok::kAdd) {
      bool neg = cur_.type == Tok::kSub;
      int pos = cur_.pos;
      TELKIT_RETURN_IF_ERROR(Advance());
      TELKIT_ASSIGN_OR_RETURN(ExprPtr e, ParseBinary(Precedence(BinOp::kPow)));
      if (e->kind == NodeKind::kNumber) {
        if (neg) static_cast<NumberLiteral&>(*e).value *= -1;
        e->pos.start = pos;
        return e;
      }
      auto u = std::make_unique<UnaryExpr>();
      u->negate = neg;
      u->pos = {pos, e->pos.end};
      u->expr = std::move(e);
      TELKIT_RETURN_IF_ERROR(SetHeight(*u, {u->expr.get()}));
      return ExprPtr(std::move(u));
    }
    TELKIT_ASSIGN_OR_RETURN(ExprPtr e, ParsePrimary());
    return ParsePostfix(std::move(e));
  }

  Result<int64_t> ParseDurationToken(std::string_view context) {
    if (cur_.type == Tok::kNumber && opts_.durations_as_numbers) {
      // 3.x: a number of seconds where a duration goes.
      Result<double> v = ParseNumber(cur_.text);
      if (!v.ok() || !std::isfinite(*v) || *v < 0 || *v > 3e12) return Fail(cur_.pos, "invalid duration: " + std::string(cur_.text));
      TELKIT_RETURN_IF_ERROR(Advance());
      return static_cast<int64_t>(std::llround(*v * 1000));
    }
    if (cur_.type != Tok::kDuration && !(cur_.type == Tok::kNumber && cur_.text == "0")) {
      return Unexpected(context);
    }
    Result<int64_t> d = ParseDuration(cur_.text);
    if (!d.ok()) return Fail(cur_.pos, d.status().message());
    TELKIT_RETURN_IF_ERROR(Advance());
    return *d;
  }

  // 3.x duration expressions (Prometheus' duration_expression.test): inside
  // [...] and after offset, arithmetic over durations and numbers of
  // seconds (+ - * / % ^, parentheses, unary signs, min_of/max_of). Values
  // are seconds; ^ binds tighter than a sign and is right-associative.
  // step() and range() are the query's (ParseOptions).
  Result<double> DurAdd() {
    TELKIT_ASSIGN_OR_RETURN(double v, DurMul());
    while (cur_.type == Tok::kAdd || cur_.type == Tok::kSub) {
      const bool sub = cur_.type == Tok::kSub;
      TELKIT_RETURN_IF_ERROR(Advance());
      TELKIT_ASSIGN_OR_RETURN(double r, DurMul());
      v = sub ? v - r : v + r;
    }
    return v;
  }
  Result<double> DurMul() {
    TELKIT_ASSIGN_OR_RETURN(double v, DurUnary());
    while (cur_.type == Tok::kMul || cur_.type == Tok::kDiv || cur_.type == Tok::kMod) {
      const Tok op = cur_.type;
      const int pos = cur_.pos;
      TELKIT_RETURN_IF_ERROR(Advance());
      TELKIT_ASSIGN_OR_RETURN(double r, DurUnary());
      if (op != Tok::kMul && r == 0) return Fail(pos, "division by zero in duration expression");
      v = op == Tok::kMul ? v * r : op == Tok::kDiv ? v / r : std::fmod(v, r);
    }
    return v;
  }
  Result<double> DurUnary() {
    if (cur_.type == Tok::kSub || cur_.type == Tok::kAdd) {
      const bool neg = cur_.type == Tok::kSub;
      TELKIT_RETURN_IF_ERROR(Advance());
      TELKIT_ASSIGN_OR_RETURN(double v, DurUnary());
      return neg ? -v : v;
    }
    TELKIT_ASSIGN_OR_RETURN(double v, DurPrimary());
    if (cur_.type == Tok::kPow) {
      TELKIT_RETURN_IF_ERROR(Advance());
      TELKIT_ASSIGN_OR_RETURN(double r, DurUnary());
      v = std::pow(v, r);
    }
    return v;
  }
  Result<double> DurPrimary() {
    const int pos = cur_.pos;
    if (cur_.type == Tok::kNumber) {
      Result<double> v = ParseNumber(cur_.text);
      if (!v.ok() || !std::isfinite(*v)) return Fail(pos, "invalid duration: " + std::string(cur_.text));
      TELKIT_RETURN_IF_ERROR(Advance());
      return *v;
    }
    if (cur_.type == Tok::kDuration) {
      Result<int64_t> d = ParseDuration(cur_.text);
      if (!d.ok()) return Fail(pos, d.status().message());
      TELKIT_RETURN_IF_ERROR(Advance());
      return static_cast<double>(*d) / 1000.0;
    }
    if (cur_.type == Tok::kLParen) {
      TELKIT_RETURN_IF_ERROR(Advance());
      TELKIT_ASSIGN_OR_RETURN(double v, DurAdd());
      if (cur_.type != Tok::kRParen) return Unexpected(" in duration expression, expected \")\"");
      TELKIT_RETURN_IF_ERROR(Advance());
      return v;
    }
    if (cur_.type == Tok::kIdent) {
      std::string name(cur_.text);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (name == "min_of" || name == "max_of") {
        TELKIT_RETURN_IF_ERROR(Advance());
        if (cur_.type != Tok::kLParen) return Unexpected(" in duration expression, expected \"(\"");
        TELKIT_RETURN_IF_ERROR(Advance());
        TELKIT_ASSIGN_OR_RETURN(double a, DurAdd());
        if (cur_.type != Tok::kComma) return Unexpected(" in duration expression, expected \",\"");
        TELKIT_RETURN_IF_ERROR(Advance());
        TELKIT_ASSIGN_OR_RETURN(double b, DurAdd());
        if (cur_.type != Tok::kRParen) return Unexpected(" in duration expression, expected \")\"");
        TELKIT_RETURN_IF_ERROR(Advance());
        return name == "min_of" ? std::min(a, b) : std::max(a, b);
      }
      if (name == "step" || name == "range") {
        TELKIT_RETURN_IF_ERROR(Advance());
        if (cur_.type != Tok::kLParen) return Unexpected(" in duration expression, expected \"(\"");
        TELKIT_RETURN_IF_ERROR(Advance());
        if (cur_.type != Tok::kRParen) return Unexpected(" in duration expression, expected \")\"");
        TELKIT_RETURN_IF_ERROR(Advance());
        return static_cast<double>(name == "step" ? opts_.query_step_ms : opts_.query_range_ms) / 1000.0;
      }
    }
    return Unexpected(" in duration expression, expected duration");
  }
  // A whole duration expression (in brackets), in ms.
  Result<int64_t> ParseDurationExpr(std::string_view context) {
    if (!opts_.durations_as_numbers) return ParseDurationToken(context);
    const int pos = cur_.pos;
    if (cur_.type != Tok::kNumber && cur_.type != Tok::kDuration && cur_.type != Tok::kLParen &&
        cur_.type != Tok::kSub && cur_.type != Tok::kAdd && cur_.type != Tok::kIdent) {
      return Unexpected(context);
    }
    TELKIT_ASSIGN_OR_RETURN(double sec, DurAdd());
    return DurationMs(pos, sec);
  }
  Result<int64_t> DurationMs(int pos, double sec) {
    if (!std::isfinite(sec) || std::fabs(sec) > 3e12) return Fail(pos, "invalid duration expression result");
    return static_cast<int64_t>(std::llround(sec * 1000));
  }

  Result<ExprPtr> ParsePostfix(ExprPtr e) {
    bool offset_seen = false, at_seen = false;
    for (;;) {
      if (cur_.type == Tok::kLBracket) {
        int lpos = cur_.pos;
        lex_.set_bracket(true);
        TELKIT_RETURN_IF_ERROR(Advance());
        TELKIT_ASSIGN_OR_RETURN(int64_t range, ParseDurationExpr(" in subquery or range selector, expected duration"));
        if (cur_.type == Tok::kColon) {
          lex_.set_bracket(false);
          TELKIT_RETURN_IF_ERROR(Advance());
          int64_t step = 0;
          if (cur_.type != Tok::kRBracket) {
            TELKIT_ASSIGN_OR_RETURN(step, ParseDurationExpr(" in subquery, expected duration"));
            if (step < 0) return Fail(lpos, "step must be positive");
          }
          if (cur_.type != Tok::kRBracket) return Unexpected(" in subquery selector, expected \"]\"");
          if (e->Type() != ValueType::kVector) {
            return Fail(e->pos.start, "subquery is only allowed on instant vector, got " +
                                          std::string(ValueTypeName(e->Type())) + " instead");
          }
          auto sq = std::make_unique<SubqueryExpr>();
          sq->range_ms = range;
          sq->step_ms = step;
          sq->pos = {e->pos.start, cur_.pos + 1};
          sq->expr = std::move(e);
          TELKIT_RETURN_IF_ERROR(SetHeight(*sq, {sq->expr.get()}));
          TELKIT_RETURN_IF_ERROR(Advance());
          e = std::move(sq);
          offset_seen = at_seen = false;
          continue;
        }
        lex_.set_bracket(false);
        if (cur_.type != Tok::kRBracket) return Unexpected(" in range selector, expected \"]\"");
        if (e->kind != NodeKind::kVectorSelector) {
          return Fail(e->pos.start, "ranges only allowed for vector selectors");
        }
        auto& vs = static_cast<VectorSelector&>(*e);
        if (vs.mod.offset_ms != 0 || offset_seen) return Fail(lpos, "no offset modifiers allowed before range");
        if (vs.mod.at != AtKind::kNone) return Fail(lpos, "no @ modifiers allowed before range");
        if (range <= 0) return Fail(lpos, "duration must be greater than 0");
        auto ms = std::make_unique<MatrixSelector>();
        ms->range_ms = range;
        ms->pos = {e->pos.start, cur_.pos + 1};
        ms->vs.reset(static_cast<VectorSelector*>(e.release()));
        ms->height = 2;
        TELKIT_RETURN_IF_ERROR(Advance());
        e = std::move(ms);
        continue;
      }
      if (IsIdent("offset")) {
        int pos = cur_.pos;
        TELKIT_RETURN_IF_ERROR(Advance());
        bool neg = false;
        if (cur_.type == Tok::kSub || cur_.type == Tok::kAdd) {
          neg = cur_.type == Tok::kSub;
          TELKIT_RETURN_IF_ERROR(Advance());
        }
        int64_t d = 0;
        if (opts_.durations_as_numbers && (cur_.type == Tok::kLParen || cur_.type == Tok::kIdent)) {
          // 3.x: one parenthesised duration expression or min_of/max_of;
          // `offset 100 + 2` is (x offset 100) + 2.
          const int dpos = cur_.pos;
          TELKIT_ASSIGN_OR_RETURN(double sec, DurPrimary());
          TELKIT_ASSIGN_OR_RETURN(d, DurationMs(dpos, sec));
        } else {
          TELKIT_ASSIGN_OR_RETURN(d, ParseDurationToken(" in offset, expected duration"));
        }
        TimeModifiers* mod = Modifiers(*e);
        if (mod == nullptr) {
          return Fail(pos, "offset modifier must be preceded by an instant vector selector or range vector "
                           "selector or a subquery");
        }
        if (offset_seen) return Fail(pos, "offset may not be set multiple times");
        offset_seen = true;
        mod->offset_ms = neg ? -d : d;
        e->pos.end = prev_end_;
        continue;
      }
      if ((IsIdent("anchored") || IsIdent("smoothed")) &&
          (e->kind == NodeKind::kVectorSelector || e->kind == NodeKind::kMatrixSelector)) {
        TimeModifiers* mod = Modifiers(*e);
        if (mod->anchored || mod->smoothed) return Fail(cur_.pos, "anchored or smoothed may not be set multiple times");
        (IsIdent("anchored") ? mod->anchored : mod->smoothed) = true;
        TELKIT_RETURN_IF_ERROR(Advance());
        e->pos.end = prev_end_;
        continue;
      }
      if (cur_.type == Tok::kAt) {
        int pos = cur_.pos;
        TELKIT_RETURN_IF_ERROR(Advance());
        TimeModifiers* mod = Modifiers(*e);
        if (mod == nullptr) {
          return Fail(pos, "@ modifier must be preceded by an instant vector selector or range vector selector or "
                           "a subquery");
        }
        if (at_seen) return Fail(pos, "@ <timestamp> may not be set multiple times");
        at_seen = true;
        if (IsIdent("start") || IsIdent("end")) {
          mod->at = IsIdent("start") ? AtKind::kStart : AtKind::kEnd;
          TELKIT_RETURN_IF_ERROR(Advance());
          TELKIT_RETURN_IF_ERROR(Expect(Tok::kLParen, " in @, expected \"(\""));
          TELKIT_RETURN_IF_ERROR(Expect(Tok::kRParen, " in @, expected \")\""));
        } else {
          bool neg = false;
          if (cur_.type == Tok::kSub || cur_.type == Tok::kAdd) {
            neg = cur_.type == Tok::kSub;
            TELKIT_RETURN_IF_ERROR(Advance());
          }
          if (cur_.type == Tok::kDuration && opts_.durations_as_numbers) {
            // 3.x: a duration after @ is that many seconds since the epoch.
            Result<int64_t> d = ParseDuration(cur_.text);
            if (!d.ok()) return Fail(cur_.pos, d.status().message());
            mod->at = AtKind::kTimestamp;
            mod->at_ms = neg ? -*d : *d;
            TELKIT_RETURN_IF_ERROR(Advance());
            e->pos.end = prev_end_;
            continue;
          }
          if (cur_.type != Tok::kNumber) return Unexpected(" in @, expected timestamp");
          Result<double> v = ParseNumber(cur_.text);
          if (!v.ok()) return Fail(cur_.pos, v.status().message());
          double secs = neg ? -*v : *v;
          if (!std::isfinite(secs)) return Fail(cur_.pos, "timestamp out of bounds for @ modifier: " + std::string(cur_.text));
          double ms = std::round(secs * 1000.0);
          // Far beyond any stored sample, and far enough from int64's limits
          // that offsets and ranges cannot overflow.
          if (ms > 1e17 || ms < -1e17) return Fail(cur_.pos, "timestamp out of bounds for @ modifier");
          mod->at = AtKind::kTimestamp;
          mod->at_ms = static_cast<int64_t>(ms);
          TELKIT_RETURN_IF_ERROR(Advance());
        }
        e->pos.end = prev_end_;
        continue;
      }
      return e;
    }
  }

  // Sets e's height from its children; an error past kMaxExprHeight.
  Status SetHeight(Expr& e, std::initializer_list<const Expr*> children) {
    int h = 0;
    for (const Expr* c : children) {
      if (c != nullptr) h = std::max(h, c->height);
    }
    e.height = h + 1;
    if (e.height > kMaxExprHeight) {
      return Fail(e.pos.start, "expression nested too deeply (more than " + std::to_string(kMaxExprHeight) + " levels)");
    }
    return OkStatus();
  }

  static TimeModifiers* Modifiers(Expr& e) {
    switch (e.kind) {
      case NodeKind::kVectorSelector: return &static_cast<VectorSelector&>(e).mod;
      case NodeKind::kMatrixSelector: return &static_cast<MatrixSelector&>(e).vs->mod;
      case NodeKind::kSubquery: return &static_cast<SubqueryExpr&>(e).mod;
      default: return nullptr;
    }
  }

  Result<ExprPtr> ParsePrimary() {
    Token t = cur_;
    switch (t.type) {
      case Tok::kNumber: {
        Result<double> v = ParseNumber(t.text);
        if (!v.ok()) return Fail(t.pos, v.status().message());
        auto n = std::make_unique<NumberLiteral>();
        n->value = *v;
        n->pos = {t.pos, t.pos + static_cast<int>(t.text.size())};
        TELKIT_RETURN_IF_ERROR(Advance());
        return ExprPtr(std::move(n));
      }
      case Tok::kString: {
        Result<std::string> s = Unquote(t.text);
        if (!s.ok()) return Fail(t.pos, s.status().message());
        auto n = std::make_unique<StringLiteral>();
        n->value = std::move(*s);
        n->pos = {t.pos, t.pos + static_cast<int>(t.text.size())};
        TELKIT_RETURN_IF_ERROR(Advance());
        return ExprPtr(std::move(n));
      }
      case Tok::kLParen: {
        TELKIT_RETURN_IF_ERROR(Advance());
        if (cur_.type == Tok::kRParen) return Unexpected("");
        TELKIT_ASSIGN_OR_RETURN(ExprPtr inner, ParseBinary(0));
        if (cur_.type != Tok::kRParen) return Unexpected(", expected \")\"");
        auto p = std::make_unique<ParenExpr>();
        p->pos = {t.pos, cur_.pos + 1};
        p->expr = std::move(inner);
        TELKIT_RETURN_IF_ERROR(SetHeight(*p, {p->expr.get()}));
        TELKIT_RETURN_IF_ERROR(Advance());
        return ExprPtr(std::move(p));
      }
      case Tok::kLBrace: return ParseSelector("", t.pos);
      case Tok::kIdent: break;
      case Tok::kDuration: {
        if (!opts_.durations_as_numbers) return Fail(t.pos, "unexpected duration \"" + std::string(t.text) + "\"");
        Result<int64_t> d = ParseDuration(t.text);
        if (!d.ok()) return Fail(t.pos, d.status().message());
        auto n = std::make_unique<NumberLiteral>();
        n->value = static_cast<double>(*d) / 1000.0;
        n->pos = {t.pos, t.pos + static_cast<int>(t.text.size())};
        TELKIT_RETURN_IF_ERROR(Advance());
        return ExprPtr(std::move(n));
      }
      default: return Unexpected("");
    }
    std::string lower = Lower(t.text);
    TELKIT_ASSIGN_OR_RETURN(Token next, Peek());
    if (std::optional<AggOp> agg = AggregatorByName(lower)) {
      bool modifier_next = next.type == Tok::kIdent && (Lower(next.text) == "by" || Lower(next.text) == "without");
      if (next.type == Tok::kLParen || modifier_next) return ParseAggregate(*agg, t);
    }
    if (next.type == Tok::kLParen) {
      const Function* f = FindFunction(t.text);
      if (f == nullptr || (f->experimental && !opts_.experimental_functions)) {
        return Fail(t.pos, "unknown function with name \"" + std::string(t.text) + "\"");
      }
      return ParseCall(f, t);
    }
    if (lower == "inf" || lower == "nan") {
      auto n = std::make_unique<NumberLiteral>();
      n->value = lower == "inf" ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
      n->pos = {t.pos, t.pos + static_cast<int>(t.text.size())};
      TELKIT_RETURN_IF_ERROR(Advance());
      return ExprPtr(std::move(n));
    }
    if (BinOpOf(t) || lower == "by" || lower == "without" || lower == "bool" || lower == "offset" ||
        lower == "on" || lower == "ignoring" || lower == "group_left" || lower == "group_right") {
      // Keywords are metric names only when a selector follows unambiguously.
      if (next.type != Tok::kLBrace) return Unexpected("");
    }
    TELKIT_RETURN_IF_ERROR(Advance());
    return ParseSelector(std::string(t.text), t.pos);
  }

  Result<ExprPtr> ParseSelector(std::string name, int start) {
    auto vs = std::make_unique<VectorSelector>();
    vs->name = name;
    vs->pos = {start, prev_end_};
    if (cur_.type == Tok::kLBrace) {
      TELKIT_RETURN_IF_ERROR(Advance());
      while (cur_.type != Tok::kRBrace) {
        if (cur_.type != Tok::kIdent) return Unexpected(" in label matching, expected label");
        std::string lname(cur_.text);
        if (!IsValidLabelName(lname)) return Unexpected(" in label matching, expected label");
        TELKIT_RETURN_IF_ERROR(Advance());
        MatchType mt;
        switch (cur_.type) {
          case Tok::kAssign: mt = MatchType::kEqual; break;
          case Tok::kNeq: mt = MatchType::kNotEqual; break;
          case Tok::kEqlRegex: mt = MatchType::kRegexMatch; break;
          case Tok::kNeqRegex: mt = MatchType::kRegexNoMatch; break;
          case Tok::kEql: return Fail(cur_.pos, "unexpected \"==\" in label matching, expected label matching operator");
          default: return Unexpected(" in label matching, expected label matching operator");
        }
        TELKIT_RETURN_IF_ERROR(Advance());
        if (cur_.type != Tok::kString) return Unexpected(" in label matching, expected string");
        Result<std::string> val = Unquote(cur_.text);
        if (!val.ok()) return Fail(cur_.pos, val.status().message());
        Result<LabelMatcher> m = LabelMatcher::Make(mt, lname, *val);
        if (!m.ok()) return Fail(cur_.pos, m.status().message());
        vs->matchers.push_back(std::move(*m));
        TELKIT_RETURN_IF_ERROR(Advance());
        if (cur_.type == Tok::kComma) {
          TELKIT_RETURN_IF_ERROR(Advance());
        } else if (cur_.type != Tok::kRBrace) {
          return Unexpected(" in label matching, expected \",\" or \"}\"");
        }
      }
      vs->pos.end = cur_.pos + 1;
      TELKIT_RETURN_IF_ERROR(Advance());
    }
    if (!name.empty()) {
      for (const LabelMatcher& m : vs->matchers) {
        if (m.name() == kMetricNameLabel) {
          return Fail(start, "metric name must not be set twice: \"" + name + "\" or \"" + m.value() + "\"");
        }
      }
      Result<LabelMatcher> m = LabelMatcher::Make(MatchType::kEqual, std::string(kMetricNameLabel), name);
      if (!m.ok()) return Fail(start, m.status().message());
      vs->matchers.push_back(std::move(*m));
    }
    bool non_empty = false;
    for (const LabelMatcher& m : vs->matchers) non_empty = non_empty || !m.MatchesEmpty();
    if (!non_empty && !allow_empty_selector_) {
      return Fail(start, "vector selector must contain at least one non-empty matcher");
    }
    return ExprPtr(std::move(vs));
  }

  Result<ExprPtr> ParseAggregate(AggOp op, Token t) {
    auto agg = std::make_unique<AggregateExpr>();
    agg->op = op;
    TELKIT_RETURN_IF_ERROR(Advance());
    auto parse_modifier = [&]() -> Status {
      agg->without = IsIdent("without");
      agg->has_grouping = true;
      TELKIT_RETURN_IF_ERROR(Advance());
      TELKIT_ASSIGN_OR_RETURN(agg->grouping, ParseLabelList());
      return OkStatus();
    };
    bool modifier_before = false;
    if (IsIdent("by") || IsIdent("without")) {
      TELKIT_RETURN_IF_ERROR(parse_modifier());
      modifier_before = true;
    }
    if (cur_.type != Tok::kLParen) return Unexpected(" in aggregation, expected \"(\"");
    TELKIT_RETURN_IF_ERROR(Advance());
    std::vector<ExprPtr> args;
    while (cur_.type != Tok::kRParen) {
      TELKIT_ASSIGN_OR_RETURN(ExprPtr a, ParseBinary(0));
      args.push_back(std::move(a));
      if (cur_.type == Tok::kComma) {
        TELKIT_RETURN_IF_ERROR(Advance());
        if (cur_.type == Tok::kRParen) return Unexpected("");
      } else if (cur_.type != Tok::kRParen) {
        return Unexpected(" in aggregation, expected \",\" or \")\"");
      }
    }
    int end = cur_.pos + 1;
    TELKIT_RETURN_IF_ERROR(Advance());
    if (!modifier_before && (IsIdent("by") || IsIdent("without"))) {
      TELKIT_RETURN_IF_ERROR(parse_modifier());
      end = prev_end_;
    }
    size_t want = AggHasParam(op) ? 2 : 1;
    if (args.size() != want) {
      return Fail(t.pos, "wrong number of arguments for aggregate expression provided, expected " +
                             std::to_string(want) + ", got " + std::to_string(args.size()));
    }
    if (want == 2) agg->param = std::move(args[0]);
    agg->expr = std::move(args.back());
    agg->pos = {t.pos, end};
    TELKIT_RETURN_IF_ERROR(SetHeight(*agg, {agg->expr.get(), agg->param.get()}));
    return ExprPtr(std::move(agg));
  }

  Result<ExprPtr> ParseCall(const Function* f, Token t) {
    auto call = std::make_unique<Call>();
    call->func = f;
    TELKIT_RETURN_IF_ERROR(Advance());  // name
    TELKIT_RETURN_IF_ERROR(Advance());  // (
    while (cur_.type != Tok::kRParen) {
      // info()'s second argument selects info series by data labels and may
      // match the empty string only ({data=~".*"}).
      allow_empty_selector_ = f->name == "info" && call->args.size() == 1;
      Result<ExprPtr> a = ParseBinary(0);
      allow_empty_selector_ = false;
      if (!a.ok()) return a.status();
      call->args.push_back(std::move(*a));
      if (cur_.type == Tok::kComma) {
        TELKIT_RETURN_IF_ERROR(Advance());
        if (cur_.type == Tok::kRParen) return Unexpected("");
      } else if (cur_.type != Tok::kRParen) {
        return Unexpected(" in function call, expected \",\" or \")\"");
      }
    }
    call->pos = {t.pos, cur_.pos + 1};
    for (const ExprPtr& a : call->args) call->height = std::max(call->height, a->height + 1);
    if (call->height > kMaxExprHeight) return Fail(t.pos, "expression nested too deeply (more than " + std::to_string(kMaxExprHeight) + " levels)");
    TELKIT_RETURN_IF_ERROR(Advance());
    return ExprPtr(std::move(call));
  }

  Status ExpectType(const Expr& e, ValueType want, const std::string& context) const {
    ValueType got = e.Type();
    if (got == want) return OkStatus();
    return Fail(e.pos.start, "expected type " + std::string(ValueTypeName(want)) + " in " + context + ", got " +
                                 std::string(ValueTypeName(got)));
  }

  // Prometheus' checkAST: operand types and modifier rules.
  Status Check(const Expr& e) const {
    switch (e.kind) {
      case NodeKind::kNumber:
      case NodeKind::kString:
      case NodeKind::kVectorSelector: return OkStatus();
      case NodeKind::kMatrixSelector: return OkStatus();
      case NodeKind::kSubquery: return Check(*static_cast<const SubqueryExpr&>(e).expr);
      case NodeKind::kParen: return Check(*static_cast<const ParenExpr&>(e).expr);
      case NodeKind::kUnary: {
        const auto& u = static_cast<const UnaryExpr&>(e);
        ValueType t = u.expr->Type();
        if (t != ValueType::kScalar && t != ValueType::kVector) {
          return Fail(u.pos.start, "unary expression only allowed on expressions of type scalar or instant vector, got \"" +
                                       std::string(ValueTypeName(t)) + "\"");
        }
        return Check(*u.expr);
      }
      case NodeKind::kAggregate: {
        const auto& a = static_cast<const AggregateExpr&>(e);
        if (a.expr->Type() != ValueType::kVector) {
          return Fail(a.expr->pos.start, "expected type instant vector in aggregation expression, got " +
                                             std::string(ValueTypeName(a.expr->Type())));
        }
        if (a.param) {
          ValueType want = a.op == AggOp::kCountValues ? ValueType::kString : ValueType::kScalar;
          if (a.param->Type() != want) {
            return Fail(a.param->pos.start, "expected type " + std::string(ValueTypeName(want)) +
                                                " in aggregation parameter, got " +
                                                std::string(ValueTypeName(a.param->Type())));
          }
          TELKIT_RETURN_IF_ERROR(Check(*a.param));
        }
        return Check(*a.expr);
      }
      case NodeKind::kCall: {
        const auto& c = static_cast<const Call&>(e);
        const Function& f = *c.func;
        int n = static_cast<int>(c.args.size());
        int fixed = static_cast<int>(f.arg_types.size());
        std::string name = "\"" + std::string(f.name) + "\"";
        if (f.variadic == 0) {
          if (n != fixed) {
            return Fail(c.pos.end, "expected " + std::to_string(fixed) + " argument(s) in call to " + name + ", got " +
                                       std::to_string(n));
          }
        } else if (f.variadic > 0) {
          int min = fixed - f.variadic;
          if (n < min) {
            return Fail(c.pos.end, "expected at least " + std::to_string(min) + " argument(s) in call to " + name +
                                       ", got " + std::to_string(n));
          }
          if (n > fixed) {
            return Fail(c.pos.end, "expected at most " + std::to_string(fixed) + " argument(s) in call to " + name +
                                       ", got " + std::to_string(n));
          }
        } else {
          int min = fixed - 1;
          if (n < min) {
            return Fail(c.pos.end, "expected at least " + std::to_string(min) + " argument(s) in call to " + name +
                                       ", got " + std::to_string(n));
          }
        }
        for (int i = 0; i < n; ++i) {
          ValueType want = i < fixed ? f.arg_types[i] : f.arg_types.back();
          TELKIT_RETURN_IF_ERROR(ExpectType(*c.args[i], want, "call to function " + name));
          TELKIT_RETURN_IF_ERROR(Check(*c.args[i]));
        }
        if (f.name == "label_replace" || f.name == "label_join") {
          // The destination label must be a valid label name.
          const Expr* dst = Unparen(c.args[1].get());
          if (dst->kind == NodeKind::kString) {
            const std::string& v = static_cast<const StringLiteral*>(dst)->value;
            if (!IsValidLabelName(v)) return Fail(dst->pos.start, "invalid destination label name in " + std::string(f.name) + "(): " + v);
          }
        }
        return OkStatus();
      }
      case NodeKind::kBinary: {
        const auto& b = static_cast<const BinaryExpr&>(e);
        ValueType lt = b.lhs->Type(), rt = b.rhs->Type();
        auto operand_ok = [](ValueType t) { return t == ValueType::kScalar || t == ValueType::kVector; };
        if (!operand_ok(lt) || !operand_ok(rt)) {
          return Fail(b.pos.start, "binary expression must contain only scalar and instant vector types");
        }
        if (b.return_bool && !IsComparison(b.op)) {
          return Fail(b.pos.start, "bool modifier can only be used on comparison operators");
        }
        if (IsComparison(b.op) && !b.return_bool && lt == ValueType::kScalar && rt == ValueType::kScalar) {
          return Fail(b.pos.start, "comparisons between scalars must use BOOL modifier");
        }
        bool both_vectors = lt == ValueType::kVector && rt == ValueType::kVector;
        if (IsSetOperator(b.op)) {
          if (lt == ValueType::kScalar || rt == ValueType::kScalar) {
            return Fail(b.pos.start, "set operator \"" + std::string(BinOpString(b.op)) +
                                         "\" not allowed in binary scalar expression");
          }
          if (b.matching.card == Cardinality::kManyToOne || b.matching.card == Cardinality::kOneToMany) {
            return Fail(b.pos.start, "no grouping allowed for \"" + std::string(BinOpString(b.op)) + "\" operation");
          }
        }
        if (!both_vectors && (b.matching.explicit_matching || b.matching.card == Cardinality::kManyToOne ||
                              b.matching.card == Cardinality::kOneToMany)) {
          return Fail(b.pos.start, "vector matching only allowed between instant vectors");
        }
        if (b.matching.on) {
          for (const std::string& l : b.matching.include) {
            for (const std::string& m : b.matching.labels) {
              if (l == m) return Fail(b.pos.start, "label \"" + l + "\" must not occur in ON and GROUP clause at once");
            }
          }
        }
        TELKIT_RETURN_IF_ERROR(Check(*b.lhs));
        return Check(*b.rhs);
      }
    }
    return OkStatus();
  }

  std::string_view q_;
  Lexer lex_;
  ParseOptions opts_;
  Token cur_;
  int prev_end_ = 0;
  int depth_ = 0;
};

}  // namespace

Result<ExprPtr> ParseExpr(std::string_view query, const ParseOptions& options) {
  if (!IsValidUtf8(query)) return InvalidArgumentError("1:1: parse error: invalid UTF-8 in query");
  Parser p(query, options);
  return p.Parse();
}

Result<std::vector<LabelMatcher>> ParseMetricSelector(std::string_view text) {
  Parser p(text, {});
  return p.ParseSelectorOnly();
}

Result<int64_t> ParseDuration(std::string_view s) {
  if (s == "0") return int64_t{0};
  static constexpr std::pair<std::string_view, int64_t> kUnits[] = {
      {"y", 365LL * 24 * 3600 * 1000}, {"w", 7LL * 24 * 3600 * 1000}, {"d", 24LL * 3600 * 1000},
      {"h", 3600LL * 1000},           {"m", 60LL * 1000},             {"s", 1000},
      {"ms", 1},
  };
  size_t i = 0, next_unit = 0;
  int64_t total = 0;
  bool any = false;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && IsDigit(s[j])) ++j;
    if (j == i) return InvalidArgumentError("not a valid duration string: \"" + std::string(s) + "\"");
    std::string_view digits = s.substr(i, j - i);
    size_t k = j;
    while (k < s.size() && !IsDigit(s[k])) ++k;
    std::string_view unit = s.substr(j, k - j);
    size_t u = next_unit;
    while (u < std::size(kUnits) && kUnits[u].first != unit) ++u;
    if (u == std::size(kUnits)) return InvalidArgumentError("not a valid duration string: \"" + std::string(s) + "\"");
    next_unit = u + 1;
    if (digits.size() > 18) return InvalidArgumentError("duration out of range: \"" + std::string(s) + "\"");
    int64_t n = std::stoll(std::string(digits));
    if (n > 100LL * 365 * 24 * 3600 * 1000 * 1000 / kUnits[u].second) {
      return InvalidArgumentError("duration out of range: \"" + std::string(s) + "\"");
    }
    total += n * kUnits[u].second;
    if (total > 100LL * 365 * 24 * 3600 * 1000 * 1000) {  // 100000 years
      return InvalidArgumentError("duration out of range: \"" + std::string(s) + "\"");
    }
    any = true;
    i = k;
  }
  if (!any) return InvalidArgumentError("not a valid duration string: \"" + std::string(s) + "\"");
  return total;
}

Result<double> ParseNumber(std::string_view text) {
  std::string s(text);
  std::string body = s;
  bool neg = false;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    neg = body[0] == '-';
    body = body.substr(1);
  }
  std::string lower = Lower(body);
  if (lower == "inf" || lower == "infinity") {
    return neg ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  if (lower == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (body.empty()) return InvalidArgumentError("bad number syntax: \"" + s + "\"");
  bool integer = true;
  for (char c : lower) {
    if (!(IsDigit(c) || c == 'x' || (c >= 'a' && c <= 'f'))) integer = false;
  }
  bool hex = lower.size() > 2 && lower[0] == '0' && lower[1] == 'x';
  if (!hex) {
    for (char c : lower) {
      if (!IsDigit(c)) integer = false;
    }
  }
  if (integer) {
    errno = 0;
    char* end = nullptr;
    unsigned long long v = std::strtoull(body.c_str(), &end, 0);
    if (errno == 0 && end != nullptr && *end == '\0') {
      double d = static_cast<double>(v);
      return neg ? -d : d;
    }
    if (hex) return InvalidArgumentError("bad number syntax: \"" + s + "\"");
  }
  char* end = nullptr;
  double d = std::strtod(body.c_str(), &end);
  if (end == nullptr || *end != '\0' || hex) return InvalidArgumentError("bad number syntax: \"" + s + "\"");
  return neg ? -d : d;
}

namespace {

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<std::string> Unquote(std::string_view lit) {
  if (lit.size() < 2 || lit.front() != lit.back()) return InvalidArgumentError("invalid quoted string");
  char q = lit.front();
  std::string_view body = lit.substr(1, lit.size() - 2);
  if (q == '`') {
    if (body.find('`') != std::string_view::npos) return InvalidArgumentError("invalid quoted string");
    return std::string(body);
  }
  if (q != '"' && q != '\'') return InvalidArgumentError("invalid quoted string");
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == q || c == '\n') return InvalidArgumentError("invalid syntax in quoted string");
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= body.size()) return InvalidArgumentError("invalid syntax in quoted string");
    char e = body[i];
    switch (e) {
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case '\\': out += '\\'; break;
      case '\'':
      case '"':
        if (e != q) return InvalidArgumentError("unknown escape sequence in quoted string");
        out += e;
        break;
      case 'x':
      case 'u':
      case 'U': {
        int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t v = 0;
        for (int k = 1; k <= n; ++k) {
          if (i + k >= body.size()) return InvalidArgumentError("invalid syntax in quoted string");
          int h = HexVal(body[i + k]);
          if (h < 0) return InvalidArgumentError("invalid syntax in quoted string");
          v = v * 16 + static_cast<uint32_t>(h);
        }
        i += n;
        if (e == 'x') {
          out += static_cast<char>(v);
        } else {
          if (v > 0x10FFFF || (v >= 0xD800 && v < 0xE000)) return InvalidArgumentError("invalid syntax in quoted string");
          AppendUtf8(out, v);
        }
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          if (i + 2 >= body.size()) return InvalidArgumentError("invalid syntax in quoted string");
          uint32_t v = 0;
          for (int k = 0; k < 3; ++k) {
            char d = body[i + k];
            if (d < '0' || d > '7') return InvalidArgumentError("invalid syntax in quoted string");
            v = v * 8 + static_cast<uint32_t>(d - '0');
          }
          if (v > 255) return InvalidArgumentError("invalid syntax in quoted string");
          i += 2;
          out += static_cast<char>(v);
          break;
        }
        return InvalidArgumentError("unknown escape sequence in quoted string");
    }
  }
  return out;
}

}  // namespace telkit::promql
