#include "common/api/prometheus_api.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "common/api/json_writer.h"
#include "common/model/labels.h"
#include "common/promql/parser.h"

namespace telkit::api {
namespace {

// Prometheus' minTime / maxTime (web/api/v1/api.go): the defaults of start
// and end where they are optional, in milliseconds, and their RFC 3339 forms,
// which Go clients send for "unbounded".
constexpr int64_t kMinTimeMs = -9223309901258974000LL;
constexpr int64_t kMaxTimeMs = 9223309901258974999LL;
constexpr std::string_view kMinTimeFormatted = "-292273086-05-16T16:47:06Z";
constexpr std::string_view kMaxTimeFormatted = "292277025-08-18T07:12:54.999999999Z";

// Prometheus' bound on points per series of a range query.
constexpr int64_t kMaxPointsPerSeries = 11000;

constexpr std::string_view kTruncatedWarning = "results truncated due to limit";

enum class ErrorType { kBadData, kExecution, kTimeout, kCanceled, kInternal, kUnavailable, kNotFound };

std::string_view ErrorTypeName(ErrorType t) {
  switch (t) {
    case ErrorType::kBadData: return "bad_data";
    case ErrorType::kExecution: return "execution";
    case ErrorType::kTimeout: return "timeout";
    case ErrorType::kCanceled: return "canceled";
    case ErrorType::kInternal: return "internal";
    case ErrorType::kUnavailable: return "unavailable";
    case ErrorType::kNotFound: return "not_found";
  }
  return "internal";
}

int ErrorHttpStatus(ErrorType t) {
  switch (t) {
    case ErrorType::kBadData: return 400;
    case ErrorType::kExecution: return 422;
    case ErrorType::kTimeout:
    case ErrorType::kCanceled:
    case ErrorType::kUnavailable: return 503;
    case ErrorType::kNotFound: return 404;
    case ErrorType::kInternal: return 500;
  }
  return 500;
}

ApiResponse Error(ErrorType type, std::string_view message) {
  JsonWriter w;
  w.Raw(R"({"status":"error","errorType":")");
  w.Raw(ErrorTypeName(type));
  w.Raw(R"(","error":)");
  w.String(message);
  w.Char('}');
  return ApiResponse{ErrorHttpStatus(type), "application/json", w.Take()};
}

ApiResponse InvalidParam(std::string_view param, std::string_view message) {
  return Error(ErrorType::kBadData, "invalid parameter \"" + std::string(param) + "\": " + std::string(message));
}

// Opening a querier failed: the storage is not there (503) or broken (500).
ApiResponse StorageError(const Status& s) {
  return Error(s.code() == StatusCode::kUnavailable ? ErrorType::kUnavailable : ErrorType::kInternal, s.message());
}

// An evaluation failed (Prometheus' returnAPIError).
ApiResponse EngineError(const Status& s) {
  switch (s.code()) {
    case StatusCode::kDeadlineExceeded: return Error(ErrorType::kTimeout, s.message());
    case StatusCode::kCancelled: return Error(ErrorType::kCanceled, s.message());
    case StatusCode::kUnavailable: return Error(ErrorType::kUnavailable, s.message());
    case StatusCode::kInvalidArgument:
    case StatusCode::kResourceExhausted: return Error(ErrorType::kExecution, s.message());
    default: return Error(ErrorType::kInternal, s.message());
  }
}

// {"status":"success","data":DATA[,"warnings":[...]]}
class SuccessWriter {
 public:
  explicit SuccessWriter(size_t reserve = 0) {
    w_.out().reserve(reserve + 64);
    w_.Raw(R"({"status":"success","data":)");
  }
  JsonWriter& w() { return w_; }
  ApiResponse Finish(const std::vector<std::string>& warnings = {}) {
    if (!warnings.empty()) {
      w_.Raw(R"(,"warnings":[)");
      for (size_t i = 0; i < warnings.size(); ++i) {
        if (i > 0) w_.Char(',');
        w_.String(warnings[i]);
      }
      w_.Char(']');
    }
    w_.Char('}');
    return ApiResponse{200, "application/json", w_.Take()};
  }

