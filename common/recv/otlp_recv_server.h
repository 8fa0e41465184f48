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

#include <chrono>
#include <memory>
#include <optional>
#include <string>

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
};

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
  int admin_port() const { return admin_ ? admin_->port() : 0; }
  const MetricsRegistry& registry() const { return *registry_; }

  // The error that stopped the output stream; OK while it works. A daemon
  // whose output failed should exit (it refuses everything meanwhile).
  Status OutputStatus() const { return receiver_->OutputStatus(); }

  // Re-reads the bearer token file (SIGHUP). FAILED_PRECONDITION when no
  // token file is configured; the file's errors otherwise (old token kept).
  Status ReloadBearerToken();

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
  bool shut_down_ = false;
};

}  // namespace telkit
