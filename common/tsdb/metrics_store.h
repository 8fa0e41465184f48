// MetricsStore: telkit's metrics storage engine. Writers Append time series
// (the OTLP / remote-write translation, tsdb-write); queries read through
// the Querier interface over the head and the blocks.
//
//   DIR/wal/          write-ahead log (wal.h) of records (wal_records.h)
//                     and checkpoints: docs/format/tsdb-wal.md
//   DIR/blocks/ID/    immutable blocks: docs/format/tsdb-block.md
//   DIR/index.db      SQLite (WAL journal mode): series, label postings,
//                     chunk references, block catalogue, metric metadata
//
// Append is durable when it returns OK (WAL fsynced; concurrent appends
// share one fsync). Samples must come in time order per series except
// within the out-of-order window; what is refused is counted per reason:
//   out_of_order          older than the series' newest sample, beyond the window
//   out_of_bounds         older than the newest block (already persisted;
//                         taken with MetricsStoreOptions::backfill)
//   too_far_in_future     beyond wall clock + max_future_ms
//   duplicate             same timestamp and value bits: ignored (not an error)
//   duplicate_timestamp   same timestamp, another value
//   series_limit, series_per_metric_limit   cardinality limits
//   LabelProblemName(...) invalid labels (missing_metric_name, ...)
//   invalid_exemplar      exemplar with invalid labels
// Stale markers (kStaleNaNBits) and every other value are stored bit-exact.
//
// When the head spans more than 1.5 block ranges its oldest range becomes a
// block and the WAL is truncated (checkpoint); a background thread does this
// and compaction (adjacent blocks merged into 3x ranges up to retention/10)
// and retention (by time and by size, oldest blocks first).
//
// Thread-safe. `fs` must outlive the store. The SQLite index lives on the
// real file system (SQLite does its own file access): at DIR/index.db when
// `fs` is DefaultFileSystem(), otherwise at MetricsStoreOptions::index_path
// (tests with FaultInjectingFileSystem; empty = an in-memory index).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/base/status.h"
#include "common/fs/file_system.h"
#include "common/model/labels.h"
#include "common/model/series.h"
#include "common/tsdb/wal.h"

