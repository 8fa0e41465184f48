#include "common/logql/pipeline.h"
#include "common/base/time_format.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <variant>

namespace telkit::logql {

// ---- LineLabels ------------------------------------------------------------

void LineLabels::Reset(const Labels& stream, std::span<const Label> metadata) {
  stream_ = &stream;
  labels_.assign(stream.begin(), stream.end());
  for (const Label& l : metadata) {
    if (l.value.empty()) continue;
    // Metadata that collides with a stream label keeps the stream's value.
    if (!stream.Get(l.name).empty()) continue;
    Set(l.name, l.value);
  }
}

std::string_view LineLabels::Get(std::string_view name) const {
  auto it = std::lower_bound(labels_.begin(), labels_.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  if (it != labels_.end() && it->name == name) return it->value;
  return {};
}

bool LineLabels::IsStreamLabel(std::string_view name) const { return stream_ && !stream_->Get(name).empty(); }

void LineLabels::Set(std::string_view name, std::string_view value) {
  auto it = std::lower_bound(labels_.begin(), labels_.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  bool found = it != labels_.end() && it->name == name;
  if (value.empty()) {
    if (found) labels_.erase(it);
    return;
  }
  if (found) {
    it->value.assign(value);
  } else {
    labels_.insert(it, Label{std::string(name), std::string(value)});
  }
}

void LineLabels::SetErr(std::string_view err, std::string_view details) {
  if (HasErr()) return;
  Set(kErrorLabel, err);
  if (!details.empty()) Set(kErrorDetailsLabel, details);
}

Labels LineLabels::ToLabels() const {
  auto r = Labels::FromUnsorted(labels_);
  return r.ok() ? *r : Labels();
}

std::string SanitizeLabelKey(std::string_view key) {
  std::string out;
  out.reserve(key.size() + 1);
  if (!key.empty() && std::isdigit(static_cast<unsigned char>(key[0]))) out.push_back('_');
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out.push_back(ok ? c : '_');
  }
  return out;
}

namespace {

// Sets a parsed label the way Loki's parsers do.
void SetParsed(LineLabels* lbs, std::string key, std::string_view value) {
  if (lbs->IsStreamLabel(key)) key += "_extracted";
  lbs->Set(key, value);
}

// ---- a small JSON scanner that keeps number text as written ---------------

struct JsonScanner {
  std::string_view s;
  size_t i = 0;
  void Ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  bool Eat(char c) {
    Ws();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  static void AppendUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  bool Hex4(uint32_t* v) {
    if (i + 4 > s.size()) return false;
    *v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[i++];
      *v <<= 4;
      if (c >= '0' && c <= '9') *v |= c - '0';
      else if (c >= 'a' && c <= 'f') *v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') *v |= c - 'A' + 10;
      else return false;
    }
    return true;
  }
  // REQUIRES: s[i] == '"'.
  bool String(std::string* out) {
    ++i;
    out->clear();
    while (i < s.size()) {
      size_t j = i;
      while (j < s.size() && s[j] != '"' && s[j] != '\\') ++j;
      out->append(s.data() + i, j - i);
      i = j;
      if (i >= s.size()) return false;
      char c = s[i++];
      if (c == '"') return true;
      if (i >= s.size()) return false;
      char e = s[i++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= s.size() && s[i] == '\\' && s[i + 1] == 'u') {
            i += 2;
            uint32_t lo;
            if (!Hex4(&lo)) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  // Skips any value; *raw is its text.
  bool Skip(std::string_view* raw) {
    Ws();
    size_t start = i;
    if (i >= s.size()) return false;
    char c = s[i];
    if (c == '"') {
      std::string tmp;
      if (!String(&tmp)) return false;
    } else if (c == '{' || c == '[') {
      int depth = 0;
      while (i < s.size()) {
        char d = s[i];
        if (d == '"') {
          std::string tmp;
          if (!String(&tmp)) return false;
          continue;
        }
        ++i;
        if (d == '{' || d == '[') ++depth;
        if (d == '}' || d == ']') {
          if (--depth == 0) break;
        }
      }
      if (depth != 0) return false;
    } else {
      while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
             s[i] != '\n' && s[i] != '\r')
        ++i;
      std::string_view lit = s.substr(start, i - start);
      if (lit.empty()) return false;
      if (lit != "true" && lit != "false" && lit != "null") {
        char* end = nullptr;
        std::string tmp(lit);
        std::strtod(tmp.c_str(), &end);
        if (end != tmp.c_str() + tmp.size()) return false;
      }
    }
    if (raw) *raw = s.substr(start, i - start);
    return true;
  }
};

// Flattens a JSON object into labels (Loki's json parser without params):
// nested keys joined with '_', arrays skipped.
bool JsonFlatten(JsonScanner* js, const std::string& prefix, LineLabels* lbs) {
  if (!js->Eat('{')) return false;
  if (js->Eat('}')) return true;
  std::string key, str;
  while (true) {
    js->Ws();
    if (js->i >= js->s.size() || js->s[js->i] != '"') return false;
    if (!js->String(&key)) return false;
    if (!js->Eat(':')) return false;
    js->Ws();
    if (js->i >= js->s.size()) return false;
    std::string name = prefix.empty() ? SanitizeLabelKey(key) : prefix + "_" + SanitizeLabelKey(key);
    char c = js->s[js->i];
    if (c == '{') {
      if (!JsonFlatten(js, name, lbs)) return false;
    } else if (c == '"') {
      if (!js->String(&str)) return false;
      SetParsed(lbs, name, str);
    } else if (c == '[') {
      if (!js->Skip(nullptr)) return false;
    } else {
      std::string_view raw;
      if (!js->Skip(&raw)) return false;
      if (raw != "null") SetParsed(lbs, name, raw);
    }
    if (js->Eat(',')) continue;
    if (js->Eat('}')) return true;
    return false;
  }
}

// The value at `path` in the JSON text `doc`: strings unquoted, other values
// as their JSON text. False when absent.
bool JsonPathValue(std::string_view doc, std::span<const std::string> path, std::string* out) {
  JsonScanner js{doc};
  std::string key;
  for (size_t p = 0; p < path.size(); ++p) {
    const std::string& want = path[p];
    js.Ws();
    if (want.size() > 2 && want.front() == '[' && want.back() == ']') {
      long idx = std::strtol(want.c_str() + 1, nullptr, 10);
      if (!js.Eat('[')) return false;
      for (long k = 0;; ++k) {
        if (k == idx) break;
        if (!js.Skip(nullptr)) return false;
        if (!js.Eat(',')) return false;
      }
      continue;
    }
    if (!js.Eat('{')) return false;
    bool found = false;
    while (!found) {
      js.Ws();
      if (js.i >= js.s.size() || js.s[js.i] != '"' || !js.String(&key)) return false;
      if (!js.Eat(':')) return false;
      if (key == want) {
        found = true;
        break;
      }
      if (!js.Skip(nullptr)) return false;
      if (!js.Eat(',')) return false;
    }
  }
  js.Ws();
  if (js.i < js.s.size() && js.s[js.i] == '"') return js.String(out);
  std::string_view raw;
  if (!js.Skip(&raw)) return false;
  if (raw == "null") return false;
  out->assign(raw);
  return true;
}

// ---- logfmt (go-logfmt's decoder) ----------------------------------------

bool Logfmt(std::string_view s, bool strict, bool keep_empty, std::span<const JsonParam> params, LineLabels* lbs,
            std::string* err) {
  size_t i = 0;
  std::string val;
  while (i < s.size()) {
    while (i < s.size() && static_cast<unsigned char>(s[i]) <= ' ') ++i;
    if (i >= s.size()) break;
    size_t ks = i;
    while (i < s.size() && static_cast<unsigned char>(s[i]) > ' ' && s[i] != '=' && s[i] != '"') ++i;
    std::string_view key = s.substr(ks, i - ks);
    if (key.empty()) {
      if (strict) {
        *err = "logfmt syntax error at pos " + std::to_string(i + 1) + " : unexpected '" + std::string(1, s[i]) + "'";
        return false;
      }
      ++i;
      continue;
    }
    val.clear();
    bool has_eq = i < s.size() && s[i] == '=';
    if (has_eq) {
      ++i;
      if (i < s.size() && s[i] == '"') {
        ++i;
        bool closed = false;
        while (i < s.size()) {
          char c = s[i++];
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\' && i < s.size()) {
            char e = s[i++];
            switch (e) {
              case 'n': val.push_back('\n'); break;
              case 't': val.push_back('\t'); break;
              case 'r': val.push_back('\r'); break;
              default: val.push_back(e);
            }
            continue;
          }
          val.push_back(c);
        }
        if (!closed) {
          if (strict) {
            *err = "logfmt syntax error at pos " + std::to_string(i + 1) + " : unterminated quoted value";
            return false;
          }
        }
      } else {
        size_t vs = i;
        while (i < s.size() && static_cast<unsigned char>(s[i]) > ' ') {
          if (s[i] == '"' || s[i] == '=') {
            if (strict) {
              *err = "logfmt syntax error at pos " + std::to_string(i + 1) + " : unexpected '" +
                     std::string(1, s[i]) + "'";
              return false;
            }
          }
          ++i;
        }
        val.assign(s.substr(vs, i - vs));
      }
    } else if (i < s.size() && s[i] == '"') {
      if (strict) {
        *err = "logfmt syntax error at pos " + std::to_string(i + 1) + " : unexpected '\"'";
        return false;
      }
      ++i;
    }
    if (val.empty() && !keep_empty) continue;
    if (!params.empty()) {
      for (const JsonParam& p : params) {
        if (!p.path.empty() && p.path[0] == key) SetParsed(lbs, p.label, val);
      }
      continue;
    }
    SetParsed(lbs, SanitizeLabelKey(key), val);
  }
  return true;
}

// ---- pattern ----------------------------------------------------------------

void Pattern(const Stage& st, std::string_view in, LineLabels* lbs) {
  const auto& lits = st.pattern_literals;
  const auto& names = st.pattern_names;
  size_t caps = names.size();
  if (!lits[0].empty()) {
    if (in.substr(0, lits[0].size()) != lits[0]) return;
    in.remove_prefix(lits[0].size());
  }
  std::vector<std::pair<size_t, std::string_view>> out;
  for (size_t c = 0; c < caps; ++c) {
    const std::string& next = lits[c + 1];
    if (next.empty()) {  // ends on a capture
      out.emplace_back(c, in);
      in = {};
      break;
    }
    size_t pos = in.find(next);
    if (pos == std::string_view::npos) {
      out.emplace_back(c, in);  // the rest of the line
      break;
    }
    out.emplace_back(c, in.substr(0, pos));
    in.remove_prefix(pos + next.size());
  }
  for (auto& [c, v] : out) {
    if (!names[c].empty()) SetParsed(lbs, names[c], v);
  }
}

// ---- label filters ----------------------------------------------------------

bool Compare(CmpOp op, double a, double b) {
  switch (op) {
    case CmpOp::kEq: return a == b;
    case CmpOp::kNe: return a != b;
    case CmpOp::kGt: return a > b;
    case CmpOp::kGe: return a >= b;
    case CmpOp::kLt: return a < b;
    case CmpOp::kLe: return a <= b;
  }
  return false;
}

bool RunLabelFilter(const LabelFilter& f, LineLabels* lbs) {
  switch (f.kind) {
    case LabelFilter::Kind::kAnd: {
      bool l = RunLabelFilter(*f.left, lbs);
      bool r = RunLabelFilter(*f.right, lbs);
      return l && r;
    }
    case LabelFilter::Kind::kOr: {
      bool l = RunLabelFilter(*f.left, lbs);
      if (l) return true;
      return RunLabelFilter(*f.right, lbs);
    }
    case LabelFilter::Kind::kMatcher: return f.matcher->Matches(lbs->Get(f.matcher->name()));
    default: break;
  }
  // Numeric kinds: a line with an error passes (only string matchers drop it).
  if (lbs->HasErr()) return true;
  std::string_view v = lbs->Get(f.name);
  if (v.empty()) return f.op == CmpOp::kNe;
  Result<double> x = 0.0;
  if (f.kind == LabelFilter::Kind::kNumber) {
    std::string tmp(v);
    char* end = nullptr;
    double d = std::strtod(tmp.c_str(), &end);
    if (tmp.empty() || end != tmp.c_str() + tmp.size()) {
      x = InvalidArgumentError("strconv.ParseFloat: parsing \"" + tmp + "\": invalid syntax");
    } else {
      x = d;
    }
  } else if (f.kind == LabelFilter::Kind::kDuration) {
    x = ParseDurationSeconds(v);
  } else {
    x = ParseBytes(v);
  }
  if (!x.ok()) {
    lbs->SetErr("LabelFilterErr", x.status().message());
    return true;
  }
  return Compare(f.op, *x, f.value);
}

bool IsAnsiEnd(char c) { return (c >= '@' && c <= '~'); }

std::string Decolorize(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\x1b' && i + 1 < in.size() && in[i + 1] == '[') {
      size_t j = i + 2;
      while (j < in.size() && !IsAnsiEnd(in[j])) ++j;
      if (j < in.size()) {
        i = j;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

}  // namespace

bool LineFilterMatches(const LineFilter& f, std::string_view line) {
  bool any = false;
  switch (f.op) {
    case LineFilterOp::kContains:
    case LineFilterOp::kNotContains:
      for (const std::string& v : f.values) {
        if (line.find(v) != std::string_view::npos) {
          any = true;
          break;
        }
      }
      return f.op == LineFilterOp::kContains ? any : !any;
    case LineFilterOp::kRegex:
    case LineFilterOp::kNotRegex:
      for (const auto& re : f.regexes) {
        if (RE2::PartialMatch(line, *re)) {
          any = true;
          break;
        }
      }
      return f.op == LineFilterOp::kRegex ? any : !any;
  }
  return false;
}

bool LogPipeline::Process(int64_t ts_ns, std::string* line, LineLabels* lbs) {
  for (const Stage& st : stages_) {
    switch (st.kind) {
      case Stage::Kind::kLineFilter:
        if (!LineFilterMatches(st.line_filter, *line)) return false;
        break;
      case Stage::Kind::kJson: {
        if (st.json_params.empty()) {
          JsonScanner js{*line};
          std::vector<Label> saved = lbs->labels();
          if (!JsonFlatten(&js, "", lbs)) {
            lbs->mutable_labels() = std::move(saved);
            lbs->SetErr("JSONParserErr", "Value looks like object, but can't find closing '}' symbol");
          }
        } else {
          std::string v;
          size_t first = line->find_first_not_of(" \t\r\n");
          if (first == std::string::npos || (*line)[first] != '{') {
            lbs->SetErr("JSONParserErr", "Value is not an object");
            break;
          }
          for (const JsonParam& p : st.json_params) {
            if (JsonPathValue(*line, p.path, &v)) SetParsed(lbs, p.label, v);
          }
        }
        break;
      }
      case Stage::Kind::kLogfmt: {
        std::string err;
        if (!Logfmt(*line, st.logfmt_strict, st.logfmt_keep_empty, st.json_params, lbs, &err)) {
          lbs->SetErr("LogfmtParserErr", err);
        }
        break;
      }
      case Stage::Kind::kRegexp: {
        const RE2& re = *st.regexp;
        int n = re.NumberOfCapturingGroups();
        std::vector<re2::StringPiece> groups(n + 1);
        if (re.Match(*line, 0, line->size(), RE2::UNANCHORED, groups.data(), n + 1)) {
          for (const auto& [name, idx] : re.NamedCapturingGroups()) {
            SetParsed(lbs, name, std::string_view(groups[idx].data(), groups[idx].size()));
          }
        }
        break;
      }
      case Stage::Kind::kPattern: Pattern(st, *line, lbs); break;
      case Stage::Kind::kUnpack: {
        JsonScanner js{*line};
        std::string key, val, entry;
        bool ok = js.Eat('{');
        bool has_entry = false;
        if (ok && !js.Eat('}')) {
          while (true) {
            js.Ws();
            if (js.i >= js.s.size() || js.s[js.i] != '"' || !js.String(&key) || !js.Eat(':')) {
              ok = false;
              break;
            }
            js.Ws();
            if (js.i < js.s.size() && js.s[js.i] == '"') {
              if (!js.String(&val)) {
                ok = false;
                break;
              }
              if (key == "_entry") {
                entry = val;
                has_entry = true;
              } else {
                SetParsed(lbs, SanitizeLabelKey(key), val);
              }
            } else if (!js.Skip(nullptr)) {
              ok = false;
              break;
            }
            if (js.Eat(',')) continue;
            if (!js.Eat('}')) ok = false;
            break;
          }
        }
        if (!ok) {
          lbs->SetErr("JSONParserErr", "expecting json object but it is not");
        } else if (has_entry) {
          *line = entry;
        }
        break;
      }
      case Stage::Kind::kLabelFilter:
        if (!RunLabelFilter(*st.label_filter, lbs)) return false;
        break;
      case Stage::Kind::kLineFormat: {
        std::string err;
        std::string out = RenderTemplate(*st.tmpl, *lbs, *line, ts_ns, &err);
        if (!err.empty()) {
          lbs->SetErr("TemplateFormatErr", err);
        } else {
          *line = std::move(out);
        }
        break;
      }
      case Stage::Kind::kLabelFormat: {
        // All items see the labels as they were before the stage.
        LineLabels before = *lbs;
        for (const LabelFormatItem& it : st.label_format) {
          if (it.rename) {
            std::string v(before.Get(it.src));
            if (!it.src.empty() && it.src != it.dst) lbs->Del(it.src);
            lbs->Set(it.dst, v);
          } else {
            std::string err;
            std::string out = RenderTemplate(*it.tmpl, before, *line, ts_ns, &err);
            if (!err.empty()) {
              lbs->SetErr("TemplateFormatErr", err);
              continue;
            }
            lbs->Set(it.dst, out);
          }
        }
        break;
      }
      case Stage::Kind::kDrop: {
        for (const std::string& n : st.names) lbs->Del(n);
        for (const LabelMatcher& m : st.name_matchers) {
          std::string_view v = lbs->Get(m.name());
          if (!v.empty() && m.Matches(v)) lbs->Del(m.name());
        }
        break;
      }
      case Stage::Kind::kKeep: {
        std::vector<Label> kept;
        for (const Label& l : lbs->labels()) {
          bool keep = false;
          for (const std::string& n : st.names) keep = keep || l.name == n;
          for (const LabelMatcher& m : st.name_matchers) keep = keep || (l.name == m.name() && m.Matches(l.value));
          // Loki's keep never drops __error__/__error_details__.
          if (keep || l.name == kErrorLabel || l.name == kErrorDetailsLabel) kept.push_back(l);
        }
        lbs->mutable_labels() = std::move(kept);
        break;
      }
      case Stage::Kind::kDecolorize: *line = Decolorize(*line); break;
    }
  }
  return true;
}

// ---- durations and bytes ------------------------------------------------------

Result<double> ParseDurationSeconds(std::string_view s) {
  std::string orig(s);
  if (s.empty()) return InvalidArgumentError("time: invalid duration \"" + orig + "\"");
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return 0.0;
  double total = 0;
  bool any = false;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == 0) return InvalidArgumentError("time: invalid duration \"" + orig + "\"");
    double num = std::strtod(std::string(s.substr(0, i)).c_str(), nullptr);
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && !std::isdigit(static_cast<unsigned char>(s[u])) && s[u] != '.') ++u;
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    double mult;
    if (unit == "ns") mult = 1e-9;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") mult = 1e-6;
    else if (unit == "ms") mult = 1e-3;
    else if (unit == "s") mult = 1;
    else if (unit == "m") mult = 60;
    else if (unit == "h") mult = 3600;
    else if (unit == "d") mult = 86400;
    else if (unit == "w") mult = 7 * 86400;
    else if (unit == "y") mult = 365 * 86400;
    else if (unit.empty()) return InvalidArgumentError("time: missing unit in duration \"" + orig + "\"");
    else return InvalidArgumentError("time: unknown unit \"" + std::string(unit) + "\" in duration \"" + orig + "\"");
    total += num * mult;
    any = true;
  }
  if (!any) return InvalidArgumentError("time: invalid duration \"" + orig + "\"");
  return neg ? -total : total;
}

Result<int64_t> ParseRangeDuration(std::string_view s) {
  TELKIT_ASSIGN_OR_RETURN(double sec, ParseDurationSeconds(s));
  return static_cast<int64_t>(std::llround(sec * 1e9));
}

Result<double> ParseBytes(std::string_view s) {
  std::string orig(s);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return InvalidArgumentError("strconv.ParseFloat: parsing \"" + orig + "\": invalid syntax");
  double num = std::strtod(std::string(s.substr(0, i)).c_str(), nullptr);
  std::string unit;
  for (char c : s.substr(i)) {
    if (c != ' ') unit.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  static const std::map<std::string, double> kUnits = {
      {"", 1}, {"b", 1}, {"kb", 1e3}, {"k", 1e3}, {"mb", 1e6}, {"m", 1e6}, {"gb", 1e9}, {"g", 1e9},
      {"tb", 1e12}, {"t", 1e12}, {"pb", 1e15}, {"p", 1e15}, {"eb", 1e18}, {"e", 1e18},
      {"kib", 1024.0}, {"ki", 1024.0}, {"mib", 1048576.0}, {"mi", 1048576.0}, {"gib", 1073741824.0},
      {"gi", 1073741824.0}, {"tib", 1099511627776.0}, {"ti", 1099511627776.0},
      {"pib", 1125899906842624.0}, {"eib", 1152921504606846976.0}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) return InvalidArgumentError("unhandled size name: " + unit);
  return num * it->second;
}

// ---- templates ----------------------------------------------------------------

struct TNode;
struct TCmd;

// One operand of a command.
struct TArg {
  enum class Kind { kField, kString, kNumber, kLine, kTimestamp, kIdent, kPipe, kBool, kDot };
  Kind kind = Kind::kString;
  std::string text;  // field name, literal string, identifier
  double num = 0;
  std::vector<TCmd> pipe;  // kPipe: parenthesised pipeline
};

struct TCmd {
  std::vector<TArg> args;
};

struct TNode {
  enum class Kind { kText, kAction, kIf };
  Kind kind = Kind::kText;
  std::string text;
  std::vector<TCmd> pipe;  // kAction, kIf condition
  std::vector<TNode> then_nodes, else_nodes;
};

struct Template {
  std::vector<TNode> nodes;
};

namespace {

struct TVal {
  enum class Kind { kStr, kNum, kBool, kTime };
  Kind kind = Kind::kStr;
  std::string s;
  double n = 0;
  bool b = false;
  int64_t t = 0;
  static TVal Str(std::string v) {
    TVal x;
    x.s = std::move(v);
    return x;
  }
  static TVal Num(double v) {
    TVal x;
    x.kind = Kind::kNum;
    x.n = v;
    return x;
  }
  static TVal Bool(bool v) {
    TVal x;
    x.kind = Kind::kBool;
    x.b = v;
    return x;
  }
};

std::string FormatNumber(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string GoTime(int64_t ns) { return FormatUtcNanos(ns, "%Y-%m-%d %H:%M:%S", 9, true) + " +0000 UTC"; }

// Go's time.Format for the common layout elements, in UTC: 2006 06 01 1 Jan
// January 02 2 _2 15 03 3 04 4 05 5 PM pm Mon Monday .000 .000000 .000000000
// (and ,000...) MST Z07:00 -07:00 -0700 Z0700.
std::string GoFormatTime(std::string_view layout, int64_t ns) {
  time_t secs = static_cast<time_t>(ns >= 0 ? ns / 1000000000 : (ns - 999999999) / 1000000000);
  int64_t frac = ns - static_cast<int64_t>(secs) * 1000000000;
  struct tm tm;
  gmtime_r(&secs, &tm);
  static const char* kMonths[] = {"January", "February", "March", "April", "May", "June", "July",
                                  "August", "September", "October", "November", "December"};
  static const char* kDays[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
  std::string out;
  char buf[32];
  auto two = [&](int v) {
    std::snprintf(buf, sizeof buf, "%02d", v);
    out += buf;
  };
  size_t i = 0;
  auto starts = [&](std::string_view t) { return layout.substr(i, t.size()) == t; };
  while (i < layout.size()) {
    if (starts("2006")) { out += std::to_string(tm.tm_year + 1900); i += 4; }
    else if (starts("January")) { out += kMonths[tm.tm_mon]; i += 7; }
    else if (starts("Jan")) { out += std::string(kMonths[tm.tm_mon]).substr(0, 3); i += 3; }
    else if (starts("Monday")) { out += kDays[tm.tm_wday]; i += 6; }
    else if (starts("Mon")) { out += std::string(kDays[tm.tm_wday]).substr(0, 3); i += 3; }
    else if (starts("MST")) { out += "UTC"; i += 3; }
    else if (starts("Z07:00") || starts("Z0700")) { out += "Z"; i += starts("Z07:00") ? 6 : 5; }
    else if (starts("-07:00")) { out += "+00:00"; i += 6; }
    else if (starts("-0700")) { out += "+0000"; i += 5; }
    else if (starts("01")) { two(tm.tm_mon + 1); i += 2; }
    else if (starts("02")) { two(tm.tm_mday); i += 2; }
    else if (starts("_2")) { std::snprintf(buf, sizeof buf, "%2d", tm.tm_mday); out += buf; i += 2; }
    else if (starts("06")) { two(tm.tm_year % 100); i += 2; }
    else if (starts("15")) { two(tm.tm_hour); i += 2; }
    else if (starts("03")) { two(tm.tm_hour % 12 == 0 ? 12 : tm.tm_hour % 12); i += 2; }
    else if (starts("04")) { two(tm.tm_min); i += 2; }
    else if (starts("05")) { two(tm.tm_sec); i += 2; }
    else if (starts("PM")) { out += tm.tm_hour >= 12 ? "PM" : "AM"; i += 2; }
    else if (starts("pm")) { out += tm.tm_hour >= 12 ? "pm" : "am"; i += 2; }
    else if ((layout[i] == '.' || layout[i] == ',') && i + 1 < layout.size() && layout[i + 1] == '0') {
      size_t n = 1;
      while (i + n < layout.size() && layout[i + n] == '0') ++n;
      std::snprintf(buf, sizeof buf, "%09lld", static_cast<long long>(frac));
      out += layout[i];
      out += std::string(buf).substr(0, std::min<size_t>(n - 1, 9));
      i += n;
    }
    else if (starts("1")) { out += std::to_string(tm.tm_mon + 1); i += 1; }
    else if (starts("2")) { out += std::to_string(tm.tm_mday); i += 1; }
    else if (starts("3")) { out += std::to_string(tm.tm_hour % 12 == 0 ? 12 : tm.tm_hour % 12); i += 1; }
    else if (starts("4")) { out += std::to_string(tm.tm_min); i += 1; }
    else if (starts("5")) { out += std::to_string(tm.tm_sec); i += 1; }
    else { out += layout[i]; i += 1; }
  }
  return out;
}

std::string ToString(const TVal& v) {
  switch (v.kind) {
    case TVal::Kind::kStr: return v.s;
    case TVal::Kind::kNum: return FormatNumber(v.n);
    case TVal::Kind::kBool: return v.b ? "true" : "false";
    case TVal::Kind::kTime: return GoTime(v.t);
  }
  return "";
}

bool Truthy(const TVal& v) {
  switch (v.kind) {
    case TVal::Kind::kStr: return !v.s.empty();
    case TVal::Kind::kNum: return v.n != 0;
    case TVal::Kind::kBool: return v.b;
    case TVal::Kind::kTime: return true;
  }
  return false;
}

double ToNum(const TVal& v, std::string* err) {
  if (v.kind == TVal::Kind::kNum) return v.n;
  if (v.kind == TVal::Kind::kBool) return v.b ? 1 : 0;
  if (v.kind == TVal::Kind::kTime) return static_cast<double>(v.t) / 1e9;
  char* end = nullptr;
  double d = std::strtod(v.s.c_str(), &end);
  if (v.s.empty() || end != v.s.c_str() + v.s.size()) {
    if (err && err->empty()) *err = "cannot convert '" + v.s + "' to a number";
    return 0;
  }
  return d;
}

// ---- template parser ----

class TParser {
 public:
  explicit TParser(std::string_view s) : s_(s) {}

  Status Parse(Template* t) {
    std::string end_kw;
    TELKIT_RETURN_IF_ERROR(ParseNodes(&t->nodes, &end_kw));
    if (!end_kw.empty()) return InvalidArgumentError("template: unexpected {{" + end_kw + "}}");
    return OkStatus();
  }

 private:
  // Parses nodes until EOF or {{else}}/{{end}} (returned in *end_kw).
  Status ParseNodes(std::vector<TNode>* out, std::string* end_kw) {
    end_kw->clear();
    while (i_ < s_.size()) {
      size_t open = s_.find("{{", i_);
      if (open == std::string_view::npos) {
        AddText(out, s_.substr(i_));
        i_ = s_.size();
        break;
      }
      std::string_view text = s_.substr(i_, open - i_);
      size_t j = open + 2;
      bool trim_left = j < s_.size() && s_[j] == '-' && j + 1 < s_.size() && s_[j + 1] == ' ';
      if (trim_left) {
        ++j;
        while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
      }
      AddText(out, text);
      size_t close = FindClose(j);
      if (close == std::string_view::npos) return InvalidArgumentError("template: unclosed action");
      std::string_view action = s_.substr(j, close - j);
      bool trim_right = !action.empty() && action.back() == '-' && action.size() >= 2 && action[action.size() - 2] == ' ';
      if (trim_right) action.remove_suffix(1);
      i_ = close + 2;
      if (trim_right) {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
      }
      action = Trim(action);
      if (action.substr(0, 2) == "/*") continue;  // comment
      std::string_view kw = FirstWord(action);
      if (kw == "end" || kw == "else") {
        *end_kw = std::string(action);
        return OkStatus();
      }
      if (kw == "if") {
        TNode n;
        n.kind = TNode::Kind::kIf;
        TELKIT_RETURN_IF_ERROR(ParsePipeline(action.substr(2), &n.pipe));
        std::string kw2;
        TELKIT_RETURN_IF_ERROR(ParseNodes(&n.then_nodes, &kw2));
        // else if chains: {{else if X}} becomes a nested if in the else branch.
        while (kw2.rfind("else", 0) == 0) {
          std::string_view rest = Trim(std::string_view(kw2).substr(4));
          if (FirstWord(rest) == "if") {
            TNode inner;
            inner.kind = TNode::Kind::kIf;
            TELKIT_RETURN_IF_ERROR(ParsePipeline(rest.substr(2), &inner.pipe));
            std::string kw3;
            TELKIT_RETURN_IF_ERROR(ParseNodes(&inner.then_nodes, &kw3));
            if (kw3.rfind("else", 0) == 0) {
              std::string kw4;
              TELKIT_RETURN_IF_ERROR(ParseNodes(&inner.else_nodes, &kw4));
              kw3 = kw4;
            }
            n.else_nodes.push_back(std::move(inner));
            kw2 = kw3;
            break;
          }
          TELKIT_RETURN_IF_ERROR(ParseNodes(&n.else_nodes, &kw2));
          break;
        }
        if (kw2 != "end") return InvalidArgumentError("template: missing {{end}}");
        out->push_back(std::move(n));
        continue;
      }
      if (kw == "range" || kw == "with" || kw == "define" || kw == "template" || kw == "block") {
        return InvalidArgumentError("template: '" + std::string(kw) + "' is not supported");
      }
      TNode n;
      n.kind = TNode::Kind::kAction;
      TELKIT_RETURN_IF_ERROR(ParsePipeline(action, &n.pipe));
      out->push_back(std::move(n));
    }
    return OkStatus();
  }

  size_t FindClose(size_t j) const {
    bool in_str = false;
    char q = 0;
    for (size_t k = j; k + 1 < s_.size(); ++k) {
      char c = s_[k];
      if (in_str) {
        if (c == '\\' && q == '"') {
          ++k;
          continue;
        }
        if (c == q) in_str = false;
        continue;
      }
      if (c == '"' || c == '`') {
        in_str = true;
        q = c;
        continue;
      }
      if (c == '}' && s_[k + 1] == '}') return k;
    }
    return std::string_view::npos;
  }

  static void AddText(std::vector<TNode>* out, std::string_view text) {
    if (text.empty()) return;
    TNode n;
    n.text = std::string(text);
    out->push_back(std::move(n));
  }
  static std::string_view Trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  }
  static std::string_view FirstWord(std::string_view s) {
    size_t k = 0;
    while (k < s.size() && (std::isalnum(static_cast<unsigned char>(s[k])) || s[k] == '_')) ++k;
    return s.substr(0, k);
  }

  // pipeline := command ('|' command)*
  static Status ParsePipeline(std::string_view src, std::vector<TCmd>* out) {
    size_t k = 0;
    return ParsePipe(src, &k, out, false);
  }

  static Status ParsePipe(std::string_view src, size_t* k, std::vector<TCmd>* out, bool in_paren) {
    TCmd cmd;
    while (true) {
      while (*k < src.size() && std::isspace(static_cast<unsigned char>(src[*k]))) ++*k;
      if (*k >= src.size()) break;
      char c = src[*k];
      if (c == ')') {
        if (!in_paren) return InvalidArgumentError("template: unexpected ')'");
        ++*k;
        break;
      }
      if (c == '|') {
        if (cmd.args.empty()) return InvalidArgumentError("template: missing command before '|'");
        out->push_back(std::move(cmd));
        cmd = TCmd();
        ++*k;
        continue;
      }
      TArg a;
      if (c == '"' || c == '`') {
        size_t e = *k + 1;
        std::string lit;
        while (e < src.size() && src[e] != c) {
          if (c == '"' && src[e] == '\\' && e + 1 < src.size()) {
            char x = src[e + 1];
            lit.push_back(x == 'n' ? '\n' : x == 't' ? '\t' : x);
            e += 2;
            continue;
          }
          lit.push_back(src[e++]);
        }
        if (e >= src.size()) return InvalidArgumentError("template: unterminated string");
        a.kind = TArg::Kind::kString;
        a.text = std::move(lit);
        *k = e + 1;
      } else if (c == '(') {
        ++*k;
        a.kind = TArg::Kind::kPipe;
        TELKIT_RETURN_IF_ERROR(ParsePipe(src, k, &a.pipe, true));
      } else if (c == '.') {
        size_t e = *k + 1;
        while (e < src.size() && (std::isalnum(static_cast<unsigned char>(src[e])) || src[e] == '_')) ++e;
        a.kind = e == *k + 1 ? TArg::Kind::kDot : TArg::Kind::kField;
        a.text = std::string(src.substr(*k + 1, e - *k - 1));
        *k = e;
      } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '-') {
        size_t e = *k + 1;
        while (e < src.size() && (std::isalnum(static_cast<unsigned char>(src[e])) || src[e] == '.')) ++e;
        std::string num(src.substr(*k, e - *k));
        char* end = nullptr;
        a.num = std::strtod(num.c_str(), &end);
        if (end != num.c_str() + num.size()) return InvalidArgumentError("template: bad number '" + num + "'");
        a.kind = TArg::Kind::kNumber;
        *k = e;
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = *k;
        while (e < src.size() && (std::isalnum(static_cast<unsigned char>(src[e])) || src[e] == '_')) ++e;
        a.text = std::string(src.substr(*k, e - *k));
        *k = e;
        if (a.text == "__line__") a.kind = TArg::Kind::kLine;
        else if (a.text == "__timestamp__") a.kind = TArg::Kind::kTimestamp;
        else if (a.text == "true" || a.text == "false") {
          a.kind = TArg::Kind::kBool;
          a.num = a.text == "true";
        } else {
          a.kind = TArg::Kind::kIdent;
          if (!KnownFunction(a.text)) return InvalidArgumentError("template: function \"" + a.text + "\" not defined");
        }
      } else {
        return InvalidArgumentError(std::string("template: unexpected '") + c + "' in action");
      }
      cmd.args.push_back(std::move(a));
    }
    if (cmd.args.empty()) return InvalidArgumentError("template: missing value for command");
    out->push_back(std::move(cmd));
    return OkStatus();
  }

 public:
  static bool KnownFunction(const std::string& f);

 private:
  std::string_view s_;
  size_t i_ = 0;
};

using TFunc = std::function<TVal(std::vector<TVal>& args, std::string* err)>;

bool ArgsAtLeast(const std::vector<TVal>& a, size_t n, const char* name, std::string* err) {
  if (a.size() >= n) return true;
  if (err->empty()) *err = std::string("wrong number of args for ") + name;
  return false;
}

std::string GoPrintf(const std::string& fmt, const std::vector<TVal>& args, size_t first, std::string* err) {
  std::string out;
  size_t ai = first;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i]);
      continue;
    }
    size_t j = i + 1;
    if (j < fmt.size() && fmt[j] == '%') {
      out.push_back('%');
      i = j;
      continue;
    }
    std::string spec = "%";
    while (j < fmt.size() && std::strchr("+-# 0123456789.", fmt[j])) spec.push_back(fmt[j++]);
    if (j >= fmt.size()) break;
    char verb = fmt[j];
    i = j;
    if (ai >= args.size()) {
      out += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const TVal& v = args[ai++];
    char buf[512];
    switch (verb) {
      case 'd': {
        if (v.kind == TVal::Kind::kStr) {  // Go: %!d(string=x)
          out += std::string("%!d(string=") + v.s + ")";
          break;
        }
        double d = ToNum(v, err);
        std::snprintf(buf, sizeof buf, (spec + "lld").c_str(), static_cast<long long>(d));
        out += buf;
        break;
      }
      case 'f': case 'e': case 'g': case 'F': case 'E': case 'G': {
        if (v.kind == TVal::Kind::kStr) {
          out += std::string("%!") + verb + "(string=" + v.s + ")";
          break;
        }
        double d = ToNum(v, err);
        std::snprintf(buf, sizeof buf, (spec + verb).c_str(), d);
        out += buf;
        break;
      }
      case 'x': case 'X': {
        if (v.kind == TVal::Kind::kNum) {
          std::snprintf(buf, sizeof buf, (spec + "ll" + verb).c_str(), static_cast<long long>(v.n));
          out += buf;
        } else {
          for (unsigned char c : ToString(v)) {
            std::snprintf(buf, sizeof buf, verb == 'x' ? "%02x" : "%02X", c);
            out += buf;
          }
        }
        break;
      }
      case 'q': out += "\"" + ToString(v) + "\""; break;
      case 't': out += Truthy(v) ? "true" : "false"; break;
      default: {
        std::string s = ToString(v);
        std::snprintf(buf, sizeof buf, (spec + "s").c_str(), s.c_str());
        out += s.size() < 400 ? std::string(buf) : s;
      }
    }
  }
  return out;
}

const std::map<std::string, TFunc>& Functions() {
  static const auto* kFuncs = new std::map<std::string, TFunc>{
      {"ToUpper", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "ToUpper", e)) return TVal();
         std::string s = ToString(a.back());
         for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
         return TVal::Str(s);
       }},
      {"ToLower", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "ToLower", e)) return TVal();
         std::string s = ToString(a.back());
         for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
         return TVal::Str(s);
       }},
      {"title", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "title", e)) return TVal();
         std::string s = ToString(a.back());
         bool start = true;
         for (char& c : s) {
           if (start && std::isalpha(static_cast<unsigned char>(c))) c = static_cast<char>(std::toupper(c));
           start = std::isspace(static_cast<unsigned char>(c));
         }
         return TVal::Str(s);
       }},
      {"trimSpace", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "trimSpace", e)) return TVal();
         std::string s = ToString(a.back());
         size_t b = s.find_first_not_of(" \t\r\n"), en = s.find_last_not_of(" \t\r\n");
         return TVal::Str(b == std::string::npos ? "" : s.substr(b, en - b + 1));
       }},
      {"trimPrefix", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "trimPrefix", e)) return TVal();
         std::string p = ToString(a[0]), s = ToString(a[1]);
         return TVal::Str(s.rfind(p, 0) == 0 ? s.substr(p.size()) : s);
       }},
      {"trimSuffix", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "trimSuffix", e)) return TVal();
         std::string p = ToString(a[0]), s = ToString(a[1]);
         if (s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0) s.resize(s.size() - p.size());
         return TVal::Str(s);
       }},
      {"trimAll", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "trimAll", e)) return TVal();
         std::string cut = ToString(a[0]), s = ToString(a[1]);
         size_t b = s.find_first_not_of(cut), en = s.find_last_not_of(cut);
         return TVal::Str(b == std::string::npos ? "" : s.substr(b, en - b + 1));
       }},
      {"replace", [](auto& a, auto* e) {  // sprig: replace OLD NEW SRC
         if (!ArgsAtLeast(a, 3, "replace", e)) return TVal();
         std::string from = ToString(a[0]), to = ToString(a[1]), s = ToString(a[2]), out;
         if (from.empty()) return TVal::Str(s);
         size_t pos = 0, f;
         while ((f = s.find(from, pos)) != std::string::npos) {
           out += s.substr(pos, f - pos) + to;
           pos = f + from.size();
         }
         return TVal::Str(out + s.substr(pos));
       }},
      {"Replace", [](auto& a, auto* e) {  // Go strings.Replace(S, OLD, NEW, N)
         if (!ArgsAtLeast(a, 4, "Replace", e)) return TVal();
         std::string s = ToString(a[0]), from = ToString(a[1]), to = ToString(a[2]), out;
         long n = static_cast<long>(ToNum(a[3], e));
         size_t pos = 0, f;
         while (n != 0 && !from.empty() && (f = s.find(from, pos)) != std::string::npos) {
           out += s.substr(pos, f - pos) + to;
           pos = f + from.size();
           --n;
         }
         return TVal::Str(out + s.substr(pos));
       }},
      {"default", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "default", e)) return TVal();
         if (a.size() >= 2 && Truthy(a[1])) return a[1];
         return a[0];
       }},
      {"printf", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "printf", e)) return TVal();
         return TVal::Str(GoPrintf(ToString(a[0]), a, 1, e));
       }},
      {"contains", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "contains", e)) return TVal();
         return TVal::Bool(ToString(a[1]).find(ToString(a[0])) != std::string::npos);
       }},
      {"hasPrefix", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "hasPrefix", e)) return TVal();
         return TVal::Bool(ToString(a[1]).rfind(ToString(a[0]), 0) == 0);
       }},
      {"hasSuffix", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "hasSuffix", e)) return TVal();
         std::string p = ToString(a[0]), s = ToString(a[1]);
         return TVal::Bool(s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0);
       }},
      {"eq", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "eq", e)) return TVal();
         for (size_t i = 1; i < a.size(); ++i) {
           if (a[0].kind == TVal::Kind::kNum || a[i].kind == TVal::Kind::kNum) {
             std::string ignore;
             if (ToNum(a[0], &ignore) == ToNum(a[i], &ignore) && ignore.empty()) return TVal::Bool(true);
           } else if (ToString(a[0]) == ToString(a[i])) {
             return TVal::Bool(true);
           }
         }
         return TVal::Bool(false);
       }},
      {"ne", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "ne", e)) return TVal();
         return TVal::Bool(ToString(a[0]) != ToString(a[1]));
       }},
      {"lt", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "lt", e)) return TVal();
         return TVal::Bool(ToNum(a[0], e) < ToNum(a[1], e));
       }},
      {"le", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "le", e)) return TVal();
         return TVal::Bool(ToNum(a[0], e) <= ToNum(a[1], e));
       }},
      {"gt", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "gt", e)) return TVal();
         return TVal::Bool(ToNum(a[0], e) > ToNum(a[1], e));
       }},
      {"ge", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "ge", e)) return TVal();
         return TVal::Bool(ToNum(a[0], e) >= ToNum(a[1], e));
       }},
      {"and", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "and", e)) return TVal();
         for (auto& v : a) if (!Truthy(v)) return v;
         return a.back();
       }},
      {"or", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "or", e)) return TVal();
         for (auto& v : a) if (Truthy(v)) return v;
         return a.back();
       }},
      {"not", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "not", e)) return TVal();
         return TVal::Bool(!Truthy(a[0]));
       }},
      {"len", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "len", e)) return TVal();
         return TVal::Num(static_cast<double>(ToString(a.back()).size()));
       }},
      {"substr", [](auto& a, auto* e) {  // sprig: substr START END S
         if (!ArgsAtLeast(a, 3, "substr", e)) return TVal();
         std::string s = ToString(a[2]);
         long st = static_cast<long>(ToNum(a[0], e)), en = static_cast<long>(ToNum(a[1], e));
         long n = static_cast<long>(s.size());
         if (st < 0) st = 0;
         if (en < 0 || en > n) en = n;
         if (st > en) return TVal::Str("");
         return TVal::Str(s.substr(st, en - st));
       }},
      {"trunc", [](auto& a, auto* e) {  // sprig: trunc N S (negative: from the end)
         if (!ArgsAtLeast(a, 2, "trunc", e)) return TVal();
         std::string s = ToString(a[1]);
         long n = static_cast<long>(ToNum(a[0], e));
         long sz = static_cast<long>(s.size());
         if (n >= 0) return TVal::Str(n < sz ? s.substr(0, n) : s);
         return TVal::Str(-n < sz ? s.substr(sz + n) : s);
       }},
      {"repeat", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "repeat", e)) return TVal();
         std::string out, s = ToString(a[1]);
         long n = std::min(static_cast<long>(ToNum(a[0], e)), 10000L);
         for (long i = 0; i < n; ++i) out += s;
         return TVal::Str(out);
       }},
      {"regexReplaceAll", [](auto& a, auto* e) {  // REGEX S REPL
         if (!ArgsAtLeast(a, 3, "regexReplaceAll", e)) return TVal();
         RE2 re(ToString(a[0]));
         if (!re.ok()) {
           *e = "regexReplaceAll: " + re.error();
           return TVal();
         }
         std::string s = ToString(a[1]);
         std::string repl = ToString(a[2]);
         // Go's ${1} / $1 -> RE2's \1.
         std::string r2;
         for (size_t i = 0; i < repl.size(); ++i) {
           if (repl[i] == '$' && i + 1 < repl.size()) {
             size_t j = i + 1;
             bool brace = repl[j] == '{';
             if (brace) ++j;
             size_t d = j;
             while (d < repl.size() && std::isdigit(static_cast<unsigned char>(repl[d]))) ++d;
             if (d > j && (!brace || (d < repl.size() && repl[d] == '}'))) {
               r2 += "\\" + repl.substr(j, d - j);
               i = brace ? d : d - 1;
               continue;
             }
           }
           if (repl[i] == '\\') r2 += "\\";
           r2.push_back(repl[i]);
         }
         RE2::GlobalReplace(&s, re, r2);
         return TVal::Str(s);
       }},
      {"regexReplaceAllLiteral", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 3, "regexReplaceAllLiteral", e)) return TVal();
         RE2 re(ToString(a[0]));
         if (!re.ok()) {
           *e = "regexReplaceAllLiteral: " + re.error();
           return TVal();
         }
         std::string s = ToString(a[1]), repl, lit = ToString(a[2]);
         for (char c : lit) {
           if (c == '\\') repl += "\\";
           repl.push_back(c);
         }
         RE2::GlobalReplace(&s, re, repl);
         return TVal::Str(s);
       }},
      {"unixEpoch", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "unixEpoch", e)) return TVal();
         if (a.back().kind != TVal::Kind::kTime) {
           *e = "unixEpoch: argument is not a time";
           return TVal();
         }
         int64_t t = a.back().t;
         return TVal::Str(std::to_string(t >= 0 ? t / 1000000000 : (t - 999999999) / 1000000000));
       }},
      {"unixEpochMillis", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "unixEpochMillis", e)) return TVal();
         if (a.back().kind != TVal::Kind::kTime) {
           *e = "unixEpochMillis: argument is not a time";
           return TVal();
         }
         return TVal::Str(std::to_string(a.back().t / 1000000));
       }},
      {"unixEpochNanos", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "unixEpochNanos", e)) return TVal();
         if (a.back().kind != TVal::Kind::kTime) {
           *e = "unixEpochNanos: argument is not a time";
           return TVal();
         }
         return TVal::Str(std::to_string(a.back().t));
       }},
      {"float64", [](auto& a, auto* e) {  // sprig: 0 when not a number
         if (!ArgsAtLeast(a, 1, "float64", e)) return TVal();
         std::string ignore;
         return TVal::Num(ToNum(a.back(), &ignore));
       }},
      {"int", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "int", e)) return TVal();
         std::string ignore;
         return TVal::Num(std::trunc(ToNum(a.back(), &ignore)));
       }},
      {"toString", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 1, "toString", e)) return TVal();
         return TVal::Str(ToString(a.back()));
       }},
      {"date", [](auto& a, auto* e) {  // sprig: date LAYOUT TIME
         if (!ArgsAtLeast(a, 2, "date", e)) return TVal();
         if (a[1].kind != TVal::Kind::kTime) {
           *e = "date: argument is not a time";
           return TVal();
         }
         return TVal::Str(GoFormatTime(ToString(a[0]), a[1].t));
       }},
      {"add", [](auto& a, auto* e) {
         double s = 0;
         for (auto& v : a) s += ToNum(v, e);
         return TVal::Num(std::trunc(s));
       }},
      {"sub", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "sub", e)) return TVal();
         return TVal::Num(std::trunc(ToNum(a[0], e)) - std::trunc(ToNum(a[1], e)));
       }},
      {"mul", [](auto& a, auto* e) {
         double s = 1;
         for (auto& v : a) s *= std::trunc(ToNum(v, e));
         return TVal::Num(s);
       }},
      {"div", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "div", e)) return TVal();
         double d = std::trunc(ToNum(a[1], e));
         if (d == 0) {
           *e = "div: division by zero";
           return TVal();
         }
         return TVal::Num(std::trunc(std::trunc(ToNum(a[0], e)) / d));
       }},
      {"addf", [](auto& a, auto* e) {
         double s = 0;
         for (auto& v : a) s += ToNum(v, e);
         return TVal::Num(s);
       }},
      {"subf", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "subf", e)) return TVal();
         return TVal::Num(ToNum(a[0], e) - ToNum(a[1], e));
       }},
      {"mulf", [](auto& a, auto* e) {
         double s = 1;
         for (auto& v : a) s *= ToNum(v, e);
         return TVal::Num(s);
       }},
      {"divf", [](auto& a, auto* e) {
         if (!ArgsAtLeast(a, 2, "divf", e)) return TVal();
         return TVal::Num(ToNum(a[0], e) / ToNum(a[1], e));
       }},
  };
  return *kFuncs;
}

