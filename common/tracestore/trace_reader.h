// TraceReader: reads a trace store directory from another process (or with
// the writer stopped): blocks through the catalogue (read-only SQLite
// snapshot) and live traces by replaying the WAL from the catalogue's
// wal_start, so a span is visible as soon as its Append was acknowledged.
// A read that races a block cut (wal_start moved, a file removed) is
// retried. See docs/tracestore.md, "Reading".
//
// Also the merge helpers the writer's own reads share.
//
// Thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/fs/file_system.h"
#include "common/tracestore/span_record.h"
#include "common/tracestore/trace_block.h"
#include "common/tracestore/trace_catalogue.h"

namespace telkit {

// The spans in the frames `frames` of blocks under `blocks_dir`.
Status ReadFrameSpans(FileSystem* fs, const std::string& blocks_dir, std::span<const TraceFrameRef> frames,
                      std::vector<SpanRecord>* out);
// Keeps the first span of each span id, sorted by start time then span id.
void DedupSpans(std::vector<SpanRecord>* spans);
// Summaries of the traces among `spans` with a span matching `req`.
std::vector<TraceSummary> SearchSpans(const TraceSearchRequest& req, std::span<const SpanRecord* const> spans);
// `a` and `b` merged per trace id, latest start first, at most `limit`.
std::vector<TraceSummary> MergeSummaries(std::vector<TraceSummary> a, const std::vector<TraceSummary>& b,
                                         size_t limit);

// Decoded block indexes, shared by reads, least recently used dropped past
// `max_bytes`. Blocks never change, so an entry (keyed by block id and
// creation time) never goes stale. Thread-safe.
class BlockIndexCache {
 public:
  explicit BlockIndexCache(size_t max_bytes = 64u << 20) : max_bytes_(max_bytes) {}
  // The index of `block` under `blocks_dir`, read on a miss. NOT_FOUND when
  // the file is gone (retention), DATA_LOSS when damaged.
  Result<std::shared_ptr<const TraceBlockIndex>> Get(FileSystem* fs, const std::string& blocks_dir,
                                                     const TraceBlockInfo& block);
  void Put(const TraceBlockInfo& block, std::shared_ptr<const TraceBlockIndex> index);

 private:
  using Key = std::pair<uint64_t, int64_t>;
  struct Entry {
    std::shared_ptr<const TraceBlockIndex> index;
    size_t bytes = 0;
    std::list<Key>::iterator lru;
  };
  std::mutex mu_;
  const size_t max_bytes_;
  size_t bytes_ = 0;
  std::map<Key, Entry> entries_;
  std::list<Key> lru_;  // most recent first
};

// The search conditions of a request resolved against one block's
// dictionary. Thread-compatible.
class BlockMatcher {
 public:
  BlockMatcher(const TraceSearchRequest& req, const TraceBlockIndex& index);
  // False when no span of the block can match (a wanted string is absent).
  bool possible() const { return possible_; }
  bool SpanMatches(uint32_t span) const;
  // Spans of trace `t` (an index into index.traces) that match.
  uint32_t MatchedSpans(size_t t) const;

 private:
  const TraceSearchRequest& req_;
  const TraceBlockIndex& x_;
  bool possible_ = true;
  int64_t service_ = -1, name_ = -1;
  std::vector<std::pair<uint32_t, uint32_t>> attrs_;
};

// Summaries of the block's traces with a matching span (unsorted, all).
void SearchBlockIndex(const TraceSearchRequest& req, const TraceBlockIndex& index, std::vector<TraceSummary>* out);
// Tag names (attribute keys) and values of tags ("service.name", "name",
// "kind", "status" or an indexed attribute) found in `index`.
void BlockTagNames(const TraceBlockIndex& index, std::set<std::string>* names);
void BlockTagValues(const TraceBlockIndex& index, const std::string& tag, std::set<std::string>* values);
// Values of `tag` among live spans.
void SpanTagValues(const SpanRecord& span, const std::string& tag, std::set<std::string>* values);
// The intrinsic tag names every store reports.
std::span<const std::string_view> IntrinsicTagNames();

class TraceReader {
 public:
  // NOT_FOUND when `dir` holds no catalogue.
  static Result<std::unique_ptr<TraceReader>> Open(std::string dir, FileSystem* fs = DefaultFileSystem(),
                                                   std::string catalogue_path = "");

  Result<std::vector<SpanRecord>> TraceById(const std::string& trace_id);
  Result<std::vector<TraceSummary>> Search(const TraceSearchRequest& req);
  Result<std::vector<std::string>> TagNames();
  Result<std::vector<std::string>> TagValues(const std::string& tag, size_t limit);

  // Calls `fn` with every whole trace (all its stored spans, blocks and
  // live, each span once, sorted by start time then span id) that has a
  // span starting in [start_ns, end_ns) meeting the span conditions of
  // `prefilter` (service, name, kind, status, durations, indexed
  // attributes, all on that one span; its own start_ns, end_ns and limit
  // are ignored). Each trace once: block traces by block id, then traces
  // only live. Stops early, returning OK, when `fn` returns false. Blocks
  // whose time range or dictionary rules them out are not read, and only
  // the frames of matching traces are decompressed.
  Status ForEachTrace(int64_t start_ns, int64_t end_ns, const TraceSearchRequest& prefilter,
                      const std::function<bool(std::span<const SpanRecord>)>& fn);

 private:
  TraceReader(FileSystem* fs, std::string dir, std::unique_ptr<TraceCatalogue> c)
      : fs_(fs), dir_(std::move(dir)), catalogue_(std::move(c)) {}
  // The live spans (WAL from `wal_start`), deduplicated.
  Result<std::vector<SpanRecord>> LiveSpans(uint32_t wal_start);
  // Runs `read` (which reads the catalogue snapshot and then the WAL from
  // the wal_start passed) until wal_start did not move meanwhile.
  template <typename F>
  Status Consistent(F read);

  FileSystem* const fs_;
  const std::string dir_;
  std::unique_ptr<TraceCatalogue> catalogue_;
  BlockIndexCache cache_;
};

}  // namespace telkit
