// Trace blocks: the files holding cut traces, one zstd frame per trace and
// one index frame of search columns. Format byte by byte:
// docs/format/tracestore-block.md.
//
//   file   = magic "TKTRBLK2" (8 bytes) frame* index_frame footer
//   frame  = u32le compressed_len | u32le crc32c(compressed) | u32le raw_len |
//            zstd(compressed_len bytes)
//   raw    = (u32le span_len | ResourceSpans bytes){n}
//   footer = u64le index_offset | u64le index_length | "TKTRFTR2"
//
// The catalogue (trace_catalogue.h) records each trace's frame offset and
// length, so a trace is read with one pread and one decompression; search
// reads the index frame (TraceBlockIndex: a string dictionary, a trace table
// and per-span columns) and never the span frames of traces that do not match.
//
// Thread-safe: pure functions; TraceBlockIndexBuilder is thread-compatible.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/base/status.h"
#include "common/fs/file_system.h"
#include "common/tracestore/span_record.h"

namespace telkit {

inline constexpr std::string_view kTraceBlockMagic = "TKTRBLK2";
inline constexpr std::string_view kTraceBlockFooterMagic = "TKTRFTR2";
inline constexpr size_t kTraceBlockFooterBytes = 24;
inline constexpr size_t kTraceIndexTraceBytes = 64;  // one trace table entry
inline constexpr size_t kTraceFrameHeaderBytes = 12;
// A frame's raw payload may not exceed this (bounds a reader's memory).
inline constexpr uint32_t kMaxTraceFrameRawBytes = 256u << 20;

// "B00000042.tblk"
std::string TraceBlockFileName(uint64_t block);

// One frame (header included) holding `spans` (their otlp bytes).
std::string EncodeTraceFrame(std::span<const SpanRecord* const> spans, int zstd_level = 3);
// The same frame appended to *out (no allocation per frame once the
// thread's scratch buffer has grown); returns the frame's length.
size_t AppendTraceFrame(std::span<const SpanRecord* const> spans, int zstd_level, std::string* out);

// The span payloads (serialized ResourceSpans) of one frame. DATA_LOSS when
// the frame is short, fails its checksum or does not decompress.
Result<std::vector<std::string>> DecodeTraceFrame(std::string_view frame);

// Reads and decodes the frame at [offset, offset+length) of a block file.
Result<std::vector<std::string>> ReadTraceFrame(FileSystem* fs, const std::string& path, uint64_t offset,
                                                uint64_t length);

// One trace of a block's index.
struct BlockTrace {
  std::string trace_id;  // 16 bytes
  uint64_t offset = 0;   // of its frame in the block file
  uint32_t length = 0;   // of its frame, header included
  uint32_t first_span = 0;  // its spans are columns [first_span, first_span + spans)
  uint32_t spans = 0;
  uint32_t root_service = 0;  // string ids (0 = "": no root span in this block)
  uint32_t root_name = 0;
  int64_t start_ns = 0;  // earliest span start
  int64_t end_ns = 0;    // latest span end
};

// The dictionary of an index: strings in one buffer (no allocation per
// string; a block may hold tens of thousands of distinct URL paths).
class StringTable {
 public:
  size_t size() const { return end_.size(); }
  bool empty() const { return end_.empty(); }
  std::string_view operator[](size_t i) const {
    size_t begin = i == 0 ? 0 : end_[i - 1];
    return std::string_view(blob_).substr(begin, end_[i] - begin);
  }
  void push_back(std::string_view s) {
    blob_.append(s);
    end_.push_back(static_cast<uint32_t>(blob_.size()));
  }
  void reserve(size_t n, size_t bytes) {
    end_.reserve(n);
    blob_.reserve(bytes);
  }
  size_t MemoryBytes() const { return blob_.capacity() + end_.capacity() * 4; }
  bool operator==(const StringTable&) const = default;

 private:
  std::string blob_;
  std::vector<uint32_t> end_;  // string i is blob_[end_[i-1], end_[i])
};

// The decoded index frame of a block: everything search needs.
struct TraceBlockIndex {
  StringTable strings;  // the dictionary; strings[0] == ""
  std::vector<BlockTrace> traces;    // sorted by trace id
  // Span columns, one entry per span, the spans of a trace together.
  std::vector<uint32_t> service;  // string id of resource service.name
  std::vector<uint32_t> name;     // string id of the span name
  std::vector<uint8_t> kind;      // Span.SpanKind
  std::vector<uint8_t> status;    // Status.StatusCode
  std::vector<int64_t> start_ns;
  std::vector<uint64_t> duration_ns;
  // The indexed attributes of span i are attrs[attr_end[i-1] .. attr_end[i])
  // (attr_end[-1] = 0), each a (key, value) pair of string ids.
  std::vector<uint32_t> attr_end;
  std::vector<std::pair<uint32_t, uint32_t>> attrs;

  // The id of `s` in the dictionary, or -1 when the block does not hold it.
  int64_t FindString(std::string_view s) const;
  // Approximate heap bytes (for caches).
  size_t MemoryBytes() const;
};

// Builds the index frame while a block is written. The dictionary refers
// to the strings of the spans added: they must outlive the builder.
class TraceBlockIndexBuilder {
 public:
  // Adds one trace: its frame's place in the file and its spans (sorted as
  // in the frame).
  void AddTrace(std::string_view trace_id, uint64_t offset, uint32_t length,
                std::span<const SpanRecord* const> spans);
  // The index frame (same frame layout as a trace frame).
  std::string Finish(int zstd_level) const;
  // The same frame appended to *out; returns its length.
  size_t FinishTo(int zstd_level, std::string* out) const;
  const TraceBlockIndex& index() const { return index_; }
  // Moves the index out (after Finish); the builder is empty afterwards.
  TraceBlockIndex TakeIndex();

 private:
  uint32_t Intern(std::string_view s);
  void Grow();
  TraceBlockIndex index_;
  // The dictionary's hash table: open addressing, linear probing; a slot
  // holds string id + 1 (0 = empty) and the low 32 bits of its hash.
  std::vector<std::pair<uint32_t, uint32_t>> slots_;
};

// The footer naming the index frame's place.
std::string EncodeTraceBlockFooter(uint64_t index_offset, uint64_t index_length);
// DATA_LOSS when `footer` is not kTraceBlockFooterBytes ending in the magic.
Status DecodeTraceBlockFooter(std::string_view footer, uint64_t* index_offset, uint64_t* index_length);

// The index frame's payload before compression, and back (golden tests).
std::string EncodeTraceBlockIndexRaw(const TraceBlockIndex& index);
Result<TraceBlockIndex> DecodeTraceBlockIndexRaw(std::string_view raw);

// Decodes an index frame. DATA_LOSS on any inconsistency (short, bad
// checksum, ids out of range, columns that disagree on the span count).
Result<TraceBlockIndex> DecodeTraceBlockIndex(std::string_view frame);
// Reads the index of the block file at `path` (its footer first when
// `length` is 0).
Result<TraceBlockIndex> ReadTraceBlockIndex(FileSystem* fs, const std::string& path, uint64_t offset = 0,
                                            uint64_t length = 0);

}  // namespace telkit
