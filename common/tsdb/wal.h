// The write-ahead log: records (opaque byte strings) appended durably to a
// directory of segment files, and read back in order after a restart.
// Format: docs/format/tsdb-wal.md (32 KiB blocks of CRC-32C checksummed
// fragments, LevelDB / Prometheus wlog style); constants in wal_format.h.
//
// Durability contract:
//   * WalWriter::Append returns OK only once its record is durable (written
//     and fsynced; WalOptions::sync). Concurrent appends share one write and
//     one fsync (group commit).
//   * After a crash, WalReader returns every record whose Append returned
//     OK, in append order, and never a corrupt record. Records whose Append
//     had not returned may or may not be there.
//   * Damage can only be at the tail of the last segment after a crash: a
//     segment is complete and synced before the next one is created, and
//     WalWriter::Open cuts a torn tail off before it starts a new segment.
//     Damage anywhere else is data loss (bit rot, a truncated copy) and is
//     reported as such.
//
// All file access goes through FileSystem, so tests can crash it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/fs/file_system.h"
#include "common/tsdb/wal_format.h"

namespace telkit {

struct WalOptions {
  // Segment files end at or before this size; a record never spans two
  // segments. A multiple of kWalBlockSize, at least one block.
  uint64_t segment_bytes = 128 << 20;
  // fsync before Append returns. Without it a record is only written to
  // the OS (it survives a process crash, not a power loss). Segments are
  // always synced before the next one is started.
  bool sync = true;
  // A commit group stops growing at this many record bytes.
  size_t max_group_bytes = 4 << 20;
};

struct WalStats {
  uint64_t records = 0;   // appended OK
  uint64_t bytes = 0;     // written, headers and padding included
  uint64_t commits = 0;   // write + fsync rounds (records / commits = group size)
  uint64_t syncs = 0;     // fsyncs of segment files
  uint64_t segments = 0;  // segments started by this writer
  uint64_t commit_sync_nanos = 0;      // total time in the fsync of commits
  uint64_t max_commit_sync_nanos = 0;  // the slowest of them
};

// Appends records. Thread-safe: any number of threads may Append at once.
class WalWriter {
 public:
  // Opens the log in `dir` (created when missing; its parent must exist)
  // for appending: repairs
  // the last segment (cuts a torn tail after its last intact record, or
  // removes it when even its header is torn) and starts a new segment after
  // it. `fs` must outlive the writer.
  // Errors: INVALID_ARGUMENT for bad options, and the file system's.
  static Result<std::unique_ptr<WalWriter>> Open(FileSystem* fs, std::string dir, WalOptions options = {});
  ~WalWriter();  // Close()

  // Appends one record (any bytes, empty too) and returns once it is
  // durable. INVALID_ARGUMENT when it cannot fit in one segment. After a
  // write or sync error every later Append fails too, with that error
  // (the tail may be torn: reopen the log, which repairs it).
  // FAILED_PRECONDITION after Close().
  Status Append(std::string_view record);

  // Waits for appends in flight, then closes the segment. Idempotent.
  Status Close();

  // Closes the segment being written (synced) and starts the next one, so
  // that every record appended so far is in segments below the returned
  // index and every later one in it or after. REQUIRES: no Append runs
  // concurrently (the caller excludes them). Errors as Append.
  Result<uint32_t> CutSegment();

  // The segment being written.
  uint32_t segment() const;
  // The largest record Append accepts.
  uint64_t max_record_bytes() const;
  WalStats stats() const;

  // Removes the segments numbered below `index` (oldest first, so what is
  // left is contiguous) once their records are stored elsewhere.
  // REQUIRES: index <= segment().
  Status RemoveSegmentsBefore(uint32_t index);

 private:
  struct Waiter;
  WalWriter(FileSystem* fs, std::string dir, WalOptions options);
  // Creates segment `index` with its header, synced, its entry synced.
  Status StartSegment(uint32_t index);
  // Writes the records of `group` (leader only, without mu_).
  Status WriteGroup(const std::vector<Waiter*>& group);
  std::string SegmentPath(uint32_t index) const { return JoinPath(dir_, WalSegmentName(index)); }

  FileSystem* const fs_;
  const std::string dir_;
  const WalOptions options_;

