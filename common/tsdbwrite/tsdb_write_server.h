// The whole tsdb-write daemon except flags and signals: the writer lock on
// the data directory, the MetricsStore, one reader thread per stream input
// (frame -> MetricsIngester -> Acknowledge once durable), the head served on
// DIR/head.sock (QuerySocketServer) for readers in other processes, and the
// admin endpoint with the store's self-metrics. tools/tsdb-write/main.cpp
// maps flags onto TsdbWriteConfig and signals onto these methods.
//
// Admin endpoint, besides /healthz /readyz /metrics (admin_server.h):
// Frames of one input that arrive while an append runs are appended
// together (group commit, up to 64 frames or 16 MiB): one WAL fsync serves
// them all, and all are acknowledged after it.
//
//   POST /api/v1/admin/tsdb/flush     writes the head out as blocks (FlushHead)
//   POST /api/v1/admin/tsdb/snapshot  a consistent copy in DIR/snapshots/NAME;
//                                     answers {"status":"success","data":{"name":NAME}}
//                                     as Prometheus does
// /readyz is 200 while every input reads and the store accepts appends.
//
// Thread-safety: Start, Shutdown from one thread; the accessors from any.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/admin/admin_server.h"
#include "common/admin/http_server.h"
#include "common/admin/metrics_registry.h"
#include "common/base/fd.h"
#include "common/base/status.h"
#include "common/stream/stream_input.h"
#include "common/tsdb/metrics_store.h"
#include "common/tsdb/query_socket.h"
#include "common/tsdbwrite/metrics_ingest.h"

namespace telkit {

struct TsdbWriteConfig {
  std::string data_dir;
  // Stream input specs (stream/endpoint.h); empty: listen:unix:DATA/ingest.sock.
  std::vector<std::string> inputs;
  StreamInputOptions input;
  MetricsStoreOptions store;
  MetricsIngestOptions ingest;
  // Frames queued for one append (one WAL fsync) at most, per input; with
  // the input's own read-ahead (StreamInputOptions::max_buffered_bytes)
  // and the batch being appended, the frame bytes held are ~3x this.
  size_t append_batch_bytes = size_t{4} << 20;
  bool serve_head = true;               // DIR/head.sock
  std::optional<ListenAddress> admin;   // nullopt: no admin endpoint
};

// The default input of a data directory.
std::string DefaultIngestInput(const std::string& data_dir);

class TsdbWriteServer {
 public:
  // Locks DIR (FAILED_PRECONDITION when another process holds it), opens
  // the store (replaying the WAL), serves the head, the admin endpoint, and
  // starts reading the inputs. REQUIRES: SIGPIPE is ignored.
  static Result<std::unique_ptr<TsdbWriteServer>> Start(TsdbWriteConfig config);
  ~TsdbWriteServer();  // Shutdown()

  int admin_port() const { return admin_ ? admin_->port() : 0; }
  const MetricsRegistry& registry() const { return *registry_; }
  MetricsStore* store() { return store_.get(); }
  MetricsIngester* ingester() { return ingester_.get(); }

  // True once every input has ended (EOF of a pipe or file).
  bool InputsFinished() const;
  // The first input or store failure (OK while all is well).
  Status status() const;

  // Stops reading (cancels the inputs), lets the frames being appended
  // finish and be acknowledged, stops the head socket and the admin
  // endpoint, and closes the store. Idempotent.
  Status Shutdown();

 private:
  TsdbWriteServer() = default;
  // One input: a reader thread queues frames (bounded), this thread takes
  // every frame queued so far, appends them with one store append (group
  // commit: one fsync for many frames) and acknowledges them in order.
  void ReadLoop(StreamInput* input, std::string spec);
  void Fail(const Status& s);
  void RegisterStoreMetrics();

  TsdbWriteConfig config_;
  UniqueFd lock_;
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<MetricsStore> store_;
  std::unique_ptr<MetricsIngester> ingester_;
  std::unique_ptr<QuerySocketServer> head_server_;
  std::unique_ptr<AdminServer> admin_;
  std::vector<std::unique_ptr<StreamInput>> inputs_;
  std::vector<std::thread> readers_;
  std::atomic<int> inputs_open_{0};
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  Status failed_;  // guarded by mu_
  bool shut_down_ = false;
};

}  // namespace telkit
