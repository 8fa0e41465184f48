#include "common/promql/promql_test_runner.h"

#include <re2/re2.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>

#include "common/model/memory_store.h"
#include "common/promql/parser.h"

namespace telkit::promql {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status LineError(int line, const std::string& msg) {
  return InvalidArgumentError("line " + std::to_string(line) + ": " + msg);
}

// A script time: a duration from the epoch, optionally negative.
Result<int64_t> ParseTime(std::string_view s) {
  s = Trim(s);
  bool neg = !s.empty() && s[0] == '-';
  if (neg) s.remove_prefix(1);
  TELKIT_ASSIGN_OR_RETURN(int64_t d, ParseDuration(s));
  return neg ? -d : d;
}

std::optional<double> ParseFloat(std::string_view s) {
  std::string str(s);
  if (str.empty()) return std::nullopt;
  std::string l = Lower(str);
  if (l == "inf" || l == "+inf") return INFINITY;
  if (l == "-inf") return -INFINITY;
  if (l == "nan") return NAN;
  char* end = nullptr;
  double v = std::strtod(str.c_str(), &end);
  if (end == str.c_str() || *end != '\0') return std::nullopt;
  return v;
}

// A numeric expectation line: Go's ParseInt(s, 0, 64) or ParseFloat.
std::optional<double> ParseScalarLine(std::string_view s) {
  if (auto v = ParseFloat(s)) return v;
  Result<double> n = ParseNumber(s);
  if (n.ok()) return *n;
  return std::nullopt;
}

struct SeriesLine {
  Labels labels;
  std::vector<std::optional<double>> values;  // nullopt: "_" (no sample)
  bool histogram = false;
};

// Splits "<descriptor> <values>" and parses the descriptor.
Result<SeriesLine> ParseSeriesLine(std::string_view line, int lineno) {
  size_t i = 0;
  while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == ':')) ++i;
  std::string name(line.substr(0, i));
  std::vector<Label> labels;
  if (!name.empty()) labels.push_back({std::string(kMetricNameLabel), name});
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == ',')) ++i;
      if (i >= line.size()) return LineError(lineno, "unterminated series descriptor");
      if (line[i] == '}') {
        ++i;
        break;
      }
      size_t ns = i;
      while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_')) ++i;
      std::string lname(line.substr(ns, i - ns));
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      if (lname.empty() || i >= line.size() || line[i] != '=') {
        return LineError(lineno, "bad label in series descriptor: " + std::string(line));
      }
      ++i;
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      if (i >= line.size()) return LineError(lineno, "bad label value");
      char q = line[i];
      size_t vs = i;
      ++i;
      while (i < line.size() && line[i] != q) {
        if (line[i] == '\\' && q != '`') ++i;
        ++i;
      }
      if (i >= line.size()) return LineError(lineno, "unterminated label value");
      ++i;
      Result<std::string> v = Unquote(line.substr(vs, i - vs));
      if (!v.ok()) return LineError(lineno, v.status().message());
      labels.push_back({lname, *v});
    }
  }
  if (name.empty() && (line.empty() || line[0] != '{')) return LineError(lineno, "bad series descriptor: " + std::string(line));
  // A later duplicate name (e.g. __name__ given twice) keeps the last value.
  std::map<std::string, std::string> dedup;
  for (Label& l : labels) dedup[l.name] = l.value;
  std::vector<Label> uniq;
  for (auto& [n, v] : dedup) uniq.push_back({n, v});
  TELKIT_ASSIGN_OR_RETURN(Labels ls, Labels::FromUnsorted(std::move(uniq)));
  SeriesLine out;
  out.labels = std::move(ls);
  // Values.
  std::string_view rest = line.substr(i);
  size_t p = 0;
  while (p < rest.size()) {
    while (p < rest.size() && (rest[p] == ' ' || rest[p] == '\t')) ++p;
    if (p >= rest.size()) break;
    if (rest.substr(p, 2) == "{{") {
      out.histogram = true;
      size_t e = rest.find("}}", p);
      while (e != std::string_view::npos && e + 2 < rest.size() && (rest[e + 2] == '+' || rest[e + 2] == '-') &&
             rest.substr(e + 3, 2) == "{{") {
        e = rest.find("}}", e + 3);
      }
      if (e == std::string_view::npos) return LineError(lineno, "unterminated histogram");
      p = e + 2;
      while (p < rest.size() && rest[p] != ' ' && rest[p] != '\t') ++p;
      out.values.push_back(std::nullopt);
      continue;
    }
    size_t s = p;
    while (p < rest.size() && rest[p] != ' ' && rest[p] != '\t') ++p;
    std::string_view item = rest.substr(s, p - s);
    if (item == "_") {
      out.values.push_back(std::nullopt);
      continue;
    }
    if (item == "stale") {
      out.values.push_back(StaleNaN());
      continue;
    }
    size_t x = item.rfind('x');
    if (x != std::string_view::npos && x + 1 < item.size() &&
        std::all_of(item.begin() + x + 1, item.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      long n = std::strtol(std::string(item.substr(x + 1)).c_str(), nullptr, 10);
      if (n > 1000000) return LineError(lineno, "expansion too long: " + std::string(item));
      std::string_view head = item.substr(0, x);
      if (head == "_") {
        for (long k = 0; k < n; ++k) out.values.push_back(std::nullopt);
        continue;
      }
      size_t op = std::string_view::npos;
      for (size_t k = 1; k < head.size(); ++k) {
        if ((head[k] == '+' || head[k] == '-') && head[k - 1] != 'e' && head[k - 1] != 'E') {
          op = k;
          break;
        }
      }
      std::optional<double> a = ParseFloat(op == std::string_view::npos ? head : head.substr(0, op));
      std::optional<double> b = op == std::string_view::npos ? std::optional<double>(0.0) : ParseFloat(head.substr(op + 1));
      if (!a || !b) return LineError(lineno, "bad value: " + std::string(item));
      double step = op != std::string_view::npos && head[op] == '-' ? -*b : *b;
      double v = *a;
      for (long k = 0; k <= n; ++k) {
        out.values.push_back(v);
        v += step;
      }
      continue;
    }
    std::optional<double> v = ParseFloat(item);
    if (!v) return LineError(lineno, "bad value: " + std::string(item));
    out.values.push_back(*v);
  }
  return out;
}

