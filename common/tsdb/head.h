// The head: the in-memory part of the metrics store — every series that
// has recent samples, found by labels (hash map) or ref, with in-memory
// postings (label name -> value -> refs), and its samples in compressed
// chunks (chunk.h): closed chunks as bytes, plus one open ChunkAppender.
// Chunks are cut at kHeadChunkSamples samples and at multiples of the
// block range, so a block's range never splits a chunk of in-order data.
//
// Not thread-safe: MetricsStore guards it with its mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"
#include "common/model/matcher.h"
#include "common/model/series.h"
#include "common/tsdb/chunk.h"

namespace telkit {

inline constexpr uint32_t kHeadChunkSamples = 480;

struct HeadChunk {
  int64_t mint = 0;
  int64_t maxt = 0;
  std::string bytes;
};

struct MemSeries {
  // What Append's checks touch first, together in the first cache lines.
  std::string key;    // EncodeLabels(labels): what lookups compare
  uint64_t hash = 0;  // HeadKeyHash(key)
  // What Append has accepted, including samples not yet applied (their WAL
  // record is being written): later samples are checked against this.
  int64_t pending_t = INT64_MIN;
  uint64_t pending_bits = 0;
  bool durable = false;  // its series entry is in the log
  uint64_t ref = 0;
  int64_t last_t = INT64_MIN;  // newest sample in chunks/open
  uint64_t last_bits = 0;
  ChunkAppender open;             // the newest samples
  int64_t open_range_end = 0;     // the open chunk is cut before a sample at or after this
  std::vector<HeadChunk> chunks;  // closed, in time order, not overlapping
  Labels labels;
  size_t num_samples() const;
};

enum class InsertResult { kInserted, kDuplicate, kConflict };

// The in-memory hash of a series key (not persisted; Labels::Hash is the
// stable one).
uint64_t HeadKeyHash(std::string_view key);

class Head {
 public:
  explicit Head(int64_t block_range_ms) : block_range_(block_range_ms) {}

  MemSeries* Find(const Labels& labels) const;
  // `key` = EncodeLabels(labels), `hash` = HeadKeyHash(key).
  MemSeries* Find(std::string_view key, uint64_t hash) const;
  // Cache hints for a Find(key, hash) soon: the slot, then the series.
  void PrefetchSlot(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & (slots_.size() - 1)]);
  }
  void PrefetchSeries(uint64_t hash) const {
    if (slots_.empty()) return;
    const Slot& slot = slots_[hash & (slots_.size() - 1)];
    if (slot.s) __builtin_prefetch(slot.s);
  }
  // REQUIRES: PrefetchSeries(hash) a while ago (this reads the series).
  void PrefetchKey(uint64_t hash) const {
    if (slots_.empty()) return;
    const Slot& slot = slots_[hash & (slots_.size() - 1)];
    if (slot.s && slot.hash == hash) {
      const char* k = slot.s->key.data();
      __builtin_prefetch(k);
      __builtin_prefetch(k + 64);
    }
  }
  MemSeries* FindRef(uint64_t ref) const;
  // Creates a series with `ref`. REQUIRES: neither labels nor ref exist.
  MemSeries* Create(uint64_t ref, Labels labels);
  size_t num_series() const { return by_ref_.size(); }
  size_t series_of_metric(std::string_view metric) const;

  // Stores one sample: appended when newer than the series' newest,
  // otherwise inserted in place (out of order). kDuplicate when the same
  // (t, value bits) is there (nothing changes), kConflict when t is there
  // with another value (nothing changes).
  Result<InsertResult> Insert(MemSeries* s, int64_t t, uint64_t bits);
  // The value at t, if any (decodes a chunk).
  bool Lookup(const MemSeries* s, int64_t t, uint64_t* bits) const;
  // Adds a whole chunk (replay of a checkpoint). REQUIRES: its samples are
  // newer than the series' newest.
  Status AddChunk(MemSeries* s, std::string_view chunk);

  // Samples of `s` in [mint, maxt].
  Result<std::vector<Sample>> Samples(const MemSeries* s, int64_t mint, int64_t maxt) const;
  // Every chunk of `s` (closed and open) as bytes.
  std::vector<std::string> ChunkBytes(const MemSeries* s) const;
  // Series matching every matcher, sorted by labels.
  std::vector<MemSeries*> Match(std::span<const LabelMatcher> matchers) const;
  std::vector<MemSeries*> All() const;

  // Drops every sample before `t`, then series with no samples left and
  // nothing in flight (pending_t < t). Returns the series removed.
  Result<size_t> TruncateBefore(int64_t t);

  // Oldest and newest sample time in the head (INT64_MAX/INT64_MIN when empty).
  int64_t mint() const { return mint_; }
  int64_t maxt() const { return maxt_; }
  uint64_t num_chunks() const;
  size_t chunk_bytes() const;

 private:
  void Cut(MemSeries* s);
  void PutSlot(MemSeries* s);
  void RebuildSlots();
  void AddPostings(const MemSeries* s);
  // The end of the block range holding t.
  int64_t RangeEnd(int64_t t) const;

  int64_t block_range_;
  std::unordered_map<uint64_t, std::unique_ptr<MemSeries>> by_ref_;
  // Open addressing, linear probing, a power of two at most half full.
  struct Slot {
    uint64_t hash = 0;
    MemSeries* s = nullptr;
  };
  std::vector<Slot> slots_;
  std::unordered_map<std::string, std::unordered_map<std::string, std::vector<uint64_t>>> postings_;
  std::unordered_map<std::string, size_t> per_metric_;
  int64_t mint_ = INT64_MAX;
  int64_t maxt_ = INT64_MIN;
};

// Helpers shared by head and blocks: a sorted merge of sample runs that
// keeps the first of equal timestamps.
std::vector<Sample> MergeSamples(std::vector<Sample> a, std::vector<Sample> b);

}  // namespace telkit
