#include "common/rules/template.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>

#include "common/promql/parser.h"
#include "common/base/time_format.h"

namespace telkit::rules {

// ---------------------------------------------------------------- values

TValue TValue::Bool(bool v) {
  TValue t;
  t.kind = Kind::kBool;
  t.b = v;
  return t;
}
TValue TValue::Number(double v) {
  TValue t;
  t.kind = Kind::kNumber;
  t.n = v;
  return t;
}
TValue TValue::String(std::string v) {
  TValue t;
  t.kind = Kind::kString;
  t.s = std::move(v);
  return t;
}
TValue TValue::Map(std::map<std::string, TValue> m) {
  TValue t;
  t.kind = Kind::kMap;
  t.map = std::make_shared<std::map<std::string, TValue>>(std::move(m));
  return t;
}
TValue TValue::StringMap(const std::map<std::string, std::string>& m) {
  std::map<std::string, TValue> out;
  for (const auto& [k, v] : m) out[k] = String(v);
  TValue t = Map(std::move(out));
  t.s = "stringmap";  // marks map[string]string: a missing key is ""
  return t;
}
TValue TValue::List(std::vector<TValue> l) {
  TValue t;
  t.kind = Kind::kList;
  t.list = std::make_shared<std::vector<TValue>>(std::move(l));
  return t;
}
TValue TValue::QuerySample(const std::map<std::string, std::string>& labels, double value) {
  return Map({{"Labels", StringMap(labels)}, {"Value", Number(value)}});
}
bool TValue::Truth() const {
  switch (kind) {
    case Kind::kNil:
      return false;
    case Kind::kBool:
      return b;
    case Kind::kNumber:
      return n != 0;
    case Kind::kString:
      return !s.empty();
    case Kind::kMap:
      return map && !map->empty();
    case Kind::kList:
      return list && !list->empty();
  }
  return false;
}

// ---------------------------------------------------------------- number formatting

namespace {

std::string CFormat(const char* fmt, double v) {
  char buf[128];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// Go prints NaN and infinities as NaN, +Inf, -Inf whatever the verb.
bool SpecialFloat(double v, std::string* out) {
  if (std::isnan(v)) {
    *out = "NaN";
    return true;
  }
  if (std::isinf(v)) {
    *out = v > 0 ? "+Inf" : "-Inf";
    return true;
  }
  return false;
}

// Go's %.<prec>g.
std::string GoG(double v, int prec) {
  std::string s;
  if (SpecialFloat(v, &s)) return s;
  return CFormat(("%." + std::to_string(prec) + "g").c_str(), v);
}

}  // namespace

std::string GoFormatFloat(double v) {
  std::string s;
  if (SpecialFloat(v, &s)) return s;
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  // Shortest digits that round-trip.
  char buf[64];
  int prec = 1;
  for (; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string e(buf);
  size_t epos = e.find('e');
  int exp = std::atoi(e.c_str() + epos + 1);
  if (exp < -4 || exp >= 6) {
    // Go: mantissa digits, 'e', sign, at least two exponent digits.
    std::string mant = e.substr(0, epos);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return mant + eb;
  }
  // strconv's 'g' with the shortest precision: %e when exp < -4 || exp >= 6.
  std::snprintf(buf, sizeof buf, "%.*f", std::max(0, prec - 1 - exp), v);
  return buf;
}

std::string Humanize(double v) {
  if (v == 0 || std::isnan(v) || std::isinf(v)) return GoG(v, 4);
  static const char* kBig[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
  static const char* kSmall[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
  std::string prefix;
  if (std::fabs(v) >= 1) {
    for (const char* p : kBig) {
      if (std::fabs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
    return GoG(v, 4) + prefix;
  }
  for (const char* p : kSmall) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return GoG(v, 4) + prefix;
}

std::string Humanize1024(double v) {
  if (std::fabs(v) <= 1 || std::isnan(v) || std::isinf(v)) return GoG(v, 4);
  static const char* kP[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
  std::string prefix;
  for (const char* p : kP) {
    if (std::fabs(v) < 1024) break;
    prefix = p;
    v /= 1024;
  }
  return GoG(v, 4) + prefix;
}

std::string HumanizeDuration(double v) {
  if (std::isnan(v) || std::isinf(v)) return GoG(v, 4);
  if (v == 0) return GoG(v, 4) + "s";
  if (std::fabs(v) >= 1) {
    std::string sign;
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    int64_t d = static_cast<int64_t>(v);
    int64_t seconds = d % 60, minutes = (d / 60) % 60, hours = (d / 3600) % 24, days = d / 86400;
    char buf[128];
    if (days != 0) {
      std::snprintf(buf, sizeof buf, "%s%" PRId64 "d %" PRId64 "h %" PRId64 "m %" PRId64 "s", sign.c_str(), days, hours,
                    minutes, seconds);
      return buf;
    }
    if (hours != 0) {
      std::snprintf(buf, sizeof buf, "%s%" PRId64 "h %" PRId64 "m %" PRId64 "s", sign.c_str(), hours, minutes, seconds);
      return buf;
    }
    if (minutes != 0) {
      std::snprintf(buf, sizeof buf, "%s%" PRId64 "m %" PRId64 "s", sign.c_str(), minutes, seconds);
      return buf;
    }
    return sign + GoG(v, 4) + "s";
  }
  static const char* kSmall[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
  std::string prefix;
  for (const char* p : kSmall) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return GoG(v, 4) + prefix + "s";
}

std::string HumanizePercentage(double v) { return GoG(v * 100, 4) + "%"; }

std::string HumanizeTimestamp(double v) {
  if (std::isnan(v) || std::isinf(v)) return GoG(v, 4);
  // Go's time.Time.String() in UTC: "2006-01-02 15:04:05.999999999 +0000 UTC".
  // As Prometheus: nanoseconds truncated to a model.Time (milliseconds).
  if (std::fabs(v * 1e9) >= 9.2e18) return GoG(v, 4);
  int64_t ms = static_cast<int64_t>(v * 1e9) / 1000000;
  return FormatUtcNanos(ms * 1000000, "%Y-%m-%d %H:%M:%S", 9, true) + " +0000 UTC";
}

// ---------------------------------------------------------------- AST

namespace {

enum class TokKind {
  kText,
  kIdent,
  kVar,
  kField,
  kDot,
  kString,
  kNumber,
  kPipe,
  kLParen,
  kRParen,
  kDeclare,
  kAssign,
  kComma,
  kEnd
};

struct Token {
  TokKind kind;
  std::string text;  // identifier / variable / field name / string value
  double number = 0;
  bool space_before = false;
  size_t pos = 0;
};

struct Pipeline;

struct Operand {
  enum class Kind { kDot, kVar, kLiteral, kFunc, kPipe } kind = Kind::kDot;
  std::string name;  // variable or function name
  TValue literal;
  std::shared_ptr<Pipeline> pipe;   // kPipe
  std::vector<std::string> fields;  // field chain applied to the operand
  size_t pos = 0;
};

struct Command {
  std::vector<Operand> args;
};

struct Pipeline {
  std::vector<std::string> decl;
  bool assign = false;  // `=` rather than `:=`
  std::vector<Command> cmds;
  size_t pos = 0;
};

}  // namespace

struct TemplateNode {
  enum class Kind { kList, kText, kAction, kIf, kRange, kWith } kind = Kind::kList;
  std::string text;
  Pipeline pipe;
  std::vector<std::shared_ptr<TemplateNode>> list;       // kList: children; others: body
  std::vector<std::shared_ptr<TemplateNode>> else_list;  // if/range/with
};

namespace {

using NodePtr = std::shared_ptr<TemplateNode>;

// Line:column of a byte offset, for messages.
std::string Where(std::string_view text, size_t pos) {
  int line = 1, col = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

Status Err(std::string_view text, size_t pos, const std::string& msg) {
  return InvalidArgumentError("template: " + Where(text, pos) + ": " + msg);
}

const std::vector<std::string>& KnownFunctions() {
  static const std::vector<std::string> kFuncs = {"humanize",
                                                  "humanize1024",
                                                  "humanizeDuration",
                                                  "humanizePercentage",
                                                  "humanizeTimestamp",
                                                  "printf",
                                                  "title",
                                                  "toUpper",
                                                  "toLower",
                                                  "reReplaceAll",
                                                  "match",
                                                  "query",
                                                  "first",
                                                  "value",
                                                  "label",
                                                  "strvalue",
                                                  "sortByLabel",
                                                  "args",
                                                  "stripPort",
                                                  "stripDomain",
                                                  "safeHtml",
                                                  "toTime",
                                                  "parseDuration",
                                                  "externalURL",
                                                  "pathPrefix",
                                                  "and",
                                                  "or",
                                                  "not",
                                                  "len",
                                                  "index",
                                                  "eq",
                                                  "ne",
                                                  "lt",
                                                  "le",
                                                  "gt",
                                                  "ge",
                                                  "print",
                                                  "println",
                                                  "html",
                                                  "js",
                                                  "urlquery",
                                                  "graphLink",
                                                  "tableLink",
                                                  "humanizeDurationSeconds",
                                                  "toDuration",
                                                  "now"};
  return kFuncs;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<NodePtr> Run() {
    vars_.push_back({"$", "$labels", "$externalLabels", "$externalURL", "$value"});
    auto root = std::make_shared<TemplateNode>();
    std::string end_kw;
    TELKIT_RETURN_IF_ERROR(ParseList(*root, &root->list, &end_kw, true));
    return root;
  }

 private:
  // Reads the next action's tokens into toks_ (after text up to it). Returns
  // false at the end of the input.
  Result<bool> NextAction(std::string* text_before) {
    size_t open = text_.find("{{", pos_);
    if (open == std::string_view::npos) {
      *text_before = std::string(text_.substr(pos_));
      pos_ = text_.size();
      return false;
    }
    std::string before(text_.substr(pos_, open - pos_));
    size_t p = open + 2;
    bool trim_left = p + 1 < text_.size() && text_[p] == '-' && std::isspace(static_cast<unsigned char>(text_[p + 1]));
    if (trim_left) {
      p += 2;
      while (!before.empty() && std::isspace(static_cast<unsigned char>(before.back()))) before.pop_back();
    }
    *text_before = before;
    action_pos_ = open;
    toks_.clear();
    ti_ = 0;
    // Comment.
    size_t q = p;
    while (q < text_.size() && std::isspace(static_cast<unsigned char>(text_[q]))) ++q;
    if (text_.substr(q, 2) == "/*") {
      size_t close = text_.find("*/", q + 2);
      if (close == std::string_view::npos) return Err(text_, open, "unclosed comment");
      size_t r = close + 2;
      while (r < text_.size() && std::isspace(static_cast<unsigned char>(text_[r]))) ++r;
      bool trim_right = false;
      if (text_.substr(r, 3) == "-}}") {
        trim_right = true;
        r += 3;
      } else if (text_.substr(r, 2) == "}}") {
        r += 2;
      } else
        return Err(text_, open, "comment ends before closing delimiter");
      pos_ = r;
      if (trim_right) SkipSpace();
      comment_ = true;
      return true;
    }
    comment_ = false;
    bool space = true;
    while (true) {
      if (p >= text_.size()) return Err(text_, open, "unclosed action");
      char c = text_[p];
      if (c == '-' && text_.substr(p, 3) == "-}}" && p > 0 && std::isspace(static_cast<unsigned char>(text_[p - 1]))) {
        pos_ = p + 3;
        SkipSpace();
        break;
      }
      if (c == '}' && text_.substr(p, 2) == "}}") {
        pos_ = p + 2;
        break;
      }
      if (std::isspace(static_cast<unsigned char>(c))) {
        space = true;
        ++p;
        continue;
      }
      Token t;
      t.space_before = space;
      t.pos = p;
      space = false;
      if (c == '|') {
        t.kind = TokKind::kPipe;
        ++p;
      } else if (c == '(') {
        t.kind = TokKind::kLParen;
        ++p;
      } else if (c == ')') {
        t.kind = TokKind::kRParen;
        ++p;
      } else if (c == ',') {
        t.kind = TokKind::kComma;
        ++p;
      } else if (c == ':' && text_.substr(p, 2) == ":=") {
        t.kind = TokKind::kDeclare;
        p += 2;
      } else if (c == '=') {
        t.kind = TokKind::kAssign;
        ++p;
      } else if (c == '"' || c == '`') {
        size_t s = p++;
        if (c == '`') {
          size_t e = text_.find('`', p);
          if (e == std::string_view::npos) return Err(text_, s, "unterminated raw quoted string");
          t.text = std::string(text_.substr(p, e - p));
          p = e + 1;
        } else {
          while (p < text_.size() && text_[p] != '"') {
            if (text_[p] == '\\') ++p;
            ++p;
          }
          if (p >= text_.size()) return Err(text_, s, "unterminated quoted string");
          ++p;
          auto u = promql::Unquote(text_.substr(s, p - s));
          if (!u.ok()) return Err(text_, s, "bad string literal");
          t.text = *u;
        }
        t.kind = TokKind::kString;
      } else if (c == '$') {
        size_t s = p++;
        while (p < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[p])) || text_[p] == '_')) ++p;
        t.kind = TokKind::kVar;
        t.text = std::string(text_.substr(s, p - s));
      } else if (c == '.') {
        size_t s = ++p;
        while (p < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[p])) || text_[p] == '_')) ++p;
        if (p == s) {
          t.kind = TokKind::kDot;
        } else if (std::isdigit(static_cast<unsigned char>(text_[s]))) {
          return Err(text_, s - 1, "bad number syntax");
        } else {
          t.kind = TokKind::kField;
          t.text = std::string(text_.substr(s, p - s));
        }
      } else if (std::isdigit(static_cast<unsigned char>(c)) ||
                 ((c == '-' || c == '+') && p + 1 < text_.size() &&
                  std::isdigit(static_cast<unsigned char>(text_[p + 1])))) {
        size_t s = p++;
        while (p < text_.size() &&
               (std::isalnum(static_cast<unsigned char>(text_[p])) || text_[p] == '.' ||
                ((text_[p] == '-' || text_[p] == '+') && (text_[p - 1] == 'e' || text_[p - 1] == 'E'))))
          ++p;
        std::string num(text_.substr(s, p - s));
        char* end = nullptr;
        double v = std::strtod(num.c_str(), &end);
        if (end != num.c_str() + num.size()) return Err(text_, s, "bad number syntax: " + num);
        t.kind = TokKind::kNumber;
        t.number = v;
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t s = p;
        while (p < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[p])) || text_[p] == '_')) ++p;
        t.kind = TokKind::kIdent;
        t.text = std::string(text_.substr(s, p - s));
      } else {
        return Err(text_, p, std::string("unexpected \"") + c + "\" in action");
      }
      toks_.push_back(std::move(t));
    }
    Token end;
    end.kind = TokKind::kEnd;
    end.pos = pos_;
    toks_.push_back(end);
    return true;
  }

  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  const Token& Peek() const { return toks_[ti_]; }
  const Token& Next() { return toks_[ti_ < toks_.size() - 1 ? ti_++ : ti_]; }

  bool Declared(const std::string& v) const {
    for (const auto& scope : vars_)
      if (std::find(scope.begin(), scope.end(), v) != scope.end()) return true;
    return false;
  }

  // Parses nodes until an {{end}} / {{else}} (returned in *end_kw) or EOF.
  Status ParseList(TemplateNode& owner, std::vector<NodePtr>* out, std::string* end_kw, bool top) {
    (void)owner;
    while (true) {
      std::string text;
      TELKIT_ASSIGN_OR_RETURN(bool more, NextAction(&text));
      if (!text.empty()) {
        auto n = std::make_shared<TemplateNode>();
        n->kind = TemplateNode::Kind::kText;
        n->text = std::move(text);
        out->push_back(n);
      }
      if (!more) {
        if (!top) return Err(text_, text_.size(), "unexpected EOF");
        return OkStatus();
      }
      if (comment_) continue;
      const Token& first = Peek();
      if (first.kind == TokKind::kIdent) {
        const std::string kw = first.text;
        if (kw == "end" || kw == "else") {
          if (top) return Err(text_, first.pos, "unexpected {{" + kw + "}}");
          *end_kw = kw;
          Next();
          return OkStatus();
        }
        if (kw == "if" || kw == "range" || kw == "with") {
          size_t at = first.pos;
          Next();
          TELKIT_RETURN_IF_ERROR(ParseControl(kw, at, out));
          continue;
        }
        if (kw == "define" || kw == "template" || kw == "block" || kw == "break" || kw == "continue") {
          return Err(text_, first.pos, "{{" + kw + "}} is not supported");
        }
      }
      auto n = std::make_shared<TemplateNode>();
      n->kind = TemplateNode::Kind::kAction;
      TELKIT_ASSIGN_OR_RETURN(n->pipe, ParsePipeline(true, false));
      if (Peek().kind != TokKind::kEnd) return Err(text_, Peek().pos, "unexpected token in action");
      out->push_back(n);
    }
  }

  Status ParseControl(std::string kw, size_t at, std::vector<NodePtr>* out) {
    auto n = std::make_shared<TemplateNode>();
    n->kind = kw == "if"      ? TemplateNode::Kind::kIf
              : kw == "range" ? TemplateNode::Kind::kRange
                              : TemplateNode::Kind::kWith;
    vars_.emplace_back();
    TELKIT_ASSIGN_OR_RETURN(n->pipe, ParsePipeline(kw != "if", kw == "range"));
    if (n->pipe.cmds.empty()) return Err(text_, at, "missing value for " + kw);
    if (Peek().kind != TokKind::kEnd) return Err(text_, Peek().pos, "unexpected token in " + kw);
    std::string end_kw;
    TELKIT_RETURN_IF_ERROR(ParseList(*n, &n->list, &end_kw, false));
    vars_.pop_back();
    if (end_kw == "else") {
      // {{else if ...}} / {{else with ...}}: a nested control as the else list.
      if (Peek().kind == TokKind::kIdent && (Peek().text == "if" || Peek().text == "with") && kw == Peek().text) {
        size_t at2 = Peek().pos;
        Next();
        vars_.emplace_back();
        TELKIT_RETURN_IF_ERROR(ParseControl(kw, at2, &n->else_list));
        vars_.pop_back();
        out->push_back(n);
        return OkStatus();
      }
      if (Peek().kind != TokKind::kEnd) return Err(text_, Peek().pos, "unexpected token after else");
      vars_.emplace_back();
      TELKIT_RETURN_IF_ERROR(ParseList(*n, &n->else_list, &end_kw, false));
      vars_.pop_back();
      if (end_kw != "end") return Err(text_, at, "expected end; found else");
    }
    if (Peek().kind != TokKind::kEnd) return Err(text_, Peek().pos, "unexpected token after end");
    out->push_back(n);
    return OkStatus();
  }

  Result<Pipeline> ParsePipeline(bool allow_decl, bool range) {
    Pipeline p;
    p.pos = Peek().pos;
    // Declarations: $x := / $x = / $i, $e :=
    if (allow_decl && Peek().kind == TokKind::kVar) {
      size_t save = ti_;
      std::vector<std::string> names{Next().text};
      if (range && Peek().kind == TokKind::kComma) {
        Next();
        if (Peek().kind == TokKind::kVar) names.push_back(Next().text);
      }
      if (Peek().kind == TokKind::kDeclare || (Peek().kind == TokKind::kAssign && names.size() == 1)) {
        p.assign = Peek().kind == TokKind::kAssign;
        Next();
        if (p.assign && !Declared(names[0])) return Err(text_, p.pos, "undefined variable \"" + names[0] + "\"");
        p.decl = names;
      } else {
        ti_ = save;
      }
    }
    if (!p.assign) {
      for (const auto& n : p.decl) vars_.back().push_back(n);
    }
    while (true) {
      Command c;
      while (Peek().kind != TokKind::kPipe && Peek().kind != TokKind::kEnd && Peek().kind != TokKind::kRParen) {
        TELKIT_ASSIGN_OR_RETURN(Operand o, ParseOperand());
        c.args.push_back(std::move(o));
      }
      if (c.args.empty()) {
        if (Peek().kind == TokKind::kPipe || !p.cmds.empty()) return Err(text_, Peek().pos, "missing command");
        if (!p.decl.empty()) return Err(text_, Peek().pos, "missing value for declaration");
        break;
      }
      p.cmds.push_back(std::move(c));
      if (Peek().kind != TokKind::kPipe) break;
      Next();
    }
    return p;
  }

  Result<Operand> ParseOperand() {
    const Token& t = Next();
    Operand o;
    o.pos = t.pos;
    switch (t.kind) {
      case TokKind::kDot:
        o.kind = Operand::Kind::kDot;
        break;
      case TokKind::kField:
        o.kind = Operand::Kind::kDot;
        o.fields.push_back(t.text);
        break;
      case TokKind::kVar:
        if (!Declared(t.text)) return Err(text_, t.pos, "undefined variable \"" + t.text + "\"");
        o.kind = Operand::Kind::kVar;
        o.name = t.text;
        break;
      case TokKind::kString:
        o.kind = Operand::Kind::kLiteral;
        o.literal = TValue::String(t.text);
        break;
      case TokKind::kNumber:
        o.kind = Operand::Kind::kLiteral;
        o.literal = TValue::Number(t.number);
        break;
      case TokKind::kIdent:
        if (t.text == "true" || t.text == "false") {
          o.kind = Operand::Kind::kLiteral;
          o.literal = TValue::Bool(t.text == "true");
        } else if (t.text == "nil") {
          o.kind = Operand::Kind::kLiteral;
        } else {
          const auto& f = KnownFunctions();
          if (std::find(f.begin(), f.end(), t.text) == f.end())
            return Err(text_, t.pos, "function \"" + t.text + "\" not defined");
          o.kind = Operand::Kind::kFunc;
          o.name = t.text;
        }
        break;
      case TokKind::kLParen: {
        o.kind = Operand::Kind::kPipe;
        TELKIT_ASSIGN_OR_RETURN(Pipeline inner, ParsePipeline(false, false));
        if (Peek().kind != TokKind::kRParen) return Err(text_, Peek().pos, "unclosed left paren");
        Next();
        o.pipe = std::make_shared<Pipeline>(std::move(inner));
        break;
      }
      default:
        return Err(text_, t.pos, "unexpected token \"" + t.text + "\" in operand");
    }
    // Field chain written directly after the operand: $labels.job, (x).Value
    while (Peek().kind == TokKind::kField && !Peek().space_before && o.kind != Operand::Kind::kFunc &&
           o.kind != Operand::Kind::kLiteral)
      o.fields.push_back(Next().text);
    return o;
  }

  std::string_view text_;
  size_t pos_ = 0;
  size_t action_pos_ = 0;
  bool comment_ = false;
  std::vector<Token> toks_;
  size_t ti_ = 0;
  std::vector<std::vector<std::string>> vars_;
};

// ---------------------------------------------------------------- execution

std::string ToText(const TValue& v) {
  switch (v.kind) {
    case TValue::Kind::kNil:
      return "<no value>";
    case TValue::Kind::kBool:
      return v.b ? "true" : "false";
    case TValue::Kind::kNumber:
      return GoFormatFloat(v.n);
    case TValue::Kind::kString:
      return v.s;
    case TValue::Kind::kMap: {
      std::string out = "map[";
      bool first = true;
      for (const auto& [k, e] : *v.map) {
        if (!first) out += " ";
        first = false;
        out += k + ":" + ToText(e);
      }
      return out + "]";
    }
    case TValue::Kind::kList: {
      std::string out = "[";
      for (size_t i = 0; i < v.list->size(); ++i) out += (i ? " " : "") + ToText((*v.list)[i]);
      return out + "]";
    }
  }
  return "";
}

// Go's fmt with the verbs rule templates use.
Result<std::string> GoSprintf(const std::string& fmt, const std::vector<TValue>& args) {
  std::string out;
  size_t ai = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    size_t s = i++;
    while (i < fmt.size() && std::strchr("+- #0", fmt[i])) ++i;
    while (i < fmt.size() && (std::isdigit(static_cast<unsigned char>(fmt[i])) || fmt[i] == '.')) ++i;
    if (i >= fmt.size()) {
      out += "%!(NOVERB)";
      break;
    }
    char verb = fmt[i];
    if (verb == '%') {
      out += '%';
      continue;
    }
    std::string spec = fmt.substr(s, i - s);
    if (ai >= args.size()) {
      out += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const TValue& a = args[ai++];
    char buf[256];
    switch (verb) {
      case 'v':
      case 's':
        if (a.kind == TValue::Kind::kString || verb == 'v') {
          std::string txt = ToText(a);
          std::snprintf(buf, sizeof buf, (spec + "s").c_str(), txt.c_str());
          out += buf;
        } else {
          out += "%!s(" + std::string(a.kind == TValue::Kind::kNumber ? "float64=" : "") + ToText(a) + ")";
        }
        break;
      case 'q':
        out += "\"" + ToText(a) + "\"";
        break;
      case 'd':
        if (a.kind == TValue::Kind::kNumber && a.n == std::floor(a.n) && std::fabs(a.n) < 9.2e18) {
          std::snprintf(buf, sizeof buf, (spec + "lld").c_str(), static_cast<long long>(a.n));
          out += buf;
        } else {
          out += "%!d(" + std::string(a.kind == TValue::Kind::kNumber ? "float64=" : "string=") + ToText(a) + ")";
        }
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (a.kind != TValue::Kind::kNumber) {
          out += std::string("%!") + verb + "(string=" + ToText(a) + ")";
          break;
        }
        std::string special;
        if (SpecialFloat(a.n, &special)) {
          out += special;
          break;
        }
        if ((verb == 'g' || verb == 'G') && spec.find('.') == std::string::npos) {
          out += GoFormatFloat(a.n);
          break;
        }
        std::snprintf(buf, sizeof buf, (spec + verb).c_str(), a.n);
        out += buf;
        break;
      }
      case 'x':
      case 'X':
        if (a.kind == TValue::Kind::kNumber) {
          std::snprintf(buf, sizeof buf, (spec + "llx").c_str(), static_cast<long long>(a.n));
          out += buf;
        } else {
          for (unsigned char c : ToText(a)) {
            std::snprintf(buf, sizeof buf, verb == 'x' ? "%02x" : "%02X", c);
            out += buf;
          }
        }
        break;
      case 't':
        out += ToText(a);
        break;
      default:
        out += std::string("%!") + verb + "(" + ToText(a) + ")";
    }
  }
  if (ai < args.size()) {
    out += "%!(EXTRA ";
    for (size_t i = ai; i < args.size(); ++i) out += (i > ai ? ", " : "") + ToText(args[i]);
    out += ")";
  }
  return out;
}

// Go's regexp replacement ($1, ${1}, ${name}) to RE2's (\1).
std::string GoReplacementToRe2(const std::string& repl) {
  std::string out;
  for (size_t i = 0; i < repl.size(); ++i) {
    char c = repl[i];
    if (c == '\\') {
      out += "\\\\";
      continue;
    }
    if (c != '$') {
      out += c;
      continue;
    }
    if (i + 1 < repl.size() && repl[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool brace = j < repl.size() && repl[j] == '{';
    if (brace) ++j;
    size_t s = j;
    while (j < repl.size() && std::isdigit(static_cast<unsigned char>(repl[j]))) ++j;
    if (j == s || (brace && (j >= repl.size() || repl[j] != '}'))) {
      continue;
    }  // unsupported: dropped like Go's empty
    out += "\\" + repl.substr(s, j - s);
    i = brace ? j : j - 1;
  }
  return out;
}

int Compare(const TValue& a, const TValue& b, bool* ok) {
  *ok = true;
  if (a.kind == TValue::Kind::kNumber && b.kind == TValue::Kind::kNumber) return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
  if (a.kind == TValue::Kind::kString && b.kind == TValue::Kind::kString) return a.s.compare(b.s);
  if (a.kind == TValue::Kind::kBool && b.kind == TValue::Kind::kBool) return int(a.b) - int(b.b);
  if (a.kind == TValue::Kind::kNil && b.kind == TValue::Kind::kNil) return 0;
  *ok = false;
  return 0;
}

class Executor {
 public:
  Executor(const TemplateData& data) : data_(data) {
    dot_ = TValue::Map({{"Labels", TValue::StringMap(data.labels)},
                        {"ExternalLabels", TValue::StringMap(data.external_labels)},
                        {"ExternalURL", TValue::String(data.external_url)},
                        {"Value", TValue::Number(data.value)}});
    vars_ = {{"$", dot_},
             {"$labels", (*dot_.map)["Labels"]},
             {"$externalLabels", (*dot_.map)["ExternalLabels"]},
             {"$externalURL", (*dot_.map)["ExternalURL"]},
             {"$value", (*dot_.map)["Value"]}};
  }

  const TValue& root() const { return dot_; }

  Status Run(const std::vector<NodePtr>& list, const TValue& dot, std::string* out) {
    for (const auto& n : list) TELKIT_RETURN_IF_ERROR(RunNode(*n, dot, out));
    return OkStatus();
  }

 private:
  Status RunNode(const TemplateNode& n, const TValue& dot, std::string* out) {
    if (++steps_ > 1'000'000) return InvalidArgumentError("template: execution exceeded 1000000 steps");
    switch (n.kind) {
      case TemplateNode::Kind::kList:
        return Run(n.list, dot, out);
      case TemplateNode::Kind::kText:
        *out += n.text;
        return OkStatus();
      case TemplateNode::Kind::kAction: {
        TELKIT_ASSIGN_OR_RETURN(TValue v, EvalPipeline(n.pipe, dot));
        if (n.pipe.decl.empty()) *out += ToText(v);
        return OkStatus();
      }
      case TemplateNode::Kind::kIf:
      case TemplateNode::Kind::kWith: {
        size_t mark = vars_.size();
        TELKIT_ASSIGN_OR_RETURN(TValue v, EvalPipeline(n.pipe, dot));
        Status st =
            v.Truth() ? Run(n.list, n.kind == TemplateNode::Kind::kWith ? v : dot, out) : Run(n.else_list, dot, out);
        vars_.resize(mark);
        return st;
      }
      case TemplateNode::Kind::kRange: {
        size_t mark = vars_.size();
        Pipeline p = n.pipe;
        std::vector<std::string> decl = p.decl;
        p.decl.clear();
        TELKIT_ASSIGN_OR_RETURN(TValue v, EvalPipeline(p, dot));
        std::vector<std::pair<TValue, TValue>> items;  // key, element
        if (v.kind == TValue::Kind::kList) {
          for (size_t i = 0; i < v.list->size(); ++i) items.emplace_back(TValue::Number(double(i)), (*v.list)[i]);
        } else if (v.kind == TValue::Kind::kMap) {
          for (const auto& [k, e] : *v.map) items.emplace_back(TValue::String(k), e);
        } else if (v.kind == TValue::Kind::kNumber) {
          for (int64_t i = 0; i < static_cast<int64_t>(v.n) && i < 100000; ++i)
            items.emplace_back(TValue::Number(double(i)), TValue::Number(double(i)));
        } else if (v.kind != TValue::Kind::kNil) {
          return InvalidArgumentError("template: range can't iterate over " + ToText(v));
        }
        if (items.empty()) {
          Status st = Run(n.else_list, dot, out);
          vars_.resize(mark);
          return st;
        }
        for (const auto& [k, e] : items) {
          size_t m2 = vars_.size();
          if (decl.size() == 1) vars_.emplace_back(decl[0], e);
          if (decl.size() == 2) {
            vars_.emplace_back(decl[0], k);
            vars_.emplace_back(decl[1], e);
          }
          Status st = Run(n.list, e, out);
          vars_.resize(m2);
          if (!st.ok()) {
            vars_.resize(mark);
            return st;
          }
        }
        vars_.resize(mark);
        return OkStatus();
      }
    }
    return OkStatus();
  }

  TValue* Var(const std::string& name) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
      if (it->first == name) return &it->second;
    return nullptr;
  }

  Result<TValue> Field(TValue v, const std::vector<std::string>& fields) {
    for (const auto& f : fields) {
      if (v.kind == TValue::Kind::kNil) return TValue{};
      if (v.kind != TValue::Kind::kMap)
        return InvalidArgumentError("template: can't evaluate field " + f + " in type " +
                                    (v.kind == TValue::Kind::kNumber   ? "float64"
                                     : v.kind == TValue::Kind::kString ? "string"
                                                                       : "value"));
      auto it = v.map->find(f);
      if (it == v.map->end()) {
        if (v.s == "stringmap") {
          v = TValue::String("");
          continue;
        }
        return InvalidArgumentError("template: can't evaluate field " + f);
      }
      v = it->second;
    }
    return v;
  }

  Result<TValue> EvalOperand(const Operand& o, const TValue& dot) {
    TValue v;
    switch (o.kind) {
      case Operand::Kind::kDot:
        v = dot;
        break;
      case Operand::Kind::kVar: {
        TValue* p = Var(o.name);
        if (!p) return InvalidArgumentError("template: undefined variable " + o.name);
        v = *p;
        break;
      }
      case Operand::Kind::kLiteral:
        v = o.literal;
        break;
      case Operand::Kind::kFunc: {
        TELKIT_ASSIGN_OR_RETURN(v, CallFunc(o.name, {}, dot));
        break;
      }
      case Operand::Kind::kPipe: {
        TELKIT_ASSIGN_OR_RETURN(v, EvalPipeline(*o.pipe, dot));
        break;
      }
    }
    return Field(std::move(v), o.fields);
  }

  Result<TValue> EvalPipeline(const Pipeline& p, const TValue& dot) {
    TValue prev;
    bool have_prev = false;
    for (const auto& c : p.cmds) {
      const Operand& head = c.args[0];
      if (head.kind == Operand::Kind::kFunc) {
        std::vector<TValue> args;
        for (size_t i = 1; i < c.args.size(); ++i) {
          TELKIT_ASSIGN_OR_RETURN(TValue a, EvalOperand(c.args[i], dot));
          args.push_back(std::move(a));
        }
        if (have_prev) args.push_back(prev);
        TELKIT_ASSIGN_OR_RETURN(prev, CallFunc(head.name, args, dot));
      } else {
        if (c.args.size() > 1 || have_prev)
          return InvalidArgumentError("template: can't give argument to non-function");
        TELKIT_ASSIGN_OR_RETURN(prev, EvalOperand(head, dot));
      }
      have_prev = true;
    }
    if (!p.decl.empty()) {
      if (p.assign) {
        TValue* v = Var(p.decl[0]);
        if (v) *v = prev;
      } else {
        vars_.emplace_back(p.decl[0], prev);
      }
    }
    return prev;
  }

  static Status ArgCount(const std::string& name, const std::vector<TValue>& a, size_t n) {
    if (a.size() != n)
      return InvalidArgumentError("template: wrong number of args for " + name + ": want " + std::to_string(n) +
                                  " got " + std::to_string(a.size()));
    return OkStatus();
  }

  static Result<double> ToNumber(const std::string& name, const TValue& v) {
    if (v.kind == TValue::Kind::kNumber) return v.n;
    if (v.kind == TValue::Kind::kString) {
      // Prometheus' humanize* accept strings holding numbers (convertToFloat).
      char* end = nullptr;
      double d = std::strtod(v.s.c_str(), &end);
      if (!v.s.empty() && end == v.s.c_str() + v.s.size()) return d;
    }
    return InvalidArgumentError("template: " + name + ": can't convert " + ToText(v) + " to float");
  }

  Result<TValue> CallFunc(const std::string& f, const std::vector<TValue>& a, const TValue& dot) {
    (void)dot;
    auto num1 = [&](std::string (*fn)(double)) -> Result<TValue> {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 1));
      TELKIT_ASSIGN_OR_RETURN(double d, ToNumber(f, a[0]));
      return TValue::String(fn(d));
    };
    if (f == "humanize") return num1(Humanize);
    if (f == "humanize1024") return num1(Humanize1024);
    if (f == "humanizeDuration") return num1(HumanizeDuration);
    if (f == "humanizePercentage") return num1(HumanizePercentage);
    if (f == "humanizeTimestamp") return num1(HumanizeTimestamp);
    if (f == "printf") {
      if (a.empty() || a[0].kind != TValue::Kind::kString)
        return InvalidArgumentError("template: printf needs a format string");
      TELKIT_ASSIGN_OR_RETURN(std::string s, GoSprintf(a[0].s, std::vector<TValue>(a.begin() + 1, a.end())));
      return TValue::String(s);
    }
    if (f == "print" || f == "println") {
      std::string s;
      for (size_t i = 0; i < a.size(); ++i) {
        bool both_non_string = i > 0 && a[i].kind != TValue::Kind::kString && a[i - 1].kind != TValue::Kind::kString;
        if (i > 0 && (f == "println" || both_non_string)) s += " ";
        s += ToText(a[i]);
      }
      if (f == "println") s += "\n";
      return TValue::String(s);
    }
    if (f == "toUpper" || f == "toLower" || f == "title" || f == "safeHtml" || f == "stripPort" || f == "stripDomain" ||
        f == "html" || f == "js" || f == "urlquery") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 1));
      std::string s = ToText(a[0]);
      if (f == "toUpper")
        for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (f == "toLower")
        for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (f == "title") {
        bool start = true;
        for (auto& c : s) {
          if (start && std::isalpha(static_cast<unsigned char>(c)))
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          start = !(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '\'' ||
                    static_cast<unsigned char>(c) >= 0x80);
        }
      }
      if (f == "stripPort") {
        if (!s.empty() && s[0] == '[') {
          size_t e = s.find(']');
          if (e != std::string::npos) s = s.substr(1, e - 1);
        } else if (std::count(s.begin(), s.end(), ':') == 1) {
          s = s.substr(0, s.find(':'));
        }
      }
      if (f == "stripDomain") {
        std::string port;
        size_t colon = s.rfind(':');
        if (colon != std::string::npos && std::count(s.begin(), s.end(), ':') == 1) {
          port = s.substr(colon);
          s = s.substr(0, colon);
        }
        bool ip = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
        });
        if (!ip && s.find('.') != std::string::npos) s = s.substr(0, s.find('.'));
        s += port;
      }
      return TValue::String(s);
    }
    if (f == "reReplaceAll") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 3));
      RE2 re(ToText(a[0]));
      if (!re.ok())
        return InvalidArgumentError("template: reReplaceAll: bad regexp '" + ToText(a[0]) + "': " + re.error());
      std::string s = ToText(a[2]);
      RE2::GlobalReplace(&s, re, GoReplacementToRe2(ToText(a[1])));
      return TValue::String(s);
    }
    if (f == "match") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 2));
      RE2 re(ToText(a[0]));
      if (!re.ok()) return InvalidArgumentError("template: match: bad regexp '" + ToText(a[0]) + "'");
      return TValue::Bool(RE2::PartialMatch(ToText(a[1]), re));
    }
    if (f == "query") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 1));
      if (!data_.query) return InvalidArgumentError("template: query: no query engine here");
      auto r = data_.query(ToText(a[0]));
      if (!r.ok())
        return InvalidArgumentError("template: query '" + ToText(a[0]) + "': " + std::string(r.status().message()));
      std::vector<TValue> out;
      for (const auto& s : *r) out.push_back(TValue::QuerySample(s.labels, s.value));
      return TValue::List(std::move(out));
    }
    if (f == "first") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 1));
      if (a[0].kind != TValue::Kind::kList || a[0].list->empty())
        return InvalidArgumentError("template: first() called on vector with no elements");
      return a[0].list->front();
    }
    if (f == "value" || f == "strvalue") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 1));
      if (a[0].kind != TValue::Kind::kMap) return InvalidArgumentError("template: " + f + ": not a sample");
      if (f == "value") return Field(a[0], {"Value"});
      TELKIT_ASSIGN_OR_RETURN(TValue l, Field(a[0], {"Labels", "__value__"}));
      return l;
    }
    if (f == "label") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 2));
      if (a[1].kind != TValue::Kind::kMap) return InvalidArgumentError("template: label: not a sample");
      return Field(a[1], {"Labels", ToText(a[0])});
    }
    if (f == "sortByLabel") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 2));
      if (a[1].kind != TValue::Kind::kList) return InvalidArgumentError("template: sortByLabel: not a vector");
      std::vector<TValue> l = *a[1].list;
      std::string name = ToText(a[0]);
      std::stable_sort(l.begin(), l.end(), [&](const TValue& x, const TValue& y) {
        auto lx = Field(x, {"Labels", name}), ly = Field(y, {"Labels", name});
        return (lx.ok() ? lx->s : "") < (ly.ok() ? ly->s : "");
      });
      return TValue::List(std::move(l));
    }
    if (f == "args") {
      std::map<std::string, TValue> m;
      for (size_t i = 0; i < a.size(); ++i) m["arg" + std::to_string(i)] = a[i];
      return TValue::Map(std::move(m));
    }
    if (f == "toTime") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 1));
      TELKIT_ASSIGN_OR_RETURN(double d, ToNumber(f, a[0]));
      return TValue::String(HumanizeTimestamp(d));
    }
    if (f == "parseDuration") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 1));
      auto d = promql::ParseDuration(ToText(a[0]));
      if (!d.ok()) return InvalidArgumentError("template: parseDuration: " + std::string(d.status().message()));
      return TValue::Number(double(*d) / 1000.0);
    }
    if (f == "externalURL") return TValue::String(data_.external_url);
    if (f == "pathPrefix") return TValue::String("");
    if (f == "graphLink" || f == "tableLink") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 1));
      return TValue::String("/graph?g0.expr=" + ToText(a[0]) + "&g0.tab=" + (f == "graphLink" ? "0" : "1"));
    }
    if (f == "not") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 1));
      return TValue::Bool(!a[0].Truth());
    }
    if (f == "and" || f == "or") {
      if (a.empty()) return InvalidArgumentError("template: " + f + " needs arguments");
      for (size_t i = 0; i + 1 < a.size(); ++i) {
        if (f == "and" && !a[i].Truth()) return a[i];
        if (f == "or" && a[i].Truth()) return a[i];
      }
      return a.back();
    }
    if (f == "len") {
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 1));
      if (a[0].kind == TValue::Kind::kString) return TValue::Number(double(a[0].s.size()));
      if (a[0].kind == TValue::Kind::kList) return TValue::Number(double(a[0].list->size()));
      if (a[0].kind == TValue::Kind::kMap) return TValue::Number(double(a[0].map->size()));
      return InvalidArgumentError("template: len of " + ToText(a[0]));
    }
    if (f == "index") {
      if (a.empty()) return InvalidArgumentError("template: index needs arguments");
      TValue v = a[0];
      for (size_t i = 1; i < a.size(); ++i) {
        if (v.kind == TValue::Kind::kMap) {
          auto it = v.map->find(ToText(a[i]));
          v = it == v.map->end() ? (v.s == "stringmap" ? TValue::String("") : TValue{}) : it->second;
        } else if (v.kind == TValue::Kind::kList && a[i].kind == TValue::Kind::kNumber) {
          size_t k = static_cast<size_t>(a[i].n);
          if (a[i].n < 0 || k >= v.list->size()) return InvalidArgumentError("template: index out of range");
          v = (*v.list)[k];
        } else {
          return InvalidArgumentError("template: can't index item of type " + ToText(v));
        }
      }
      return v;
    }
    if (f == "eq" || f == "ne" || f == "lt" || f == "le" || f == "gt" || f == "ge") {
      if (a.size() < 2) return InvalidArgumentError("template: " + f + " needs two arguments");
      bool ok = true;
      if (f == "eq") {
        for (size_t i = 1; i < a.size(); ++i) {
          int c = Compare(a[0], a[i], &ok);
          if (!ok) return InvalidArgumentError("template: eq: incompatible types for comparison");
          if (c == 0) return TValue::Bool(true);
        }
        return TValue::Bool(false);
      }
      TELKIT_RETURN_IF_ERROR(ArgCount(f, a, 2));
      int c = Compare(a[0], a[1], &ok);
      if (!ok) return InvalidArgumentError("template: " + f + ": incompatible types for comparison");
      bool r = f == "ne" ? c != 0 : f == "lt" ? c < 0 : f == "le" ? c <= 0 : f == "gt" ? c > 0 : c >= 0;
      return TValue::Bool(r);
    }
    return InvalidArgumentError("template: function \"" + f + "\" not implemented");
  }

  const TemplateData& data_;
  TValue dot_;
  std::vector<std::pair<std::string, TValue>> vars_;
  int64_t steps_ = 0;
};

}  // namespace

Result<Template> Template::Parse(std::string_view text) {
  Parser p(text);
  TELKIT_ASSIGN_OR_RETURN(NodePtr root, p.Run());
  Template t;
  t.root_ = std::move(root);
  return t;
}

Result<std::string> Template::Execute(const TemplateData& data) const {
  Executor ex(data);
  std::string out;
  TELKIT_RETURN_IF_ERROR(ex.Run(root_->list, ex.root(), &out));
  return out;
}

Result<std::string> ExpandTemplate(std::string_view text, const TemplateData& data) {
  if (text.find("{{") == std::string_view::npos) return std::string(text);
  TELKIT_ASSIGN_OR_RETURN(Template t, Template::Parse(text));
  return t.Execute(data);
}

}  // namespace telkit::rules