// Equality of floats as the Go runner decides it.
bool AlmostEqual(double a, double b) {
  if (IsStaleNaN(a) || IsStaleNaN(b)) return IsStaleNaN(a) && IsStaleNaN(b);
  if (std::isnan(a) && std::isnan(b)) return true;
  if (a == b) return true;
  constexpr double kMinNormal = 2.2250738585072014e-308;
  constexpr double kEps = 1e-6;
  double d = std::fabs(a - b);
  double s = std::fabs(a) + std::fabs(b);
  if (a == 0 || b == 0 || s < kMinNormal) return d < kEps * kMinNormal;
  return d / std::min(s, std::numeric_limits<double>::max()) < kEps;
}

std::string FormatPoints(const std::vector<Sample>& pts) {
  std::string out;
  for (const Sample& p : pts) {
    if (!out.empty()) out += " ";
    out += FormatValue(p.v) + "@" + std::to_string(p.t / 1000) + (p.t % 1000 ? "." + std::to_string(std::llabs(p.t % 1000)) : "");
  }
  return out;
}

bool ContainsWord(std::string_view text, std::string_view word) {
  auto ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':'; };
  size_t pos = 0;
  while ((pos = text.find(word, pos)) != std::string_view::npos) {
    bool left = pos == 0 || !ident(text[pos - 1]);
    bool right = pos + word.size() >= text.size() || !ident(text[pos + word.size()]);
    if (left && right) return true;
    pos += 1;
  }
  return false;
}

// Syntax the parser does not implement (newer than 2.42, or 3.x feature flags).
std::optional<std::string> UnsupportedSyntax(std::string_view expr, bool durations_as_numbers) {
  static const std::pair<const char*, const char*> kPatterns[] = {
      {R"(\[\s*-?\d+(\.\d+)?\s*[:\]])", "numbers as durations"},
      {R"(:\s*\d+(\.\d+)?\s*\])", "numbers as durations"},
      {R"(\boffset\s+-?\s*\d+(\.\d+)?(\s|$|\)|\[|,))", "numbers as durations"},
      {R"(@\s*-?\d+(\.\d+)?(ms|[smhdwy]))", "durations after @"},
      {R"(\[[^\]]*[-+*/%^()][^\]]*\])", "arithmetic in durations"},
      {R"(\boffset\s*-?\s*\()", "arithmetic in durations"},
      {R"(,\s*\))", "trailing comma in call"},
  };
  // Compiled once (thread-safe static initialisation), read-only after.
  static const auto* kCompiled = [] {
    auto* v = new std::vector<std::pair<std::unique_ptr<re2::RE2>, std::string>>;
    for (const auto& [pattern, reason] : kPatterns) v->emplace_back(std::make_unique<re2::RE2>(pattern), reason);
    return v;
  }();
  for (const auto& [re, why] : *kCompiled) {
    if (durations_as_numbers &&
        (why == "numbers as durations" || why == "durations after @" || why == "arithmetic in durations")) {
      continue;
    }
    if (re2::RE2::PartialMatch(re2::StringPiece(expr.data(), expr.size()), *re)) return why;
  }
  return std::nullopt;
}

