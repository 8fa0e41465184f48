// Immutable blocks: the samples of a time range [mint, maxt) of many
// series, written once, read by offset. The format is
// docs/format/tsdb-block.md; change both together. Golden bytes in
// block_test.cpp.
//
//   blocks/ID/chunks     header, then CRC-32C checksummed records:
//                        timestamp columns (stored once per block however
//                        many series share them) and series chunks (a
//                        value column and a reference to a timestamp column)
//   blocks/ID/meta.json  what the block holds (informational; the SQLite
//                        index is the catalogue)
//
// Which series and chunks a block holds is in the SQLite index (index.h).
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/base/status.h"
#include "common/fs/file_system.h"
#include "common/model/labels.h"
#include "common/model/series.h"

namespace telkit {

inline constexpr std::array<uint8_t, 8> kBlockChunksMagic = {0x89, 'T', 'K', 'C', 'H', 'K', '\r', '\n'};
inline constexpr uint16_t kBlockVersion = 1;
inline constexpr size_t kBlockHeaderSize = 16;
enum class BlockRecordType : uint8_t { kTimestamps = 1, kChunk = 2 };
// A record's length field is bounded (a chunk is at most 65535 samples).
inline constexpr uint64_t kMaxBlockRecordBytes = 16 << 20;

struct ChunkRef {
  int64_t mint = 0;
  int64_t maxt = 0;  // inclusive: the last sample's time
  uint64_t offset = 0;
  uint32_t length = 0;
  uint32_t samples = 0;
};

struct BlockMeta {
  uint64_t id = 0;
  int64_t mint = 0;  // inclusive
  int64_t maxt = 0;  // exclusive
  int level = 1;     // 1: cut from the head; n+1: merged from level-n blocks
  uint64_t series = 0;
  uint64_t samples = 0;
  uint64_t chunks = 0;
  uint64_t timestamp_columns = 0;  // distinct, stored once each
  uint64_t bytes = 0;              // of the chunks file
};

// "0000000000000001": the block directory name, 16 hex digits.
std::string BlockDirName(uint64_t id);
bool ParseBlockDirName(std::string_view name, uint64_t* id);

// Builds a block's chunks file in memory. Add series in any order; each
// series' samples (sorted, unique t) are encoded into as few chunks as
// possible (one unless over kMaxChunkSamples).
class BlockBuilder {
 public:
  BlockBuilder();
  // Returns the chunk references of the series. INVALID_ARGUMENT for
  // unsorted samples.
  Result<std::vector<ChunkRef>> AddSeries(std::span<const Sample> samples);
  const std::string& bytes() const { return out_; }
  uint64_t chunks() const { return chunks_; }
  uint64_t timestamp_columns() const { return ts_columns_.size(); }
  uint64_t samples() const { return samples_; }

 private:
  uint64_t AddRecord(BlockRecordType type, std::string_view payload);
  std::string out_;
  std::unordered_map<std::string, uint64_t> ts_columns_;  // encoding+count+column -> offset
  uint64_t chunks_ = 0;
  uint64_t samples_ = 0;
};

// Writes `builder`'s file and meta as blocks_dir/NAME crash-safely: into
// NAME.tmp, synced, renamed, blocks_dir synced.
Status WriteBlockDir(FileSystem* fs, const std::string& blocks_dir, BlockMeta* meta, const BlockBuilder& builder);

// Rebuilds a chunk (chunk.h format) from the chunk record at `offset` of a
// chunks file, following its timestamp reference. DATA_LOSS on a bad CRC,
// a bad reference or a malformed record.
Result<std::string> ReadBlockChunk(const ReadableFile& file, uint64_t offset, uint32_t length);

// Open chunk files of the blocks, by id, and (when cache_bytes > 0) the
// most recently read chunks decoded: blocks are immutable, so a decoded
// chunk stays valid as long as its block exists, and queries that come back
// to the same series (dashboards, instant queries that need the last
// minutes of a chunk) skip reading and decoding it. The cache is bounded by
// cache_bytes (16 bytes a sample), least recently used out first. Readers
// enable it (tel-query); the writer keeps it off. Thread-safe.
class BlockSet {
 public:
  BlockSet(FileSystem* fs, std::string blocks_dir, size_t cache_bytes = 0)
      : fs_(fs), dir_(std::move(blocks_dir)), cache_capacity_(cache_bytes) {}
  Result<std::string> ReadChunk(uint64_t block_id, const ChunkRef& ref);
  // The samples of a chunk, sorted by time (blocks hold sorted samples),
  // decoded or from the cache. DATA_LOSS as ReadChunk and the decoder.
  Result<std::shared_ptr<const std::vector<Sample>>> ReadSamples(uint64_t block_id, const ChunkRef& ref);
  void Forget(uint64_t block_id);
  const std::string& dir() const { return dir_; }
  size_t cached_bytes() const;

 private:
  struct CacheKey {
    uint64_t block;
    uint64_t offset;
    bool operator==(const CacheKey&) const = default;
  };
  struct CacheKeyHash {
    size_t operator()(const CacheKey& k) const { return std::hash<uint64_t>()(k.block * 0x9E3779B97F4A7C15ull ^ k.offset); }
  };
  struct CacheEntry {
    CacheKey key;
    std::shared_ptr<const std::vector<Sample>> samples;
  };

  FileSystem* fs_;
  std::string dir_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<ReadableFile>> files_;
  const size_t cache_capacity_;
  size_t cache_bytes_ = 0;
  std::list<CacheEntry> lru_;  // most recent first
  std::unordered_map<CacheKey, std::list<CacheEntry>::iterator, CacheKeyHash> cache_;
};

}  // namespace telkit
