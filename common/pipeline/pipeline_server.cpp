#include "common/pipeline/pipeline_server.h"

#include "common/admin/process_metrics.h"
#include "common/base/malloc_tuning.h"

namespace telkit {

void TuneMallocForPipeline() { TuneMalloc(32 << 20, 32 << 20, 2); }

Result<std::unique_ptr<PipelineServer>> PipelineServer::Start(const PipelineServerConfig& config) {
  std::unique_ptr<PipelineServer> server(new PipelineServer());
  server->registry_ = std::make_unique<MetricsRegistry>();
  RegisterProcessMetrics(*server->registry_, "tel-batch");
  TELKIT_ASSIGN_OR_RETURN(server->pipeline_, Pipeline::Start(config.pipeline, *server->registry_));
  if (config.admin) {
    AdminServerOptions admin;
    admin.listen = *config.admin;
    Pipeline* pipeline = server->pipeline_.get();
    admin.ready = [pipeline] { return pipeline->Ready(); };
    Result<std::unique_ptr<AdminServer>> started = AdminServer::Start(admin, *server->registry_);
    if (!started.ok()) return started.status().WithContext("admin endpoint");
    server->admin_ = std::move(*started);
  }
  return server;
}

bool PipelineServer::ReleaseMemoryIfIdle() { return trimmer_.Tick(pipeline_->frames_read(), pipeline_->Idle()); }

Status PipelineServer::Shutdown(std::chrono::milliseconds timeout) {
  if (shut_down_) return OkStatus();
  shut_down_ = true;
  Status status = pipeline_->Shutdown(timeout);
  if (admin_) admin_->Stop();
  return status;
}

PipelineServer::~PipelineServer() {
  if (admin_) admin_->Stop();  // before the pipeline its callbacks read goes away
  if (pipeline_) (void)Shutdown(std::chrono::milliseconds(0));
}

}  // namespace telkit
