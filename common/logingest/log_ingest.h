// The log-ingest daemon and its plain-text mode, everything except flags and
// signals (tools/log-ingest/main.cpp):
//   * LogIngestServer: the writer lock on the data directory, the LogStore,
//     one reader thread per stream input (logs frames -> MapOtlpLogs ->
//     LogStore::Push -> Acknowledge once durable; other signals counted and
//     acknowledged, malformed payloads counted and acknowledged), the admin
//     endpoint (/healthz /readyz /metrics, POST /api/v1/admin/logs/flush).
//   * PlainIngester: text or JSON lines (journalctl -o json, tail -F) with
//     fixed labels, the timestamp from a JSON field or the arrival time.
//   * ParseLogSelector / ParseLogTime / FormatLogQueryResult: the stopgap
//     `log-ingest query` reader.
// Thread-safety: LogIngestServer Start/Shutdown from one thread, accessors
// from any; PlainIngester is thread-compatible.
#pragma once

#include <atomic>
#include <map>
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
#include "common/logstore/log_store.h"
#include "common/logstore/otlp_logs.h"
#include "common/stream/format.h"
#include "common/stream/stream_input.h"

namespace telkit {

struct LogIngestConfig {
  std::string data_dir;
  std::vector<std::string> inputs;  // stream input specs; none: no daemon inputs
  StreamInputOptions input;
  LogStoreOptions store;
  OtlpLogsMapOptions mapping;
  std::optional<ListenAddress> admin;  // nullopt: no admin endpoint
};

class LogIngestServer {
 public:
  // Locks DIR (FAILED_PRECONDITION when another process holds it), opens
  // the store, the admin endpoint and the inputs. REQUIRES: SIGPIPE ignored.
  static Result<std::unique_ptr<LogIngestServer>> Start(LogIngestConfig config);
  ~LogIngestServer();

  LogStore* store() { return store_.get(); }
  MetricsRegistry& registry() { return *registry_; }
  int admin_port() const { return admin_ ? admin_->port() : 0; }
  // Stores one frame; OK when it may be acknowledged (stored, or counted
  // as bad input). Non-OK: a store failure, do not acknowledge.
  Status IngestFrame(const Frame& frame);
  bool InputsFinished() const { return inputs_open_.load() == 0; }
  Status status() const;
  // Stops the inputs, lets frames in flight be stored and acknowledged,
  // stops the admin endpoint, closes (flushes) the store. Idempotent.
  Status Shutdown();

 private:
  LogIngestServer() = default;
  void ReadLoop(StreamInput* input, std::string spec);
  void Fail(const Status& s);
  void RegisterMetrics();

  LogIngestConfig config_;
  UniqueFd lock_;
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<LogStore> store_;
  std::unique_ptr<AdminServer> admin_;
  std::vector<std::unique_ptr<StreamInput>> inputs_;
  std::vector<std::thread> readers_;
  std::atomic<int> inputs_open_{0};
  std::atomic<bool> stopping_{false};
  Counter* frames_logs_ = nullptr;
  Counter* frames_other_ = nullptr;
  Counter* frames_malformed_ = nullptr;
  Counter* frames_acked_ = nullptr;
  Counter* records_ = nullptr;
  std::atomic<uint64_t> rate_wait_ns_{0};
  mutable std::mutex mu_;
  Status failed_;
  bool shut_down_ = false;
};

struct PlainIngestOptions {
  Labels labels;              // the stream of every line
  bool json = false;          // lines are JSON objects
  std::string time_field;     // JSON field with the timestamp; empty: auto (see docs)
  std::string message_field;  // JSON field used as the line; empty: the whole JSON line
  size_t batch_lines = 1000;  // lines per Push at most
};

struct PlainIngestStats {
  uint64_t lines_read = 0;
  uint64_t lines_accepted = 0;
  uint64_t lines_rejected = 0;  // by the store (limits), see LogStoreStats
  uint64_t duplicates = 0;
  uint64_t bad_json = 0;        // not a JSON object: stored as text, arrival time
  uint64_t bad_time = 0;        // no usable timestamp: arrival time
  uint64_t rate_wait_ns = 0;    // time held back by the ingestion rate limit
};

class PlainIngester {
 public:
  PlainIngester(LogStore* store, PlainIngestOptions options);
  // Feeds raw bytes; complete lines are stored when a batch fills.
  Status Feed(std::string_view bytes);
  // Stores the buffered lines (and a last line without newline when `eof`).
  Status Flush(bool eof = false);
  const PlainIngestStats& stats() const { return stats_; }

 private:
  void AddLine(std::string_view line);
  LogStore* store_;
  PlainIngestOptions options_;
  std::string partial_;
  std::vector<LogEntry> batch_;
  PlainIngestStats stats_;
};

// Nanoseconds since the epoch from: an integer or decimal number (seconds,
// milliseconds, microseconds or nanoseconds, told apart by magnitude) or an
// RFC 3339 time. INVALID_ARGUMENT otherwise.
Result<int64_t> ParseLogTime(std::string_view text);
// A stream selector `{name="value", name=~"re", ...}` (LogQL's, without a
// pipeline). INVALID_ARGUMENT with the position on error.
Result<std::vector<LabelMatcher>> ParseLogSelector(std::string_view text);
// "30s", "15m", "12h", "7d", "2w" in nanoseconds.
Result<int64_t> ParseLogDuration(std::string_view text);
// RFC 3339 with nanoseconds, UTC: 2024-01-02T03:04:05.000000006Z.
std::string FormatLogTime(int64_t ns);
// Lines as `TIME {labels} line` (text) or one JSON object a line (jsonl:
// {"ts":"…","stream":{…},"line":"…","metadata":{…}}), in query order.
std::string FormatLogQueryResult(const std::vector<LogStreamResult>& result, bool backward, bool jsonl);

// log-ingest's plain mode: reads `fd` until EOF or `stop` (checked at least
// every 200 ms), feeding each read() to `in` and flushing after it and
// whenever the input is idle; flushes everything at the end. The errno error
// of poll / read, or the ingester's.
Status ReadPlainStream(int fd, PlainIngester* in, const std::atomic<bool>& stop);

// log-ingest --labels: "name=value,name=value" (values may be empty or hold
// '='). INVALID_ARGUMENT "--labels: ..." for an item without a name, an
// invalid label name, repeated names or no labels.
Result<Labels> ParseLabelsFlag(const std::string& text);

}  // namespace telkit
