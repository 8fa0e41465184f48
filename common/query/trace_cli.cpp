#include "common/query/trace_cli.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>

#include "common/fs/file_system.h"
#include "common/logstore/log_store.h"
#include "common/promql/engine.h"
#include "common/promql/query_output.h"
#include "common/query/query_cli.h"
#include "common/tracestore/span_record.h"
#include "common/tracestore/trace_reader.h"

namespace telkit::query {
namespace {

const char* KindName(int k) {
  static const char* kNames[] = {"unspecified", "internal", "server", "client", "producer", "consumer"};
  return k >= 0 && k < 6 ? kNames[k] : "unspecified";
}

std::string Rfc3339(int64_t ns) {
  time_t s = static_cast<time_t>(ns / 1'000'000'000);
  int64_t ms = (ns / 1'000'000) % 1000;
  struct tm tm {};
  gmtime_r(&s, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ms));
  return buf;
}

// Display columns of UTF-8 text (one per code point).
size_t Columns(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// `s` cut or padded to exactly `w` columns.
std::string Fit(std::string_view s, size_t w) {
  std::string out;
  size_t cols = 0;
  for (size_t k = 0; k < s.size();) {
    size_t len = 1;
    unsigned char c = static_cast<unsigned char>(s[k]);
    if (c >= 0xF0) len = 4;
    else if (c >= 0xE0) len = 3;
    else if (c >= 0xC0) len = 2;
    if (cols + 1 > w || (cols + 1 == w && Columns(s.substr(k)) > 1)) {
      if (w > 0) out += "\xe2\x80\xa6";  // …
      ++cols;
      break;
    }
    out.append(s.substr(k, len));
    ++cols;
    k += len;
  }
  if (cols < w) out.append(w - cols, ' ');
  return out;
}

std::string Pad(std::string s, size_t w, bool right = false) {
  size_t c = Columns(s);
  if (c >= w) return s;
  return right ? std::string(w - c, ' ') + s : s + std::string(w - c, ' ');
}

const char* kColors[] = {"\x1b[36m", "\x1b[33m", "\x1b[35m", "\x1b[32m", "\x1b[34m", "\x1b[96m", "\x1b[93m", "\x1b[95m"};
constexpr const char* kRed = "\x1b[31m";
constexpr const char* kReset = "\x1b[0m";
constexpr const char* kDim = "\x1b[2m";

std::string AttrText(const traceql::Attribute& a) {
  return a.key + "=" + (a.value.type == traceql::ValueType::kString ? a.value.ToString() : a.value.Plain());
}

}  // namespace

std::string FormatWaterfall(const traceql::TraceView& t, const WaterfallOptions& o) {
  std::string out;
  if (t.spans.empty()) return out;
  const int width = std::max(o.width, 60);
  // Children by parent, roots (and orphans) in start order.
  std::vector<std::vector<int>> children(t.spans.size());
  std::vector<int> roots;
  for (size_t k = 0; k < t.spans.size(); ++k) {
    int p = t.spans[k].parent;
    if (p >= 0) children[p].push_back(static_cast<int>(k));
    else roots.push_back(static_cast<int>(k));
  }
  std::vector<std::pair<int, int>> order;  // span, depth (pre-order, iterative: traces may be deep)
  std::vector<std::pair<int, int>> stack;
  for (auto it = roots.rbegin(); it != roots.rend(); ++it) stack.emplace_back(*it, 0);
  while (!stack.empty()) {
    auto [s, depth] = stack.back();
    stack.pop_back();
    order.emplace_back(s, depth);
    for (auto it = children[s].rbegin(); it != children[s].rend(); ++it) stack.emplace_back(*it, std::min(depth + 1, 30));
  }

  std::map<std::string, const char*> color_of;
  for (const auto& [s, d] : order) {
    const std::string& svc = t.spans[s].service;
    if (!color_of.contains(svc)) color_of[svc] = kColors[color_of.size() % std::size(kColors)];
  }
  const size_t name_w = static_cast<size_t>(std::clamp(width * 30 / 100, 20, 60));
  const size_t svc_w = static_cast<size_t>(std::clamp(width * 12 / 100, 8, 24));
  const size_t kind_w = 8, err_w = 2, dur_w = 10;
  const size_t left = name_w + 1 + svc_w + 1 + kind_w + 1 + err_w + dur_w + 1;
  const size_t bar_w = static_cast<size_t>(std::max<int>(10, width - static_cast<int>(left) - 2));
  const double total = std::max<double>(1, static_cast<double>(t.duration_ns()));

  // Header: the trace and the time axis.
  size_t errors = 0;
  for (const auto& s : t.spans) errors += s.status == traceql::kStatusError;
  out += "Trace " + traceql::Value::String(HexId(t.trace_id)).s + "  " +
         (t.root >= 0 ? t.root_service + ": " + t.root_name : std::string(traceql::kRootNotReceived)) + "  " +
         std::to_string(t.spans.size()) + " spans  " + traceql::FormatDuration(static_cast<int64_t>(t.duration_ns())) +
         "  " + Rfc3339(static_cast<int64_t>(t.start_ns)) + (errors ? "  " + std::to_string(errors) + " errors" : "") +
         "\n";
  std::string axis(bar_w + 2, ' ');
  auto put = [&](size_t col, const std::string& label) {
    for (size_t i = 0; i < label.size() && col + i < axis.size(); ++i) axis[col + i] = label[i];
  };
  put(1, "0s");
  std::string mid = traceql::FormatDuration(static_cast<int64_t>(t.duration_ns() / 2));
  put(1 + bar_w / 2 - mid.size() / 2, mid);
  std::string end = traceql::FormatDuration(static_cast<int64_t>(t.duration_ns()));
  put(bar_w + 1 - std::min(end.size(), bar_w), end);
  out += std::string(left, ' ') + axis + "\n";

  for (const auto& [s, depth] : order) {
    const traceql::SpanView& v = t.spans[s];
    const bool err = v.status == traceql::kStatusError;
    std::string name = std::string(static_cast<size_t>(depth) * 2, ' ') + v.name;
    std::string line = Fit(name, name_w) + " ";
    std::string svc = Fit(v.service, svc_w);
    if (o.color) svc = std::string(color_of[v.service]) + svc + kReset;
    line += svc + " " + Fit(KindName(v.kind), kind_w) + " ";
    line += err ? (o.color ? std::string(kRed) + "! " + kReset : std::string("! ")) : std::string("  ");
    line += Pad(traceql::FormatDuration(static_cast<int64_t>(v.duration_ns())), dur_w, true) + " ";
    // The bar.
    double from = static_cast<double>(v.start_ns - std::min(v.start_ns, t.start_ns)) / total;
    double len = static_cast<double>(v.duration_ns()) / total;
    size_t a = std::min(bar_w - 1, static_cast<size_t>(from * static_cast<double>(bar_w)));
    size_t n = std::max<size_t>(1, static_cast<size_t>(std::lround(len * static_cast<double>(bar_w))));
    n = std::min(n, bar_w - a);
    std::string bar = "|" + std::string(a, ' ');
    std::string fill;
    for (size_t i = 0; i < n; ++i) fill += err ? "\xe2\x96\x93" : "\xe2\x96\x88";  // ▓ / █
    if (o.color) fill = std::string(err ? kRed : color_of[v.service]) + fill + kReset;
    bar += fill + std::string(bar_w - a - n, ' ') + "|";
    out += line + bar + "\n";
    if (o.attributes) {
      std::string indent = std::string(static_cast<size_t>(depth) * 2 + 4, ' ');
      auto attr_line = [&](const std::string& text) {
        out += (o.color ? std::string(kDim) : "") + indent + text + (o.color ? kReset : "") + "\n";
      };
      attr_line("span " + HexId(v.span_id) + (v.parent_id.empty() ? "" : " parent " + HexId(v.parent_id)));
      if (!v.status_message.empty()) attr_line("status " + std::string(err ? "error" : "ok") + ": " + v.status_message);
      for (const auto& a : v.attributes) attr_line(AttrText(a));
      for (const auto& e : v.events) {
        std::string text = "event " + traceql::FormatDuration(static_cast<int64_t>(e.time_ns - std::min(e.time_ns, v.start_ns))) +
                           " " + e.name;
        for (const auto& a : e.attributes) text += " " + AttrText(a);
        attr_line(text);
      }
      for (const auto& l : v.links) attr_line("link " + HexId(l.trace_id) + "/" + HexId(l.span_id));
    }
  }
  return out;
}

Result<std::vector<TraceLogLine>> TraceLogLines(const std::string& logs_dir, const std::string& trace_hex,
                                                int64_t start_ns, int64_t end_ns, size_t limit) {
  TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<LogReader> reader, LogReader::Open(DefaultFileSystem(), logs_dir));
  LogQuery q;
  q.start_ns = start_ns;
  q.end_ns = end_ns;
  q.limit = 0;
  TELKIT_ASSIGN_OR_RETURN(std::vector<LogStreamResult> streams, reader->Select(q));
  std::vector<TraceLogLine> out;
  for (const LogStreamResult& s : streams) {
    std::string labels = "{";
    for (size_t i = 0; i < s.stream.size(); ++i) {
      const Label& l = s.stream[i];
      labels += (i ? ", " : "") + l.name + "=\"" + l.value + "\"";
    }
    labels += "}";
    for (const LogEntry& e : s.entries) {
      bool hit = false;
      std::string span;
      for (const Label& m : e.metadata) {
        if (m.name == "trace_id" && m.value == trace_hex) hit = true;
        if (m.name == "span_id") span = m.value;
      }
      if (hit) out.push_back({e.ts, labels, e.line, span});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const TraceLogLine& a, const TraceLogLine& b) { return a.ts_ns < b.ts_ns; });
  if (limit != 0 && out.size() > limit) out.resize(limit);
  return out;
}

std::string FormatTraceLogLines(const std::vector<TraceLogLine>& lines, bool color) {
  std::string out = "Logs (" + std::to_string(lines.size()) + ")\n";
  for (const TraceLogLine& l : lines) {
    out += Rfc3339(l.ts_ns) + " " + (color ? std::string(kDim) : "") + l.stream +
           (l.span_id.empty() ? "" : " span=" + l.span_id) + (color ? kReset : "") + " " + l.line + "\n";
  }
  return out;
}

std::string FormatTraceqlTable(const traceql::SearchResult& r) {
  std::vector<std::vector<std::string>> rows = {{"TRACE ID", "ROOT SERVICE", "ROOT NAME", "START", "DURATION", "SPANS"}};
  for (const traceql::TraceMatch& t : r.traces) {
    size_t matched = 0;
    for (const auto& s : t.spansets) matched += s.matched;
    rows.push_back({HexId(t.trace_id), t.root_service, t.root_name, Rfc3339(static_cast<int64_t>(t.start_ns)),
                    traceql::FormatDuration(static_cast<int64_t>(t.duration_ns)),
                    std::to_string(matched) + "/" + std::to_string(t.spans)});
  }
  std::vector<size_t> w(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) w[c] = std::max(w[c], std::min<size_t>(Columns(row[c]), 40));
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      std::string cell = Columns(row[c]) > 40 ? Fit(row[c], 40) : row[c];
      line += c + 1 == row.size() ? cell : Pad(cell, w[c]) + "  ";
    }
    out += line + "\n";
  }
  return out;
}

