#include "common/base/fd.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdint>

namespace telkit {

Status WriteAll(int fd, std::string_view data) { return WriteAll2(fd, data, {}); }

Status WriteAll2(int fd, std::string_view a, std::string_view b) {
  iovec iov[2] = {{const_cast<char*>(a.data()), a.size()}, {const_cast<char*>(b.data()), b.size()}};
  int first = 0;
  while (first < 2) {
    if (iov[first].iov_len == 0) {
      ++first;
      continue;
    }
    ssize_t n = ::writev(fd, iov + first, 2 - first);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write");
    }
    auto left = static_cast<size_t>(n);
    while (first < 2 && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      iov[first].iov_len = 0;
      ++first;
    }
    if (first < 2) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return OkStatus();
}

Result<size_t> ReadSome(int fd, void* buf, size_t n, int cancel_fd) {
  for (;;) {
    if (cancel_fd >= 0) {
      pollfd p[2] = {{fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
      int r = ::poll(p, 2, -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("poll");
      }
      if (p[1].revents & POLLIN) return CancelledError("read cancelled");
    }
    ssize_t got = ::read(fd, buf, n);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return size_t{0};  // a peer that went away is an end of input
    return ErrnoError("read");
  }
}

Notifier::Notifier() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

void Notifier::Notify() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(fd_.get(), &one, sizeof one);
}

void Notifier::Consume() {
  uint64_t v;
  [[maybe_unused]] ssize_t n = ::read(fd_.get(), &v, sizeof v);
}

}  // namespace telkit
