// TraceQL tests: the load/eval scripts in tests/testdata/traceql/*.test (the
// script language is described in tests/testdata/traceql/README.md), parser
// errors, and the engine over a real trace store through the TraceReader
// adapter.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/fs/file_system.h"
#include "common/test_support/temp_dir.h"
#include "common/traceql/engine.h"
#include "common/traceql/parser.h"
#include "common/tracestore/trace_reader.h"
#include "common/tracestore/trace_store.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit::traceql {
namespace {

namespace pb = opentelemetry::proto;
using test_support::TempDir;
constexpr uint64_t kBase = 1'700'000'000'000'000'000ULL;

std::string PadId(const std::string& name, size_t n) {
  std::string id = name.substr(0, n);
  id.resize(n, '\0');
  return id;
}

// Splits on white space, keeping "quoted strings" (with \" escapes) whole.
std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false, any = false;
  for (size_t k = 0; k < line.size(); ++k) {
    char c = line[k];
    if (quoted) {
      if (c == '\\' && k + 1 < line.size()) {
        cur += line[++k];
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
      any = true;
      cur += '\x01';  // marks "this value was quoted"
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (any || !cur.empty()) out.push_back(cur);
      cur.clear();
      any = false;
    } else {
      cur += c;
      any = true;
    }
  }
  if (any || !cur.empty()) out.push_back(cur);
  return out;
}

void SetAny(const std::string& raw, pb::common::v1::AnyValue* v) {
  std::string s = raw;
  if (!s.empty() && s[0] == '\x01') {
    v->set_string_value(s.substr(1));
    return;
  }
  if (s == "true" || s == "false") {
    v->set_bool_value(s == "true");
    return;
  }
  char* end = nullptr;
  long long i = std::strtoll(s.c_str(), &end, 10);
  if (!s.empty() && *end == '\0') {
    v->set_int_value(i);
    return;
  }
  double d = std::strtod(s.c_str(), &end);
  if (!s.empty() && *end == '\0') {
    v->set_double_value(d);
    return;
  }
  v->set_string_value(s);
}

std::string Unquote(const std::string& s) { return !s.empty() && s[0] == '\x01' ? s.substr(1) : s; }

int KindNumber(const std::string& k) {
  static const std::map<std::string, int> m = {{"unspecified", 0}, {"internal", 1}, {"server", 2},
                                               {"client", 3},      {"producer", 4}, {"consumer", 5}};
  return m.at(k);
}

struct Script {
  std::vector<std::vector<SpanRecord>> traces;
  std::map<std::string, std::string> trace_names, span_names;  // id bytes -> name
  std::vector<std::string> requests;                           // serialized, one per trace
};

// "span a parent=b service=x name=\"GET /\" start=10ms dur=5ms kind=server status=error
//   message=\"...\" span.k=v resource.k=v event=name event.k=v link=trace/span link.k=v scope=name"
Status AddSpan(const std::vector<std::string>& w, const std::string& trace, pb::trace::v1::TracesData* td,
               Script* script) {
  auto* rs = td->add_resource_spans();
  auto* ss = rs->add_scope_spans();
  auto* sp = ss->add_spans();
  sp->set_trace_id(PadId(trace, 16));
  sp->set_span_id(PadId(w[1], 8));
  script->span_names[PadId(w[1], 8)] = w[1];
  uint64_t start = 0, dur = 0;
  pb::trace::v1::Span::Event* event = nullptr;
  pb::trace::v1::Span::Link* link = nullptr;
  bool has_service = false;
  for (size_t k = 2; k < w.size(); ++k) {
    auto eq = w[k].find('=');
    if (eq == std::string::npos) return InvalidArgumentError("bad span field '" + w[k] + "'");
    std::string key = w[k].substr(0, eq), val = w[k].substr(eq + 1);
    if (key == "parent") {
      sp->set_parent_span_id(PadId(val, 8));
    } else if (key == "service") {
      auto* kv = rs->mutable_resource()->add_attributes();
      kv->set_key("service.name");
      kv->mutable_value()->set_string_value(Unquote(val));
      has_service = true;
    } else if (key == "name") {
      sp->set_name(Unquote(val));
    } else if (key == "start" || key == "dur") {
      auto d = ParseGoDuration(val);
      if (!d.ok()) return d.status();
      (key == "start" ? start : dur) = static_cast<uint64_t>(*d);
    } else if (key == "kind") {
      sp->set_kind(static_cast<pb::trace::v1::Span::SpanKind>(KindNumber(val)));
    } else if (key == "status") {
      sp->mutable_status()->set_code(val == "error" ? pb::trace::v1::Status::STATUS_CODE_ERROR
                                     : val == "ok"  ? pb::trace::v1::Status::STATUS_CODE_OK
                                                    : pb::trace::v1::Status::STATUS_CODE_UNSET);
    } else if (key == "message") {
      sp->mutable_status()->set_message(Unquote(val));
    } else if (key == "scope") {
      ss->mutable_scope()->set_name(Unquote(val));
    } else if (key == "event") {
      event = sp->add_events();
      event->set_name(Unquote(val));
    } else if (key == "link") {
      link = sp->add_links();
      auto slash = val.find('/');
      link->set_trace_id(PadId(val.substr(0, slash), 16));
      link->set_span_id(PadId(slash == std::string::npos ? "x" : val.substr(slash + 1), 8));
    } else if (key.rfind("span.", 0) == 0 || key.rfind("resource.", 0) == 0 || key.rfind("event.", 0) == 0 ||
               key.rfind("link.", 0) == 0) {
      auto dot = key.find('.');
      std::string scope = key.substr(0, dot), name = key.substr(dot + 1);
      google::protobuf::RepeatedPtrField<pb::common::v1::KeyValue>* attrs =
          scope == "span" ? sp->mutable_attributes() : scope == "resource" ? rs->mutable_resource()->mutable_attributes()
          : scope == "event" ? (event ? event->mutable_attributes() : nullptr)
                             : (link ? link->mutable_attributes() : nullptr);
      if (attrs == nullptr) return InvalidArgumentError("event./link. attribute before event=/link=");
      auto* kv = attrs->Add();
      kv->set_key(name);
      SetAny(val, kv->mutable_value());
    } else {
      return InvalidArgumentError("unknown span field '" + key + "'");
    }
  }
  if (!has_service) return InvalidArgumentError("span '" + w[1] + "' has no service=");
  sp->set_start_time_unix_nano(kBase + start);
  sp->set_end_time_unix_nano(kBase + start + dur);
  return OkStatus();
}

Status FinishTrace(const std::string& name, pb::trace::v1::TracesData* td, Script* script) {
  if (name.empty()) return OkStatus();
  pb::collector::trace::v1::ExportTraceServiceRequest req;
  *req.mutable_resource_spans() = td->resource_spans();
  std::string bytes = req.SerializeAsString();
  std::vector<SpanRecord> records;
  SplitStats stats;
  TELKIT_RETURN_IF_ERROR(SplitTraceRequest(bytes, SpanLimits{}, &records, &stats));
  script->traces.push_back(std::move(records));
  script->requests.push_back(std::move(bytes));
  script->trace_names[PadId(name, 16)] = name;
  td->Clear();
  return OkStatus();
}

std::string Render(const SearchResult& r, const Script& s) {
  std::vector<std::string> lines;
  for (const TraceMatch& t : r.traces) {
    std::string line = s.trace_names.at(t.trace_id) + ":";
    bool first = true;
    for (const MatchedSpanset& ss : t.spansets) {
      if (!first) line += " |";
      first = false;
      std::vector<std::string> ids;
      for (const MatchedSpan& sp : ss.spans) ids.push_back(s.span_names.at(sp.span_id));
      std::sort(ids.begin(), ids.end());
      for (const std::string& id : ids) line += " " + id;
      for (const Attribute& a : ss.attributes) line += " [" + a.key + "=" + a.value.Plain() + "]";
    }
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

struct Failure {
  std::string where, message;
};

void RunScript(const std::filesystem::path& path, std::vector<Failure>* failures, int* evals) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  Script script;
  pb::trace::v1::TracesData td;
  std::string trace;
  auto fail = [&](size_t line, const std::string& m) {
    failures->push_back({path.filename().string() + ":" + std::to_string(line + 1), m});
  };
  size_t k = 0;
  auto indented = [&](size_t i) { return i < lines.size() && !lines[i].empty() && std::isspace(static_cast<unsigned char>(lines[i][0])); };
  while (k < lines.size()) {
    std::string line = lines[k];
    if (line.empty() || line[0] == '#') {
      ++k;
      continue;
    }
    if (line == "load") {
      script = Script{};
      trace.clear();
      ++k;
      while (indented(k)) {
        std::vector<std::string> w = Words(lines[k]);
        if (w.empty() || w[0][0] == '#') {
          ++k;
          continue;
        }
        if (w[0] == "trace" && w.size() == 2) {
          if (Status st = FinishTrace(trace, &td, &script); !st.ok()) fail(k, std::string(st.message()));
          trace = w[1];
        } else if (w[0] == "span" && w.size() >= 2 && !trace.empty()) {
          if (Status st = AddSpan(w, trace, &td, &script); !st.ok()) fail(k, std::string(st.message()));
        } else {
          fail(k, "bad load line");
        }
        ++k;
      }
      if (Status st = FinishTrace(trace, &td, &script); !st.ok()) fail(k, std::string(st.message()));
      trace.clear();
      continue;
    }
    if (line.rfind("eval ", 0) == 0 || line.rfind("error ", 0) == 0) {
      const bool expect_error = line[0] == 'r' || line.rfind("error ", 0) == 0;
      const std::string query = line.substr(line.find(' ') + 1);
      const size_t at = k++;
      std::string expected;
      while (indented(k)) {
        std::string l = lines[k++];
        l.erase(0, l.find_first_not_of(" \t"));
        expected += l + "\n";
      }
      ++*evals;
      auto q = Parse(query);
      if (expect_error) {
        std::string want = expected.empty() ? "" : expected.substr(0, expected.size() - 1);
        if (q.ok()) fail(at, "expected a parse error for " + query);
        else if (std::string(q.status().message()).find(want) == std::string::npos)
          fail(at, "error '" + std::string(q.status().message()) + "' does not contain '" + want + "'");
        continue;
      }
      if (!q.ok()) {
        fail(at, "parse: " + std::string(q.status().message()));
        continue;
      }
      MemoryTraceSource source(script.traces);
      SearchOptions o;
      o.limit = 0;
      o.spans_per_spanset = 0;
      auto r = Search(source, **q, o);
      if (!r.ok()) {
        fail(at, "eval: " + std::string(r.status().message()));
        continue;
      }
      std::string got = Render(*r, script);
      if (got != expected) fail(at, query + "\n--- want\n" + expected + "--- got\n" + got);
      continue;
    }
    fail(k, "unknown line: " + line);
    ++k;
  }
}

TEST(TraceqlScripts, AllPass) {
  std::vector<Failure> failures;
  int evals = 0, files = 0;
  for (const auto& e : std::filesystem::directory_iterator(TELKIT_TRACEQL_TESTDATA)) {
    if (e.path().extension() != ".test") continue;
    ++files;
    RunScript(e.path(), &failures, &evals);
  }
  EXPECT_GT(files, 0);
  EXPECT_GT(evals, 50);
  for (const Failure& f : failures) ADD_FAILURE() << f.where << ": " << f.message;
}

TEST(TraceqlParser, ErrorsCarryLineAndColumn) {
  auto q = Parse("{ .a = }");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(q.status().message(), "parse error at line 1, col 8: syntax error: unexpected '}'");
  q = Parse("{ .a = 1 }\n| count( > 2");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().message(), "parse error at line 2, col 10: syntax error: unexpected '>', expected ')'");
  q = Parse("{ name = \"x }");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().message(), "parse error at line 1, col 10: syntax error: unterminated string");
  q = Parse("{ .a =~ \"(\" }");
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("invalid regular expression"), std::string::npos);
}

