// LogStore: telkit's log storage engine (docs/logstore.md). Writers Push
// log lines in streams (a stream = a small set of index labels); readers
// Select streams by matchers and a time range and iterate lines forward or
// backward with a limit and substring filters.
//
//   DIR/wal/            write-ahead log (common/tsdb/wal.h) of push records:
//                       docs/format/logstore-wal.md
//   DIR/chunks/ID.tklc  immutable compressed chunks: docs/format/logstore-chunk.md
//   DIR/index.db        SQLite (WAL journal mode): streams, label postings,
//                       chunk time ranges: docs/format/logstore-index.md
//
// Push is durable when it returns OK (WAL fsynced; concurrent pushes share
// one fsync). Each stream has one open chunk in memory (the head); it is cut
// (sorted, compressed, written, indexed) when it reaches chunk_target_bytes
// raw bytes or max_chunk_age, or on Flush/Close. Lines may come in any order
// within a stream. An exact duplicate (same stream, timestamp and line) of
// a line in the stream's open chunk is dropped and counted; readers drop
// duplicates across chunks too. Refused lines are counted per reason:
//   line_too_long, too_many_labels, invalid_labels, stream_limit,
//   rate_limited, too_old (before the retention horizon)
// and lines with invalid UTF-8 are stored with U+FFFD (counted as
// invalid_utf8_replaced).
//
// Other processes read a live store with LogReader: the index, the chunks
// and the WAL (which holds every acknowledged line not yet in a chunk), so
// a line is readable elsewhere as soon as Push returns.
//
// Thread-safe. `fs` must outlive the store. SQLite does its own file
// access: the index is DIR/index.db when `fs` is DefaultFileSystem(), else
// LogStoreOptions::index_path (tests with FaultInjectingFileSystem).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/base/status.h"
#include "common/fs/file_system.h"
#include "common/logstore/log_chunk.h"
#include "common/model/labels.h"
#include "common/model/matcher.h"
#include "common/tsdb/wal.h"

namespace telkit {

class LogIndex;
struct LogHead;

struct LogLimits {
  size_t max_line_bytes = 256 << 10;   // line text; longer lines are refused
  size_t max_labels_per_stream = 15;   // Loki's default
  size_t max_streams = 100000;         // 0 = no limit
  double rate_bytes_per_sec = 0;       // 0 = no limit (token bucket over raw bytes)
  double burst_bytes = 0;              // bucket size (0: one second of rate)
  LabelLimits labels;
};

struct LogStoreOptions {
  size_t chunk_target_bytes = 1 << 20;               // raw bytes that cut a chunk
  int64_t max_chunk_age_ns = int64_t{3600} * 1'000'000'000;  // wall time an open chunk may stay open
  ChunkOptions chunk;                                 // block size, zstd level
  int64_t retention_ns = int64_t{7} * 24 * 3600 * 1'000'000'000;  // 0 = off; chunks wholly older than newest - this are deleted
  uint64_t retention_bytes = 0;                       // 0 = off; oldest chunks deleted while over
  uint64_t wal_checkpoint_bytes = 64 << 20;           // WAL bytes that trigger flush-all + WAL truncation
  LogLimits limits;
  WalOptions wal;
  bool background = true;  // a thread cuts due chunks, checkpoints, applies retention
  int64_t background_interval_ms = 1000;
  std::string index_path;  // see above
};

// Lines for one stream.
struct LogPush {
  Labels stream;
  std::vector<LogEntry> entries;
};

struct LogPushResult {
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t streams_created = 0;
  std::map<std::string, uint64_t> rejected;  // reason -> lines
  uint64_t rejected_total() const {
    uint64_t n = 0;
    for (const auto& [k, v] : rejected) n += v;
    return n;
  }
};

struct LogStoreStats {
  uint64_t lines_appended = 0, bytes_appended = 0, duplicates = 0, streams_created = 0;
  std::map<std::string, uint64_t> rejected;
  uint64_t invalid_utf8_replaced = 0;
  uint64_t head_streams = 0, head_lines = 0, head_bytes = 0;
  uint64_t chunks_written = 0, chunk_raw_bytes_written = 0, chunk_bytes_written = 0;
  uint64_t chunks = 0, chunk_bytes = 0;  // on disk now
  uint64_t retention_deleted_chunks = 0, retention_deleted_bytes = 0;
  uint64_t checkpoints = 0, replayed_records = 0, replayed_lines = 0;
  uint64_t wal_bytes = 0, wal_commits = 0;
  uint64_t push_calls = 0, push_nanos = 0;
  uint64_t maintenance_failures = 0;  // background passes that failed (retried next pass)
};

// A query for the read API (the stopgap `log-ingest query` and LogQL).
struct LogQuery {
  std::vector<LabelMatcher> matchers;               // stream selector
  int64_t start_ns = INT64_MIN, end_ns = INT64_MAX;  // [start, end)
  size_t limit = 100;                               // lines over all streams; 0 = all
  bool backward = false;                            // newest first
  std::vector<std::string> contains;                // line must contain each (the fast path)
  std::function<bool(std::string_view line)> line_filter;  // optional further filter
};

struct LogStreamResult {
  Labels stream;
  std::vector<LogEntry> entries;  // in query direction
};

// Readers of a store: LogStore itself (head + chunks) and LogReader.
class LogQuerier {
 public:
  virtual ~LogQuerier() = default;
  // The `limit` first lines (in direction) matching the query, grouped by
  // stream (streams sorted by labels). Exact duplicates appear once.
  virtual Result<std::vector<LogStreamResult>> Select(const LogQuery& query) = 0;
  // Labels of the streams matching `matchers` that have lines in [start, end).
  virtual Result<std::vector<Labels>> Streams(std::span<const LabelMatcher> matchers, int64_t start_ns,
                                              int64_t end_ns) = 0;
};

class LogStore : public LogQuerier {
 public:
  // Opens (creating) the store in `dir`, removes chunk files the index does
  // not know (an interrupted cut or retention), replays the WAL into the
  // head. DATA_LOSS for damage before the WAL's tail.
  static Result<std::unique_ptr<LogStore>> Open(FileSystem* fs, std::string dir, LogStoreOptions options = {});
  ~LogStore() override;

