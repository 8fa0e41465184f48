// LogIndex: the log store's SQLite index (DIR/index.db): streams, label
// postings and chunk time ranges. Schema: docs/format/logstore-index.md.
// WAL journal mode, synchronous=FULL: a committed transaction is durable and
// readers in other processes (read-only) see consistent states.
// Thread-compatible: callers serialise access.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"
#include "common/sqlite/sqlite_db.h"

namespace telkit {

inline constexpr int kLogIndexSchemaVersion = 1;

// The stream key: name \0 value \0 ... of the sorted labels (unique per stream).
std::string LogStreamKey(const Labels& labels);
Result<Labels> LabelsFromLogStreamKey(std::string_view key);

class LogIndex {
 public:
  // `path` empty: in memory. read_only: NOT_FOUND when missing.
  static Result<std::unique_ptr<LogIndex>> Open(const std::string& path, bool read_only);
  ~LogIndex();

  Status Begin();
  Status BeginRead();
  Status Commit();
  Status Rollback();

  struct StreamRow {
    int64_t id = 0;
    Labels labels;
  };
  // The id of the stream, inserted with its postings when new.
  Result<int64_t> StreamId(const Labels& labels);
  Result<std::vector<StreamRow>> Streams();

  struct ChunkRow {
    int64_t id = 0;
    int64_t stream = 0;
    int64_t mint = 0, maxt = 0;
    uint64_t lines = 0, raw_bytes = 0, bytes = 0;
    uint64_t max_seq = 0;  // every line of the stream with a WAL sequence <= this is in chunks
  };
  Status AddChunk(const ChunkRow& row);
  Status RemoveChunk(int64_t id);
  // Chunks of `stream` overlapping [mint, maxt], by mint.
  Result<std::vector<ChunkRow>> Chunks(int64_t stream, int64_t mint, int64_t maxt);
  // Every chunk, by maxt (oldest first).
  Result<std::vector<ChunkRow>> AllChunks();
  // Stream id -> the largest max_seq of any chunk it ever had (kept when
  // retention deletes the chunks).
  Result<std::map<int64_t, uint64_t>> FlushedSeqs();

 private:
  LogIndex() = default;
  std::unique_ptr<SqliteDb> db_;
};

}  // namespace telkit