 private:
  JsonWriter w_;
};

ApiResponse TooLarge(size_t limit);

ApiResponse StringList(const std::vector<std::string>& values, const std::vector<std::string>& warnings,
                       size_t max_bytes) {
  size_t bytes = 0;
  for (const auto& v : values) bytes += v.size() + 3;
  if (bytes > max_bytes) return TooLarge(max_bytes);
  SuccessWriter s(bytes);
  s.w().Char('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) s.w().Char(',');
    s.w().String(values[i]);
  }
  s.w().Char(']');
  if (s.w().size() > max_bytes) return TooLarge(max_bytes);  // escaping grew it
  return s.Finish(warnings);
}

ApiResponse TooLarge(size_t limit) {
  return Error(ErrorType::kExecution,
               "response exceeds the limit of " + std::to_string(limit) + " bytes; narrow the query or the time range");
}

bool ParseGoFloat(std::string_view text, double* out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  std::string s(text);
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return false;
  // Go's ParseFloat rejects out-of-range values (ERANGE to ±Inf) but accepts
  // underflow to 0.
  if (errno == ERANGE && std::isinf(v)) return false;
  *out = v;
  return true;
}

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// RFC 3339 as Go's time.RFC3339Nano parses it: YYYY-MM-DDTHH:MM:SS[.F+](Z|±HH:MM).
bool ParseRfc3339(std::string_view s, int64_t* ms) {
  auto digits = [&](size_t at, size_t n, int* v) {
    if (at + n > s.size()) return false;
    int r = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      r = r * 10 + (s[i] - '0');
    }
    *v = r;
    return true;
  };
  int year, mon, day, hour, min, sec;
  if (s.size() < 20 || !digits(0, 4, &year) || s[4] != '-' || !digits(5, 2, &mon) || s[7] != '-' ||
      !digits(8, 2, &day) || s[10] != 'T' || !digits(11, 2, &hour) || s[13] != ':' || !digits(14, 2, &min) ||
      s[16] != ':' || !digits(17, 2, &sec)) {
    return false;
  }
  static constexpr int kDaysInMonth[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (mon < 1 || mon > 12 || day < 1 || day > kDaysInMonth[mon - 1] || (mon == 2 && day == 29 && !leap) ||
      hour > 23 || min > 59 || sec > 59) {
    return false;
  }
  size_t i = 19;
  int64_t frac_ms = 0;
  if (i < s.size() && s[i] == '.') {
    size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start || i - start > 9) return false;
    // Milliseconds, truncated as timestamp.FromTime does.
    for (size_t k = start; k < start + 3; ++k) frac_ms = frac_ms * 10 + (k < i ? s[k] - '0' : 0);
  }
  int64_t offset_s = 0;
  if (i < s.size() && s[i] == 'Z') {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!digits(i + 1, 2, &oh) || i + 3 >= s.size() || s[i + 3] != ':' || !digits(i + 4, 2, &om) || oh > 23 ||
        om > 59) {
      return false;
    }
    offset_s = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return false;
  }
  if (i != s.size()) return false;
  int64_t secs = DaysFromCivil(year, static_cast<unsigned>(mon), static_cast<unsigned>(day)) * 86400 + hour * 3600 +
                 min * 60 + sec - offset_s;
  *ms = secs * 1000 + frac_ms;
  return true;
}

bool ValidLabelNameParam(std::string_view name) { return IsValidLabelName(name); }

}  // namespace

Result<int64_t> ParseApiTime(std::string_view text) {
  double f;
  if (ParseGoFloat(text, &f)) {
    // Seconds and milliseconds apart, as Prometheus' parseTime (math.Modf,
    // fraction rounded to milliseconds).
    if (std::isfinite(f) && std::fabs(f) < 9.2e15) {
      double whole;
      double frac = std::modf(f, &whole);
      return static_cast<int64_t>(whole) * 1000 + static_cast<int64_t>(std::round(frac * 1000));
    }
  } else {
    int64_t ms;
    if (ParseRfc3339(text, &ms)) return ms;
    if (text == kMinTimeFormatted) return kMinTimeMs;
    if (text == kMaxTimeFormatted) return kMaxTimeMs;
  }
  return InvalidArgumentError("cannot parse \"" + std::string(text) + "\" to a valid timestamp");
}

Result<int64_t> ParseApiDuration(std::string_view text) {
  double f;
  if (ParseGoFloat(text, &f)) {
    double ns = f * 1e9;
    if (!(ns < 9.223372036854775807e18 && ns > -9.223372036854775808e18)) {
      return InvalidArgumentError("cannot parse \"" + std::string(text) + "\" to a valid duration. It overflows int64");
    }
    return static_cast<int64_t>(ns) / 1000000;
  }
  auto d = promql::ParseDuration(text);
  if (d.ok()) return *d;
  return InvalidArgumentError("cannot parse \"" + std::string(text) + "\" to a valid duration");
}

PrometheusApiBackend PrometheusApiBackend::ForQuerier(std::shared_ptr<Querier> querier) {
  PrometheusApiBackend b;
  b.querier = [querier]() -> Result<std::shared_ptr<Querier>> { return querier; };
  return b;
}

