// File descriptors: ownership and the few blocking I/O loops everything uses.
// Thread-compatible. Functions retry on EINTR and return errno-mapped Status.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <string_view>
#include <utility>

#include "common/base/status.h"

namespace telkit {

// Owns one descriptor and closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Writes all of `data` (blocking descriptor). UNAVAILABLE on EPIPE.
Status WriteAll(int fd, std::string_view data);
// Writes a then b with writev(2), all of both.
Status WriteAll2(int fd, std::string_view a, std::string_view b);
// Reads up to `n` bytes; 0 means end of file. When `cancel_fd` >= 0, waits
// with poll(2) and returns CANCELLED once `cancel_fd` becomes readable.
Result<size_t> ReadSome(int fd, void* buf, size_t n, int cancel_fd = -1);

// An eventfd used to wake poll(2) loops (cancellation, new work).
class Notifier {
 public:
  Notifier();
  int fd() const { return fd_.get(); }
  void Notify();   // makes fd() readable
  void Consume();  // clears it
 private:
  UniqueFd fd_;
};

}  // namespace telkit
