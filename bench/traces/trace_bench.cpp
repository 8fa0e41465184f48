// trace_bench: realistic traces (several services, 5-50 spans per trace,
// HTTP and DB attributes) into a TraceStore on the real file system (WAL
// fsyncs and blocks included), then trace-by-id and search latencies, from
// the writer and from a TraceReader (another process's view).
//   trace_bench [DIR] [SPANS=300000] [THREADS=2] [ZSTD_LEVEL=3] [SEARCH_SPANS=0]
//   trace_bench --search DIR TRACES   (the searches again, over a filled DIR)
// SEARCH_SPANS > 0 then fills the store up to that many spans (generated as
// they are appended, so memory stays bounded) and times searches over it.
// Prints one table; see bench/traces/README.md.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <ctime>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/tracestore/trace_reader.h"
#include "common/tracestore/trace_store.h"
#include "common/traceql/engine.h"
#include "common/traceql/parser.h"
#include "common/traceql/trace_source.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace pb = opentelemetry::proto;
using Clock = std::chrono::steady_clock;

namespace {

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

void Attr(google::protobuf::RepeatedPtrField<pb::common::v1::KeyValue>* a, const char* k, const std::string& v) {
  auto* kv = a->Add();
  kv->set_key(k);
  kv->mutable_value()->set_string_value(v);
}
void AttrInt(google::protobuf::RepeatedPtrField<pb::common::v1::KeyValue>* a, const char* k, int64_t v) {
  auto* kv = a->Add();
  kv->set_key(k);
  kv->mutable_value()->set_int_value(v);
}

const char* kServices[] = {"frontend", "checkout", "cart", "payments", "shipping", "catalog"};
const char* kRoutes[] = {"/api/cart", "/api/checkout", "/api/products/{id}", "/api/shipping", "/api/pay"};

// One trace of 5..50 spans, as one request (one ResourceSpans per service).
std::string MakeTrace(std::mt19937_64& rng, uint64_t t0, std::vector<std::string>* ids) {
  pb::collector::trace::v1::ExportTraceServiceRequest req;
  std::string trace(16, '\0');
  for (auto& c : trace) c = static_cast<char>(rng());
  ids->push_back(trace);
  int n = 5 + static_cast<int>(rng() % 46);
  std::vector<pb::trace::v1::ScopeSpans*> by_service(6, nullptr);
  std::vector<std::string> span_ids;
  for (int i = 0; i < n; ++i) {
    int svc = i == 0 ? 0 : 1 + static_cast<int>(rng() % 5);
    if (!by_service[svc]) {
      auto* rs = req.add_resource_spans();
      Attr(rs->mutable_resource()->mutable_attributes(), "service.name", kServices[svc]);
      Attr(rs->mutable_resource()->mutable_attributes(), "service.version", "1.4.2");
      Attr(rs->mutable_resource()->mutable_attributes(), "host.name", "node-7.example.internal");
      Attr(rs->mutable_resource()->mutable_attributes(), "telemetry.sdk.language", "go");
      by_service[svc] = rs->add_scope_spans();
      by_service[svc]->mutable_scope()->set_name("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp");
      by_service[svc]->mutable_scope()->set_version("0.46.1");
    }
    auto* s = by_service[svc]->add_spans();
    std::string sid(8, '\0');
    for (auto& c : sid) c = static_cast<char>(rng());
    span_ids.push_back(sid);
    s->set_trace_id(trace);
    s->set_span_id(sid);
    if (i > 0) s->set_parent_span_id(span_ids[rng() % i]);
    uint64_t start = t0 + i * 100'000;
    s->set_start_time_unix_nano(start);
    s->set_end_time_unix_nano(start + 50'000 + rng() % 200'000'000);
    bool db = i > 0 && rng() % 3 == 0;
    if (db) {
      s->set_name("SELECT orders");
      s->set_kind(pb::trace::v1::Span::SPAN_KIND_CLIENT);
      Attr(s->mutable_attributes(), "db.system", "postgresql");
      Attr(s->mutable_attributes(), "db.name", "shop");
      Attr(s->mutable_attributes(), "db.statement",
           "SELECT id, total, status FROM orders WHERE customer_id = $1 LIMIT 50");
    } else {
      const char* route = kRoutes[rng() % 5];
      s->set_name(std::string("GET ") + route);
      s->set_kind(pb::trace::v1::Span::SPAN_KIND_SERVER);
      Attr(s->mutable_attributes(), "http.request.method", "GET");
      Attr(s->mutable_attributes(), "http.route", route);
      Attr(s->mutable_attributes(), "url.path", std::string(route) + "/" + std::to_string(rng() % 10000));
      AttrInt(s->mutable_attributes(), "http.response.status_code", rng() % 50 == 0 ? 500 : 200);
      Attr(s->mutable_attributes(), "user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0");
    }
    if (rng() % 50 == 0) s->mutable_status()->set_code(pb::trace::v1::Status::STATUS_CODE_ERROR);
  }
  return req.SerializeAsString();
}

double ThreadCpuSeconds();

// Wall latencies, and the reading thread's CPU time (on a loaded shared
// machine the CPU figure is the one that compares across runs).
struct Lat {
  std::vector<double> us;
  double cpu0 = ThreadCpuSeconds();
  void Print(const char* what) {
    double cpu_ms = (ThreadCpuSeconds() - cpu0) * 1000 / static_cast<double>(us.size());
    std::sort(us.begin(), us.end());
    std::printf("| %-34s | p50 %.2f ms, p99 %.2f ms wall; %.2f CPU ms per read (%zu reads) |\n", what,
                us[us.size() / 2] / 1000, us[us.size() * 99 / 100] / 1000, cpu_ms, us.size());
  }
};

uint64_t CountSpans(const std::string& request) {
  pb::collector::trace::v1::ExportTraceServiceRequest r;
  r.ParseFromString(request);
  uint64_t n = 0;
  for (auto& rs : r.resource_spans()) n += rs.scope_spans(0).spans_size();
  return n;
}

void TimeSearches(const std::string& dir, int64_t first, int64_t last);

// The TraceQL source before TraceReader::ForEachTrace: Search pages for the
// matching traces (latest first), then TraceById for each. For comparison.
class SearchThenById : public telkit::traceql::TraceSource {
 public:
  explicit SearchThenById(telkit::TraceReader* r) : r_(r) {}
  telkit::Status ForEachTrace(int64_t start_ns, int64_t end_ns, const telkit::TraceSearchRequest& prefilter,
                              const std::function<bool(std::span<const telkit::SpanRecord>)>& fn) override {
    telkit::TraceSearchRequest req = prefilter;
    req.start_ns = start_ns;
    req.end_ns = end_ns;
    std::set<std::string> seen;
    for (size_t page = 256;; page = std::min<size_t>(page * 8, 100'000)) {
      req.limit = page;
      auto found = r_->Search(req);
      if (!found.ok()) return found.status();
      for (const telkit::TraceSummary& s : *found) {
        if (!seen.insert(s.trace_id).second) continue;
        auto spans = r_->TraceById(s.trace_id);
        if (!spans.ok()) return spans.status();
        if (!spans->empty() && !fn(*spans)) return telkit::OkStatus();
      }
      if (found->size() < page || page >= 100'000) return telkit::OkStatus();
    }
  }
  telkit::Result<std::vector<telkit::SpanRecord>> TraceById(const std::string& id) override { return r_->TraceById(id); }
  bool LatestFirst() const override { return true; }

 private:
  telkit::TraceReader* r_;
};

// Fills the store up to `total` spans (continuing the trace sequence), then
// times searches over everything through a TraceReader.
void SearchAtScale(telkit::TraceStore* store, const std::string& dir, uint64_t total, uint64_t spans, size_t traces,
                   uint64_t t0, std::mt19937_64& rng) {
  auto w0 = Clock::now();
  std::vector<std::string> ids;
  // 100 traces a request (fewer fsyncs: the fill is not what is measured),
  // a cut every 2000 traces as in the measured phase.
  for (uint64_t b = 1; spans < total; ++b) {
    std::string batch;
    for (int j = 0; j < 100; ++j) {
      batch += MakeTrace(rng, t0 + (traces++) * 1'000'000, &ids);
      ids.clear();
    }
    spans += CountSpans(batch);
    if (!store->Append(batch).ok()) std::abort();
    if (b % 20 == 0 && !store->CutIdle().ok()) std::abort();
  }
  if (!store->CutAll().ok()) std::abort();
  double fill = std::chrono::duration<double>(Clock::now() - w0).count();
  auto st = store->stats();
  std::printf(
      "| store for search | %llu spans, %zu traces, %llu blocks, %.1f B per span in blocks (filled in %.0f s) |\n",
      (unsigned long long)spans, traces, (unsigned long long)st.blocks, double(st.block_bytes) / spans, fill);
  TimeSearches(dir, static_cast<int64_t>(t0), static_cast<int64_t>(t0 + traces * 1'000'000ull + 1'000'000'000));
}

// Searches through a TraceReader over spans starting in [first, last).
void TimeSearches(const std::string& dir, int64_t first, int64_t last) {
  auto reader = telkit::TraceReader::Open(dir);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    std::exit(1);
  }
  std::mt19937_64 pick(11);
  auto time_search = [&](const char* what, int runs, auto make) {
    Lat lat;
    size_t found = 0;
    for (int i = 0; i < runs; ++i) {
      telkit::TraceSearchRequest q = make(i);
      auto a = Clock::now();
      auto r = (*reader)->Search(q);
      lat.us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
      if (!r.ok()) std::abort();
      found += r->size();
    }
    lat.Print(what);
    return found;
  };
  time_search("Search svc+name+min-dur, 60 s window", 20, [&](int i) {
    telkit::TraceSearchRequest q;
    q.service = kServices[1 + i % 5];
    q.name = "SELECT orders";
    q.min_duration_ns = 150'000'000;
    q.start_ns = first + static_cast<int64_t>(pick() % static_cast<uint64_t>(last - first));
    q.end_ns = q.start_ns + 60'000'000'000;
    return q;
  });
  time_search("Search svc+status=error, all spans", 5, [&](int i) {
    telkit::TraceSearchRequest q;
    q.service = kServices[1 + i % 5];
    q.status = 2;
    q.start_ns = first;
    q.end_ns = last;
    return q;
  });
  time_search("Search http.route attr+min-dur, all", 5, [&](int i) {
    telkit::TraceSearchRequest q;
    q.attributes = {{"http.route", kRoutes[i % 5]}};
    q.min_duration_ns = 199'000'000;
    q.start_ns = first;
    q.end_ns = last;
    return q;
  });
  // ForEachTrace, the TraceQL engine's entry point: whole traces.
  Lat each;
  size_t traces_seen = 0, spans_seen = 0;
  for (int i = 0; i < 3; ++i) {
    telkit::TraceSearchRequest pre;
    pre.service = "payments";
    pre.status = 2;
    pre.min_duration_ns = 190'000'000;
    auto a = Clock::now();
    telkit::Status s = (*reader)->ForEachTrace(first, last, pre, [&](std::span<const telkit::SpanRecord> t) {
      traces_seen++;
      spans_seen += t.size();
      return true;
    });
    each.us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
    if (!s.ok()) std::abort();
  }
  char what[96];
  std::snprintf(what, sizeof what, "ForEachTrace payments+error+>190ms, all (%zu traces)", traces_seen / 3);
  each.Print(what);
  (void)spans_seen;
  // TraceQL: tel-query's engine (what `tel-query traceql` and Tempo's
  // /api/search run) over the same ForEachTrace, its prefilter derived from
  // the query; the same traces, now decoded and evaluated.
  auto query = telkit::traceql::Parse(R"({ resource.service.name = "payments" && status = error && duration > 190ms })");
  if (!query.ok()) std::abort();
  auto source = telkit::traceql::NewTraceReaderSource(reader->get());
  // Before: the adapter as it was (a wide Search, then TraceById per trace).
  SearchThenById before(reader->get());
  for (size_t limit : {size_t{20}, size_t{0}}) {
    for (telkit::traceql::TraceSource* src : {static_cast<telkit::traceql::TraceSource*>(source.get()),
                                               static_cast<telkit::traceql::TraceSource*>(&before)}) {
      Lat ql;
      size_t matched = 0, inspected = 0;
      for (int i = 0; i < 3; ++i) {
        telkit::traceql::SearchOptions o;
        o.start_ns = first;
        o.end_ns = last;
        o.limit = limit;
        auto a = Clock::now();
        auto r = telkit::traceql::Search(*src, **query, o);
        ql.us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
        if (!r.ok()) std::abort();
        matched = r->traces.size();
        inspected = r->inspected_traces;
      }
      std::snprintf(what, sizeof what, "TraceQL payments+error+>190ms %s, limit %zu (%zu inspected, %zu shown)",
                    src == &before ? "[before: Search+TraceById]" : "[ForEachTrace]", limit, inspected, matched);
      ql.Print(what);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--search") {
    // Only the searches, over a store a previous run filled with SPANS traces.
    uint64_t t0 = 1'700'000'000'000'000'000ull;
    std::printf("| figure | value |\n|---|---|\n");
    TimeSearches(argv[2], static_cast<int64_t>(t0),
                 static_cast<int64_t>(t0 + std::strtoull(argv[3], nullptr, 10) * 1'000'000ull + 1'000'000'000));
    return 0;
  }
  std::string dir = argc > 1 ? argv[1] : "/tmp/trace_bench";
  uint64_t target = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 300000;
  uint64_t search_spans = argc > 5 ? std::strtoull(argv[5], nullptr, 10) : 0;
  int threads = argc > 3 ? std::atoi(argv[3]) : 2;
  int zstd_level = argc > 4 ? std::atoi(argv[4]) : telkit::TraceStoreOptions().zstd_level;
  std::filesystem::remove_all(dir);
  std::mt19937_64 rng(42);
  std::vector<std::string> requests, ids;
  uint64_t spans = 0;
  uint64_t t0 = 1'700'000'000'000'000'000ull;
  while (spans < target) {
    requests.push_back(MakeTrace(rng, t0 + requests.size() * 1'000'000, &ids));
    pb::collector::trace::v1::ExportTraceServiceRequest r;
    r.ParseFromString(requests.back());
    for (auto& rs : r.resource_spans()) spans += rs.scope_spans(0).spans_size();
  }
  // Batch ~10 traces a request, as an SDK batch processor would.
  std::vector<std::string> batches;
  for (size_t i = 0; i < requests.size(); i += 10) {
    std::string b;
    for (size_t j = i; j < std::min(requests.size(), i + 10); ++j) b += requests[j];
    batches.push_back(std::move(b));
  }
  uint64_t bytes_in = 0;
  for (auto& b : batches) bytes_in += b.size();

  telkit::TraceStoreOptions o;
  o.idle_ns = 0;
  o.zstd_level = zstd_level;
  auto store = telkit::TraceStore::Open(telkit::DefaultFileSystem(), dir, o);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  double cpu0 = CpuSeconds();
  auto w0 = Clock::now();
  std::vector<std::thread> ts;
  std::atomic<size_t> next{0};
  std::mutex split_mu;
  double append_cpu = 0, cut_cpu = 0;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      double a = 0, c = 0;
      for (size_t i; (i = next.fetch_add(1)) < batches.size();) {
        double c0 = ThreadCpuSeconds();
        if (!(*store)->Append(batches[i]).ok()) std::abort();
        double c1 = ThreadCpuSeconds();
        a += c1 - c0;
        if (i % 200 == 199) {
          (void)(*store)->CutIdle();  // the daemon's cutter, inline
          c += ThreadCpuSeconds() - c1;
        }
      }
      std::lock_guard<std::mutex> l(split_mu);
      append_cpu += a;
      cut_cpu += c;
    });
  }
  for (auto& t : ts) t.join();
  double c0 = ThreadCpuSeconds();
  auto cut = (*store)->CutAll();
  if (!cut.ok()) std::abort();
  cut_cpu += ThreadCpuSeconds() - c0;
  double wall = std::chrono::duration<double>(Clock::now() - w0).count();
  double cpu = CpuSeconds() - cpu0;
  uint64_t disk = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) disk += e.file_size();
  }
  auto st = (*store)->stats();
  std::printf("| figure | value |\n|---|---|\n");
  std::printf("| spans / traces / requests | %llu / %zu / %zu (%.0f B OTLP per span) |\n", (unsigned long long)spans,
              ids.size(), batches.size(), double(bytes_in) / spans);
  std::printf("| ingest into durable storage (%d threads) | %.0f spans/s wall, %.2f s |\n", threads, spans / wall,
              wall);
  std::printf("| CPU per 1M spans | %.2f CPU s (%.0f spans/s per core) |\n", cpu / spans * 1e6, spans / cpu);
  std::printf("| of which Append / block cuts (thread CPU) | %.2f / %.2f CPU s per 1M spans |\n",
              append_cpu / spans * 1e6, cut_cpu / spans * 1e6);
  std::printf("| bytes on disk per span (blocks + catalogue + WAL) | %.1f B (blocks alone %.1f B) |\n",
              double(disk) / spans, double(st.block_bytes) / spans);
  std::printf("| WAL commits (group commit) | %llu for %zu appends |\n", (unsigned long long)st.wal.commits,
              batches.size());
  Lat byid, byid_reader, search;
  byid.cpu0 = ThreadCpuSeconds();
  std::mt19937_64 pick(7);
  for (int i = 0; i < 500; ++i) {
    const std::string& id = ids[pick() % ids.size()];
    auto a = Clock::now();
    auto r = (*store)->TraceById(id);
    byid.us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
    if (!r.ok() || r->empty()) std::abort();
  }
  byid.Print("trace by id (writer)");
  auto reader = telkit::TraceReader::Open(dir);
  if (!reader.ok()) std::abort();
  byid_reader.cpu0 = ThreadCpuSeconds();
  for (int i = 0; i < 500; ++i) {
    const std::string& id = ids[pick() % ids.size()];
    auto a = Clock::now();
    auto r = (*reader)->TraceById(id);
    byid_reader.us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
    if (!r.ok() || r->empty()) std::abort();
  }
  byid_reader.Print("trace by id (TraceReader)");
  search.cpu0 = ThreadCpuSeconds();
  for (int i = 0; i < 20; ++i) {
    telkit::TraceSearchRequest q;
    q.service = kServices[1 + i % 5];
    q.name = "SELECT orders";
    q.min_duration_ns = 150'000'000;
    q.start_ns = static_cast<int64_t>(t0 + (pick() % ids.size()) * 1'000'000);
    q.end_ns = q.start_ns + 60'000'000'000;
    q.limit = 20;
    auto a = Clock::now();
    auto r = (*reader)->Search(q);
    search.us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
    if (!r.ok()) std::abort();
  }
  search.Print("search svc+name+min-dur, 60 s, limit 20");
  if (search_spans > spans) SearchAtScale(store->get(), dir, search_spans, spans, ids.size(), t0, rng);
  return 0;
}
