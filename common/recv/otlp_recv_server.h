// The whole otlp-recv daemon except signal handling and flags: the output
// stream, the receiver core, the OTLP/HTTP and OTLP/gRPC front ends, the
// bearer-token check and the admin endpoint, started together and drained
// together. tools/otlp-recv/main.cpp maps flags onto OtlpRecvConfig and
// signals onto these methods.
//
// /readyz is 200 while the receiver accepts (not draining, output working).
// Thread-safety: Start, ReloadBearerToken and Shutdown from one thread; the
// accessors from any.
#pragma once

#include "common/scrape/scrape_config.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/base/malloc_tuning.h"
#include "common/admin/admin_server.h"
#include "common/admin/metrics_registry.h"
#include "common/base/status.h"
#include "common/recv/bearer_token.h"
#include "common/recv/otlp_grpc_server.h"
#include "common/recv/otlp_http_server.h"
#include "common/recv/otlp_receiver.h"

namespace telkit {

struct OtlpRecvConfig {
  std::string output = "-";  // any spec of common/stream/endpoint.h
  OtlpReceiverOptions receiver;
  std::optional<OtlpHttpServerOptions> http;  // nullopt: no HTTP listener
  std::optional<OtlpGrpcServerOptions> grpc;  // nullopt: no gRPC listener
  std::optional<ListenAddress> admin;         // nullopt: no admin endpoint
  std::string bearer_token_file;              // empty: no token check
  // Scraping (--scrape-config): each scrape's series, stale markers and
  // report series (up, scrape_*) go into the stream as one remote-write
  // frame, through the same queue as received requests (counted as
  // protocol "http", signal "prom-rw"). nullopt: no scraping.
  std::optional<ScrapeConfigFile> scrape;
  // Called (from a scrape thread) when a file_sd file cannot be read or
  // parsed, or the queue refuses a scrape; must be thread-safe.
  std::function<void(const Status&)> on_scrape_error;
};

// Process-wide glibc malloc settings suited to a receiver: request bodies
// (100 KiB to a few MiB) come from the heap rather than from a fresh mmap
// each, up to 8 MiB freed at the top of a heap stays there for the next
// request instead of being returned and faulted back in (together ~0.1 CPU
// s per million spans on the gRPC path: bench/otlp-recv/results/), and
// threads share 2 arenas rather than one each, which bounds what the free
// lists hold. Memory freed by a burst is returned by
// OtlpRecvServer::ReleaseMemoryIfIdle.
// REQUIRES: called from main() before any thread starts. No-op without glibc.
void TuneMallocForReceiver();

class OtlpRecvServer {
 public:
  // Opens the output and starts every listener.
  // INVALID_ARGUMENT for inconsistent limits, no listener at all, or bad TLS
  // files; the output's errors (NOT_FOUND, PERMISSION_DENIED, ...);
  // UNAVAILABLE when an address cannot be bound.
  // REQUIRES: SIGPIPE is ignored.
  static Result<std::unique_ptr<OtlpRecvServer>> Start(const OtlpRecvConfig& config);
  ~OtlpRecvServer();  // Shutdown(0) if not done

  int http_port() const { return http_ ? http_->port() : 0; }
  int grpc_port() const { return grpc_ ? grpc_->port() : 0; }
  size_t scrape_targets() const { return scrape_ ? scrape_->num_targets() : 0; }
  int admin_port() const { return admin_ ? admin_->port() : 0; }
  const MetricsRegistry& registry() const { return *registry_; }

  // The error that stopped the output stream; OK while it works. A daemon
  // whose output failed should exit (it refuses everything meanwhile).
  Status OutputStatus() const { return receiver_->OutputStatus(); }

  // Re-reads the bearer token file (SIGHUP). FAILED_PRECONDITION when no
  // token file is configured; the file's errors otherwise (old token kept).
  Status ReloadBearerToken();
  // Replaces the scrape configuration (SIGHUP; ScrapeService::Reload).
  // FAILED_PRECONDITION when the server was started without one.
  Status ReloadScrapeConfig(ScrapeConfigFile config);

  // Gives the memory freed by past requests back to the operating system
  // (malloc_trim) once the receiver has been idle -- no new request, nothing
  // in flight, queued or being written -- for 2 s; once per idle
  // period. glibc keeps freed memory otherwise: after a burst that filled the
  // queue, hundreds of MiB. Returns true when it trimmed.
  // Call every second or so, from one thread.
  bool ReleaseMemoryIfIdle();

  // Graceful drain: refuse new requests (503 / UNAVAILABLE, /readyz 503),
  // stop the listeners after the requests in progress, write everything
  // queued, drain the output, stop the admin endpoint. Bounded by `timeout`.
  // Idempotent.
  Status Shutdown(std::chrono::milliseconds timeout);

 private:
  OtlpRecvServer() = default;

  // Destroyed in reverse order: listeners before what they use.
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<OtlpReceiver> receiver_;
  std::unique_ptr<BearerTokenCheck> auth_;
  std::unique_ptr<OtlpHttpServer> http_;
  std::unique_ptr<OtlpGrpcServer> grpc_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<ScrapeService> scrape_;  // destroyed first: it feeds receiver_
  bool shut_down_ = false;
  IdleMemoryTrimmer trimmer_;  // ReleaseMemoryIfIdle: after 2 s idle
};

}  // namespace telkit
