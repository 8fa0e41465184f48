// What the metrics store writes into its write-ahead log: the byte format
// of a WAL record's contents (the WAL itself, wal.h, treats records as
// opaque). The spec is docs/format/tsdb-wal.md, section "Records"; golden
// bytes in wal_records_test.cpp. Change all three together.
//
//   record = entry+                       one store Append = one WAL record
//   entry  = type:u8 | length:uvarint | body[length]
//
// Entry types (WalEntryType): series definitions, samples, exemplars, metric
// metadata, and head chunks (written only into checkpoints). A series is
// named by its ref, a number the store assigns and keeps for the life of
// the series in the head; a series entry precedes the first use of its ref
// in the log.
//
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"
#include "common/model/series.h"

namespace telkit {

enum class WalEntryType : uint8_t {
  kSeries = 1,
  kSamples = 2,
  kExemplars = 3,
  kMetadata = 4,
  kChunks = 5,
};

struct WalSeries {
  uint64_t ref = 0;
  Labels labels;
  friend bool operator==(const WalSeries&, const WalSeries&) = default;
};
struct WalSample {
  uint64_t ref = 0;
  int64_t t = 0;
  uint64_t value_bits = 0;  // the IEEE-754 bits, so NaN payloads survive
  friend bool operator==(const WalSample&, const WalSample&) = default;
};
struct WalExemplar {
  uint64_t ref = 0;
  Exemplar exemplar;
  friend bool operator==(const WalExemplar&, const WalExemplar&) = default;
};
struct WalChunk {
  uint64_t ref = 0;
  std::string chunk;  // a chunk as chunk.h encodes it
  friend bool operator==(const WalChunk&, const WalChunk&) = default;
};

// The decoded contents of one record.
struct WalBatch {
  std::vector<WalSeries> series;
  std::vector<WalSample> samples;
  std::vector<WalExemplar> exemplars;
  std::vector<MetricMetadata> metadata;
  std::vector<WalChunk> chunks;
  bool empty() const {
    return series.empty() && samples.empty() && exemplars.empty() && metadata.empty() && chunks.empty();
  }
  void clear() { *this = WalBatch(); }
};

// Appends the record for `batch` to `out`: its non-empty lists as entries
// in the order series, samples, exemplars, metadata, chunks.
void EncodeWalBatch(const WalBatch& batch, std::string* out);
// The label set encoding shared by series and exemplar entries (and the
// index's series table): count:uvarint, then name and value as
// length:uvarint + bytes, sorted by name.
void EncodeLabels(const Labels& labels, std::string* out);
Result<Labels> DecodeLabels(std::string_view in);

// Decodes a record, appending to `batch`'s lists. DATA_LOSS when it is
// malformed (truncated, trailing bytes in an entry, a bad label set),
// UNIMPLEMENTED for an entry type this version does not know.
Status DecodeWalBatch(std::string_view record, WalBatch* batch);

}  // namespace telkit
