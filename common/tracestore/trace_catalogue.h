// TraceCatalogue: the trace store's SQLite catalogue (DIR/catalogue.db): the
// block list (with each block's time range and index frame), the trace-id
// index (block, frame offset and length per trace) and the WAL position
// blocks cover. The search columns live in the blocks' index frames
// (trace_block.h), not here. Schema: docs/format/tracestore-catalogue.md.
// WAL journal mode with synchronous=FULL: a committed transaction is durable
// and read-only readers in other processes see consistent snapshots.
//
// Thread-compatible: callers serialise access.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "common/sqlite/sqlite_db.h"
#include "common/tracestore/span_record.h"

namespace telkit {

inline constexpr int kTraceCatalogueSchemaVersion = 2;

struct TraceBlockInfo {
  uint64_t id = 0;
  int64_t min_start_ns = 0;  // earliest span start
  int64_t max_end_ns = 0;    // latest span end
  int64_t created_ns = 0;    // wall clock when cut
  uint64_t bytes = 0;        // file size
  uint64_t traces = 0;
  uint64_t spans = 0;
  uint64_t index_offset = 0;  // the block's index frame
  uint64_t index_length = 0;
};

// One trace's frame in a block.
struct TraceFrameRef {
  uint64_t block = 0;
  std::string trace_id;
  uint64_t offset = 0;
  uint64_t length = 0;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  uint32_t spans = 0;
};

// Search conditions, all of which must hold for one span of a trace (the
// attribute conditions: for some span of the trace).
struct TraceSearchRequest {
  int64_t start_ns = 0;  // span start in [start_ns, end_ns)
  int64_t end_ns = std::numeric_limits<int64_t>::max();
  std::string service;  // "" = any
  std::string name;     // "" = any
  uint64_t min_duration_ns = 0;
  uint64_t max_duration_ns = 0;  // 0 = no bound
  int kind = -1;                 // -1 = any
  int status = -1;               // -1 = any
  std::vector<std::pair<std::string, std::string>> attributes;  // key = value (indexed attributes)
  size_t limit = 20;
};

struct TraceSummary {
  std::string trace_id;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  std::string root_service;
  std::string root_name;
  uint32_t spans = 0;    // spans stored for the trace
  uint32_t matched = 0;  // spans that matched
};

// Whether `span` meets the span conditions of `req` (attributes included:
// the span's own indexed attributes).
bool SpanMatches(const TraceSearchRequest& req, const SpanRecord& span);

class TraceCatalogue {
 public:
  // read_only: no schema creation, NOT_FOUND when missing.
  static Result<std::unique_ptr<TraceCatalogue>> Open(const std::string& path, bool read_only);
  ~TraceCatalogue();

  Status Begin();      // write transaction
  Status BeginRead();  // consistent read snapshot
  Status Commit();
  Status Rollback();

  // Records before this WAL segment are all in blocks.
  Result<uint32_t> WalStart();
  Status SetWalStart(uint32_t segment);
  // Other integer settings in the meta table ("max_attribute_bytes").
  Result<int64_t> Meta(const std::string& key, int64_t absent);
  Status SetMeta(const std::string& key, int64_t value);

  // Adds a block and its traces' frames (the trace-id index).
  Status AddBlock(const TraceBlockInfo& block, std::span<const TraceFrameRef> frames);
  Status RemoveBlock(uint64_t block);
  Result<std::vector<TraceBlockInfo>> Blocks();  // by id

  // The blocks holding a span that may start in [start_ns, end_ns), by id.
  Result<std::vector<TraceBlockInfo>> BlocksOverlapping(int64_t start_ns, int64_t end_ns);

  Result<std::vector<TraceFrameRef>> FindTrace(const std::string& trace_id);

 private:
  TraceCatalogue() = default;
  std::unique_ptr<SqliteDb> db_;
};

}  // namespace telkit