namespace telkit {

class Head;
class TsdbIndex;
class BlockSet;
class BlockBuilder;
struct BlockMeta;
struct MemSeries;
struct SeriesExemplars;

inline constexpr int64_t kDefaultRetentionMs = int64_t{15} * 24 * 3600 * 1000;
inline constexpr int64_t kDefaultBlockRangeMs = int64_t{2} * 3600 * 1000;
// Decoded block chunks a reader keeps (BlockSet): a read-only store and
// BlockQuerier. 64 MiB = 4 M samples.
inline constexpr size_t kReaderChunkCacheBytes = size_t{64} << 20;

struct MetricsStoreOptions {
  int64_t retention_ms = kDefaultRetentionMs;  // blocks wholly older than newest - retention are removed
  uint64_t retention_bytes = 0;                // 0: off; else oldest blocks removed while over
  int64_t block_range_ms = kDefaultBlockRangeMs;
  int64_t out_of_order_window_ms = 0;
  // Samples more than this ahead of the wall clock are refused
  // (too_far_in_future): one bogus timestamp would otherwise make the head
  // span years and push every real sample out of bounds. 0 = no limit.
  int64_t max_future_ms = int64_t{3600} * 1000;
  size_t max_series = 0;             // 0 = no limit (head series)
  size_t max_series_per_metric = 0;  // 0 = no limit
  size_t max_exemplars = 100000;     // exemplars kept in memory (a ring)
  // Backfill (tsdb-write import): samples older than the newest block are
  // taken instead of refused as out_of_bounds; they become blocks of their
  // own at the next cut or flush, and compaction merges blocks that
  // overlap. Use with an out-of-order window that covers the data.
  bool backfill = false;
  LabelLimits label_limits;
  WalOptions wal;
  // Background thread: cuts blocks, compacts, applies retention.
  bool background = true;
  int64_t background_interval_ms = 1000;
  // Where the SQLite index lives when `fs` is not DefaultFileSystem() (see above).
  std::string index_path;
  // A reader's view (tel-query over a stopped store): replays the WAL into
  // the head and reads blocks, but writes nothing to `dir` (no new WAL
  // segment, no leftover cleanup, the index opened read-only, no
  // background thread); Append, FlushHead, Compact and Snapshot fail with
  // FAILED_PRECONDITION. The store must exist.
  bool read_only = false;
};

struct AppendResult {
  uint64_t samples_appended = 0;
  uint64_t exemplars_appended = 0;
  uint64_t series_created = 0;
  std::map<std::string, uint64_t> rejected;  // reason -> samples (or exemplars)
  // AppendRefs: indexes of the series given without labels whose ref_hint
  // names no head series (the head dropped them, e.g. after FlushHead):
  // nothing of them was appended; append them again with their labels.
  std::vector<size_t> unknown_refs;
  uint64_t rejected_total() const {
    uint64_t n = 0;
    for (const auto& [k, v] : rejected) n += v;
    return n;
  }
};

// One series to append by reference (MetricsStore::AppendRefs): what the
// wire-level appenders hand the store so that a known series costs a hash
// lookup by ref instead of encoding and comparing its labels.
struct SeriesRefAppend {
  // The series' labels (sorted, as a Labels). Read only when `ref_hint`
  // does not name a head series; outlives the call. May be null when
  // `ref_hint` is set (the caller keeps no labels of known series): if the
  // hint is stale the series is skipped and listed in
  // AppendResult::unknown_refs. REQUIRES: non-null when ref_hint is 0.
  const Labels* labels = nullptr;
  // A ref AppendRefs reported for these labels earlier (refs_out), or 0.
  // Refs are never reused, so a stale hint only costs the label lookup.
  uint64_t ref_hint = 0;
  std::span<const Sample> samples;
  std::span<const Exemplar> exemplars;
};

struct MetricsStoreStats {
  uint64_t head_series = 0;
  uint64_t head_chunks = 0;
  uint64_t head_chunk_bytes = 0;
  int64_t head_mint = 0, head_maxt = 0;
  uint64_t samples_appended = 0;
  uint64_t exemplars_appended = 0;
  uint64_t series_created = 0;
  uint64_t series_removed = 0;
  std::map<std::string, uint64_t> rejected;
  uint64_t wal_bytes = 0;
  uint64_t wal_records = 0;
  uint64_t wal_commits = 0;
  uint64_t wal_syncs = 0;
  uint64_t wal_fsync_nanos = 0;      // total fsync time of commits
  uint64_t wal_fsync_max_nanos = 0;  // the slowest commit fsync
  uint64_t wal_truncations = 0;
  uint64_t append_calls = 0;
  uint64_t append_nanos = 0;  // total time in Append (WAL fsync included)
  uint64_t max_append_nanos = 0;
  uint64_t replayed_records = 0;
  uint64_t replayed_samples = 0;
  uint64_t blocks = 0;
  uint64_t block_bytes = 0;
  uint64_t blocks_written = 0;
  uint64_t compactions = 0;
  uint64_t overlapping_compactions = 0;  // of them, merges of blocks that overlapped
  uint64_t compaction_failures = 0;
  uint64_t retention_removed_blocks = 0;
  int64_t min_valid_time = 0;  // samples before this are out_of_bounds
};

// A shared mutex that does not starve exclusive lockers: once one waits,
// new shared lockers wait behind it (pthread rwlocks prefer readers, and a
// steady stream of appends would keep blocks from ever being cut).
class WriterPreferringMutex {
 public:
  void lock();
  void unlock();
  void lock_shared();
  void unlock_shared();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int readers_ = 0;
  int writers_waiting_ = 0;
  bool writer_ = false;
};

class MetricsStore : public Querier {
 public:
  // Opens (creating) the store in `dir`, cleans leftovers of an interrupted
  // block write, and replays the checkpoint and WAL into the head.
  // INVALID_ARGUMENT for bad options; DATA_LOSS for damage before the WAL's
  // tail or in a block; errors of the file system and SQLite.
  static Result<std::unique_ptr<MetricsStore>> Open(FileSystem* fs, std::string dir, MetricsStoreOptions options = {});
  ~MetricsStore() override;

  // Stores what it can of `series` and `metadata`; bad items are refused
  // per item with a reason (AppendResult::rejected), the rest stored and
  // durable when this returns OK. INVALID_ARGUMENT (nothing stored) when
  // the call is too large for one WAL record (WalOptions::segment_bytes).
  // Any other error is a store failure (WAL write or fsync, after which
  // every Append fails until reopened); FAILED_PRECONDITION after Close().
  Result<AppendResult> Append(std::span<const TimeSeries> series, std::span<const MetricMetadata> metadata = {});
  // Append by reference, as above. `refs_out` (empty, or one slot per
  // series) receives the head ref of each series, 0 when it was refused
  // before it had one (invalid labels, cardinality limits).
  Result<AppendResult> AppendRefs(std::span<const SeriesRefAppend> series,
                                  std::span<const MetricMetadata> metadata = {}, std::span<uint64_t> refs_out = {});

  // Writes all head data out as blocks (one per block range it spans) and
  // empties the head (the WAL keeps only a checkpoint of live series).
  Status FlushHead();
  // One pass now: blocks from the head when due, compaction, retention.
  Status Compact();
  // A consistent copy of the persisted store (blocks and index; the head is
  // flushed first) in `dir`, which must not exist.
  Status Snapshot(const std::string& dir);
  MetricsStoreStats stats() const;
  // Stops the background thread and closes the WAL. Idempotent.
  Status Close();

