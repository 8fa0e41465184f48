// Log chunks: the immutable, compressed unit of the log store. A chunk holds
// the lines of one stream, sorted by (timestamp, line), in blocks of about
// ChunkOptions::block_bytes raw bytes, each compressed on its own (zstd).
// Byte layout: docs/format/logstore-chunk.md.
//
// A decompressed block keeps timestamps, line ends and metadata ends in
// fixed-width arrays and all line texts in one contiguous region, so a
// substring filter runs over the text region with memmem and maps hits back
// to lines by binary search: no allocation per line (the scan hot path).
//
// Value types and free functions; thread-compatible.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"

namespace telkit {

// One log line: timestamp (ns since the epoch), text, structured metadata
// (name/value pairs in the order given: trace_id, span_id, attributes).
struct LogEntry {
  int64_t ts = 0;
  std::string line;
  std::vector<Label> metadata;
  friend bool operator==(const LogEntry&, const LogEntry&) = default;
};

// Raw bytes an entry costs in a block (what chunk and limit sizes count).
size_t LogEntryRawBytes(const LogEntry& e);

enum class ChunkCompression : uint8_t { kNone = 0, kZstd = 1 };

struct ChunkOptions {
  size_t block_bytes = 256 << 10;  // raw bytes per block (a block holds at least one line)
  ChunkCompression compression = ChunkCompression::kZstd;
  int zstd_level = 1;  // measured: bench/logs/README.md
};

// Encodes `entries` (REQUIRES: non-empty, sorted by ts) as one chunk.
Result<std::string> EncodeChunk(std::span<const LogEntry> entries, const ChunkOptions& options = {});

// Chunk versions (docs/format/logstore-chunk.md): 1 stores fixed-width
// arrays in each raw block, 2 (written now) varints; readers take both.
inline constexpr uint8_t kChunkVersion1 = 1;
inline constexpr uint8_t kChunkVersion2 = 2;

struct ChunkBlockRef {
  uint8_t version = kChunkVersion1;  // of the chunk: the raw block layout
  uint32_t offset = 0;  // of the compressed bytes, in the chunk
  uint32_t compressed_len = 0;
  uint32_t raw_len = 0;
  uint32_t lines = 0;
  int64_t mint = 0, maxt = 0;
  uint32_t crc = 0;
};

struct ParsedChunk {
  uint8_t version = kChunkVersion2;
  ChunkCompression compression = ChunkCompression::kNone;
  int64_t mint = 0, maxt = 0;
  uint32_t lines = 0;
  std::vector<ChunkBlockRef> blocks;
};

// Checks the header, the block table and the trailing checksum.
// DATA_LOSS for anything malformed.
Result<ParsedChunk> ParseChunk(std::string_view chunk);

// A decompressed block: views into a caller-owned buffer.
class BlockView {
 public:
  // Decompresses block `ref` of `chunk` into `*buf` (reused across calls;
  // version 2 blocks also expand their varint columns there, so the views
  // below work alike for both versions) and checks its layout. DATA_LOSS
  // when damaged. Uses a per-thread zstd context.
  static Result<BlockView> Decode(std::string_view chunk, ChunkCompression compression, const ChunkBlockRef& ref,
                                  std::string* buf);
  size_t size() const { return n_; }
  int64_t ts(size_t i) const;
  std::string_view line(size_t i) const;
  // The raw metadata bytes of line i (see DecodeMetadata).
  std::string_view metadata_bytes(size_t i) const;
  // The contiguous region of all line texts.
  std::string_view text() const { return text_; }
  uint32_t line_end(size_t i) const;
  uint32_t line_start(size_t i) const { return i == 0 ? 0 : line_end(i - 1); }
  // The index of the line holding text offset `pos` (REQUIRES: < text().size()).
  size_t LineAt(uint32_t pos) const;

 private:
  size_t n_ = 0;
  const char* ts_ = nullptr;
  const char* line_ends_ = nullptr;
  const char* meta_ends_ = nullptr;
  std::string_view text_, meta_;
};

// Appends the metadata pairs encoded in `bytes` to `*out`. DATA_LOSS when malformed.
Status DecodeMetadata(std::string_view bytes, std::vector<Label>* out);

// Calls fn(i) for every line of `block` that contains `needle` (all lines
// for an empty needle), in ascending order; stops when fn returns false.
// Scans the text region with memmem: no allocation.
template <typename Fn>
void ForEachLineContaining(const BlockView& block, std::string_view needle, Fn&& fn);

// Lines of a block matching every needle, as a bitmap-free ascending list
// written into `*out` (reused). The fast path of LogQL's |= filters.
void MatchLines(const BlockView& block, std::span<const std::string> needles, std::vector<uint32_t>* out);

}  // namespace telkit

#include "common/logstore/log_chunk_inl.h"