struct EvalSpec {
  int line = 0;
  bool range = false;
  int64_t start = 0, end = 0, step = 0;
  std::string expr;
  bool expect_fail = false;
  std::optional<std::string> fail_msg, fail_regex;
  bool ordered = false;
  bool annotation_required = false;
  std::optional<std::string> expect_string;
  std::optional<double> expect_scalar;
  bool range_vector = false;
  int64_t rv_start = 0, rv_end = 0, rv_step = 0;
  std::vector<SeriesLine> series;
  bool mentions_histogram = false;
};

class Runner {
 public:
  Runner(const TestRunnerOptions& o, MemoryStore& store, bool load_only)
      : opts_(o), engine_(o.engine), store_(store), load_only_(load_only) {}

  Result<ScriptReport> Run(std::string_view text) {
    std::vector<std::string_view> lines;
    size_t p = 0;
    while (p <= text.size()) {
      size_t e = text.find('\n', p);
      if (e == std::string_view::npos) e = text.size();
      std::string_view l = Trim(text.substr(p, e - p));
      if (!l.empty() && l[0] == '#') l = {};
      lines.push_back(l);
      p = e + 1;
    }
    size_t i = 0;
    while (i < lines.size()) {
      if (lines[i].empty()) {
        ++i;
        continue;
      }
      const size_t start = i;
      size_t end = i + 1;
      while (end < lines.size() && !lines[end].empty()) ++end;
      std::string_view cmd = lines[start];
      std::string word = Lower(cmd.substr(0, cmd.find_first_of(" \t")));
      int lineno = static_cast<int>(start) + 1;
      const std::vector<std::string_view> body(lines.begin() + start + 1, lines.begin() + end);
      if (word == "clear") {
        store_.Clear();
        histograms_.clear();
        end = start + 1;  // clear takes no block
      } else if (word.starts_with("load")) {
        TELKIT_RETURN_IF_ERROR(Load(cmd, body, lineno, word == "load_with_nhcb"));
      } else if (word.starts_with("eval")) {
        if (!load_only_) TELKIT_RETURN_IF_ERROR(Eval(cmd, body, lineno));
      } else {
        return LineError(lineno, "unknown command: " + std::string(cmd));
      }
      i = end;
    }
    return std::move(report_);
  }

 private:
  Status Load(std::string_view cmd, const std::vector<std::string_view>& body, int lineno, bool nhcb) {
    std::string_view arg = Trim(cmd.substr(cmd.find_first_of(" \t") == std::string_view::npos ? cmd.size()
                                                                                                 : cmd.find_first_of(" \t")));
    Result<int64_t> interval = ParseDuration(arg);
    if (!interval.ok()) return LineError(lineno, "bad load interval: " + std::string(arg));
    std::map<Labels, std::vector<std::optional<double>>> block;
    for (size_t k = 0; k < body.size(); ++k) {
      std::string_view l = body[k];
      size_t desc_end = l.find_first_of(" \t");
      if (desc_end != std::string_view::npos && l.substr(0, desc_end).ends_with("@st")) continue;
      TELKIT_ASSIGN_OR_RETURN(SeriesLine s, ParseSeriesLine(l, lineno + 1 + static_cast<int>(k)));
      std::string name(s.labels.MetricName());
      if (s.histogram) {
        histograms_.insert(name);
        continue;
      }
      if (nhcb) {
        for (std::string_view suffix : {"_bucket", "_count", "_sum"}) {
          if (name.ends_with(suffix)) histograms_.insert(name.substr(0, name.size() - suffix.size()));
        }
      }
      block[s.labels] = std::move(s.values);
    }
    for (const auto& [labels, values] : block) {
      std::vector<Sample> samples;
      for (size_t k = 0; k < values.size(); ++k) {
        if (values[k]) samples.push_back({static_cast<int64_t>(k) * *interval, *values[k]});
      }
      store_.Append(labels, samples);
    }
    return OkStatus();
  }

