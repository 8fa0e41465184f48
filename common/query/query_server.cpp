#include "common/query/query_server.h"

#include <chrono>
#include <mutex>

#include "common/admin/process_metrics.h"
#include "common/fs/file_system.h"
#include "common/rules/state_file.h"
#include "common/tsdb/metrics_reader.h"

namespace telkit::query {
namespace {

// The reader of `dir`, opened once and reused while ObserveStore() says the
// store is as it was (see query_server.h). Thread-safe.
class ReaderCache {
 public:
  explicit ReaderCache(std::string dir) : dir_(std::move(dir)) {}

  Result<std::shared_ptr<MetricsReader>> Get() {
    std::lock_guard<std::mutex> lock(mu_);
    StoreState now = ObserveStore(dir_);
    if (reader_ && Same(now)) return reader_;
    reader_.reset();
    if (!now.socket && now.lock_held) {
      // An import or a daemon replaying its WAL: retry later.
      return UnavailableError("the metrics store '" + dir_ + "' is busy: another process holds its lock " +
                              "and serves no head (starting, or an import): retry");
    }
    Result<std::unique_ptr<MetricsReader>> r = OpenMetricsReader(DefaultFileSystem(), dir_);
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kFailedPrecondition) {
        return UnavailableError("the metrics store '" + dir_ + "' is busy: " + std::string(r.status().message()));
      }
      return r.status();
    }
    // A stopped store was read whole under the lock; holding it longer
    // would keep tsdb-write from starting. What it changes shows in the
    // next ObserveStore().
    (*r)->ReleaseStoreLock();
    state_ = ObserveStore(dir_);
    reader_ = std::shared_ptr<MetricsReader>(std::move(*r));
    return reader_;
  }

 private:
  bool Same(const StoreState& now) const {
    if (reader_->mode() == MetricsReader::Mode::kDaemon) {
      // The head answers live and the blocks are read per call: only a
      // restarted (or vanished) daemon needs a new reader.
      return now.socket && now.socket_ino == state_.socket_ino && now.lock_held;
    }
    return now == state_;
  }

  const std::string dir_;
  std::mutex mu_;
  std::shared_ptr<MetricsReader> reader_;
  StoreState state_;
};

}  // namespace

Result<api::PrometheusApiBackend> MakeBackend(const DataSource& source, int64_t default_t_ms) {
  if (!source.load_files.empty() || source.data_dir.empty()) {
    TELKIT_ASSIGN_OR_RETURN(std::shared_ptr<Querier> q, OpenDataSource(source, default_t_ms));
    api::PrometheusApiBackend backend = api::PrometheusApiBackend::ForQuerier(q);
    return backend;
  }
  const std::string dir = source.data_dir;
  auto cache = std::make_shared<ReaderCache>(dir);
  {  // Fail at start-up when there is no store at all.
    Result<std::shared_ptr<MetricsReader>> probe = cache->Get();
    if (!probe.ok() && probe.status().code() != StatusCode::kUnavailable) {
      return probe.status().WithContext("open the metrics store '" + dir + "'");
    }
  }
  api::PrometheusApiBackend backend;
  backend.querier = [cache]() -> Result<std::shared_ptr<Querier>> {
    TELKIT_ASSIGN_OR_RETURN(std::shared_ptr<MetricsReader> r, cache->Get());
    return std::shared_ptr<Querier>(r);
  };
  backend.metadata = [cache](std::string_view family) -> Result<std::vector<MetricMetadata>> {
    TELKIT_ASSIGN_OR_RETURN(std::shared_ptr<MetricsReader> r, cache->Get());
    return r->Metadata(family);
  };
  backend.exemplars = [cache](int64_t mint, int64_t maxt,
                              std::span<const LabelMatcher> matchers) -> Result<std::vector<api::SeriesExemplarList>> {
    TELKIT_ASSIGN_OR_RETURN(std::shared_ptr<MetricsReader> r, cache->Get());
    TELKIT_ASSIGN_OR_RETURN(std::vector<SeriesExemplars> got, r->Exemplars(mint, maxt, matchers));
    std::vector<api::SeriesExemplarList> out;
    out.reserve(got.size());
    for (SeriesExemplars& s : got) out.push_back({std::move(s.labels), std::move(s.exemplars)});
    return out;
  };
  return backend;
}

Result<std::unique_ptr<QueryServer>> QueryServer::Start(const QueryServerOptions& options) {
  if (!options.prometheus && !options.loki && !options.tempo) return InvalidArgumentError("no query API to serve");
  std::unique_ptr<QueryServer> server(new QueryServer());
  server->registry_ = std::make_unique<MetricsRegistry>();
  RegisterProcessMetrics(*server->registry_, "tel-query");
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::function<bool()> ready;
  if (options.prometheus) {
    TELKIT_ASSIGN_OR_RETURN(api::PrometheusApiBackend backend, MakeBackend(options.data, now));
    ready = backend.ready;
    if (!options.rules_state.empty()) {
      const std::string path = options.rules_state;
      // A missing file is "no rules yet" (tel-rules not started), not an error.
      auto read = [path]() -> Result<rules::RulesState> {
        Result<rules::RulesState> st = rules::ReadRulesStateFile(path);
        if (!st.ok() && st.status().code() == StatusCode::kNotFound) return rules::RulesState{};
        return st;
      };
      backend.rules = [read](std::string_view type) -> Result<std::string> {
        TELKIT_ASSIGN_OR_RETURN(rules::RulesState st, read());
        return rules::RulesApiData(st, type).dump();
      };
      backend.alerts = [read]() -> Result<std::string> {
        TELKIT_ASSIGN_OR_RETURN(rules::RulesState st, read());
        return rules::AlertsApiData(st).dump();
      };
    }
    TELKIT_ASSIGN_OR_RETURN(server->prometheus_, api::StartPrometheusApi(*options.prometheus, std::move(backend)));
    server->prometheus_->RegisterMetrics(*server->registry_);
  }
  if (options.tempo) {
    TELKIT_ASSIGN_OR_RETURN(server->tempo_, tempoapi::StartTempoApi(*options.tempo));
    server->tempo_->RegisterMetrics(*server->registry_);
  }
  if (options.loki) {
    Result<std::unique_ptr<LogReader>> reader = LogReader::Open(DefaultFileSystem(), options.logs_data);
    if (!reader.ok()) return reader.status().WithContext("open the log store '" + options.logs_data + "'");
    TELKIT_ASSIGN_OR_RETURN(server->loki_,
                            lokiapi::StartLokiApi(*options.loki, std::shared_ptr<LogQuerier>(std::move(*reader))));
    server->loki_->RegisterMetrics(*server->registry_);
  }
  if (options.admin) {
    AdminServerOptions admin;
    admin.listen = *options.admin;
    admin.ready = ready;
    TELKIT_ASSIGN_OR_RETURN(server->admin_, AdminServer::Start(admin, *server->registry_));
  }
  return server;
}

QueryServer::~QueryServer() { Stop(); }

void QueryServer::Stop() {
  if (admin_) admin_->Stop();
  if (loki_) loki_->Stop();
  if (prometheus_) prometheus_->Stop();
  if (tempo_) tempo_->Stop();
}

}  // namespace telkit::query
