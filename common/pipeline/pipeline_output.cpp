#include "common/pipeline/pipeline_output.h"

#include <algorithm>

#include "common/net/unix_socket.h"
#include "common/otlp/export_messages.h"
#include "common/pipeline/prom_rw_output.h"
#include "common/stream/endpoint.h"
#include "common/stream/stream_output.h"

namespace telkit {
namespace {

// Any stream output; a frame is taken once StreamOutput::Write returned.
class StreamSink final : public OutputSink {
 public:
  StreamSink(std::unique_ptr<StreamOutput> out, bool socket) : out_(std::move(out)), socket_(socket) {}

  Status Send(const Dispatch& d, bool exclusive, SendReport*) override {
    Frame f;
    f.signal = d.signal;
    f.time_unix_nano = d.time_unix_nano;
    f.payload = exclusive ? std::move(*d.payload) : *d.payload;
    return out_->Write(std::move(f));
  }
  Status Drain(int timeout_ms) override { return out_->Drain(timeout_ms); }
  void Cancel() override { out_->Cancel(); }
  uint64_t unacked_bytes() const override { return socket_ ? out_->Stats().unacked_bytes : 0; }
  bool connected() const override { return !socket_ || out_->Stats().connected; }

 private:
  std::unique_ptr<StreamOutput> out_;
  const bool socket_;
};

// An OTLP endpoint. Retryable failures are retried until they succeed or
// the sink is cancelled: the exporter's own attempts, then a pause that
// doubles from 1 s to 30 s.
class ExportSink final : public OutputSink {
 public:
  explicit ExportSink(std::unique_ptr<OtlpExporter> exporter) : exporter_(std::move(exporter)) {}

  Status Send(const Dispatch& d, bool, SendReport* report) override {
    if (!IsKnownSignal(d.signal) || !IsOtlpSignal(static_cast<Signal>(d.signal))) {
      report->refused_frame = true;
      report->refused.Add(DropReason::kUnsupportedSignal, d.items);
      return OkStatus();
    }
    int pause_ms = 1000;
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (cancelled_) return CancelledError("output cancelled");
      }
      const auto start = PipelineClock::now();
      Result<ExportResult> r = exporter_->Export(static_cast<Signal>(d.signal), *d.payload);
      healthy_.store(r.ok() || r.status().code() == StatusCode::kInvalidArgument);
      if (r.ok()) {
        report->export_seconds = std::chrono::duration<double>(PipelineClock::now() - start).count();
        if (r->rejected > 0) report->refused.Add(DropReason::kExportRejected, std::min(r->rejected, d.items));
        return OkStatus();
      }
      ++report->failed_attempts;
      if (r.status().code() == StatusCode::kInvalidArgument) {  // refused for good
        report->refused.Add(DropReason::kExportRejected, d.items);
        return OkStatus();
      }
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(pause_ms), [&] { return cancelled_; });
      pause_ms = std::min(pause_ms * 2, 30000);
    }
  }
  Status Drain(int) override { return OkStatus(); }  // Send returns only once the endpoint answered
  // False while exports fail and are being retried.
  bool connected() const override { return healthy_.load(); }
  void Cancel() override {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::unique_ptr<OtlpExporter> exporter_;
  std::atomic<bool> healthy_{true};
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
};

// tail_sampling's completions of frames whose spans went out earlier: no
// items, no bytes, only their place in the queue matters.
bool IsBarrier(const Dispatch& d) { return d.items == 0 && d.payload && d.payload->empty(); }

MetricLabels OutputLabels(const std::string& name, uint8_t signal) {
  return {{"output", name}, {"signal", std::string(SignalLabel(signal))}};
}

}  // namespace

