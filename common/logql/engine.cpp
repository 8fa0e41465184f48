#include "common/logql/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "common/logql/parser.h"
#include "common/logql/pipeline.h"

namespace telkit::logql {

namespace {

// ---- reading the store in batches ------------------------------------------

struct Pushdown {
  std::vector<std::string> contains;
  std::vector<const LineFilter*> filters;
  size_t stages_pushed = 0;
};

Pushdown PlanPushdown(const std::vector<Stage>& stages) {
  Pushdown p;
  for (const Stage& st : stages) {
    if (st.kind != Stage::Kind::kLineFilter) break;
    if (st.line_filter.op == LineFilterOp::kContains && st.line_filter.values.size() == 1) {
      if (!st.line_filter.values[0].empty()) p.contains.push_back(st.line_filter.values[0]);
    } else {
      p.filters.push_back(&st.line_filter);
    }
    ++p.stages_pushed;
  }
  return p;
}

// Calls fn(stream, entry) for every line of the selector in [start, end)
// passing the pushed-down filters, batch by batch in the direction. fn
// returns false to stop after the current batch.
template <typename Fn>
Status Scan(LogQuerier* q, const LogSelector& sel, const Pushdown& pd, int64_t start, int64_t end, bool backward,
            size_t batch, const EngineOptions& opts, QueryStats* stats, Fn&& fn) {
  LogQuery query;
  query.matchers = sel.matchers;
  query.contains = pd.contains;
  query.backward = backward;
  if (!pd.filters.empty()) {
    std::vector<const LineFilter*> filters = pd.filters;
    query.line_filter = [filters](std::string_view line) {
      for (const LineFilter* f : filters) {
        if (!LineFilterMatches(*f, line)) return false;
      }
      return true;
    };
  }
  // Lines at the boundary timestamp already handed to fn (stream key + line).
  std::set<std::pair<std::string, std::string>> seen_at_boundary;
  int64_t boundary = backward ? end : start;
  bool have_boundary = false;
  while (start < end) {
    query.start_ns = start;
    query.end_ns = end;
    query.limit = batch;
    TELKIT_ASSIGN_OR_RETURN(std::vector<LogStreamResult> res, q->Select(query));
    ++stats->batches;
    size_t n = 0;
    int64_t edge = backward ? INT64_MAX : INT64_MIN;
    for (const LogStreamResult& s : res) {
      n += s.entries.size();
      for (const LogEntry& e : s.entries) edge = backward ? std::min(edge, e.ts) : std::max(edge, e.ts);
    }
    bool full = batch > 0 && n >= batch;
    bool keep_going = true;
    std::set<std::pair<std::string, std::string>> next_seen;
    for (const LogStreamResult& s : res) {
      std::string key;
      for (const Label& l : s.stream) key += l.name + '\0' + l.value + '\0';
      for (const LogEntry& e : s.entries) {
        if (have_boundary && e.ts == boundary && seen_at_boundary.count({key, e.line})) continue;
        if (full && e.ts == edge) next_seen.insert({key, e.line});
        ++stats->lines_scanned;
        stats->bytes_scanned += e.line.size();
        if (!fn(s.stream, e)) keep_going = false;
      }
    }
    if (opts.max_lines_scanned && stats->lines_scanned > opts.max_lines_scanned) {
      return ResourceExhaustedError("query scanned more than " + std::to_string(opts.max_lines_scanned) +
                                    " lines");
    }
    if (!full || !keep_going) break;
    if (have_boundary && edge == boundary) {
      // Every line of the batch shares one timestamp: widen the batch.
      batch *= 2;
      for (auto& x : next_seen) seen_at_boundary.insert(x);
      continue;
    }
    if (edge == boundary && have_boundary) break;
    seen_at_boundary = std::move(next_seen);
    boundary = edge;
    have_boundary = true;
    if (backward) {
      end = edge + 1;
    } else {
      start = edge;
    }
  }
  return OkStatus();
}

// ---- log queries -------------------------------------------------------------

bool StagesFilter(std::span<const Stage> stages) {
  for (const Stage& st : stages) {
    if (st.kind == Stage::Kind::kLineFilter || st.kind == Stage::Kind::kLabelFilter) return true;
  }
  return false;
}

Result<QueryResult> RunLogQuery(LogQuerier* q, const LogSelector& sel, const QueryParams& p,
                                const EngineOptions& opts) {
  QueryResult out;
  out.type = QueryResult::Type::kStreams;
  Pushdown pd = PlanPushdown(sel.stages);
  std::span<const Stage> rest(sel.stages.data() + pd.stages_pushed, sel.stages.size() - pd.stages_pushed);
  LogPipeline pipe(rest);
  bool filters = StagesFilter(rest);
  size_t batch = opts.batch_lines;
  if (p.limit > 0 && !filters) batch = p.limit;  // every line read is a result
  struct Hit {
    int64_t ts;
    size_t stream;
    std::string line;
  };
  std::vector<Hit> hits;
  std::map<Labels, size_t> stream_index;
  std::vector<Labels> stream_labels;
  LineLabels lbs;
  std::string line;
  Status st = Scan(q, sel, pd, p.start_ns, p.end_ns, p.backward, batch, opts, &out.stats,
                   [&](const Labels& stream, const LogEntry& e) {
                     lbs.Reset(stream, e.metadata);
                     line = e.line;
                     if (!pipe.Process(e.ts, &line, &lbs)) return true;
                     Labels l = lbs.ToLabels();
                     auto [it, inserted] = stream_index.emplace(std::move(l), stream_labels.size());
                     if (inserted) stream_labels.push_back(it->first);
                     hits.push_back(Hit{e.ts, it->second, line});
                     return p.limit == 0 || hits.size() < p.limit;
                   });
  TELKIT_RETURN_IF_ERROR(st);
  // The `limit` first hits in direction (ties by stream labels).
  std::stable_sort(hits.begin(), hits.end(), [&](const Hit& a, const Hit& b) {
    if (a.ts != b.ts) return p.backward ? a.ts > b.ts : a.ts < b.ts;
    return stream_labels[a.stream] < stream_labels[b.stream];
  });
  if (p.limit > 0 && hits.size() > p.limit) hits.resize(p.limit);
  std::vector<StreamResult> streams(stream_labels.size());
  for (size_t i = 0; i < stream_labels.size(); ++i) streams[i].labels = stream_labels[i];
  for (Hit& h : hits) streams[h.stream].entries.push_back(LogLine{h.ts, std::move(h.line)});
  for (StreamResult& s : streams) {
    if (!s.entries.empty()) out.streams.push_back(std::move(s));
  }
  std::sort(out.streams.begin(), out.streams.end(),
            [](const StreamResult& a, const StreamResult& b) { return a.labels < b.labels; });
  out.stats.lines_returned = hits.size();
  return out;
}

// ---- metric values -----------------------------------------------------------

struct Sample {
  Labels labels;
  double v = 0;
};
using Vec = std::vector<Sample>;

struct Value {
  bool scalar = false;
  std::vector<Vec> steps;  // one vector per step; a scalar has one unlabeled sample per step
};

struct Ctx {
  LogQuerier* q;
  const EngineOptions& opts;
  std::vector<int64_t> times;
  QueryStats* stats;
};

Labels Grouped(const Labels& l, const Grouping& g) {
  if (!g.present) return l;
  std::vector<Label> out;
  for (const Label& x : l) {
    bool listed = std::find(g.labels.begin(), g.labels.end(), x.name) != g.labels.end();
    if (listed != g.without) out.push_back(x);
  }
  auto r = Labels::FromUnsorted(std::move(out));
  return r.ok() ? *r : Labels();
}

std::string PipelineError(const Labels& l) {
  std::string err(l.Get(kErrorLabel));
  return "pipeline error: '" + err + "' for series: '" + l.ToString() +
         "'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"" + err +
         "\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can "
         "also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )";
}

double Quantile(double phi, std::vector<double> v) {
  if (v.empty()) return std::nan("");
  if (phi < 0) return -std::numeric_limits<double>::infinity();
  if (phi > 1) return std::numeric_limits<double>::infinity();
  std::sort(v.begin(), v.end());
  double n = static_cast<double>(v.size());
  double rank = phi * (n - 1);
  size_t lo = static_cast<size_t>(std::max(0.0, std::floor(rank)));
  size_t hi = static_cast<size_t>(std::min(n - 1, lo + 1.0));
  double w = rank - std::floor(rank);
  return v[lo] * (1 - w) + v[hi] * w;
}

// Prometheus' extrapolatedRate (counter, rate) over (t-range, t].
bool CounterRate(std::span<const std::pair<int64_t, double>> s, int64_t wstart, int64_t wend, double* out) {
  if (s.size() < 2) return false;
  double result = s.back().second - s.front().second;
  double prev = s.front().second;
  for (const auto& [t, v] : s) {
    if (v < prev) result += prev;
    prev = v;
  }
  double range_s = static_cast<double>(wend - wstart) / 1e9;
  double to_start = static_cast<double>(s.front().first - wstart) / 1e9;
  double to_end = static_cast<double>(wend - s.back().first) / 1e9;
  double sampled = static_cast<double>(s.back().first - s.front().first) / 1e9;
  double avg_interval = sampled / static_cast<double>(s.size() - 1);
  if (result > 0 && s.front().second >= 0) {
    double to_zero = sampled * (s.front().second / result);
    if (to_zero < to_start) to_start = to_zero;
  }
  double threshold = avg_interval * 1.1;
  double extrapolate = sampled;
  extrapolate += to_start < threshold ? to_start : avg_interval / 2;
  extrapolate += to_end < threshold ? to_end : avg_interval / 2;
  *out = result * (extrapolate / sampled) / range_s;
  return true;
}

// `push`: a grouping pushed down from an enclosing `sum by (...)`, applied to
// each sample as it is extracted (Loki does the same), so
// `sum by (level) (count_over_time({...} | json [1h]))` never materialises a
// series per distinct parsed label set.
Result<Value> EvalRange(Ctx& c, const Expr& e, const Grouping* push = nullptr) {
  Value out;
  out.steps.resize(c.times.size());
  int64_t first = c.times.front() - e.offset_ns - e.range_ns + 1;  // (t-range, t]
  int64_t last = c.times.back() - e.offset_ns + 1;
  Pushdown pd = PlanPushdown(e.selector.stages);
  std::span<const Stage> rest(e.selector.stages.data() + pd.stages_pushed,
                              e.selector.stages.size() - pd.stages_pushed);
  LogPipeline pipe(rest);
  std::optional<LogPipeline> post;
  if (e.unwrap) post.emplace(e.unwrap->post_filters);
  std::map<Labels, std::vector<std::pair<int64_t, double>>> series;
  LineLabels lbs;
  std::string line;
  Status err;
  // Fast path: every stage went to the store (or there were none) and no
  // unwrap, so a line without structured metadata counts under its stream's
  // labels. Those are resolved once per stream and batch (the stream object
  // lives for one batch; c.stats->batches tells batches apart), not per line:
  // no line copy, no LineLabels, no Labels built, no map lookup per line.
  const bool direct = rest.empty() && !e.unwrap;
  const bool bytes_op = e.range_op == RangeOp::kBytes || e.range_op == RangeOp::kBytesRate;
  const Labels* cached_stream = nullptr;
  uint64_t cached_batch = 0;
  std::vector<std::pair<int64_t, double>>* cached_series = nullptr;
  Status st = Scan(c.q, e.selector, pd, first, last, false, c.opts.metric_batch_lines, c.opts, c.stats,
                   [&](const Labels& stream, const LogEntry& en) {
                     if (direct && en.metadata.empty()) {
                       if (cached_series == nullptr || cached_stream != &stream ||
                           cached_batch != c.stats->batches) {
                         Labels l = stream;
                         if (e.grouping.present) l = Grouped(l, e.grouping);
                         if (push) l = Grouped(l, *push);
                         cached_series = &series[std::move(l)];
                         cached_stream = &stream;
                         cached_batch = c.stats->batches;
                         if (series.size() > c.opts.max_series) {
                           err = ResourceExhaustedError("maximum of series (" +
                                                        std::to_string(c.opts.max_series) +
                                                        ") reached for a single query");
                           return false;
                         }
                       }
                       cached_series->emplace_back(en.ts, bytes_op ? static_cast<double>(en.line.size()) : 1.0);
                       return true;
                     }
                     lbs.Reset(stream, en.metadata);
                     line = en.line;
                     if (!pipe.Process(en.ts, &line, &lbs)) return true;
                     double v = 1;
                     if (e.range_op == RangeOp::kBytes || e.range_op == RangeOp::kBytesRate) {
                       v = static_cast<double>(line.size());
                     }
                     if (e.unwrap) {
                       std::string s(lbs.Get(e.unwrap->label));
                       Result<double> conv = 0.0;
                       if (e.unwrap->conv == UnwrapConv::kDuration) {
                         conv = ParseDurationSeconds(s);
                       } else if (e.unwrap->conv == UnwrapConv::kBytes) {
                         conv = ParseBytes(s);
                       } else {
                         char* end = nullptr;
                         double d = std::strtod(s.c_str(), &end);
                         if (s.empty() || end != s.c_str() + s.size()) {
                           conv = InvalidArgumentError("strconv.ParseFloat: parsing \"" + s + "\": invalid syntax");
                         } else {
                           conv = d;
                         }
                       }
                       if (!conv.ok()) {
                         lbs.SetErr("SampleExtractionErr", conv.status().message());
                       } else {
                         v = *conv;
                       }
                       if (!post->Process(en.ts, &line, &lbs)) return true;
                       lbs.Del(e.unwrap->label);
                     }
                     Labels l = lbs.ToLabels();
                     if (l.Has(kErrorLabel)) {
                       err = InvalidArgumentError(PipelineError(l));
                       return false;
                     }
                     if (e.grouping.present) l = Grouped(l, e.grouping);
                     if (push) l = Grouped(l, *push);
                     auto& s = series[std::move(l)];
                     s.emplace_back(en.ts, v);
                     if (series.size() > c.opts.max_series) {
                       err = ResourceExhaustedError("maximum of series (" + std::to_string(c.opts.max_series) +
                                                    ") reached for a single query");
                       return false;
                     }
                     return true;
                   });
  TELKIT_RETURN_IF_ERROR(st);
  TELKIT_RETURN_IF_ERROR(err);
  double range_s = static_cast<double>(e.range_ns) / 1e9;
  for (auto& [labels, pts] : series) {
    auto by_time = [](const auto& a, const auto& b) { return a.first < b.first; };
    if (!std::is_sorted(pts.begin(), pts.end(), by_time)) std::stable_sort(pts.begin(), pts.end(), by_time);
  }
  for (size_t i = 0; i < c.times.size(); ++i) {
    int64_t wend = c.times[i] - e.offset_ns;
    int64_t wstart = wend - e.range_ns;
    bool any = false;
    for (const auto& [labels, pts] : series) {
      auto lo = std::upper_bound(pts.begin(), pts.end(), wstart,
                                 [](int64_t t, const std::pair<int64_t, double>& p) { return t < p.first; });
      auto hi = std::upper_bound(pts.begin(), pts.end(), wend,
                                 [](int64_t t, const std::pair<int64_t, double>& p) { return t < p.first; });
      if (lo == hi) continue;
      any = true;
      if (e.range_op == RangeOp::kAbsent) continue;
      std::span<const std::pair<int64_t, double>> w(&*lo, static_cast<size_t>(hi - lo));
      double n = static_cast<double>(w.size());
      double sum = 0;
      for (const auto& p : w) sum += p.second;
      double v = 0;
      switch (e.range_op) {
        case RangeOp::kCount: v = n; break;
        case RangeOp::kRate:
        case RangeOp::kBytesRate: v = sum / range_s; break;
        case RangeOp::kBytes:
        case RangeOp::kSum: v = sum; break;
        case RangeOp::kAvg: v = sum / n; break;
        case RangeOp::kMin:
          v = w[0].second;
          for (const auto& p : w) v = std::min(v, p.second);
          break;
        case RangeOp::kMax:
          v = w[0].second;
          for (const auto& p : w) v = std::max(v, p.second);
          break;
        case RangeOp::kStddev:
        case RangeOp::kStdvar: {
          double mean = 0, m2 = 0, count = 0;
          for (const auto& p : w) {  // Welford
            count += 1;
            double d = p.second - mean;
            mean += d / count;
            m2 += d * (p.second - mean);
          }
          v = m2 / count;
          if (e.range_op == RangeOp::kStddev) v = std::sqrt(v);
          break;
        }
        case RangeOp::kQuantile: {
          std::vector<double> vals;
          for (const auto& p : w) vals.push_back(p.second);
          v = Quantile(e.param, std::move(vals));
          break;
        }
        case RangeOp::kFirst: v = w.front().second; break;
        case RangeOp::kLast: v = w.back().second; break;
        case RangeOp::kRateCounter:
          if (!CounterRate(w, wstart, wend, &v)) continue;
          break;
        case RangeOp::kAbsent: break;
      }
      out.steps[i].push_back(Sample{labels, v});
    }
    if (e.range_op == RangeOp::kAbsent && !any) {
      std::vector<Label> ls;
      for (const LabelMatcher& m : e.selector.matchers) {
        if (m.type() == MatchType::kEqual) ls.push_back(Label{m.name(), m.value()});
      }
      auto l = Labels::FromUnsorted(std::move(ls));
      out.steps[i].push_back(Sample{l.ok() ? *l : Labels(), 1});
    }
  }
  return out;
}

Result<Value> Eval(Ctx& c, const Expr& e);

bool CanPushGrouping(const Expr& agg) {
  if (agg.agg_op != AggOp::kSum || agg.lhs->kind != Expr::Kind::kRange || agg.lhs->grouping.present) return false;
  switch (agg.lhs->range_op) {
    case RangeOp::kCount:
    case RangeOp::kRate:
    case RangeOp::kBytes:
    case RangeOp::kBytesRate:
    case RangeOp::kSum: return true;
    default: return false;
  }
}

Result<Value> EvalAgg(Ctx& c, const Expr& e) {
  Value in;
  if (CanPushGrouping(e)) {
    Grouping g = e.grouping;
    g.present = true;  // sum(...) without by: everything in one group
    TELKIT_ASSIGN_OR_RETURN(in, EvalRange(c, *e.lhs, &g));
  } else {
    TELKIT_ASSIGN_OR_RETURN(in, Eval(c, *e.lhs));
  }
  if (in.scalar) return InvalidArgumentError("vector aggregation " + AggOpName(e.agg_op) + " needs a vector");
  Value out;
  out.steps.resize(in.steps.size());
  for (size_t i = 0; i < in.steps.size(); ++i) {
    Vec& v = in.steps[i];
    if (e.agg_op == AggOp::kSort || e.agg_op == AggOp::kSortDesc) {
      bool desc = e.agg_op == AggOp::kSortDesc;
      std::stable_sort(v.begin(), v.end(), [desc](const Sample& a, const Sample& b) {
        if (std::isnan(a.v)) return false;
        if (std::isnan(b.v)) return true;
        return desc ? a.v > b.v : a.v < b.v;
      });
      out.steps[i] = std::move(v);
      continue;
    }
    // Groups in first-seen order.
    std::map<Labels, size_t> index;
    std::vector<std::pair<Labels, std::vector<const Sample*>>> groups;
    for (const Sample& s : v) {
      Labels g = e.grouping.present ? Grouped(s.labels, e.grouping) : Labels();
      auto [it, ins] = index.emplace(g, groups.size());
      if (ins) groups.emplace_back(g, std::vector<const Sample*>{});
      groups[it->second].second.push_back(&s);
    }
    for (auto& [g, members] : groups) {
      if (e.agg_op == AggOp::kTopk || e.agg_op == AggOp::kBottomk) {
        bool top = e.agg_op == AggOp::kTopk;
        std::vector<const Sample*> m = members;
        std::stable_sort(m.begin(), m.end(), [top](const Sample* a, const Sample* b) {
          if (std::isnan(a->v)) return false;
          if (std::isnan(b->v)) return true;
          return top ? a->v > b->v : a->v < b->v;
        });
        size_t k = std::min(m.size(), static_cast<size_t>(e.param));
        for (size_t j = 0; j < k; ++j) out.steps[i].push_back(*m[j]);
        continue;
      }
      double n = static_cast<double>(members.size());
      double r = 0;
      switch (e.agg_op) {
        case AggOp::kSum:
          for (const Sample* s : members) r += s->v;
          break;
        case AggOp::kAvg:
          for (const Sample* s : members) r += s->v;
          r /= n;
          break;
        case AggOp::kCount: r = n; break;
        case AggOp::kMin:
          r = members[0]->v;
          for (const Sample* s : members) {
            if (s->v < r || std::isnan(r)) r = s->v;
          }
          break;
        case AggOp::kMax:
          r = members[0]->v;
          for (const Sample* s : members) {
            if (s->v > r || std::isnan(r)) r = s->v;
          }
          break;
        case AggOp::kStddev:
        case AggOp::kStdvar: {
          double mean = 0, m2 = 0, cnt = 0;
          for (const Sample* s : members) {
            cnt += 1;
            double d = s->v - mean;
            mean += d / cnt;
            m2 += d * (s->v - mean);
          }
          r = m2 / cnt;
          if (e.agg_op == AggOp::kStddev) r = std::sqrt(r);
          break;
        }
        default: break;
      }
      out.steps[i].push_back(Sample{g, r});
    }
  }
  return out;
}

double Arith(BinOp op, double a, double b, bool* keep, bool return_bool) {
  *keep = true;
  auto cmp = [&](bool r) {
    if (return_bool) return r ? 1.0 : 0.0;
    *keep = r;
    return a;
  };
  switch (op) {
    case BinOp::kAdd: return a + b;
    case BinOp::kSub: return a - b;
    case BinOp::kMul: return a * b;
    case BinOp::kDiv: return a / b;
    case BinOp::kMod: return std::fmod(a, b);
    case BinOp::kPow: return std::pow(a, b);
    case BinOp::kEq: return cmp(a == b);
    case BinOp::kNe: return cmp(a != b);
    case BinOp::kGt: return cmp(a > b);
    case BinOp::kGe: return cmp(a >= b);
    case BinOp::kLt: return cmp(a < b);
    case BinOp::kLe: return cmp(a <= b);
    default: return 0;
  }
}

Labels MatchSig(const Labels& l, const Expr& e) {
  if (!e.has_matching) return l;
  Grouping g;
  g.present = true;
  g.without = !e.on;
  g.labels = e.matching;
  return Grouped(l, g);
}

Labels ResultLabels(const Labels& lhs, const Labels& rhs, const Expr& e) {
  if (e.card == Expr::Card::kOneToOne) {
    if (!e.has_matching) return lhs;
    return MatchSig(lhs, e);
  }
  Labels out = lhs;
  for (const std::string& n : e.include) out.Set(n, rhs.Get(n));
  return out;
}

Result<Value> EvalBinary(Ctx& c, const Expr& e) {
  TELKIT_ASSIGN_OR_RETURN(Value l, Eval(c, *e.lhs));
  TELKIT_ASSIGN_OR_RETURN(Value r, Eval(c, *e.rhs));
  Value out;
  out.scalar = l.scalar && r.scalar;
  out.steps.resize(c.times.size());
  bool comparison = e.bin_op >= BinOp::kEq && e.bin_op <= BinOp::kLe;
  for (size_t i = 0; i < c.times.size(); ++i) {
    Vec& lv = l.steps[i];
    Vec& rv = r.steps[i];
    if (l.scalar || r.scalar) {
      if (l.scalar && r.scalar) {
        bool keep;
        double v = Arith(e.bin_op, lv[0].v, rv[0].v, &keep, true);
        out.steps[i].push_back(Sample{Labels(), v});
        continue;
      }
      Vec& vec = l.scalar ? rv : lv;
      double sc = l.scalar ? lv[0].v : rv[0].v;
      for (Sample& s : vec) {
        bool keep;
        double a = l.scalar ? sc : s.v, b = l.scalar ? s.v : sc;
        double v = Arith(e.bin_op, a, b, &keep, e.return_bool);
        if (!keep) continue;
        if (comparison && !e.return_bool) v = s.v;  // the vector's value
        out.steps[i].push_back(Sample{s.labels, v});
      }
      continue;
    }
    if (e.bin_op == BinOp::kAnd || e.bin_op == BinOp::kOr || e.bin_op == BinOp::kUnless) {
      std::set<Labels> rsigs;
      for (const Sample& s : rv) rsigs.insert(MatchSig(s.labels, e));
      if (e.bin_op == BinOp::kAnd) {
        for (Sample& s : lv) {
          if (rsigs.count(MatchSig(s.labels, e))) out.steps[i].push_back(s);
        }
      } else if (e.bin_op == BinOp::kUnless) {
        for (Sample& s : lv) {
          if (!rsigs.count(MatchSig(s.labels, e))) out.steps[i].push_back(s);
        }
      } else {
        std::set<Labels> lsigs;
        for (Sample& s : lv) {
          lsigs.insert(MatchSig(s.labels, e));
          out.steps[i].push_back(s);
        }
        for (Sample& s : rv) {
          if (!lsigs.count(MatchSig(s.labels, e))) out.steps[i].push_back(s);
        }
      }
      continue;
    }
    // Vector matching: the "one" side indexed by signature.
    bool right_many = e.card == Expr::Card::kOneToMany;
    Vec& many = right_many ? rv : lv;
    Vec& one = right_many ? lv : rv;
    std::map<Labels, const Sample*> one_by_sig;
    for (const Sample& s : one) {
      auto [it, ins] = one_by_sig.emplace(MatchSig(s.labels, e), &s);
      if (!ins) {
        return InvalidArgumentError("found duplicate series for the match group " + it->first.ToString() +
                                    " on the " + (right_many ? "left" : "right") +
                                    " hand-side of the operation; many-to-many matching not allowed: matching "
                                    "labels must be unique on one side");
      }
    }
    std::set<Labels> seen;
    for (const Sample& s : many) {
      Labels sig = MatchSig(s.labels, e);
      auto it = one_by_sig.find(sig);
      if (it == one_by_sig.end()) continue;
      const Sample& ls = right_many ? *it->second : s;
      const Sample& rs = right_many ? s : *it->second;
      bool keep;
      double v = Arith(e.bin_op, ls.v, rs.v, &keep, e.return_bool);
      if (!keep) continue;
      Labels res = right_many ? ResultLabels(rs.labels, ls.labels, e) : ResultLabels(ls.labels, rs.labels, e);
      if (e.card == Expr::Card::kOneToOne && !seen.insert(sig).second) {
        return InvalidArgumentError("multiple matches for labels: many-to-one matching must be explicit "
                                    "(group_left/group_right)");
      }
      out.steps[i].push_back(Sample{std::move(res), v});
    }
  }
  return out;
}

Result<Value> Eval(Ctx& c, const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kNumber:
    case Expr::Kind::kVector: {
      Value v;
      v.scalar = e.kind == Expr::Kind::kNumber;
      v.steps.assign(c.times.size(), Vec{Sample{Labels(), e.number}});
      return v;
    }
    case Expr::Kind::kRange: return EvalRange(c, e);
    case Expr::Kind::kVectorAgg: return EvalAgg(c, e);
    case Expr::Kind::kBinary: return EvalBinary(c, e);
    case Expr::Kind::kLog: break;
  }
  return InvalidArgumentError("a log query cannot be part of a metric query");
}

bool TopIsSort(const Expr& e) {
  return e.kind == Expr::Kind::kVectorAgg &&
         (e.agg_op == AggOp::kSort || e.agg_op == AggOp::kSortDesc || e.agg_op == AggOp::kTopk ||
          e.agg_op == AggOp::kBottomk);
}

}  // namespace

