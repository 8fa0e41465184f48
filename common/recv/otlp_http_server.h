// The OTLP/HTTP front end of otlp-recv (OTLP specification, "OTLP/HTTP").
//
//   POST /v1/traces | /v1/metrics | /v1/logs
//   Content-Type: application/x-protobuf | application/json (parameters such
//                 as charset are allowed)
//   Content-Encoding: gzip | deflate | identity (or none)
//
//   POST /api/v1/write  Prometheus remote write 1.0: Content-Type
//                 application/x-protobuf (a proto= parameter other than
//                 prometheus.WriteRequest is refused: 415), Content-Encoding
//                 snappy (else 415); answered 204 without a body, errors in
//                 plain text (400 malformed snappy or protobuf, 413 too big);
//                 series that break the label rules are dropped and counted,
//                 the rest forwarded as one prom-rw frame.
//
//   POST /loki/api/v1/push  Loki's push API (docs/format/loki-push.md): JSON
//                 (gzip/deflate allowed) or snappy protobuf; forwarded as one
//                 logs frame; answered 204, or in plain text 400 (malformed,
//                 or entries dropped: the others are kept), 413, 415, and
//                 429 with Retry-After where OTLP answers 503.
//
// The OTLP answer uses the request's encoding: 200 with the Export*ServiceResponse
// (partial_success when items were rejected); errors carry a google.rpc.Status
// (rpc_status.h). Status codes:
//   400 malformed body (protobuf, JSON, compression) or a body that could not
//       be read (client went away, read timeout)
//   401 missing or wrong bearer token (WWW-Authenticate: Bearer)
//   404 unknown path          405 not a POST (Allow: POST)
//   413 body, decompressed body or item count over its limit
//   415 unsupported Content-Type or Content-Encoding
//   503 queue full, draining or output down, with Retry-After (retryable)
//
// cpp-httplib settings made here on purpose: a fixed worker pool (`threads`,
// each serving one connection at a time), read/write timeouts, keep-alive
// timeout and request count, a listen backlog of 1024. httplib's own
// transparent decompression is turned off (the Content-Encoding header is
// taken aside before it reads the body) so that every body goes through the
// receiver's bounded decompression; bodies are read in chunks and never buffered past max_request_bytes. The
// body of a refused request is read and dropped (up to 64 MiB or 4 x
// max_request_bytes) so that the connection stays usable and the client gets
// the answer; beyond that, or while draining, the answer says
// "Connection: close" and the body is left unread.
// Expect: 100-continue is answered with the final status when the headers
// already decide a refusal.
//
// Thread-safety: Start/Stop from one thread; requests are served on the
// server's worker threads.
#pragma once

#include <memory>

#include "common/admin/http_server.h"
#include "common/base/status.h"
#include "common/recv/bearer_token.h"
#include "common/recv/otlp_receiver.h"
#include "common/recv/tls_files.h"

namespace telkit {

struct OtlpHttpServerOptions {
  ListenAddress listen{"0.0.0.0", 4318};
  TlsFiles tls;
  // Worker threads = connections served at once; further accepted
  // connections wait for a free worker.
  int threads = 16;
  // Per read/write on a connection (a stalled client is dropped after this).
  int read_timeout_seconds = 10;
  int write_timeout_seconds = 10;
  // An idle keep-alive connection holds a worker this long at most.
  int keep_alive_timeout_seconds = 5;
  int keep_alive_max_requests = 100;
  int listen_backlog = 1024;
};

class OtlpHttpServer {
 public:
  // Binds and serves. REQUIRES: SIGPIPE is ignored in the process (httplib
  // writes to sockets without MSG_NOSIGNAL); `receiver` and `auth` (may be
  // null: no token check) outlive the server.
  // UNAVAILABLE when the address cannot be bound; INVALID_ARGUMENT for
  // unusable TLS files.
  static Result<std::unique_ptr<OtlpHttpServer>> Start(const OtlpHttpServerOptions& options, OtlpReceiver& receiver,
                                                       const BearerTokenCheck* auth);
  ~OtlpHttpServer();  // Stop()

  int port() const { return runner_->port(); }
  // Stops accepting and finishes the requests in progress. Idempotent.
  void Stop() { runner_->Stop(); }

 private:
  explicit OtlpHttpServer(std::unique_ptr<HttpServerRunner> runner) : runner_(std::move(runner)) {}
  std::unique_ptr<HttpServerRunner> runner_;
};

}  // namespace telkit
