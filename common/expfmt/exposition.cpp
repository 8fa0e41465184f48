#include "common/expfmt/exposition.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>

#include "common/base/fd.h"
#include "common/base/utf8.h"

namespace telkit {
namespace {

constexpr size_t kMaxFamiliesTracked = 1 << 20;  // OpenMetrics' interleaving check
constexpr size_t kMaxExemplarRunes = 128;        // OpenMetrics: label names + values

bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':';
}

bool EqualsFold(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// For messages: the offending text, bounded and printable.
std::string Quote(std::string_view s) {
  std::string out = "'";
  const bool utf8 = IsValidUtf8(s.substr(0, 64));
  for (char c : s.substr(0, 64)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || (u >= 0x80 && !utf8)) ? '?' : c;
  }
  if (s.size() > 64) out += "...";
  return out + "'";
}

size_t Utf8Runes(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

// The end of a `{...}` block that starts at s[pos] == '{': the index after
// '}', honouring quotes and escapes; npos when it does not end on this line.
size_t LabelBlockEnd(std::string_view s, size_t pos) {
  bool quoted = false;
  for (size_t i = pos + 1; i < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '}') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

void UnescapeLabelValue(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 1 < in.size()) {
      char n = in[i + 1];
      if (n == '\\' || n == '"') {
        out->push_back(n);
        ++i;
        continue;
      }
      if (n == 'n') {
        out->push_back('\n');
        ++i;
        continue;
      }
    }
    out->push_back(in[i]);  // an unknown escape stays as written, as Prometheus keeps it
  }
}

std::string UnescapeHelp(std::string_view in, bool quotes) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 1 < in.size()) {
      char n = in[i + 1];
      if (n == '\\' || (quotes && n == '"')) {
        out.push_back(n);
        ++i;
        continue;
      }
      if (n == 'n') {
        out.push_back('\n');
        ++i;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

struct ParsedLabels {
  ExpositionProblem problem = ExpositionProblem::kSyntax;
  std::string error;  // empty when fine
};

// Parses the label block s[0..] == "{...}" (the whole of s) into `out`.
ParsedLabels ParseLabelBlock(std::string_view s, bool lenient_space, std::vector<Label>* out) {
  ParsedLabels r;
  size_t i = 1;
  const size_t end = s.size() - 1;  // the closing '}'
  auto skip = [&] {
    if (lenient_space) {
      while (i < end && IsSpace(s[i])) ++i;
    }
  };
  std::string value;
  skip();
  while (i < end) {
    size_t start = i;
    while (i < end && IsNameChar(s[i])) ++i;
    std::string_view name = s.substr(start, i - start);
    if (name.empty()) {
      if (s[i] == '"') {
        r.error = "quoted (UTF-8) label names are not supported";
      } else {
        r.error = "expected a label name at " + Quote(s.substr(i));
      }
      return r;
    }
    if (!IsValidLabelName(name)) {
      r.problem = ExpositionProblem::kInvalidLabelName;
      r.error = "invalid label name " + Quote(name);
      return r;
    }
    skip();
    if (i >= end || s[i] != '=') {
      r.error = "expected '=' after label name " + Quote(name);
      return r;
    }
    ++i;
    skip();
    if (i >= end || s[i] != '"') {
      r.error = "expected '\"' to start the value of label " + Quote(name);
      return r;
    }
    size_t vstart = ++i;
    while (i < end && s[i] != '"') i += s[i] == '\\' ? 2 : 1;
    if (i >= end) {
      r.error = "unterminated value of label " + Quote(name);
      return r;
    }
    UnescapeLabelValue(s.substr(vstart, i - vstart), &value);
    ++i;  // closing quote
    if (!IsValidUtf8(value)) {
      r.problem = ExpositionProblem::kInvalidLabelValue;
      r.error = "value of label " + Quote(name) + " is not valid UTF-8";
      return r;
    }
    out->push_back({std::string(name), value});
    skip();
    if (i < end) {
      if (s[i] != ',') {
        r.error = "expected ',' or '}' after the value of label " + Quote(name);
        return r;
      }
      ++i;
      skip();
    }
  }
  return r;
}

ExpositionProblem FromLabelProblem(LabelProblem p) {
  switch (p) {
    case LabelProblem::kInvalidMetricName:
    case LabelProblem::kMissingMetricName: return ExpositionProblem::kInvalidMetricName;
    case LabelProblem::kInvalidLabelName: return ExpositionProblem::kInvalidLabelName;
    case LabelProblem::kInvalidLabelValue: return ExpositionProblem::kInvalidLabelValue;
    case LabelProblem::kDuplicateLabelName: return ExpositionProblem::kDuplicateLabel;
    default: return ExpositionProblem::kLabelLimit;
  }
}

bool ParseMillis(std::string_view s, int64_t* ms) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *ms);
  return ec == std::errc() && p == s.data() + s.size();
}

