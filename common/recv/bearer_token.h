// Optional bearer-token check for the OTLP listeners: a request must carry
// "Authorization: Bearer <token>" (HTTP header, or gRPC metadata
// `authorization`). The token comes from a file so that it stays out of the
// process list, and can be reloaded (SIGHUP) without a restart.
// Thread-safety: all methods are safe from any thread; Check runs
// concurrently with Reload.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace telkit {

class BearerTokenCheck {
 public:
  // Disabled: every request passes.
  BearerTokenCheck() = default;

  // Reads the token from `path`: the first line, surrounding whitespace
  // removed. NOT_FOUND / PERMISSION_DENIED when unreadable,
  // INVALID_ARGUMENT when it holds no token or characters a header value
  // cannot carry.
  static Result<std::unique_ptr<BearerTokenCheck>> FromFile(const std::string& path);

  // Re-reads the file given to FromFile; keeps the old token on error.
  // FAILED_PRECONDITION when the check did not come from a file.
  Status Reload();

  // True when enabled.
  bool enabled() const;

  // True when disabled, or when `authorization` is "Bearer <token>" (the
  // scheme case-insensitively). Compares in time independent of where the
  // strings differ.
  bool Check(std::string_view authorization) const;

 private:
  std::string path_;
  mutable std::mutex mu_;
  std::string token_;
};

}  // namespace telkit
