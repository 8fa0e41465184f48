// Where tel-batch sends what it made: any stream output (a file, stdout,
// unix:PATH, listen:unix:PATH, fd:N, systemd[:NAME]; common/stream) or an
// OTLP endpoint through common/export/otlp_exporter.h:
//
//   otlp+grpc://HOST:PORT     OTLP/gRPC, plaintext
//   otlp+grpcs://HOST:PORT    OTLP/gRPC over TLS
//   otlp+http://HOST:PORT[/PREFIX]   OTLP/HTTP protobuf (/v1/traces ... appended)
//   otlp+https://HOST:PORT[/PREFIX]  the same over TLS
//   prom-rw+http(s)://HOST:PORT/PATH Prometheus remote write (prom_rw_output.h)
//
// Each output has a thread and a queue of its own (OutputWorker), so a slow
// output does not hold up the others; the memory budget bounds the queues.
// An output "takes" a payload when:
//   - file, pipe: write(2) returned (best effort: no acks);
//   - socket: the StreamOutput accepted it into its resend buffer (it is
//     resent after a reconnect until the peer acknowledges it);
//   - OTLP: the endpoint accepted it. Retryable failures are retried (the
//     exporter's own attempts and backoff, then again after a pause, for as
//     long as it takes: backpressure, not loss); a refusal that is not
//     retryable (INVALID_ARGUMENT, or the rejected part of a partial
//     success) drops the items, counted as export_rejected; frames the
//     exporter cannot send (prom-rw, unknown signals) are dropped, counted
//     as unsupported_signal.
// Thread-safety: OutputSink is used by its worker thread, except Cancel,
// unacked_bytes and connected (any thread). OutputWorker's methods are safe
// from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/base/status.h"
#include "common/export/otlp_exporter.h"
#include "common/export/prom_remote_writer.h"
#include "common/pipeline/pipeline_core.h"
#include "common/pipeline/pipeline_metrics.h"

namespace telkit {

struct OutputTarget {
  enum class Kind { kStream, kOtlp, kPromRw };
  Kind kind = Kind::kStream;
  std::string spec;               // as given
  OtlpExporterOptions exporter;   // kOtlp
  PromRemoteWriterOptions prom_rw;  // kPromRw
};

// Parses an output spec. otlp+SCHEME:// specs take `exporter_defaults` (headers,
// gzip, timeouts, TLS files) and get their endpoint and protocol from the
// spec; anything else is a stream spec (checked when opened).
// INVALID_ARGUMENT for an otlp+ spec with an unknown scheme or no host.
Result<OutputTarget> ParseOutputTarget(std::string_view spec, const OtlpExporterOptions& exporter_defaults);

// What an output reports per payload, beyond success.
struct SendReport {
  DropCounts refused;            // items the output dropped for good (by reason)
  bool refused_frame = false;    // the whole frame was dropped (unsupported signal)
  int failed_attempts = 0;       // exports that failed and were retried
  double export_seconds = -1;    // the successful export's duration; -1 when not an export
};

class OutputSink {
 public:
  virtual ~OutputSink() = default;
  // Hands one payload on, blocking while the output pushes back. OK when the
  // output took it (see above). Errors end the output: the pipeline fails
  // (CANCELLED after Cancel()). `exclusive`: no other output gets this
  // payload, so the sink may move the bytes out of it.
  virtual Status Send(const Dispatch& dispatch, bool exclusive, SendReport* report) = 0;
  // Waits until everything taken is acknowledged (sockets) or `timeout_ms`
  // passed (DEADLINE_EXCEEDED).
  virtual Status Drain(int timeout_ms) = 0;
  // Makes blocked and later Send() calls return CANCELLED.
  virtual void Cancel() = 0;
  // Bytes kept for resending (socket outputs).
  virtual uint64_t unacked_bytes() const { return 0; }
  // False while a socket output has no peer, or an OTLP output's exports fail.
  virtual bool connected() const { return true; }
  // Adds the output's own metrics (labels: output="SPEC"), e.g. a spool's.
  virtual void RegisterMetrics(MetricsRegistry&, const MetricLabels&) {}
};

// Opens the output. `max_unacked_bytes` bounds a socket output's resend
// buffer (0: the stream library's default). The stream's errors (NOT_FOUND,
// PERMISSION_DENIED, ...) or the exporter's (INVALID_ARGUMENT).
Result<std::unique_ptr<OutputSink>> OpenOutputSink(const OutputTarget& target, uint64_t max_unacked_bytes);

// One payload on its way to several outputs.
struct Delivery {
  explicit Delivery(Dispatch d, int outputs) : dispatch(std::move(d)), outputs(outputs), remaining(outputs) {}
  Dispatch dispatch;
  const int outputs;           // how many outputs get it
  std::atomic<int> remaining;  // outputs that have not taken it yet
};

// An output's thread and queue, and its self-metrics (label output="SPEC"):
//   tel_batch_sent_frames_total, tel_batch_sent_items_total,
//   tel_batch_sent_bytes_total {output,signal}
//   tel_batch_export_failures_total{output}      failed export attempts
//   tel_batch_export_seconds_total{output}       time spent in successful exports
//   tel_batch_exports_total{output}              successful exports (seconds / exports = mean latency)
//   tel_batch_output_queue_frames{output}, tel_batch_output_unacked_bytes{output},
//   tel_batch_output_connected{output}          0 while the peer is down / exports fail
// REQUIRES: `metrics` outlives the worker and nothing renders the registry
// after the worker is destroyed (its callbacks point here).
class OutputWorker {
 public:
  // `taken` is called (from the worker thread) for each delivery the output took.
  OutputWorker(std::string name, std::unique_ptr<OutputSink> sink, PipelineMetrics& metrics,
               std::function<void(const std::shared_ptr<Delivery>&)> taken);
  ~OutputWorker();  // Cancel(), Join()

  const std::string& name() const { return name_; }
  OutputSink& sink() { return *sink_; }

  void Push(std::shared_ptr<Delivery> delivery);
  // No more deliveries: the thread ends once its queue is empty.
  void Close();
  // Waits until the queue is empty and nothing is being sent, or `deadline`.
  bool WaitIdle(PipelineClock::time_point deadline);
  // Cancels the sink and drops what is queued (those frames are not acknowledged).
  void Cancel();
  void Join();

  // The error that ended the output; OK while it works (CANCELLED is not an error).
  Status status() const;
  size_t queued() const;

 private:
  void Loop();

  const std::string name_;
  std::unique_ptr<OutputSink> sink_;
  PipelineMetrics& metrics_;
  std::function<void(const std::shared_ptr<Delivery>&)> taken_;

  struct SignalCounters {
    std::atomic<Counter*> frames{nullptr}, items{nullptr}, bytes{nullptr};
  };
  std::array<SignalCounters, kSignalSlots> sent_;
  Counter* export_failures_;
  Counter* exports_;
  std::atomic<double> export_seconds_{0};
  std::mutex counters_mu_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // work queued, closed or cancelled
  std::condition_variable idle_cv_;  // the queue ran empty
  std::deque<std::shared_ptr<Delivery>> queue_;
  bool busy_ = false;
  bool closed_ = false;
  bool cancelled_ = false;
  Status status_;
  std::thread thread_;
};

}  // namespace telkit
