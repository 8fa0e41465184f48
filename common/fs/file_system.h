// FileSystem: the small interface through which the stores touch files and
// directories, so that tests can swap in FaultInjectingFileSystem and prove
// what survives a crash or a full disk (the way LevelDB's Env is used by its
// fault_injection_test). PosixFileSystem is the real one.
//
// Durability model (what a caller must do, on any implementation):
//   * bytes appended to a file are durable after that file's Sync();
//   * a new, renamed or removed directory entry is durable after SyncDir()
//     of the directory that holds it (for a rename: of both directories);
//   * nothing else is promised: after a crash, unsynced bytes and entries may
//     be gone, partly there, or (for bytes) read back as zeros.
//
// Paths are '/'-separated; every function takes the path as given (relative
// paths are relative to the process's working directory for
// PosixFileSystem). Errors carry the path: "open 'wal/00000001': no such file
// or directory".
//
// Thread-safety: a FileSystem is thread-safe. A WritableFile or ReadableFile
// is thread-compatible: one thread at a time (ReadableFile::ReadAt may be
// called concurrently; it does not move a file position).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"

namespace telkit {

// A file open for appending. Closing without Sync() promises nothing about
// durability. Destruction closes the file (ignoring errors); call Close() to
// see them.
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Appends `data` at the end of the file. On error the file may hold any
  // prefix of `data` (a short write), as after ENOSPC.
  // Errors: RESOURCE_EXHAUSTED (ENOSPC, EDQUOT), FAILED_PRECONDITION after
  // Close(), others from the OS.
  virtual Status Append(std::string_view data) = 0;
  // Makes everything appended so far durable (fdatasync(2)). After a failed
  // Sync the file's durable state is unknown: do not retry, rewrite elsewhere.
  virtual Status Sync() = 0;
  // Closes the file; later calls return FAILED_PRECONDITION. Idempotent.
  virtual Status Close() = 0;
  // Bytes in the file: its size when opened plus what Append() wrote since.
  virtual uint64_t size() const = 0;
};

// A file open for reading at offsets.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to out.size() bytes at `offset`; fewer only at the end of the
  // file (0 at or past it).
  virtual Result<size_t> ReadAt(uint64_t offset, std::span<char> out) const = 0;
  // The file's current size.
  virtual Result<uint64_t> Size() const = 0;
};

struct FileInfo {
  bool is_dir = false;
  uint64_t size = 0;  // bytes, for files
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Creates `path` (or truncates it to zero bytes) and opens it for appending.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(std::string_view path) = 0;
  // Opens `path` for appending at its end, creating it when missing.
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(std::string_view path) = 0;
  // Opens an existing file for reading. NOT_FOUND when missing.
  virtual Result<std::unique_ptr<ReadableFile>> NewReadableFile(std::string_view path) = 0;

  // Creates a directory; OK when it already exists as a directory. The parent
  // must exist (NOT_FOUND otherwise).
  virtual Status CreateDir(std::string_view path) = 0;
  // Removes an empty directory.
  virtual Status RemoveDir(std::string_view path) = 0;
  // Makes the directory's entries (creations, renames, removals) durable.
  virtual Status SyncDir(std::string_view path) = 0;
  // Names in a directory, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(std::string_view path) = 0;

  // Removes a file. NOT_FOUND when missing.
  virtual Status RemoveFile(std::string_view path) = 0;
  // Renames a file or directory, atomically replacing a file at `to`.
  virtual Status Rename(std::string_view from, std::string_view to) = 0;
  // Cuts or extends (with zeros) a file to `size` bytes. Durable after a
  // Sync() of a handle to it or, for files not open, as the OS decides:
  // callers follow it with SyncFile().
  virtual Status Truncate(std::string_view path, uint64_t size) = 0;
  // Makes a file's data durable without an open handle (open + fsync).
  virtual Status SyncFile(std::string_view path) = 0;
  // What is at `path`. NOT_FOUND when nothing.
  virtual Result<FileInfo> Stat(std::string_view path) = 0;
};

// The process-wide PosixFileSystem.
FileSystem* DefaultFileSystem();

// "dir/name", without doubling a trailing '/' of `dir`.
std::string JoinPath(std::string_view dir, std::string_view name);
// The directory part of `path` ("." when it has none).
std::string DirName(std::string_view path);

// Reads a whole file. RESOURCE_EXHAUSTED when it is larger than `max_bytes`.
Result<std::string> ReadFileToString(FileSystem* fs, std::string_view path, uint64_t max_bytes = uint64_t{1} << 30);
// Replaces `path` with `data` atomically and durably: writes `path`.tmp,
// syncs it, renames it over `path`, syncs the directory. After a crash the
// file holds either its old or its new content, never a mix.
Status WriteFileDurably(FileSystem* fs, std::string_view path, std::string_view data);

}  // namespace telkit
