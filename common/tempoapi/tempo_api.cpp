#include "common/tempoapi/tempo_api.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <set>

#include "common/fs/file_system.h"
#include "common/otlp/otlp_json.h"
#include "common/traceql/engine.h"
#include "common/traceql/parser.h"
#include "common/tracestore/trace_reader.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit::tempoapi {
namespace {

using nlohmann::json;
using traceql::Value;
using traceql::ValueType;

TempoResponse Text(int status, std::string body) { return {status, "text/plain; charset=utf-8", std::move(body)}; }

TempoResponse Json(const json& j) {
  return {200, "application/json", j.dump(-1, ' ', false, json::error_handler_t::replace)};
}

const std::string* Param(const TempoRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.params) {
    if (k == name) return &v;
  }
  return nullptr;
}

// TraceReader for the directory; nullptr when there is no store yet.
Result<std::unique_ptr<TraceReader>> OpenReader(const std::string& dir) {
  auto r = TraceReader::Open(dir);
  if (!r.ok() && r.status().code() == StatusCode::kNotFound) return std::unique_ptr<TraceReader>();
  return r;
}

json AnyJson(const Value& v) {
  switch (v.type) {
    case ValueType::kInt: return {{"intValue", std::to_string(v.i)}};
    case ValueType::kFloat: return {{"doubleValue", v.f}};
    case ValueType::kBool: return {{"boolValue", v.i != 0}};
    case ValueType::kString: return {{"stringValue", v.s}};
    default: return {{"stringValue", v.Plain()}};  // status, kind, duration as Tempo prints them
  }
}

json AttrsJson(const std::vector<traceql::Attribute>& attrs) {
  json a = json::array();
  for (const auto& at : attrs) a.push_back({{"key", at.key}, {"value", AnyJson(at.value)}});
  return a;
}

Result<int64_t> ParseUnixSeconds(const std::string& s) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE || v < 0 || v > 9'000'000'000LL) {
    return InvalidArgumentError("invalid time '" + s + "': want Unix seconds");
  }
  return static_cast<int64_t>(v) * 1'000'000'000;
}

Result<size_t> ParseCount(const std::string& name, const std::string& s) {
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < 0) return InvalidArgumentError("invalid " + name + " '" + s + "'");
  return static_cast<size_t>(v);
}

// Tag names by scope over the traces of a window.
struct TagScan {
  std::map<std::string, std::set<std::string>> scopes;  // span, resource, event, link, instrumentation
};

const char* TypeName(const Value& v) {
  switch (v.type) {
    case ValueType::kInt: return "int";
    case ValueType::kFloat: return "float";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kDuration: return "duration";
    case ValueType::kStatus:
    case ValueType::kKind: return "keyword";
    case ValueType::kNil: return "nil";
  }
  return "string";
}

std::string LogfmtUnquote(std::string_view s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
    std::string out;
    for (size_t k = 1; k + 1 < s.size(); ++k) {
      if (s[k] == '\\' && k + 2 < s.size()) ++k;
      out += s[k];
    }
    return out;
  }
  return std::string(s);
}