  Status ParseEval(std::string_view cmd, const std::vector<std::string_view>& body, int lineno, EvalSpec& spec) {
    static const re2::RE2 kInstant(R"(^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$)");
    static const re2::RE2 kRange(R"(^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$)");
    std::string mod, a, b, c, expr;
    re2::StringPiece in(cmd.data(), cmd.size());
    spec.line = lineno;
    if (re2::RE2::FullMatch(in, kInstant, &mod, &a, &expr)) {
      TELKIT_ASSIGN_OR_RETURN(spec.start, ParseTime(a));
      spec.end = spec.start;
    } else if (re2::RE2::FullMatch(in, kRange, &mod, &a, &b, &c, &expr)) {
      spec.range = true;
      TELKIT_ASSIGN_OR_RETURN(spec.start, ParseTime(a));
      TELKIT_ASSIGN_OR_RETURN(spec.end, ParseTime(b));
      TELKIT_ASSIGN_OR_RETURN(spec.step, ParseDuration(Trim(c)));
    } else {
      return LineError(lineno, "invalid eval command: " + std::string(cmd));
    }
    spec.expr = expr;
    if (mod == "fail") spec.expect_fail = true;
    if (mod == "ordered") spec.ordered = true;
    if (mod == "warn" || mod == "info") spec.annotation_required = true;
    static const re2::RE2 kExpect(R"(^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$)");
    static const re2::RE2 kRangeVector(R"(^expect range vector from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$)");
    for (size_t k = 0; k < body.size(); ++k) {
      std::string_view l = body[k];
      int ln = lineno + 1 + static_cast<int>(k);
      re2::StringPiece lp(l.data(), l.size());
      std::string x, y, z;
      if (l.find("{{") != std::string_view::npos) spec.mentions_histogram = true;
      if (re2::RE2::FullMatch(lp, kRangeVector, &x, &y, &z)) {
        spec.range_vector = true;
        TELKIT_ASSIGN_OR_RETURN(spec.rv_start, ParseTime(x));
        TELKIT_ASSIGN_OR_RETURN(spec.rv_end, ParseTime(y));
        TELKIT_ASSIGN_OR_RETURN(spec.rv_step, ParseDuration(Trim(z)));
        continue;
      }
      if (l.starts_with("expect string")) {
        Result<std::string> s = Unquote(Trim(l.substr(13)));
        if (!s.ok()) return LineError(ln, "bad expected string");
        spec.expect_string = *s;
        continue;
      }
      if (l.starts_with("expected_fail_message")) {
        spec.fail_msg = std::string(Trim(l.substr(21)));
        break;
      }
      if (l.starts_with("expected_fail_regexp")) {
        spec.fail_regex = std::string(Trim(l.substr(20)));
        break;
      }
      if (l.starts_with("expect ") || l == "expect") {
        std::string type, kind, text;
        if (!re2::RE2::FullMatch(lp, kExpect, &type, &kind, &text)) return LineError(ln, "invalid expect line");
        if (type == "fail") {
          spec.expect_fail = true;
          if (kind == "msg") spec.fail_msg = std::string(Trim(text));
          if (kind == "regex") spec.fail_regex = std::string(Trim(text));
        } else if (type == "ordered") {
          spec.ordered = true;
        } else if (type == "warn" || type == "info") {
          spec.annotation_required = true;
        }
        continue;
      }
      if (std::optional<double> v = ParseScalarLine(l)) {
        spec.expect_scalar = *v;
        break;
      }
      TELKIT_ASSIGN_OR_RETURN(SeriesLine s, ParseSeriesLine(l, ln));
      if (s.histogram) spec.mentions_histogram = true;
      spec.series.push_back(std::move(s));
    }
    return OkStatus();
  }