Result<OutputTarget> ParseOutputTarget(std::string_view spec, const OtlpExporterOptions& exporter_defaults) {
  OutputTarget t;
  t.spec = std::string(spec);
  if (IsPromRwOutputSpec(spec)) {
    t.kind = OutputTarget::Kind::kPromRw;
    TELKIT_ASSIGN_OR_RETURN(t.prom_rw, ParsePromRwOutputSpec(spec, exporter_defaults));
    return t;
  }
  if (!spec.starts_with("otlp+")) return t;
  t.kind = OutputTarget::Kind::kOtlp;
  t.exporter = exporter_defaults;
  const size_t sep = spec.find("://");
  const std::string scheme(spec.substr(5, sep == std::string_view::npos ? 0 : sep - 5));
  const std::string rest(sep == std::string_view::npos ? "" : spec.substr(sep + 3));
  if (sep == std::string_view::npos || rest.empty() || rest.front() == '/') {
    return InvalidArgumentError("output '" + t.spec + "' is not otlp+SCHEME://HOST:PORT");
  }
  if (scheme == "grpc" || scheme == "grpcs") {
    t.exporter.protocol = OtlpProtocol::kGrpc;
    t.exporter.endpoint = (scheme == "grpc" ? "http://" : "https://") + rest;
  } else if (scheme == "http" || scheme == "https") {
    t.exporter.protocol = OtlpProtocol::kHttpProtobuf;
    t.exporter.endpoint = scheme + "://" + rest;
  } else {
    return InvalidArgumentError("output '" + t.spec + "': unknown scheme 'otlp+" + scheme +
                                "' (otlp+grpc, otlp+grpcs, otlp+http, otlp+https)");
  }
  return t;
}

Result<std::unique_ptr<OutputSink>> OpenOutputSink(const OutputTarget& target, uint64_t max_unacked_bytes) {
  if (target.kind == OutputTarget::Kind::kPromRw) return OpenPromRwSink(target.prom_rw);
  if (target.kind == OutputTarget::Kind::kOtlp) {
    TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<OtlpExporter> e, CreateOtlpExporter(target.exporter));
    return std::unique_ptr<OutputSink>(new ExportSink(std::move(e)));
  }
  TELKIT_ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(target.spec));
  bool socket = endpoint.kind == Endpoint::Kind::kUnixConnect || endpoint.kind == Endpoint::Kind::kUnixListen;
  if (endpoint.kind == Endpoint::Kind::kFd) socket = IsSocket(endpoint.fd);
  StreamOutputOptions options;
  if (max_unacked_bytes > 0) options.max_unacked_bytes = max_unacked_bytes;
  TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<StreamOutput> out, OpenStreamOutput(target.spec, options));
  if (endpoint.kind == Endpoint::Kind::kSystemd) socket = true;  // systemd passes sockets only
  return std::unique_ptr<OutputSink>(new StreamSink(std::move(out), socket));
}

OutputWorker::OutputWorker(std::string name, std::unique_ptr<OutputSink> sink, PipelineMetrics& metrics,
                           std::function<void(const std::shared_ptr<Delivery>&)> taken)
    : name_(std::move(name)), sink_(std::move(sink)), metrics_(metrics), taken_(std::move(taken)) {
  MetricsRegistry& r = metrics_.registry();
  const MetricLabels labels = {{"output", name_}};
  export_failures_ = &r.AddCounter("tel_batch_export_failures_total",
                                   "Failed OTLP export calls (after the exporter's own attempts)", labels);
  exports_ = &r.AddCounter("tel_batch_exports_total", "Successful OTLP exports", labels);
  r.AddCallback("tel_batch_export_seconds_total", "Time spent in successful OTLP exports", MetricType::kCounter,
                labels, [this] { return export_seconds_.load(); });
  r.AddCallback("tel_batch_output_queue_frames", "Payloads waiting for the output", MetricType::kGauge, labels,
                [this] { return static_cast<double>(queued()); });
  r.AddCallback("tel_batch_output_unacked_bytes", "Bytes a socket output keeps until its peer acknowledges them",
                MetricType::kGauge, labels, [this] { return static_cast<double>(sink_->unacked_bytes()); });
  r.AddCallback("tel_batch_output_connected", "1 while the output has its peer (always 1 for files and pipes)",
                MetricType::kGauge, labels, [this] { return sink_->connected() ? 1.0 : 0.0; });
  sink_->RegisterMetrics(r, labels);
  thread_ = std::thread([this] { Loop(); });
}