struct PrometheusApi::Params {
  const std::vector<std::pair<std::string, std::string>>* list;
  // The first value of `name`, or "" (Go's FormValue).
  std::string_view Get(std::string_view name) const {
    for (const auto& [k, v] : *list) {
      if (k == name) return v;
    }
    return {};
  }
  bool Has(std::string_view name) const {
    for (const auto& [k, v] : *list) {
      if (k == name) return true;
    }
    return false;
  }
  std::vector<std::string_view> All(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& [k, v] : *list) {
      if (k == name) out.push_back(v);
    }
    return out;
  }
};

namespace {

// A time parameter with a default when absent or empty (parseTimeParam).
Result<int64_t> TimeParam(std::string_view value, std::string_view name, int64_t def) {
  if (value.empty()) return def;
  auto t = ParseApiTime(value);
  if (!t.ok()) {
    return InvalidArgumentError("Invalid time value for '" + std::string(name) + "': " + t.status().message());
  }
  return t;
}

// `limit`: absent or 0 = no limit (Prometheus 2.50+'s parseLimitParam).
Result<size_t> LimitParam(std::string_view value) {
  if (value.empty()) return size_t{0};
  int64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size()) {
    return InvalidArgumentError("cannot parse \"" + std::string(value) + "\" to a valid limit");
  }
  if (v < 0) return InvalidArgumentError("limit must be non-negative");
  return static_cast<size_t>(v);
}

// Every match[] as a matcher set. The error is the parser's (the caller
// decides on the "invalid parameter" wrapping, which Prometheus applies
// to /series only).
Result<std::vector<std::vector<LabelMatcher>>> MatcherSets(const std::vector<std::string_view>& texts) {
  std::vector<std::vector<LabelMatcher>> sets;
  for (std::string_view t : texts) {
    TELKIT_ASSIGN_OR_RETURN(auto m, promql::ParseMetricSelector(t));
    sets.push_back(std::move(m));
  }
  return sets;
}

}  // namespace

PrometheusApi::PrometheusApi(PrometheusApiOptions options, PrometheusApiBackend backend)
    : options_(std::move(options)), backend_(std::move(backend)) {
  start_time_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  // The API checks Prometheus' bound (more than 11,000 points is an error),
  // the engine must not be stricter.
  options_.engine.max_steps = std::max<int64_t>(options_.engine.max_steps, kMaxPointsPerSeries + 1);
}

int64_t PrometheusApi::Now() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

ApiResponse PrometheusApi::Handle(const ApiRequest& request) const {
  Params p{&request.params};
  std::string_view path = request.path;
  bool get = request.method == "GET" || request.method == "HEAD";
  bool post = request.method == "POST";
  auto not_allowed = [] { return ApiResponse{405, "text/plain; charset=utf-8", "Method Not Allowed\n"}; };

  if (path == "/-/healthy") {
    if (!get) return not_allowed();
    return ApiResponse{200, "text/plain; charset=utf-8", "Prometheus Server is Healthy.\n"};
  }
  if (path == "/-/ready") {
    if (!get) return not_allowed();
    if (backend_.ready && !backend_.ready()) return ApiResponse{503, "text/plain; charset=utf-8", "Service Unavailable"};
    return ApiResponse{200, "text/plain; charset=utf-8", "Prometheus Server is Ready.\n"};
  }
  constexpr std::string_view kPrefix = "/api/v1";
  if (!path.starts_with(kPrefix)) return ApiResponse{404, "text/plain; charset=utf-8", "404 page not found\n"};
  std::string_view ep = path.substr(kPrefix.size());
  if (request.method == "OPTIONS") return ApiResponse{204, "", ""};

  // Endpoints that take GET and POST.
  struct Route {
    std::string_view path;
    ApiResponse (PrometheusApi::*fn)(const Params&) const;
    bool post;
  };
  static constexpr Route kRoutes[] = {
      {"/query", &PrometheusApi::Query, true},
      {"/query_range", &PrometheusApi::QueryRange, true},
      {"/query_exemplars", &PrometheusApi::QueryExemplars, true},
      {"/series", &PrometheusApi::Series, true},
      {"/labels", &PrometheusApi::LabelNames, true},
      {"/metadata", &PrometheusApi::Metadata, false},
      {"/format_query", &PrometheusApi::FormatQuery, true},
      {"/parse_query", &PrometheusApi::ParseQuery, true},
  };
  for (const Route& r : kRoutes) {
    if (ep == r.path) {
      if (!(get || (post && r.post))) return not_allowed();
      return (this->*r.fn)(p);
    }
  }
  if (ep.starts_with("/label/") && ep.ends_with("/values") && ep.size() > 14) {
    if (!get) return not_allowed();
    return LabelValues(p, ep.substr(7, ep.size() - 14));
  }
  if (!get) {
    if (ep.starts_with("/status/") || ep == "/targets" || ep == "/rules" || ep == "/alerts") return not_allowed();
    return ApiResponse{404, "text/plain; charset=utf-8", "404 page not found\n"};
  }
  if (ep == "/status/buildinfo") return BuildInfo();
  if (ep == "/status/runtimeinfo") return RuntimeInfo();
  if (ep == "/status/flags") return Flags();
  if (ep == "/status/config") return Config();
  if (ep == "/status/tsdb") return TsdbStatusResponse();
  if (ep == "/targets") {
    std::string_view state = p.Get("state");
    (void)state;
    SuccessWriter s;
    s.w().Raw(R"({"activeTargets":[],"droppedTargets":[]})");
    return s.Finish();
  }
  if (ep == "/rules") {
    std::string type(p.Get("type"));
    std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!type.empty() && type != "alert" && type != "record") {
      return InvalidParam("type", "not supported value \"" + type + "\"");
    }
    SuccessWriter s;
    if (backend_.rules) {
      Result<std::string> data = backend_.rules(type);
      if (!data.ok()) return Error(ErrorType::kInternal, data.status().message());
      s.w().Raw(*data);
    } else {
      s.w().Raw(R"({"groups":[]})");
    }
    return s.Finish();
  }
  if (ep == "/alerts") {
    SuccessWriter s;
    if (backend_.alerts) {
      Result<std::string> data = backend_.alerts();
      if (!data.ok()) return Error(ErrorType::kInternal, data.status().message());
      s.w().Raw(*data);
    } else {
      s.w().Raw(R"({"alerts":[]})");
    }
    return s.Finish();
  }
  return ApiResponse{404, "text/plain; charset=utf-8", "404 page not found\n"};
}

