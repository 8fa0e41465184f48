#include "common/transfer/stream_transfer.h"

#include <ctime>
#include <map>
#include <memory>

#include "common/base/fd.h"
#include "common/otlp/export_messages.h"
#include "common/otlp/payload_summary.h"
#include "common/stream/frame_json.h"
#include "common/stream/json_lines_input.h"

namespace telkit {
namespace {

// Receives stream headers and frames in input order.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual Status OnHeader(const StreamHeader&) { return OkStatus(); }
  // False stops the transfer early (the reader of stdout went away).
  virtual Result<bool> OnFrame(const Frame& frame, TransferStats& stats) = 0;
  virtual Status Finish() { return OkStatus(); }
};

// Writes lines to a descriptor; a reader that went away (EPIPE) ends the
// transfer quietly, as `tel-cat | head` expects.
class LineWriter {
 public:
  explicit LineWriter(int fd) : fd_(fd) {}
  Status Write(std::string_view line) {
    if (closed_) return OkStatus();
    Status s = WriteAll(fd_, line);
    if (s.code() == StatusCode::kUnavailable) {
      closed_ = true;
      return OkStatus();
    }
    return s.WithContext("write output");
  }
  bool closed() const { return closed_; }

 private:
  int fd_;
  bool closed_ = false;
};

class JsonLinesSink final : public FrameSink {
 public:
  JsonLinesSink(int fd, FrameJsonOptions options) : out_(fd), options_(options) {}
  Status OnHeader(const StreamHeader& h) override { return out_.Write(StreamHeaderToJsonLine(h) + "\n"); }
  Result<bool> OnFrame(const Frame& f, TransferStats& stats) override {
    TELKIT_RETURN_IF_ERROR(out_.Write(FrameToJsonLine(f, options_) + "\n"));
    ++stats.frames;
    stats.bytes += f.payload.size();
    return !out_.closed();
  }

 private:
  LineWriter out_;
  FrameJsonOptions options_;
};

std::string FormatTime(uint64_t unix_nano) {
  auto secs = static_cast<std::time_t>(unix_nano / 1000000000ull);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<unsigned>(unix_nano / 1000000ull % 1000));
  return buf;
}

std::string SignalLabel(uint8_t signal) {
  return IsKnownSignal(signal) ? std::string(SignalName(static_cast<Signal>(signal)))
                               : "signal-" + std::to_string(signal);
}

bool IsOtlp(uint8_t signal) {
  return IsKnownSignal(signal) && static_cast<Signal>(signal) != Signal::kPrometheusRemoteWrite;
}

class SummarySink final : public FrameSink {
 public:
  explicit SummarySink(int fd) : out_(fd) {}

  Result<bool> OnFrame(const Frame& f, TransferStats& stats) override {
    std::string label = SignalLabel(f.signal);
    std::string line = "seq=" + std::to_string(f.sequence) + " time=" + FormatTime(f.time_unix_nano) + " " + label +
                       " bytes=" + std::to_string(f.payload.size());
    Total& t = totals_[label];
    ++t.frames;
    t.bytes += f.payload.size();
    if (IsOtlp(f.signal)) {
      Result<PayloadSummary> s = SummarizePayload(f.signal_enum(), f.payload);
      if (s.ok()) {
        t.items += s->total_items;
        line += " " + std::string(ItemNoun(f.signal_enum())) + "=" + std::to_string(s->total_items) +
                " resources=" + std::to_string(s->resources.size()) + " services=";
        for (size_t i = 0; i < s->resources.size(); ++i) {
          const auto& r = s->resources[i];
          line += (i ? "," : "") + (r.service_name.empty() ? std::string("(none)") : r.service_name) + "(" +
                  std::to_string(r.items) + ")";
        }
      } else {
        line += " undecodable: " + s.status().message();
      }
    }
    TELKIT_RETURN_IF_ERROR(out_.Write(line + "\n"));
    ++stats.frames;
    stats.bytes += f.payload.size();
    return !out_.closed();
  }