bool TParser::KnownFunction(const std::string& f) {
  static const char* kAliases[] = {"upper", "lower", "trim", "count", "alignLeft", "alignRight"};
  for (const char* a : kAliases) {
    if (f == a) return true;
  }
  return Functions().count(f) > 0;
}

std::string CanonicalFunction(const std::string& f) {
  if (f == "upper") return "ToUpper";
  if (f == "lower") return "ToLower";
  if (f == "trim") return "trimSpace";
  return f;
}

struct TCtx {
  const LineLabels* labels;
  std::string_view line;
  int64_t ts;
  std::string* err;
};

TVal EvalPipe(const std::vector<TCmd>& pipe, const TCtx& c);

TVal EvalArg(const TArg& a, const TCtx& c) {
  switch (a.kind) {
    case TArg::Kind::kField: return TVal::Str(std::string(c.labels->Get(a.text)));
    case TArg::Kind::kDot: return TVal::Str("");
    case TArg::Kind::kString: return TVal::Str(a.text);
    case TArg::Kind::kNumber: return TVal::Num(a.num);
    case TArg::Kind::kBool: return TVal::Bool(a.num != 0);
    case TArg::Kind::kLine: return TVal::Str(std::string(c.line));
    case TArg::Kind::kTimestamp: {
      TVal v;
      v.kind = TVal::Kind::kTime;
      v.t = c.ts;
      return v;
    }
    case TArg::Kind::kPipe: return EvalPipe(a.pipe, c);
    case TArg::Kind::kIdent: break;
  }
  return TVal();
}

