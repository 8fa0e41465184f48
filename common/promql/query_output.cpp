#include "common/promql/query_output.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <array>
#include <map>
#include <optional>

#include "common/promql/parser.h"

namespace telkit::promql {
namespace {

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::optional<double> ParseGoFloat(std::string_view s) {
  std::string str(s);
  if (str == "+Inf" || str == "Inf" || str == "inf" || str == "+inf") return INFINITY;
  if (str == "-Inf" || str == "-inf") return -INFINITY;
  if (str == "NaN" || str == "nan") return NAN;
  if (str.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(str.c_str(), &end);
  if (end == str.c_str() || *end != '\0') return std::nullopt;
  return v;
}

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

Status LoadExposition(std::string_view text, int64_t default_t_ms, MemoryStore& store) {
  bool openmetrics = false;
  {
    std::string_view t = TrimSpace(text);
    while (!t.empty() && t.back() == '\n') t = TrimSpace(t.substr(0, t.size() - 1));
    openmetrics = t.ends_with("# EOF");
  }
  size_t pos = 0;
  int lineno = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = TrimSpace(text.substr(pos, nl - pos));
    pos = nl + 1;
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    auto bad = [&](const std::string& why) {
      return InvalidArgumentError("line " + std::to_string(lineno) + ": " + why + ": " + std::string(line));
    };
    size_t i = 0;
    while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == ':')) ++i;
    std::vector<Label> labels;
    std::string name(line.substr(0, i));
    if (name.empty() || !IsValidMetricName(name)) return bad("bad metric name");
    labels.push_back({std::string(kMetricNameLabel), name});
    if (i < line.size() && line[i] == '{') {
      ++i;
      for (;;) {
        while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
        if (i >= line.size()) return bad("unterminated labels");
        if (line[i] == '}') {
          ++i;
          break;
        }
        size_t ns = i;
        while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_')) ++i;
        std::string lname(line.substr(ns, i - ns));
        if (lname.empty() || i >= line.size() || line[i] != '=') return bad("bad label");
        ++i;
        if (i >= line.size() || line[i] != '"') return bad("label value must be quoted");
        size_t vs = i++;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') ++i;
          ++i;
        }
        if (i >= line.size()) return bad("unterminated label value");
        ++i;
        Result<std::string> v = Unquote(line.substr(vs, i - vs));
        if (!v.ok()) return bad(v.status().message());
        labels.push_back({lname, *v});
      }
    }
    std::string_view rest = TrimSpace(line.substr(i));
    size_t sp = rest.find_first_of(" \t");
    std::optional<double> value = ParseGoFloat(rest.substr(0, sp));
    if (!value) return bad("bad value");
    int64_t t = default_t_ms;
    if (sp != std::string_view::npos) {
      std::string_view ts = TrimSpace(rest.substr(sp));
      size_t sp2 = ts.find_first_of(" \t");
      if (sp2 != std::string_view::npos) ts = ts.substr(0, sp2);  // OpenMetrics exemplars etc. follow
      std::optional<double> tv = ParseGoFloat(ts);
      if (!tv || !std::isfinite(*tv)) return bad("bad timestamp");
      t = openmetrics ? static_cast<int64_t>(std::llround(*tv * 1000)) : static_cast<int64_t>(*tv);
    }
    Result<Labels> ls = Labels::FromUnsorted(std::move(labels));
    if (!ls.ok()) return bad(ls.status().message());
    store.Append(*ls, t, *value);
  }
  return OkStatus();
}