  mutable std::mutex mu_;
  std::condition_variable idle_;
  std::deque<Waiter*> queue_;  // front = the leader writing now
  Status failed_;              // sticky error
  bool closed_ = false;
  WalStats stats_;
  uint32_t segment_ = 0;  // readable under mu_; written by the leader under mu_

  // Leader-only state: only the writer at the front of queue_ touches it.
  std::unique_ptr<WritableFile> file_;
  uint64_t offset_ = 0;  // bytes in the current segment
  std::string buf_;
};

enum class WalCorruptionPolicy {
  // Stop at the first damage. At the tail of the last segment that is the
  // normal end after a crash and not an error; elsewhere Next() returns
  // DATA_LOSS.
  kStop,
  // Report the damage, skip to the next block and go on: salvages what is
  // intact after damage (for tools; recovery uses kStop so that it replays
  // exactly what WalWriter::Open keeps).
  kSkip,
};

struct WalReaderOptions {
  WalCorruptionPolicy on_corruption = WalCorruptionPolicy::kStop;
  // A record over this size is damage (bounds the reader's memory).
  uint64_t max_record_bytes = 128 << 20;
  // Start at this segment (0: the first one there is).
  uint32_t first_segment = 0;
};

// One damaged region.
struct WalDamage {
  uint32_t segment = 0;
  uint64_t offset = 0;         // where the damaged or incomplete record began
  uint64_t skipped_bytes = 0;  // bytes not returned from there on
  std::string reason;
  bool tail = false;            // at the end of the log (after a crash, expected)
  bool records_follow = false;  // kStop at the tail: intact records begin after it
  std::string ToString() const;
};

// Reads the log from the first segment to the end. Thread-compatible.
class WalReader {
 public:
  // Lists the segments. An empty or missing directory is an empty log.
  static Result<std::unique_ptr<WalReader>> Open(FileSystem* fs, std::string dir, WalReaderOptions options = {});

  // The next intact record, or nullopt at the end of the log. The view is
  // valid until the next call. DATA_LOSS (kStop) for damage before the
  // tail; the message names the segment and offset. Errors of the file
  // system pass through.
  Result<std::optional<std::string_view>> Next();

  // Damage seen so far: under kStop at most the torn tail, under kSkip
  // every skipped region.
  const std::vector<WalDamage>& damage() const { return damage_; }
  uint64_t records() const { return records_; }
  // The segment and offset just after the last record returned.
  uint32_t segment() const { return last_segment_; }
  uint64_t offset() const { return last_end_; }

 private:
  WalReader(FileSystem* fs, std::string dir, WalReaderOptions options, std::vector<uint32_t> segments);
  enum class Step { kFragment, kEndOfSegment, kDamage };
  Status OpenSegment(size_t i);
  // The next fragment of the current segment.
  Result<Step> NextFragment(WalFragmentType* type, std::string_view* payload, uint64_t* at, std::string* reason);
  Status LoadBlock(uint64_t block);
  // Handles damage found at `found_at` that spoils the record starting at
  // `at`; returns DATA_LOSS (kStop, not the tail) or OK (go on: `*stop`
  // says whether the log ends here).
  Status Damage(uint64_t at, uint64_t found_at, std::string reason, bool* stop);
  // Whether an intact fragment that begins a record lies in a block after
  // the one holding `offset`.
  bool RecordsStartAfter(uint64_t offset);

  FileSystem* const fs_;
  const std::string dir_;
  const WalReaderOptions options_;
  std::vector<uint32_t> segments_;
  size_t current_ = 0;  // index into segments_
  bool segment_open_ = false;
  bool done_ = false;
  std::unique_ptr<ReadableFile> file_;
  uint64_t file_size_ = 0;
  uint64_t block_start_ = 0;  // file offset of block_
  std::string block_;         // the current block's bytes (shorter at the end)
  uint64_t pos_ = 0;          // file offset of the next fragment
  std::string record_;        // fragments of the record being assembled
  bool in_record_ = false;
  uint64_t record_start_ = 0;
  bool resyncing_ = false;  // kSkip: dropping fragments until FULL or FIRST
  std::vector<WalDamage> damage_;
  uint64_t records_ = 0;
  uint32_t last_segment_ = 0;
  uint64_t last_end_ = 0;
};

// The segment indexes in `dir`, ascending (other files are ignored). An
// absent directory has none.
Result<std::vector<uint32_t>> ListWalSegments(FileSystem* fs, std::string_view dir);

}  // namespace telkit