  // Querier over head and blocks.
  Result<std::vector<SeriesSamples>> Select(int64_t mint, int64_t maxt, std::span<const LabelMatcher> matchers) override;
  Result<std::vector<std::string>> LabelNames(int64_t mint, int64_t maxt,
                                              std::span<const LabelMatcher> matchers) override;
  Result<std::vector<std::string>> LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                               std::span<const LabelMatcher> matchers) override;
  // Metric metadata (for /api/v1/metadata): of `family`, or all when empty;
  // the head's (newest) entry wins over the index's.
  Result<std::vector<MetricMetadata>> Metadata(std::string_view family = {}) override;
  // The newest exemplars of series matching `matchers` in [mint, maxt].
  Result<std::vector<std::pair<Labels, Exemplar>>> Exemplars(int64_t mint, int64_t maxt,
                                                             std::span<const LabelMatcher> matchers);
  // The same, one entry a series (what the head socket serves).
  Result<std::vector<SeriesExemplars>> SeriesExemplarLists(int64_t mint, int64_t maxt,
                                                           std::span<const LabelMatcher> matchers);

 private:
  MetricsStore(FileSystem* fs, std::string dir, MetricsStoreOptions options);
  Status Init();
  Status InitReadOnly();
  Status Replay();
  Status ApplyBatch(struct WalBatch& batch, bool from_checkpoint);
  void AddExemplar(uint64_t ref, Exemplar e);  // REQUIRES: mu_ held
  // Writes a block dir, then one index transaction: add_chunks, the block,
  // the metadata, removal of `replaces`; then removes their files.
  Status CommitBlock(BlockMeta* meta, const BlockBuilder& builder,
                     const std::function<Status(TsdbIndex*, const BlockMeta&)>& add_chunks,
                     const std::vector<uint64_t>& replaces);
  Status RemoveBlockFiles(uint64_t id);
  Status MergeBlocks(const std::vector<BlockMeta>& group, int64_t mint, int64_t maxt);
  Status HeadLabelSets(int64_t mint, int64_t maxt, std::span<const LabelMatcher> matchers, std::set<Labels>* out);
  // Writes head data in [mint, maxt) as a block, then truncates the head and WAL.
  Status PersistRange(int64_t mint, int64_t maxt);
  Status CutBlocksIfDue();
  Status Checkpoint();
  Status CompactBlocks();
  Status ApplyRetention();
  void BackgroundLoop();
  Status CheckOpen() const;

  FileSystem* const fs_;
  const std::string dir_;
  const MetricsStoreOptions options_;

  // Appends hold append_gate_ shared for their whole duration; cutting a
  // block or a checkpoint takes it exclusively so that no accepted sample is
  // between its check and the head.
  WriterPreferringMutex append_gate_;
  mutable std::mutex mu_;  // head_, stats_, metadata_, exemplars_, min_valid_time_
  std::unique_ptr<Head> head_;
  uint64_t next_ref_ = 1;
  int64_t min_valid_time_ = INT64_MIN;
  std::map<std::string, MetricMetadata> metadata_;
  std::unordered_map<uint64_t, MemSeries*> replay_alias_;  // during Open only
  std::vector<std::pair<uint64_t, Exemplar>> exemplars_;  // ring
  size_t exemplar_next_ = 0;
  MetricsStoreStats stats_;
  Status failed_;

  std::unique_ptr<WalWriter> wal_;
  std::mutex persist_mu_;  // one block write / compaction at a time
  std::mutex index_mu_;    // index_, next_block_id_, block files
  uint64_t next_block_id_ = 1;
  std::unique_ptr<TsdbIndex> index_;
  std::unique_ptr<BlockSet> blocks_;

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stopping_ = false;
  std::thread bg_;
  bool closed_ = false;
};

// A read-only view of a store's blocks from another process (tel-query):
// the SQLite index opened read-only and the block files; no head. Sees
// blocks committed before each call. Thread-safe.
class BlockQuerier : public Querier {
 public:
  static Result<std::unique_ptr<BlockQuerier>> Open(FileSystem* fs, std::string dir);
  ~BlockQuerier() override;
  Result<std::vector<SeriesSamples>> Select(int64_t mint, int64_t maxt, std::span<const LabelMatcher> matchers) override;
  Result<std::vector<std::string>> LabelNames(int64_t mint, int64_t maxt,
                                              std::span<const LabelMatcher> matchers) override;
  Result<std::vector<std::string>> LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                               std::span<const LabelMatcher> matchers) override;
  Result<std::vector<MetricMetadata>> Metadata(std::string_view family = {}) override;

 private:
  BlockQuerier() = default;
  std::mutex mu_;
  std::unique_ptr<TsdbIndex> index_;
  std::unique_ptr<BlockSet> blocks_;
};

}  // namespace telkit
