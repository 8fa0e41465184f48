// The OTLP/gRPC front end of otlp-recv (OTLP specification, "OTLP/gRPC"):
//   opentelemetry.proto.collector.trace.v1.TraceService/Export
//   opentelemetry.proto.collector.metrics.v1.MetricsService/Export
//   opentelemetry.proto.collector.logs.v1.LogsService/Export
// served as a generic (byte-buffer) callback service: the request message is
// handed to the receiver as bytes, scanned, and forwarded unchanged; it is
// never parsed into generated messages. gzip request compression is handled
// by gRPC itself.
//
// Status codes: OK with the Export*ServiceResponse (partial_success when
// items were rejected); INVALID_ARGUMENT bad data; RESOURCE_EXHAUSTED over a
// limit; UNAVAILABLE queue full / draining / output down, with a
// google.rpc.RetryInfo detail (retryable); UNAUTHENTICATED bad token;
// UNIMPLEMENTED unknown method.
//
// Size limits. gRPC delivers the message decompressed, so the receiver's
// max_request_bytes applies to the decompressed message (refused by the
// receiver: RESOURCE_EXHAUSTED, counted as too_large). gRPC itself refuses
// messages over max_decompressed_bytes before buffering them whole
// (RESOURCE_EXHAUSTED sent by gRPC; the receiver only sees the call end
// without a message and counts it as aborted).
//
// Thread-safety: Start/Shutdown from one thread; calls are served on gRPC's
// threads.
#pragma once

#include <chrono>
#include <memory>

#include "common/admin/http_server.h"
#include "common/base/status.h"
#include "common/recv/bearer_token.h"
#include "common/recv/otlp_receiver.h"
#include "common/recv/tls_files.h"

namespace grpc {
class Server;
class CallbackGenericService;
}  // namespace grpc

namespace telkit {

struct OtlpGrpcServerOptions {
  ListenAddress listen{"0.0.0.0", 4317};
  TlsFiles tls;
  // Concurrent calls per HTTP/2 connection.
  int max_concurrent_streams = 100;
};

class OtlpGrpcServer {
 public:
  // Binds and serves. `receiver` and `auth` (may be null: no token check)
  // outlive the server.
  // UNAVAILABLE when the address cannot be bound; INVALID_ARGUMENT /
  // NOT_FOUND for unusable TLS files.
  static Result<std::unique_ptr<OtlpGrpcServer>> Start(const OtlpGrpcServerOptions& options, OtlpReceiver& receiver,
                                                       const BearerTokenCheck* auth);
  ~OtlpGrpcServer();  // Shutdown(0)

  int port() const { return port_; }

  // Stops accepting calls, waits up to `deadline` for calls in progress,
  // then cancels the rest. Idempotent.
  void Shutdown(std::chrono::milliseconds deadline);

 private:
  OtlpGrpcServer() = default;

  std::unique_ptr<grpc::CallbackGenericService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace telkit
