#include "common/promql/engine.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "common/promql/functions.h"
#include "common/promql/parser.h"

namespace telkit::promql {

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[400];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

Status EvalError(std::string msg) { return InvalidArgumentError(std::move(msg)); }

// The value of a node for every step of its evaluator.
struct Value {
  ValueType type = ValueType::kNone;
  Matrix m;               // kVector: points at step times; kMatrix: raw samples
  std::vector<double> sc;  // kScalar: one value per step
  std::string str;         // kString
};

// What every evaluator of one query shares.
struct Context {
  Querier* querier = nullptr;
  const EngineOptions* opts = nullptr;
  int64_t query_start = 0;
  int64_t query_end = 0;
  int64_t query_step = 0;  // 0 for an instant query
  std::chrono::steady_clock::time_point deadline;
  uint64_t ticks = 0;
  bool left_open() const { return opts->compat == Compat::kPrometheus3; }
};

// Go's math.Max / math.Min: NaN wins.
double GoMax(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return kNaN;
  return a > b ? a : b;
}
double GoMin(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return kNaN;
  return a < b ? a : b;
}

// Neumaier-compensated summation step, as Prometheus' kahanSumInc.
inline void KahanInc(double inc, double& sum, double& c) {
  double t = sum + inc;
  if (std::isinf(t)) {
    c = 0;
  } else if (std::fabs(sum) >= std::fabs(inc)) {
    c += (sum - t) + inc;
  } else {
    c += (inc - t) + sum;
  }
  sum = t;
}

// 3.x's mean: a compensated sum divided by the count, switching to an
// incremental mean once the sum would overflow.
template <typename Get>
double KahanMean(size_t n, Get get) {
  double sum = get(0), c = 0, mean = 0, count = 1;
  bool incremental = false;
  for (size_t i = 1; i < n; ++i) {
    double f = get(i);
    count = static_cast<double>(i + 1);
    if (!incremental) {
      double ns = sum, nc = c;
      KahanInc(f, ns, nc);
      if (!std::isinf(ns)) {
        sum = ns;
        c = nc;
        continue;
      }
      incremental = true;
      mean = sum / (count - 1);
      c /= (count - 1);
    }
    if (std::isinf(mean)) {
      if (std::isinf(f) && (mean > 0) == (f > 0)) continue;
      if (!std::isinf(f) && !std::isnan(f)) continue;
    }
    double q = (count - 1) / count;
    double m = q * mean, cc = q * c;
    KahanInc(f / count, m, cc);
    mean = m;
    c = cc;
  }
  if (incremental) return mean + c;
  return sum / count + c / count;
}

Labels DropName(const Labels& l, bool type_and_unit = false) {
  if (!l.Has(kMetricNameLabel)) return l;
  Labels out = l;
  out.Remove(kMetricNameLabel);
  if (type_and_unit) {
    out.Remove("__type__");
    out.Remove("__unit__");
  }
  return out;
}

// Prometheus' HashForLabels / HashWithoutLabels (without also drops __name__).
uint64_t SignatureOf(const Labels& l, const std::vector<std::string>& names, bool on) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;
    h *= 1099511628211ULL;
  };
  for (const Label& lb : l) {
    bool listed = std::find(names.begin(), names.end(), lb.name) != names.end();
    if (on ? listed : (!listed && lb.name != kMetricNameLabel)) {
      mix(lb.name);
      mix(lb.value);
    }
  }
  return h;
}

// Prometheus' labels.Labels.String(): {a="b", __name__="x"}, every label in braces.
std::string LabelsString(const Labels& l) {
  std::string out = "{";
  bool first = true;
  for (const Label& lb : l) {
    if (!first) out += ", ";
    first = false;
    out += lb.name + "=\"" + EscapeLabelValue(lb.value) + "\"";
  }
  return out + "}";
}

Labels MatchLabels(const Labels& l, const std::vector<std::string>& names, bool on) {
  Labels out;
  for (const Label& lb : l) {
    bool listed = std::find(names.begin(), names.end(), lb.name) != names.end();
    if (on ? listed : (!listed && lb.name != kMetricNameLabel)) out.Set(lb.name, lb.value);
  }
  return out;
}

// Merges series whose labels became equal (after dropping __name__ or
// relabelling). Two of them with a point at the same time is Prometheus'
// "vector cannot contain metrics with the same labelset".
Status MergeSameLabels(Matrix& m) {
  if (m.size() < 2) return OkStatus();
  std::unordered_map<uint64_t, std::vector<size_t>> seen;
  seen.reserve(m.size());
  bool any = false;
  std::vector<bool> removed(m.size(), false);
  for (size_t i = 0; i < m.size(); ++i) {
    auto& bucket = seen[m[i].labels.Hash()];
    size_t target = SIZE_MAX;
    for (size_t j : bucket) {
      if (m[j].labels == m[i].labels) target = j;
    }
    if (target == SIZE_MAX) {
      bucket.push_back(i);
      continue;
    }
    std::vector<Sample> merged;
    merged.reserve(m[target].points.size() + m[i].points.size());
    const auto& a = m[target].points;
    const auto& b = m[i].points;
    size_t x = 0, y = 0;
    while (x < a.size() || y < b.size()) {
      if (y == b.size() || (x < a.size() && a[x].t < b[y].t)) {
        merged.push_back(a[x++]);
      } else if (x == a.size() || b[y].t < a[x].t) {
        merged.push_back(b[y++]);
      } else {
        return EvalError("vector cannot contain metrics with the same labelset");
      }
    }
    m[target].points = std::move(merged);
    removed[i] = true;
    any = true;
  }
  if (any) {
    size_t w = 0;
    for (size_t i = 0; i < m.size(); ++i) {
      if (!removed[i]) {
        if (w != i) m[w] = std::move(m[i]);
        ++w;
      }
    }
    m.resize(w);
  }
  return OkStatus();
}

bool ContainsSameLabelset(const Matrix& m) {
  std::unordered_map<uint64_t, std::vector<size_t>> seen;
  for (size_t i = 0; i < m.size(); ++i) {
    auto& bucket = seen[m[i].labels.Hash()];
    for (size_t j : bucket) {
      if (m[j].labels == m[i].labels) return true;
    }
    bucket.push_back(i);
  }
  return false;
}

// Output series created on demand, found by labels.
class OutBuilder {
 public:
  // The series `l`; drop_name is or-ed in (any member drops the name).
  size_t Id(const Labels& l, bool drop_name = false) {
    auto& bucket = index_[l.Hash()];
    for (size_t id : bucket) {
      if (out_[id].labels == l) {
        out_[id].drop_name |= drop_name;
        return id;
      }
    }
    bucket.push_back(out_.size());
    out_.push_back(Series{l, {}, drop_name});
    return out_.size() - 1;
  }
  // Error when the series already has a point at t (two results with one labelset).
  Status Add(size_t id, int64_t t, double v) {
    auto& pts = out_[id].points;
    if (!pts.empty() && pts.back().t == t) return EvalError("vector cannot contain metrics with the same labelset");
    pts.push_back({t, v});
    return OkStatus();
  }
  Matrix Take() {
    Matrix m;
    m.reserve(out_.size());
    for (Series& s : out_) {
      if (!s.points.empty()) m.push_back(std::move(s));
    }
    return m;
  }

 private:
  Matrix out_;
  std::unordered_map<uint64_t, std::vector<size_t>> index_;
};

// Walks the series of a vector value step by step.
class StepCursor {
 public:
  explicit StepCursor(const Matrix& m) : m_(m), pos_(m.size(), 0) {}
  // Indices (and values) of the series with a point at t. REQUIRES: t
  // non-decreasing between calls.
  void At(int64_t t, std::vector<uint32_t>& idx, std::vector<double>& vals) {
    idx.clear();
    vals.clear();
    for (size_t s = 0; s < m_.size(); ++s) {
      const auto& pts = m_[s].points;
      size_t& p = pos_[s];
      while (p < pts.size() && pts[p].t < t) ++p;
      if (p < pts.size() && pts[p].t == t) {
        idx.push_back(static_cast<uint32_t>(s));
        vals.push_back(pts[p].v);
      }
    }
  }

 private:
  const Matrix& m_;
  std::vector<size_t> pos_;
};

// Prometheus' quantile over a set of values (sorted in place).
double Quantile(double q, std::vector<double>& values) {
  if (values.empty() || std::isnan(q)) return kNaN;
  if (q < 0) return -kInf;
  if (q > 1) return kInf;
  std::sort(values.begin(), values.end(), [](double a, double b) { return (std::isnan(a) && !std::isnan(b)) || a < b; });
  double n = static_cast<double>(values.size());
  double rank = q * (n - 1);
  double lower = std::max(0.0, std::floor(rank));
  double upper = std::min(n - 1, lower + 1);
  double weight = rank - std::floor(rank);
  return values[static_cast<size_t>(lower)] * (1 - weight) + values[static_cast<size_t>(upper)] * weight;
}

struct Bucket {
  double upper;
  double count;
};

// Prometheus 2.42's bucketQuantile over classic histogram buckets.
double BucketQuantile(double q, std::vector<Bucket>& buckets, bool fix_precision) {
  if (std::isnan(q)) return kNaN;
  if (q < 0) return -kInf;
  if (q > 1) return kInf;
  std::sort(buckets.begin(), buckets.end(), [](const Bucket& a, const Bucket& b) { return a.upper < b.upper; });
  if (buckets.empty() || !std::isinf(buckets.back().upper) || buckets.back().upper < 0) return kNaN;
  // Coalesce buckets with the same upper bound.
  size_t w = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (w > 0 && buckets[w - 1].upper == buckets[i].upper) {
      buckets[w - 1].count += buckets[i].count;
    } else {
      buckets[w++] = buckets[i];
    }
  }
  buckets.resize(w);
  if (fix_precision) {
    // 3.x: counts within a relative 1e-12 of the previous one are float noise.
    double prev = buckets[0].count;
    for (size_t i = 1; i < buckets.size(); ++i) {
      double delta = std::fabs(buckets[i].count - prev);
      if (delta == 0) continue;
      if (delta / buckets[i].count <= 1e-12) {
        buckets[i].count = prev;
      } else {
        prev = buckets[i].count;
      }
    }
  }
  double max = -kInf;
  for (Bucket& b : buckets) {
    if (b.count > max) {
      max = b.count;
    } else if (b.count < max) {
      b.count = max;
    }
  }
  if (buckets.size() < 2) return kNaN;
  double observations = buckets.back().count;
  if (observations == 0) return kNaN;
  double rank = q * observations;
  size_t b = 0;
  while (b < buckets.size() - 1 && !(buckets[b].count >= rank)) ++b;
  if (b == buckets.size() - 1) return buckets[buckets.size() - 2].upper;
  if (b == 0 && buckets[0].upper <= 0) return buckets[0].upper;
  double start = 0, end = buckets[b].upper, count = buckets[b].count;
  if (b > 0) {
    start = buckets[b - 1].upper;
    count -= buckets[b - 1].count;
    rank -= buckets[b - 1].count;
  }
  return start + (end - start) * (rank / count);
}

// Prometheus 3.x's histogram_fraction over classic buckets: the share of
// observations in [lower, upper], interpolating linearly inside a bucket. The
// first bucket starts at 0 when its upper bound is positive, else at -Inf;
// in a bucket with an infinite bound the observations sit at its finite end.
double BucketFraction(double lower, double upper, std::vector<Bucket>& buckets) {
  std::sort(buckets.begin(), buckets.end(), [](const Bucket& a, const Bucket& b) { return a.upper < b.upper; });
  if (buckets.empty() || !std::isinf(buckets.back().upper) || buckets.back().upper < 0) return kNaN;
  size_t w = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (w > 0 && buckets[w - 1].upper == buckets[i].upper) {
      buckets[w - 1].count += buckets[i].count;
    } else {
      buckets[w++] = buckets[i];
    }
  }
  buckets.resize(w);
  double max = -kInf;
  for (Bucket& b : buckets) {
    if (b.count > max) {
      max = b.count;
    } else if (b.count < max) {
      b.count = max;
    }
  }
  double total = buckets.back().count;
  if (total == 0 || std::isnan(lower) || std::isnan(upper)) return kNaN;
  if (lower >= upper) return 0;
  double rank = 0, lower_rank = 0, upper_rank = 0;
  bool lower_set = false, upper_set = false;
  for (size_t i = 0; i < buckets.size(); ++i) {
    double b_lower = i == 0 ? (buckets[0].upper > 0 ? 0 : -kInf) : buckets[i - 1].upper;
    double b_upper = buckets[i].upper;
    double count = buckets[i].count - (i == 0 ? 0 : buckets[i - 1].count);
    auto position = [&](double bound) {
      if (std::isinf(b_lower)) return rank + count;
      if (std::isinf(b_upper)) return rank;
      return rank + count * (bound - b_lower) / (b_upper - b_lower);
    };
    if (!lower_set && b_lower >= lower) {
      lower_rank = rank;
      lower_set = true;
    }
    if (!upper_set && b_lower >= upper) {
      upper_rank = rank;
      upper_set = true;
    }
    if (lower_set && upper_set) break;
    if (!lower_set && b_lower < lower && b_upper > lower) {
      lower_rank = position(lower);
      lower_set = true;
    }
    if (!upper_set && b_lower < upper && b_upper > upper) {
      upper_rank = position(upper);
      upper_set = true;
    }
    if (lower_set && upper_set) break;
    rank += count;
  }
  if (!lower_set || lower_rank > total) lower_rank = total;
  if (!upper_set || upper_rank > total) upper_rank = total;
  return (upper_rank - lower_rank) / total;
}