std::string QuoteTraceql(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<std::string> ParseTraceIdHex(std::string_view hex) {
  if (hex.empty() || hex.size() > 32) return InvalidArgumentError("invalid trace id '" + std::string(hex) + "'");
  std::string padded(32 - hex.size(), '0');
  padded += hex;
  auto bytes = HexDecode(padded);
  if (!bytes.ok()) return InvalidArgumentError("invalid trace id '" + std::string(hex) + "'");
  return *bytes;
}

Result<std::string> TagsToTraceql(std::string_view logfmt) {
  std::vector<std::string> conds;
  size_t k = 0;
  while (k < logfmt.size()) {
    while (k < logfmt.size() && logfmt[k] == ' ') ++k;
    if (k >= logfmt.size()) break;
    size_t eq = logfmt.find('=', k);
    if (eq == std::string_view::npos) return InvalidArgumentError("invalid tags '" + std::string(logfmt) + "'");
    std::string key(logfmt.substr(k, eq - k));
    size_t v = eq + 1, e = v;
    if (e < logfmt.size() && logfmt[e] == '"') {
      ++e;
      while (e < logfmt.size() && logfmt[e] != '"') e += logfmt[e] == '\\' ? 2 : 1;
      e = std::min(e + 1, logfmt.size());
    } else {
      while (e < logfmt.size() && logfmt[e] != ' ') ++e;
    }
    std::string value = LogfmtUnquote(logfmt.substr(v, e - v));
    k = e;
    if (key.empty()) return InvalidArgumentError("invalid tags '" + std::string(logfmt) + "'");
    if (key == "name") {
      conds.push_back("name = " + QuoteTraceql(value));
    } else if (key == "status.code" || key == "status") {
      conds.push_back("status = " + value);
    } else {
      conds.push_back("." + std::string(key.find_first_of(" \"") == std::string::npos ? key : QuoteTraceql(key)) +
                      " = " + QuoteTraceql(value));
    }
  }
  if (conds.empty()) return std::string("{}");
  std::string q = "{ ";
  for (size_t i = 0; i < conds.size(); ++i) q += (i ? " && " : "") + conds[i];
  return q + " }";
}

TempoApi::TempoApi(TempoApiOptions options) : options_(std::move(options)) {
  if (!options_.now_ns) {
    options_.now_ns = [] {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
}

TempoResponse TempoApi::Handle(const TempoRequest& r) const {
  const std::string& p = r.path;
  if (r.method != "GET" && r.method != "POST" && r.method != "HEAD") return Text(405, "method not allowed");
  if (p == "/api/echo") return Text(200, "echo");
  if (p == "/ready") return Text(200, "ready");
  if (p == "/api/status/buildinfo") {
    return Json({{"version", TELKIT_VERSION}, {"revision", ""}, {"branch", ""}, {"buildUser", ""},
                 {"buildDate", ""}, {"goVersion", ""}});
  }
  const bool protobuf = r.accept.find("application/protobuf") != std::string::npos;
  if (p.starts_with("/api/traces/")) return TraceById(p.substr(12), false, protobuf);
  if (p.starts_with("/api/v2/traces/")) return TraceById(p.substr(15), true, protobuf);
  if (p == "/api/search") return Search(r);
  if (p == "/api/search/tags") return TagNames(r, false);
  if (p == "/api/v2/search/tags") return TagNames(r, true);
  for (auto [prefix, v2] : {std::pair{std::string_view("/api/search/tag/"), false},
                            std::pair{std::string_view("/api/v2/search/tag/"), true}}) {
    if (p.starts_with(prefix) && p.ends_with("/values") && p.size() > prefix.size() + 7) {
      return TagValues(r, p.substr(prefix.size(), p.size() - prefix.size() - 7), v2);
    }
  }
  return Text(404, "404 page not found");
}

TempoResponse TempoApi::TraceById(const std::string& hex, bool v2, bool protobuf) const {
  auto id = ParseTraceIdHex(hex);
  if (!id.ok()) return Text(400, std::string(id.status().message()));
  auto reader = OpenReader(options_.traces_dir);
  if (!reader.ok()) return Text(500, std::string(reader.status().message()));
  if (*reader == nullptr) return Text(404, "trace not found");
  auto spans = (*reader)->TraceById(*id);
  if (!spans.ok()) return Text(500, std::string(spans.status().message()));
  if (spans->empty()) return Text(404, "trace not found");
  auto bytes = SpansToTraceRequest(*spans);
  if (!bytes.ok()) return Text(500, std::string(bytes.status().message()));
  if (protobuf) {
    if (!v2) return {200, "application/protobuf", std::move(*bytes)};
    // TraceByIDResponse { Trace trace = 1; }
    std::string out;
    out.push_back('\x0a');
    uint64_t n = bytes->size();
    while (n >= 0x80) {
      out.push_back(static_cast<char>((n & 0x7F) | 0x80));
      n >>= 7;
    }
    out.push_back(static_cast<char>(n));
    out += *bytes;
    return {200, "application/protobuf", std::move(out)};
  }
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest req;
  if (!req.ParseFromString(*bytes)) return Text(500, "trace does not parse");
  std::string body;
  AppendOtlpJson(req, &body);  // {"resourceSpans":[...]}
  constexpr std::string_view kKey = "{\"resourceSpans\":";
  if (!v2) {
    if (body.starts_with(kKey)) body = "{\"batches\":" + body.substr(kKey.size());
  } else {
    body = "{\"trace\":" + body + "}";
  }
  return {200, "application/json", std::move(body)};
}

TempoResponse TempoApi::Search(const TempoRequest& r) const {
  std::string q = "{}";
  if (const std::string* v = Param(r, "q"); v != nullptr && !v->empty()) {
    q = *v;
  } else if (const std::string* t = Param(r, "tags"); t != nullptr && !t->empty()) {
    auto conv = TagsToTraceql(*t);
    if (!conv.ok()) return Text(400, std::string(conv.status().message()));
    q = *conv;
  }
  auto query = traceql::Parse(q);
  if (!query.ok()) return Text(400, std::string(query.status().message()));
  traceql::SearchOptions o;
  if (const std::string* v = Param(r, "limit"); v && !v->empty()) {
    auto n = ParseCount("limit", *v);
    if (!n.ok()) return Text(400, std::string(n.status().message()));
    o.limit = std::min(*n == 0 ? size_t{20} : *n, options_.max_limit);
  }
  if (const std::string* v = Param(r, "spss"); v && !v->empty()) {
    auto n = ParseCount("spss", *v);
    if (!n.ok()) return Text(400, std::string(n.status().message()));
    o.spans_per_spanset = *n == 0 ? 3 : *n;
  }
  for (auto [name, into] : {std::pair{"minDuration", &o.min_duration_ns}, std::pair{"maxDuration", &o.max_duration_ns}}) {
    if (const std::string* v = Param(r, name); v && !v->empty()) {
      auto d = traceql::ParseGoDuration(*v);
      if (!d.ok() || *d < 0) return Text(400, std::string("invalid ") + name + " '" + *v + "'");
      *into = static_cast<uint64_t>(*d);
    }
  }
  const std::string* start = Param(r, "start");
  const std::string* end = Param(r, "end");
  if (start && !start->empty()) {
    auto s = ParseUnixSeconds(*start);
    if (!s.ok()) return Text(400, std::string(s.status().message()));
    o.start_ns = *s;
  }
  if (end && !end->empty()) {
    auto e = ParseUnixSeconds(*end);
    if (!e.ok()) return Text(400, std::string(e.status().message()));
    o.end_ns = *e + 1'000'000'000;  // the whole last second
  }
  if (o.end_ns <= o.start_ns) return Text(400, "invalid start and end: end must be after start");

  json traces = json::array();
  json metrics = {{"inspectedTraces", 0}, {"inspectedBytes", "0"}, {"completedJobs", 1}, {"totalJobs", 1}};
  auto reader = OpenReader(options_.traces_dir);
  if (!reader.ok()) return Text(500, std::string(reader.status().message()));
  if (*reader != nullptr) {
    auto source = traceql::NewTraceReaderSource(reader->get(), options_.max_traces_scanned);
    auto result = traceql::Search(*source, **query, o);
    if (!result.ok()) return Text(500, std::string(result.status().message()));
    for (const traceql::TraceMatch& t : result->traces) {
      json sets = json::array();
      for (const traceql::MatchedSpanset& ss : t.spansets) {
        json spans = json::array();
        for (const traceql::MatchedSpan& sp : ss.spans) {
          json js = {{"spanID", HexId(sp.span_id)},
                     {"name", sp.name},
                     {"startTimeUnixNano", std::to_string(sp.start_ns)},
                     {"durationNanos", std::to_string(sp.duration_ns)}};
          if (!sp.attributes.empty()) js["attributes"] = AttrsJson(sp.attributes);
          spans.push_back(std::move(js));
        }
        json set = {{"spans", std::move(spans)}, {"matched", ss.matched}};
        if (!ss.attributes.empty()) set["attributes"] = AttrsJson(ss.attributes);
        sets.push_back(std::move(set));
      }
      json jt = {{"traceID", HexId(t.trace_id)},
                 {"rootServiceName", t.root_service},
                 {"startTimeUnixNano", std::to_string(t.start_ns)},
                 {"durationMs", t.duration_ns / 1'000'000}};
      if (!t.root_name.empty()) jt["rootTraceName"] = t.root_name;
      if (!sets.empty()) jt["spanSet"] = sets[0];
      jt["spanSets"] = std::move(sets);
      traces.push_back(std::move(jt));
    }
    metrics["inspectedTraces"] = result->inspected_traces;
    metrics["inspectedBytes"] = std::to_string(result->inspected_bytes);
  }
  return Json({{"traces", std::move(traces)}, {"metrics", std::move(metrics)}});
}

namespace {

// Calls fn for every trace of the window (at most max traces).
Status ScanTraces(const std::string& dir, const TempoRequest& r, size_t max,
                  const std::function<void(const traceql::TraceView&)>& fn) {
  TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> reader, OpenReader(dir));
  if (reader == nullptr) return OkStatus();
  int64_t start = 0, end = std::numeric_limits<int64_t>::max();
  if (const std::string* s = Param(r, "start"); s && !s->empty()) {
    TELKIT_ASSIGN_OR_RETURN(start, ParseUnixSeconds(*s));
  }
  if (const std::string* e = Param(r, "end"); e && !e->empty()) {
    TELKIT_ASSIGN_OR_RETURN(end, ParseUnixSeconds(*e));
    end += 1'000'000'000;
  }
  auto source = traceql::NewTraceReaderSource(reader.get(), max);
  Status inner;
  TELKIT_RETURN_IF_ERROR(source->ForEachTrace(start, end, {}, [&](std::span<const SpanRecord> spans) {
    auto t = traceql::DecodeTrace(spans);
    if (!t.ok()) {
      inner = t.status();
      return false;
    }
    fn(*t);
    return true;
  }));
  return inner;
}

}  // namespace

TempoResponse TempoApi::TagNames(const TempoRequest& r, bool v2) const {
  std::map<std::string, std::set<std::string>> scopes;
  Status s = ScanTraces(options_.traces_dir, r, options_.tag_scan_traces, [&](const traceql::TraceView& t) {
    for (const traceql::SpanView& sp : t.spans) {
      for (const auto& a : sp.attributes) scopes["span"].insert(a.key);
      for (const auto& a : sp.resource) scopes["resource"].insert(a.key);
      for (const auto& e : sp.events) {
        for (const auto& a : e.attributes) scopes["event"].insert(a.key);
      }
      for (const auto& l : sp.links) {
        for (const auto& a : l.attributes) scopes["link"].insert(a.key);
      }
      for (const auto& a : sp.scope_attributes) scopes["instrumentation"].insert(a.key);
    }
  });
  if (!s.ok()) return Text(s.code() == StatusCode::kInvalidArgument ? 400 : 500, std::string(s.message()));
  if (!v2) {
    std::set<std::string> all;
    for (const char* sc : {"span", "resource"}) all.insert(scopes[sc].begin(), scopes[sc].end());
    return Json({{"tagNames", all}});
  }
  std::string want = "all";
  if (const std::string* v = Param(r, "scope"); v && !v->empty()) want = *v;
  json out = json::array();
  for (const char* sc : {"resource", "span", "event", "link", "instrumentation"}) {
    if (want != "all" && want != sc) continue;
    if (scopes[sc].empty() && std::string_view(sc) != "span" && std::string_view(sc) != "resource") continue;
    out.push_back({{"name", sc}, {"tags", scopes[sc]}});
  }
  if (want == "all" || want == "intrinsic") {
    out.push_back({{"name", "intrinsic"},
                   {"tags", {"duration", "event:name", "instrumentation:name", "instrumentation:version", "kind",
                             "link:spanID", "link:traceID", "name", "rootName", "rootServiceName", "span:id",
                             "span:parentID", "status", "statusMessage", "trace:id", "traceDuration"}}});
  }
  return Json({{"scopes", std::move(out)}});
}

TempoResponse TempoApi::TagValues(const TempoRequest& r, const std::string& tag, bool v2) const {
  // The tag as a TraceQL field: v2 names it as TraceQL does (span.x,
  // resource.x, .x, name, status); v1 by attribute name.
  std::string field = tag;
  if (!v2 && tag != "name" && tag != "status" && tag != "kind") field = "." + tag;
  auto q = traceql::Parse("{ " + field + " = nil }");
  if (!q.ok()) return Text(400, "invalid tag '" + tag + "'");
  const traceql::FieldExpr* f = (*q)->pipeline.stages[0].spanset->filter->lhs.get();
  // v2's q (the query being edited in Grafana): values of its matching spans only.
  std::unique_ptr<traceql::Query> scope;
  if (const std::string* text = Param(r, "q"); v2 && text != nullptr && !text->empty()) {
    auto parsed = traceql::Parse(*text);
    if (parsed.ok()) scope = std::move(*parsed);  // Grafana sends unfinished queries: ignore those
  }
  std::vector<Value> values;
  std::set<std::string> seen;
  Status s = ScanTraces(options_.traces_dir, r, options_.tag_scan_traces, [&](const traceql::TraceView& t) {
    std::vector<int> spans;
    if (scope) {
      for (const traceql::Spanset& set : traceql::EvaluateTrace(*scope, t)) {
        spans.insert(spans.end(), set.spans.begin(), set.spans.end());
      }
    } else {
      for (size_t k = 0; k < t.spans.size(); ++k) spans.push_back(static_cast<int>(k));
    }
    for (size_t i = 0; i < spans.size() && values.size() < options_.max_tag_values; ++i) {
      const int k = spans[i];
      Value v = traceql::EvaluateField(*f, t, k);
      if (v.is_nil()) continue;
      if (seen.insert(std::string(TypeName(v)) + ":" + v.Plain()).second) values.push_back(std::move(v));
    }
  });
  if (!s.ok()) return Text(s.code() == StatusCode::kInvalidArgument ? 400 : 500, std::string(s.message()));
  std::sort(values.begin(), values.end(), [](const Value& a, const Value& b) { return a.Plain() < b.Plain(); });
  json out = json::array();
  for (const Value& v : values) {
    if (v2) out.push_back({{"type", TypeName(v)}, {"value", v.Plain()}});
    else out.push_back(v.Plain());
  }
  return Json({{"tagValues", std::move(out)}});
}

}  // namespace telkit::tempoapi