Result<int64_t> ParseApiTime(std::string_view text) {
  std::string s(TrimSpace(text));
  if (std::optional<double> v = ParseGoFloat(s); v && std::isfinite(*v)) {
    if (std::fabs(*v) > 1e14) return InvalidArgumentError("timestamp '" + s + "' is out of range");
    return static_cast<int64_t>(std::llround(*v * 1000));
  }
  // RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  int y, mo, d, h, mi, sec, n = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n == 0 ||
      mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
    return InvalidArgumentError("cannot parse '" + s + "' to a valid timestamp");
  }
  size_t i = static_cast<size_t>(n);
  int64_t ms = 0;
  if (i < s.size() && s[i] == '.') {
    int64_t scale = 100;
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      ms += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
  }
  int64_t offset_s = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    int oh = std::atoi(s.substr(i + 1, 2).c_str()), om = std::atoi(s.substr(i + 4, 2).c_str());
    offset_s = (s[i] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return InvalidArgumentError("cannot parse '" + s + "' to a valid timestamp");
  }
  if (i != s.size()) return InvalidArgumentError("cannot parse '" + s + "' to a valid timestamp");
  int64_t secs = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 + mi * 60 +
                 sec - offset_s;
  return secs * 1000 + ms;
}

Result<int64_t> ParseApiDuration(std::string_view text) {
  std::string s(TrimSpace(text));
  int64_t ms = 0;
  if (std::optional<double> v = ParseGoFloat(s)) {
    if (!std::isfinite(*v) || std::fabs(*v) > 1e14) return InvalidArgumentError("cannot parse '" + s + "' to a valid duration");
    ms = static_cast<int64_t>(std::llround(*v * 1000));
  } else {
    Result<int64_t> d = ParseDuration(s);
    if (!d.ok()) return InvalidArgumentError("cannot parse '" + s + "' to a valid duration");
    ms = *d;
  }
  if (ms <= 0) return InvalidArgumentError("duration '" + s + "' must be positive");
  return ms;
}

std::string FormatApiTime(int64_t t_ms) {
  std::string out = t_ms < 0 ? "-" : "";
  uint64_t a = t_ms < 0 ? static_cast<uint64_t>(-(t_ms + 1)) + 1 : static_cast<uint64_t>(t_ms);
  out += std::to_string(a / 1000);
  if (uint64_t frac = a % 1000; frac != 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, ".%03u", static_cast<unsigned>(frac));
    std::string f = buf;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out;
}

std::string SeriesName(const Labels& labels) {
  std::string out(labels.MetricName());
  std::string inner;
  for (const Label& l : labels) {
    if (l.name == kMetricNameLabel) continue;
    if (!inner.empty()) inner += ", ";
    inner += l.name + "=\"" + EscapeLabelValue(l.value) + "\"";
  }
  if (!inner.empty() || out.empty()) out += "{" + inner + "}";
  return out;
}

std::string FormatTable(const QueryResult& r) {
  std::vector<std::array<std::string, 3>> rows;
  switch (r.type) {
    case ValueType::kString: return r.str + "\n";
    case ValueType::kScalar: rows.push_back({"", FormatApiTime(r.t), FormatValue(r.scalar)}); break;
    case ValueType::kVector:
      for (const Series& s : r.series) rows.push_back({SeriesName(s.labels), "", FormatValue(s.points.at(0).v)});
      break;
    case ValueType::kMatrix:
      for (const Series& s : r.series) {
        for (const Sample& p : s.points) rows.push_back({SeriesName(s.labels), FormatApiTime(p.t), FormatValue(p.v)});
      }
      break;
    case ValueType::kNone: return "";
  }
  if (rows.empty()) return "";
  bool series_col = r.type != ValueType::kScalar, time_col = r.type != ValueType::kVector;
  size_t w0 = 6, w1 = 9;
  for (const auto& row : rows) {
    w0 = std::max(w0, row[0].size());
    w1 = std::max(w1, row[1].size());
  }
  std::string out;
  auto line = [&](const std::string& a, const std::string& b, const std::string& c) {
    if (series_col) out += a + std::string(w0 - a.size() + 2, ' ');
    if (time_col) out += b + std::string(w1 - b.size() + 2, ' ');
    out += c + "\n";
  };
  line("SERIES", "TIMESTAMP", "VALUE");
  for (const auto& row : rows) line(row[0], row[1], row[2]);
  return out;
}

namespace {

nlohmann::ordered_json ApiTime(int64_t t_ms) {
  if (t_ms % 1000 == 0) return t_ms / 1000;
  return static_cast<double>(t_ms) / 1000.0;
}

nlohmann::ordered_json Metric(const Labels& labels) {
  nlohmann::ordered_json m = nlohmann::ordered_json::object();
  for (const Label& l : labels) m[l.name] = l.value;
  return m;
}

}  // namespace