// OpenMetrics timestamps: seconds with an optional fraction (or an exponent
// float). Decimal forms convert exactly, truncating below a millisecond.
bool ParseSecondsAsMillis(std::string_view s, int64_t* ms) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  size_t int_start = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  size_t int_digits = i - int_start;
  bool exact = int_digits > 0 && int_digits <= 15;
  int64_t frac = 0;
  if (exact && i < s.size() && s[i] == '.') {
    ++i;
    size_t f = 0;
    size_t fstart = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (f < 3) frac = frac * 10 + (s[i] - '0');
      ++f;
      ++i;
    }
    if (i == fstart) exact = false;  // "1." is left to the float parser
    for (; f < 3; ++f) frac *= 10;
  }
  if (exact && i == s.size()) {
    int64_t secs = 0;
    std::from_chars(s.data() + int_start, s.data() + int_start + int_digits, secs);
    int64_t v = secs * 1000 + frac;
    *ms = neg ? -v : v;
    return true;
  }
  double d;
  if (!ParseExpositionValue(s, &d) || !std::isfinite(d)) return false;
  double m = d * 1000;
  if (!(m > -9.2e18 && m < 9.2e18)) return false;
  *ms = static_cast<int64_t>(m);
  return true;
}

bool InSuffixes(std::string_view suffix, std::initializer_list<std::string_view> allowed) {
  for (std::string_view a : allowed) {
    if (suffix == a) return true;
  }
  return false;
}

}  // namespace

std::string_view ExpositionFormatName(ExpositionFormat f) {
  return f == ExpositionFormat::kOpenMetrics ? "openmetrics" : "prometheus";
}

ExpositionFormat ExpositionFormatFromContentType(std::string_view ct) {
  constexpr std::string_view kOm = "application/openmetrics-text";
  size_t i = 0;
  while (i < ct.size() && IsSpace(ct[i])) ++i;
  ct.remove_prefix(i);
  return ct.size() >= kOm.size() && EqualsFold(ct.substr(0, kOm.size()), kOm) ? ExpositionFormat::kOpenMetrics
                                                                               : ExpositionFormat::kPrometheusText;
}

std::string_view ExpositionProblemName(ExpositionProblem p) {
  switch (p) {
    case ExpositionProblem::kSyntax: return "syntax";
    case ExpositionProblem::kInvalidMetricName: return "invalid_metric_name";
    case ExpositionProblem::kInvalidLabelName: return "invalid_label_name";
    case ExpositionProblem::kInvalidLabelValue: return "invalid_label_value";
    case ExpositionProblem::kDuplicateLabel: return "duplicate_label";
    case ExpositionProblem::kLabelLimit: return "label_limit";
    case ExpositionProblem::kInvalidValue: return "invalid_value";
    case ExpositionProblem::kInvalidTimestamp: return "invalid_timestamp";
    case ExpositionProblem::kInvalidExemplar: return "invalid_exemplar";
    case ExpositionProblem::kMetadata: return "metadata";
    case ExpositionProblem::kFamilyOrder: return "family_order";
    case ExpositionProblem::kMissingLabel: return "missing_label";
    case ExpositionProblem::kLineTooLong: return "line_too_long";
    case ExpositionProblem::kEof: return "eof";
    case ExpositionProblem::kCount: break;
  }
  return "unknown";
}

