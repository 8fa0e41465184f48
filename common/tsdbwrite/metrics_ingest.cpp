#include "common/tsdbwrite/metrics_ingest.h"

#include "common/otlp/signal.h"
#include "common/prom/remote_write.h"

namespace telkit {
namespace {

OtlpTranslateOptions TranslateOptions(const MetricsIngestOptions& o) {
  OtlpTranslateOptions t;
  t.limits = o.limits;
  t.max_delta_series = o.max_delta_series;
  t.target_info = o.target_info;
  t.scope_labels = o.scope_labels;
  return t;
}

constexpr char kFramesHelp[] = "Telemetry-stream frames read, by signal.";

}  // namespace

MetricsIngester::MetricsIngester(MetricsStore* store, MetricsRegistry* registry, MetricsIngestOptions options)
    : store_(store), registry_(registry), translator_(TranslateOptions(options)), limits_(options.limits) {
  frames_metrics_ = &registry->AddCounter("tsdb_write_frames_total", kFramesHelp, {{"signal", "metrics"}});
  frames_prom_rw_ = &registry->AddCounter("tsdb_write_frames_total", kFramesHelp, {{"signal", "prom-rw"}});
  frames_other_ = &registry->AddCounter("tsdb_write_frames_total", kFramesHelp, {{"signal", "other"}});
  constexpr char kBadHelp[] = "Frames acknowledged without storing anything, by reason.";
  frames_malformed_ = &registry->AddCounter("tsdb_write_frames_dropped_total", kBadHelp, {{"reason", "malformed"}});
  frames_wrong_signal_ =
      &registry->AddCounter("tsdb_write_frames_dropped_total", kBadHelp, {{"reason", "wrong_signal"}});
  acked_ = &registry->AddCounter("tsdb_write_frames_acked_total", "Frames acknowledged (durable or dropped for good).");
  store_failures_ = &registry->AddCounter("tsdb_write_store_failures_total",
                                          "Frames not acknowledged because the store failed to append.");
  // The reasons every operator looks for exist from the start (at 0).
  for (const char* r : {"out_of_order", "out_of_bounds", "duplicate_timestamp", "series_limit"}) Reject(r, 0);
}

void MetricsIngester::Reject(const std::string& reason, uint64_t n) {
  std::lock_guard<std::mutex> lock(rejected_mu_);
  auto it = rejected_.find(reason);
  if (it == rejected_.end()) {
    Counter* c = &registry_->AddCounter("tsdb_write_rejected_total",
                                        "Samples, series, data points or metadata refused, by reason.",
                                        {{"reason", reason}});
    it = rejected_.emplace(reason, c).first;
  }
  it->second->Increment(n);
}

std::map<std::string, uint64_t> MetricsIngester::rejected() const {
  std::lock_guard<std::mutex> lock(rejected_mu_);
  std::map<std::string, uint64_t> out;
  for (const auto& [k, c] : rejected_) {
    if (c->Value() > 0) out[k] = c->Value();
  }
  return out;
}

void MetricsIngester::SetLimits(const LabelLimits& limits) {
  std::lock_guard<std::mutex> lock(limits_mu_);
  limits_ = limits;
}

Status MetricsIngester::Store(std::vector<TimeSeries>& series, const std::vector<MetricMetadata>& metadata) {
  if (series.empty() && metadata.empty()) return OkStatus();
  auto appended = store_->Append(series, metadata);
  if (!appended.ok()) {
    store_failures_->Increment();
    return appended.status();
  }
  for (const auto& [reason, n] : appended->rejected) {
    if (reason != "duplicate") Reject(reason, n);  // duplicates are ignored, not refused
  }
  return OkStatus();
}

Status MetricsIngester::Ingest(const Frame& frame, IngestOutcome* outcome) {
  IngestOutcome ignored;
  std::vector<TimeSeries> series;
  std::vector<MetricMetadata> metadata;
  Decode(frame, &series, &metadata, outcome != nullptr ? outcome : &ignored);
  return Store(series, metadata);
}

Status MetricsIngester::IngestBatch(std::span<const Frame> frames) {
  std::vector<TimeSeries> series;
  std::vector<MetricMetadata> metadata;
  IngestOutcome ignored;
  for (const Frame& f : frames) Decode(f, &series, &metadata, &ignored);
  return Store(series, metadata);
}

void MetricsIngester::Decode(const Frame& frame, std::vector<TimeSeries>* series,
                             std::vector<MetricMetadata>* metadata, IngestOutcome* outcome) {
  *outcome = IngestOutcome::kStored;
  auto count = [&](const RejectCounts& rc) {
    for (int i = 0; i < kPromRejectCount; ++i) {
      if (rc.by_reason[i] > 0) {
        Reject(std::string(PromRejectName(static_cast<PromReject>(i))), static_cast<uint64_t>(rc.by_reason[i]));
      }
    }
  };
  auto move_into = [](auto& from, auto* to) {
    if (to->empty()) {
      *to = std::move(from);
    } else {
      to->insert(to->end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
    }
  };
  switch (frame.signal_enum()) {
    case Signal::kMetrics: {
      frames_metrics_->Increment();
      Result<TranslatedMetrics> r = InternalError("unset");
      {
        std::lock_guard<std::mutex> lock(translate_mu_);
        r = translator_.Translate(frame.payload);
      }
      if (!r.ok()) {
        *outcome = IngestOutcome::kMalformed;
        frames_malformed_->Increment();
        return;
      }
      count(r->rejected);
      move_into(r->series, series);
      move_into(r->metadata, metadata);
      return;
    }
    case Signal::kPrometheusRemoteWrite: {
      frames_prom_rw_->Increment();
      LabelLimits limits;
      {
        std::lock_guard<std::mutex> lock(limits_mu_);
        limits = limits_;
      }
      auto r = DecodeWriteRequest(frame.payload, limits);
      if (!r.ok()) {
        *outcome = IngestOutcome::kMalformed;
        frames_malformed_->Increment();
        return;
      }
      count(r->rejected);
      if (r->dropped_exemplars > 0) Reject("invalid_exemplar", static_cast<uint64_t>(r->dropped_exemplars));
      if (r->dropped_native_histograms > 0) {
        Reject("native_histogram", static_cast<uint64_t>(r->dropped_native_histograms));
      }
      move_into(r->series, series);
      move_into(r->metadata, metadata);
      return;
    }
    default:
      frames_other_->Increment();
      frames_wrong_signal_->Increment();
      *outcome = IngestOutcome::kWrongSignal;
  }
}

}  // namespace telkit
