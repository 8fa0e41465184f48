#include "common/stream/endpoint.h"

#include <sys/un.h>

#include <charconv>

namespace telkit {
namespace {

constexpr std::string_view kUnix = "unix:";
constexpr std::string_view kListenUnix = "listen:unix:";
constexpr std::string_view kFd = "fd:";
constexpr std::string_view kSystemd = "systemd";

Status CheckSocketPath(std::string_view spec, std::string_view path) {
  if (path.empty()) return InvalidArgumentError("endpoint '" + std::string(spec) + "' has an empty socket path");
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return InvalidArgumentError("socket path of '" + std::string(spec) + "' is longer than " +
                                std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes");
  }
  return OkStatus();
}

}  // namespace

std::string Endpoint::ToString() const {
  switch (kind) {
    case Kind::kStdio: return "-";
    case Kind::kFile: return path;
    case Kind::kUnixConnect: return std::string(kUnix) + path;
    case Kind::kUnixListen: return std::string(kListenUnix) + path;
    case Kind::kFd: return std::string(kFd) + std::to_string(fd);
    case Kind::kSystemd: return path.empty() ? std::string(kSystemd) : std::string(kSystemd) + ":" + path;
  }
  return "?";
}

Result<Endpoint> ParseEndpoint(std::string_view spec) {
  Endpoint e;
  if (spec.empty()) return InvalidArgumentError("empty endpoint (use '-' for stdin/stdout)");
  if (spec == "-") return e;
  if (spec.starts_with(kListenUnix)) {
    e.kind = Endpoint::Kind::kUnixListen;
    e.path = spec.substr(kListenUnix.size());
    TELKIT_RETURN_IF_ERROR(CheckSocketPath(spec, e.path));
    return e;
  }
  if (spec.starts_with(kUnix)) {
    e.kind = Endpoint::Kind::kUnixConnect;
    e.path = spec.substr(kUnix.size());
    TELKIT_RETURN_IF_ERROR(CheckSocketPath(spec, e.path));
    return e;
  }
  if (spec.starts_with(kFd)) {
    std::string_view num = spec.substr(kFd.size());
    int fd = -1;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), fd);
    if (ec != std::errc() || p != num.data() + num.size() || fd < 0) {
      return InvalidArgumentError("endpoint '" + std::string(spec) + "' needs a descriptor number, as in fd:3");
    }
    e.kind = Endpoint::Kind::kFd;
    e.fd = fd;
    return e;
  }
  if (spec == kSystemd || spec.starts_with("systemd:")) {
    e.kind = Endpoint::Kind::kSystemd;
    if (spec.size() > kSystemd.size()) e.path = spec.substr(kSystemd.size() + 1);
    return e;
  }
  if (spec.starts_with("listen:")) {
    return InvalidArgumentError("endpoint '" + std::string(spec) + "': only listen:unix:PATH is supported");
  }
  e.kind = Endpoint::Kind::kFile;
  e.path = spec;
  return e;
}

}  // namespace telkit
