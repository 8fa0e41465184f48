#include "common/recv/otlp_recv_server.h"

#include "common/admin/process_metrics.h"
#include "common/base/malloc_tuning.h"
#include "common/prom/remote_write.h"
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
  if (config.scrape) {
    MetricsRegistry& reg = *server->registry_;
    Counter& scrapes = reg.AddCounter("otlp_recv_scrapes_total", "Scrapes done (stale markers of removed targets too)");
    Counter& failed = reg.AddCounter("otlp_recv_scrape_failures_total", "Scrapes whose target was down (up 0)");
    Counter& refused = reg.AddCounter("otlp_recv_scrape_refused_total",
                                      "Scrapes the queue refused (full, draining): their samples are lost");
    Counter& sd_errors = reg.AddCounter("otlp_recv_scrape_sd_errors_total", "file_sd files that could not be read");
    OtlpReceiver* receiver = server->receiver_.get();
    auto on_error = config.on_scrape_error;
    ScrapeSink sink = [receiver, &scrapes, &failed, &refused, on_error](const ScrapeTarget& target, ScrapeResult& r) {
      scrapes.Increment();
      if (!r.status.ok() && r.status.code() != StatusCode::kCancelled) failed.Increment();
      if (r.series.empty()) return;
      ExportRequest request;
      request.signal = Signal::kPrometheusRemoteWrite;
      request.transport = Transport::kHttp;
      request.format = PayloadFormat::kProtobuf;
      request.encoding = ContentEncoding::kIdentity;
      request.body = EncodeWriteRequest(r.series, r.metadata);
      ExportOutcome outcome = receiver->Export(std::move(request));
      if (!outcome.status.ok()) {
        refused.Increment();
        if (on_error) on_error(Status(outcome.status.code(), "scrape of '" + target.url + "' not forwarded: " +
                                                                 std::string(outcome.status.message())));
      }
    };
    auto sd_sink = [&sd_errors, on_error](const Status& s) {
      sd_errors.Increment();
      if (on_error) on_error(s);
    };
    server->scrape_ = std::make_unique<ScrapeService>(*config.scrape, std::move(sink), std::move(sd_sink));
    ScrapeService* service = server->scrape_.get();
    reg.AddCallback("otlp_recv_scrape_targets", "Targets being scraped", MetricType::kGauge, {},
                    [service] { return static_cast<double>(service->num_targets()); });
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

Status OtlpRecvServer::ReloadScrapeConfig(ScrapeConfigFile config) {
  if (!scrape_) return FailedPreconditionError("no scrape config is configured");
  if (shut_down_) return FailedPreconditionError("shutting down");
  scrape_->Reload(std::move(config));
  return OkStatus();
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
  if (scrape_) scrape_->Stop();
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
