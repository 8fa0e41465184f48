#include "common/recv/otlp_grpc_server.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include <optional>
#include <string>
#include <vector>

#include "common/otlp/export_messages.h"
#include "common/recv/rpc_status.h"

namespace telkit {
namespace {

std::optional<Signal> SignalForMethod(std::string_view method) {
  if (method == "/opentelemetry.proto.collector.trace.v1.TraceService/Export") return Signal::kTraces;
  if (method == "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export") return Signal::kMetrics;
  if (method == "/opentelemetry.proto.collector.logs.v1.LogsService/Export") return Signal::kLogs;
  return std::nullopt;
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const grpc::Slice& slice : slices) out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  return out;
}

grpc::Status ToGrpcStatus(StatusCode code, const std::string& message, int retry_after_seconds) {
  const auto grpc_code = static_cast<grpc::StatusCode>(static_cast<int>(code));
  if (retry_after_seconds > 0) {
    return grpc::Status(grpc_code, message, EncodeRpcStatus(code, message, retry_after_seconds));
  }
  return grpc::Status(grpc_code, message);
}

// One Export call: read one message, hand it to the receiver, answer.
class ExportReactor final : public grpc::ServerGenericBidiReactor {
 public:
  ExportReactor(grpc::GenericCallbackServerContext* context, OtlpReceiver& receiver, const BearerTokenCheck* auth)
      : receiver_(receiver), in_flight_(receiver.TrackRequest(Transport::kGrpc)) {
    std::optional<Signal> signal = SignalForMethod(context->method());
    if (!signal) {
      Refuse(RefuseReason::kNotFound, "unknown method '" + context->method() + "'");
      return;
    }
    if (auth != nullptr && auth->enabled()) {
      auto it = context->client_metadata().find("authorization");
      std::string_view value;
      if (it != context->client_metadata().end()) value = std::string_view(it->second.data(), it->second.size());
      if (!auth->Check(value)) {
        Refuse(RefuseReason::kUnauthenticated, "missing or invalid bearer token");
        return;
      }
    }
    if (receiver.Draining()) {
      Refuse(RefuseReason::kDraining, "receiver is shutting down, retry later");
      return;
    }
    signal_ = *signal;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Cancelled, or gRPC refused the message (over its size limit).
      Refuse(RefuseReason::kAborted, "no request message received");
      return;
    }
    ExportRequest request;
    request.signal = signal_;
    request.transport = Transport::kGrpc;
    request.body = Flatten(request_);
    request_.Clear();
    ExportOutcome outcome = receiver_.Export(std::move(request));
    if (!outcome.status.ok()) {
      Finish(ToGrpcStatus(outcome.status.code(), outcome.status.message(), outcome.retry_after_seconds));
      return;
    }
    std::string bytes = EncodeExportResponse(signal_, outcome.rejected_items, outcome.rejected_message);
    grpc::Slice slice(bytes);
    response_ = grpc::ByteBuffer(&slice, 1);
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  void Refuse(RefuseReason reason, const std::string& message) {
    receiver_.CountRefusal(Transport::kGrpc, reason);
    const StatusCode code = StatusCodeFor(reason);
    Finish(ToGrpcStatus(code, message, code == StatusCode::kUnavailable ? receiver_.options().retry_after_seconds : 0));
  }

  OtlpReceiver& receiver_;
  OtlpReceiver::InFlight in_flight_;
  Signal signal_ = Signal::kTraces;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class ExportService final : public grpc::CallbackGenericService {
 public:
  ExportService(OtlpReceiver& receiver, const BearerTokenCheck* auth) : receiver_(receiver), auth_(auth) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override {
    return new ExportReactor(context, receiver_, auth_);
  }

 private:
  OtlpReceiver& receiver_;
  const BearerTokenCheck* auth_;
};

}  // namespace

Result<std::unique_ptr<OtlpGrpcServer>> OtlpGrpcServer::Start(const OtlpGrpcServerOptions& options,
                                                              OtlpReceiver& receiver, const BearerTokenCheck* auth) {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (options.tls.enabled()) {
    TELKIT_RETURN_IF_ERROR(ValidateTlsFiles(options.tls));
    grpc::SslServerCredentialsOptions ssl(options.tls.client_ca.empty()
                                              ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    TELKIT_ASSIGN_OR_RETURN(std::string cert, ReadSmallFile(options.tls.cert));
    TELKIT_ASSIGN_OR_RETURN(std::string key, ReadSmallFile(options.tls.key));
    if (!options.tls.client_ca.empty()) {
      TELKIT_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadSmallFile(options.tls.client_ca));
    }
    ssl.pem_key_cert_pairs.push_back({key, cert});
    credentials = grpc::SslServerCredentials(ssl);
  } else {
    credentials = grpc::InsecureServerCredentials();
  }

  std::unique_ptr<OtlpGrpcServer> server(new OtlpGrpcServer());
  server->service_ = std::make_unique<ExportService>(receiver, auth);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen.ToString(), credentials, &server->port_);
  builder.RegisterCallbackGenericService(server->service_.get());
  // The hard limit; the receiver applies max_request_bytes below it.
  const uint64_t max_message = std::min<uint64_t>(receiver.options().max_decompressed_bytes, INT32_MAX);
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message));
  builder.SetMaxSendMessageSize(4 << 20);
  // gRPC sets SO_REUSEPORT by default: a second daemon would share the port
  // silently instead of failing to start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, std::max(1, options.max_concurrent_streams));
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    server->server_.reset();
    return UnavailableError("cannot listen on '" + options.listen.ToString() + "' for gRPC" +
                            (options.tls.enabled() ? " (address in use, or unusable TLS certificate or key)"
                                                   : " (address in use or not local)"));
  }
  return server;
}

void OtlpGrpcServer::Shutdown(std::chrono::milliseconds deadline) {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  server_->Shutdown(std::chrono::system_clock::now() + deadline);
  server_->Wait();
}

OtlpGrpcServer::~OtlpGrpcServer() { Shutdown(std::chrono::milliseconds(0)); }

}  // namespace telkit
