// Small bounded HTTP client calls stack-health makes (cpp-httplib): GET and
// POST with a timeout, exceptions and transport errors turned into Status.
// Thread-compatible.
#pragma once

#include <string>
#include <vector>
#include <utility>

#include "common/base/status.h"
#include "common/net/url.h"

namespace telkit {

struct HealthHttpResponse {
  int status = 0;
  std::string body;
};

// `base` is "http://host:port" (or "host:port"); `path` includes the query
// string. UNAVAILABLE when the connection fails or times out (the message
// says which); any HTTP status is a response.
Result<HealthHttpResponse> HealthHttpGet(const std::string& base, const std::string& path, int timeout_ms);
Result<HealthHttpResponse> HealthHttpPost(const std::string& base, const std::string& path,
                                          const std::string& content_type, const std::string& body,
                                          int timeout_ms);

}  // namespace telkit
