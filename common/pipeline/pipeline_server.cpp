#include "common/pipeline/pipeline_server.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common/admin/process_metrics.h"

namespace telkit {

void TuneMallocForPipeline() {
#if defined(__GLIBC__)
  // Setting either threshold also turns off glibc's dynamic adjustment.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  mallopt(M_ARENA_MAX, 2);
#endif
}

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

bool PipelineServer::ReleaseMemoryIfIdle(std::chrono::milliseconds idle_for) {
  const auto now = std::chrono::steady_clock::now();
  const uint64_t seen = pipeline_->frames_read();
  if (seen != frames_seen_ || !pipeline_->Idle()) {
    frames_seen_ = seen;
    last_activity_ = now;
    trimmed_ = false;
    return false;
  }
  if (trimmed_ || now - last_activity_ < idle_for) return false;
  trimmed_ = true;
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  return true;
}

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