TEST(TraceqlParser, PrintsFields) {
  auto q = Parse("{ span.http.status_code >= 500 && resource.service.name = \"api\" } | select(.a, span:id)");
  ASSERT_TRUE(q.ok()) << q.status().message();
  std::vector<std::string> names;
  for (const FieldExpr* f : (*q)->fields) names.push_back(f->ToString());
  EXPECT_EQ(names, (std::vector<std::string>{"span.http.status_code", "resource.service.name", ".a", "span:id"}));
  EXPECT_EQ(FormatDuration(1'500'000'000), "1.5s");
  EXPECT_EQ(FormatDuration(2'500'000), "2.5ms");
  EXPECT_EQ(FormatDuration(3'723'000'000'000), "1h2m3s");
  EXPECT_EQ(*ParseGoDuration("1m30s"), 90'000'000'000);
}

TEST(TraceqlEngine, PrefilterTakesOnlySureConditions) {
  auto q = Parse("{ resource.service.name = \"api\" && name = \"GET /\" && kind = server && status = error && "
                 "duration > 1s && span.http.status_code = 500 && .other = 1 } | count() > 2");
  ASSERT_TRUE(q.ok());
  TraceSearchRequest r = Prefilter(**q);
  EXPECT_EQ(r.service, "api");
  EXPECT_EQ(r.name, "GET /");
  EXPECT_EQ(r.kind, 2);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.min_duration_ns, 1'000'000'000u);
  EXPECT_EQ(r.attributes, (std::vector<std::pair<std::string, std::string>>{{"http.status_code", "500"}}));
  // Disjunctions, structural operators and unscoped service.name narrow nothing.
  for (const char* text : {"{ name = \"a\" || kind = server }", "{ name = \"a\" } >> { kind = client }",
                           "{ .service.name = \"api\" }", "{ !(name = \"a\") }"}) {
    auto p = Parse(text);
    ASSERT_TRUE(p.ok()) << text;
    TraceSearchRequest n = Prefilter(**p);
    EXPECT_TRUE(n.service.empty() && n.name.empty() && n.kind == -1 && n.attributes.empty()) << text;
  }
}

// A 50000-span chain and a parent cycle: evaluation stays linear and ends.
TEST(TraceqlEngine, DeepAndCyclicTracesStayLinear) {
  pb::collector::trace::v1::ExportTraceServiceRequest req;
  auto* rs = req.add_resource_spans();
  auto* kv = rs->mutable_resource()->add_attributes();
  kv->set_key("service.name");
  kv->mutable_value()->set_string_value("svc");
  auto* ss = rs->add_scope_spans();
  constexpr int kDepth = 50000;
  auto sid = [](int i) {
    std::string id(8, '\0');
    std::memcpy(id.data(), &i, sizeof i);
    id[7] = 1;
    return id;
  };
  for (int i = 0; i < kDepth; ++i) {
    auto* sp = ss->add_spans();
    sp->set_trace_id(std::string(15, '\0') + "\x01");
    sp->set_span_id(sid(i));
    if (i > 0) sp->set_parent_span_id(sid(i - 1));
    sp->set_name(i == 0 ? "root" : "child");
    sp->set_start_time_unix_nano(kBase + i);
    sp->set_end_time_unix_nano(kBase + 2 * kDepth - i);
  }
  // Three spans that are each other's parents.
  for (int i = 0; i < 3; ++i) {
    auto* sp = ss->add_spans();
    sp->set_trace_id(std::string(15, '\0') + "\x01");
    sp->set_span_id(sid(kDepth + i));
    sp->set_parent_span_id(sid(kDepth + (i + 1) % 3));
    sp->set_name("loop");
    sp->set_start_time_unix_nano(kBase);
    sp->set_end_time_unix_nano(kBase + 1);
  }
  std::vector<SpanRecord> records;
  SplitStats stats;
  ASSERT_TRUE(SplitTraceRequest(req.SerializeAsString(), SpanLimits{}, &records, &stats).ok());
  auto t = DecodeTrace(records);
  ASSERT_TRUE(t.ok());
  MemoryTraceSource source({records});
  auto t0 = std::chrono::steady_clock::now();
  for (const char* text : {"{ name = \"root\" } >> { }", "{ } << { name = \"root\" }", "{ name = \"loop\" } >> { }",
                           "{ } ~ { name = \"loop\" }", "{ } ~ { }"}) {
    auto q = Parse(text);
    ASSERT_TRUE(q.ok());
    SearchOptions o;
    o.spans_per_spanset = 1;
    auto r = Search(source, **q, o);
    ASSERT_TRUE(r.ok());
    if (std::string(text).starts_with("{ name = \"root\" } >>")) {
      ASSERT_EQ(r->traces.size(), 1u);
      EXPECT_EQ(r->traces[0].spansets[0].matched, static_cast<size_t>(kDepth - 1));
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(60));  // quadratic: many minutes
}

TEST(TraceqlParser, BadInputNeverCrashes) {
  // Every prefix of some valid queries: an error or a query, never a crash.
  for (std::string q : {std::string("({ .a = 1 } | count() > 1) >> { status = error } | by(.b) | select(.c)"),
                        std::string("{ !(.a =~ \"x.*\") || -duration < -1s } ~ { parent.span.x != nil }")}) {
    for (size_t n = 0; n <= q.size(); ++n) (void)Parse(q.substr(0, n));
  }
  std::string deep(5000, '(');
  EXPECT_FALSE(Parse(deep).ok());
}

// The engine over a real store: written with TraceStore, read through the
// TraceReader adapter, live traces and cut blocks alike.
TEST(TraceqlStore, SearchThroughTraceReader) {
  TempDir dir;
  const std::string store_dir = dir.path() + "/traces";
  TraceStoreOptions opts;
  int64_t now = static_cast<int64_t>(kBase) + 10'000'000'000;
  opts.clock = [&now] { return now; };
  auto store = TraceStore::Open(DefaultFileSystem(), store_dir, opts);
  ASSERT_TRUE(store.ok()) << store.status().message();
  // Two traces written as scripts would.
  std::vector<Failure> failures;
  Script script;
  pb::trace::v1::TracesData td;
  ASSERT_TRUE(AddSpan(Words("span r service=web name=\"GET /\" kind=server start=0 dur=100ms"), "t1", &td, &script).ok());
  ASSERT_TRUE(AddSpan(Words("span c parent=r service=db name=select kind=client status=error start=10ms dur=50ms span.db.system=postgresql"), "t1", &td, &script).ok());
  ASSERT_TRUE(FinishTrace("t1", &td, &script).ok());
  ASSERT_TRUE(AddSpan(Words("span x service=web name=\"GET /health\" kind=server start=1s dur=1ms"), "t2", &td, &script).ok());
  ASSERT_TRUE(FinishTrace("t2", &td, &script).ok());
  ASSERT_TRUE((*store)->Append(script.requests[0]).ok());
  now += 60'000'000'000;
  ASSERT_TRUE((*store)->CutIdle().ok());  // t1 into a block
  ASSERT_TRUE((*store)->Append(script.requests[1]).ok());  // t2 live

  auto reader = TraceReader::Open(store_dir);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  auto source = NewTraceReaderSource(reader->get());
  auto q = Parse("{ resource.service.name = \"web\" } >> { status = error && span.db.system = \"postgresql\" }");
  ASSERT_TRUE(q.ok());
  auto r = Search(*source, **q, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(Render(*r, script), "t1: c\n");
  EXPECT_EQ(r->inspected_traces, 2u);
  ASSERT_EQ(r->traces.size(), 1u);
  EXPECT_EQ(r->traces[0].root_service, "web");
  EXPECT_EQ(r->traces[0].root_name, "GET /");
  EXPECT_EQ(r->traces[0].duration_ns, 100'000'000u);
  // The returned span carries the fields the query names.
  ASSERT_EQ(r->traces[0].spansets.size(), 1u);
  std::set<std::string> keys;
  for (const Attribute& a : r->traces[0].spansets[0].spans[0].attributes) keys.insert(a.key);
  EXPECT_EQ(keys, (std::set<std::string>{"service.name", "status", "db.system"}));

  q = Parse("{ kind = server }");
  ASSERT_TRUE(q.ok());
  r = Search(*source, **q, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Render(*r, script), "t1: r\nt2: x\n");
  ASSERT_EQ(r->traces.size(), 2u);
  EXPECT_EQ(script.trace_names.at(r->traces[0].trace_id), "t2");  // latest first
  // Window and limit.
  SearchOptions o;
  o.start_ns = static_cast<int64_t>(kBase) + 500'000'000;
  r = Search(*source, **q, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Render(*r, script), "t2: x\n");
  o = {};
  o.limit = 1;
  o.min_duration_ns = 50'000'000;
  r = Search(*source, **q, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Render(*r, script), "t1: r\n");
}

}  // namespace
}  // namespace telkit::traceql

namespace telkit::traceql {
namespace {

// Search latency over a generated store (not run by default):
//   TELKIT_TRACEQL_BENCH_TRACES=20000 traceql_test --gtest_also_run_disabled_tests
//     --gtest_filter='*Bench*'
TEST(TraceqlBench, DISABLED_SearchLatency) {
  const char* env = std::getenv("TELKIT_TRACEQL_BENCH_TRACES");
  const int traces = env ? std::atoi(env) : 20000;
  constexpr int kSpans = 10;
  TempDir dir;
  TraceStoreOptions opts;
  int64_t now = static_cast<int64_t>(kBase);
  opts.clock = [&now] { return now; };
  auto store = TraceStore::Open(DefaultFileSystem(), dir.path() + "/t", opts);
  ASSERT_TRUE(store.ok());
  const char* services[] = {"web", "api", "db", "cache", "auth"};
  for (int t = 0; t < traces; t += 100) {
    pb::collector::trace::v1::ExportTraceServiceRequest req;
    for (int k = t; k < std::min(traces, t + 100); ++k) {
      for (int s = 0; s < kSpans; ++s) {
        auto* rs = req.add_resource_spans();
        auto* kv = rs->mutable_resource()->add_attributes();
        kv->set_key("service.name");
        kv->mutable_value()->set_string_value(services[s % 5]);
        auto* sp = rs->add_scope_spans()->add_spans();
        std::string tid(16, '\0'), sid(8, '\0');
        std::memcpy(tid.data(), &k, sizeof k);
        tid[15] = 1;
        int id = k * kSpans + s;
        std::memcpy(sid.data(), &id, sizeof id);
        sid[7] = 1;
        sp->set_trace_id(tid);
        sp->set_span_id(sid);
        if (s > 0) {
          int parent = k * kSpans + s - 1;
          std::string pid(8, '\0');
          std::memcpy(pid.data(), &parent, sizeof parent);
          pid[7] = 1;
          sp->set_parent_span_id(pid);
        }
        sp->set_name(s == 0 ? "GET /api/orders" : "op" + std::to_string(s));
        sp->set_kind(s == 0 ? pb::trace::v1::Span::SPAN_KIND_SERVER : pb::trace::v1::Span::SPAN_KIND_CLIENT);
        if (k % 100 == 7 && s == 3) sp->mutable_status()->set_code(pb::trace::v1::Status::STATUS_CODE_ERROR);
        auto* a = sp->add_attributes();
        a->set_key("http.status_code");
        a->mutable_value()->set_int_value(k % 100 == 7 ? 500 : 200);
        sp->set_start_time_unix_nano(kBase + static_cast<uint64_t>(k) * 1'000'000 + s * 1000);
        sp->set_end_time_unix_nano(kBase + static_cast<uint64_t>(k) * 1'000'000 + 100'000);
      }
    }
    ASSERT_TRUE((*store)->Append(req.SerializeAsString()).ok());
  }
  now += 3600'000'000'000;
  ASSERT_TRUE((*store)->CutIdle().ok());
  auto reader = TraceReader::Open(dir.path() + "/t");
  ASSERT_TRUE(reader.ok());
  auto source = NewTraceReaderSource(reader->get());
  for (const char* text : {"{ status = error }", "{ span.http.status_code >= 500 }", "{ } | count() > 9",
                           "{ resource.service.name = \"web\" } >> { status = error }"}) {
    auto q = Parse(text);
    ASSERT_TRUE(q.ok());
    SearchOptions o;
    o.limit = 20;
    auto t0 = std::chrono::steady_clock::now();
    auto r = Search(*source, **q, o);
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(r.ok());
    std::printf("%-55s %6d traces %7d spans: %8.1f ms, %zu inspected, %zu found\n", text, traces, traces * kSpans, ms,
                static_cast<size_t>(r->inspected_traces), r->traces.size());
  }
}

}  // namespace
}  // namespace telkit::traceql