bool ParseExpositionValue(std::string_view s, double* v) {
  if (s.empty()) return false;
  if (s[0] == '+') {
    s.remove_prefix(1);
    if (s.empty() || s[0] == '-' || s[0] == '+') return false;
  }
  // from_chars also takes "nan(...)"; neither format writes that.
  if (s.find('(') != std::string_view::npos) return false;
  // Hexadecimal floats ("0x1p-3"), which Go's ParseFloat and so Prometheus take.
  bool neg = !s.empty() && s[0] == '-';
  std::string_view digits = s.substr(neg ? 1 : 0);
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    digits.remove_prefix(2);
    if (digits.empty() || !(std::isxdigit(static_cast<unsigned char>(digits[0])) || digits[0] == '.')) return false;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *v, std::chars_format::hex);
    if (ec != std::errc() || p != digits.data() + digits.size()) return false;
    if (neg) *v = -*v;
    return true;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v, std::chars_format::general);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string FormatOpenMetricsFloat(double f) {
  if (f == 1) return "1.0";
  if (f == 0) return "0.0";
  if (f == -1) return "-1.0";
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "+Inf" : "-Inf";
  // The shortest round-trip digits and exponent, then Go's %g layout with
  // precision 6 deciding between %e and %f (strconv.FormatFloat(f, 'g', -1, 64)).
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string_view s(buf, static_cast<size_t>(r.ptr - buf));
  std::string out;
  if (s[0] == '-') {
    out.push_back('-');
    s.remove_prefix(1);
  }
  size_t e = s.find('e');
  int exp = 0;
  std::from_chars(s.data() + e + 1 + (s[e + 1] == '+'), s.data() + s.size(), exp);
  std::string digits;
  for (char c : s.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  const int nd = static_cast<int>(digits.size());
  const int dp = exp + 1;
  if (exp < -4 || exp >= 6) {
    out.push_back(digits[0]);
    if (nd > 1) {
      out.push_back('.');
      out.append(digits, 1, std::string::npos);
    }
    out.push_back('e');
    out.push_back(exp < 0 ? '-' : '+');
    int a = exp < 0 ? -exp : exp;
    if (a < 10) out.push_back('0');
    out += std::to_string(a);
    return out;
  }
  if (dp > 0) {
    for (int i = 0; i < dp; ++i) out.push_back(i < nd ? digits[static_cast<size_t>(i)] : '0');
  } else {
    out.push_back('0');
  }
  int frac = std::max(nd - dp, 0);
  if (frac > 0) {
    out.push_back('.');
    for (int i = 0; i < frac; ++i) {
      int k = dp + i;
      out.push_back(k >= 0 && k < nd ? digits[static_cast<size_t>(k)] : '0');
    }
  } else {
    out += ".0";
  }
  return out;
}

ExpositionParser::ExpositionParser(ExpositionOptions options, ExpositionBatchHandler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {
  if (options_.batch_samples == 0) options_.batch_samples = 1;
}

Status ExpositionParser::Problem(ExpositionProblem p, std::string what) {
  std::string message = "line " + std::to_string(line_no_) + ": " + what;
  ++stats_.errors;
  ++stats_.errors_by_problem[static_cast<size_t>(p)];
  if (errors_.size() < options_.max_errors_kept) errors_.push_back({line_no_, p, message});
  if (options_.on_error == ExpositionErrorPolicy::kStop) {
    failed_ = InvalidArgumentError(std::move(message));
    return failed_;
  }
  return OkStatus();
}

Status ExpositionParser::Feed(std::string_view bytes) {
  if (!failed_.ok()) return failed_;
  if (finished_) return FailedPreconditionError("exposition parser: Feed after Finish");
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    if (skipping_long_line_) {
      if (nl == std::string_view::npos) return OkStatus();
      bytes.remove_prefix(nl + 1);
      skipping_long_line_ = false;
      continue;
    }
    if (nl == std::string_view::npos) {
      if (pending_.size() + bytes.size() > options_.max_line_bytes) {
        ++line_no_;
        ++stats_.lines;
        pending_.clear();
        skipping_long_line_ = true;
        TELKIT_RETURN_IF_ERROR(Problem(ExpositionProblem::kLineTooLong,
                                       "line longer than " + std::to_string(options_.max_line_bytes) + " bytes"));
        return OkStatus();
      }
      pending_.append(bytes);
      return OkStatus();
    }
    ++line_no_;
    Status s;
    if (pending_.size() + nl > options_.max_line_bytes) {
      ++stats_.lines;
      pending_.clear();
      s = Problem(ExpositionProblem::kLineTooLong,
                  "line longer than " + std::to_string(options_.max_line_bytes) + " bytes");
    } else if (pending_.empty()) {
      s = ParseLine(bytes.substr(0, nl));
    } else {
      pending_.append(bytes.substr(0, nl));
      s = ParseLine(pending_);
      pending_.clear();
    }
    if (!s.ok()) return s;
    bytes.remove_prefix(nl + 1);
  }
  return OkStatus();
}

Status ExpositionParser::Finish() {
  if (!failed_.ok()) return failed_;
  if (finished_) return OkStatus();
  finished_ = true;
  if (!pending_.empty() && !skipping_long_line_) {
    ++line_no_;
    std::string last = std::move(pending_);
    pending_.clear();
    TELKIT_RETURN_IF_ERROR(ParseLine(last));
  }
  if (options_.format == ExpositionFormat::kOpenMetrics && !eof_seen_) {
    TELKIT_RETURN_IF_ERROR(Problem(ExpositionProblem::kEof, "missing '# EOF' at the end of the OpenMetrics input"));
  }
  EmitFamilyMetadata();
  return Flush();
}

Status ExpositionParser::Flush() {
  last_series_open_ = false;
  if (batch_.series.empty() && batch_.metadata.empty()) return OkStatus();
  ++stats_.batches;
  Status s = handler_(batch_);
  batch_.series.clear();
  batch_.metadata.clear();
  batch_.num_samples = 0;
  if (!s.ok()) failed_ = s;
  return s;
}

Status ExpositionParser::ParseLine(std::string_view line) {
  ++stats_.lines;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const bool om = options_.format == ExpositionFormat::kOpenMetrics;
  if (eof_seen_) return Problem(ExpositionProblem::kEof, "content after '# EOF'");
  if (!om) {
    size_t i = 0;
    while (i < line.size() && IsSpace(line[i])) ++i;
    line.remove_prefix(i);
  }
  if (line.empty()) {
    if (om) return Problem(ExpositionProblem::kSyntax, "empty line (not allowed in OpenMetrics)");
    return OkStatus();
  }
  if (line[0] == '#') return ParseComment(line);
  return ParseSample(line);
}

Status ExpositionParser::ParseComment(std::string_view line) {
  const bool om = options_.format == ExpositionFormat::kOpenMetrics;
  std::string_view rest = line.substr(1);
  if (om) {
    if (rest == " EOF") {
      eof_seen_ = true;
      return OkStatus();
    }
    if (rest.empty() || rest[0] != ' ') return Problem(ExpositionProblem::kSyntax, "unexpected comment " + Quote(line));
    rest.remove_prefix(1);
  } else {
    size_t i = 0;
    while (i < rest.size() && IsSpace(rest[i])) ++i;
    rest.remove_prefix(i);
  }
  size_t kw_end = 0;
  while (kw_end < rest.size() && !IsSpace(rest[kw_end])) ++kw_end;
  std::string_view keyword = rest.substr(0, kw_end);
  enum { kHelp, kType, kUnit } kind;
  if (keyword == "HELP") {
    kind = kHelp;
  } else if (keyword == "TYPE") {
    kind = kType;
  } else if (keyword == "UNIT" && om) {
    kind = kUnit;
  } else {
    if (om) return Problem(ExpositionProblem::kSyntax, "unexpected comment " + Quote(line));
    return OkStatus();  // a plain comment
  }
  rest.remove_prefix(kw_end);
  // One separator (OpenMetrics), or any run of blanks (Prometheus text).
  auto next_sep = [&] {
    if (rest.empty() || !IsSpace(rest[0])) return false;
    if (om) {
      if (rest[0] != ' ') return false;
      rest.remove_prefix(1);
    } else {
      size_t i = 0;
      while (i < rest.size() && IsSpace(rest[i])) ++i;
      rest.remove_prefix(i);
    }
    return true;
  };
  if (!next_sep()) return Problem(ExpositionProblem::kMetadata, std::string(keyword) + " line without a metric name");
  size_t name_end = 0;
  while (name_end < rest.size() && !IsSpace(rest[name_end])) ++name_end;
  std::string_view name = rest.substr(0, name_end);
  if (!IsValidMetricName(name)) {
    return Problem(ExpositionProblem::kInvalidMetricName, "invalid metric name " + Quote(name) + " in " +
                                                              std::string(keyword) + " line");
  }
  rest.remove_prefix(name_end);
  std::string_view text;
  if (next_sep()) {
    text = rest;
    if (!om && kind != kHelp) {
      while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
    }
  } else if (!rest.empty()) {
    return Problem(ExpositionProblem::kMetadata, "malformed " + std::string(keyword) + " line");
  }
  if (!in_family_ || family_.name != name) TELKIT_RETURN_IF_ERROR(StartFamily(name));
  if (!in_family_ || family_.name != name) return OkStatus();  // refused (skip mode)
  if (family_.has_samples) {
    return Problem(ExpositionProblem::kMetadata,
                   std::string(keyword) + " line for " + Quote(name) + " after its samples");
  }
  switch (kind) {
    case kHelp:
      if (family_.has_help) return Problem(ExpositionProblem::kMetadata, "second HELP line for " + Quote(name));
      family_.has_help = true;
      family_.help = UnescapeHelp(text, om);
      if (!IsValidUtf8(family_.help)) {
        family_.help.clear();
        return Problem(ExpositionProblem::kMetadata, "HELP text of " + Quote(name) + " is not valid UTF-8");
      }
      break;
    case kType: {
      if (family_.has_type) return Problem(ExpositionProblem::kMetadata, "second TYPE line for " + Quote(name));
      MetricFamilyType t;
      if (text == "counter") {
        t = MetricFamilyType::kCounter;
      } else if (text == "gauge") {
        t = MetricFamilyType::kGauge;
      } else if (text == "histogram") {
        t = MetricFamilyType::kHistogram;
      } else if (text == "summary") {
        t = MetricFamilyType::kSummary;
      } else if (text == (om ? "unknown" : "untyped")) {
        t = MetricFamilyType::kUnknown;
      } else if (om && text == "gaugehistogram") {
        t = MetricFamilyType::kGaugeHistogram;
      } else if (om && text == "stateset") {
        t = MetricFamilyType::kStateSet;
      } else if (om && text == "info") {
        t = MetricFamilyType::kInfo;
      } else {
        return Problem(ExpositionProblem::kMetadata, "unknown metric type " + Quote(text) + " for " + Quote(name));
      }
      family_.has_type = true;
      family_.type = t;
      break;
    }
    case kUnit:
      if (family_.has_unit) return Problem(ExpositionProblem::kMetadata, "second UNIT line for " + Quote(name));
      if (!text.empty() && (name.size() <= text.size() || name.substr(name.size() - text.size()) != text ||
                            name[name.size() - text.size() - 1] != '_')) {
        return Problem(ExpositionProblem::kMetadata,
                       "unit " + Quote(text) + " is not a suffix of the metric name " + Quote(name));
      }
      family_.has_unit = true;
      family_.unit = std::string(text);
      break;
  }
  return OkStatus();
}

Status ExpositionParser::StartFamily(std::string_view name) {
  EmitFamilyMetadata();
  last_series_open_ = false;
  if (options_.format == ExpositionFormat::kOpenMetrics) {
    if (families_seen_.count(std::string(name)) != 0) {
      in_family_ = false;
      return Problem(ExpositionProblem::kFamilyOrder,
                     "metric family " + Quote(name) + " appears twice (OpenMetrics keeps a family's lines together)");
    }
    if (families_seen_.size() < kMaxFamiliesTracked) families_seen_.emplace(name);
  }
  family_ = Family{};
  family_.name = std::string(name);
  in_family_ = true;
  return OkStatus();
}

void ExpositionParser::EmitFamilyMetadata() {
  if (!in_family_ || family_.emitted) return;
  if (!family_.has_type && !family_.has_help && !family_.has_unit) return;
  family_.emitted = true;
  ++stats_.families;
  batch_.metadata.push_back({family_.name, family_.type, family_.help, family_.unit});
}

bool ExpositionParser::InFamily(std::string_view name, std::string_view* suffix) const {
  const std::string& f = family_.name;
  if (name.size() < f.size() || name.substr(0, f.size()) != f) return false;
  *suffix = name.substr(f.size());
  const bool om = options_.format == ExpositionFormat::kOpenMetrics;
  switch (family_.type) {
    case MetricFamilyType::kCounter:
      return (!om && suffix->empty()) || InSuffixes(*suffix, {"_total", "_created"});
    case MetricFamilyType::kHistogram:
      return InSuffixes(*suffix, {"_bucket", "_count", "_sum", "_created"});
    case MetricFamilyType::kGaugeHistogram:
      return InSuffixes(*suffix, {"_bucket", "_gcount", "_gsum"});
    case MetricFamilyType::kSummary:
      return InSuffixes(*suffix, {"", "_count", "_sum", "_created"});
    case MetricFamilyType::kInfo:
      return InSuffixes(*suffix, {"_info"});
    default:
      return suffix->empty();
  }
}

Status ExpositionParser::ParseSample(std::string_view line) {
  const bool om = options_.format == ExpositionFormat::kOpenMetrics;
  size_t i = 0;
  while (i < line.size() && IsNameChar(line[i])) ++i;
  std::string_view name = line.substr(0, i);
  if (name.empty()) {
    if (line[0] == '{') return Problem(ExpositionProblem::kSyntax, "quoted (UTF-8) metric names are not supported");
    return Problem(ExpositionProblem::kSyntax, "expected a metric name at " + Quote(line));
  }
  if (!IsValidMetricName(name)) return Problem(ExpositionProblem::kInvalidMetricName, "invalid metric name " + Quote(name));
  size_t series_end = i;
  if (i < line.size() && !IsSpace(line[i]) && line[i] != '{') {
    return Problem(ExpositionProblem::kInvalidMetricName,
                   "invalid character " + Quote(line.substr(i, 1)) + " after metric name " + Quote(name));
  }
  if (i < line.size() && line[i] == '{') {
    series_end = LabelBlockEnd(line, i);
    if (series_end == std::string_view::npos) {
      return Problem(ExpositionProblem::kSyntax, "label set of " + Quote(name) + " does not end");
    }
  }
  std::string_view series_text = line.substr(0, series_end);
  std::string_view rest = line.substr(series_end);

  // value [timestamp] [# exemplar]
  auto sep = [&] {
    if (rest.empty() || !IsSpace(rest[0])) return false;
    if (om) {
      if (rest[0] != ' ') return false;
      rest.remove_prefix(1);
      return true;
    }
    size_t k = 0;
    while (k < rest.size() && IsSpace(rest[k])) ++k;
    rest.remove_prefix(k);
    return true;
  };
  auto token = [&] {
    size_t k = 0;
    while (k < rest.size() && !IsSpace(rest[k])) ++k;
    std::string_view t = rest.substr(0, k);
    rest.remove_prefix(k);
    return t;
  };
  if (!sep()) return Problem(ExpositionProblem::kSyntax, "expected a space and a value after " + Quote(series_text));
  std::string_view value_text = token();
  Sample sample{options_.default_timestamp_ms, 0};
  if (!ParseExpositionValue(value_text, &sample.v)) {
    return Problem(ExpositionProblem::kInvalidValue, "invalid value " + Quote(value_text) + " of " + Quote(series_text));
  }
  std::string_view exemplar_text;
  if (sep() && !rest.empty()) {
    if (rest[0] != '#') {
      std::string_view ts = token();
      bool ok = om ? ParseSecondsAsMillis(ts, &sample.t) : ParseMillis(ts, &sample.t);
      if (!ok) return Problem(ExpositionProblem::kInvalidTimestamp, "invalid timestamp " + Quote(ts) + " of " + Quote(series_text));
      sep();
    }
    if (!rest.empty()) {
      if (rest[0] != '#') return Problem(ExpositionProblem::kSyntax, "unexpected text " + Quote(rest) + " after the sample");
      if (!om) return Problem(ExpositionProblem::kSyntax, "exemplars need the OpenMetrics format");
      exemplar_text = rest;
    }
  } else if (!rest.empty()) {
    return Problem(ExpositionProblem::kSyntax, "unexpected text " + Quote(rest) + " after the value");
  }

  std::vector<Exemplar> exemplars;
  if (!exemplar_text.empty()) {
    // "# {labels} value [timestamp]"
    std::string_view e = exemplar_text;
    if (e.size() < 3 || e.substr(0, 3) != "# {") {
      return Problem(ExpositionProblem::kInvalidExemplar, "malformed exemplar " + Quote(e));
    }
    e.remove_prefix(2);
    size_t end = LabelBlockEnd(e, 0);
    if (end == std::string_view::npos) return Problem(ExpositionProblem::kInvalidExemplar, "exemplar label set does not end");
    std::vector<Label> ls;
    ParsedLabels pl = ParseLabelBlock(e.substr(0, end), false, &ls);
    if (!pl.error.empty()) return Problem(ExpositionProblem::kInvalidExemplar, "exemplar: " + pl.error);
    size_t runes = 0;
    for (const Label& l : ls) runes += Utf8Runes(l.name) + Utf8Runes(l.value);
    if (runes > kMaxExemplarRunes) {
      return Problem(ExpositionProblem::kInvalidExemplar,
                     "exemplar labels have " + std::to_string(runes) + " characters, over the limit of 128");
    }
    auto labels = Labels::FromUnsorted(std::move(ls));
    if (!labels.ok()) return Problem(ExpositionProblem::kInvalidExemplar, "exemplar: " + labels.status().message());
    e.remove_prefix(end);
    Exemplar ex{std::move(*labels), 0, sample.t};
    if (e.empty() || e[0] != ' ') return Problem(ExpositionProblem::kInvalidExemplar, "exemplar without a value");
    e.remove_prefix(1);
    size_t sp = e.find(' ');
    std::string_view ev = e.substr(0, sp);
    if (!ParseExpositionValue(ev, &ex.value)) return Problem(ExpositionProblem::kInvalidExemplar, "invalid exemplar value " + Quote(ev));
    if (sp != std::string_view::npos) {
      std::string_view et = e.substr(sp + 1);
      if (!ParseSecondsAsMillis(et, &ex.t)) {
        return Problem(ExpositionProblem::kInvalidExemplar, "invalid exemplar timestamp " + Quote(et));
      }
    }
    exemplars.push_back(std::move(ex));
  }

  // The same series as the line before: no labels to parse.
  if (last_series_open_ && series_text == last_series_text_) {
    TimeSeries& ts = batch_.series.back();
    ts.samples.push_back(sample);
    for (Exemplar& ex : exemplars) ts.exemplars.push_back(std::move(ex));
  } else {
    std::string_view suffix;
    if (!in_family_ || !InFamily(name, &suffix)) {
      if (om && in_family_ && family_.has_type && name == family_.name) {
        return Problem(ExpositionProblem::kFamilyOrder,
                       "sample " + Quote(name) + " of a " + std::string(MetricFamilyTypeName(family_.type)) +
                           " needs a suffix (" + (family_.type == MetricFamilyType::kInfo ? "_info" : "_total, _bucket, ...") + ")");
      }
      if (om) {
        // A sample of a family that ended earlier (interleaved families).
        for (std::string_view sfx : {"_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info"}) {
          if (name.size() > sfx.size() && name.substr(name.size() - sfx.size()) == sfx &&
              families_seen_.count(std::string(name.substr(0, name.size() - sfx.size()))) != 0) {
            return Problem(ExpositionProblem::kFamilyOrder,
                           "sample " + Quote(name) + " outside its metric family " +
                               Quote(name.substr(0, name.size() - sfx.size())));
          }
        }
      }
      TELKIT_RETURN_IF_ERROR(StartFamily(name));
      if (!in_family_) return OkStatus();  // refused (skip mode)
      suffix = {};
    }
    std::vector<Label> ls;
    ls.push_back({std::string(kMetricNameLabel), std::string(name)});
    if (series_end > name.size()) {
      ParsedLabels pl = ParseLabelBlock(series_text.substr(name.size()), !om, &ls);
      if (!pl.error.empty()) return Problem(pl.problem, pl.error + " in " + Quote(series_text));
    }
    auto labels = Labels::FromUnsorted(std::move(ls));
    if (!labels.ok()) {
      return Problem(ExpositionProblem::kDuplicateLabel, labels.status().message() + " in " + Quote(series_text));
    }
    LabelProblem lp = CheckSeriesLabels(*labels, options_.limits);
    if (lp != LabelProblem::kNone) {
      return Problem(FromLabelProblem(lp), std::string(LabelProblemName(lp)) + " in " + Quote(series_text));
    }
    MetricFamilyType type = family_.type;
    double unused;
    if ((type == MetricFamilyType::kHistogram || type == MetricFamilyType::kGaugeHistogram) && suffix == "_bucket" &&
        !ParseExpositionValue(labels->Get("le"), &unused)) {
      return Problem(ExpositionProblem::kMissingLabel, "histogram bucket " + Quote(series_text) + " without a numeric 'le' label");
    }
    if (type == MetricFamilyType::kSummary && suffix.empty() && !ParseExpositionValue(labels->Get("quantile"), &unused)) {
      return Problem(ExpositionProblem::kMissingLabel, "summary quantile " + Quote(series_text) + " without a numeric 'quantile' label");
    }
    if (options_.normalize_float_labels) {
      const char* label = type == MetricFamilyType::kHistogram ? "le"
                          : type == MetricFamilyType::kSummary ? "quantile"
                                                               : nullptr;
      double f;
      if (label != nullptr && ParseExpositionValue(labels->Get(label), &f)) {
        labels->Set(label, FormatOpenMetricsFloat(f));
      }
    }
    if (!family_.emitted) EmitFamilyMetadata();
    family_.has_samples = true;
    batch_.series.push_back(TimeSeries{std::move(*labels), {sample}, std::move(exemplars)});
    last_series_text_.assign(series_text);
    last_series_open_ = true;
  }
  ++batch_.num_samples;
  ++stats_.samples;
  if (!exemplar_text.empty()) ++stats_.exemplars;
  if (batch_.num_samples >= options_.batch_samples) return Flush();
  return OkStatus();
}

Status ParseExpositionFile(const std::string& path, const ExpositionOptions& options,
                           const ExpositionBatchHandler& handler, ExpositionStats* stats,
                           std::vector<ExpositionError>* errors) {
  UniqueFd owned;
  int fd = 0;
  if (path != "-") {
    owned.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!owned.valid()) return ErrnoError("open '" + path + "'");
    fd = owned.get();
  }
  ExpositionParser parser(options, handler);
  std::string buf(1 << 20, '\0');
  Status s;
  for (;;) {
    auto n = ReadSome(fd, buf.data(), buf.size());
    if (!n.ok()) {
      s = Status(n.status().code(), "read '" + path + "': " + n.status().message());
      break;
    }
    if (*n == 0) {
      s = parser.Finish();
      break;
    }
    s = parser.Feed(std::string_view(buf.data(), *n));
    if (!s.ok()) break;
  }
  if (stats) *stats = parser.stats();
  if (errors) *errors = parser.errors();
  if (!s.ok() && path != "-" && s.code() == StatusCode::kInvalidArgument) {
    return Status(s.code(), "'" + path + "' " + s.message());
  }
  return s;
}

}  // namespace telkit