  // Stores what it can; refused lines are counted per reason in the result.
  // OK means the accepted lines are durable. A non-OK status is a store
  // failure (after which every Push fails); FAILED_PRECONDITION after Close.
  Result<LogPushResult> Push(std::span<const LogPush> pushes);
  // With an ingestion rate limit: how long until the token bucket holds
  // min(bytes, burst) raw bytes, so that a caller can wait (backpressure)
  // instead of having Push refuse lines as rate_limited. 0 when it does now
  // or without a limit. Raw bytes as LogEntryRawBytes counts them.
  int64_t RateLimitWaitNanos(uint64_t bytes) const;

  // Cuts every open chunk now (writes, indexes) and truncates the WAL.
  Status Flush();
  // One background pass now: due chunks, checkpoint, retention.
  Status Maintain();
  LogStoreStats stats() const;
  // Stops the background thread, flushes the head, closes the WAL. Idempotent.
  Status Close();

  Result<std::vector<LogStreamResult>> Select(const LogQuery& query) override;
  Result<std::vector<Labels>> Streams(std::span<const LabelMatcher> matchers, int64_t start_ns,
                                      int64_t end_ns) override;

 private:
  LogStore(FileSystem* fs, std::string dir, LogStoreOptions options);
  Status Init();
  // Cuts the open chunks that are due (all of them when `all`).
  // REQUIRES: gate_ held exclusively, maintain_mu_ held.
  Status CutLocked(bool all);
  Status Checkpoint();
  Status ApplyRetention();
  Status CheckOpen() const;
  void BackgroundLoop();

  FileSystem* const fs_;
  const std::string dir_;
  const LogStoreOptions options_;

  // Pushes hold gate_ shared from their sequence number to the head insert;
  // cuts hold it exclusively, so a cut sees every line of every sequence
  // number handed out.
  std::shared_mutex gate_;
  mutable std::mutex mu_;  // head_, stats_, rate bucket
  std::unique_ptr<LogHead> head_;
  LogStoreStats stats_;
  Status failed_;
  double tokens_ = 0;
  int64_t tokens_at_ns_ = 0;
  std::atomic<uint64_t> next_seq_{1};
  uint64_t wal_bytes_at_checkpoint_ = 0;
  int64_t newest_ts_ = INT64_MIN;                    // newest line timestamp seen (retention horizon)
  std::unordered_set<std::string> known_streams_;    // keys of streams in the index or head
  std::string last_maintenance_error_;
  int64_t next_chunk_id_ = 1;                        // under maintain_mu_

  std::unique_ptr<WalWriter> wal_;
  std::mutex index_mu_;
  std::unique_ptr<LogIndex> index_;
  std::mutex maintain_mu_;

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stopping_ = false;
  bool cut_wanted_ = false;
  std::thread bg_;
  bool closed_ = false;
};

// A read-only view of a store from another process (or of a stopped one):
// the index read-only, the chunks, and the WAL replayed at each Select, so
// it sees every acknowledged line. Thread-safe.
class LogReader : public LogQuerier {
 public:
  static Result<std::unique_ptr<LogReader>> Open(FileSystem* fs, std::string dir);
  ~LogReader() override;
  Result<std::vector<LogStreamResult>> Select(const LogQuery& query) override;
  Result<std::vector<Labels>> Streams(std::span<const LabelMatcher> matchers, int64_t start_ns,
                                      int64_t end_ns) override;

 private:
  LogReader(FileSystem* fs, std::string dir);
  Status Refresh();  // re-reads the WAL into head_
  FileSystem* const fs_;
  const std::string dir_;
  std::mutex mu_;
  std::unique_ptr<LogIndex> index_;
  std::unique_ptr<LogHead> head_;
};

}  // namespace telkit