namespace {

// Writes a query result as Prometheus' queryData. Returns false when the
// body passed `max_bytes`.
bool WriteQueryData(JsonWriter& w, const promql::QueryResult& r, size_t max_bytes) {
  w.Raw(R"({"resultType":")");
  w.Raw(promql::ValueTypeApiName(r.type));
  w.Raw(R"(","result":)");
  switch (r.type) {
    case promql::ValueType::kScalar:
      w.Point(r.t, r.scalar);
      break;
    case promql::ValueType::kString:
      w.Char('[');
      w.Timestamp(r.t);
      w.Char(',');
      w.String(r.str);
      w.Char(']');
      break;
    case promql::ValueType::kVector:
      w.Char('[');
      for (size_t i = 0, n = 0; i < r.series.size(); ++i) {
        const auto& s = r.series[i];
        if (s.points.empty()) continue;
        if (n++ > 0) w.Char(',');
        w.Raw(R"({"metric":)");
        w.LabelsObject(s.labels);
        w.Raw(R"(,"value":)");
        w.Point(s.points.front().t, s.points.front().v);
        w.Char('}');
        if (w.size() > max_bytes) return false;
      }
      w.Char(']');
      break;
    case promql::ValueType::kMatrix:
    case promql::ValueType::kNone:
      w.Char('[');
      for (size_t i = 0; i < r.series.size(); ++i) {
        const auto& s = r.series[i];
        if (i > 0) w.Char(',');
        w.Raw(R"({"metric":)");
        w.LabelsObject(s.labels);
        w.Raw(R"(,"values":[)");
        for (size_t k = 0; k < s.points.size(); ++k) {
          if (k > 0) w.Char(',');
          w.Point(s.points[k].t, s.points[k].v);
        }
        w.Raw("]}");
        if (w.size() > max_bytes) return false;
      }
      w.Char(']');
      break;
  }
  w.Char('}');
  return w.size() <= max_bytes;
}

// A size estimate for reserving the output buffer.
size_t EstimateBytes(const promql::QueryResult& r) {
  size_t n = 64;
  for (const auto& s : r.series) {
    n += 40 + s.points.size() * 24;
    for (const auto& l : s.labels) n += l.name.size() + l.value.size() + 6;
  }
  return n;
}

}  // namespace

Result<std::string> FormatQueryResponse(const promql::QueryResult& result, const std::vector<std::string>& warnings,
                                        size_t max_bytes) {
  SuccessWriter s(std::min(EstimateBytes(result), max_bytes));
  if (!WriteQueryData(s.w(), result, max_bytes)) {
    return ResourceExhaustedError("response exceeds the limit of " + std::to_string(max_bytes) + " bytes");
  }
  return std::move(s.Finish(warnings).body);
}

