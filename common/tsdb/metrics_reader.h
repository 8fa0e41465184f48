// How a process other than the tsdb-write daemon reads a metrics store
// directory (tel-query, `tsdb-write query`, tests): one Querier that sees
// every acknowledged sample. docs/tsdb.md explains the rule:
//
//   daemon running  (DIR/head.sock answers): the head over the query socket
//                   (QuerySocketClient) merged with the read-only blocks
//                   (BlockQuerier); the head is listed first and so asked
//                   first, so a block cut between the two reads is seen in
//                   the blocks: nothing falls between head and blocks.
//   daemon stopped  (no socket, DIR/lock free): the store itself, opened
//                   with the lock held (WAL replayed into a head in this
//                   process, no background work) and closed with the
//                   reader: a stopped daemon has not flushed its head, so
//                   blocks alone would miss the last samples.
//   lock held, no socket: another writer (an import, a daemon replaying its
//                   WAL): UNAVAILABLE, with the holder's pid; retry.
//
// DIR/lock is the writer lock (flock, exclusive): the daemon, `tsdb-write
// import` and a reader of a stopped store hold it; it contains the holder's
// pid and, for the daemon, its admin address (docs/tsdb.md).
//
// Thread-safety: the returned Querier is thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/base/fd.h"
#include "common/base/status.h"
#include "common/fs/file_system.h"
#include "common/model/series.h"
#include "common/tsdb/query_socket.h"

namespace telkit {

inline constexpr char kStoreLockFile[] = "lock";
inline constexpr char kHeadSocketFile[] = "head.sock";

// What DIR/lock says about its holder.
struct StoreLockInfo {
  int pid = 0;
  std::string admin;  // "host:port" of the daemon's admin endpoint, "" if none
};

// Takes DIR/lock (creating DIR and the file) without waiting and writes
// `info` into it. FAILED_PRECONDITION naming the holder's pid when another
// process holds it. The lock lasts as long as the returned descriptor.
Result<UniqueFd> LockStoreDir(const std::string& dir, const StoreLockInfo& info);
// Updates what the held lock file says (the admin port once bound).
Status UpdateStoreLock(int lock_fd, const StoreLockInfo& info);
// Reads DIR/lock. NOT_FOUND when there is none; `held` says whether a
// process holds it now.
Result<StoreLockInfo> ReadStoreLock(const std::string& dir, bool* held);

class MetricsReader : public Querier {
 public:
  enum class Mode { kDaemon, kStoppedStore };
  ~MetricsReader() override;
  Mode mode() const { return mode_; }
  // kStoppedStore: lets DIR/lock go while keeping what was read (the store
  // is opened read-only, so the reader writes nothing to DIR). The reader
  // then answers from that snapshot: its head is the WAL as it was at open
  // time, and a writer that starts afterwards may change the store under
  // it, so the caller re-checks freshness (tel-query serve: StoreState).
  void ReleaseStoreLock() { lock_.reset(); }

  Result<std::vector<SeriesSamples>> Select(int64_t mint, int64_t maxt, std::span<const LabelMatcher> matchers) override;
  Result<std::vector<std::string>> LabelNames(int64_t mint, int64_t maxt,
                                              std::span<const LabelMatcher> matchers) override;
  Result<std::vector<std::string>> LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                               std::span<const LabelMatcher> matchers) override;
  Result<std::vector<MetricMetadata>> Metadata(std::string_view family) override;
  // Exemplars of the matching series in [mint, maxt], series sorted by
  // labels, exemplars by time: the daemon's head (over its socket), or the
  // stopped store's (replayed from its WAL).
  Result<std::vector<SeriesExemplars>> Exemplars(int64_t mint, int64_t maxt, std::span<const LabelMatcher> matchers);

 private:
  friend Result<std::unique_ptr<MetricsReader>> OpenMetricsReader(FileSystem*, const std::string&,
                                                                   QuerySocketClientOptions);
  MetricsReader() = default;
  Mode mode_ = Mode::kDaemon;
  UniqueFd lock_;                   // kStoppedStore
  std::unique_ptr<Querier> store_;  // kStoppedStore: the MetricsStore
  std::unique_ptr<Querier> head_;   // kDaemon: QuerySocketClient
  std::unique_ptr<Querier> blocks_; // kDaemon: BlockQuerier
  std::unique_ptr<Querier> merged_; // kDaemon: MergeQuerier(head, blocks)
  Querier* q_ = nullptr;
};

// What a reader can cheaply observe of a store directory to tell whether a
// reader opened earlier still sees it as it is: the head socket, the
// writer lock, and the identity, size and modification time of index.db,
// its SQLite WAL and the WAL directory and its newest segment. Equal
// states: nothing was written in between (every writer creates a WAL
// segment when it opens and commits blocks through index.db).
struct StoreState {
  bool socket = false;       // DIR/head.sock exists (a daemon serves it)
  uint64_t socket_ino = 0;
  bool lock_held = false;    // another process holds DIR/lock now
  std::vector<int64_t> files;  // (ino, size, mtime ns) of the files above
  bool operator==(const StoreState&) const = default;
};
StoreState ObserveStore(const std::string& dir);

// Opens the reader for the store in `dir` as the file comment says.
// NOT_FOUND when `dir` holds no store; UNAVAILABLE when another writer holds
// the lock and serves no head; errors of opening the blocks or the store.
Result<std::unique_ptr<MetricsReader>> OpenMetricsReader(FileSystem* fs, const std::string& dir,
                                                         QuerySocketClientOptions client = {});

}  // namespace telkit