  Status Finish() override {
    std::string footer = "total:";
    for (const auto& [label, t] : totals_) {
      footer += " " + label + " frames=" + std::to_string(t.frames) + " bytes=" + std::to_string(t.bytes) +
                " items=" + std::to_string(t.items) + ";";
    }
    if (totals_.empty()) footer += " no frames";
    return out_.Write(footer + "\n");
  }

 private:
  struct Total {
    uint64_t frames = 0, bytes = 0, items = 0;
  };
  LineWriter out_;
  std::map<std::string, Total> totals_;
};

class StreamSink final : public FrameSink {
 public:
  explicit StreamSink(std::unique_ptr<StreamOutput> out) : out_(std::move(out)) {}
  Status OnHeader(const StreamHeader& h) override { return out_->StartStream(h.writer_id); }
  Result<bool> OnFrame(const Frame& f, TransferStats& stats) override {
    TELKIT_RETURN_IF_ERROR(out_->Write(f));
    ++stats.frames;
    stats.bytes += f.payload.size();
    return true;
  }
  Status Finish() override { return out_->Drain(30000); }

 private:
  std::unique_ptr<StreamOutput> out_;
};

class SendSink final : public FrameSink {
 public:
  explicit SendSink(std::unique_ptr<OtlpExporter> exporter) : exporter_(std::move(exporter)) {}
  Result<bool> OnFrame(const Frame& f, TransferStats& stats) override {
    if (!IsOtlp(f.signal)) {
      ++stats.frames_skipped;
      return true;
    }
    TELKIT_ASSIGN_OR_RETURN(ExportResult r, exporter_->Export(f.signal_enum(), f.payload));
    stats.rejected_items += static_cast<uint64_t>(r.rejected);
    ++stats.frames;
    stats.bytes += f.payload.size();
    return true;
  }

 private:
  std::unique_ptr<OtlpExporter> exporter_;
};

Result<std::unique_ptr<FrameSink>> MakeSink(const TransferPlan& plan) {
  switch (plan.sink) {
    case TransferSink::kJsonLines: return std::unique_ptr<FrameSink>(new JsonLinesSink(plan.stdout_fd, {.exact = plan.exact_json}));
    case TransferSink::kSummary: return std::unique_ptr<FrameSink>(new SummarySink(plan.stdout_fd));
    case TransferSink::kStream: {
      TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<StreamOutput> out, OpenStreamOutput(plan.out));
      return std::unique_ptr<FrameSink>(new StreamSink(std::move(out)));
    }
    case TransferSink::kSend: {
      TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<OtlpExporter> e, CreateOtlpExporter(plan.send));
      return std::unique_ptr<FrameSink>(new SendSink(std::move(e)));
    }
  }
  return InternalError("unhandled sink");
}

}  // namespace

Result<TransferStats> RunTransfer(const TransferPlan& plan) {
  TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<FrameSink> sink, MakeSink(plan));
  TransferStats stats;
  Status header_status;
  for (const std::string& spec : plan.inputs) {
    StreamInputOptions options = plan.input_options;
    options.on_stream_header = [&](const StreamHeader& h, uint64_t) {
      if (header_status.ok()) header_status = sink->OnHeader(h);
    };
    Result<std::unique_ptr<StreamInput>> in =
        plan.inputs_are_json ? OpenJsonLinesInput(spec, options) : OpenStreamInput(spec, options);
    if (!in.ok()) return in.status().WithContext("input '" + spec + "'");
    bool go_on = true;
    while (go_on) {
      Result<std::optional<Frame>> frame = (*in)->Next();
      TELKIT_RETURN_IF_ERROR(header_status);
      if (!frame.ok()) return frame.status().WithContext("input '" + spec + "'");
      if (!frame->has_value()) break;
      const Frame& f = **frame;
      if (!plan.signals.empty() && !plan.signals.count(f.signal)) {
        ++stats.frames_skipped;
      } else {
        TELKIT_ASSIGN_OR_RETURN(go_on, sink->OnFrame(f, stats));
      }
      (*in)->Acknowledge(f);
    }
    stats.frames_corrupt += (*in)->Stats().frames_corrupt;
    if (!go_on) return stats;
  }
  TELKIT_RETURN_IF_ERROR(sink->Finish());
  return stats;
}

}  // namespace telkit