OutputWorker::~OutputWorker() {
  Cancel();
  Join();
}

void OutputWorker::Push(std::shared_ptr<Delivery> delivery) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(delivery));
  }
  cv_.notify_one();
}

void OutputWorker::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

bool OutputWorker::WaitIdle(PipelineClock::time_point deadline) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_until(lock, deadline, [&] { return (queue_.empty() && !busy_) || !status_.ok() || cancelled_; });
}

void OutputWorker::Cancel() {
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    queue_.clear();
  }
  sink_->Cancel();
  cv_.notify_all();
  idle_cv_.notify_all();
}

void OutputWorker::Join() {
  if (thread_.joinable()) thread_.join();
}

Status OutputWorker::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

size_t OutputWorker::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size() + (busy_ ? 1 : 0);
}

void OutputWorker::Loop() {
  for (;;) {
    std::shared_ptr<Delivery> d;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return cancelled_ || closed_ || !queue_.empty(); });
      if (cancelled_ || queue_.empty()) {  // cancelled, or closed and done
        idle_cv_.notify_all();
        return;
      }
      d = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    if (IsBarrier(d->dispatch)) {  // nothing to send: taken in queue order
      taken_(d);
      std::lock_guard lock(mu_);
      busy_ = false;
      if (queue_.empty()) idle_cv_.notify_all();
      continue;
    }
    SendReport report;
    const uint8_t signal = d->dispatch.signal;
    const uint64_t bytes = d->dispatch.payload ? d->dispatch.payload->size() : 0;  // Send may move the bytes
    Status s = sink_->Send(d->dispatch, d->outputs == 1, &report);
    if (report.failed_attempts > 0) export_failures_->Increment(static_cast<uint64_t>(report.failed_attempts));
    if (report.export_seconds >= 0) {
      exports_->Increment();
      export_seconds_.fetch_add(report.export_seconds);
    }
    metrics_.CountDrops(signal, report.refused);
    if (report.refused_frame) metrics_.dropped_frames(signal, DropReason::kUnsupportedSignal).Increment();
    if (s.ok()) {
      if (!report.refused_frame) {
        SignalCounters& c = sent_[SignalSlot(signal)];
        if (c.frames.load() == nullptr) {
          std::lock_guard lock(counters_mu_);
          MetricsRegistry& r = metrics_.registry();
          const MetricLabels labels = OutputLabels(name_, signal);
          c.items.store(&r.AddCounter("tel_batch_sent_items_total", "Items the output took", labels));
          c.bytes.store(&r.AddCounter("tel_batch_sent_bytes_total", "Payload bytes the output took", labels));
          c.frames.store(&r.AddCounter("tel_batch_sent_frames_total", "Frames the output took", labels));
        }
        int64_t refused = 0;
        for (int64_t n : report.refused.items) refused += n;
        c.frames.load()->Increment();
        c.items.load()->Increment(static_cast<uint64_t>(std::max<int64_t>(0, d->dispatch.items - refused)));
        c.bytes.load()->Increment(bytes);
      }
      taken_(d);
    }
    std::lock_guard lock(mu_);
    busy_ = false;
    if (!s.ok()) {
      if (s.code() != StatusCode::kCancelled) status_ = s.WithContext("output '" + name_ + "'");
      cancelled_ = true;  // this output is finished; its frames stay unacknowledged
      queue_.clear();
      idle_cv_.notify_all();
      return;
    }
    if (queue_.empty()) idle_cv_.notify_all();
  }
}

}  // namespace telkit