// Least squares over (t - intercept_time, v), Prometheus' linearRegression.
std::pair<double, double> LinearRegression(std::span<const Sample> s, int64_t intercept_time) {
  double n = 0, sum_x = 0, c_x = 0, sum_y = 0, c_y = 0, sum_xy = 0, c_xy = 0, sum_x2 = 0, c_x2 = 0;
  double init_y = s[0].v;
  bool const_y = true;
  for (size_t i = 0; i < s.size(); ++i) {
    if (const_y && i > 0 && s[i].v != init_y) const_y = false;
    n += 1;
    double x = static_cast<double>(s[i].t - intercept_time) / 1e3;
    KahanInc(x, sum_x, c_x);
    KahanInc(s[i].v, sum_y, c_y);
    KahanInc(x * s[i].v, sum_xy, c_xy);
    KahanInc(x * x, sum_x2, c_x2);
  }
  if (const_y) {
    if (std::isinf(init_y)) return {kNaN, kNaN};
    return {0, init_y};
  }
  sum_x += c_x;
  sum_y += c_y;
  sum_xy += c_xy;
  sum_x2 += c_x2;
  double cov_xy = sum_xy - sum_x * sum_y / n;
  double var_x = sum_x2 - sum_x * sum_x / n;
  double slope = cov_xy / var_x;
  double intercept = sum_y / n - slope * sum_x / n;
  return {slope, intercept};
}

// Civil date of a Unix time in seconds (UTC).
struct Civil {
  int64_t year;
  int month, day, hour, minute, wday, yday;
};

Civil ToCivil(int64_t secs) {
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  Civil c{};
  c.hour = static_cast<int>(rem / 3600);
  c.minute = static_cast<int>(rem % 3600 / 60);
  c.wday = static_cast<int>(((days % 7) + 11) % 7);  // 1970-01-01 was a Thursday (4)
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  c.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  c.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  c.year = c.month <= 2 ? y + 1 : y;
  static const int kCum[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  bool leap = (c.year % 4 == 0 && c.year % 100 != 0) || c.year % 400 == 0;
  c.yday = kCum[c.month - 1] + c.day + (leap && c.month > 2 ? 1 : 0);
  return c;
}

int DaysInMonth(int64_t year, int month) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// Go's regexp.Expand for label_replace's replacement template.
std::string ExpandTemplate(const re2::RE2& re, std::string_view tmpl, const std::vector<re2::StringPiece>& groups) {
  std::string out;
  const auto& named = re.NamedCapturingGroups();
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '$') {
      out += tmpl[i];
      continue;
    }
    if (i + 1 < tmpl.size() && tmpl[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool brace = j < tmpl.size() && tmpl[j] == '{';
    if (brace) ++j;
    size_t k = j;
    while (k < tmpl.size() && (std::isalnum(static_cast<unsigned char>(tmpl[k])) || tmpl[k] == '_')) ++k;
    if (k == j || (brace && (k >= tmpl.size() || tmpl[k] != '}'))) {
      out += '$';
      continue;
    }
    std::string name(tmpl.substr(j, k - j));
    i = brace ? k : k - 1;
    int index = -1;
    bool numeric = std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) {
      if (name.size() < 9) index = std::stoi(name);
    } else if (auto it = named.find(name); it != named.end()) {
      index = it->second;
    }
    if (index >= 0 && static_cast<size_t>(index) < groups.size() && groups[index].data() != nullptr) {
      out.append(groups[index].data(), groups[index].size());
    }
  }
  return out;
}

// The input of a range function: samples of each series (stale markers
// removed) and the window's length, offset and @.
struct RangeInput {
  Matrix series;
  int64_t range_ms = 0;
  int64_t offset_ms = 0;
  std::optional<int64_t> at;
  // `anchored` / `smoothed` selectors: each window also holds the samples
  // up to one lookback before its start (smoothed: and after its end).
  bool anchored = false;
  bool smoothed = false;
  int64_t lookback_ms = 0;
  // Pass the widened window as read (rate/increase/delta interpolate
  // themselves); otherwise it is first cut to [start, end] with synthetic
  // samples on both ends (ExtendWindow).
  bool raw_extended = false;
};

