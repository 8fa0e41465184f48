// TraceStoreServer: the trace-store daemon minus main(): reads traces frames
// from stream inputs into a TraceStore, acknowledging a frame only once its
// request is durable (TraceStore::Append returned), cuts idle traces on a
// timer, and serves the admin endpoint with self-metrics
// (trace_store_*; docs/tracestore.md lists them).
//
// Bad input never stops it: a frame of another signal, or one whose payload
// is not an ExportTraceServiceRequest, is counted, acknowledged (it will
// never become valid) and skipped. A store error (disk full, I/O) stops
// reading without acknowledging; status() reports it.
//
// With metrics_out set, every accepted span also feeds a
// SpanMetricsGenerator whose cumulative values are written as an OTLP metrics
// frame every metrics interval and once more at Shutdown.
//
// DIR/lock (common/tsdb/metrics_reader.h, LockStoreDir) keeps a second
// daemon off the same directory: Start fails with FAILED_PRECONDITION.
//
// Thread-safe: Shutdown() and status() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
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
#include "common/stream/stream_output.h"
#include "common/tracestore/span_metrics.h"
#include "common/tracestore/trace_store.h"

namespace telkit {

struct TraceStoreServerConfig {
  std::string data_dir;
  std::vector<std::string> inputs;  // stream input specs
  StreamInputOptions input;
  std::optional<ListenAddress> admin;
  TraceStoreOptions store;
  int64_t cut_interval_ms = 1000;
  // On Shutdown, cut every live trace into a block (otherwise they stay in
  // the WAL, replayed at the next start).
  bool cut_on_shutdown = false;
  // Span metrics and service graphs (span_metrics.h) written as OTLP metrics
  // frames to this stream output every metrics_interval_ms ("" = off).
  std::string metrics_out;
  int64_t metrics_interval_ms = 15000;
  SpanMetricsOptions metrics;
};

class TraceStoreServer {
 public:
  static Result<std::unique_ptr<TraceStoreServer>> Start(TraceStoreServerConfig config);
  ~TraceStoreServer();  // Shutdown()

  // Stops the inputs, finishes the frame in hand, stops the cutter, closes
  // the store. Idempotent; returns the first error seen.
  Status Shutdown();
  // OK while healthy; the error that stopped ingest otherwise.
  Status status() const;
  // True once every input has ended (pipes and files at EOF).
  bool inputs_done() const { return inputs_open_.load() == 0; }
  int admin_port() const { return admin_ ? admin_->port() : 0; }
  TraceStore* store() { return store_.get(); }

 private:
  TraceStoreServer() = default;
  void ReadLoop(StreamInput* in);
  void CutLoop();
  void MetricsLoop();
  Status WriteMetrics(bool final);
  void Fail(const Status& s);
  void RegisterMetrics();

  TraceStoreServerConfig config_;
  UniqueFd lock_;  // DIR/lock (tsdb's LockStoreDir): one daemon per directory
  std::unique_ptr<TraceStore> store_;
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<AdminServer> admin_;
  std::vector<std::unique_ptr<StreamInput>> inputs_;
  std::vector<std::thread> readers_;
  std::thread cutter_;
  std::unique_ptr<SpanMetricsGenerator> generator_;
  std::unique_ptr<StreamOutput> metrics_out_;
  std::thread metrics_thread_;
  std::atomic<uint64_t> metrics_frames_{0}, metrics_errors_{0};
  std::atomic<int> inputs_open_{0};
  std::atomic<uint64_t> frames_{0}, frames_other_signal_{0}, frames_invalid_{0}, cut_failures_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool shut_down_ = false;
  Status status_;
};

}  // namespace telkit
