#include "common/prom/otlp_translate.h"

#include <google/protobuf/arena.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "common/base/utf8.h"
#include "common/otlp/payload_summary.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"

namespace telkit {
namespace {

namespace pb = google::protobuf;
namespace otlp_common = opentelemetry::proto::common::v1;
namespace otlp_metrics = opentelemetry::proto::metrics::v1;
namespace otlp_resource = opentelemetry::proto::resource::v1;
using Attributes = pb::RepeatedPtrField<otlp_common::KeyValue>;

constexpr uint32_t kNoRecordedValue = otlp_metrics::DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK;
constexpr std::string_view kServiceName = "service.name";
constexpr std::string_view kServiceNamespace = "service.namespace";
constexpr std::string_view kServiceInstanceId = "service.instance.id";
// Prometheus keeps only trace_id / span_id when an exemplar's labels are longer.
constexpr size_t kMaxExemplarRunes = 128;

bool IsAsciiAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Runs of [a-zA-Z0-9] (and ':' when keep_colon); everything else separates.
std::vector<std::string> Tokens(std::string_view s, bool keep_colon) {
  std::vector<std::string> out;
  std::string current;
  for (char c : s) {
    if (IsAsciiAlnum(c) || (keep_colon && c == ':')) {
      current += c;
    } else if (!current.empty()) {
      out.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

std::string Join(const std::vector<std::string>& tokens) {
  std::string out;
  for (const std::string& t : tokens) {
    if (!out.empty()) out += '_';
    out += t;
  }
  return out;
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string_view MainUnit(std::string_view unit) {
  static const std::unordered_map<std::string_view, std::string_view> kUnits = {
      {"d", "days"},       {"h", "hours"},         {"min", "minutes"},     {"s", "seconds"},
      {"ms", "milliseconds"}, {"us", "microseconds"}, {"ns", "nanoseconds"}, {"By", "bytes"},
      {"KiBy", "kibibytes"}, {"MiBy", "mebibytes"},  {"GiBy", "gibibytes"},  {"TiBy", "tibibytes"},
      {"KBy", "kilobytes"}, {"MBy", "megabytes"},    {"GBy", "gigabytes"},   {"TBy", "terabytes"},
      {"m", "meters"},     {"V", "volts"},         {"A", "amperes"},       {"J", "joules"},
      {"W", "watts"},      {"g", "grams"},         {"Cel", "celsius"},     {"Hz", "hertz"},
      {"1", ""},           {"%", "percent"},
  };
  auto it = kUnits.find(unit);
  return it == kUnits.end() ? unit : it->second;
}

std::string_view PerUnit(std::string_view unit) {
  static const std::unordered_map<std::string_view, std::string_view> kPerUnits = {
      {"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
      {"w", "week"},   {"mo", "month"}, {"y", "year"},
  };
  auto it = kPerUnits.find(unit);
  return it == kPerUnits.end() ? unit : it->second;
}

bool Contains(const std::vector<std::string>& tokens, std::string_view t) {
  return std::find(tokens.begin(), tokens.end(), t) != tokens.end();
}

void AppendLast(std::vector<std::string>& tokens, const std::string& t) {
  std::erase(tokens, t);
  tokens.push_back(t);
}

// ECMAScript number-to-string, as OTLP (pdata) turns a double attribute into
// a string: fixed notation unless |v| < 1e-6 or >= 1e21.
std::string DoubleAttributeString(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Inf" : "-Inf";
  const double abs = std::fabs(v);
  char buf[400];
  const bool exponent = abs != 0 && (abs < 1e-6 || abs >= 1e21);
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v,
                                 exponent ? std::chars_format::scientific : std::chars_format::fixed);
  std::string out(buf, ec == std::errc() ? end : buf);
  if (exponent) {  // e-07 -> e-7, as Go writes it
    size_t e = out.find('e');
    if (e != std::string::npos && e + 2 < out.size() && out[e + 2] == '0') out.erase(e + 2, 1);
  }
  return out;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(n >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t n = uint8_t(in[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

nlohmann::json AnyValueJson(const otlp_common::AnyValue& v, int depth) {
  if (depth > 32) return nullptr;
  switch (v.value_case()) {
    case otlp_common::AnyValue::kStringValue: return v.string_value();
    case otlp_common::AnyValue::kBoolValue: return v.bool_value();
    case otlp_common::AnyValue::kIntValue: return v.int_value();
    case otlp_common::AnyValue::kDoubleValue:
      return std::isfinite(v.double_value()) ? nlohmann::json(v.double_value())
                                             : nlohmann::json(DoubleAttributeString(v.double_value()));
    case otlp_common::AnyValue::kBytesValue: return Base64(v.bytes_value());
    case otlp_common::AnyValue::kArrayValue: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& e : v.array_value().values()) out.push_back(AnyValueJson(e, depth + 1));
      return out;
    }
    case otlp_common::AnyValue::kKvlistValue: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : v.kvlist_value().values()) out[kv.key()] = AnyValueJson(kv.value(), depth + 1);
      return out;
    }
    default: return nullptr;
  }
}

// pdata's Value.AsString(): what an attribute becomes as a label value.
std::string AnyValueString(const otlp_common::AnyValue& v) {
  switch (v.value_case()) {
    case otlp_common::AnyValue::kStringValue: return v.string_value();
    case otlp_common::AnyValue::kBoolValue: return v.bool_value() ? "true" : "false";
    case otlp_common::AnyValue::kIntValue: return std::to_string(v.int_value());
    case otlp_common::AnyValue::kDoubleValue: return DoubleAttributeString(v.double_value());
    case otlp_common::AnyValue::kBytesValue: return Base64(v.bytes_value());
    case otlp_common::AnyValue::kArrayValue:
    case otlp_common::AnyValue::kKvlistValue:
      return AnyValueJson(v, 0).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    default: return "";
  }
}

const otlp_common::AnyValue* FindAttribute(const Attributes& attributes, std::string_view key) {
  for (const auto& kv : attributes) {
    if (kv.key() == key) return &kv.value();
  }
  return nullptr;
}

// Attributes as labels: sorted by key (stable), names sanitised, values of
// names that collide after sanitising joined with ";" in key order.
std::vector<Label> AttributeLabels(const Attributes& attributes, bool skip_service_identity) {
  std::vector<std::pair<std::string_view, const otlp_common::AnyValue*>> kvs;
  kvs.reserve(static_cast<size_t>(attributes.size()));
  for (const auto& kv : attributes) {
    if (kv.key().empty()) continue;
    if (skip_service_identity &&
        (kv.key() == kServiceName || kv.key() == kServiceNamespace || kv.key() == kServiceInstanceId)) {
      continue;
    }
    kvs.emplace_back(kv.key(), &kv.value());
  }
  std::stable_sort(kvs.begin(), kvs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Label> out;
  out.reserve(kvs.size());
  for (const auto& [key, value] : kvs) {
    std::string name = PrometheusLabelName(key);
    std::string text = AnyValueString(*value);
    auto it = std::find_if(out.begin(), out.end(), [&](const Label& l) { return l.name == name; });
    if (it != out.end()) {
      it->value += ";" + text;
    } else {
      out.push_back({std::move(name), std::move(text)});
    }
  }
  return out;
}

// Sorted. The names are unique by construction (AttributeLabels merges,
// SetLabel replaces); were they not, the result fails CheckSeriesLabels.
Labels SortedLabels(std::vector<Label> labels) {
  Result<Labels> sorted = Labels::FromUnsorted(std::move(labels));
  return sorted.ok() ? std::move(sorted).value() : Labels{{"", "duplicate label names"}};
}

void SetLabel(std::vector<Label>& labels, std::string_view name, std::string value) {
  for (Label& l : labels) {
    if (l.name == name) {
      l.value = std::move(value);
      return;
    }
  }
  labels.push_back({std::string(name), std::move(value)});
}

int64_t NanosToMillis(uint64_t ns) { return static_cast<int64_t>(ns / 1000000); }

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

size_t CountRunes(std::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// An OTLP exemplar as a Prometheus one; nullopt when its labels are invalid.
std::optional<Exemplar> ConvertExemplar(const otlp_metrics::Exemplar& e, const LabelLimits& limits) {
  std::vector<Label> labels = AttributeLabels(e.filtered_attributes(), false);
  size_t runes = 0;
  for (const Label& l : labels) runes += CountRunes(l.name) + CountRunes(l.value);
  std::vector<Label> ids;
  if (!e.trace_id().empty() && !AllZero(e.trace_id())) ids.push_back({"trace_id", Hex(e.trace_id())});
  if (!e.span_id().empty() && !AllZero(e.span_id())) ids.push_back({"span_id", Hex(e.span_id())});
  for (const Label& l : ids) runes += CountRunes(l.name) + CountRunes(l.value);
  if (runes > kMaxExemplarRunes) labels.clear();
  for (Label& l : ids) SetLabel(labels, l.name, std::move(l.value));
  Result<Labels> sorted = Labels::FromUnsorted(std::move(labels));
  if (!sorted.ok()) return std::nullopt;
  for (const Label& l : *sorted) {
    if (!IsValidLabelName(l.name) || !IsValidUtf8(l.value) || l.name.size() > limits.max_name_bytes ||
        l.value.size() > limits.max_value_bytes) {
      return std::nullopt;
    }
  }
  Exemplar out;
  out.labels = std::move(sorted).value();
  out.value = e.value_case() == otlp_metrics::Exemplar::kAsInt ? static_cast<double>(e.as_int()) : e.as_double();
  out.t = NanosToMillis(e.time_unix_nano());
  return out;
}

double NumberValue(const otlp_metrics::NumberDataPoint& p) {
  return p.value_case() == otlp_metrics::NumberDataPoint::kAsInt ? static_cast<double>(p.as_int()) : p.as_double();
}

// A histogram as classic buckets: bounds[i] is the upper bound of counts[i];
// the +Inf bucket holds count - sum(counts) (never stored apart).
struct ClassicHistogram {
  std::vector<double> bounds;
  std::vector<double> counts;
  double count = 0;
  std::optional<double> sum;
};

struct LabelsHash {
  size_t operator()(const Labels& l) const { return static_cast<size_t>(l.Hash()); }
};

// One series of a data point before it is committed.
struct PendingSample {
  Labels labels;
  Sample sample;
  std::vector<Exemplar> exemplars;
};

}  // namespace

std::string PrometheusMetricName(std::string_view name, std::string_view unit, bool monotonic_sum, bool gauge) {
  std::vector<std::string> tokens = Tokens(name, /*keep_colon=*/true);
  const size_t slash = unit.find('/');
  const std::string_view main_unit = TrimSpace(unit.substr(0, slash));
  if (!main_unit.empty() && main_unit.find_first_of("{}") == std::string_view::npos) {
    std::string prom = Join(Tokens(MainUnit(main_unit), false));
    if (!prom.empty() && !Contains(tokens, prom)) tokens.push_back(prom);
  }
  if (slash != std::string_view::npos) {
    const std::string_view per_unit = TrimSpace(unit.substr(slash + 1));
    if (!per_unit.empty() && per_unit.find_first_of("{}") == std::string_view::npos) {
      std::string prom = Join(Tokens(PerUnit(per_unit), false));
      if (!prom.empty() && !Contains(tokens, prom)) {
        tokens.push_back("per");
        tokens.push_back(prom);
      }
    }
  }
  if (monotonic_sum) AppendLast(tokens, "total");
  if (unit == "1" && gauge) AppendLast(tokens, "ratio");
  std::string out = Join(tokens);
  if (!out.empty() && IsDigit(out[0])) out.insert(0, "_");
  return out;
}

std::string PrometheusLabelName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80 && u < 0xC0) continue;  // UTF-8 continuation: one '_' per character
    out += (IsAsciiAlnum(c) || c == '_') ? c : '_';
  }
  if (out.empty()) return out;
  if (IsDigit(out[0])) return "key_" + out;
  if (out[0] == '_' && !out.starts_with("__")) return "key" + out;
  return out;
}

std::string FormatPrometheusFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[400];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

struct OtlpTranslator::State {
  struct NumberTotal {
    uint64_t last_time = 0;
    double value = 0;
  };
  struct HistogramTotal {
    uint64_t last_time = 0;
    ClassicHistogram h;
  };
  std::unordered_map<Labels, NumberTotal, LabelsHash> numbers;
  std::unordered_map<Labels, HistogramTotal, LabelsHash> histograms;
  size_t size() const { return numbers.size() + histograms.size(); }
};

OtlpTranslator::OtlpTranslator(OtlpTranslateOptions options)
    : options_(std::move(options)), state_(std::make_unique<State>()) {}
OtlpTranslator::~OtlpTranslator() = default;

size_t OtlpTranslator::delta_series() const { return state_->size(); }

void OtlpTranslator::Forget() {
  state_->numbers.clear();
  state_->histograms.clear();
}

namespace {

// One Translate call: the output being built and the context of the data
// point being translated.
class Translation {
 public:
  explicit Translation(const OtlpTranslateOptions& options) : options_(options) {}

  TranslatedMetrics& result() { return result_; }

  // Labels of a series of the current point: the base labels, the metric
  // name and an extra label (le, quantile) if any. Checked against the rules.
  Result<Labels> SeriesLabels(const Labels& base, const std::string& name, std::string_view extra_name,
                              std::string_view extra_value, PromReject* reject) const {
    Labels labels = base;
    labels.Set(kMetricNameLabel, name);
    if (!extra_name.empty()) labels.Set(extra_name, extra_value);
    if (LabelProblem problem = CheckSeriesLabels(labels, options_.limits); problem != LabelProblem::kNone) {
      *reject = RejectForLabelProblem(problem);
      return InvalidArgumentError("series " + labels.ToString() + ": " + std::string(LabelProblemName(problem)));
    }
    return labels;
  }

  void Commit(std::vector<PendingSample>& pending) {
    for (PendingSample& p : pending) {
      TimeSeries* ts = nullptr;
      const uint64_t hash = p.labels.Hash();
      auto [first, last] = index_.equal_range(hash);
      for (auto it = first; it != last && ts == nullptr; ++it) {
        if (result_.series[it->second].labels == p.labels) ts = &result_.series[it->second];
      }
      if (ts == nullptr) {
        index_.emplace(hash, result_.series.size());
        ts = &result_.series.emplace_back(TimeSeries{std::move(p.labels), {}, {}});
      }
      ts->samples.push_back(p.sample);
      result_.exemplars += static_cast<int64_t>(p.exemplars.size());
      for (Exemplar& e : p.exemplars) ts->exemplars.push_back(std::move(e));
      ++result_.samples;
    }
    ++result_.data_points;
  }

  void AddMetadata(MetricMetadata m) {
    if (metadata_names_.insert(m.family).second) result_.metadata.push_back(std::move(m));
  }

  void Finish() {
    for (TimeSeries& ts : result_.series) {
      std::stable_sort(ts.samples.begin(), ts.samples.end(),
                       [](const Sample& a, const Sample& b) { return a.t < b.t; });
    }
  }

 private:
  const OtlpTranslateOptions& options_;
  TranslatedMetrics result_;
  std::unordered_multimap<uint64_t, size_t> index_;  // Labels::Hash() -> series
  std::unordered_set<std::string> metadata_names_;
};

bool ValidBounds(const pb::RepeatedField<double>& bounds) {
  for (int i = 0; i < bounds.size(); ++i) {
    if (std::isnan(bounds[i])) return false;
    if (i > 0 && !(bounds[i] > bounds[i - 1])) return false;
  }
  return true;
}

// Upper boundary of exponential bucket `index` at `scale`: base^(index+1),
// base = 2^(2^-scale).
double ExponentialUpperBound(int64_t index, int32_t scale) {
  if (scale <= 0) return std::ldexp(1.0, static_cast<int>(std::clamp<int64_t>((index + 1) << -scale, -2000, 2000)));
  return std::exp2(static_cast<double>(index + 1) / std::ldexp(1.0, scale));
}

// Classic buckets of an exponential histogram (see the header): one bucket a
// populated exponential bucket, the zero bucket at le = zero_threshold.
Result<ClassicHistogram> FromExponential(const otlp_metrics::ExponentialHistogramDataPoint& p) {
  if (p.scale() < -10 || p.scale() > 20) {
    return InvalidArgumentError("exponential histogram scale " + std::to_string(p.scale()) + " outside [-10, 20]");
  }
  if (!(p.zero_threshold() >= 0)) return InvalidArgumentError("negative or NaN zero threshold");
  ClassicHistogram h;
  auto push = [&](double bound, double count) {
    if (!h.bounds.empty() && !(bound > h.bounds.back())) {
      h.counts.back() += count;  // not above the previous bound: merged into it
      return;
    }
    h.bounds.push_back(bound);
    h.counts.push_back(count);
  };
  const auto& neg = p.negative();
  for (int k = neg.bucket_counts_size() - 1; k >= 0; --k) {
    if (neg.bucket_counts(k) == 0) continue;
    // Bucket index i holds (-base^(i+1), -base^i]: its upper end is -base^i.
    push(-ExponentialUpperBound(static_cast<int64_t>(neg.offset()) + k - 1, p.scale()),
         static_cast<double>(neg.bucket_counts(k)));
  }
  if (p.zero_count() > 0) push(p.zero_threshold(), static_cast<double>(p.zero_count()));
  const auto& pos = p.positive();
  for (int k = 0; k < pos.bucket_counts_size(); ++k) {
    if (pos.bucket_counts(k) == 0) continue;
    push(ExponentialUpperBound(static_cast<int64_t>(pos.offset()) + k, p.scale()),
         static_cast<double>(pos.bucket_counts(k)));
  }
  // An infinite bound is the +Inf bucket: its counts are in `count` already.
  while (!h.bounds.empty() && std::isinf(h.bounds.back()) && h.bounds.back() > 0) {
    h.bounds.pop_back();
    h.counts.pop_back();
  }
  h.count = static_cast<double>(p.count());
  if (p.has_sum()) h.sum = p.sum();
  return h;
}

Result<ClassicHistogram> FromExplicit(const otlp_metrics::HistogramDataPoint& p) {
  if (!ValidBounds(p.explicit_bounds())) {
    return InvalidArgumentError("histogram bounds are not strictly increasing numbers");
  }
  if (p.bucket_counts_size() != 0 && p.bucket_counts_size() != p.explicit_bounds_size() + 1) {
    return InvalidArgumentError("histogram has " + std::to_string(p.bucket_counts_size()) + " bucket counts for " +
                                std::to_string(p.explicit_bounds_size()) + " bounds");
  }
  ClassicHistogram h;
  if (p.bucket_counts_size() != 0) {
    for (int i = 0; i < p.explicit_bounds_size(); ++i) {
      if (std::isinf(p.explicit_bounds(i)) && p.explicit_bounds(i) > 0) break;  // +Inf is implicit
      h.bounds.push_back(p.explicit_bounds(i));
      h.counts.push_back(static_cast<double>(p.bucket_counts(i)));
    }
  }
  h.count = static_cast<double>(p.count());
  if (p.has_sum()) h.sum = p.sum();
  return h;
}

}  // namespace

Result<TranslatedMetrics> OtlpTranslator::Translate(std::string_view bytes) {
  // Validated first: protobuf's parser would log (to stderr) every string
  // that is not UTF-8, and library code does not log. The scan is cheap next
  // to the translation (bench/micro).
  if (Status valid = ValidateOtlpPayload(Signal::kMetrics, bytes); !valid.ok()) {
    return InvalidArgumentError("malformed OTLP metrics request: " + valid.message());
  }
  pb::Arena arena;
  using Request = opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest;
  auto* request = pb::Arena::CreateMessage<Request>(&arena);
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !request->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("malformed OTLP metrics request: not an ExportMetricsServiceRequest protobuf");
  }
  Translation t(options_);
  State& state = *state_;
  const LabelLimits& limits = options_.limits;

  for (const otlp_metrics::ResourceMetrics& rm : request->resource_metrics()) {
    const Attributes& resource_attributes = rm.resource().attributes();
    // job and instance, as Prometheus derives them from the resource.
    std::vector<Label> resource_labels;
    if (const otlp_common::AnyValue* name = FindAttribute(resource_attributes, kServiceName)) {
      std::string job = AnyValueString(*name);
      if (const otlp_common::AnyValue* ns = FindAttribute(resource_attributes, kServiceNamespace)) {
        job = AnyValueString(*ns) + "/" + job;
      }
      resource_labels.push_back({"job", std::move(job)});
    }
    if (const otlp_common::AnyValue* id = FindAttribute(resource_attributes, kServiceInstanceId)) {
      resource_labels.push_back({"instance", AnyValueString(*id)});
    }
    uint64_t latest_time = 0;

    for (const otlp_metrics::ScopeMetrics& sm : rm.scope_metrics()) {
      std::vector<Label> context_labels;
      if (options_.scope_labels && !sm.scope().name().empty()) {
        context_labels.push_back({"otel_scope_name", sm.scope().name()});
        context_labels.push_back({"otel_scope_version", sm.scope().version()});
      }
      for (const Label& l : resource_labels) context_labels.push_back(l);

      for (const otlp_metrics::Metric& metric : sm.metrics()) {
        const bool is_gauge = metric.has_gauge();
        const bool is_monotonic = metric.has_sum() && metric.sum().is_monotonic();
        if (metric.data_case() == otlp_metrics::Metric::DATA_NOT_SET) {
          t.result().rejected.Add(PromReject::kNoData, "metric '" + metric.name() + "' has no data");
          continue;
        }
        const std::string name = PrometheusMetricName(metric.name(), metric.unit(), is_monotonic, is_gauge);
        // Every point of the metric is rejected when its name is unusable.
        std::optional<PromReject> name_problem;
        if (metric.name().empty()) {
          name_problem = PromReject::kMissingMetricName;
        } else if (name.empty() || !IsValidMetricName(name)) {
          name_problem = PromReject::kInvalidMetricName;
        }

        // The labels of a point, before the metric name and le / quantile.
        auto base_labels = [&](const Attributes& attributes) {
          std::vector<Label> labels = AttributeLabels(attributes, false);
          for (const Label& l : context_labels) SetLabel(labels, l.name, l.value);
          return SortedLabels(std::move(labels));
        };
        auto reject = [&](PromReject reason, const std::string& why) {
          t.result().rejected.Add(reason, "metric '" + metric.name() + "': " + why);
        };
        auto exemplars_of = [&](const auto& points_exemplars) {
          std::vector<Exemplar> out;
          for (const otlp_metrics::Exemplar& e : points_exemplars) {
            if (std::optional<Exemplar> x = ConvertExemplar(e, limits)) out.push_back(std::move(*x));
          }
          return out;
        };
        auto count_points = [&]() -> int {
          switch (metric.data_case()) {
            case otlp_metrics::Metric::kGauge: return metric.gauge().data_points_size();
            case otlp_metrics::Metric::kSum: return metric.sum().data_points_size();
            case otlp_metrics::Metric::kHistogram: return metric.histogram().data_points_size();
            case otlp_metrics::Metric::kExponentialHistogram: return metric.exponential_histogram().data_points_size();
            case otlp_metrics::Metric::kSummary: return metric.summary().data_points_size();
            default: return 0;
          }
        };
        if (name_problem) {
          for (int i = 0, n = count_points(); i < n; ++i) {
            reject(*name_problem, "no valid Prometheus name ('" + name + "')");
          }
          continue;
        }

        MetricFamilyType family_type = MetricFamilyType::kGauge;
        bool emitted = false;

        if (metric.has_gauge() || metric.has_sum()) {
          const bool delta = metric.has_sum() &&
                             metric.sum().aggregation_temporality() == otlp_metrics::AGGREGATION_TEMPORALITY_DELTA;
          family_type = is_monotonic ? MetricFamilyType::kCounter : MetricFamilyType::kGauge;
          const auto& points = metric.has_gauge() ? metric.gauge().data_points() : metric.sum().data_points();
          for (const otlp_metrics::NumberDataPoint& p : points) {
            PromReject why{};
            Result<Labels> labels = t.SeriesLabels(base_labels(p.attributes()), name, "", "", &why);
            if (!labels.ok()) {
              reject(why, labels.status().message());
              continue;
            }
            const bool stale = (p.flags() & kNoRecordedValue) != 0;
            double value = NumberValue(p);
            if (delta) {
              auto it = state.numbers.find(*labels);
              if (stale) {
                if (it != state.numbers.end()) state.numbers.erase(it);
              } else if (it == state.numbers.end()) {
                if (state.size() >= options_.max_delta_series) {
                  reject(PromReject::kDeltaStateFull, "too many delta series");
                  continue;
                }
                state.numbers.emplace(*labels, State::NumberTotal{p.time_unix_nano(), value});
              } else if (p.time_unix_nano() <= it->second.last_time) {
                reject(PromReject::kOutOfOrderDelta, "delta point not newer than the last one of " +
                                                         labels->ToString());
                continue;
              } else {
                it->second.value += value;
                it->second.last_time = p.time_unix_nano();
                value = it->second.value;
              }
            }
            std::vector<PendingSample> pending(1);
            pending[0].labels = std::move(labels).value();
            pending[0].sample = {NanosToMillis(p.time_unix_nano()), stale ? StaleNaN() : value};
            pending[0].exemplars = exemplars_of(p.exemplars());
            t.Commit(pending);
            latest_time = std::max<uint64_t>(latest_time, p.time_unix_nano());
            emitted = true;
          }
        } else if (metric.has_histogram() || metric.has_exponential_histogram()) {
          family_type = MetricFamilyType::kHistogram;
          const bool exponential = metric.has_exponential_histogram();
          const auto temporality = exponential ? metric.exponential_histogram().aggregation_temporality()
                                               : metric.histogram().aggregation_temporality();
          const bool delta = temporality == otlp_metrics::AGGREGATION_TEMPORALITY_DELTA;
          const int n = exponential ? metric.exponential_histogram().data_points_size()
                                    : metric.histogram().data_points_size();
          for (int i = 0; i < n; ++i) {
            const auto* ep = exponential ? &metric.exponential_histogram().data_points(i) : nullptr;
            const auto* hp = exponential ? nullptr : &metric.histogram().data_points(i);
            const Attributes& attributes = exponential ? ep->attributes() : hp->attributes();
            const uint64_t time = exponential ? ep->time_unix_nano() : hp->time_unix_nano();
            const uint32_t flags = exponential ? ep->flags() : hp->flags();
            const bool stale = (flags & kNoRecordedValue) != 0;
            Result<ClassicHistogram> h = exponential ? FromExponential(*ep) : FromExplicit(*hp);
            if (!h.ok()) {
              reject(PromReject::kInvalidDataPoint, h.status().message());
              continue;
            }
            const Labels base = base_labels(attributes);
            PromReject why{};
            Result<Labels> count_labels = t.SeriesLabels(base, name + "_count", "", "", &why);
            if (!count_labels.ok()) {
              reject(why, count_labels.status().message());
              continue;
            }
            // Every label set first: a point with one bad series is rejected
            // before it touches the running total. The delta paths below keep
            // the bounds, so these are the series of the result too.
            ClassicHistogram out = std::move(h).value();
            const std::string bucket_name = name + "_bucket";
            std::vector<PendingSample> pending;
            pending.reserve(out.bounds.size() + 3);
            bool bad = false;
            for (size_t b = 0; b <= out.bounds.size() && !bad; ++b) {
              std::string le = b < out.bounds.size() ? FormatPrometheusFloat(out.bounds[b]) : "+Inf";
              Result<Labels> labels = t.SeriesLabels(base, bucket_name, "le", std::move(le), &why);
              if (!labels.ok()) {
                reject(why, labels.status().message());
                bad = true;
              } else {
                pending.push_back({std::move(labels).value(), {}, {}});
              }
            }
            if (bad) continue;
            Result<Labels> sum_labels = t.SeriesLabels(base, name + "_sum", "", "", &why);
            if (!sum_labels.ok()) {
              reject(why, sum_labels.status().message());
              continue;
            }
            if (delta) {
              auto it = state.histograms.find(*count_labels);
              if (stale) {
                if (it != state.histograms.end()) state.histograms.erase(it);
              } else if (it == state.histograms.end()) {
                if (state.size() >= options_.max_delta_series) {
                  reject(PromReject::kDeltaStateFull, "too many delta series");
                  continue;
                }
                state.histograms.emplace(*count_labels, State::HistogramTotal{time, out});
              } else if (time <= it->second.last_time) {
                reject(PromReject::kOutOfOrderDelta,
                       "delta point not newer than the last one of " + count_labels->ToString());
                continue;
              } else if (it->second.h.bounds != out.bounds) {
                it->second = State::HistogramTotal{time, out};  // layout changed: restart
              } else {
                ClassicHistogram& total = it->second.h;
                for (size_t b = 0; b < out.counts.size(); ++b) total.counts[b] += out.counts[b];
                total.count += out.count;
                if (out.sum) total.sum = total.sum.value_or(0) + *out.sum;
                it->second.last_time = time;
                out = total;
              }
            }
            const int64_t ms = NanosToMillis(time);
            auto value = [&](double v) { return Sample{ms, stale ? StaleNaN() : v}; };
            double cumulative = 0;
            for (size_t b = 0; b < out.bounds.size(); ++b) {
              cumulative += out.counts[b];
              pending[b].sample = value(cumulative);
            }
            pending[out.bounds.size()].sample = value(out.count);  // +Inf
            // Exemplars go to the first bucket whose bound is not below them.
            const auto& raw_exemplars = exponential ? ep->exemplars() : hp->exemplars();
            for (Exemplar& e : exemplars_of(raw_exemplars)) {
              size_t b = 0;
              while (b < out.bounds.size() && e.value > out.bounds[b]) ++b;
              pending[b].exemplars.push_back(std::move(e));
            }
            pending.push_back({std::move(count_labels).value(), value(out.count), {}});
            if (out.sum) pending.push_back({std::move(sum_labels).value(), value(*out.sum), {}});
            t.Commit(pending);
            latest_time = std::max(latest_time, time);
            emitted = true;
          }
        } else if (metric.has_summary()) {
          family_type = MetricFamilyType::kSummary;
          for (const otlp_metrics::SummaryDataPoint& p : metric.summary().data_points()) {
            const bool stale = (p.flags() & kNoRecordedValue) != 0;
            const Labels base = base_labels(p.attributes());
            const int64_t ms = NanosToMillis(p.time_unix_nano());
            std::vector<PendingSample> pending;
            PromReject why{};
            bool bad = false;
            auto add = [&](const std::string& series_name, std::string_view extra, std::string extra_value,
                           double v) {
              if (bad) return;
              Result<Labels> labels = t.SeriesLabels(base, series_name, extra, std::move(extra_value), &why);
              if (!labels.ok()) {
                reject(why, labels.status().message());
                bad = true;
                return;
              }
              pending.push_back({std::move(labels).value(), {ms, stale ? StaleNaN() : v}, {}});
            };
            for (const auto& q : p.quantile_values()) add(name, "quantile", FormatPrometheusFloat(q.quantile()), q.value());
            add(name + "_sum", "", "", p.sum());
            add(name + "_count", "", "", static_cast<double>(p.count()));
            if (bad) continue;
            t.Commit(pending);
            latest_time = std::max<uint64_t>(latest_time, p.time_unix_nano());
            emitted = true;
          }
        }
        if (emitted) t.AddMetadata({name, family_type, metric.description(), metric.unit()});
      }
    }

    // target_info: the resource's other attributes, once per resource.
    if (options_.target_info && latest_time > 0) {
      std::vector<Label> labels = AttributeLabels(resource_attributes, /*skip_service_identity=*/true);
      if (!labels.empty()) {
        for (const Label& l : resource_labels) SetLabel(labels, l.name, l.value);
        PromReject why{};
        Result<Labels> info = t.SeriesLabels(SortedLabels(std::move(labels)), "target_info", "", "", &why);
        if (!info.ok()) {
          t.result().rejected.Add(why, "target_info: " + info.status().message());
        } else {
          std::vector<PendingSample> pending(1);
          pending[0].labels = std::move(info).value();
          pending[0].sample = {NanosToMillis(latest_time), 1};
          t.Commit(pending);
          --t.result().data_points;  // not a data point of the request
          t.AddMetadata({"target_info", MetricFamilyType::kGauge, "Target metadata", ""});
        }
      }
    }
  }
  t.Finish();
  return std::move(t.result());
}

}  // namespace telkit