ApiResponse PrometheusApi::Query(const Params& p) const {
  auto t = TimeParam(p.Get("time"), "time", Now());
  if (!t.ok()) return InvalidParam("time", t.status().message());
  promql::EngineOptions eo = options_.engine;
  if (std::string_view to = p.Get("timeout"); !to.empty()) {
    auto d = ParseApiDuration(to);
    if (!d.ok()) return InvalidParam("timeout", d.status().message());
    eo.timeout = std::min(eo.timeout, std::chrono::milliseconds(std::max<int64_t>(*d, 0)));
  }
  auto limit = LimitParam(p.Get("limit"));
  if (!limit.ok()) return InvalidParam("limit", limit.status().message());
  auto expr = promql::ParseExpr(p.Get("query"), eo.parse);
  if (!expr.ok()) return InvalidParam("query", expr.status().message());
  auto querier = backend_.querier();
  if (!querier.ok()) return StorageError(querier.status());
  promql::Engine engine(eo);
  auto r = engine.Evaluate(**querier, **expr, *t, *t, 1, true);
  if (!r.ok()) return EngineError(r.status());
  std::vector<std::string> warnings = r->warnings;
  if (*limit > 0 && r->series.size() > *limit) {
    r->series.resize(*limit);
    warnings.emplace_back(kTruncatedWarning);
  }
  SuccessWriter s(std::min(EstimateBytes(*r), options_.max_response_bytes));
  if (!WriteQueryData(s.w(), *r, options_.max_response_bytes)) return TooLarge(options_.max_response_bytes);
  return s.Finish(warnings);
}

ApiResponse PrometheusApi::QueryRange(const Params& p) const {
  auto start = ParseApiTime(p.Get("start"));
  if (!start.ok()) return InvalidParam("start", start.status().message());
  auto end = ParseApiTime(p.Get("end"));
  if (!end.ok()) return InvalidParam("end", end.status().message());
  if (*end < *start) return InvalidParam("end", "end timestamp must not be before start time");
  auto step = ParseApiDuration(p.Get("step"));
  if (!step.ok()) return InvalidParam("step", step.status().message());
  if (*step <= 0) {
    return InvalidParam("step", "zero or negative query resolution step widths are not accepted. Try a positive integer");
  }
  // For safety, limit the number of returned points per timeseries (as
  // Prometheus: 60s resolution for a week, 1h for a year).
  if ((*end - *start) / *step > kMaxPointsPerSeries) {
    return Error(ErrorType::kBadData,
                 "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution "
                 "(?step=XX)");
  }
  promql::EngineOptions eo = options_.engine;
  if (std::string_view to = p.Get("timeout"); !to.empty()) {
    auto d = ParseApiDuration(to);
    if (!d.ok()) return InvalidParam("timeout", d.status().message());
    eo.timeout = std::min(eo.timeout, std::chrono::milliseconds(std::max<int64_t>(*d, 0)));
  }
  auto limit = LimitParam(p.Get("limit"));
  if (!limit.ok()) return InvalidParam("limit", limit.status().message());
  eo.parse.query_step_ms = *step;  // step() and range() in duration expressions
  eo.parse.query_range_ms = *end - *start;
  auto expr = promql::ParseExpr(p.Get("query"), eo.parse);
  if (!expr.ok()) return InvalidParam("query", expr.status().message());
  promql::ValueType type = (*expr)->Type();
  if (type != promql::ValueType::kScalar && type != promql::ValueType::kVector) {
    return InvalidParam("query", "invalid expression type \"" + std::string(promql::ValueTypeName(type)) +
                                     "\" for range query, must be Scalar or instant Vector");
  }
  auto querier = backend_.querier();
  if (!querier.ok()) return StorageError(querier.status());
  promql::Engine engine(eo);
  auto r = engine.Evaluate(**querier, **expr, *start, *end, *step, false);
  if (!r.ok()) return EngineError(r.status());
  std::vector<std::string> warnings = r->warnings;
  if (*limit > 0 && r->series.size() > *limit) {
    r->series.resize(*limit);
    warnings.emplace_back(kTruncatedWarning);
  }
  SuccessWriter s(std::min(EstimateBytes(*r), options_.max_response_bytes));
  if (!WriteQueryData(s.w(), *r, options_.max_response_bytes)) return TooLarge(options_.max_response_bytes);
  return s.Finish(warnings);
}