// Go's sort.Search: the first i in [0, n) with pred(i), or n.
template <typename P>
size_t SearchFirst(size_t n, P&& pred) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (pred(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

// The value at t on the line from a to b; a counter that reset between them
// is taken to restart from 0.
double Interpolate(const Sample& a, const Sample& b, int64_t t, bool counter) {
  double y1 = a.v, y2 = b.v;
  if (counter && y2 < y1) y1 = 0;
  return y1 + (y2 - y1) * static_cast<double>(t - a.t) / static_cast<double>(b.t - a.t);
}

// The boundary indices and values of an anchored/smoothed window (Prometheus'
// extendedRate / extendFloats): `first` is the last sample at or before
// start (else the first one), `last` the last sample (smoothed: the first at
// or after end). Empty when no sample lies after start.
struct ExtendedEnds {
  size_t first = 0, last = 0;
  double left = 0, right = 0;
};
std::optional<ExtendedEnds> FindExtendedEnds(std::span<const Sample> f, int64_t start, int64_t end, bool smoothed,
                                             bool counter) {
  if (f.empty()) return std::nullopt;
  ExtendedEnds e;
  e.last = f.size() - 1;
  size_t s = SearchFirst(e.last, [&](size_t i) { return f[i].t > start; });
  e.first = s == 0 ? 0 : s - 1;
  if (smoothed) e.last = SearchFirst(e.last, [&](size_t i) { return f[i].t >= end; });
  if (f[e.last].t <= start) return std::nullopt;
  if (f[e.first].t > end) return std::nullopt;  // smoothed: every sample after the range
  e.left = smoothed && f[e.first].t < start && e.first + 1 < f.size() ? Interpolate(f[e.first], f[e.first + 1], start, counter)
                                                                      : f[e.first].v;
  e.right = smoothed && e.last > 0 && f[e.last].t > end ? Interpolate(f[e.last - 1], f[e.last], end, counter) : f[e.last].v;
  return e;
}

// The window cut to [start, end] with a sample on each end (extendFloats).
std::vector<Sample> ExtendWindow(std::span<const Sample> f, int64_t start, int64_t end, bool smoothed) {
  std::vector<Sample> out;
  std::optional<ExtendedEnds> e = FindExtendedEnds(f, start, end, smoothed, false);
  if (!e) return out;
  size_t first = e->first, last = e->last;
  if (f[first].t <= start) ++first;
  bool drop_last = f[last].t >= end;
  out.reserve(last - first + 3);
  out.push_back({start, e->left});
  for (size_t i = first; i <= last && i < f.size(); ++i) {
    if (i == last && drop_last) break;
    out.push_back(f[i]);
  }
  out.push_back({end, e->right});
  return out;
}

// rate/increase/delta over an anchored or smoothed window: the difference of
// the end values plus counter resets in between, no extrapolation.
std::optional<double> ExtendedRate(std::span<const Sample> f, int64_t start, int64_t end, bool smoothed, bool counter) {
  std::optional<ExtendedEnds> e = FindExtendedEnds(f, start, end, smoothed, counter);
  if (!e) return std::nullopt;
  double result = e->right - e->left;
  if (counter) {
    size_t first = e->first, last = e->last;
    if (f[first].t <= start) ++first;
    bool drop_last = f[last].t >= end;
    double prev = e->left;
    for (size_t i = first; i <= last; ++i) {
      if (i == last && drop_last) break;
      if (f[i].v < prev) result += prev;
      prev = f[i].v;
    }
    if (e->right < prev) result += prev;
  }
  return result;
}

class Evaluator {
 public:
  bool Delayed() const { return ctx_.opts->delayed_name_removal; }
  bool TypeAndUnit() const { return ctx_.opts->type_and_unit_labels; }
  // Drops __name__ now, or (delayed removal) marks it to go at the end.
  void MarkDropName(Series& s) const {
    if (Delayed()) {
      s.drop_name = true;
    } else {
      s.labels = DropName(s.labels, TypeAndUnit());
    }
  }
  Evaluator(Context& ctx, int64_t start, int64_t end, int64_t interval)
      : ctx_(ctx), start_(start), end_(end), interval_(interval) {
    steps_ = static_cast<size_t>((end - start) / interval + 1);
  }

  size_t steps() const { return steps_; }
  int64_t Ts(size_t i) const { return start_ + static_cast<int64_t>(i) * interval_; }
  size_t StepOf(int64_t t) const { return static_cast<size_t>((t - start_) / interval_); }

  Result<Value> Eval(const Expr& e) {
    TELKIT_RETURN_IF_ERROR(Tick());
    switch (e.kind) {
      case NodeKind::kNumber: {
        Value v;
        v.type = ValueType::kScalar;
        v.sc.assign(steps_, static_cast<const NumberLiteral&>(e).value);
        return v;
      }
      case NodeKind::kString: {
        Value v;
        v.type = ValueType::kString;
        v.str = static_cast<const StringLiteral&>(e).value;
        return v;
      }
      case NodeKind::kParen: return Eval(*static_cast<const ParenExpr&>(e).expr);
      case NodeKind::kVectorSelector: return EvalVectorSelector(static_cast<const VectorSelector&>(e), false);
      case NodeKind::kMatrixSelector:
      case NodeKind::kSubquery: {
        // Only as the whole expression of an instant query.
        TELKIT_ASSIGN_OR_RETURN(RangeInput in, LoadRange(e));
        Value v;
        v.type = ValueType::kMatrix;
        int64_t ref = (in.at ? *in.at : start_) - in.offset_ms;
        for (Series& s : in.series) {
          Series o{std::move(s.labels), {}};
          if (in.anchored || in.smoothed) {
            std::vector<Sample> w;
            for (const Sample& p : s.points) {
              if (p.t > ref - in.range_ms - in.lookback_ms && p.t <= ref + (in.smoothed ? in.lookback_ms : 0)) {
                w.push_back(p);
              }
            }
            o.points = ExtendWindow(w, ref - in.range_ms, ref, in.smoothed);
          }
          for (const Sample& p : s.points) {
            if (in.anchored || in.smoothed) break;
            if (InWindow(p.t, ref, in.range_ms)) o.points.push_back(p);
          }
          if (!o.points.empty()) v.m.push_back(std::move(o));
        }
        return v;
      }
      case NodeKind::kUnary: {
        const auto& u = static_cast<const UnaryExpr&>(e);
        TELKIT_ASSIGN_OR_RETURN(Value v, Eval(*u.expr));
        if (!u.negate) return v;
        if (v.type == ValueType::kScalar) {
          for (double& x : v.sc) x = -x;
          return v;
        }
        for (Series& s : v.m) {
          MarkDropName(s);
          for (Sample& p : s.points) p.v = -p.v;
        }
        if (!Delayed() && ContainsSameLabelset(v.m)) {
          return EvalError("vector cannot contain metrics with the same labelset");
        }
        return v;
      }
      case NodeKind::kBinary: return EvalBinary(static_cast<const BinaryExpr&>(e));
      case NodeKind::kAggregate: return EvalAggregate(static_cast<const AggregateExpr&>(e));
      case NodeKind::kCall: return EvalCall(static_cast<const Call&>(e));
    }
    return InternalError("unknown expression node");
  }

 private:
  Status Tick() {
    if ((++ctx_.ticks & 255) == 0 && std::chrono::steady_clock::now() > ctx_.deadline) {
      return Status(StatusCode::kDeadlineExceeded, "query timed out in expression evaluation");
    }
    return OkStatus();
  }

  Status CheckSamples(size_t n) const {
    if (static_cast<int64_t>(n) > ctx_.opts->max_samples) {
      return ResourceExhaustedError("query processing would load too many samples into memory in query execution");
    }
    return OkStatus();
  }

  std::optional<int64_t> ResolveAt(const TimeModifiers& m) const {
    switch (m.at) {
      case AtKind::kNone: return std::nullopt;
      case AtKind::kTimestamp: return m.at_ms;
      case AtKind::kStart: return ctx_.query_start;
      case AtKind::kEnd: return ctx_.query_end;
    }
    return std::nullopt;
  }

  // Whether a sample at t lies in the window ending at ref.
  bool InWindow(int64_t t, int64_t ref, int64_t range) const {
    if (t > ref) return false;
    return ctx_.left_open() ? t > ref - range : t >= ref - range;
  }

  // `count`: whether every sample read counts against max_samples (range
  // selectors keep them all); vector selectors count the points they yield.
  Result<std::vector<SeriesSamples>> Select(int64_t mint, int64_t maxt, const std::vector<LabelMatcher>& matchers,
                                            bool count = true) {
    TELKIT_ASSIGN_OR_RETURN(std::vector<SeriesSamples> sel, ctx_.querier->Select(mint, maxt, matchers));
    if (count) {
      size_t total = 0;
      for (const auto& s : sel) total += s.samples.size();
      TELKIT_RETURN_IF_ERROR(CheckSamples(total));
    }
    return sel;
  }

  Result<Value> EvalVectorSelector(const VectorSelector& vs, bool sample_time) {
    std::optional<int64_t> at = ResolveAt(vs.mod);
    int64_t first_ref = (at ? *at : start_) - vs.mod.offset_ms;
    int64_t last_ref = (at ? *at : end_) - vs.mod.offset_ms;
    int64_t lookback = ctx_.opts->lookback_delta_ms;
    const bool smoothed = vs.mod.smoothed;
    TELKIT_ASSIGN_OR_RETURN(std::vector<SeriesSamples> sel,
                            Select(first_ref - lookback + (ctx_.left_open() ? 1 : 0),
                                   last_ref + (smoothed ? lookback : 0), vs.matchers, false));
    Value v;
    v.type = ValueType::kVector;
    v.m.reserve(sel.size());
    size_t points = 0;
    for (SeriesSamples& s : sel) {
      TELKIT_RETURN_IF_ERROR(Tick());
      Series o{std::move(s.labels), {}};
      const auto& smp = s.samples;
      size_t j = 0;
      for (size_t i = 0; i < steps_; ++i) {
        int64_t ts = Ts(i);
        int64_t ref = (at ? *at : ts) - vs.mod.offset_ms;
        while (j < smp.size() && smp[j].t <= ref) ++j;
        if (j == 0) continue;
        const Sample& p = smp[j - 1];
        if (ctx_.left_open() ? p.t <= ref - lookback : p.t < ref - lookback) continue;
        if (IsStaleNaN(p.v)) continue;
        if (smoothed && !sample_time && p.t < ref && j < smp.size() && smp[j].t <= ref + lookback &&
            !IsStaleNaN(smp[j].v)) {
          // `smoothed`: the value on the line to the next sample.
          o.points.push_back({ts, Interpolate(p, smp[j], ref, false)});
          continue;
        }
        o.points.push_back({ts, sample_time ? static_cast<double>(p.t) / 1000.0 : p.v});
      }
      if (!o.points.empty()) {
        points += o.points.size();
        v.m.push_back(std::move(o));
      }
    }
    TELKIT_RETURN_IF_ERROR(CheckSamples(points / steps_));
    return v;
  }

  // The samples a matrix selector or subquery provides for all steps.
  Result<RangeInput> LoadRange(const Expr& e) {
    RangeInput in;
    if (e.kind == NodeKind::kMatrixSelector) {
      const auto& ms = static_cast<const MatrixSelector&>(e);
      in.range_ms = ms.range_ms;
      in.offset_ms = ms.vs->mod.offset_ms;
      in.at = ResolveAt(ms.vs->mod);
      int64_t first_ref = (in.at ? *in.at : start_) - in.offset_ms;
      int64_t last_ref = (in.at ? *in.at : end_) - in.offset_ms;
      in.anchored = ms.vs->mod.anchored;
      in.smoothed = ms.vs->mod.smoothed;
      if (in.anchored || in.smoothed) in.lookback_ms = ctx_.opts->lookback_delta_ms;
      TELKIT_ASSIGN_OR_RETURN(
          std::vector<SeriesSamples> sel,
          Select(first_ref - in.range_ms - in.lookback_ms + (ctx_.left_open() ? 1 : 0),
                 last_ref + (in.smoothed ? in.lookback_ms : 0), ms.vs->matchers));
      in.series.reserve(sel.size());
      for (SeriesSamples& s : sel) {
        Series o{std::move(s.labels), std::move(s.samples)};
        std::erase_if(o.points, [](const Sample& p) { return IsStaleNaN(p.v); });
        if (!o.points.empty()) in.series.push_back(std::move(o));
      }
      return in;
    }
    const auto& sq = static_cast<const SubqueryExpr&>(e);
    in.range_ms = sq.range_ms;
    in.offset_ms = sq.mod.offset_ms;
    in.at = ResolveAt(sq.mod);
    int64_t first_ref = (in.at ? *in.at : start_) - in.offset_ms;
    int64_t last_ref = (in.at ? *in.at : end_) - in.offset_ms;
    int64_t step = sq.step_ms > 0 ? sq.step_ms : ctx_.opts->default_subquery_step_ms;
    int64_t lo = first_ref - in.range_ms;
    int64_t inner_start = step * (lo / step);  // Go's truncating division, as Prometheus
    if (inner_start < lo || (ctx_.left_open() && inner_start == lo)) inner_start += step;
    if (inner_start > last_ref) return in;
    if ((last_ref - inner_start) / step > ctx_.opts->max_samples) {
      return ResourceExhaustedError("query processing would load too many samples into memory in query execution");
    }
    Evaluator inner(ctx_, inner_start, last_ref, step);
    TELKIT_ASSIGN_OR_RETURN(Value v, inner.Eval(*sq.expr));
    if (v.type == ValueType::kScalar) {
      Series s;
      for (size_t i = 0; i < v.sc.size(); ++i) s.points.push_back({inner.Ts(i), v.sc[i]});
      in.series.push_back(std::move(s));
    } else {
      in.series = std::move(v.m);
    }
    return in;
  }

  // Runs `f(window, step, eval_time, out)` for every series and step whose
  // window has samples.
  template <typename F>
  Result<Matrix> SlideWindows(const RangeInput& in, bool drop_name, F&& f) {
    Matrix out;
    out.reserve(in.series.size());
    for (const Series& s : in.series) {
      TELKIT_RETURN_IF_ERROR(Tick());
      Series o{drop_name && !Delayed() ? DropName(s.labels, TypeAndUnit()) : s.labels, {}, s.drop_name || (drop_name && Delayed())};
      const auto& pts = s.points;
      size_t lo = 0, hi = 0;
      const bool extended = in.anchored || in.smoothed;
      std::vector<Sample> ext;
      for (size_t i = 0; i < steps_; ++i) {
        int64_t ts = Ts(i);
        int64_t ref = (in.at ? *in.at : ts) - in.offset_ms;
        int64_t lower = ref - in.range_ms - in.lookback_ms;
        int64_t upper = ref + (in.smoothed ? in.lookback_ms : 0);
        while (hi < pts.size() && pts[hi].t <= upper) ++hi;
        if (lo > hi) lo = hi;
        while (lo < hi && (ctx_.left_open() ? pts[lo].t <= lower : pts[lo].t < lower)) ++lo;
        if (lo == hi) continue;
        TELKIT_RETURN_IF_ERROR(CheckSamples(hi - lo));
        std::span<const Sample> window(pts.data() + lo, hi - lo);
        if (extended && !in.raw_extended) {
          ext = ExtendWindow(window, ref - in.range_ms, ref, in.smoothed);
          if (ext.empty()) continue;
          window = ext;
        }
        double v = 0;
        TELKIT_ASSIGN_OR_RETURN(bool keep, f(window, i, ts, ref, v));
        if (keep) o.points.push_back({ts, v});
      }
      if (!o.points.empty()) out.push_back(std::move(o));
    }
    if (drop_name && !Delayed() && ContainsSameLabelset(out)) {
      return EvalError("vector cannot contain metrics with the same labelset");
    }
    return out;
  }

  // ---- functions ----------------------------------------------------------

  static Labels AbsentLabels(const Expr* arg) {
    arg = Unparen(arg);
    const std::vector<LabelMatcher>* ms = nullptr;
    if (arg->kind == NodeKind::kVectorSelector) ms = &static_cast<const VectorSelector*>(arg)->matchers;
    if (arg->kind == NodeKind::kMatrixSelector) ms = &static_cast<const MatrixSelector*>(arg)->vs->matchers;
    Labels out;
    if (ms == nullptr) return out;
    std::vector<std::string> empty;
    for (const LabelMatcher& m : *ms) {
      if (m.name() == kMetricNameLabel) continue;
      if (m.type() == MatchType::kEqual && !out.Has(m.name())) {
        out.Set(m.name(), m.value());
      } else {
        empty.push_back(m.name());
      }
    }
    for (const std::string& n : empty) out.Remove(n);
    return out;
  }

  Result<Value> EvalRangeFunction(const Call& c, std::string_view name) {
    size_t mi = 0;
    while (c.func->arg_types[mi] != ValueType::kMatrix) ++mi;
    // Scalar arguments (quantile_over_time's φ, predict_linear's t, holt_winters' factors).
    std::vector<Value> scalars(c.args.size());
    for (size_t i = 0; i < c.args.size(); ++i) {
      if (i == mi) continue;
      TELKIT_ASSIGN_OR_RETURN(scalars[i], Eval(*c.args[i]));
    }
    const Expr* arg = Unparen(c.args[mi].get());
    if (arg->kind == NodeKind::kMatrixSelector) {
      const TimeModifiers& mod = static_cast<const MatrixSelector*>(arg)->vs->mod;
      if (mod.smoothed && name != "delta" && name != "increase" && name != "rate") {
        return EvalError("smoothed modifier can only be used with: delta, increase, rate - not with " + std::string(name));
      }
      if (mod.anchored && name != "changes" && name != "delta" && name != "increase" && name != "rate" &&
          name != "resets") {
        return EvalError("anchored modifier can only be used with: changes, delta, increase, rate, resets - not with " +
                         std::string(name));
      }
    }
    TELKIT_ASSIGN_OR_RETURN(RangeInput in, LoadRange(*arg));
    in.raw_extended = name == "rate" || name == "increase" || name == "delta";
    Value out;
    out.type = ValueType::kVector;
    using Span = std::span<const Sample>;
    auto run = [&](bool drop, auto f) -> Status {
      TELKIT_ASSIGN_OR_RETURN(out.m, SlideWindows(in, drop, f));
      return OkStatus();
    };
    const double range_s = static_cast<double>(in.range_ms) / 1000.0;
    const bool prom3 = ctx_.opts->compat == Compat::kPrometheus3;
    auto extrapolated = [&](bool is_counter, bool is_rate) {
      return [&, is_counter, is_rate](Span s, size_t, int64_t, int64_t ref, double& v) -> Result<bool> {
        if (in.anchored || in.smoothed) {
          std::optional<double> r = ExtendedRate(s, ref - in.range_ms, ref, in.smoothed, is_counter);
          if (!r) return false;
          v = is_rate ? *r / range_s : *r;
          return true;
        }
        if (s.size() < 2) return false;
        int64_t range_start = ref - in.range_ms, range_end = ref;
        double result = s.back().v - s.front().v;
        if (is_counter) {
          double last = 0;
          for (const Sample& p : s) {
            if (p.v < last) result += last;
            last = p.v;
          }
        }
        double to_start = static_cast<double>(s.front().t - range_start) / 1000;
        double to_end = static_cast<double>(range_end - s.back().t) / 1000;
        double sampled = static_cast<double>(s.back().t - s.front().t) / 1000;
        double avg_between = sampled / static_cast<double>(s.size() - 1);
        double threshold = avg_between * 1.1;
        double interval = sampled;
        if (prom3) {
          // 3.x: the zero cutoff applies after the half-interval limit.
          if (to_start >= threshold) to_start = avg_between / 2;
          if (is_counter && result > 0 && s.front().v >= 0) {
            double to_zero = sampled * (s.front().v / result);
            if (to_zero < to_start) to_start = to_zero;
          }
          if (to_end >= threshold) to_end = avg_between / 2;
          interval += to_start + to_end;
        } else {
          if (is_counter && result > 0 && s.front().v >= 0) {
            double to_zero = sampled * (s.front().v / result);
            if (to_zero < to_start) to_start = to_zero;
          }
          interval += to_start < threshold ? to_start : avg_between / 2;
          interval += to_end < threshold ? to_end : avg_between / 2;
        }
        result = result * (interval / sampled);
        if (is_rate) result /= range_s;
        v = result;
        return true;
      };
    };
    if (name == "rate") {
      TELKIT_RETURN_IF_ERROR(run(true, extrapolated(true, true)));
    } else if (name == "increase") {
      TELKIT_RETURN_IF_ERROR(run(true, extrapolated(true, false)));
    } else if (name == "delta") {
      TELKIT_RETURN_IF_ERROR(run(true, extrapolated(false, false)));
    } else if (name == "irate" || name == "idelta") {
      bool is_rate = name == "irate";
      TELKIT_RETURN_IF_ERROR(run(true, [is_rate](Span s, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        if (s.size() < 2) return false;
        const Sample& last = s[s.size() - 1];
        const Sample& prev = s[s.size() - 2];
        double r = is_rate && last.v < prev.v ? last.v : last.v - prev.v;
        int64_t dt = last.t - prev.t;
        if (dt == 0) return false;
        if (is_rate) r /= static_cast<double>(dt) / 1000;
        v = r;
        return true;
      }));
    } else if (name == "deriv") {
      TELKIT_RETURN_IF_ERROR(run(true, [](Span s, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        if (s.size() < 2) return false;
        v = LinearRegression(s, s[0].t).first;
        return true;
      }));
    } else if (name == "predict_linear") {
      const auto& dur = scalars[1].sc;
      TELKIT_RETURN_IF_ERROR(run(true, [&](Span s, size_t i, int64_t ts, int64_t, double& v) -> Result<bool> {
        if (s.size() < 2) return false;
        auto [slope, intercept] = LinearRegression(s, ts);
        v = slope * dur[i] + intercept;
        return true;
      }));
    } else if (name == "holt_winters" || name == "double_exponential_smoothing") {
      const auto& sfs = scalars[1].sc;
      const auto& tfs = scalars[2].sc;
      TELKIT_RETURN_IF_ERROR(run(true, [&](Span s, size_t i, int64_t, int64_t, double& v) -> Result<bool> {
        double sf = sfs[i], tf = tfs[i];
        if (!(sf > 0 && sf < 1)) {
          return EvalError("invalid smoothing factor. Expected: 0 < sf < 1, got: " + FormatFixed6(sf));
        }
        if (!(tf > 0 && tf < 1)) {
          return EvalError("invalid trend factor. Expected: 0 < tf < 1, got: " + FormatFixed6(tf));
        }
        if (s.size() < 2) return false;
        double s0 = 0, s1 = s[0].v, b = s[1].v - s[0].v;
        for (size_t k = 1; k < s.size(); ++k) {
          double x = sf * s[k].v;
          if (k > 1) b = tf * (s1 - s0) + (1 - tf) * b;
          double y = (1 - sf) * (s1 + b);
          s0 = s1;
          s1 = x + y;
        }
        v = s1;
        return true;
      }));
    } else if (name == "changes" || name == "resets") {
      bool changes = name == "changes";
      TELKIT_RETURN_IF_ERROR(run(true, [changes](Span s, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        double n = 0, prev = s[0].v;
        for (size_t k = 1; k < s.size(); ++k) {
          double cur = s[k].v;
          if (changes ? (cur != prev && !(std::isnan(cur) && std::isnan(prev))) : cur < prev) n += 1;
          prev = cur;
        }
        v = n;
        return true;
      }));
    } else if (name == "avg_over_time" && prom3) {
      TELKIT_RETURN_IF_ERROR(run(true, [](Span s, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        v = KahanMean(s.size(), [&](size_t k) { return s[k].v; });
        return true;
      }));
    } else if (name == "avg_over_time") {
      TELKIT_RETURN_IF_ERROR(run(true, [](Span s, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        double mean = 0, count = 0, c = 0;
        for (const Sample& p : s) {
          count++;
          if (std::isinf(mean)) {
            if (std::isinf(p.v) && (mean > 0) == (p.v > 0)) continue;
            if (!std::isinf(p.v) && !std::isnan(p.v)) continue;
          }
          KahanInc(p.v / count - mean / count, mean, c);
        }
        v = std::isinf(mean) ? mean : mean + c;
        return true;
      }));
    } else if (name == "sum_over_time") {
      TELKIT_RETURN_IF_ERROR(run(true, [](Span s, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        double sum = 0, c = 0;
        for (const Sample& p : s) KahanInc(p.v, sum, c);
        v = std::isinf(sum) ? sum : sum + c;
        return true;
      }));
    } else if (name == "count_over_time") {
      TELKIT_RETURN_IF_ERROR(run(true, [](Span s, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        v = static_cast<double>(s.size());
        return true;
      }));
    } else if (name == "min_over_time" || name == "max_over_time") {
      bool is_max = name == "max_over_time";
      TELKIT_RETURN_IF_ERROR(run(true, [is_max](Span s, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        double m = s[0].v;
        for (const Sample& p : s) {
          if ((is_max ? p.v > m : p.v < m) || std::isnan(m)) m = p.v;
        }
        v = m;
        return true;
      }));
    } else if (name == "stddev_over_time" || name == "stdvar_over_time") {
      bool dev = name == "stddev_over_time";
      TELKIT_RETURN_IF_ERROR(run(true, [dev](Span s, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        double count = 0, mean = 0, c_mean = 0, aux = 0, c_aux = 0;
        for (const Sample& p : s) {
          count++;
          double delta = p.v - (mean + c_mean);
          KahanInc(delta / count, mean, c_mean);
          KahanInc(delta * (p.v - (mean + c_mean)), aux, c_aux);
        }
        double var = (aux + c_aux) / count;
        v = dev ? std::sqrt(var) : var;
        return true;
      }));
    } else if (name == "quantile_over_time") {
      const auto& qs = scalars[0].sc;
      std::vector<double> buf;
      TELKIT_RETURN_IF_ERROR(run(true, [&](Span s, size_t i, int64_t, int64_t, double& v) -> Result<bool> {
        buf.clear();
        for (const Sample& p : s) buf.push_back(p.v);
        v = Quantile(qs[i], buf);
        return true;
      }));
    } else if (name == "mad_over_time") {
      std::vector<double> buf;
      TELKIT_RETURN_IF_ERROR(run(true, [&](Span s, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        buf.clear();
        for (const Sample& p : s) {
          if (std::isnan(p.v)) {
            v = kNaN;
            return true;
          }
          buf.push_back(p.v);
        }
        double median = Quantile(0.5, buf);
        for (double& x : buf) x = std::fabs(x - median);
        v = Quantile(0.5, buf);
        return true;
      }));
    } else if (name == "last_over_time" || name == "first_over_time") {
      bool last = name == "last_over_time";
      TELKIT_RETURN_IF_ERROR(run(false, [last](Span s, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        v = last ? s.back().v : s.front().v;
        return true;
      }));
    } else if (name.starts_with("ts_of_")) {
      std::string_view which = name.substr(6);
      TELKIT_RETURN_IF_ERROR(run(true, [which](Span s, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        size_t k = 0;
        if (which == "last_over_time") {
          k = s.size() - 1;
        } else if (which == "min_over_time" || which == "max_over_time") {
          bool is_max = which == "max_over_time";
          for (size_t j = 1; j < s.size(); ++j) {
            if ((is_max ? s[j].v >= s[k].v : s[j].v <= s[k].v) || std::isnan(s[k].v)) k = j;
          }
        }
        v = static_cast<double>(s[k].t) / 1000.0;
        return true;
      }));
    } else if (name == "present_over_time") {
      TELKIT_RETURN_IF_ERROR(run(true, [](Span, size_t, int64_t, int64_t, double& v) -> Result<bool> {
        v = 1;
        return true;
      }));
    } else if (name == "absent_over_time") {
      std::vector<bool> present(steps_, false);
      TELKIT_ASSIGN_OR_RETURN(Matrix m, SlideWindows(in, false, [&](Span, size_t i, int64_t, int64_t, double& v) -> Result<bool> {
        present[i] = true;
        v = 1;
        return false;
      }));
      (void)m;
      Series s{AbsentLabels(arg), {}};
      for (size_t i = 0; i < steps_; ++i) {
        if (!present[i]) s.points.push_back({Ts(i), 1});
      }
      if (!s.points.empty()) out.m.push_back(std::move(s));
    } else {
      return UnimplementedError("function \"" + std::string(name) + "\" is not supported");
    }
    return out;
  }

  static std::string FormatFixed6(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%f", v);
    return buf;
  }

  // Applies f(value, step) to every point of a vector; drops points where f
  // returns nullopt.
  template <typename F>
  Result<Value> MapVector(Value v, bool drop_name, F&& f) {
    for (Series& s : v.m) {
      if (drop_name) MarkDropName(s);
      size_t w = 0;
      for (const Sample& p : s.points) {
        std::optional<double> r = f(p.v, StepOf(p.t));
        if (r) s.points[w++] = {p.t, *r};
      }
      s.points.resize(w);
    }
    std::erase_if(v.m, [](const Series& s) { return s.points.empty(); });
    if (drop_name && !Delayed()) TELKIT_RETURN_IF_ERROR(MergeSameLabels(v.m));
    return v;
  }

  Value ScalarValue(std::vector<double> sc) {
    Value v;
    v.type = ValueType::kScalar;
    v.sc = std::move(sc);
    return v;
  }

  // The time at which info() reads the info series: the @ and offsets on
  // the path to the base expression's first selector (as Prometheus).
  TimeModifiers InfoTime(const Expr* e) const {
    TimeModifiers out;
    while (e != nullptr) {
      const TimeModifiers* m = nullptr;
      const Expr* next = nullptr;
      switch (e->kind) {
        case NodeKind::kVectorSelector: m = &static_cast<const VectorSelector*>(e)->mod; break;
        case NodeKind::kMatrixSelector: m = &static_cast<const MatrixSelector*>(e)->vs->mod; break;
        case NodeKind::kSubquery:
          m = &static_cast<const SubqueryExpr*>(e)->mod;
          next = static_cast<const SubqueryExpr*>(e)->expr.get();
          break;
        case NodeKind::kParen: next = static_cast<const ParenExpr*>(e)->expr.get(); break;
        case NodeKind::kUnary: next = static_cast<const UnaryExpr*>(e)->expr.get(); break;
        case NodeKind::kCall: {
          const auto* c = static_cast<const Call*>(e);
          for (const ExprPtr& a : c->args) {
            ValueType t = a->Type();
            if (t == ValueType::kVector || t == ValueType::kMatrix) {
              next = a.get();
              break;
            }
          }
          break;
        }
        case NodeKind::kAggregate: next = static_cast<const AggregateExpr*>(e)->expr.get(); break;
        case NodeKind::kBinary: next = static_cast<const BinaryExpr*>(e)->lhs.get(); break;
        default: break;
      }
      if (m != nullptr) {
        if (std::optional<int64_t> at = ResolveAt(*m)) {
          out.at = AtKind::kTimestamp;
          out.at_ms = *at;
          out.offset_ms = 0;
        }
        out.offset_ms += m->offset_ms;
      }
      e = next;
    }
    return out;
  }

  // info(v, {data matchers}): adds the data labels of the info series
  // (default target_info) that share v's identifying labels (instance, job),
  // step by step; the latest info sample wins.
  Result<Value> EvalInfo(const Call& c) {
    TELKIT_ASSIGN_OR_RETURN(Value base, Eval(*c.args[0]));
    std::vector<LabelMatcher> name_ms, data_ms;
    if (c.args.size() > 1) {
      const Expr* sel = Unparen(c.args[1].get());
      if (sel->kind != NodeKind::kVectorSelector) return EvalError("expected label selectors as the second argument to info function");
      for (const LabelMatcher& m : static_cast<const VectorSelector*>(sel)->matchers) {
        (m.name() == kMetricNameLabel ? name_ms : data_ms).push_back(m);
      }
    }
    bool positive = false;
    for (const LabelMatcher& m : name_ms) {
      positive = positive || m.type() == MatchType::kEqual || m.type() == MatchType::kRegexMatch;
    }
    if (name_ms.empty()) {
      TELKIT_ASSIGN_OR_RETURN(LabelMatcher m, LabelMatcher::Make(MatchType::kEqual, std::string(kMetricNameLabel), "target_info"));
      name_ms.push_back(std::move(m));
    } else if (!positive) {
      TELKIT_ASSIGN_OR_RETURN(LabelMatcher m, LabelMatcher::Make(MatchType::kRegexMatch, std::string(kMetricNameLabel), ".+_info"));
      name_ms.push_back(std::move(m));
    }
    static const std::vector<std::string> kIdentifying = {"instance", "job"};
    auto is_info_name = [&](const Labels& l) {
      if (!l.Has(kMetricNameLabel)) return false;
      for (const LabelMatcher& m : name_ms) {
        if (!m.Matches(l.Get(kMetricNameLabel))) return false;
      }
      return true;
    };
    bool data_needs_match = false;
    for (const LabelMatcher& m : data_ms) data_needs_match = data_needs_match || !m.MatchesEmpty();
    // Info series: the name and data matchers, evaluated like a selector.
    VectorSelector vs;
    vs.mod = InfoTime(c.args[0].get());
    vs.matchers = name_ms;
    for (const LabelMatcher& m : data_ms) vs.matchers.push_back(m);
    TELKIT_ASSIGN_OR_RETURN(Value info, EvalVectorSelector(vs, false));
    TELKIT_ASSIGN_OR_RETURN(Value info_ts, EvalVectorSelector(vs, true));
    std::unordered_map<uint64_t, std::vector<size_t>> by_sig;
    for (size_t s = 0; s < info.m.size(); ++s) by_sig[SignatureOf(info.m[s].labels, kIdentifying, true)].push_back(s);
    std::vector<std::string> include;
    for (const LabelMatcher& m : data_ms) include.push_back(m.name());
    OutBuilder out;
    StepCursor ic(info.m), tc(info_ts.m);
    std::vector<uint32_t> ii, ti;
    std::vector<double> iv, tv;
    StepCursor bc(base.m);
    std::vector<uint32_t> bi;
    std::vector<double> bv;
    std::unordered_map<uint64_t, size_t> best;  // info group (name + sig) -> info index
    for (size_t i = 0; i < steps_; ++i) {
      TELKIT_RETURN_IF_ERROR(Tick());
      int64_t ts = Ts(i);
      bc.At(ts, bi, bv);
      if (bi.empty()) continue;
      ic.At(ts, ii, iv);
      tc.At(ts, ti, tv);
      std::unordered_map<uint32_t, double> sample_t;
      for (size_t k = 0; k < ti.size(); ++k) sample_t[ti[k]] = tv[k];
      std::unordered_set<uint32_t> present(ii.begin(), ii.end());
      for (size_t k = 0; k < bi.size(); ++k) {
        const Series& b = base.m[bi[k]];
        if (is_info_name(b.labels)) {
          TELKIT_RETURN_IF_ERROR(out.Add(out.Id(b.labels, b.drop_name), ts, bv[k]));
          continue;
        }
        uint64_t sig = SignatureOf(b.labels, kIdentifying, true);
        Labels result = b.labels;
        bool found = false;
        auto it = by_sig.find(sig);
        if (it != by_sig.end()) {
          // The latest sample per info metric name.
          std::map<std::string, std::pair<double, size_t>> pick;
          for (size_t s : it->second) {
            if (!present.count(static_cast<uint32_t>(s))) continue;
            double t = sample_t.count(static_cast<uint32_t>(s)) ? sample_t[static_cast<uint32_t>(s)] : 0;
            std::string n(info.m[s].labels.Get(kMetricNameLabel));
            auto p = pick.find(n);
            if (p == pick.end() || t > p->second.first) pick[n] = {t, s};
          }
          for (const auto& [n, p] : pick) {
            found = true;
            for (const Label& lb : info.m[p.second].labels) {
              if (lb.name == kMetricNameLabel || lb.name == "instance" || lb.name == "job") continue;
              if (!include.empty() && std::find(include.begin(), include.end(), lb.name) == include.end()) continue;
              if (b.labels.Has(lb.name)) continue;
              if (result.Has(lb.name) && result.Get(lb.name) != lb.value) {
                return EvalError("conflicting label \"" + lb.name + "\" in info series: \"" +
                                 std::string(result.Get(lb.name)) + "\" and \"" + lb.value + "\"");
              }
              result.Set(lb.name, lb.value);
            }
          }
        }
        if (!found && data_needs_match) continue;
        TELKIT_RETURN_IF_ERROR(out.Add(out.Id(result, b.drop_name), ts, bv[k]));
      }
    }
    Value v;
    v.type = ValueType::kVector;
    v.m = out.Take();
    return v;
  }

  Result<Value> EvalCall(const Call& c) {
    std::string_view name = c.func->name;
    for (ValueType t : c.func->arg_types) {
      if (t == ValueType::kMatrix) return EvalRangeFunction(c, name);
    if (name == "info") return EvalInfo(c);
    }
    if (name == "time") {
      std::vector<double> sc(steps_);
      for (size_t i = 0; i < steps_; ++i) sc[i] = static_cast<double>(Ts(i)) / 1000.0;
      return ScalarValue(std::move(sc));
    }
    if (name == "start" || name == "end" || name == "step" || name == "range") {
      int64_t ms = name == "start" ? ctx_.query_start
                   : name == "end" ? ctx_.query_end
                   : name == "step" ? ctx_.query_step
                                    : ctx_.query_end - ctx_.query_start;
      return ScalarValue(std::vector<double>(steps_, static_cast<double>(ms) / 1000.0));
    }
    if (name == "pi") return ScalarValue(std::vector<double>(steps_, M_PI));
    if (name == "timestamp") {
      const Expr* arg = Unparen(c.args[0].get());
      if (arg->kind == NodeKind::kVectorSelector) {
        TELKIT_ASSIGN_OR_RETURN(Value v, EvalVectorSelector(*static_cast<const VectorSelector*>(arg), true));
        return MapVector(std::move(v), true, [](double x, size_t) { return std::optional<double>(x); });
      }
      TELKIT_ASSIGN_OR_RETURN(Value v, Eval(*arg));
      return MapVector(std::move(v), true,
                       [this](double, size_t i) { return std::optional<double>(static_cast<double>(Ts(i)) / 1000.0); });
    }
    // Evaluate the arguments.
    std::vector<Value> args;
    args.reserve(c.args.size());
    for (const ExprPtr& a : c.args) {
      TELKIT_ASSIGN_OR_RETURN(Value v, Eval(*a));
      args.push_back(std::move(v));
    }
    if (name == "min_of" || name == "max_of") {
      bool is_min = name == "min_of";
      std::vector<double> sc(steps_);
      for (size_t i = 0; i < steps_; ++i) {
        sc[i] = is_min ? GoMin(args[0].sc[i], args[1].sc[i]) : GoMax(args[0].sc[i], args[1].sc[i]);
      }
      return ScalarValue(std::move(sc));
    }
    if (name == "histogram_quantiles") {
      // 3.x: one series per group and quantile, the quantile in a label.
      const std::string& label = args[1].str;
      if (!IsValidLabelName(label)) return EvalError("invalid label name \"" + label + "\"");
      Value out;
      out.type = ValueType::kVector;
      for (size_t a = 2; a < args.size(); ++a) {
        const auto& qs = args[a].sc;
        TELKIT_ASSIGN_OR_RETURN(Value one, ClassicHistogram(args[0], [&](size_t i, std::vector<Bucket>& b) {
                                  return BucketQuantile(qs[i], b, true);
                                }));
        for (Series& s : one.m) {
          // The quantile as its label value: 0.25, and 1.0 for whole numbers.
          std::string q = FormatValue(qs[0]);
          if (q.find_first_of(".eIN") == std::string::npos) q += ".0";
          s.labels.Set(label, q);
          out.m.push_back(std::move(s));
        }
      }
      TELKIT_RETURN_IF_ERROR(MergeSameLabels(out.m));
      return out;
    }
    if (name == "vector") {
      Value v;
      v.type = ValueType::kVector;
      Series s;
      for (size_t i = 0; i < steps_; ++i) s.points.push_back({Ts(i), args[0].sc[i]});
      v.m.push_back(std::move(s));
      return v;
    }
    if (name == "scalar") {
      std::vector<double> sc(steps_, kNaN);
      std::vector<int> count(steps_, 0);
      for (const Series& s : args[0].m) {
        for (const Sample& p : s.points) {
          size_t i = StepOf(p.t);
          if (++count[i] == 1) sc[i] = p.v;
        }
      }
      for (size_t i = 0; i < steps_; ++i) {
        if (count[i] != 1) sc[i] = kNaN;
      }
      return ScalarValue(std::move(sc));
    }
    if (name == "absent") {
      std::vector<bool> present(steps_, false);
      for (const Series& s : args[0].m) {
        for (const Sample& p : s.points) present[StepOf(p.t)] = true;
      }
      Value v;
      v.type = ValueType::kVector;
      Series s{AbsentLabels(c.args[0].get()), {}};
      for (size_t i = 0; i < steps_; ++i) {
        if (!present[i]) s.points.push_back({Ts(i), 1});
      }
      if (!s.points.empty()) v.m.push_back(std::move(s));
      return v;
    }
    if (name == "sort" || name == "sort_desc") {
      bool desc = name == "sort_desc";
      if (steps_ == 1) {
        std::stable_sort(args[0].m.begin(), args[0].m.end(), [desc](const Series& a, const Series& b) {
          double x = a.points[0].v, y = b.points[0].v;
          if (std::isnan(x) || std::isnan(y)) return !std::isnan(x) && std::isnan(y);
          return desc ? x > y : x < y;
        });
      }
      return std::move(args[0]);
    }
    if (name == "sort_by_label" || name == "sort_by_label_desc") {
      bool desc = name == "sort_by_label_desc";
      std::vector<std::string> keys;
      for (size_t i = 1; i < args.size(); ++i) keys.push_back(args[i].str);
      std::stable_sort(args[0].m.begin(), args[0].m.end(), [&](const Series& a, const Series& b) {
        for (const std::string& k : keys) {
          int cmp = NaturalCompare(a.labels.Get(k), b.labels.Get(k));
          if (cmp != 0) return desc ? cmp > 0 : cmp < 0;
        }
        return desc ? b.labels < a.labels : a.labels < b.labels;
      });
      return std::move(args[0]);
    }
    if (name == "label_replace") return LabelReplace(std::move(args));
    if (name == "label_join") return LabelJoin(std::move(args));
    if (name == "histogram_quantile") {
      bool fix = ctx_.opts->compat == Compat::kPrometheus3;
      const auto& qs = args[0].sc;
      return ClassicHistogram(args[1], [&](size_t i, std::vector<Bucket>& b) { return BucketQuantile(qs[i], b, fix); });
    }
    if (name == "histogram_fraction" && ctx_.opts->compat == Compat::kPrometheus3) {
      const auto& lo = args[0].sc;
      const auto& hi = args[1].sc;
      return ClassicHistogram(args[2], [&](size_t i, std::vector<Bucket>& b) { return BucketFraction(lo[i], hi[i], b); });
    }
    if (name == "histogram_fraction" || name == "histogram_count" || name == "histogram_sum" ||
        name == "histogram_avg" || name == "histogram_stddev" || name == "histogram_stdvar") {
      // Native-histogram functions: float series yield nothing.
      Value v;
      v.type = ValueType::kVector;
      return v;
    }
    if (name == "clamp") {
      const auto& lo = args[1].sc;
      const auto& hi = args[2].sc;
      return MapVector(std::move(args[0]), true, [&](double x, size_t i) -> std::optional<double> {
        if (hi[i] < lo[i]) return std::nullopt;
        return GoMax(lo[i], GoMin(hi[i], x));
      });
    }
    if (name == "clamp_min" || name == "clamp_max") {
      const auto& b = args[1].sc;
      bool is_min = name == "clamp_min";
      return MapVector(std::move(args[0]), true, [&](double x, size_t i) -> std::optional<double> {
        return is_min ? GoMax(b[i], x) : GoMin(b[i], x);
      });
    }
    if (name == "round") {
      std::vector<double> to(steps_, 1.0);
      if (args.size() > 1) to = args[1].sc;
      return MapVector(std::move(args[0]), true, [&](double x, size_t i) -> std::optional<double> {
        double inv = 1.0 / to[i];
        return std::floor(x * inv + 0.5) / inv;
      });
    }
    static const std::pair<std::string_view, int> kDate[] = {
        {"days_in_month", 0}, {"day_of_month", 1}, {"day_of_week", 2}, {"day_of_year", 3},
        {"hour", 4},          {"minute", 5},       {"month", 6},       {"year", 7},
    };
    for (const auto& [n, which] : kDate) {
      if (name != n) continue;
      Value in;
      if (args.empty()) {
        in.type = ValueType::kVector;
        Series s;
        for (size_t i = 0; i < steps_; ++i) s.points.push_back({Ts(i), static_cast<double>(Ts(i)) / 1000.0});
        in.m.push_back(std::move(s));
      } else {
        in = std::move(args[0]);
      }
      int w = which;
      return MapVector(std::move(in), true, [w](double x, size_t) -> std::optional<double> {
        if (std::isnan(x) || std::isinf(x) || std::fabs(x) > 9.2e15) return kNaN;
        Civil c = ToCivil(static_cast<int64_t>(x));
        switch (w) {
          case 0: return DaysInMonth(c.year, c.month);
          case 1: return c.day;
          case 2: return c.wday;
          case 3: return c.yday;
          case 4: return c.hour;
          case 5: return c.minute;
          case 6: return c.month;
          default: return static_cast<double>(c.year);
        }
      });
    }
    double (*math)(double) = nullptr;
    static const std::pair<std::string_view, double (*)(double)> kMath[] = {
        {"abs", [](double x) { return std::fabs(x); }},
        {"ceil", [](double x) { return std::ceil(x); }},
        {"floor", [](double x) { return std::floor(x); }},
        {"exp", [](double x) { return std::exp(x); }},
        {"ln", [](double x) { return std::log(x); }},
        {"log2", [](double x) { return std::log2(x); }},
        {"log10", [](double x) { return std::log10(x); }},
        {"sqrt", [](double x) { return std::sqrt(x); }},
        {"sgn", [](double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x; }},
        {"deg", [](double x) { return x * 180 / M_PI; }},
        {"rad", [](double x) { return x * M_PI / 180; }},
        {"acos", [](double x) { return std::acos(x); }},
        {"acosh", [](double x) { return std::acosh(x); }},
        {"asin", [](double x) { return std::asin(x); }},
        {"asinh", [](double x) { return std::asinh(x); }},
        {"atan", [](double x) { return std::atan(x); }},
        {"atanh", [](double x) { return std::atanh(x); }},
        {"cos", [](double x) { return std::cos(x); }},
        {"cosh", [](double x) { return std::cosh(x); }},
        {"sin", [](double x) { return std::sin(x); }},
        {"sinh", [](double x) { return std::sinh(x); }},
        {"tan", [](double x) { return std::tan(x); }},
        {"tanh", [](double x) { return std::tanh(x); }},
    };
    for (const auto& [n, f] : kMath) {
      if (n == name) math = f;
    }
    if (math != nullptr) {
      return MapVector(std::move(args[0]), true, [math](double x, size_t) { return std::optional<double>(math(x)); });
    }
    return UnimplementedError("function \"" + std::string(name) + "\" is not supported");
  }

  // Natural order for sort_by_label: digit runs compare as numbers.
  static int NaturalCompare(std::string_view a, std::string_view b) {
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
      if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
        size_t i2 = i, j2 = j;
        while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
        while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
        std::string_view x = a.substr(i, i2 - i), y = b.substr(j, j2 - j);
        while (x.size() > 1 && x[0] == '0') x.remove_prefix(1);
        while (y.size() > 1 && y[0] == '0') y.remove_prefix(1);
        if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
        if (int c = x.compare(y); c != 0) return c < 0 ? -1 : 1;
        i = i2;
        j = j2;
        continue;
      }
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]) ? -1 : 1;
      ++i;
      ++j;
    }
    if (i == a.size() && j == b.size()) return 0;
    return i == a.size() ? -1 : 1;
  }

  Result<Value> LabelReplace(std::vector<Value> args) {
    const std::string& dst = args[1].str;
    const std::string& repl = args[2].str;
    const std::string& src = args[3].str;
    const std::string& regex = args[4].str;
    re2::RE2 re("^(?s:" + regex + ")$", re2::RE2::Quiet);
    if (!re.ok()) return EvalError("invalid regular expression in label_replace(): " + regex);
    if (!IsValidLabelName(dst)) return EvalError("invalid destination label name in label_replace(): " + dst);
    int n = re.NumberOfCapturingGroups() + 1;
    std::vector<re2::StringPiece> groups(n);
    Value v = std::move(args[0]);
    for (Series& s : v.m) {
      std::string_view value = s.labels.Get(src);
      if (!re.Match(re2::StringPiece(value.data(), value.size()), 0, value.size(), re2::RE2::UNANCHORED, groups.data(), n)) {
        continue;
      }
      s.labels.Set(dst, ExpandTemplate(re, repl, groups));
      if (dst == kMetricNameLabel) s.drop_name = false;  // a name set here stays
    }
    TELKIT_RETURN_IF_ERROR(MergeSameLabels(v.m));
    return v;
  }

  Result<Value> LabelJoin(std::vector<Value> args) {
    const std::string& dst = args[1].str;
    const std::string& sep = args[2].str;
    if (!IsValidLabelName(dst)) return EvalError("invalid destination label name in label_join(): " + dst);
    for (size_t i = 3; i < args.size(); ++i) {
      if (!IsValidLabelName(args[i].str)) return EvalError("invalid source label name in label_join(): " + args[i].str);
    }
    Value v = std::move(args[0]);
    for (Series& s : v.m) {
      std::string joined;
      for (size_t i = 3; i < args.size(); ++i) {
        if (i > 3) joined += sep;
        joined += s.labels.Get(args[i].str);
      }
      s.labels.Set(dst, joined);
      if (dst == kMetricNameLabel) s.drop_name = false;
    }
    TELKIT_RETURN_IF_ERROR(MergeSameLabels(v.m));
    return v;
  }

  // histogram_quantile / histogram_fraction over classic `le` buckets:
  // f(step, buckets of one group) for every group at every step.
  template <typename F>
  Result<Value> ClassicHistogram(const Value& in, F&& f) {
    // Group the bucket series by their labels without le and __name__.
    OutBuilder out;
    std::vector<size_t> group(in.m.size(), SIZE_MAX);
    std::vector<double> upper(in.m.size(), 0);
    std::map<Labels, size_t> group_of_key;
    std::vector<size_t> group_out;
    for (size_t s = 0; s < in.m.size(); ++s) {
      std::string le(in.m[s].labels.Get("le"));
      if (le.empty()) continue;
      char* end = nullptr;
      double u = std::strtod(le.c_str(), &end);
      if (end == le.c_str() || *end != '\0') continue;
      // Grouped by all labels but le (the name too, as Prometheus 2.42 does);
      // groups that differ only in name collide in the output.
      Labels key = in.m[s].labels;
      key.Remove("le");
      auto [it, inserted] = group_of_key.try_emplace(key, group_out.size());
      if (inserted) group_out.push_back(out.Id(DropName(key, TypeAndUnit())));
      group[s] = it->second;
      upper[s] = u;
    }
    std::vector<std::vector<Bucket>> buckets;
    std::vector<uint32_t> idx;
    std::vector<double> vals;
    StepCursor cur(in.m);
    for (size_t i = 0; i < steps_; ++i) {
      TELKIT_RETURN_IF_ERROR(Tick());
      cur.At(Ts(i), idx, vals);
      std::vector<size_t> touched;
      for (size_t k = 0; k < idx.size(); ++k) {
        size_t g = group[idx[k]];
        if (g == SIZE_MAX) continue;
        if (g >= buckets.size()) buckets.resize(g + 1);
        if (buckets[g].empty()) touched.push_back(g);
        buckets[g].push_back({upper[idx[k]], vals[k]});
      }
      for (size_t g : touched) {
        TELKIT_RETURN_IF_ERROR(out.Add(group_out[g], Ts(i), f(i, buckets[g])));
        buckets[g].clear();
      }
    }
    Value v;
    v.type = ValueType::kVector;
    v.m = out.Take();
    return v;
  }

  // ---- aggregations -------------------------------------------------------

  Result<Value> EvalAggregate(const AggregateExpr& a) {
    Value param;
    if (a.param) {
      TELKIT_ASSIGN_OR_RETURN(param, Eval(*a.param));
    }
    TELKIT_ASSIGN_OR_RETURN(Value in, Eval(*a.expr));
    std::vector<std::string> grouping = a.grouping;
    std::string value_label;
    if (a.op == AggOp::kCountValues) {
      value_label = param.str;
      if (!IsValidLabelName(value_label)) return EvalError("invalid label name \"" + value_label + "\"");
      if (!a.without) grouping.push_back(value_label);
    }
    auto group_labels = [&](const Labels& l) {
      Labels g;
      if (a.without) {
        g = l;
        for (const std::string& n : grouping) g.Remove(n);
        g.Remove(kMetricNameLabel);
        if (TypeAndUnit()) {
          g.Remove("__type__");
          g.Remove("__unit__");
        }
      } else {
        for (const Label& lb : l) {
          if (std::find(grouping.begin(), grouping.end(), lb.name) != grouping.end()) g.Set(lb.name, lb.value);
        }
      }
      return g;
    };
    OutBuilder out;
    // Group of each input series (count_values groups per value instead).
    std::vector<size_t> group(in.m.size());
    if (a.op != AggOp::kCountValues) {
      for (size_t s = 0; s < in.m.size(); ++s) group[s] = out.Id(group_labels(in.m[s].labels), in.m[s].drop_name);
    }
    bool by_series = a.op == AggOp::kTopk || a.op == AggOp::kBottomk || a.op == AggOp::kLimitk ||
                     a.op == AggOp::kLimitRatio;
    OutBuilder series_out;  // topk/bottomk/limitk: the input series themselves
    std::vector<size_t> series_id(in.m.size(), SIZE_MAX);

    struct State {
      double value = 0, mean = 0, count = 0;
      double c = 0;              // 3.x: Kahan compensation of sum/avg
      bool incremental = false;  // 3.x avg: switched to an incremental mean
      // topk/bottomk: a heap with the least wanted member on top; limitk,
      // limit_ratio: the members in input order. (value, input index).
      std::vector<std::pair<double, size_t>> members;
      std::vector<double> values;   // quantile
    };
    std::vector<State> states;
    std::vector<size_t> order;  // groups in first-seen order at this step
    std::vector<int64_t> seen_step;
    std::vector<uint32_t> idx;
    std::vector<double> vals;
    StepCursor cur(in.m);
    bool prom3 = ctx_.opts->compat == Compat::kPrometheus3;
    for (size_t i = 0; i < steps_; ++i) {
      TELKIT_RETURN_IF_ERROR(Tick());
      int64_t ts = Ts(i);
      cur.At(ts, idx, vals);
      if (prom3 && a.param && param.type == ValueType::kScalar && std::isnan(param.sc[i]) && a.op != AggOp::kQuantile) {
        return EvalError(a.op == AggOp::kLimitRatio ? "Ratio value is NaN" : "Parameter value is NaN");
      }
      if (idx.empty()) continue;
      TELKIT_RETURN_IF_ERROR(CheckSamples(idx.size()));
      int64_t k = 0;
      double q = 0;
      if (a.op == AggOp::kTopk || a.op == AggOp::kBottomk || a.op == AggOp::kLimitk) {
        double f = param.sc[i];
        if (!(f >= -9.2233720368547758e18 && f <= 9.2233720368547758e18)) {
          return EvalError("Scalar value " + FormatValue(f) + " overflows int64");
        }
        k = static_cast<int64_t>(f);
        if (k < 1) continue;
      }
      if (a.op == AggOp::kQuantile || a.op == AggOp::kLimitRatio) q = param.sc[i];
      order.clear();
      for (size_t e = 0; e < idx.size(); ++e) {
        size_t s = idx[e];
        double v = vals[e];
        size_t g;
        if (a.op == AggOp::kCountValues) {
          Labels l = in.m[s].labels;
          l.Set(value_label, FormatValue(v));
          g = out.Id(group_labels(l), in.m[s].drop_name);
        } else {
          g = group[s];
        }
        if (g >= states.size()) {
          states.resize(g + 1);
          seen_step.resize(g + 1, -1);
        }
        State& st = states[g];
        if (seen_step[g] != static_cast<int64_t>(i)) {
          seen_step[g] = static_cast<int64_t>(i);
          order.push_back(g);
          st.value = v;
          st.mean = v;
          st.count = 1;
          st.c = 0;
          st.incremental = false;
          st.members.clear();
          st.values.clear();
          if (a.op == AggOp::kStddev || a.op == AggOp::kStdvar) {
            st.value = 0;
            if (prom3 && (std::isnan(v) || std::isinf(v))) st.value = kNaN;
          }
          if (by_series) st.members.push_back({v, s});
          if (a.op == AggOp::kQuantile) st.values.push_back(v);
          continue;
        }
        switch (a.op) {
          case AggOp::kSum:
            if (prom3) {
              KahanInc(v, st.value, st.c);
            } else {
              st.value += v;
            }
            break;
          case AggOp::kAvg:
            if (prom3) {
              st.count++;
              if (!st.incremental) {
                double ns = st.value, nc = st.c;
                KahanInc(v, ns, nc);
                if (!std::isinf(ns)) {
                  st.value = ns;
                  st.c = nc;
                  break;
                }
                st.incremental = true;
                st.mean = st.value / (st.count - 1);
                st.c /= st.count - 1;
              }
              if (std::isinf(st.mean)) {
                if (std::isinf(v) && (st.mean > 0) == (v > 0)) break;
                if (!std::isinf(v) && !std::isnan(v)) break;
              }
              double q = (st.count - 1) / st.count;
              double m = q * st.mean, cc = q * st.c;
              KahanInc(v / st.count, m, cc);
              st.mean = m;
              st.c = cc;
              break;
            }
            st.count++;
            if (std::isinf(st.mean)) {
              if (std::isinf(v) && (st.mean > 0) == (v > 0)) break;
              if (!std::isinf(v) && !std::isnan(v)) break;
            }
            st.mean += v / st.count - st.mean / st.count;
            break;
          case AggOp::kMax:
            if (st.value < v || std::isnan(st.value)) st.value = v;
            break;
          case AggOp::kMin:
            if (st.value > v || std::isnan(st.value)) st.value = v;
            break;
          case AggOp::kCount:
          case AggOp::kCountValues:
          case AggOp::kGroup: st.count++; break;
          case AggOp::kStddev:
          case AggOp::kStdvar: {
            st.count++;
            double delta = v - st.mean;
            st.mean += delta / st.count;
            st.value += delta * (v - st.mean);
            break;
          }
          case AggOp::kTopk:
          case AggOp::kBottomk: HeapAdd(st.members, {v, s}, k, a.op == AggOp::kTopk); break;
          case AggOp::kLimitk:
            if (static_cast<int64_t>(st.members.size()) < k) st.members.push_back({v, s});
            break;
          case AggOp::kLimitRatio: st.members.push_back({v, s}); break;
          case AggOp::kQuantile: st.values.push_back(v); break;
        }
      }
      // Emit.
      for (size_t g : order) {
        State& st = states[g];
        double v = st.value;
        switch (a.op) {
          case AggOp::kSum:
            if (prom3) v = st.value + st.c;
            break;
          case AggOp::kAvg:
            if (!prom3) {
              v = st.mean;
            } else if (st.incremental) {
              v = st.mean + st.c;
            } else {
              v = st.value / st.count + st.c / st.count;
            }
            break;
          case AggOp::kCount:
          case AggOp::kCountValues: v = st.count; break;
          case AggOp::kGroup: v = 1; break;
          case AggOp::kStdvar: v = st.value / st.count; break;
          case AggOp::kStddev: v = std::sqrt(st.value / st.count); break;
          case AggOp::kQuantile: v = Quantile(q, st.values); break;
          case AggOp::kTopk:
          case AggOp::kBottomk:
          case AggOp::kLimitk:
          case AggOp::kLimitRatio: {
            std::vector<std::pair<size_t, double>> members;
            for (const auto& [val, s] : st.members) members.push_back({s, val});
            if (a.op == AggOp::kTopk || a.op == AggOp::kBottomk) {
              bool top = a.op == AggOp::kTopk;
              std::stable_sort(members.begin(), members.end(), [top](const auto& x, const auto& y) {
                if (std::isnan(x.second) || std::isnan(y.second)) return !std::isnan(x.second) && std::isnan(y.second);
                return top ? x.second > y.second : x.second < y.second;
              });
            }
            if (a.op == AggOp::kLimitRatio) {
              std::erase_if(members, [&](const auto& m) { return !InRatio(in.m[m.first].labels, q); });
            }
            for (const auto& [s, val] : members) {
              if (series_id[s] == SIZE_MAX) series_id[s] = series_out.Id(in.m[s].labels, in.m[s].drop_name);
              TELKIT_RETURN_IF_ERROR(series_out.Add(series_id[s], ts, val));
            }
            continue;
          }
          default: break;
        }
        TELKIT_RETURN_IF_ERROR(out.Add(g, ts, v));
      }
    }
    Value v;
    v.type = ValueType::kVector;
    v.m = by_series ? series_out.Take() : out.Take();
    return v;
  }


  // limit_ratio: a series is in the sample when its labels' hash falls in
  // the ratio's share of the hash space (negative ratios: the complement).
  static bool InRatio(const Labels& l, double ratio) {
    double r = static_cast<double>(l.Hash()) / 18446744073709551616.0;
    return ratio >= 0 ? r < ratio : r >= 1 + ratio;
  }

  // Whether value a is more wanted than b in topk (top) or bottomk; NaN is
  // the least wanted.
  static bool Better(double a, double b, bool top) {
    if (std::isnan(a) || std::isnan(b)) return !std::isnan(a) && std::isnan(b);
    return top ? a > b : a < b;
  }

  // Keeps the k most wanted (value, series) of a group in a heap whose top is
  // the least wanted member; replaces it as Prometheus does (a NaN on top is
  // always replaced). O(log k) per element.
  static void HeapAdd(std::vector<std::pair<double, size_t>>& heap, std::pair<double, size_t> e, int64_t k,
                      bool top) {
    auto comp = [top](const std::pair<double, size_t>& x, const std::pair<double, size_t>& y) {
      return Better(x.first, y.first, top);
    };
    if (static_cast<int64_t>(heap.size()) < k) {
      heap.push_back(e);
      std::push_heap(heap.begin(), heap.end(), comp);
      return;
    }
    double worst = heap.front().first;
    if (std::isnan(worst) || (top ? worst < e.first : worst > e.first)) {
      std::pop_heap(heap.begin(), heap.end(), comp);
      heap.back() = e;
      std::push_heap(heap.begin(), heap.end(), comp);
    }
  }

  // ---- binary operators ---------------------------------------------------

  static bool ShouldDropName(BinOp op, bool prom3) {
    switch (op) {
      case BinOp::kAdd:
      case BinOp::kSub:
      case BinOp::kMul:
      case BinOp::kDiv:
      case BinOp::kMod:
      case BinOp::kPow: return true;
      case BinOp::kAtan2: return prom3;
      default: return false;
    }
  }

  // (value, keep) of lhs op rhs for vector elements.
  static std::pair<double, bool> ElemBinop(BinOp op, double l, double r) {
    switch (op) {
      case BinOp::kAdd: return {l + r, true};
      case BinOp::kSub: return {l - r, true};
      case BinOp::kMul: return {l * r, true};
      case BinOp::kDiv: return {l / r, true};
      case BinOp::kPow: return {std::pow(l, r), true};
      case BinOp::kMod: return {std::fmod(l, r), true};
      case BinOp::kAtan2: return {std::atan2(l, r), true};
      case BinOp::kEql: return {l, l == r};
      case BinOp::kNeq: return {l, l != r};
      case BinOp::kGtr: return {l, l > r};
      case BinOp::kLss: return {l, l < r};
      case BinOp::kGte: return {l, l >= r};
      case BinOp::kLte: return {l, l <= r};
      default: return {0, false};
    }
  }

  Result<Value> EvalBinary(const BinaryExpr& b) {
    TELKIT_ASSIGN_OR_RETURN(Value lhs, Eval(*b.lhs));
    TELKIT_ASSIGN_OR_RETURN(Value rhs, Eval(*b.rhs));
    bool prom3 = ctx_.opts->compat == Compat::kPrometheus3;
    if (lhs.type == ValueType::kScalar && rhs.type == ValueType::kScalar) {
      for (size_t i = 0; i < steps_; ++i) {
        auto [v, keep] = ElemBinop(b.op, lhs.sc[i], rhs.sc[i]);
        lhs.sc[i] = IsComparison(b.op) ? (keep ? 1 : 0) : v;
      }
      return lhs;
    }
    if (lhs.type == ValueType::kScalar || rhs.type == ValueType::kScalar) {
      bool swap = lhs.type == ValueType::kScalar;
      Value vec = swap ? std::move(rhs) : std::move(lhs);
      const std::vector<double> sc = swap ? std::move(lhs.sc) : std::move(rhs.sc);
      bool drop = ShouldDropName(b.op, prom3) || b.return_bool;
      return MapVector(std::move(vec), drop, [&](double x, size_t i) -> std::optional<double> {
        double l = x, r = sc[i];
        if (swap) std::swap(l, r);
        auto [v, keep] = ElemBinop(b.op, l, r);
        if (IsComparison(b.op) && swap) v = r;
        if (b.return_bool) return keep ? 1.0 : 0.0;
        if (!keep) return std::nullopt;
        return v;
      });
    }
    if (IsSetOperator(b.op)) return SetOperation(b, lhs, rhs);
    return VectorBinop(b, lhs, rhs, prom3);
  }

  Result<Value> SetOperation(const BinaryExpr& b, const Value& lhs, const Value& rhs) {
    const VectorMatching& vm = b.matching;
    std::vector<uint64_t> lsig(lhs.m.size()), rsig(rhs.m.size());
    for (size_t s = 0; s < lhs.m.size(); ++s) lsig[s] = SignatureOf(lhs.m[s].labels, vm.labels, vm.on);
    for (size_t s = 0; s < rhs.m.size(); ++s) rsig[s] = SignatureOf(rhs.m[s].labels, vm.labels, vm.on);
    OutBuilder out;
    std::vector<size_t> lid(lhs.m.size(), SIZE_MAX), rid(rhs.m.size(), SIZE_MAX);
    StepCursor lc(lhs.m), rc(rhs.m);
    std::vector<uint32_t> li, ri;
    std::vector<double> lv, rv;
    std::unordered_set<uint64_t> sigs;
    for (size_t i = 0; i < steps_; ++i) {
      TELKIT_RETURN_IF_ERROR(Tick());
      int64_t ts = Ts(i);
      lc.At(ts, li, lv);
      rc.At(ts, ri, rv);
      sigs.clear();
      auto emit_l = [&](size_t k) -> Status {
        size_t s = li[k];
        if (lid[s] == SIZE_MAX) lid[s] = out.Id(lhs.m[s].labels, lhs.m[s].drop_name);
        return out.Add(lid[s], ts, lv[k]);
      };
      switch (b.op) {
        case BinOp::kAnd:
          for (uint32_t s : ri) sigs.insert(rsig[s]);
          for (size_t k = 0; k < li.size(); ++k) {
            if (sigs.count(lsig[li[k]])) TELKIT_RETURN_IF_ERROR(emit_l(k));
          }
          break;
        case BinOp::kUnless:
          for (uint32_t s : ri) sigs.insert(rsig[s]);
          for (size_t k = 0; k < li.size(); ++k) {
            if (!sigs.count(lsig[li[k]])) TELKIT_RETURN_IF_ERROR(emit_l(k));
          }
          break;
        default:  // or
          for (size_t k = 0; k < li.size(); ++k) {
            sigs.insert(lsig[li[k]]);
            TELKIT_RETURN_IF_ERROR(emit_l(k));
          }
          for (size_t k = 0; k < ri.size(); ++k) {
            size_t s = ri[k];
            if (sigs.count(rsig[s])) continue;
            if (rid[s] == SIZE_MAX) rid[s] = out.Id(rhs.m[s].labels, rhs.m[s].drop_name);
            TELKIT_RETURN_IF_ERROR(out.Add(rid[s], ts, rv[k]));
          }
          break;
      }
    }
    Value v;
    v.type = ValueType::kVector;
    v.m = out.Take();
    return v;
  }

  Labels ResultMetric(const Labels& l, const Labels& r, const BinaryExpr& b, bool prom3) const {
    const VectorMatching& vm = b.matching;
    Labels out = l;
    if ((ShouldDropName(b.op, prom3) || b.return_bool) && !Delayed()) out = DropName(out, TypeAndUnit());
    if (vm.card == Cardinality::kOneToOne) {
      if (vm.on) {
        Labels kept;
        for (const Label& lb : out) {
          if (std::find(vm.labels.begin(), vm.labels.end(), lb.name) != vm.labels.end()) kept.Set(lb.name, lb.value);
        }
        out = std::move(kept);
      } else {
        for (const std::string& n : vm.labels) out.Remove(n);
      }
    }
    for (const std::string& n : vm.include) out.Set(n, r.Get(n));
    return out;
  }

  // One result of a fill() modifier: `l` / `r` are the labels of the
  // (possibly synthetic) left and right elements, values already in operand
  // order.
  Status AddFilled(const BinaryExpr& b, bool prom3, OutBuilder& out, std::unordered_map<uint64_t, size_t>& ids,
                   uint64_t key, const Labels& l, const Labels& r, bool l_drop_name, double vl, double vr, int64_t ts) {
    auto [value, keep] = ElemBinop(b.op, vl, vr);
    if (b.return_bool) {
      value = keep ? 1 : 0;
    } else if (!keep) {
      return OkStatus();
    }
    auto it = ids.find(key);
    if (it == ids.end()) {
      const bool drop = Delayed() && (ShouldDropName(b.op, prom3) || b.return_bool || l_drop_name);
      it = ids.emplace(key, out.Id(ResultMetric(l, r, b, prom3), drop)).first;
    }
    return out.Add(it->second, ts, value);
  }

  Result<Value> VectorBinop(const BinaryExpr& b, const Value& lhs_in, const Value& rhs_in, bool prom3) {
    const VectorMatching& vm = b.matching;
    bool swapped = vm.card == Cardinality::kOneToMany;
    const Value& lhs = swapped ? rhs_in : lhs_in;  // the "many" side
    const Value& rhs = swapped ? lhs_in : rhs_in;  // the "one" side
    std::vector<uint64_t> lsig(lhs.m.size()), rsig(rhs.m.size());
    for (size_t s = 0; s < lhs.m.size(); ++s) lsig[s] = SignatureOf(lhs.m[s].labels, vm.labels, vm.on);
    for (size_t s = 0; s < rhs.m.size(); ++s) rsig[s] = SignatureOf(rhs.m[s].labels, vm.labels, vm.on);
    OutBuilder out;
    std::unordered_map<uint64_t, size_t> pair_ids;  // (lhs, rhs) series -> output id
    StepCursor lc(lhs.m), rc(rhs.m);
    std::vector<uint32_t> li, ri;
    std::vector<double> lv, rv;
    std::unordered_map<uint64_t, size_t> right;  // sig -> position in ri
    // Matches made at this step: signatures (one-to-one), and (signature,
    // output series) pairs (many-to-one). Cleared, not reallocated, per step.
    struct PairHash {
      size_t operator()(const std::pair<uint64_t, size_t>& p) const { return p.first ^ (p.second * 0x9e3779b97f4a7c15ULL); }
    };
    std::unordered_set<uint64_t> matched;
    std::unordered_set<std::pair<uint64_t, size_t>, PairHash> matched_pairs;
    for (size_t i = 0; i < steps_; ++i) {
      TELKIT_RETURN_IF_ERROR(Tick());
      int64_t ts = Ts(i);
      lc.At(ts, li, lv);
      rc.At(ts, ri, rv);
      const bool fill = b.fill_left || b.fill_right;
      if (!fill && (li.empty() || ri.empty())) continue;
      right.clear();
      matched.clear();
      matched_pairs.clear();
      for (size_t k = 0; k < ri.size(); ++k) {
        auto [it, inserted] = right.emplace(rsig[ri[k]], k);
        if (!inserted) {
          const Labels& rl = rhs.m[ri[k]].labels;
          const Labels& dl = rhs.m[ri[it->second]].labels;
          // 2.42 names the later series first, 3.x the earlier.
          const Labels& first_l = prom3 ? dl : rl;
          const Labels& second_l = prom3 ? rl : dl;
          return EvalError("found duplicate series for the match group " + LabelsString(MatchLabels(rl, vm.labels, vm.on)) +
                           " on the " + (swapped ? "left" : "right") + " hand-side of the operation: [" +
                           LabelsString(first_l) + ", " + LabelsString(second_l) +
                           "];many-to-many matching not allowed: matching labels must be unique on one side");
        }
      }
      // fill_left gives a missing element of the left ("many") side, fill_right
      // one of the right ("one") side; group_right swaps the operands but not
      // which fill applies to which side (as Prometheus).
      if (b.fill_right) {
        for (size_t k = 0; k < li.size(); ++k) {
          if (right.count(lsig[li[k]])) continue;
          double vl = lv[k], vr = *b.fill_right;
          if (swapped) std::swap(vl, vr);
          TELKIT_RETURN_IF_ERROR(AddFilled(b, prom3, out, pair_ids, (static_cast<uint64_t>(li[k]) << 32) | 0xffffffffULL,
                                           lhs.m[li[k]].labels, MatchLabels(lhs.m[li[k]].labels, vm.labels, vm.on),
                                           lhs.m[li[k]].drop_name, vl, vr, ts));
        }
      }
      if (b.fill_left) {
        std::unordered_set<uint64_t> left_sigs;
        for (size_t k = 0; k < li.size(); ++k) left_sigs.insert(lsig[li[k]]);
        for (size_t k = 0; k < ri.size(); ++k) {
          if (left_sigs.count(rsig[ri[k]])) continue;
          double vl = *b.fill_left, vr = rv[k];
          if (swapped) std::swap(vl, vr);
          Labels synth = MatchLabels(rhs.m[ri[k]].labels, vm.labels, vm.on);
          TELKIT_RETURN_IF_ERROR(AddFilled(b, prom3, out, pair_ids, (0xffffffffULL << 32) | ri[k], synth,
                                           rhs.m[ri[k]].labels, false, vl, vr, ts));
        }
      }
      for (size_t k = 0; k < li.size(); ++k) {
        uint64_t sig = lsig[li[k]];
        auto it = right.find(sig);
        if (it == right.end()) continue;
        size_t rk = it->second;
        double vl = lv[k], vr = rv[rk];
        if (swapped) std::swap(vl, vr);
        auto [value, keep] = ElemBinop(b.op, vl, vr);
        if (b.return_bool) {
          value = keep ? 1 : 0;
        } else if (!keep) {
          // 3.x checks the matching before filtering; 2.42 only for kept elements.
          if (!prom3) continue;
          if (vm.card == Cardinality::kOneToOne && !matched.insert(sig).second) {
            return EvalError("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
          }
          continue;
        }
        uint64_t pair_key = (static_cast<uint64_t>(li[k]) << 32) | ri[rk];
        auto pit = pair_ids.find(pair_key);
        if (pit == pair_ids.end()) {
          const bool drop = Delayed() && (ShouldDropName(b.op, prom3) || b.return_bool || lhs.m[li[k]].drop_name);
          pit = pair_ids.emplace(pair_key,
                                 out.Id(ResultMetric(lhs.m[li[k]].labels, rhs.m[ri[rk]].labels, b, prom3), drop))
                    .first;
        }
        size_t id = pit->second;
        if (vm.card == Cardinality::kOneToOne) {
          if (!matched.insert(sig).second) {
            return EvalError("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
          }
        } else if (!matched_pairs.insert({sig, id}).second) {
          return EvalError("multiple matches for labels: grouping labels must ensure unique matches");
        }
        TELKIT_RETURN_IF_ERROR(out.Add(id, ts, value));
      }
    }
    Value v;
    v.type = ValueType::kVector;
    v.m = out.Take();
    return v;
  }

  Context& ctx_;
  int64_t start_, end_, interval_;
  size_t steps_ = 1;
};

}  // namespace

