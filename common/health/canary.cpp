#include "common/health/canary.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <random>
#include <thread>

#include "common/fs/file_system.h"
#include "common/health/health_http.h"
#include "common/logstore/log_store.h"
#include "common/model/matcher.h"
#include "common/tracestore/trace_reader.h"
#include "common/tsdb/metrics_reader.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace otlp_common = opentelemetry::proto::common::v1;
using Json = nlohmann::json;

constexpr char kCanaryService[] = "stack-health";
constexpr char kCanaryMetric[] = "stack_health.canary";
constexpr char kCanaryPromMetric[] = "stack_health_canary";

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SetResource(opentelemetry::proto::resource::v1::Resource* r) {
  otlp_common::KeyValue* kv = r->add_attributes();
  kv->set_key("service.name");
  kv->mutable_value()->set_string_value(kCanaryService);
}

void AddStringAttribute(google::protobuf::RepeatedPtrField<otlp_common::KeyValue>* attrs, const std::string& k,
                        const std::string& v) {
  otlp_common::KeyValue* kv = attrs->Add();
  kv->set_key(k);
  kv->mutable_value()->set_string_value(v);
}

// Whether a failed API call means "not served (yet)": the fallback to the
// store applies.
bool ApiAbsent(const Status& s) { return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kUnimplemented; }

// GET an API path and parse its JSON. UNIMPLEMENTED for 404 (the API does
// not exist yet), UNAVAILABLE when nothing answers, INTERNAL for other errors.
Result<Json> ApiJson(const std::string& base, const std::string& path, int timeout_ms, int* status = nullptr) {
  TELKIT_ASSIGN_OR_RETURN(HealthHttpResponse r, HealthHttpGet(base, path, timeout_ms));
  if (status) *status = r.status;
  if (r.status == 404 && status == nullptr) return Status(StatusCode::kUnimplemented, fmt::format("{}{}: 404", base, path));
  if (r.status != 200 && status == nullptr) {
    return InternalError(fmt::format("{}{}: HTTP {}: {}", base, path, r.status, r.body.substr(0, 200)));
  }
  Json j = Json::parse(r.body, nullptr, false);
  if (j.is_discarded() && r.status == 200) return InternalError(fmt::format("{}{}: not JSON", base, path));
  return j;
}

std::string SignalDir(const HealthOptions& o, ProbeSignal s) { return JoinPath(o.data_dir, ProbeSignalName(s)); }

// A metrics reader only while tsdb-write serves the store: opening a stopped
// store would take its lock (and replay its WAL) and keep a restarting
// daemon out.
Result<std::unique_ptr<MetricsReader>> OpenServedMetrics(const HealthOptions& o) {
  std::string dir = SignalDir(o, ProbeSignal::kMetrics);
  bool held = false;
  Result<StoreLockInfo> lock = ReadStoreLock(dir, &held);
  if (!lock.ok() || !held) return UnavailableError(fmt::format("'{}': no tsdb-write serves it", dir));
  return OpenMetricsReader(DefaultFileSystem(), dir);
}

// --- newest item -----------------------------------------------------------