ApiResponse PrometheusApi::Series(const Params& p) const {
  auto texts = p.All("match[]");
  if (texts.empty()) return Error(ErrorType::kBadData, "no match[] parameter provided");
  auto start = TimeParam(p.Get("start"), "start", kMinTimeMs);
  if (!start.ok()) return InvalidParam("start", start.status().message());
  auto end = TimeParam(p.Get("end"), "end", kMaxTimeMs);
  if (!end.ok()) return InvalidParam("end", end.status().message());
  auto limit = LimitParam(p.Get("limit"));
  if (!limit.ok()) return InvalidParam("limit", limit.status().message());
  auto sets = MatcherSets(texts);
  if (!sets.ok()) return InvalidParam("match[]", sets.status().message());
  auto querier = backend_.querier();
  if (!querier.ok()) return StorageError(querier.status());
  std::set<Labels> all;
  for (const auto& set : *sets) {
    auto got = (*querier)->Select(*start, *end, set);
    if (!got.ok()) return Error(ErrorType::kExecution, got.status().message());
    for (auto& s : *got) all.insert(std::move(s.labels));
  }
  std::vector<std::string> warnings;
  SuccessWriter s(std::min(all.size() * 64, options_.max_response_bytes));
  s.w().Char('[');
  size_t n = 0;
  for (const Labels& l : all) {
    if (*limit > 0 && n == *limit) {
      warnings.emplace_back(kTruncatedWarning);
      break;
    }
    if (n++ > 0) s.w().Char(',');
    s.w().LabelsObject(l);
    if (s.w().size() > options_.max_response_bytes) return TooLarge(options_.max_response_bytes);
  }
  s.w().Char(']');
  return s.Finish(warnings);
}

ApiResponse PrometheusApi::LabelNames(const Params& p) const {
  return UnionOverMatchSets(p, [](Querier& q, int64_t start, int64_t end, std::span<const LabelMatcher> set) {
    return q.LabelNames(start, end, set);
  });
}

ApiResponse PrometheusApi::LabelValues(const Params& p, std::string_view name) const {
  if (!ValidLabelNameParam(name)) {
    return Error(ErrorType::kBadData, "invalid label name: \"" + std::string(name) + "\"");
  }
  return UnionOverMatchSets(p, [name](Querier& q, int64_t start, int64_t end, std::span<const LabelMatcher> set) {
    return q.LabelValues(name, start, end, set);
  });
}

ApiResponse PrometheusApi::UnionOverMatchSets(const Params& p, const StringListFetch& fetch) const {
  auto start = TimeParam(p.Get("start"), "start", kMinTimeMs);
  if (!start.ok()) return InvalidParam("start", start.status().message());
  auto end = TimeParam(p.Get("end"), "end", kMaxTimeMs);
  if (!end.ok()) return InvalidParam("end", end.status().message());
  auto limit = LimitParam(p.Get("limit"));
  if (!limit.ok()) return InvalidParam("limit", limit.status().message());
  auto sets = MatcherSets(p.All("match[]"));
  if (!sets.ok()) return Error(ErrorType::kBadData, sets.status().message());
  auto querier = backend_.querier();
  if (!querier.ok()) return StorageError(querier.status());
  std::set<std::string> strings;
  if (sets->empty()) sets->emplace_back();
  for (const auto& set : *sets) {
    auto got = fetch(**querier, *start, *end, set);
    if (!got.ok()) return Error(ErrorType::kExecution, got.status().message());
    strings.insert(got->begin(), got->end());
  }
  std::vector<std::string> out(strings.begin(), strings.end());
  std::vector<std::string> warnings;
  if (*limit > 0 && out.size() > *limit) {
    out.resize(*limit);
    warnings.emplace_back(kTruncatedWarning);
  }
  return StringList(out, warnings, options_.max_response_bytes);
}

ApiResponse PrometheusApi::Metadata(const Params& p) const {
  auto number = [](std::string_view s, int64_t* v) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
    return ec == std::errc() && end == s.data() + s.size();
  };
  int64_t limit = -1;
  if (std::string_view s = p.Get("limit"); !s.empty() && !number(s, &limit)) {
    return Error(ErrorType::kBadData, "limit must be a number");
  }
  int64_t limit_per_metric = -1;
  if (std::string_view s = p.Get("limit_per_metric"); !s.empty() && !number(s, &limit_per_metric)) {
    return Error(ErrorType::kBadData, "limit_per_metric must be a number");
  }
  std::map<std::string, std::vector<MetricMetadata>> families;  // Go sorts map keys
  if (backend_.metadata) {
    auto got = backend_.metadata(p.Get("metric"));
    if (!got.ok()) return StorageError(got.status());
    for (auto& m : *got) {
      auto& list = families[m.family];
      if (std::find(list.begin(), list.end(), m) == list.end()) list.push_back(std::move(m));
    }
  }
  SuccessWriter s;
  JsonWriter& w = s.w();
  w.Char('{');
  int64_t n = 0;
  for (const auto& [family, list] : families) {
    if (limit >= 0 && n >= limit) break;
    if (n++ > 0) w.Char(',');
    w.String(family);
    w.Raw(":[");
    for (size_t i = 0; i < list.size(); ++i) {
      if (limit_per_metric > 0 && static_cast<int64_t>(i) >= limit_per_metric) break;
      if (i > 0) w.Char(',');
      w.Raw(R"({"type":)");
      w.String(MetricFamilyTypeName(list[i].type));
      w.Raw(R"(,"help":)");
      w.String(list[i].help);
      w.Raw(R"(,"unit":)");
      w.String(list[i].unit);
      w.Char('}');
    }
    w.Char(']');
  }
  w.Char('}');
  return s.Finish();
}

