// TraceStore: the trace store (Tempo's ingester + storage), one writer per
// directory. Layout and rules: docs/tracestore.md; formats:
// docs/format/tracestore-{wal,block,catalogue}.md.
//
//   DIR/wal/          WAL (common/tsdb/wal.h) of ExportTraceServiceRequest bytes
//   DIR/blocks/       B00000001.tblk ... (trace_block.h), one zstd frame per
//                     trace, then an index frame of search columns
//   DIR/catalogue.db  SQLite (WAL journal mode): blocks, trace-id index,
//                     wal_start (trace_catalogue.h)
//
// Ingest: Append() validates a request, logs it in the WAL (group commit)
// and returns once it is durable; then its spans join the live traces in
// memory: a span already live (same trace id and span id) is dropped as a
// duplicate, and limits (spans per trace, bytes per trace, attribute size)
// refuse or cut what exceeds them, counted in stats().
//
// Cutting: CutIdle() (called periodically by the owner) writes every trace
// with no new span for `idle_ns` into a new block, records it in the
// catalogue together with the WAL segment from which replay must start, and
// removes older WAL segments. Traces still live are first re-logged in that
// new segment (a checkpoint), so the WAL only ever holds what is not in a
// block. Crash safety: a block counts once its catalogue transaction commits;
// a crash before leaves an orphan file (removed at Open) and the old WAL
// segments (replayed; duplicates of re-logged spans are dropped).
//
// Reads: TraceById / Search / TagNames / TagValues cover blocks and live
// traces. Other processes read through TraceReader (trace_reader.h).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/base/status.h"
#include "common/fs/file_system.h"
#include "common/tracestore/span_record.h"
#include "common/tracestore/trace_catalogue.h"
#include "common/tracestore/trace_reader.h"
#include "common/tsdb/wal.h"

namespace telkit {

struct TraceStoreOptions {
  WalOptions wal;
  // The catalogue's path: "" = DIR/catalogue.db (needs the real file system,
  // SQLite does its own I/O). Tests with FaultInjectingFileSystem set it.
  std::string catalogue_path;
  int64_t idle_ns = 10'000'000'000;                // cut a trace after this long without spans
  int64_t retention_ns = 48LL * 3600 * 1'000'000'000;  // remove blocks whose spans all ended earlier
  uint64_t max_block_bytes = 0;                    // remove oldest blocks beyond this total (0: no bound)
  uint32_t max_spans_per_trace = 100'000;          // 0: no bound
  uint64_t max_trace_bytes = 50ull << 20;          // OTLP bytes of one live trace (0: no bound)
  SpanLimits span_limits;
  int zstd_level = 3;
  // Wall clock in Unix nanoseconds (tests replace it).
  std::function<int64_t()> clock;
  // Called with every span accepted by Append (not for duplicates, refused
  // spans or WAL replay), under the store's lock: keep it short and do not
  // call the store from it. The span metrics generator hangs here.
  std::function<void(const SpanRecord&)> on_span;
};

struct TraceStoreStats {
  uint64_t requests = 0;
  uint64_t requests_invalid = 0;  // did not parse: refused, not logged
  uint64_t spans_received = 0;
  uint64_t spans_stored = 0;       // accepted into live traces
  uint64_t spans_duplicate = 0;    // same trace id + span id already live
  uint64_t spans_invalid = 0;      // bad trace or span id
  uint64_t spans_refused_trace_spans = 0;  // over max_spans_per_trace
  uint64_t spans_refused_trace_bytes = 0;  // over max_trace_bytes
  uint64_t attributes_truncated = 0;
  uint64_t live_traces = 0;
  uint64_t live_spans = 0;
  uint64_t traces_cut = 0;
  uint64_t spans_cut = 0;
  uint64_t blocks_written = 0;
  uint64_t blocks_removed = 0;  // by retention
  uint64_t blocks = 0;
  uint64_t block_bytes = 0;
  uint64_t cut_errors = 0;
  WalStats wal;
};

class TraceStore {
 public:
  // Opens (creating) the store in `dir` and replays the WAL. `fs` must
  // outlive the store.
  static Result<std::unique_ptr<TraceStore>> Open(FileSystem* fs, std::string dir, TraceStoreOptions options = {});
  ~TraceStore();  // Close()

  // Stores a serialized ExportTraceServiceRequest; OK once it is durable.
  // INVALID_ARGUMENT when it does not parse (nothing is stored).
  Status Append(std::string_view request);

  // Cuts the traces idle for options.idle_ns into a block, then applies
  // retention. Returns the number of traces cut.
  Result<size_t> CutIdle();
  // Cuts every live trace (drain before exit; optional: the WAL keeps them).
  Result<size_t> CutAll();
  Status ApplyRetention();
  // Closes the WAL. Live traces stay in it for the next Open. Idempotent.
  Status Close();

  // Every stored span of a trace (blocks and live), each once, by start
  // time. An empty vector when the trace is unknown.
  Result<std::vector<SpanRecord>> TraceById(const std::string& trace_id);
  Result<std::vector<TraceSummary>> Search(const TraceSearchRequest& req);
  Result<std::vector<std::string>> TagNames();
  Result<std::vector<std::string>> TagValues(const std::string& tag, size_t limit);

  TraceStoreStats stats() const;
  const std::string& dir() const { return dir_; }

 private:
  struct LiveTrace {
    std::vector<SpanRecord> spans;
    // Span ids (8 bytes as an integer) for dedup, kept only past
    // kLinearSpans spans: below, a scan of `spans` is cheaper than a set.
    std::unordered_set<uint64_t> ids;
    static constexpr size_t kLinearSpans = 32;
    bool Has(const std::string& span_id) const;
    void Add(SpanRecord r);
    uint64_t bytes = 0;
    int64_t last_ns = 0;
  };
  TraceStore(FileSystem* fs, std::string dir, TraceStoreOptions options);
  Status Recover();
  void ApplyLocked(std::vector<SpanRecord>* spans, int64_t now);
  Result<size_t> Cut(bool all);
  // Writes and commits a block (no WAL segment removal).
  Status WriteBlock(uint64_t id, const std::vector<std::pair<std::string, LiveTrace>>& traces, uint32_t wal_start);
  int64_t Now() const { return options_.clock(); }
  Result<std::vector<TraceBlockInfo>> AllBlocks();

  FileSystem* const fs_;
  const std::string dir_;
  TraceStoreOptions options_;
  std::unique_ptr<WalWriter> wal_;

  std::shared_mutex append_mu_;  // shared: Append; exclusive: the WAL cut of Cut()
  std::mutex cut_mu_;            // one Cut / retention at a time
  mutable std::mutex live_mu_;   // live_, cutting_, stats_
  std::unordered_map<std::string, LiveTrace> live_;
  std::vector<std::pair<std::string, LiveTrace>> cutting_;  // being written to a block
  TraceStoreStats stats_;
  std::mutex cat_mu_;  // catalogue_
  std::unique_ptr<TraceCatalogue> catalogue_;
  BlockIndexCache cache_;  // decoded block indexes (thread-safe)
  uint64_t next_block_ = 1;
  bool closed_ = false;
  bool replaying_ = false;  // under live_mu_
};

}  // namespace telkit