std::string FormatApiJson(const QueryResult& r) {
  nlohmann::ordered_json data;
  data["resultType"] = std::string(ValueTypeApiName(r.type));
  nlohmann::ordered_json result = nlohmann::ordered_json::array();
  switch (r.type) {
    case ValueType::kScalar: result = nlohmann::ordered_json::array({ApiTime(r.t), FormatValue(r.scalar)}); break;
    case ValueType::kString: result = nlohmann::ordered_json::array({ApiTime(r.t), r.str}); break;
    case ValueType::kVector:
      for (const Series& s : r.series) {
        result.push_back({{"metric", Metric(s.labels)},
                          {"value", nlohmann::ordered_json::array({ApiTime(s.points.at(0).t), FormatValue(s.points.at(0).v)})}});
      }
      break;
    case ValueType::kMatrix:
      for (const Series& s : r.series) {
        nlohmann::ordered_json values = nlohmann::ordered_json::array();
        for (const Sample& p : s.points) values.push_back(nlohmann::ordered_json::array({ApiTime(p.t), FormatValue(p.v)}));
        result.push_back({{"metric", Metric(s.labels)}, {"values", std::move(values)}});
      }
      break;
    case ValueType::kNone: break;
  }
  data["result"] = std::move(result);
  nlohmann::ordered_json body;
  body["status"] = "success";
  body["data"] = std::move(data);
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string FormatApiError(const Status& status) {
  std::string type = "internal";
  switch (status.code()) {
    case StatusCode::kInvalidArgument: type = "bad_data"; break;
    case StatusCode::kDeadlineExceeded: type = "timeout"; break;
    case StatusCode::kResourceExhausted: type = "execution"; break;
    case StatusCode::kCancelled: type = "canceled"; break;
    default: break;
  }
  nlohmann::ordered_json body;
  body["status"] = "error";
  body["errorType"] = type;
  body["error"] = status.message();
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace telkit::promql

#include <cerrno>
#include <fstream>
#include <sstream>

#include "common/promql/promql_test_runner.h"

namespace telkit::promql {

namespace {

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("open '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return ErrnoError("read '" + path + "'");
  return ss.str();
}

}  // namespace

Result<std::string> RunQuery(const QueryRequest& req, int64_t now_ms) {
  if (req.format_query) {
    TELKIT_ASSIGN_OR_RETURN(ExprPtr e, ParseExpr(req.expr, req.engine.parse));
    return e->ToString() + "\n";
  }
  if (!req.data_dir.empty()) {
    return UnimplementedError("reading the metrics store in '" + req.data_dir +
                              "' is not connected yet; load data with --load FILE");
  }
  bool range = !req.start.empty();
  int64_t t = now_ms, start = 0, end = 0, step = 0;
  if (range) {
    TELKIT_ASSIGN_OR_RETURN(start, ParseApiTime(req.start));
    TELKIT_ASSIGN_OR_RETURN(end, req.end.empty() ? Result<int64_t>(now_ms) : ParseApiTime(req.end));
    TELKIT_ASSIGN_OR_RETURN(step, ParseApiDuration(req.step));
  } else if (!req.time.empty()) {
    TELKIT_ASSIGN_OR_RETURN(t, ParseApiTime(req.time));
  }
  MemoryStore store;
  for (const std::string& f : req.load_files) {
    TELKIT_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(f));
    Status s = f.ends_with(".test") ? LoadTestScriptData(text, store)
                                    : LoadExposition(text, range ? end : t, store);
    if (!s.ok()) return s.WithContext("load '" + f + "'");
  }
  Engine engine(req.engine);
  Result<QueryResult> r = range ? engine.RangeQuery(store, req.expr, start, end, step)
                                : engine.InstantQuery(store, req.expr, t);
  if (!r.ok()) return r.status();
  return req.json ? FormatApiJson(*r) + "\n" : FormatTable(*r);
}

}  // namespace telkit::promql