ApiResponse PrometheusApi::QueryExemplars(const Params& p) const {
  auto start = TimeParam(p.Get("start"), "start", kMinTimeMs);
  if (!start.ok()) return InvalidParam("start", start.status().message());
  auto end = TimeParam(p.Get("end"), "end", kMaxTimeMs);
  if (!end.ok()) return InvalidParam("end", end.status().message());
  if (*end < *start) return Error(ErrorType::kBadData, "end timestamp must not be before start timestamp");
  auto expr = promql::ParseExpr(p.Get("query"), options_.engine.parse);
  if (!expr.ok()) return Error(ErrorType::kBadData, expr.status().message());
  // As Prometheus: the exemplars of the series of every selector in the
  // query, one entry a series (selectors that overlap are merged).
  std::vector<const std::vector<LabelMatcher>*> selectors;
  std::function<void(const promql::Expr*)> walk = [&](const promql::Expr* e) {
    if (e == nullptr) return;
    switch (e->kind) {
      case promql::NodeKind::kVectorSelector:
        selectors.push_back(&static_cast<const promql::VectorSelector*>(e)->matchers);
        return;
      case promql::NodeKind::kMatrixSelector:
        walk(static_cast<const promql::MatrixSelector*>(e)->vs.get());
        return;
      case promql::NodeKind::kSubquery: walk(static_cast<const promql::SubqueryExpr*>(e)->expr.get()); return;
      case promql::NodeKind::kParen: walk(static_cast<const promql::ParenExpr*>(e)->expr.get()); return;
      case promql::NodeKind::kUnary: walk(static_cast<const promql::UnaryExpr*>(e)->expr.get()); return;
      case promql::NodeKind::kBinary: {
        auto* b = static_cast<const promql::BinaryExpr*>(e);
        walk(b->lhs.get());
        walk(b->rhs.get());
        return;
      }
      case promql::NodeKind::kAggregate: {
        auto* a = static_cast<const promql::AggregateExpr*>(e);
        walk(a->expr.get());
        walk(a->param.get());
        return;
      }
      case promql::NodeKind::kCall:
        for (const auto& arg : static_cast<const promql::Call*>(e)->args) walk(arg.get());
        return;
      default: return;
    }
  };
  walk(expr->get());
  std::map<Labels, std::vector<Exemplar>> by_series;
  if (backend_.exemplars) {
    for (const std::vector<LabelMatcher>* m : selectors) {
      auto got = backend_.exemplars(*start, *end, *m);
      if (!got.ok()) return StorageError(got.status());
      for (SeriesExemplarList& s : *got) {
        std::vector<Exemplar>& to = by_series[s.labels];
        if (to.empty()) to = std::move(s.exemplars);  // the same series from another selector: the same exemplars
      }
    }
  }
  SuccessWriter s;
  JsonWriter& w = s.w();
  w.Char('[');
  bool first = true;
  for (const auto& [labels, exemplars] : by_series) {
    if (exemplars.empty()) continue;
    if (!first) w.Char(',');
    first = false;
    w.Raw("{\"seriesLabels\":");
    w.LabelsObject(labels);
    w.Raw(",\"exemplars\":[");
    for (size_t i = 0; i < exemplars.size(); ++i) {
      if (i > 0) w.Char(',');
      w.Raw("{\"labels\":");
      w.LabelsObject(exemplars[i].labels);
      w.Raw(",\"value\":");
      w.SampleValue(exemplars[i].value);
      w.Raw(",\"timestamp\":");
      w.Timestamp(exemplars[i].t);
      w.Char('}');
    }
    w.Raw("]}");
    if (w.size() > options_.max_response_bytes) return TooLarge(options_.max_response_bytes);
  }
  w.Char(']');
  return s.Finish();
}

ApiResponse PrometheusApi::FormatQuery(const Params& p) const {
  auto expr = promql::ParseExpr(p.Get("query"), options_.engine.parse);
  if (!expr.ok()) return InvalidParam("query", expr.status().message());
  SuccessWriter s;
  s.w().String((*expr)->ToString());
  return s.Finish();
}

ApiResponse PrometheusApi::ParseQuery(const Params& p) const {
  // Prometheus 3's parse_query returns the whole AST; telkit answers the
  // part tools use to validate a query: whether it parses, its type and its
  // canonical text.
  auto expr = promql::ParseExpr(p.Get("query"), options_.engine.parse);
  if (!expr.ok()) return InvalidParam("query", expr.status().message());
  SuccessWriter s;
  s.w().Raw(R"({"type":)");
  s.w().String(promql::ValueTypeApiName((*expr)->Type()));
  s.w().Raw(R"(,"expr":)");
  s.w().String((*expr)->ToString());
  s.w().Char('}');
  return s.Finish();
}