TVal CallFunction(const std::string& name, std::vector<TVal>& args, const TCtx& c) {
  std::string f = CanonicalFunction(name);
  if (f == "count") {  // Loki: count REGEX S
    if (!ArgsAtLeast(args, 2, "count", c.err)) return TVal();
    RE2 re(ToString(args[0]));
    if (!re.ok()) {
      *c.err = "count: " + re.error();
      return TVal();
    }
    std::string s = ToString(args[1]);
    re2::StringPiece in(s);
    int n = 0;
    while (RE2::FindAndConsume(&in, re) && n < 1000000) {
      ++n;
      if (in.empty()) break;
    }
    return TVal::Num(n);
  }
  if (f == "alignLeft" || f == "alignRight") {
    if (!ArgsAtLeast(args, 2, f.c_str(), c.err)) return TVal();
    long n = static_cast<long>(ToNum(args[0], c.err));
    std::string s = ToString(args[1]);
    if (n < 0) n = 0;
    if (static_cast<long>(s.size()) >= n) return TVal::Str(f == "alignLeft" ? s.substr(0, n) : s.substr(s.size() - n));
    std::string pad(n - s.size(), ' ');
    return TVal::Str(f == "alignLeft" ? s + pad : pad + s);
  }
  auto it = Functions().find(f);
  if (it == Functions().end()) {
    *c.err = "function \"" + name + "\" not defined";
    return TVal();
  }
  return it->second(args, c.err);
}

