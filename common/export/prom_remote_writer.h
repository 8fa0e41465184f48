// Sends Prometheus remote write 1.0 requests (docs/format/prom-remote-write.md)
// to any receiver: Prometheus (--web.enable-remote-write-receiver),
// VictoriaMetrics, Mimir, Thanos, otlp-recv. One POST a WriteRequest, the
// body snappy block-compressed, with
//   Content-Type: application/x-protobuf
//   Content-Encoding: snappy
//   X-Prometheus-Remote-Write-Version: 0.1.0
// Retries, with exponential backoff (honouring Retry-After), only what
// Prometheus' own sender retries: 5xx, 429 and connection errors. Any other
// 4xx means the receiver refuses the data: not retried.
//
// Thread-safe: Write() may be called from several threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/status.h"

namespace telkit {

struct PromRemoteWriterOptions {
  std::string url;  // http://HOST:PORT/PATH or https://...
  std::vector<std::pair<std::string, std::string>> headers;
  std::string ca_file;  // TLS: trust these roots instead of the system's
  bool insecure_skip_verify = false;
  int timeout_ms = 10000;  // per attempt
  int max_attempts = 5;
  int initial_backoff_ms = 100;
  int max_backoff_ms = 5000;
};

class PromRemoteWriter {
 public:
  // INVALID_ARGUMENT for a URL that is not http(s)://HOST[:PORT][/PATH].
  static Result<std::unique_ptr<PromRemoteWriter>> Create(const PromRemoteWriterOptions& options);

  // Sends one WriteRequest (uncompressed protobuf bytes). Returns the
  // attempts it took, or
  //   INVALID_ARGUMENT  the receiver refused the data (a 4xx other than 429);
  //   UNAVAILABLE       5xx, 429 or no connection, after the last attempt.
  Result<int> Write(std::string_view write_request) const;

  const PromRemoteWriterOptions& options() const { return options_; }

 private:
  PromRemoteWriter(PromRemoteWriterOptions options, std::string base, std::string path)
      : options_(std::move(options)), base_(std::move(base)), path_(std::move(path)) {}
  PromRemoteWriterOptions options_;
  std::string base_;  // scheme://host:port
  std::string path_;
};

}  // namespace telkit
