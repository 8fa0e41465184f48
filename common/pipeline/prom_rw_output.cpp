#include "common/pipeline/prom_rw_output.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <span>

#include "common/pipeline/pipeline_output.h"
#include "common/prom/otlp_translate.h"
#include "common/prom/remote_write.h"

namespace telkit {
namespace {

constexpr size_t kMaxSamplesPerRequest = 5000;
constexpr std::string_view kPrefix = "prom-rw+";

// WriteRequests of at most kMaxSamplesPerRequest samples (a series with more
// goes alone); the metadata rides with the first.
std::vector<std::string> SplitRequests(const TranslatedMetrics& t) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin < t.series.size() || (out.empty() && !t.metadata.empty())) {
    size_t end = begin;
    size_t samples = 0;
    while (end < t.series.size() && (end == begin || samples + t.series[end].samples.size() <= kMaxSamplesPerRequest)) {
      samples += t.series[end].samples.size();
      ++end;
    }
    std::span<const MetricMetadata> metadata;
    if (out.empty()) metadata = t.metadata;
    out.push_back(EncodeWriteRequest(std::span(t.series).subspan(begin, end - begin), metadata));
    begin = end;
  }
  return out;
}

class PromRwSink final : public OutputSink {
 public:
  explicit PromRwSink(std::unique_ptr<PromRemoteWriter> writer) : writer_(std::move(writer)) {}

  Status Send(const Dispatch& d, bool, SendReport* report) override {
    std::vector<std::string> requests;
    int64_t refused = 0;
    if (d.signal == static_cast<uint8_t>(Signal::kMetrics)) {
      Result<TranslatedMetrics> t = translator_.Translate(*d.payload);
      if (!t.ok()) {
        report->refused.Add(DropReason::kMalformed, d.items);
        return OkStatus();
      }
      refused = std::min(t->rejected.Total(), d.items);
      requests = SplitRequests(*t);
    } else if (d.signal == static_cast<uint8_t>(Signal::kPrometheusRemoteWrite)) {
      requests.push_back(*d.payload);
    } else {
      report->refused_frame = true;
      report->refused.Add(DropReason::kUnsupportedSignal, d.items);
      return OkStatus();
    }
    const auto start = PipelineClock::now();
    bool rejected = false;
    for (const std::string& request : requests) {
      int pause_ms = 1000;
      for (;;) {
        {
          std::lock_guard lock(mu_);
          if (cancelled_) return CancelledError("output cancelled");
        }
        Result<int> r = writer_->Write(request);
        healthy_.store(r.ok() || r.status().code() == StatusCode::kInvalidArgument);
        if (r.ok()) break;
        ++report->failed_attempts;
        if (r.status().code() == StatusCode::kInvalidArgument) {  // refused for good
          rejected = true;
          break;
        }
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(pause_ms), [&] { return cancelled_; });
        pause_ms = std::min(pause_ms * 2, 30000);
      }
    }
    if (rejected) refused = d.items;
    if (refused > 0) report->refused.Add(DropReason::kExportRejected, refused);
    if (!requests.empty()) {
      report->export_seconds = std::chrono::duration<double>(PipelineClock::now() - start).count();
    }
    return OkStatus();
  }
  Status Drain(int) override { return OkStatus(); }  // Send returns once the receiver answered
  bool connected() const override { return healthy_.load(); }
  void Cancel() override {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::unique_ptr<PromRemoteWriter> writer_;
  OtlpTranslator translator_;  // used by the output's one worker thread
  std::atomic<bool> healthy_{true};
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
};

}  // namespace

bool IsPromRwOutputSpec(std::string_view spec) { return spec.starts_with(kPrefix); }

Result<PromRemoteWriterOptions> ParsePromRwOutputSpec(std::string_view spec,
                                                      const OtlpExporterOptions& exporter_defaults) {
  const std::string_view url = spec.substr(kPrefix.size());
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    return InvalidArgumentError("output '" + std::string(spec) +
                                "': use prom-rw+http://HOST:PORT/PATH or prom-rw+https://HOST:PORT/PATH");
  }
  PromRemoteWriterOptions o;
  o.url = std::string(url);
  o.headers = exporter_defaults.headers;
  o.ca_file = exporter_defaults.ca_file;
  o.insecure_skip_verify = exporter_defaults.insecure_skip_verify;
  o.timeout_ms = exporter_defaults.timeout_ms;
  o.max_attempts = exporter_defaults.max_attempts;
  o.initial_backoff_ms = exporter_defaults.initial_backoff_ms;
  o.max_backoff_ms = exporter_defaults.max_backoff_ms;
  Result<std::unique_ptr<PromRemoteWriter>> check = PromRemoteWriter::Create(o);
  if (!check.ok()) return check.status().WithContext("output '" + std::string(spec) + "'");
  return o;
}

Result<std::unique_ptr<OutputSink>> OpenPromRwSink(const PromRemoteWriterOptions& options) {
  TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<PromRemoteWriter> writer, PromRemoteWriter::Create(options));
  return std::unique_ptr<OutputSink>(new PromRwSink(std::move(writer)));
}

}  // namespace telkit
