// PosixFileSystem: FileSystem over open(2), write(2), fdatasync(2),
// rename(2) and friends. Sync() is fdatasync(2) (it also persists a grown
// file size); SyncDir() and SyncFile() are fsync(2) of a descriptor opened
// read-only. Descriptors are O_CLOEXEC. Errors map errno (status.h's
// ErrnoError) and name the path.
// Thread-safe: stateless.
#pragma once

#include "common/fs/file_system.h"

namespace telkit {

class PosixFileSystem final : public FileSystem {
 public:
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
};

}  // namespace telkit
