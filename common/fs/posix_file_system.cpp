#include "common/fs/posix_file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/base/fd.h"

namespace telkit {
namespace {

std::string Quoted(std::string_view path) { return "'" + std::string(path) + "'"; }

Status PathError(std::string_view what, std::string_view path, int err = errno) {
  return ErrnoError(std::string(what) + " " + Quoted(path), err);
}

Status FsyncFd(int fd, std::string_view what, std::string_view path, bool data_only) {
  for (;;) {
    int r = data_only ? ::fdatasync(fd) : ::fsync(fd);
    if (r == 0) return OkStatus();
    if (errno != EINTR) return PathError(what, path);
  }
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, UniqueFd fd, uint64_t size)
      : path_(std::move(path)), fd_(std::move(fd)), size_(size) {}

  Status Append(std::string_view data) override {
    if (!fd_.valid()) return FailedPreconditionError("append to " + Quoted(path_) + ": file is closed");
    // Like WriteAll, but counts a short write before the error into size_.
    while (!data.empty()) {
      ssize_t n = ::write(fd_.get(), data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return PathError("write", path_);
      }
      size_ += static_cast<uint64_t>(n);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return OkStatus();
  }

  Status Sync() override {
    if (!fd_.valid()) return FailedPreconditionError("sync " + Quoted(path_) + ": file is closed");
    return FsyncFd(fd_.get(), "sync", path_, /*data_only=*/true);
  }

  Status Close() override {
    if (!fd_.valid()) return OkStatus();
    int fd = fd_.release();
    if (::close(fd) != 0 && errno != EINTR) return PathError("close", path_);
    return OkStatus();
  }

  uint64_t size() const override { return size_; }

 private:
  std::string path_;
  UniqueFd fd_;
  uint64_t size_;
};

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  Result<size_t> ReadAt(uint64_t offset, std::span<char> out) const override {
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::pread(fd_.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return PathError("read", path_);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  Result<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) return PathError("stat", path_);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  std::string path_;
  UniqueFd fd_;
};

Result<std::unique_ptr<WritableFile>> OpenWritable(std::string_view path, int flags) {
  std::string p(path);
  int fd;
  do {
    fd = ::open(p.c_str(), flags | O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return PathError("open", path);
  UniqueFd owned(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return PathError("stat", path);
  return std::unique_ptr<WritableFile>(
      new PosixWritableFile(std::move(p), std::move(owned), static_cast<uint64_t>(st.st_size)));
}

}  // namespace

Result<std::unique_ptr<WritableFile>> PosixFileSystem::NewWritableFile(std::string_view path) {
  return OpenWritable(path, O_TRUNC);
}

Result<std::unique_ptr<WritableFile>> PosixFileSystem::NewAppendableFile(std::string_view path) {
  return OpenWritable(path, O_APPEND);
}

Result<std::unique_ptr<ReadableFile>> PosixFileSystem::NewReadableFile(std::string_view path) {
  std::string p(path);
  int fd;
  do {
    fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return PathError("open", path);
  return std::unique_ptr<ReadableFile>(new PosixReadableFile(std::move(p), UniqueFd(fd)));
}

Status PosixFileSystem::CreateDir(std::string_view path) {
  std::string p(path);
  if (::mkdir(p.c_str(), 0755) == 0) return OkStatus();
  int err = errno;
  struct stat st;
  if (err == EEXIST && ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return OkStatus();
  return PathError("create directory", path, err);
}

Status PosixFileSystem::RemoveDir(std::string_view path) {
  if (::rmdir(std::string(path).c_str()) != 0) return PathError("remove directory", path);
  return OkStatus();
}

Status PosixFileSystem::SyncDir(std::string_view path) {
  int fd;
  do {
    fd = ::open(std::string(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return PathError("open directory", path);
  UniqueFd owned(fd);
  return FsyncFd(fd, "sync directory", path, /*data_only=*/false);
}

Result<std::vector<std::string>> PosixFileSystem::ListDir(std::string_view path) {
  DIR* dir = ::opendir(std::string(path).c_str());
  if (dir == nullptr) return PathError("list directory", path);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(dir)) {
    std::string_view name(e->d_name);
    if (name != "." && name != "..") names.emplace_back(name);
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return PathError("list directory", path, err);
  std::sort(names.begin(), names.end());
  return names;
}

Status PosixFileSystem::RemoveFile(std::string_view path) {
  if (::unlink(std::string(path).c_str()) != 0) return PathError("remove", path);
  return OkStatus();
}

Status PosixFileSystem::Rename(std::string_view from, std::string_view to) {
  if (::rename(std::string(from).c_str(), std::string(to).c_str()) != 0) {
    return ErrnoError("rename " + Quoted(from) + " to " + Quoted(to));
  }
  return OkStatus();
}

Status PosixFileSystem::Truncate(std::string_view path, uint64_t size) {
  int r;
  do {
    r = ::truncate(std::string(path).c_str(), static_cast<off_t>(size));
  } while (r != 0 && errno == EINTR);
  if (r != 0) return PathError("truncate", path);
  return OkStatus();
}

Status PosixFileSystem::SyncFile(std::string_view path) {
  int fd;
  do {
    fd = ::open(std::string(path).c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return PathError("open", path);
  UniqueFd owned(fd);
  return FsyncFd(fd, "sync", path, /*data_only=*/false);
}

Result<FileInfo> PosixFileSystem::Stat(std::string_view path) {
  struct stat st;
  if (::stat(std::string(path).c_str(), &st) != 0) return PathError("stat", path);
  return FileInfo{S_ISDIR(st.st_mode), static_cast<uint64_t>(st.st_size)};
}

FileSystem* DefaultFileSystem() {
  static PosixFileSystem fs;  // stateless: usable at any time, even during exit
  return &fs;
}

}  // namespace telkit
