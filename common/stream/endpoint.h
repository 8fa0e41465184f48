// Where a stream is read from or written to, as given on the command line.
//
//   -                 stdin (inputs) or stdout (outputs)
//   PATH              a file (outputs append, so restarts concatenate streams)
//   unix:PATH         connect to a Unix stream socket
//   listen:unix:PATH  bind and listen on a Unix stream socket
//   fd:N              an inherited descriptor (pipe, file, socket or listener)
//   systemd[:NAME]    a socket passed by systemd socket activation, the first
//                     one or the one whose FileDescriptorName= is NAME
// Thread-safe: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/base/status.h"

namespace telkit {

struct Endpoint {
  enum class Kind { kStdio, kFile, kUnixConnect, kUnixListen, kFd, kSystemd };
  Kind kind = Kind::kStdio;
  std::string path;  // kFile, kUnixConnect, kUnixListen; kSystemd: the name (may be empty)
  int fd = -1;       // kFd

  std::string ToString() const;
};

// INVALID_ARGUMENT for an empty spec, an empty path, a bad fd number or a
// Unix socket path longer than the kernel allows.
Result<Endpoint> ParseEndpoint(std::string_view spec);

}  // namespace telkit
