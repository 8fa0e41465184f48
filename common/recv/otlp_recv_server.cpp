#include "common/recv/otlp_recv_server.h"

#include "common/admin/process_metrics.h"
#include "common/base/malloc_tuning.h"
#include "common/stream/stream_output.h"

namespace telkit {

void TuneMallocForReceiver() { TuneMalloc(1 << 20, 8 << 20, 2); }

Result<std::unique_ptr<OtlpRecvServer>> OtlpRecvServer::Start(const OtlpRecvConfig& config) {
  TELKIT_RETURN_IF_ERROR(ValidateReceiverOptions(config.receiver));
  if (!config.http && !config.grpc) return InvalidArgumentError("no listener: enable HTTP, gRPC or both");

  std::unique_ptr<OtlpRecvServer> server(new OtlpRecvServer());
  server->registry_ = std::make_unique<MetricsRegistry>();
  RegisterProcessMetrics(*server->registry_, "otlp-recv");

  // A socket output's resend buffer is bounded like the queue: together they
  // hold at most twice --queue-bytes.
  StreamOutputOptions output_options;
  output_options.max_unacked_bytes = config.receiver.queue_capacity_bytes;
  Result<std::unique_ptr<StreamOutput>> output = OpenStreamOutput(config.output, output_options);
  if (!output.ok()) return output.status().WithContext("open output '" + config.output + "'");
  server->receiver_ = std::make_unique<OtlpReceiver>(config.receiver, std::move(*output), *server->registry_);

  if (!config.bearer_token_file.empty()) {
    TELKIT_ASSIGN_OR_RETURN(server->auth_, BearerTokenCheck::FromFile(config.bearer_token_file));
  }
  if (config.http) {
    Result<std::unique_ptr<OtlpHttpServer>> http =
        OtlpHttpServer::Start(*config.http, *server->receiver_, server->auth_.get());
    if (!http.ok()) return http.status().WithContext("OTLP/HTTP");
    server->http_ = std::move(*http);
  }
  if (config.grpc) {
    Result<std::unique_ptr<OtlpGrpcServer>> grpc =
        OtlpGrpcServer::Start(*config.grpc, *server->receiver_, server->auth_.get());
    if (!grpc.ok()) return grpc.status().WithContext("OTLP/gRPC");
    server->grpc_ = std::move(*grpc);
  }
  if (config.admin) {
    AdminServerOptions admin;
    admin.listen = *config.admin;
    OtlpReceiver* receiver = server->receiver_.get();
    admin.ready = [receiver] { return receiver->Ready(); };
    Result<std::unique_ptr<AdminServer>> started = AdminServer::Start(admin, *server->registry_);
    if (!started.ok()) return started.status().WithContext("admin endpoint");
    server->admin_ = std::move(*started);
  }
  return server;
}

Status OtlpRecvServer::ReloadBearerToken() {
  if (!auth_) return FailedPreconditionError("no bearer token file is configured");
  return auth_->Reload();
}

bool OtlpRecvServer::ReleaseMemoryIfIdle() { return trimmer_.Tick(receiver_->RequestsSeen(), receiver_->Idle()); }

Status OtlpRecvServer::Shutdown(std::chrono::milliseconds timeout) {
  if (shut_down_) return OkStatus();
  shut_down_ = true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto remaining = [&] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
  };
  receiver_->StartDrain();
  if (http_) http_->Stop();
  if (grpc_) grpc_->Shutdown(remaining());
  Status status = receiver_->Shutdown(remaining());
  if (admin_) admin_->Stop();
  return status;
}

OtlpRecvServer::~OtlpRecvServer() {
  if (receiver_) (void)Shutdown(std::chrono::milliseconds(0));
}

}  // namespace telkit