Result<int64_t> NewestFromApi(const HealthOptions& o, ProbeSignal s, int64_t now_ns) {
  int64_t start_ns = now_ns - static_cast<int64_t>(o.freshness_window_s * 1e9);
  switch (s) {
    case ProbeSignal::kMetrics: {
      // Instant query: the newest sample within the lookback (5 m).
      // timestamp() drops the metric name, so series that differ only in
      // their name (up and scrape_duration_seconds of one target) would be
      // duplicates and fail the query ("vector cannot contain metrics with
      // the same labelset", as in Prometheus): label_replace keeps the name
      // in a label first.
      std::string q = R"q(max(timestamp(label_replace({__name__=~".+"}, "name_", "$1", "__name__", "(.+)"))))q";
      TELKIT_ASSIGN_OR_RETURN(Json j, ApiJson(o.prometheus_url, "/api/v1/query?query=" + UrlEncode(q) +
                                                                     fmt::format("&time={:.3f}", now_ns / 1e9),
                                              o.timeout_ms));
      const Json& res = j["data"]["result"];
      if (!res.is_array() || res.empty()) return NotFoundError("no sample in the last 5 minutes");
      double t = std::stod(res[0]["value"][1].get<std::string>());
      return static_cast<int64_t>(t * 1e9);
    }
    case ProbeSignal::kLogs: {
      std::string q = R"({service_name=~".+"})";
      TELKIT_ASSIGN_OR_RETURN(Json j, ApiJson(o.loki_url,
                                              fmt::format("/loki/api/v1/query_range?query={}&limit=1&direction="
                                                          "backward&start={}&end={}",
                                                          UrlEncode(q), start_ns, now_ns + 60'000'000'000),
                                              o.timeout_ms));
      int64_t newest = 0;
      for (const Json& stream : j["data"]["result"]) {
        for (const Json& v : stream["values"]) newest = std::max<int64_t>(newest, std::stoll(v[0].get<std::string>()));
      }
      if (newest == 0) return NotFoundError("no log line in the window");
      return newest;
    }
    case ProbeSignal::kTraces: {
      TELKIT_ASSIGN_OR_RETURN(Json j, ApiJson(o.tempo_url,
                                              fmt::format("/api/search?limit=20&start={}&end={}", start_ns / 1'000'000'000,
                                                          now_ns / 1'000'000'000 + 60),
                                              o.timeout_ms));
      int64_t newest = 0;
      for (const Json& t : j["traces"]) {
        if (!t.contains("startTimeUnixNano")) continue;
        int64_t start = std::stoll(t["startTimeUnixNano"].get<std::string>());
        int64_t dur_ms = t.value("durationMs", 0);
        newest = std::max<int64_t>(newest, start + dur_ms * 1'000'000);
      }
      if (newest == 0) return NotFoundError("no span in the window");
      return newest;
    }
  }
  return InternalError("unknown signal");
}

Result<int64_t> NewestFromStore(const HealthOptions& o, ProbeSignal s, int64_t now_ns) {
  if (o.data_dir.empty()) return UnavailableError("no --data directory to read the store from");
  int64_t start_ns = now_ns - static_cast<int64_t>(o.freshness_window_s * 1e9);
  switch (s) {
    case ProbeSignal::kMetrics: {
      TELKIT_ASSIGN_OR_RETURN(auto reader, OpenServedMetrics(o));
      TELKIT_ASSIGN_OR_RETURN(LabelMatcher m, LabelMatcher::Make(MatchType::kRegexMatch, "__name__", ".+"));
      std::vector<LabelMatcher> ms{m};
      TELKIT_ASSIGN_OR_RETURN(auto series, reader->Select(start_ns / 1'000'000, now_ns / 1'000'000 + 60'000, ms));
      int64_t newest = 0;
      for (const auto& ss : series)
        if (!ss.samples.empty()) newest = std::max(newest, ss.samples.back().t);
      if (newest == 0) return NotFoundError("no sample in the window");
      return newest * 1'000'000;
    }
    case ProbeSignal::kLogs: {
      TELKIT_ASSIGN_OR_RETURN(auto reader, LogReader::Open(DefaultFileSystem(), SignalDir(o, s)));
      LogQuery q;
      TELKIT_ASSIGN_OR_RETURN(LabelMatcher m, LabelMatcher::Make(MatchType::kRegexMatch, "service_name", ".+"));
      q.matchers.push_back(std::move(m));
      q.start_ns = start_ns;
      q.end_ns = now_ns + 60'000'000'000;
      q.limit = 1;
      q.backward = true;
      TELKIT_ASSIGN_OR_RETURN(auto streams, reader->Select(q));
      int64_t newest = 0;
      for (const auto& st : streams)
        for (const auto& e : st.entries) newest = std::max(newest, e.ts);
      if (newest == 0) return NotFoundError("no log line in the window");
      return newest;
    }
    case ProbeSignal::kTraces: {
      TELKIT_ASSIGN_OR_RETURN(auto reader, TraceReader::Open(SignalDir(o, s)));
      TraceSearchRequest req;
      req.start_ns = start_ns;
      req.limit = 20;
      TELKIT_ASSIGN_OR_RETURN(auto traces, reader->Search(req));
      int64_t newest = 0;
      for (const auto& t : traces) newest = std::max(newest, std::max(t.start_ns, t.end_ns));
      if (newest == 0) return NotFoundError("no span in the window");
      return newest;
    }
  }
  return InternalError("unknown signal");
}

// API first, then the store, as options.method says.
template <typename T, typename FromApi, typename FromStore>
Result<Probed<T>> ByMethod(const HealthOptions& o, FromApi api, FromStore store) {
  if (o.method != QueryMethod::kStore) {
    Result<T> r = api();
    if (r.ok()) return Probed<T>{*r, "api"};
    if (o.method == QueryMethod::kApi || !ApiAbsent(r.status()) || o.data_dir.empty()) return r.status();
  }
  Result<T> r = store();
  if (!r.ok()) return r.status();
  return Probed<T>{*r, "store"};
}

// --- canary lookups ----------------------------------------------------------

Result<bool> CanaryFromApi(const HealthOptions& o, ProbeSignal s, const CanaryIds& ids, int64_t sent_ns) {
  switch (s) {
    case ProbeSignal::kMetrics: {
      std::string q = fmt::format(R"({}{{canary_id="{}"}})", kCanaryPromMetric, ids.id);
      TELKIT_ASSIGN_OR_RETURN(Json j, ApiJson(o.prometheus_url, "/api/v1/query?query=" + UrlEncode(q), o.timeout_ms));
      const Json& res = j["data"]["result"];
      return res.is_array() && !res.empty();
    }
    case ProbeSignal::kLogs: {
      std::string q = fmt::format(R"({{service_name="{}"}} |= "{}")", kCanaryService, ids.id);
      TELKIT_ASSIGN_OR_RETURN(Json j, ApiJson(o.loki_url,
                                              fmt::format("/loki/api/v1/query_range?query={}&limit=10&start={}&end={}",
                                                          UrlEncode(q), sent_ns - 60'000'000'000, NowNs() + 60'000'000'000),
                                              o.timeout_ms));
      for (const Json& stream : j["data"]["result"])
        if (stream["values"].is_array() && !stream["values"].empty()) return true;
      return false;
    }
    case ProbeSignal::kTraces: {
      int status = 0;
      TELKIT_ASSIGN_OR_RETURN(Json j, ApiJson(o.tempo_url, "/api/traces/" + HexId(ids.trace_id), o.timeout_ms, &status));
      if (status == 200) return true;
      // Tempo answers 404 for an unknown trace id; a server without the
      // route answers 404 too, with no JSON body: the store is the fallback.
      if (status == 404 && !j.is_discarded()) return false;
      if (status == 404) return Status(StatusCode::kUnimplemented, "GET /api/traces: 404");
      return InternalError(fmt::format("GET /api/traces: HTTP {}", status));
    }
  }
  return InternalError("unknown signal");
}

Result<bool> CanaryFromStore(const HealthOptions& o, ProbeSignal s, const CanaryIds& ids, int64_t sent_ns) {
  if (o.data_dir.empty()) return UnavailableError("no --data directory to read the store from");
  switch (s) {
    case ProbeSignal::kMetrics: {
      TELKIT_ASSIGN_OR_RETURN(auto reader, OpenServedMetrics(o));
      TELKIT_ASSIGN_OR_RETURN(LabelMatcher n, LabelMatcher::Make(MatchType::kEqual, "__name__", kCanaryPromMetric));
      TELKIT_ASSIGN_OR_RETURN(LabelMatcher c, LabelMatcher::Make(MatchType::kEqual, "canary_id", ids.id));
      std::vector<LabelMatcher> ms{n, c};
      TELKIT_ASSIGN_OR_RETURN(auto series, reader->Select(sent_ns / 1'000'000 - 60'000, NowNs() / 1'000'000 + 60'000, ms));
      return !series.empty();
    }
    case ProbeSignal::kLogs: {
      TELKIT_ASSIGN_OR_RETURN(auto reader, LogReader::Open(DefaultFileSystem(), SignalDir(o, s)));
      LogQuery q;
      TELKIT_ASSIGN_OR_RETURN(LabelMatcher m, LabelMatcher::Make(MatchType::kEqual, "service_name", kCanaryService));
      q.matchers.push_back(std::move(m));
      q.start_ns = sent_ns - 60'000'000'000;
      q.end_ns = NowNs() + 60'000'000'000;
      q.limit = 1;
      q.contains.push_back(ids.id);
      TELKIT_ASSIGN_OR_RETURN(auto streams, reader->Select(q));
      for (const auto& st : streams)
        if (!st.entries.empty()) return true;
      return false;
    }
    case ProbeSignal::kTraces: {
      TELKIT_ASSIGN_OR_RETURN(auto reader, TraceReader::Open(SignalDir(o, s)));
      TELKIT_ASSIGN_OR_RETURN(auto spans, reader->TraceById(ids.trace_id));
      return !spans.empty();
    }
  }
  return InternalError("unknown signal");
}

}  // namespace

std::string_view ProbeSignalName(ProbeSignal s) {
  switch (s) {
    case ProbeSignal::kMetrics: return "metrics";
    case ProbeSignal::kLogs: return "logs";
    case ProbeSignal::kTraces: return "traces";
  }
  return "?";
}

Result<Probed<int64_t>> NewestItemNs(const HealthOptions& o, ProbeSignal s, int64_t now_ns) {
  return ByMethod<int64_t>(o, [&] { return NewestFromApi(o, s, now_ns); },
                           [&] { return NewestFromStore(o, s, now_ns); });
}

Result<Probed<bool>> CanaryVisible(const HealthOptions& o, ProbeSignal s, const CanaryIds& ids, int64_t sent_ns) {
  return ByMethod<bool>(o, [&] { return CanaryFromApi(o, s, ids, sent_ns); },
                        [&] { return CanaryFromStore(o, s, ids, sent_ns); });
}

std::string HexId(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

CanaryIds NewCanaryIds() {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(NowNs()));
  auto bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    s[0] = static_cast<char>(s[0] | 1);  // never all zero (an invalid id)
    return s;
  };
  CanaryIds ids;
  ids.trace_id = bytes(16);
  ids.span_id = bytes(8);
  ids.id = HexId(bytes(8));
  return ids;
}

std::string CanaryTracesRequest(const CanaryIds& ids, int64_t now_ns) {
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest req;
  auto* rs = req.add_resource_spans();
  SetResource(rs->mutable_resource());
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("stack-health");
  auto* span = ss->add_spans();
  span->set_trace_id(ids.trace_id);
  span->set_span_id(ids.span_id);
  span->set_name("stack-health canary");
  span->set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_INTERNAL);
  span->set_start_time_unix_nano(static_cast<uint64_t>(now_ns) - 1'000'000);
  span->set_end_time_unix_nano(static_cast<uint64_t>(now_ns));
  AddStringAttribute(span->mutable_attributes(), "canary.id", ids.id);
  return req.SerializeAsString();
}

std::string CanaryMetricsRequest(const CanaryIds& ids, int64_t now_ns) {
  opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest req;
  auto* rm = req.add_resource_metrics();
  SetResource(rm->mutable_resource());
  auto* sm = rm->add_scope_metrics();
  sm->mutable_scope()->set_name("stack-health");
  auto* m = sm->add_metrics();
  m->set_name(kCanaryMetric);
  m->set_description("stack-health's end-to-end canary: the time it was sent");
  auto* p = m->mutable_gauge()->add_data_points();
  p->set_time_unix_nano(static_cast<uint64_t>(now_ns));
  p->set_as_double(static_cast<double>(now_ns) / 1e9);
  AddStringAttribute(p->mutable_attributes(), "canary_id", ids.id);
  return req.SerializeAsString();
}

std::string CanaryLogsRequest(const CanaryIds& ids, int64_t now_ns) {
  opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest req;
  auto* rl = req.add_resource_logs();
  SetResource(rl->mutable_resource());
  auto* sl = rl->add_scope_logs();
  sl->mutable_scope()->set_name("stack-health");
  auto* r = sl->add_log_records();
  r->set_time_unix_nano(static_cast<uint64_t>(now_ns));
  r->set_observed_time_unix_nano(static_cast<uint64_t>(now_ns));
  r->set_severity_number(opentelemetry::proto::logs::v1::SEVERITY_NUMBER_INFO);
  r->set_severity_text("INFO");
  r->mutable_body()->set_string_value("stack-health canary " + ids.id);
  AddStringAttribute(r->mutable_attributes(), "canary.id", ids.id);
  r->set_trace_id(ids.trace_id);
  r->set_span_id(ids.span_id);
  return req.SerializeAsString();
}

void RunCanary(const HealthOptions& o, HealthReport* report) {
  struct Pending {
    ProbeSignal signal;
    std::string path;
    std::string body;
    bool sent = false;
    bool done = false;
    std::string last_error;
    std::optional<HealthCheck> result;
  };
  CanaryIds ids = NewCanaryIds();
  int64_t sent_ns = NowNs();
  std::vector<Pending> pending = {
      {ProbeSignal::kTraces, "/v1/traces", CanaryTracesRequest(ids, sent_ns), false, false, {}, {}},
      {ProbeSignal::kMetrics, "/v1/metrics", CanaryMetricsRequest(ids, sent_ns), false, false, {}, {}},
      {ProbeSignal::kLogs, "/v1/logs", CanaryLogsRequest(ids, sent_ns), false, false, {}, {}},
  };
  auto check = [&](const Pending& p) {
    HealthCheck c;
    c.component = "canary";
    c.check = std::string(ProbeSignalName(p.signal));
    c.target = ids.id;
    c.unit = "seconds";
    return c;
  };
  for (Pending& p : pending) {
    Result<HealthHttpResponse> r = HealthHttpPost(o.otlp_url, p.path, "application/x-protobuf", p.body, o.timeout_ms);
    if (!r.ok() || r->status != 200) {
      HealthCheck c = check(p);
      c.state = HealthState::kCritical;
      c.detail = r.ok() ? fmt::format("OTLP {}{}: HTTP {}", o.otlp_url, p.path, r->status)
                        : std::string(r.status().message());
      p.result = std::move(c);
      p.done = true;
      continue;
    }
    p.sent = true;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.canary_timeout_s * 1000));
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    bool any = false;
    for (Pending& p : pending) {
      if (p.done) continue;
      Result<Probed<bool>> v = CanaryVisible(o, p.signal, ids, sent_ns);
      if (v.ok() && v->value) {
        double latency = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        HealthCheck c = check(p);
        c.value = latency;
        c.state = o.thresholds.canary_warn_s > 0 && latency > o.thresholds.canary_warn_s ? HealthState::kWarning
                                                                                          : HealthState::kOk;
        c.detail = fmt::format("queryable after {} (via {})", FormatHealthValue(latency, "seconds"), v->method);
        p.result = std::move(c);
        p.done = true;
        continue;
      }
      if (!v.ok()) p.last_error = std::string(v.status().message());
      any = true;
    }
    if (!any) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      for (Pending& p : pending) {
        if (p.done) continue;
        HealthCheck c = check(p);
        c.state = HealthState::kCritical;
        c.detail = fmt::format("not queryable after {}", FormatHealthValue(o.canary_timeout_s, "seconds"));
        if (!p.last_error.empty()) c.detail += ": " + p.last_error;
        p.result = std::move(c);
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (Pending& p : pending)
    if (p.result) report->Add(std::move(*p.result));
}

}  // namespace telkit
