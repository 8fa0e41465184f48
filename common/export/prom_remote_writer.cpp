#include "common/export/prom_remote_writer.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/codec/snappy.h"

namespace telkit {

Result<std::unique_ptr<PromRemoteWriter>> PromRemoteWriter::Create(const PromRemoteWriterOptions& options) {
  const std::string& url = options.url;
  const bool https = url.starts_with("https://");
  if (!https && !url.starts_with("http://")) {
    return InvalidArgumentError("remote-write URL '" + url + "' must start with http:// or https://");
  }
  const size_t host_start = https ? 8 : 7;
  const size_t slash = url.find('/', host_start);
  std::string base = url.substr(0, slash);
  if (base.size() <= host_start) return InvalidArgumentError("remote-write URL '" + url + "' has no host");
  std::string path = slash == std::string::npos ? "/api/v1/write" : url.substr(slash);
  return std::unique_ptr<PromRemoteWriter>(new PromRemoteWriter(options, std::move(base), std::move(path)));
}

Result<int> PromRemoteWriter::Write(std::string_view write_request) const {
  const std::string body = SnappyCompress(write_request);
  httplib::Headers headers = {{"Content-Encoding", "snappy"},
                              {"X-Prometheus-Remote-Write-Version", "0.1.0"},
                              {"User-Agent", "telkit/" TELKIT_VERSION}};
  for (const auto& [k, v] : options_.headers) headers.emplace(k, v);
  int backoff = options_.initial_backoff_ms;
  for (int attempt = 1;; ++attempt) {
    httplib::Client client(base_);
    client.set_connection_timeout(std::chrono::milliseconds(options_.timeout_ms));
    client.set_read_timeout(std::chrono::milliseconds(options_.timeout_ms));
    client.set_write_timeout(std::chrono::milliseconds(options_.timeout_ms));
    if (!options_.ca_file.empty()) client.set_ca_cert_path(options_.ca_file.c_str());
    client.enable_server_certificate_verification(!options_.insecure_skip_verify);
    auto res = client.Post(path_, headers, body, "application/x-protobuf");
    Status status;
    bool retryable = true;
    int retry_after_ms = -1;
    if (!res) {
      status = UnavailableError("HTTP request failed: " + httplib::to_string(res.error()));
    } else if (res->status / 100 == 2) {
      return attempt;
    } else {
      std::string snippet = res->body.substr(0, 200);
      while (!snippet.empty() && (snippet.back() == '\n' || snippet.back() == '\r')) snippet.pop_back();
      const std::string what = "HTTP " + std::to_string(res->status) + (snippet.empty() ? "" : ": " + snippet);
      retryable = res->status / 100 == 5 || res->status == 429;
      status = retryable ? UnavailableError(what) : InvalidArgumentError(what);
      if (res->has_header("Retry-After")) {
        const std::string value = res->get_header_value("Retry-After");
        if (!value.empty() && std::all_of(value.begin(), value.end(), ::isdigit) && value.size() < 7) {
          retry_after_ms = std::stoi(value) * 1000;
        }
      }
    }
    if (!retryable || attempt >= options_.max_attempts) {
      return status.WithContext("remote write to '" + options_.url + "' (attempt " + std::to_string(attempt) + ")");
    }
    const int wait = retry_after_ms >= 0 ? std::min(retry_after_ms, options_.max_backoff_ms) : backoff;
    std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    backoff = std::min(backoff * 2, options_.max_backoff_ms);
  }
}

}  // namespace telkit
