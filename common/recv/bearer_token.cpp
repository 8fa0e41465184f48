#include "common/recv/bearer_token.h"

#include <cerrno>
#include <fstream>
#include <sstream>

namespace telkit {
namespace {

Result<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("read bearer token file '" + path + "'");
  std::string line;
  std::getline(in, line);
  const char* space = " \t\r\n";
  size_t begin = line.find_first_not_of(space);
  if (begin == std::string::npos) return InvalidArgumentError("bearer token file '" + path + "' holds no token");
  line = line.substr(begin, line.find_last_not_of(space) - begin + 1);
  for (unsigned char c : line) {
    if (c < 0x21 || c > 0x7e) {
      return InvalidArgumentError("bearer token in '" + path + "' holds a character that is not printable ASCII");
    }
  }
  return line;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Constant time in the content (the length may show).
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

Result<std::unique_ptr<BearerTokenCheck>> BearerTokenCheck::FromFile(const std::string& path) {
  TELKIT_ASSIGN_OR_RETURN(std::string token, ReadToken(path));
  auto check = std::make_unique<BearerTokenCheck>();
  check->path_ = path;
  check->token_ = std::move(token);
  return check;
}

Status BearerTokenCheck::Reload() {
  if (path_.empty()) return FailedPreconditionError("bearer token did not come from a file");
  TELKIT_ASSIGN_OR_RETURN(std::string token, ReadToken(path_));
  std::lock_guard lock(mu_);
  token_ = std::move(token);
  return OkStatus();
}

bool BearerTokenCheck::enabled() const {
  std::lock_guard lock(mu_);
  return !token_.empty();
}

bool BearerTokenCheck::Check(std::string_view authorization) const {
  std::lock_guard lock(mu_);
  if (token_.empty()) return true;
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size() || !EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme)) {
    return false;
  }
  std::string_view presented = authorization.substr(kScheme.size());
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  while (!presented.empty() && presented.back() == ' ') presented.remove_suffix(1);
  return ConstantTimeEquals(presented, token_);
}

}  // namespace telkit