ApiResponse PrometheusApi::BuildInfo() const {
  // Grafana's Prometheus data source reads `version` to choose features. The
  // engine implements Prometheus 2.42's PromQL (the Debian 12 binary; see
  // common/promql/engine.h), so telkit claims exactly that: Grafana then uses
  // what 2.42 has — label values with match[] (>= 2.24), exemplars (>= 2.26),
  // /api/v1/metadata per metric — and nothing from 3.x (UTF-8 names, info(),
  // the new duration arithmetic) that the engine would reject.
  SuccessWriter s;
  JsonWriter& w = s.w();
  w.Raw(R"({"version":)");
  w.String(kClaimedPrometheusVersion);
  w.Raw(R"(,"revision":)");
  w.String("telkit-" TELKIT_VERSION);
  w.Raw(R"(,"branch":"telkit","buildUser":"telkit","buildDate":"","goVersion":"c++20"})");
  return s.Finish();
}

ApiResponse PrometheusApi::RuntimeInfo() const {
  char cwd[4096];
  std::string dir = getcwd(cwd, sizeof cwd) != nullptr ? cwd : "";
  SuccessWriter s;
  JsonWriter& w = s.w();
  std::string start = FormatRfc3339(start_time_ms_);
  w.Raw(R"({"startTime":)");
  w.String(start);
  w.Raw(R"(,"CWD":)");
  w.String(dir);
  w.Raw(R"(,"reloadConfigSuccess":true,"lastConfigTime":)");
  w.String(start);
  w.Raw(R"(,"corruptionCount":0,"goroutineCount":0,"GOMAXPROCS":)");
  w.Int(static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency())));
  w.Raw(R"(,"GOMEMLIMIT":9223372036854775807,"GOGC":"","GODEBUG":"","storageRetention":)");
  w.String(options_.storage_retention);
  w.Char('}');
  return s.Finish();
}

ApiResponse PrometheusApi::Flags() const {
  SuccessWriter s;
  JsonWriter& w = s.w();
  w.Char('{');
  bool first = true;
  for (const auto& [k, v] : options_.flags) {
    if (!first) w.Char(',');
    first = false;
    w.String(k);
    w.Char(':');
    w.String(v);
  }
  w.Char('}');
  return s.Finish();
}

ApiResponse PrometheusApi::Config() const {
  std::string yaml = options_.config_yaml;
  if (yaml.empty()) {
    yaml =
        "global:\n"
        "  scrape_interval: 1m\n"
        "  scrape_timeout: 10s\n"
        "  evaluation_interval: 1m\n";
  }
  SuccessWriter s;
  s.w().Raw(R"({"yaml":)");
  s.w().String(yaml);
  s.w().Char('}');
  return s.Finish();
}

ApiResponse PrometheusApi::TsdbStatusResponse() const {
  TsdbStatus st;
  if (backend_.tsdb_status) {
    auto got = backend_.tsdb_status();
    if (!got.ok()) return Error(ErrorType::kInternal, got.status().message());
    st = std::move(*got);
  }
  SuccessWriter s;
  JsonWriter& w = s.w();
  w.Raw(R"({"headStats":{"numSeries":)");
  w.Uint(st.num_series);
  w.Raw(R"(,"numLabelPairs":)");
  w.Int(st.num_label_pairs);
  w.Raw(R"(,"chunkCount":)");
  w.Int(st.chunk_count);
  w.Raw(R"(,"minTime":)");
  w.Int(st.min_time_ms);
  w.Raw(R"(,"maxTime":)");
  w.Int(st.max_time_ms);
  w.Char('}');
  auto list = [&](std::string_view key, const std::vector<CardinalityStat>& stats) {
    w.Raw(",\"");
    w.Raw(key);
    w.Raw("\":[");
    for (size_t i = 0; i < stats.size(); ++i) {
      if (i > 0) w.Char(',');
      w.Raw(R"({"name":)");
      w.String(stats[i].name);
      w.Raw(R"(,"value":)");
      w.Uint(stats[i].value);
      w.Char('}');
    }
    w.Char(']');
  };
  list("seriesCountByMetricName", st.series_count_by_metric_name);
  list("labelValueCountByLabelName", st.label_value_count_by_label_name);
  list("memoryInBytesByLabelName", st.memory_in_bytes_by_label_name);
  list("seriesCountByLabelValuePair", st.series_count_by_label_value_pair);
  w.Char('}');
  return s.Finish();
}

}  // namespace telkit::api
