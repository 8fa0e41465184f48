// The whole tel-batch daemon except flags and signals: the pipeline
// (pipeline.h), its self-metrics with the process metrics, and the admin
// endpoint (/healthz, /readyz, /metrics), started together and stopped
// together. tools/tel-batch/main.cpp maps flags onto PipelineServerConfig and
// signals onto these methods.
//
// /readyz is 200 while the pipeline runs: started, not draining, no failed
// input or output.
// Thread-safety: Start, Reconfigure and Shutdown from one thread; the
// accessors from any.
#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "common/base/malloc_tuning.h"
#include "common/admin/admin_server.h"
#include "common/admin/http_server.h"
#include "common/admin/metrics_registry.h"
#include "common/base/status.h"
#include "common/pipeline/pipeline.h"

namespace telkit {

// Process-wide glibc malloc settings suited to tel-batch: payloads (a few
// hundred KiB a frame, up to --batch-max-bytes a batch) come from the heap
// rather than from a fresh mmap each (threshold 32 MiB), up to 32 MiB freed
// at the top of the heap stays for the next frame instead of being trimmed
// and faulted back in, and threads share 2 arenas. Without it the page
// faults cost more CPU than the processing (docs/tel-batch.md "Cost").
// Memory freed by a burst is returned by PipelineServer::ReleaseMemoryIfIdle.
// REQUIRES: called from main() before any thread starts. No-op without glibc.
void TuneMallocForPipeline();

struct PipelineServerConfig {
  PipelineOptions pipeline;
  std::optional<ListenAddress> admin;  // nullopt: no admin endpoint
};

class PipelineServer {
 public:
  // Starts the pipeline, then the admin endpoint. The pipeline's errors;
  // UNAVAILABLE when the admin address cannot be bound.
  // REQUIRES: SIGPIPE is ignored.
  static Result<std::unique_ptr<PipelineServer>> Start(const PipelineServerConfig& config);
  ~PipelineServer();  // Shutdown(0) if not done

  int admin_port() const { return admin_ ? admin_->port() : 0; }
  const MetricsRegistry& registry() const { return *registry_; }

  // See Pipeline.
  bool InputsFinished() const { return pipeline_->InputsFinished(); }
  Status status() const { return pipeline_->status(); }
  void Reconfigure(const ProcessorConfig& config) { pipeline_->Reconfigure(config); }

  // Gives the memory freed by past frames back to the operating system
  // (malloc_trim) once the pipeline has been idle -- no frame read, nothing
  // queued, batched or on its way to an output -- for 2 s; once per
  // idle period. Returns true when it trimmed. Call every second or so, from
  // one thread.
  bool ReleaseMemoryIfIdle();

  // Drains the pipeline (Pipeline::Shutdown), then stops the admin endpoint.
  // Idempotent.
  Status Shutdown(std::chrono::milliseconds timeout);

 private:
  PipelineServer() = default;

  // Destroyed in reverse order: the admin endpoint before what it renders.
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<AdminServer> admin_;
  bool shut_down_ = false;
  IdleMemoryTrimmer trimmer_;  // ReleaseMemoryIfIdle: after 2 s idle
};

}  // namespace telkit
