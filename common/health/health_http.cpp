#include "common/health/health_http.h"

#include <httplib.h>

#include <fmt/format.h>

namespace telkit {
namespace {

std::string WithScheme(const std::string& base) {
  if (base.rfind("http://", 0) == 0 || base.rfind("https://", 0) == 0) return base;
  return "http://" + base;
}

template <typename F>
Result<HealthHttpResponse> Call(const std::string& base, const std::string& what, int timeout_ms, F call) {
  try {
    httplib::Client client(WithScheme(base));
    if (!client.is_valid()) return InvalidArgumentError(fmt::format("invalid URL '{}'", base));
    auto secs = timeout_ms / 1000;
    auto usecs = (timeout_ms % 1000) * 1000;
    client.set_connection_timeout(secs, usecs);
    client.set_read_timeout(secs, usecs);
    client.set_write_timeout(secs, usecs);
    httplib::Result res = call(client);
    if (!res) {
      std::string why;
      switch (res.error()) {
        case httplib::Error::Connection: why = "cannot connect"; break;
        case httplib::Error::ConnectionTimeout: why = "connect timed out"; break;
        case httplib::Error::Read: why = "no answer (read failed or timed out)"; break;
        default: why = httplib::to_string(res.error());
      }
      return UnavailableError(fmt::format("{} {}: {}", what, WithScheme(base), why));
    }
    return HealthHttpResponse{res->status, res->body};
  } catch (const std::exception& e) {
    return UnavailableError(fmt::format("{} {}: {}", what, WithScheme(base), e.what()));
  }
}

}  // namespace

Result<HealthHttpResponse> HealthHttpGet(const std::string& base, const std::string& path, int timeout_ms) {
  return Call(base, "GET " + path, timeout_ms, [&](httplib::Client& c) { return c.Get(path); });
}

Result<HealthHttpResponse> HealthHttpPost(const std::string& base, const std::string& path,
                                          const std::string& content_type, const std::string& body,
                                          int timeout_ms) {
  return Call(base, "POST " + path, timeout_ms,
              [&](httplib::Client& c) { return c.Post(path, body, content_type); });
}

}  // namespace telkit
