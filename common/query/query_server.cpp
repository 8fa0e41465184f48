#include "common/query/query_server.h"

#include <chrono>
#include <mutex>

#include "common/admin/process_metrics.h"
#include "common/fs/file_system.h"
#include "common/rules/state_file.h"
#include "common/tsdb/metrics_reader.h"

namespace telkit::query {
namespace {

// A reader of a stopped store holds the writer lock: one at a time here.
std::mutex& StoppedStoreMutex() {
  static std::mutex m;
  return m;
}

struct HeldReader {
  std::unique_ptr<MetricsReader> reader;
  std::unique_lock<std::mutex> lock;  // owned while the reader holds DIR/lock
};

}  // namespace

Result<api::PrometheusApiBackend> MakeBackend(const DataSource& source, int64_t default_t_ms) {
  if (!source.load_files.empty() || source.data_dir.empty()) {
    TELKIT_ASSIGN_OR_RETURN(std::shared_ptr<Querier> q, OpenDataSource(source, default_t_ms));
    api::PrometheusApiBackend backend = api::PrometheusApiBackend::ForQuerier(q);
    return backend;
  }
  const std::string dir = source.data_dir;
  {  // Fail at start-up when there is no store at all.
    std::unique_lock<std::mutex> lock(StoppedStoreMutex());
    Result<std::unique_ptr<MetricsReader>> probe = OpenMetricsReader(DefaultFileSystem(), dir);
    if (!probe.ok() && probe.status().code() != StatusCode::kUnavailable) {
      return probe.status().WithContext("open the metrics store '" + dir + "'");
    }
  }
  api::PrometheusApiBackend backend;
  backend.querier = [dir]() -> Result<std::shared_ptr<Querier>> {
    auto held = std::make_shared<HeldReader>();
    held->lock = std::unique_lock<std::mutex>(StoppedStoreMutex());
    Result<std::unique_ptr<MetricsReader>> r = OpenMetricsReader(DefaultFileSystem(), dir);
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kFailedPrecondition) {
        return UnavailableError("the metrics store '" + dir + "' is busy: " + std::string(r.status().message()));
      }
      return r.status();
    }
    held->reader = std::move(*r);
    if (held->reader->mode() == MetricsReader::Mode::kDaemon) held->lock.unlock();
    Querier* q = held->reader.get();
    return std::shared_ptr<Querier>(std::move(held), q);  // aliasing: keeps the lock with the reader
  };
  backend.metadata = [dir](std::string_view family) -> Result<std::vector<MetricMetadata>> {
    std::unique_lock<std::mutex> lock(StoppedStoreMutex());
    TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<MetricsReader> r, OpenMetricsReader(DefaultFileSystem(), dir));
    if (r->mode() == MetricsReader::Mode::kDaemon) lock.unlock();
    return r->Metadata(family);
  };
  return backend;
}

Result<std::unique_ptr<QueryServer>> QueryServer::Start(const QueryServerOptions& options) {
  if (!options.prometheus) return InvalidArgumentError("no query API to serve");
  std::unique_ptr<QueryServer> server(new QueryServer());
  server->registry_ = std::make_unique<MetricsRegistry>();
  RegisterProcessMetrics(*server->registry_, "tel-query");
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  TELKIT_ASSIGN_OR_RETURN(api::PrometheusApiBackend backend, MakeBackend(options.data, now));
  std::function<bool()> ready = backend.ready;
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
  if (prometheus_) prometheus_->Stop();
}

}  // namespace telkit::query