Result<QueryResult> Engine::InstantQuery(Querier& querier, std::string_view query, int64_t t_ms) const {
  if (t_ms < -100'000'000'000'000'000 || t_ms > 100'000'000'000'000'000) {
    return InvalidArgumentError("query time out of range");
  }
  TELKIT_ASSIGN_OR_RETURN(ExprPtr e, ParseExpr(query, options_.parse));
  return Evaluate(querier, *e, t_ms, t_ms, 1, true);
}

Result<QueryResult> Engine::RangeQuery(Querier& querier, std::string_view query, int64_t start_ms, int64_t end_ms,
                                       int64_t step_ms) const {
  if (step_ms <= 0) return InvalidArgumentError("zero or negative query resolution step widths are not accepted");
  if (end_ms < start_ms) return InvalidArgumentError("end timestamp must not be before start time");
  constexpr int64_t kMaxTime = 100'000'000'000'000'000;  // ms; keeps time arithmetic far from overflow
  if (start_ms < -kMaxTime || end_ms > kMaxTime) return InvalidArgumentError("query time out of range");
  if ((end_ms - start_ms) / step_ms >= options_.max_steps) {
    return InvalidArgumentError("exceeded maximum resolution of " + std::to_string(options_.max_steps) +
                                " points per timeseries. Try decreasing the query resolution (?step=XX)");
  }
  ParseOptions po = options_.parse;
  po.query_step_ms = step_ms;
  po.query_range_ms = end_ms - start_ms;
  TELKIT_ASSIGN_OR_RETURN(ExprPtr e, ParseExpr(query, po));
  return Evaluate(querier, *e, start_ms, end_ms, step_ms, false);
}

