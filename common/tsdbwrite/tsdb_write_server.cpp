#include "common/tsdbwrite/tsdb_write_server.h"

#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstdio>
#include <filesystem>
#include <ctime>
#include <random>

#include "common/admin/process_metrics.h"
#include "common/tsdb/metrics_reader.h"

namespace telkit {

std::string DefaultIngestInput(const std::string& data_dir) {
  return "listen:unix:" + JoinPath(data_dir, "ingest.sock");
}

namespace {

// Bytes of the regular files under `path` (recursively); 0 when missing.
uint64_t DiskBytes(const std::string& path) {
  std::error_code ec;
  uint64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (it->is_regular_file(e2)) total += it->file_size(e2);
  }
  return total;
}

std::string SnapshotName() {
  char buf[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "-%08x", rd());
  return std::string(buf) + suffix;
}

std::string JsonError(const std::string& message) {
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    escaped += c;
  }
  return R"({"status":"error","errorType":"internal","error":")" + escaped + "\"}\n";
}

}  // namespace

Result<std::unique_ptr<TsdbWriteServer>> TsdbWriteServer::Start(TsdbWriteConfig config) {
  if (config.data_dir.empty()) return InvalidArgumentError("no data directory");
  std::unique_ptr<TsdbWriteServer> s(new TsdbWriteServer());
  TELKIT_ASSIGN_OR_RETURN(s->lock_, LockStoreDir(config.data_dir, StoreLockInfo{static_cast<int>(::getpid()), ""}));
  if (config.inputs.empty()) config.inputs = {DefaultIngestInput(config.data_dir)};
  s->config_ = config;
  s->registry_ = std::make_unique<MetricsRegistry>();
  RegisterProcessMetrics(*s->registry_, "tsdb-write");
  TELKIT_ASSIGN_OR_RETURN(s->store_, MetricsStore::Open(DefaultFileSystem(), config.data_dir, config.store));
  s->ingester_ = std::make_unique<MetricsIngester>(s->store_.get(), s->registry_.get(), config.ingest);
  s->RegisterStoreMetrics();
  if (config.serve_head) {
    QuerySocketServerOptions head;
    MetricsStore* store = s->store_.get();
    head.exemplars = [store](int64_t mint, int64_t maxt, std::span<const LabelMatcher> matchers) {
      return store->SeriesExemplarLists(mint, maxt, matchers);
    };
    TELKIT_ASSIGN_OR_RETURN(s->head_server_, QuerySocketServer::Start(JoinPath(config.data_dir, kHeadSocketFile),
                                                                      s->store_.get(), std::move(head)));
  }
  if (config.admin) {
    AdminServerOptions ao;
    ao.listen = *config.admin;
    TsdbWriteServer* self = s.get();
    ao.ready = [self] { return !self->stopping_.load() && self->status().ok(); };
    ao.extra_routes = [self](httplib::Server& http) {
      http.Post("/api/v1/admin/tsdb/flush", [self](const httplib::Request&, httplib::Response& res) {
        Status st = self->store_->FlushHead();
        if (!st.ok()) {
          res.status = 500;
          res.set_content(JsonError(st.message()), "application/json");
          return;
        }
        res.set_content(R"({"status":"success"})" "\n", "application/json");
      });
      http.Post("/api/v1/admin/tsdb/snapshot", [self](const httplib::Request&, httplib::Response& res) {
        const std::string snapshots = JoinPath(self->config_.data_dir, "snapshots");
        ::mkdir(snapshots.c_str(), 0755);
        const std::string name = SnapshotName();
        Status st = self->store_->Snapshot(JoinPath(snapshots, name));
        if (!st.ok()) {
          res.status = 500;
          res.set_content(JsonError(st.message()), "application/json");
          return;
        }
        res.set_content(R"({"status":"success","data":{"name":")" + name + "\"}}\n", "application/json");
      });
    };
    TELKIT_ASSIGN_OR_RETURN(s->admin_, AdminServer::Start(ao, *s->registry_));
    TELKIT_RETURN_IF_ERROR(UpdateStoreLock(
        s->lock_.get(), StoreLockInfo{static_cast<int>(::getpid()),
                                      ListenAddress{config.admin->host, s->admin_->port()}.ToString()}));
  }
  for (const std::string& spec : config.inputs) {
    TELKIT_ASSIGN_OR_RETURN(auto in, OpenStreamInput(spec, config.input));
    s->inputs_.push_back(std::move(in));
  }
  s->inputs_open_ = static_cast<int>(s->inputs_.size());
  for (size_t i = 0; i < s->inputs_.size(); ++i) {
    s->readers_.emplace_back(&TsdbWriteServer::ReadLoop, s.get(), s->inputs_[i].get(), config.inputs[i]);
  }
  return s;
}