std::string_view ResultTypeName(QueryResult::Type t) {
  switch (t) {
    case QueryResult::Type::kStreams: return "streams";
    case QueryResult::Type::kVector: return "vector";
    case QueryResult::Type::kMatrix: return "matrix";
    case QueryResult::Type::kScalar: return "scalar";
  }
  return "";
}

Result<QueryResult> Engine::Query(std::string_view query, const QueryParams& params) {
  TELKIT_ASSIGN_OR_RETURN(auto expr, ParseExpr(query));
  return Execute(*expr, params);
}

Result<QueryResult> Engine::Execute(const Expr& expr, const QueryParams& p) {
  if (expr.IsLog()) {
    if (p.instant()) {
      return InvalidArgumentError(
          "log queries are not supported as an instant query type, please change your query to a range query "
          "type");
    }
    if (p.end_ns < p.start_ns) return InvalidArgumentError("end timestamp must not be before start time");
    return RunLogQuery(querier_, expr.selector, p, options_);
  }
  QueryResult out;
  Ctx c{querier_, options_, {}, &out.stats};
  if (p.instant()) {
    c.times.push_back(p.start_ns);
  } else {
    if (p.end_ns < p.start_ns) return InvalidArgumentError("end timestamp must not be before start time");
    if (p.step_ns <= 0) {
      return InvalidArgumentError("zero or negative query resolution step widths are not accepted. Try a positive "
                                  "integer");
    }
    uint64_t n = static_cast<uint64_t>((p.end_ns - p.start_ns) / p.step_ns) + 1;
    if (n > options_.max_points) {
      return InvalidArgumentError("exceeded maximum resolution of " + std::to_string(options_.max_points) +
                                  " points per timeseries. Try increasing the value of the step parameter");
    }
    for (int64_t t = p.start_ns; t <= p.end_ns; t += p.step_ns) c.times.push_back(t);
  }
  TELKIT_ASSIGN_OR_RETURN(Value v, Eval(c, expr));
  if (p.instant()) {
    if (v.scalar) {
      out.type = QueryResult::Type::kScalar;
      out.scalar = v.steps[0][0].v;
      out.scalar_ts = p.start_ns;
      return out;
    }
    out.type = QueryResult::Type::kVector;
    for (Sample& s : v.steps[0]) {
      out.series.push_back(SeriesResult{std::move(s.labels), {{p.start_ns, s.v}}});
    }
    if (!TopIsSort(expr)) {
      std::stable_sort(out.series.begin(), out.series.end(),
                       [](const SeriesResult& a, const SeriesResult& b) { return a.labels < b.labels; });
    }
    return out;
  }
  out.type = QueryResult::Type::kMatrix;
  std::map<Labels, SeriesResult> m;
  for (size_t i = 0; i < c.times.size(); ++i) {
    for (Sample& s : v.steps[i]) {
      SeriesResult& sr = m[s.labels];
      sr.labels = s.labels;
      sr.points.emplace_back(c.times[i], s.v);
    }
  }
  if (m.size() > options_.max_series) {
    return ResourceExhaustedError("maximum of series (" + std::to_string(options_.max_series) +
                                  ") reached for a single query");
  }
  for (auto& [l, s] : m) out.series.push_back(std::move(s));
  return out;
}

}  // namespace telkit::logql
