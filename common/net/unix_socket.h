// Unix stream sockets and sockets handed over by systemd socket activation.
// Thread-safe: pure functions over descriptors.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/base/fd.h"
#include "common/base/status.h"

namespace telkit {

// Connects to the socket at `path`. UNAVAILABLE when nobody listens (yet).
Result<UniqueFd> ConnectUnix(const std::string& path);
// Binds and listens at `path`, replacing a stale socket file left by a
// previous run (but refusing to replace a file that is not a socket).
Result<UniqueFd> ListenUnix(const std::string& path, int backlog = 64);
// Accepts one connection; CANCELLED when `cancel_fd` becomes readable first.
Result<UniqueFd> AcceptConnection(int listen_fd, int cancel_fd);
// True when `fd` is a listening socket (SO_ACCEPTCONN).
bool IsListeningSocket(int fd);
// True when `fd` is a socket of any kind.
bool IsSocket(int fd);

// The descriptor systemd passed for `name` (FileDescriptorName=), or the first
// one when `name` is empty. NOT_FOUND when not started by socket activation
// or no such name. Descriptors are not closed by this call.
Result<int> SystemdSocket(std::string_view name);

}  // namespace telkit
