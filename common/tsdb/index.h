// TsdbIndex: the metrics store's SQLite index (DIR/index.db), the catalogue
// of what is in blocks: series (id, labels), label postings, chunk
// references per block, the block list, and metric metadata. Schema and
// rules: docs/format/tsdb-block.md, "Index". Opened in WAL journal mode with
// synchronous=FULL, so a committed transaction is durable and readers in
// other processes (read-only) see a consistent state while the writer runs.
//
// Thread-compatible: callers serialise access (the store and BlockQuerier
// hold a mutex around it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"
#include "common/model/matcher.h"
#include "common/model/series.h"
#include "common/sqlite/sqlite_db.h"
#include "common/tsdb/block.h"

namespace telkit {

inline constexpr int kIndexSchemaVersion = 1;

class TsdbIndex {
 public:
  // `path` empty: an in-memory index. read_only: no schema creation, no
  // writes (NOT_FOUND when the file is missing).
  static Result<std::unique_ptr<TsdbIndex>> Open(const std::string& path, bool read_only);
  ~TsdbIndex();

  Status Begin();      // a write transaction
  Status BeginRead();  // a read transaction (a consistent view)
  Status Commit();
  Status Rollback();

  // The id of the series `labels`, inserted (with its postings) when new.
  Result<int64_t> SeriesId(const Labels& labels);
  Status AddBlock(const BlockMeta& meta);
  // `block` is the block's meta (chunk times are stored relative to its mint).
  Status AddChunk(const BlockMeta& block, int64_t series, const ChunkRef& ref);
  // Removes a block and its chunk references (and series left without chunks).
  Status RemoveBlock(uint64_t block);
  Result<std::vector<BlockMeta>> Blocks();  // by mint

  struct SeriesRow {
    int64_t id = 0;
    Labels labels;
  };
  // Series whose labels match all `matchers` (all series when empty),
  // sorted by labels.
  Result<std::vector<SeriesRow>> MatchSeries(std::span<const LabelMatcher> matchers);
  struct ChunkRow {
    uint64_t block = 0;
    ChunkRef ref;
  };
  // Chunk references of `series` overlapping [mint, maxt], by time.
  Result<std::vector<ChunkRow>> Chunks(int64_t series, int64_t mint, int64_t maxt);
  // The same within `blocks` (BlocksOverlapping(mint, maxt), fetched once
  // for many series).
  Result<std::vector<ChunkRow>> Chunks(int64_t series, const std::vector<BlockMeta>& blocks, int64_t mint,
                                       int64_t maxt);
  Result<std::vector<BlockMeta>> BlocksOverlapping(int64_t mint, int64_t maxt);
  // Chunk references of one block, by series.
  Result<std::vector<std::pair<int64_t, ChunkRef>>> BlockChunks(uint64_t block);
  Result<Labels> SeriesLabels(int64_t series);

  Status PutMetadata(const MetricMetadata& m);
  Result<std::vector<MetricMetadata>> Metadata(std::string_view family);

  // VACUUM INTO `path`: a consistent copy.
  Status CopyTo(const std::string& path);

 private:
  TsdbIndex() = default;
  // Loads label pairs added since the last call (another process may add them).
  Status RefreshPairs();
  // The pair ids of `labels` (false when one is unknown); `create` adds them.
  Result<bool> PairIds(const Labels& labels, bool create, std::string* encoded);
  Result<Labels> DecodePairs(std::string_view encoded);
  Result<std::vector<int64_t>> PostingsOf(int64_t pair);
  Status FlushPostings();
  Status RebuildPostings();

  // A read-only index (a reader in another process) keeps what cannot
  // change while the block list stays the same: the labels of series ids
  // and each block's chunk references (blocks are immutable; series rows
  // are added and removed only with blocks). Blocks() drops both when the
  // list of blocks changes.
  bool cache_ = false;
  std::vector<std::pair<uint64_t, uint64_t>> cached_blocks_;  // (id, bytes) of the last Blocks()
  std::unordered_map<int64_t, Labels> labels_cache_;
  std::unordered_map<uint64_t, std::unordered_map<int64_t, std::vector<ChunkRef>>> chunks_cache_;
  Status LoadBlockChunks(const BlockMeta& block, std::unordered_map<int64_t, std::vector<ChunkRef>>* out);

  std::unique_ptr<SqliteDb> db_;
  // The label_pairs table in memory: (name, value) <-> id.
  std::map<std::pair<std::string, std::string>, int64_t> pair_ids_;
  std::map<int64_t, std::pair<std::string, std::string>> pairs_;
  int64_t max_pair_ = 0;
  // Series ids to append to each pair's postings at Commit().
  std::map<int64_t, std::vector<int64_t>> pending_postings_;
};

}  // namespace telkit