Result<QueryResult> Engine::Evaluate(Querier& querier, const Expr& expr, int64_t start_ms, int64_t end_ms,
                                     int64_t step_ms, bool instant) const {
  ValueType type = expr.Type();
  if (!instant && type != ValueType::kScalar && type != ValueType::kVector) {
    return InvalidArgumentError("invalid expression type \"" + std::string(ValueTypeName(type)) +
                                "\" for range query, must be Scalar or instant Vector");
  }
  Context ctx;
  ctx.querier = &querier;
  ctx.opts = &options_;
  ctx.query_start = start_ms;
  ctx.query_end = end_ms;
  ctx.query_step = instant ? 0 : step_ms;
  ctx.deadline = std::chrono::steady_clock::now() + options_.timeout;
  Evaluator ev(ctx, start_ms, end_ms, instant ? 1 : step_ms);
  TELKIT_ASSIGN_OR_RETURN(Value v, ev.Eval(expr));
  if (options_.delayed_name_removal && (v.type == ValueType::kVector || v.type == ValueType::kMatrix)) {
    bool any = false;
    for (Series& s : v.m) {
      if (s.drop_name && (s.labels.Has(kMetricNameLabel) ||
                          (options_.type_and_unit_labels && (s.labels.Has("__type__") || s.labels.Has("__unit__"))))) {
        s.labels = DropName(s.labels, options_.type_and_unit_labels);
        any = true;
      }
      s.drop_name = false;
    }
    // Series that now share a labelset: one series (range), or an error
    // when two have a point at the same time.
    if (any) TELKIT_RETURN_IF_ERROR(MergeSameLabels(v.m));
  }
  QueryResult r;
  r.t = start_ms;
  if (v.type == ValueType::kString) {
    r.type = ValueType::kString;
    r.str = std::move(v.str);
    return r;
  }
  if (instant) {
    r.type = v.type;
    if (v.type == ValueType::kScalar) {
      r.scalar = v.sc[0];
    } else {
      r.series = std::move(v.m);
    }
    return r;
  }
  r.type = ValueType::kMatrix;
  if (v.type == ValueType::kScalar) {
    Series s;
    for (size_t i = 0; i < v.sc.size(); ++i) s.points.push_back({ev.Ts(i), v.sc[i]});
    r.series.push_back(std::move(s));
  } else {
    r.series = std::move(v.m);
    std::sort(r.series.begin(), r.series.end(), [](const Series& a, const Series& b) { return a.labels < b.labels; });
  }
  return r;
}

}  // namespace telkit::promql