std::string FormatTraceqlJson(const traceql::SearchResult& r) {
  using nlohmann::json;
  json traces = json::array();
  for (const traceql::TraceMatch& t : r.traces) {
    json sets = json::array();
    for (const auto& ss : t.spansets) {
      json spans = json::array();
      for (const auto& sp : ss.spans) {
        json attrs = json::object();
        for (const auto& a : sp.attributes) attrs[a.key] = a.value.Plain();
        spans.push_back({{"spanID", HexId(sp.span_id)},
                         {"name", sp.name},
                         {"startTimeUnixNano", std::to_string(sp.start_ns)},
                         {"durationNanos", std::to_string(sp.duration_ns)},
                         {"attributes", attrs}});
      }
      json attrs = json::object();
      for (const auto& a : ss.attributes) attrs[a.key] = a.value.Plain();
      sets.push_back({{"spans", spans}, {"matched", ss.matched}, {"attributes", attrs}});
    }
    traces.push_back({{"traceID", HexId(t.trace_id)},
                      {"rootServiceName", t.root_service},
                      {"rootTraceName", t.root_name},
                      {"startTimeUnixNano", std::to_string(t.start_ns)},
                      {"durationMs", t.duration_ns / 1'000'000},
                      {"spans", t.spans},
                      {"spanSets", sets}});
  }
  json doc = {{"traces", traces},
              {"metrics", {{"inspectedTraces", r.inspected_traces}, {"inspectedSpans", r.inspected_spans}}}};
  return doc.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<std::vector<ServiceEdge>> ServiceGraph(Querier& querier, int64_t t_ms, const std::string& window) {
  promql::EngineOptions eo;
  eo.compat = promql::Compat::kPrometheus3;
  promql::Engine engine(eo);
  std::map<std::pair<std::string, std::string>, ServiceEdge> edges;
  auto run = [&](const std::string& expr, const std::function<void(ServiceEdge&, double)>& set) -> Status {
    TELKIT_ASSIGN_OR_RETURN(promql::QueryResult r, engine.InstantQuery(querier, expr, t_ms));
    for (const promql::Series& s : r.series) {
      if (s.points.empty()) continue;
      std::pair<std::string, std::string> key{std::string(s.labels.Get("client")), std::string(s.labels.Get("server"))};
      auto [it, fresh] = edges.try_emplace(key);
      if (fresh) {
        it->second.client = key.first;
        it->second.server = key.second;
        it->second.p50_s = it->second.p95_s = std::nan("");
      }
      set(it->second, s.points.back().v);
    }
    return OkStatus();
  };
  const std::string w = "[" + window + "]";
  TELKIT_RETURN_IF_ERROR(run("sum by (client, server) (rate(traces_service_graph_request_total" + w + "))",
                             [](ServiceEdge& e, double v) { e.rate = v; }));
  TELKIT_RETURN_IF_ERROR(run("sum by (client, server) (rate(traces_service_graph_request_failed_total" + w + "))",
                             [](ServiceEdge& e, double v) { e.error_ratio = v; }));
  for (auto [q, field] : {std::pair{"0.5", &ServiceEdge::p50_s}, std::pair{"0.95", &ServiceEdge::p95_s}}) {
    TELKIT_RETURN_IF_ERROR(run(std::string("histogram_quantile(") + q +
                                   ", sum by (client, server, le) (rate(traces_service_graph_request_server_seconds_bucket" +
                                   w + ")))",
                               [field](ServiceEdge& e, double v) { e.*field = v; }));
  }
  std::vector<ServiceEdge> out;
  for (auto& [k, e] : edges) {
    e.error_ratio = e.rate > 0 ? e.error_ratio / e.rate : 0;
    out.push_back(std::move(e));
  }
  return out;
}

std::string FormatServiceGraph(const std::vector<ServiceEdge>& edges) {
  if (edges.empty()) return "no service graph data\n";
  auto secs = [](double s) {
    if (std::isnan(s)) return std::string("-");
    return traceql::FormatDuration(static_cast<int64_t>(std::llround(s * 1e9)));
  };
  std::vector<std::vector<std::string>> rows = {{"CLIENT", "", "SERVER", "RATE/S", "ERRORS", "P50", "P95"}};
  for (const ServiceEdge& e : edges) {
    char rate[32], err[32];
    std::snprintf(rate, sizeof rate, "%.3g", e.rate);
    std::snprintf(err, sizeof err, "%.1f%%", e.error_ratio * 100);
    rows.push_back({e.client, "\xe2\x86\x92", e.server, rate, err, secs(e.p50_s), secs(e.p95_s)});
  }
  std::vector<size_t> w(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) w[c] = std::max(w[c], Columns(row[c]));
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const bool numeric = c >= 3;
      std::string cell = Pad(row[c], w[c], numeric);
      line += cell + (c + 1 == row.size() ? "" : "  ");
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

Result<traceql::SearchOptions> TraceqlSearchOptions(const TraceqlSearchFlags& f, int64_t now_ms) {
  traceql::SearchOptions o;
  o.limit = f.limit;
  o.spans_per_spanset = f.spans_per_spanset;
  if (!f.since.empty() && (!f.start.empty() || !f.end.empty())) {
    return InvalidArgumentError("--since excludes --start and --end");
  }
  if (!f.since.empty()) {
    auto d = promql::ParseApiDuration(f.since);
    if (!d.ok()) return InvalidArgumentError("--since: " + std::string(d.status().message()));
    o.start_ns = (now_ms - *d) * 1'000'000;
  }
  for (auto [text, into] : {std::pair{&f.start, &o.start_ns}, std::pair{&f.end, &o.end_ns}}) {
    if (text->empty()) continue;
    auto v = ParseCliTime(*text, now_ms);
    if (!v.ok()) return InvalidArgumentError(std::string(v.status().message()));
    *into = *v * 1'000'000;
  }
  return o;
}

Result<int64_t> ServicesTime(const std::string& at, const std::string& window, int64_t now_ms) {
  int64_t t = now_ms;
  if (!at.empty()) {
    auto v = ParseCliTime(at, now_ms);
    if (!v.ok()) return InvalidArgumentError(std::string(v.status().message()));
    t = *v;
  }
  if (auto d = promql::ParseApiDuration(window); !d.ok() || *d <= 0) {
    return InvalidArgumentError("--window: invalid duration '" + window + "'");
  }
  return t;
}

Result<std::string> RenderTrace(const std::string& traces_dir, const std::string& trace_hex,
                                const std::string& logs_dir, const WaterfallOptions& options) {
  auto id = ParseHexId(trace_hex);
  if (!id.ok() || id->size() != 16) {
    return InvalidArgumentError("invalid trace id '" + trace_hex + "': want 32 hex digits");
  }
  const std::string& trace_id = *id;
  auto reader = TraceReader::Open(traces_dir);
  if (!reader.ok()) return reader.status().WithContext("open the trace store '" + traces_dir + "'");
  auto spans = (*reader)->TraceById(trace_id);
  if (!spans.ok()) return spans.status();
  if (spans->empty()) return NotFoundError("trace '" + trace_hex + "' not found");
  auto view = traceql::DecodeTrace(*spans);
  if (!view.ok()) return view.status();
  std::string out = FormatWaterfall(*view, options);
  if (!logs_dir.empty()) {
    const int64_t margin = 60'000'000'000;
    auto lines = TraceLogLines(logs_dir, HexId(trace_id), static_cast<int64_t>(view->start_ns) - margin,
                               static_cast<int64_t>(view->end_ns) + margin);
    if (!lines.ok()) return lines.status().WithContext("read the log store '" + logs_dir + "'");
    out += "\n" + FormatTraceLogLines(*lines, options.color);
  }
  return out;
}

}  // namespace telkit::query
