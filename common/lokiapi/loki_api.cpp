#include "common/lokiapi/loki_api.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "common/logql/output.h"
#include "common/logql/parser.h"
#include "common/logql/pipeline.h"
#include "common/promql/query_output.h"

namespace telkit::lokiapi {

namespace {

using Json = nlohmann::ordered_json;

const std::string* Param(const Params& p, std::string_view name) {
  for (const auto& [k, v] : p) {
    if (k == name) return &v;
  }
  return nullptr;
}

// The `start` and `end` parameters (Loki's time forms), defaulting to the
// `default_ns` before `now` and to `now`.
Status ParseStartEnd(const Params& p, int64_t now, int64_t default_ns, int64_t* start, int64_t* end) {
  *start = now - default_ns;
  *end = now;
  if (const std::string* v = Param(p, "start"); v && !v->empty()) {
    TELKIT_ASSIGN_OR_RETURN(*start, ParseLokiTime(*v));
  }
  if (const std::string* v = Param(p, "end"); v && !v->empty()) {
    TELKIT_ASSIGN_OR_RETURN(*end, ParseLokiTime(*v));
  }
  return OkStatus();
}

LokiResponse Error(int status, std::string message) {
  LokiResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(message) + "\n";
  return r;
}

LokiResponse FromStatus(const Status& s) { return Error(logql::LokiHttpStatus(s), s.message()); }

LokiResponse JsonBody(const Json& j) {
  LokiResponse r;
  r.body = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

}  // namespace

Result<int64_t> ParseLokiTime(std::string_view text) {
  std::string s(text);
  if (s.empty()) return InvalidArgumentError("empty time");
  bool digits = std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  if (digits) {
    if (s.size() > 19) return InvalidArgumentError("cannot parse \"" + s + "\" to a valid timestamp");
    int64_t v = std::strtoll(s.c_str(), nullptr, 10);
    return s.size() <= 10 ? v * 1000000000 : v;
  }
  if (size_t dot = s.find('.'); dot != std::string::npos && s.find('T') == std::string::npos) {
    std::string whole = s.substr(0, dot), frac = s.substr(dot + 1);
    auto all_digits = [](const std::string& x) {
      return !x.empty() && std::all_of(x.begin(), x.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    };
    if (all_digits(whole) && all_digits(frac) && whole.size() <= 11) {
      frac.resize(9, '0');
      return std::strtoll(whole.c_str(), nullptr, 10) * 1000000000 + std::strtoll(frac.c_str(), nullptr, 10);
    }
  }
  auto ms = promql::ParseApiTime(s);  // RFC 3339
  if (!ms.ok()) return InvalidArgumentError("cannot parse \"" + s + "\" to a valid timestamp");
  // Keep nanoseconds RFC 3339 may carry beyond the millisecond.
  int64_t ns = *ms * 1000000;
  size_t dot = s.find('.');
  if (dot != std::string::npos) {
    size_t e = dot + 1;
    std::string frac;
    while (e < s.size() && std::isdigit(static_cast<unsigned char>(s[e]))) frac.push_back(s[e++]);
    if (frac.size() > 3 && *ms >= 0) {
      frac.resize(9, '0');
      ns = (*ms / 1000) * 1000000000 + std::strtoll(frac.c_str(), nullptr, 10);
    }
  }
  return ns;
}

Result<int64_t> ParseLokiDuration(std::string_view text) {
  std::string s(text);
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (!s.empty() && end == s.c_str() + s.size()) {
    if (!(d > 0) || !std::isfinite(d)) {
      return InvalidArgumentError("zero or negative query resolution step widths are not accepted. Try a positive "
                                  "integer");
    }
    return static_cast<int64_t>(std::llround(d * 1e9));
  }
  auto ns = logql::ParseRangeDuration(s);
  if (!ns.ok()) return InvalidArgumentError("cannot parse \"" + s + "\" to a valid duration");
  if (*ns <= 0) {
    return InvalidArgumentError("zero or negative query resolution step widths are not accepted. Try a positive "
                                "integer");
  }
  return ns;
}

LokiApi::LokiApi(LokiApiOptions options, std::shared_ptr<LogQuerier> querier)
    : options_(std::move(options)), querier_(std::move(querier)) {}

int64_t LokiApi::Now() const {
  if (options_.now_ns) return options_.now_ns();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

LokiResponse LokiApi::Handle(const LokiRequest& req) const {
  const std::string& path = req.path;
  if (req.method != "GET" && req.method != "POST") return Error(405, "method not allowed");
  if (path == "/ready") {
    LokiResponse r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "ready\n";
    return r;
  }
  if (path == "/loki/api/v1/status/buildinfo") {
    return JsonBody(Json{{"version", options_.version}, {"revision", ""}, {"branch", ""}, {"buildUser", ""},
                         {"buildDate", ""}, {"goVersion", ""}});
  }
  if (path == "/loki/api/v1/query") return Query(req.params, false);
  if (path == "/loki/api/v1/query_range") return Query(req.params, true);
  if (path == "/loki/api/v1/labels" || path == "/loki/api/v1/label") return Labels(req.params, nullptr);
  static constexpr std::string_view kLabel = "/loki/api/v1/label/";
  if (path.starts_with(kLabel) && path.ends_with("/values")) {
    std::string name = path.substr(kLabel.size(), path.size() - kLabel.size() - 7);
    return Labels(req.params, &name);
  }
  if (path == "/loki/api/v1/series") return Series(req.params);
  if (path == "/loki/api/v1/index/stats") return IndexStats(req.params);
  return Error(404, "404 page not found");
}

LokiResponse LokiApi::Query(const Params& p, bool range) const {
  const std::string* q = Param(p, "query");
  if (!q || q->empty()) return Error(400, "query must not be empty");
  auto expr = logql::ParseExpr(*q);
  if (!expr.ok()) return FromStatus(expr.status());
  logql::QueryParams qp;
  qp.limit = 100;
  if (const std::string* l = Param(p, "limit")) {
    char* end = nullptr;
    long long v = std::strtoll(l->c_str(), &end, 10);
    if (l->empty() || end != l->c_str() + l->size() || v < 0) {
      return Error(400, "invalid limit: strconv.Atoi: parsing \"" + *l + "\": invalid syntax");
    }
    qp.limit = static_cast<size_t>(v);
  }
  if (qp.limit == 0 && (*expr)->IsLog()) qp.limit = 100;  // Loki: 0 means the default
  if (qp.limit > options_.max_entries_limit && (*expr)->IsLog()) {
    return Error(400, "max entries limit per query exceeded, limit > max_entries_limit (" + std::to_string(qp.limit) +
                          " > " + std::to_string(options_.max_entries_limit) + ")");
  }
  if (const std::string* d = Param(p, "direction")) {
    std::string dir = *d;
    for (char& c : dir) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (dir == "forward") qp.backward = false;
    else if (dir == "backward" || dir.empty()) qp.backward = true;
    else return Error(400, "invalid direction '" + *d + "'");
  }
  const int64_t now = Now();
  auto time_param = [&](const char* name, int64_t fallback) -> Result<int64_t> {
    const std::string* v = Param(p, name);
    if (!v || v->empty()) return fallback;
    auto t = ParseLokiTime(*v);
    if (!t.ok()) return InvalidArgumentError("invalid " + std::string(name) + ": " + t.status().message());
    return t;
  };
  if (!range) {
    auto t = time_param("time", now);
    if (!t.ok()) return FromStatus(t.status());
    qp.start_ns = qp.end_ns = *t;
    qp.step_ns = 0;
  } else {
    auto s = time_param("start", now - int64_t{3600} * 1000000000);
    auto e = time_param("end", now);
    if (!s.ok()) return FromStatus(s.status());
    if (!e.ok()) return FromStatus(e.status());
    qp.start_ns = *s;
    qp.end_ns = *e;
    if (qp.end_ns < qp.start_ns) return Error(400, "end timestamp must not be before or equal to start time");
    int64_t step = std::max<int64_t>(1, (qp.end_ns - qp.start_ns) / 1000000000 / 250) * 1000000000;
    if (const std::string* st = Param(p, "step"); st && !st->empty()) {
      auto d = ParseLokiDuration(*st);
      if (!d.ok()) return FromStatus(d.status());
      step = *d;
    }
    qp.step_ns = step;
    if ((*expr)->IsLog() && qp.end_ns == qp.start_ns) qp.end_ns += 1;
  }
  logql::Engine engine(querier_.get(), options_.engine);
  auto t0 = std::chrono::steady_clock::now();
  auto r = engine.Execute(**expr, qp);
  if (!r.ok()) return FromStatus(r.status());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  LokiResponse out;
  out.body = logql::FormatLokiJson(*r, secs);
  return out;
}

LokiResponse LokiApi::Labels(const Params& p, const std::string* name) const {
  int64_t start, end;
  if (Status st = ParseStartEnd(p, Now(), int64_t{6} * 3600 * 1000000000, &start, &end); !st.ok()) return FromStatus(st);
  std::vector<LabelMatcher> matchers;
  if (const std::string* q = Param(p, "query"); q && !q->empty()) {
    auto e = logql::ParseExpr(*q);
    if (!e.ok()) return FromStatus(e.status());
    if (!(*e)->IsLog()) return Error(400, "only a stream selector is supported in query");
    matchers = (*e)->selector.matchers;
  }
  auto streams = querier_->Streams(matchers, start, end + 1);
  if (!streams.ok()) return FromStatus(streams.status());
  std::set<std::string> out;
  for (const auto& l : *streams) {
    for (const Label& x : l) {
      if (!name) out.insert(x.name);
      else if (x.name == *name) out.insert(x.value);
    }
  }
  Json data = Json::array();
  for (const std::string& s : out) data.push_back(s);
  return JsonBody(Json{{"status", "success"}, {"data", std::move(data)}});
}

LokiResponse LokiApi::Series(const Params& p) const {
  int64_t start, end;
  if (Status st = ParseStartEnd(p, Now(), int64_t{3600} * 1000000000, &start, &end); !st.ok()) return FromStatus(st);
  std::vector<std::vector<LabelMatcher>> groups;
  for (const auto& [k, v] : p) {
    if (k != "match[]" && k != "match") continue;
    auto e = logql::ParseExpr(v);
    if (!e.ok()) return FromStatus(e.status());
    if (!(*e)->IsLog()) return Error(400, "only stream selectors are supported in match[]");
    groups.push_back((*e)->selector.matchers);
  }
  if (groups.empty()) groups.emplace_back();
  std::set<telkit::Labels> seen;
  Json data = Json::array();
  for (const auto& m : groups) {
    auto streams = querier_->Streams(m, start, end + 1);
    if (!streams.ok()) return FromStatus(streams.status());
    for (const auto& l : *streams) seen.insert(l);
  }
  for (const auto& l : seen) {
    Json o = Json::object();
    for (const Label& x : l) o[x.name] = x.value;
    data.push_back(std::move(o));
  }
  return JsonBody(Json{{"status", "success"}, {"data", std::move(data)}});
}

LokiResponse LokiApi::IndexStats(const Params& p) const {
  const std::string* q = Param(p, "query");
  if (!q || q->empty()) return Error(400, "query must not be empty");
  auto e = logql::ParseExpr(*q);
  if (!e.ok()) return FromStatus(e.status());
  const logql::LogSelector* sel = nullptr;
  if ((*e)->IsLog() || (*e)->kind == logql::Expr::Kind::kRange) sel = &(*e)->selector;
  if (!sel) return Error(400, "index stats need a stream selector");
  int64_t start, end;
  if (Status st = ParseStartEnd(p, Now(), int64_t{3600} * 1000000000, &start, &end); !st.ok()) return FromStatus(st);
  // Index statistics ignore the pipeline (as Loki's index does): streams,
  // lines and raw bytes of the selector in [start, end].
  LogQuery lq;
  lq.matchers = sel->matchers;
  lq.start_ns = start;
  lq.end_ns = end + 1;
  lq.limit = 0;
  auto r = querier_->Select(lq);
  if (!r.ok()) return FromStatus(r.status());
  uint64_t streams = 0, entries = 0, bytes = 0;
  for (const LogStreamResult& s : *r) {
    if (s.entries.empty()) continue;
    ++streams;
    entries += s.entries.size();
    for (const LogEntry& x : s.entries) bytes += LogEntryRawBytes(x);
  }
  return JsonBody(Json{{"streams", streams}, {"chunks", streams}, {"bytes", bytes}, {"entries", entries}});
}

Result<LokiApi::Tail> LokiApi::StartTail(const Params& p) const {
  const std::string* q = Param(p, "query");
  if (!q || q->empty()) return InvalidArgumentError("query must not be empty");
  TELKIT_ASSIGN_OR_RETURN(auto expr, logql::ParseExpr(*q));
  if (!expr->IsLog()) return InvalidArgumentError("tail queries must be log queries");
  Tail t;
  t.expr = std::shared_ptr<const logql::Expr>(std::move(expr));
  if (const std::string* l = Param(p, "limit"); l && !l->empty()) {
    t.limit = static_cast<size_t>(std::strtoull(l->c_str(), nullptr, 10));
    if (t.limit > options_.max_entries_limit) {
      return InvalidArgumentError("max entries limit per query exceeded, limit > max_entries_limit (" +
                                  std::to_string(t.limit) + " > " + std::to_string(options_.max_entries_limit) + ")");
    }
  }
  t.cursor_ns = Now() - int64_t{3600} * 1000000000;
  if (const std::string* s = Param(p, "start"); s && !s->empty()) {
    TELKIT_ASSIGN_OR_RETURN(t.cursor_ns, ParseLokiTime(*s));
  }
  return t;
}

Result<std::string> LokiApi::PollTail(Tail* t) const {
  logql::Engine engine(querier_.get(), options_.engine);
  logql::QueryParams qp;
  qp.start_ns = t->cursor_ns;
  qp.end_ns = Now() + 1;
  qp.step_ns = 1;
  if (!t->started) {
    qp.limit = t->limit;  // the newest `limit` lines first, sent oldest first
    qp.backward = true;
  } else {
    qp.limit = options_.max_entries_limit;
    qp.backward = false;
  }
  t->started = true;
  if (qp.end_ns <= qp.start_ns) return std::string();
  TELKIT_ASSIGN_OR_RETURN(logql::QueryResult r, engine.Execute(*t->expr, qp));
  struct E {
    const telkit::Labels* labels;
    const logql::LogLine* line;
  };
  std::vector<E> all;
  for (const auto& s : r.streams) {
    for (const auto& l : s.entries) all.push_back(E{&s.labels, &l});
  }
  std::stable_sort(all.begin(), all.end(), [](const E& a, const E& b) { return a.line->ts < b.line->ts; });
  std::map<telkit::Labels, Json> by_stream;
  std::vector<telkit::Labels> order;
  size_t n = 0;
  for (const E& e : all) {
    std::pair<std::string, std::string> key{e.labels->ToString(), e.line->line};
    if (e.line->ts == t->cursor_ns && t->at_cursor.count(key)) continue;
    if (e.line->ts > t->cursor_ns) {
      t->cursor_ns = e.line->ts;
      t->at_cursor.clear();
    }
    t->at_cursor.insert(std::move(key));
    auto [it, ins] = by_stream.emplace(*e.labels, Json::array());
    if (ins) order.push_back(*e.labels);
    it->second.push_back(Json::array({std::to_string(e.line->ts), e.line->line}));
    ++n;
  }
  if (n == 0) return std::string();
  Json streams = Json::array();
  for (const auto& l : order) {
    Json lj = Json::object();
    for (const Label& x : l) lj[x.name] = x.value;
    streams.push_back(Json{{"stream", std::move(lj)}, {"values", std::move(by_stream[l])}});
  }
  Json msg = {{"streams", std::move(streams)}, {"dropped_entries", nullptr}};
  return msg.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace telkit::lokiapi