void TsdbWriteServer::RegisterStoreMetrics() {
  MetricsStore* st = store_.get();
  MetricsRegistry& r = *registry_;
  auto stat = [st](auto field) { return [st, field] { return static_cast<double>(st->stats().*field); }; };
  using S = MetricsStoreStats;
  r.AddCallback("tsdb_write_head_series", "Series in the head.", MetricType::kGauge, {}, stat(&S::head_series));
  r.AddCallback("tsdb_write_head_chunks", "Chunks in the head.", MetricType::kGauge, {}, stat(&S::head_chunks));
  r.AddCallback("tsdb_write_samples_appended_total", "Samples stored.", MetricType::kCounter, {},
                stat(&S::samples_appended));
  r.AddCallback("tsdb_write_exemplars_appended_total", "Exemplars stored.", MetricType::kCounter, {},
                stat(&S::exemplars_appended));
  r.AddCallback("tsdb_write_series_created_total", "Series created in the head.", MetricType::kCounter, {},
                stat(&S::series_created));
  r.AddCallback("tsdb_write_wal_bytes", "Bytes of the write-ahead log.", MetricType::kGauge, {}, stat(&S::wal_bytes));
  r.AddCallback("tsdb_write_wal_syncs_total", "WAL fsyncs (concurrent appends share one).", MetricType::kCounter, {},
                stat(&S::wal_syncs));
  r.AddCallback("tsdb_write_wal_truncations_total", "WAL checkpoints.", MetricType::kCounter, {},
                stat(&S::wal_truncations));
  r.AddCallback("tsdb_write_append_calls_total", "Store appends.", MetricType::kCounter, {}, stat(&S::append_calls));
  r.AddCallback("tsdb_write_append_seconds_total", "Time in store appends, WAL write and fsync included.",
                MetricType::kCounter, {}, [st] { return static_cast<double>(st->stats().append_nanos) / 1e9; });
  r.AddCallback("tsdb_write_append_max_seconds", "Longest store append (WAL write and fsync included).",
                MetricType::kGauge, {}, [st] { return static_cast<double>(st->stats().max_append_nanos) / 1e9; });
  r.AddCallback("tsdb_write_blocks", "Blocks on disk.", MetricType::kGauge, {}, stat(&S::blocks));
  r.AddCallback("tsdb_write_block_bytes", "Bytes of the blocks on disk.", MetricType::kGauge, {},
                stat(&S::block_bytes));
  r.AddCallback("tsdb_write_blocks_written_total", "Blocks written from the head.", MetricType::kCounter, {},
                stat(&S::blocks_written));
  r.AddCallback("tsdb_write_compactions_total", "Block compactions.", MetricType::kCounter, {}, stat(&S::compactions));
  r.AddCallback("tsdb_write_compaction_failures_total", "Failed compactions.", MetricType::kCounter, {},
                stat(&S::compaction_failures));
  r.AddCallback("tsdb_write_retention_removed_blocks_total", "Blocks removed by retention.", MetricType::kCounter,
                {}, stat(&S::retention_removed_blocks));
  const std::string dir = config_.data_dir;
  r.AddCallback("tsdb_write_disk_bytes", "Bytes of every file under the data directory.", MetricType::kGauge, {},
                [dir] { return static_cast<double>(DiskBytes(dir)); });
  r.AddCallback("tsdb_write_inputs_open", "Stream inputs still reading.", MetricType::kGauge, {},
                [this] { return static_cast<double>(inputs_open_.load()); });
}

void TsdbWriteServer::Fail(const Status& s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (failed_.ok()) failed_ = s;
}

Status TsdbWriteServer::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_;
}

bool TsdbWriteServer::InputsFinished() const { return inputs_open_.load() == 0; }

void TsdbWriteServer::ReadLoop(StreamInput* input, std::string spec) {
  constexpr size_t kMaxBatchFrames = 64;
  const size_t kMaxBatchBytes = std::max<size_t>(config_.append_batch_bytes, 1);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Frame> queue;  // guarded by mu
  size_t queued_bytes = 0;  // guarded by mu
  bool reader_done = false, appender_done = false;
  std::thread reader([&] {
    for (;;) {
      auto next = input->Next();
      if (!next.ok()) {
        if (next.status().code() != StatusCode::kCancelled) {
          Fail(Status(next.status().code(), "input '" + spec + "': " + next.status().message()));
        }
        break;
      }
      if (!next->has_value()) break;  // end of input
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return appender_done || (queue.size() < kMaxBatchFrames && queued_bytes < kMaxBatchBytes); });
      if (appender_done) break;
      queued_bytes += (*next)->payload.size();
      queue.push_back(std::move(**next));
      cv.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu);
    reader_done = true;
    cv.notify_all();
  });
  std::vector<Frame> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return !queue.empty() || reader_done; });
      if (queue.empty()) break;  // the reader ended and everything is appended
      batch.assign(std::make_move_iterator(queue.begin()), std::make_move_iterator(queue.end()));
      queue.clear();
      queued_bytes = 0;
      cv.notify_all();
    }
    Status s = ingester_->IngestBatch(batch);
    if (!s.ok()) {
      // A store failure: these frames stay unacknowledged (the sender keeps
      // them) and every later append fails too; stop reading.
      Fail(Status(s.code(), "store: " + s.message()));
      input->Cancel();
      break;
    }
    for (const Frame& f : batch) {
      input->Acknowledge(f);
      ingester_->CountAck();
    }
    batch.clear();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    appender_done = true;
    cv.notify_all();
  }
  reader.join();
  inputs_open_.fetch_sub(1);
}

Status TsdbWriteServer::Shutdown() {
  if (shut_down_) return status();
  shut_down_ = true;
  stopping_ = true;
  for (auto& in : inputs_) in->Cancel();
  for (auto& t : readers_) t.join();  // a frame being appended finishes and is acked first
  readers_.clear();
  inputs_.clear();
  if (head_server_) head_server_->Stop();
  if (admin_) admin_->Stop();
  Status closed = store_ ? store_->Close() : OkStatus();
  Status s = status();
  return s.ok() ? closed : s;
}

TsdbWriteServer::~TsdbWriteServer() { (void)Shutdown(); }

}  // namespace telkit
