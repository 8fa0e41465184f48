// tel-batch's pipeline: inputs, the processor chain, outputs, and the
// acknowledgements that tie them together.
//
//   input 1 ─ reader ─┐                                 ┌─ output worker ─ file / socket / OTLP
//   input 2 ─ reader ─┼─ memory budget ─ queue ─ core ──┼─ output worker ─ ...
//   listen:unix: (any number of upstreams)              └─ ...
//
// One reader thread per input takes frames once the memory budget
// (memory_budget.h) lets it; one pipeline thread runs the PipelineCore
// (processors, batching) and hands each payload to the outputs of its
// signal; each output has its own thread (pipeline_output.h).
//
// Routing: traces go to `traces_out`, metrics and prom-rw frames to
// `metrics_out`, logs to `logs_out`; a signal whose list is empty goes to
// `out`, as do frames of unknown signals. Every output of a list gets every
// payload (fan-out); a spec named in several lists is one output.
//
// Acknowledgement: an input frame is acknowledged (on sockets: the ack
// record goes back to its writer) once every output it was routed to has
// taken the payload that carries it, or once it was dropped by policy
// (AckTracker keeps acks in order per connection). What "taken" means per
// output is in pipeline_output.h; for a socket output it is "in the
// StreamOutput's resend buffer", which is memory: until the on-disk spool
// exists, a frame acknowledged upstream but not yet acknowledged downstream
// is lost if tel-batch itself dies (kill -9, OOM). A restart of the
// downstream loses nothing (the buffer is resent), a restart of the upstream
// loses nothing (it resends what tel-batch had not acknowledged), and a
// graceful stop (Shutdown) waits for the downstream acks. Pipes and files
// have no acks at all: best effort.
//
// Thread-safety: Start, Reconfigure and Shutdown from one thread; the
// accessors from any.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/admin/metrics_registry.h"
#include "common/base/status.h"
#include "common/export/otlp_exporter.h"
#include "common/pipeline/ack_tracker.h"
#include "common/pipeline/memory_budget.h"
#include "common/pipeline/pipeline_config.h"
#include "common/pipeline/pipeline_core.h"
#include "common/pipeline/pipeline_metrics.h"
#include "common/pipeline/pipeline_output.h"
#include "common/pipeline/spool_sink.h"
#include "common/stream/stream_input.h"

namespace telkit {

struct PipelineOptions {
  std::vector<std::string> inputs = {"-"};  // stream input specs (common/stream/endpoint.h)
  std::vector<std::string> out;             // default route
  std::vector<std::string> traces_out, metrics_out, logs_out;
  OtlpExporterOptions exporter;             // defaults of otlp+ outputs (headers, gzip, TLS, timeout)
  ProcessorConfig processors;               // from CompileProcessors
  CorruptionPolicy on_corruption = CorruptionPolicy::kSkip;
  uint32_t max_frame_bytes = 64u << 20;
  // --spool-dir: socket outputs keep their unacknowledged frames on disk
  // (spool_sink.h) instead of in memory. Empty dir: no spool.
  SpoolSettings spool;
  // Called for every corrupt input frame (from reader threads).
  std::function<void(const Status&)> on_corruption_report;
};

// tel-batch --export-header K=V items as exporter headers (V may be empty or
// hold '='). INVALID_ARGUMENT "--export-header 'H' is not K=V" otherwise.
Result<std::vector<std::pair<std::string, std::string>>> ParseExportHeaders(const std::vector<std::string>& items);

// Checks every output spec of `options` (all four routes) before anything
// opens: ParseOutputTarget with the exporter defaults, and the Loki sink's
// own checks for loki specs. The first spec's error.
Status ValidateOutputSpecs(const PipelineOptions& options);

class Pipeline {
 public:
  // Opens the outputs and inputs and starts every thread.
  // INVALID_ARGUMENT for no output at all or a bad output spec; the inputs'
  // and outputs' errors otherwise, with the spec as context.
  // REQUIRES: SIGPIPE is ignored; `registry` outlives the pipeline and is
  // not rendered after it is destroyed (its callbacks point here).
  static Result<std::unique_ptr<Pipeline>> Start(const PipelineOptions& options, MetricsRegistry& registry);
  ~Pipeline();  // Shutdown(0) if not done

  // True once every input ended (pipes, files: EOF) and every frame read was
  // handed to the outputs. Shutdown then drains the outputs.
  bool InputsFinished() const { return pipeline_done_.load(); }
  // The error that stops the pipeline (an output failed, an input failed or
  // hit corruption with CorruptionPolicy::kFail); OK while it works.
  Status status() const;
  // Serving: started, not draining, no failure (for /readyz). An output
  // whose peer is down does not make the pipeline unready: it buffers, and
  // tel_batch_output_connected says so.
  bool Ready() const;

  // Replaces the processor chain (memory limits included): open batches are
  // flushed first. Applied by the pipeline thread before the next frame.
  // REQUIRES: config from CompileProcessors with the same max_frame_bytes.
  void Reconfigure(const ProcessorConfig& config);

  // Graceful stop: stop reading, process and flush everything read, wait
  // for every output to take its payloads and (sockets) for the peers'
  // acknowledgements. Bounded by `timeout`: then the outputs are cancelled
  // and DEADLINE_EXCEEDED says what was left. Returns status() if it failed.
  // Idempotent.
  Status Shutdown(std::chrono::milliseconds timeout);

  // Frames read so far, and whether nothing is held (queued, batched or on
  // its way to an output): for ReleaseMemoryIfIdle.
  uint64_t frames_read() const { return frames_read_.load(); }
  bool Idle() const { return budget_.held() == 0; }

  // For tests and metrics.
  PipelineMetrics& metrics() const { return *metrics_; }
  uint64_t memory_in_use() const { return budget_.in_use(); }

 private:
  struct Queued {
    Frame frame;
    uint64_t ack_id;
    uint64_t held_bytes;
  };

  Pipeline(const PipelineOptions& options, MetricsRegistry& registry);
  Status Open();
  void RegisterMetrics();
  void ReadLoop(size_t input);
  void PipelineLoop();
  void Dispatch(telkit::Dispatch d);
  void Taken(const std::shared_ptr<Delivery>& delivery);
  void Complete(const telkit::Dispatch& d);
  void Fail(const Status& s);

  const PipelineOptions options_;
  std::unique_ptr<PipelineMetrics> metrics_;
  MemoryBudget budget_;
  AckTracker acks_;

  std::vector<std::unique_ptr<StreamInput>> inputs_;
  std::vector<std::unique_ptr<OutputWorker>> workers_;
  // Outputs by route: traces, metrics (and prom-rw), logs, default.
  std::array<std::vector<OutputWorker*>, 4> routes_;
  std::unique_ptr<PipelineCore> core_;

  mutable std::mutex mu_;
  std::condition_variable cv_;        // queue, readers done, reconfiguration
  std::condition_variable space_cv_;  // room in the queue, or stopping
  std::deque<Queued> queue_;
  uint64_t queue_bytes_ = 0;
  bool stopping_ = false;
  size_t readers_running_ = 0;
  std::optional<ProcessorConfig> pending_config_;
  Status status_;

  std::atomic<uint64_t> frames_read_{0};
  std::atomic<bool> draining_{false};
  std::atomic<bool> pipeline_done_{false};
  bool shut_down_ = false;
  std::vector<std::thread> readers_;
  std::thread pipeline_thread_;
};

}  // namespace telkit
