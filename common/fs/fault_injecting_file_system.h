// FaultInjectingFileSystem: an in-memory FileSystem for tests that models
// what survives a crash, and injects faults.
//
// It keeps, for every file, the bytes appended so far and how many of them
// were synced, and for every directory its current entries and the entries
// as of its last SyncDir(). SimulateCrash() turns the file system into what
// a machine would find after losing power:
//   * kDropUnsynced  - every unsynced byte is gone, and every directory
//                      holds only the entries it had at its last SyncDir()
//                      (an unsynced new file vanishes; an unsynced rename is
//                      undone; an unsynced removal is undone);
//   * kTornUnsynced  - each file keeps its synced bytes plus a random prefix
//                      of the unsynced ones (a torn write), and each
//                      directory with unsynced changes keeps either all or
//                      none of them (seeded, reproducible);
//   * kZeroUnsynced  - files keep their size but unsynced bytes read back as
//                      zeros (delayed allocation); directories as for
//                      kDropUnsynced.
// A crash also takes the file system "down": every call fails with
// UNAVAILABLE until Restart() (the reboot), and every handle opened before
// the crash keeps failing after it, so a process that is still running in
// the test cannot write into the "rebooted" state.
//
// Why in memory rather than wrapping the real file system (as LevelDB's
// FaultInjectionTestEnv does): undoing a rename that replaced a synced file
// needs that file's old bytes, and crash-at-every-operation loops run
// thousands of crashes per test.
//
// Simplification: Truncate() and the truncation done by NewWritableFile()
// on an existing file count as durable at once (the synced size shrinks with
// the file); only bytes appended afterwards are unsynced.
//
// Faults besides crashes:
//   * CrashAtOp(n): the n-th mutating call from now (create, append, sync,
//     rename, remove, truncate, directory create/remove/sync) crashes the
//     file system instead of running;
//   * SetSpaceLimit(n): after n more appended bytes, Append() writes what
//     fits and fails with RESOURCE_EXHAUSTED (ENOSPC);
//   * SetFaultHook(f): f runs before every call and fails it with the
//     Status it returns (without effect) when that is not OK.
//
// Thread-safe. Handles must not outlive the file system. The fault hook runs
// without the file system's lock held and may call into it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/fs/file_system.h"

namespace telkit {

enum class FsOp {
  kNewWritableFile,
  kNewAppendableFile,
  kNewReadableFile,
  kAppend,
  kSync,
  kClose,
  kRead,
  kCreateDir,
  kRemoveDir,
  kSyncDir,
  kListDir,
  kRemoveFile,
  kRename,
  kTruncate,
  kSyncFile,
  kStat,
};
std::string_view FsOpName(FsOp op);

enum class CrashMode { kDropUnsynced, kTornUnsynced, kZeroUnsynced };

class FaultInjectingFileSystem : public FileSystem {
 public:
  FaultInjectingFileSystem();
  ~FaultInjectingFileSystem() override;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(std::string_view path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(std::string_view path) override;
  Result<std::unique_ptr<ReadableFile>> NewReadableFile(std::string_view path) override;
  Status CreateDir(std::string_view path) override;
  Status RemoveDir(std::string_view path) override;
  Status SyncDir(std::string_view path) override;
  Result<std::vector<std::string>> ListDir(std::string_view path) override;
  Status RemoveFile(std::string_view path) override;
  Status Rename(std::string_view from, std::string_view to) override;
  Status Truncate(std::string_view path, uint64_t size) override;
  Status SyncFile(std::string_view path) override;
  Result<FileInfo> Stat(std::string_view path) override;

  // Loses power now (see the file comment); `seed` drives kTornUnsynced.
  void SimulateCrash(CrashMode mode = CrashMode::kDropUnsynced, uint64_t seed = 0);
  // Reboots after a crash: calls work again (handles from before stay dead).
  void Restart();
  // Crashes, with `mode`, when the `n`-th mutating call from now (n >= 1) is
  // attempted; that call fails with UNAVAILABLE and has no effect.
  void CrashAtOp(uint64_t n, CrashMode mode = CrashMode::kDropUnsynced, uint64_t seed = 0);
  // Whether the file system is down (crashed and not restarted).
  bool down() const;
  // Mutating calls attempted since construction (what CrashAtOp counts).
  uint64_t mutating_ops() const;

  // ENOSPC once `bytes` more bytes have been appended, in total over all files.
  void SetSpaceLimit(uint64_t bytes);
  void ClearSpaceLimit();

  using FaultHook = std::function<Status(FsOp op, std::string_view path)>;
  // Replaces the hook; an empty function removes it.
  void SetFaultHook(FaultHook hook);

  // What was synced: bytes of `path` that would survive a crash now.
  Result<uint64_t> SyncedSize(std::string_view path) const;
  // Whether `path`'s directory entry would survive a crash now (it, and every
  // directory above it, is in its parent's synced entries).
  bool EntryDurable(std::string_view path) const;
  uint64_t sync_count() const;      // WritableFile::Sync and SyncFile calls that succeeded
  uint64_t dir_sync_count() const;  // SyncDir calls that succeeded

  struct Node;

 private:
  friend class FaultWritableFile;
  friend class FaultReadableFile;

  // Runs the hook, takes the lock, and checks the file system is up, the
  // handle generation is current, and whether an armed crash fires now.
  Status Enter(FsOp op, std::string_view path, bool mutating, std::unique_lock<std::mutex>& lock,
               std::optional<uint64_t> handle_generation = std::nullopt);
  void CrashLocked(CrashMode mode, uint64_t seed);
  Result<std::shared_ptr<Node>> LookupLocked(std::string_view path) const;
  // The directory that holds `path`, and the last path component.
  Result<std::pair<std::shared_ptr<Node>, std::string>> ParentLocked(std::string_view path) const;
  Result<std::unique_ptr<WritableFile>> OpenWritable(std::string_view path, bool truncate);

  mutable std::mutex mu_;
  std::shared_ptr<Node> root_;
  uint64_t generation_ = 0;
  bool down_ = false;
  uint64_t ops_ = 0;
  std::optional<uint64_t> crash_at_op_;
  CrashMode crash_mode_ = CrashMode::kDropUnsynced;
  uint64_t crash_seed_ = 0;
  std::optional<uint64_t> space_left_;
  uint64_t syncs_ = 0;
  uint64_t dir_syncs_ = 0;

  mutable std::mutex hook_mu_;
  FaultHook hook_;
};

}  // namespace telkit