TVal EvalPipe(const std::vector<TCmd>& pipe, const TCtx& c) {
  TVal prev;
  bool have_prev = false;
  for (const TCmd& cmd : pipe) {
    const TArg& head = cmd.args[0];
    TVal v;
    if (head.kind == TArg::Kind::kIdent) {
      std::vector<TVal> args;
      for (size_t i = 1; i < cmd.args.size(); ++i) args.push_back(EvalArg(cmd.args[i], c));
      if (have_prev) args.push_back(prev);
      v = CallFunction(head.text, args, c);
    } else {
      if (cmd.args.size() > 1 || have_prev) {
        if (c.err->empty()) *c.err = "can't give argument to non-function";
        return TVal();
      }
      v = EvalArg(head, c);
    }
    if (!c.err->empty()) return TVal();
    prev = std::move(v);
    have_prev = true;
  }
  return prev;
}

void Render(const std::vector<TNode>& nodes, const TCtx& c, std::string* out) {
  for (const TNode& n : nodes) {
    if (!c.err->empty()) return;
    switch (n.kind) {
      case TNode::Kind::kText: *out += n.text; break;
      case TNode::Kind::kAction: *out += ToString(EvalPipe(n.pipe, c)); break;
      case TNode::Kind::kIf: Render(Truthy(EvalPipe(n.pipe, c)) ? n.then_nodes : n.else_nodes, c, out); break;
    }
  }
}

}  // namespace

Result<std::shared_ptr<const Template>> ParseTemplate(std::string_view text) {
  auto t = std::make_shared<Template>();
  TParser p(text);
  TELKIT_RETURN_IF_ERROR(p.Parse(t.get()));
  return std::shared_ptr<const Template>(std::move(t));
}

std::string RenderTemplate(const Template& t, const LineLabels& labels, std::string_view line, int64_t ts_ns,
                           std::string* error) {
  std::string out;
  error->clear();
  TCtx c{&labels, line, ts_ns, error};
  Render(t.nodes, c, &out);
  return out;
}

}  // namespace telkit::logql
