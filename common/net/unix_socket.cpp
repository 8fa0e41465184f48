#include "common/net/unix_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstring>

namespace telkit {
namespace {

Result<sockaddr_un> MakeAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgumentError("unix socket path '" + path + "' is empty or longer than " +
                                std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

Result<UniqueFd> ConnectUnix(const std::string& path) {
  TELKIT_ASSIGN_OR_RETURN(sockaddr_un addr, MakeAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket");
  while (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == EINTR) continue;
    int err = errno == ENOENT ? ECONNREFUSED : errno;  // no socket file yet = nobody listening
    return ErrnoError("connect to '" + path + "'", err);
  }
  return fd;
}

Result<UniqueFd> ListenUnix(const std::string& path, int backlog) {
  TELKIT_ASSIGN_OR_RETURN(sockaddr_un addr, MakeAddress(path));
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return FailedPreconditionError("'" + path + "' exists and is not a socket");
    }
    ::unlink(path.c_str());  // stale socket of an earlier run
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoError("bind '" + path + "'");
  }
  if (::listen(fd.get(), backlog) != 0) return ErrnoError("listen on '" + path + "'");
  return fd;
}

Result<UniqueFd> AcceptConnection(int listen_fd, int cancel_fd) {
  for (;;) {
    pollfd p[2] = {{listen_fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    int r = ::poll(p, cancel_fd >= 0 ? 2 : 1, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll");
    }
    if (cancel_fd >= 0 && (p[1].revents & POLLIN)) return CancelledError("accept cancelled");
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) return UniqueFd(fd);
    if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
    return ErrnoError("accept");
  }
}

bool IsListeningSocket(int fd) {
  int v = 0;
  socklen_t len = sizeof v;
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v != 0;
}

bool IsSocket(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

Result<int> SystemdSocket(std::string_view name) {
  char** names = nullptr;
  int n = sd_listen_fds_with_names(0, &names);
  if (n <= 0) {
    return NotFoundError("no sockets were passed by systemd (LISTEN_FDS is not set for this process)");
  }
  int found = -1;
  for (int i = 0; i < n; ++i) {
    if (found < 0 && (name.empty() || (names && names[i] && name == names[i]))) found = SD_LISTEN_FDS_START + i;
    if (names) std::free(names[i]);
  }
  std::free(names);
  if (found < 0) return NotFoundError("systemd passed no socket named '" + std::string(name) + "'");
  return found;
}

}  // namespace telkit