  Status Eval(std::string_view cmd, const std::vector<std::string_view>& body, int lineno) {
    EvalSpec spec;
    TELKIT_RETURN_IF_ERROR(ParseEval(cmd, body, lineno, spec));
    EvalReport rep;
    rep.line = lineno;
    rep.expr = spec.expr;
    if (spec.annotation_required) report_.annotation_checks_skipped++;
    std::optional<std::string> skip_hist;
    if (spec.mentions_histogram) skip_hist = "expected result has native histograms";
    for (const std::string& h : histograms_) {
      if (!h.empty() && ContainsWord(spec.expr, h)) skip_hist = "uses native histogram series '" + h + "'";
    }
    // A __name__ regex that selects a histogram series.
    static const re2::RE2 kNameRegex(R"re(__name__\s*=~\s*"([^"]*)")re");
    re2::StringPiece rest(spec.expr);
    std::string name_re;
    while (re2::RE2::FindAndConsume(&rest, kNameRegex, &name_re)) {
      re2::RE2 re("^(?:" + name_re + ")$");
      for (const std::string& h : histograms_) {
        if (re.ok() && re2::RE2::FullMatch(h, re)) skip_hist = "selects native histogram series '" + h + "'";
      }
    }
    for (std::string_view f : {"histogram_count", "histogram_sum", "histogram_avg", "histogram_stddev", "histogram_stdvar"}) {
      if (ContainsWord(spec.expr, f)) skip_hist = "native histogram function " + std::string(f);
    }
    if (skip_hist) {
      rep.outcome = EvalOutcome::kSkippedHistogram;
      rep.message = *skip_hist;
      report_.skipped_histogram++;
      report_.evals.push_back(std::move(rep));
      return OkStatus();
    }
    if (std::optional<std::string> why = UnsupportedSyntax(spec.expr, opts_.engine.parse.durations_as_numbers)) {
      rep.outcome = EvalOutcome::kSkippedUnsupported;
      rep.message = *why;
      report_.skipped_unsupported++;
      report_.evals.push_back(std::move(rep));
      return OkStatus();
    }
    std::string failure = Check(spec);
    if (failure.empty() && opts_.check_range_mode) failure = CheckRangeMode(spec);
    if (failure.empty() && opts_.check_step_invariance) failure = CheckStepInvariance(spec);
    if (failure.empty()) {
      rep.outcome = EvalOutcome::kPassed;
      report_.passed++;
    } else {
      rep.outcome = EvalOutcome::kFailed;
      rep.message = std::move(failure);
      report_.failed++;
    }
    report_.evals.push_back(std::move(rep));
    return OkStatus();
  }

  // The Go runner's extra check: an instant eval run as a range query from
  // t-1m to t+1m step 1m must give the instant result at its middle step.
  std::string CheckRangeMode(const EvalSpec& spec) {
    if (spec.range || spec.expect_fail || spec.ordered || spec.expect_string || spec.range_vector) return "";
    for (std::string_view f : {"start", "end", "step", "range"}) {
      if (spec.expr.find(std::string(f) + "()") != std::string::npos) return "";
    }
    Result<ExprPtr> e = ParseExpr(spec.expr, opts_.engine.parse);
    if (!e.ok() || ((*e)->Type() != ValueType::kVector && (*e)->Type() != ValueType::kScalar)) return "";
    Result<QueryResult> inst = engine_.InstantQuery(store_, spec.expr, spec.start);
    Result<QueryResult> range = engine_.RangeQuery(store_, spec.expr, spec.start - 60000, spec.start + 60000, 60000);
    if (!inst.ok() || !range.ok()) return "range mode: query failed: " + (inst.ok() ? range : inst).status().ToString();
    std::map<Labels, double> want, got;
    if (inst->type == ValueType::kScalar) {
      want[Labels()] = inst->scalar;
    } else {
      for (const Series& s : inst->series) want[s.labels] = s.points[0].v;
    }
    for (const Series& s : range->series) {
      for (const Sample& p : s.points) {
        if (p.t == spec.start) got[s.labels] = p.v;
      }
    }
    if (want.size() != got.size()) return "range mode: " + std::to_string(got.size()) + " series at the middle step, instant query " + std::to_string(want.size());
    for (const auto& [l, v] : want) {
      auto it = got.find(l);
      if (it == got.end()) return "range mode: missing " + l.ToString();
      if (!AlmostEqual(v, it->second)) return "range mode: " + l.ToString() + " " + FormatValue(it->second) + ", instant " + FormatValue(v);
    }
    return "";
  }

  // Sets `@ t` on every selector and subquery without one, not descending
  // into subqueries, as the Go runner does.
  static void PinToTime(Expr& e, int64_t t) {
    auto pin = [t](TimeModifiers& m) {
      if (m.at == AtKind::kNone) {
        m.at = AtKind::kTimestamp;
        m.at_ms = t;
      }
    };
    switch (e.kind) {
      case NodeKind::kVectorSelector: pin(static_cast<VectorSelector&>(e).mod); break;
      case NodeKind::kMatrixSelector: pin(static_cast<MatrixSelector&>(e).vs->mod); break;
      case NodeKind::kSubquery:
        // Its inner selectors stay relative to the (now fixed) subquery.
        pin(static_cast<SubqueryExpr&>(e).mod);
        break;
      case NodeKind::kParen: PinToTime(*static_cast<ParenExpr&>(e).expr, t); break;
      case NodeKind::kUnary: PinToTime(*static_cast<UnaryExpr&>(e).expr, t); break;
      case NodeKind::kBinary:
        PinToTime(*static_cast<BinaryExpr&>(e).lhs, t);
        PinToTime(*static_cast<BinaryExpr&>(e).rhs, t);
        break;
      case NodeKind::kAggregate:
        if (static_cast<AggregateExpr&>(e).param) PinToTime(*static_cast<AggregateExpr&>(e).param, t);
        PinToTime(*static_cast<AggregateExpr&>(e).expr, t);
        break;
      case NodeKind::kCall:
        for (ExprPtr& a : static_cast<Call&>(e).args) PinToTime(*a, t);
        break;
      default: break;
    }
  }

  // The Go runner's step-invariance check: with every selector pinned to the
  // eval time by @, the result must not depend on the evaluation time.
  std::string CheckStepInvariance(const EvalSpec& spec) {
    if (spec.range || spec.expect_fail || spec.expect_string || spec.range_vector) return "";
    static const re2::RE2 kTimeDependent(
        R"(\b(time|timestamp|predict_linear|start|end|range|step|days_in_month|day_of_month|day_of_week|day_of_year|hour|minute|month|year)\s*\()");
    if (re2::RE2::PartialMatch(spec.expr, kTimeDependent)) return "";
    Result<ExprPtr> e = ParseExpr(spec.expr, opts_.engine.parse);
    if (!e.ok()) return "";
    PinToTime(**e, spec.start);
    std::string pinned = (*e)->ToString();
    Result<QueryResult> want = engine_.InstantQuery(store_, spec.expr, spec.start);
    if (!want.ok()) return "";
    int64_t t = spec.start;
    std::vector<int64_t> times = t == 0 ? std::vector<int64_t>{-1000, 0, 1000}
                                        : std::vector<int64_t>{-10 * t, 0, t / 5, t, 10 * t};
    for (int64_t at : times) {
      Result<QueryResult> got = engine_.InstantQuery(store_, pinned, at);
      if (!got.ok()) return "step invariance: '" + pinned + "' at " + std::to_string(at) + " failed: " + got.status().message();
      if (got->type != want->type) return "step invariance: type differs at " + std::to_string(at);
      if (want->type == ValueType::kScalar) {
        if (!AlmostEqual(got->scalar, want->scalar)) return "step invariance: scalar differs at " + std::to_string(at);
        continue;
      }
      std::map<Labels, double> a, b;
      for (const Series& s : want->series) a[s.labels] = s.points.back().v;
      for (const Series& s : got->series) b[s.labels] = s.points.back().v;
      if (a.size() != b.size()) return "step invariance: '" + pinned + "' at " + std::to_string(at) + " gives " + std::to_string(b.size()) + " series, not " + std::to_string(a.size());
      for (const auto& [l, v] : a) {
        auto it = b.find(l);
        if (it == b.end() || !AlmostEqual(v, it->second)) {
          return "step invariance: '" + pinned + "' at " + std::to_string(at) + " differs for " + l.ToString();
        }
      }
    }
    return "";
  }

  // "" when the result matches the expectation, else what differs.
  std::string Check(const EvalSpec& spec) {
    Result<QueryResult> r = spec.range ? engine_.RangeQuery(store_, spec.expr, spec.start, spec.end, spec.step)
                                       : engine_.InstantQuery(store_, spec.expr, spec.start);
    if (spec.expect_fail) {
      if (r.ok()) return "expected the query to fail, it succeeded";
      const Status st = r.status();
      const std::string& msg = st.message();
      if (spec.fail_msg && msg != *spec.fail_msg) return "error '" + msg + "', expected '" + *spec.fail_msg + "'";
      if (spec.fail_regex && !re2::RE2::PartialMatch(msg, re2::RE2(*spec.fail_regex))) {
        return "error '" + msg + "' does not match /" + *spec.fail_regex + "/";
      }
      return "";
    }
    if (!r.ok()) return "query failed: " + r.status().ToString();
    const QueryResult& res = *r;
    if (spec.expect_string) {
      if (res.type != ValueType::kString) return "expected a string result";
      return res.str == *spec.expect_string ? "" : "string '" + res.str + "', expected '" + *spec.expect_string + "'";
    }
    if (spec.expect_scalar) {
      if (res.type != ValueType::kScalar) {
        return "expected scalar " + FormatValue(*spec.expect_scalar) + ", got " + std::string(ValueTypeApiName(res.type));
      }
      return AlmostEqual(res.scalar, *spec.expect_scalar)
                 ? ""
                 : "scalar " + FormatValue(res.scalar) + ", expected " + FormatValue(*spec.expect_scalar);
    }
    if (res.type == ValueType::kScalar || res.type == ValueType::kString) {
      return "expected a vector, got " + std::string(ValueTypeApiName(res.type));
    }
    if (!spec.range && !spec.range_vector && res.type != ValueType::kVector) {
      return "expected an instant vector, got " + std::string(ValueTypeApiName(res.type));
    }
    if (spec.range_vector && res.type != ValueType::kMatrix) return "expected a range vector";
    // Expected points of each series.
    std::map<Labels, std::vector<Sample>> expected;
    std::vector<Labels> order;
    for (const SeriesLine& s : spec.series) {
      std::vector<Sample> pts;
      if (!spec.range && !spec.range_vector) {
        if (s.values.size() != 1 || !s.values[0]) return "script: expected one value for " + s.labels.ToString();
        pts.push_back({spec.start, *s.values[0]});
      } else {
        int64_t start = spec.range ? spec.start : spec.rv_start;
        int64_t step = spec.range ? spec.step : spec.rv_step;
        for (size_t k = 0; k < s.values.size(); ++k) {
          if (s.values[k]) pts.push_back({start + static_cast<int64_t>(k) * step, *s.values[k]});
        }
      }
      expected[s.labels] = std::move(pts);
      order.push_back(s.labels);
    }
    std::set<Labels> seen;
    for (const Series& s : res.series) {
      auto it = expected.find(s.labels);
      if (it == expected.end()) return "unexpected series " + s.labels.ToString() + " " + FormatPoints(s.points);
      if (!seen.insert(s.labels).second) return "duplicate series " + s.labels.ToString();
      const auto& want = it->second;
      bool same = want.size() == s.points.size();
      for (size_t k = 0; same && k < want.size(); ++k) {
        same = (spec.range || spec.range_vector ? want[k].t == s.points[k].t : true) && AlmostEqual(want[k].v, s.points[k].v);
      }
      if (!same) {
        return "series " + s.labels.ToString() + ": got " + FormatPoints(s.points) + ", expected " + FormatPoints(want);
      }
    }
    for (const Labels& l : order) {
      if (!seen.count(l)) return "missing series " + l.ToString();
    }
    if (spec.ordered && !spec.range) {
      for (size_t k = 0; k < order.size() && k < res.series.size(); ++k) {
        if (res.series[k].labels != order[k]) {
          return "order: position " + std::to_string(k) + " is " + res.series[k].labels.ToString() + ", expected " +
                 order[k].ToString();
        }
      }
    }
    return "";
  }

  TestRunnerOptions opts_;
  Engine engine_;
  MemoryStore& store_;
  bool load_only_;
  std::set<std::string> histograms_;
  ScriptReport report_;
};

}  // namespace

Result<ScriptReport> RunTestScript(std::string_view text, const TestRunnerOptions& options) {
  MemoryStore store;
  Runner r(options, store, false);
  return r.Run(text);
}

Status LoadTestScriptData(std::string_view text, MemoryStore& store) {
  Runner r(TestRunnerOptions{}, store, true);
  TELKIT_ASSIGN_OR_RETURN(ScriptReport report, r.Run(text));
  (void)report;
  return OkStatus();
}

}  // namespace telkit::promql
