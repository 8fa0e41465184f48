#include "common/tsdbwrite/metrics_ingest.h"

#include "common/base/utf8.h"
#include "common/otlp/signal.h"
#include "common/prom/remote_write.h"
#include "common/prom/remote_write_wire.h"

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
    : store_(store),
      registry_(registry),
      translator_(TranslateOptions(options)),
      limits_(options.limits),
      max_cached_series_(options.max_cached_series) {
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
  {
    std::lock_guard<std::mutex> lock(limits_mu_);
    limits_ = limits;
  }
  std::lock_guard<std::mutex> lock(cache_mu_);
  cache_.clear();  // its series passed the old limits
}

// What one IngestBatch hands the store: items in frame order, pointing into
// buffers that stay put until Store.
struct MetricsIngester::Batch {
  struct Item {
    const Labels* labels = nullptr;
    uint64_t ref_hint = 0;
    size_t sample_at = 0, samples = 0;
    size_t exemplar_at = 0, exemplars = 0;
    CachedSeries* cached = nullptr;  // to learn the ref (remote write)
  };
  std::vector<std::vector<TimeSeries>> translated;  // OTLP frames
  std::vector<std::shared_ptr<CachedSeries>> held;  // remote-write series of this batch
  std::vector<std::pair<std::string, std::shared_ptr<CachedSeries>>> new_series;  // to cache after the append
  std::vector<Sample> samples;
  std::vector<Exemplar> exemplars;
  std::vector<Item> items;
  std::vector<MetricMetadata> metadata;
  WireSeries scratch;
};

Status MetricsIngester::Store(Batch& b) {
  if (b.items.empty() && b.metadata.empty()) return OkStatus();
  std::vector<SeriesRefAppend> series(b.items.size());
  for (size_t i = 0; i < b.items.size(); ++i) {
    const Batch::Item& it = b.items[i];
    series[i].labels = it.labels;
    series[i].ref_hint = it.ref_hint;
    series[i].samples = std::span<const Sample>(b.samples).subspan(it.sample_at, it.samples);
    series[i].exemplars = std::span<const Exemplar>(b.exemplars).subspan(it.exemplar_at, it.exemplars);
  }
  std::vector<uint64_t> refs(series.size());
  auto appended = store_->AppendRefs(series, b.metadata, refs);
  if (!appended.ok()) {
    store_failures_->Increment();
    return appended.status();
  }
  for (size_t i = 0; i < b.items.size(); ++i) {
    if (b.items[i].cached != nullptr && refs[i] != 0) b.items[i].cached->ref.store(refs[i], std::memory_order_relaxed);
  }
  if (!b.new_series.empty() && max_cached_series_ > 0) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    for (auto& [key, entry] : b.new_series) {
      if (entry->ref.load(std::memory_order_relaxed) == 0) continue;  // refused: judged again next time
      if (cache_.size() >= max_cached_series_) cache_.clear();
      cache_.emplace(std::move(key), std::move(entry));
    }
  }
  for (const auto& [reason, n] : appended->rejected) {
    if (reason != "duplicate") Reject(reason, n);  // duplicates are ignored, not refused
  }
  return OkStatus();
}

Status MetricsIngester::Ingest(const Frame& frame, IngestOutcome* outcome) {
  IngestOutcome ignored;
  Batch batch;
  Decode(frame, &batch, outcome != nullptr ? outcome : &ignored);
  return Store(batch);
}

Status MetricsIngester::IngestBatch(std::span<const Frame> frames) {
  Batch batch;
  IngestOutcome ignored;
  for (const Frame& f : frames) Decode(f, &batch, &ignored);
  return Store(batch);
}

void MetricsIngester::DecodeRemoteWrite(const Frame& frame, Batch* b, IngestOutcome* outcome) {
  frames_prom_rw_->Increment();
  LabelLimits limits;
  {
    std::lock_guard<std::mutex> lock(limits_mu_);
    limits = limits_;
  }
  RejectCounts rejected;
  int64_t dropped_exemplars = 0, histograms = 0;
  const size_t items_before = b->items.size(), samples_before = b->samples.size();
  const size_t exemplars_before = b->exemplars.size(), held_before = b->held.size();
  const size_t new_before = b->new_series.size(), metadata_before = b->metadata.size();
  std::unique_lock<std::mutex> cache_lock(cache_mu_);
  auto on_series = [&](WireSeries& ts) {
    histograms += ts.histograms;
    std::shared_ptr<CachedSeries> entry;
    if (auto it = cache_.find(ts.label_key); it != cache_.end()) {
      entry = it->second;
    } else {
      // New to the cache: judged as DecodeWriteRequest judges a series.
      PromReject reject;
      if (!CheckWireLabels(&ts, limits, &reject)) {
        rejected.Add(reject, "");
        return;
      }
      Result<Labels> labels = WireLabelsToLabels(ts.labels);
      if (!labels.ok()) {
        rejected.Add(PromReject::kDuplicateLabelName, "");
        return;
      }
      entry = std::make_shared<CachedSeries>();
      entry->labels = std::move(labels).value();
      b->new_series.emplace_back(std::string(ts.label_key), entry);
    }
    if (ts.samples.empty()) {
      rejected.Add(PromReject::kNoSamples, "");
      return;
    }
    Batch::Item item;
    item.labels = &entry->labels;
    item.ref_hint = entry->ref.load(std::memory_order_relaxed);
    item.cached = entry.get();
    item.sample_at = b->samples.size();
    item.samples = ts.samples.size();
    b->samples.insert(b->samples.end(), ts.samples.begin(), ts.samples.end());
    item.exemplar_at = b->exemplars.size();
    for (std::string_view e : ts.exemplars) {
      Exemplar exemplar;
      if (!DecodeWireExemplar(e, limits, &exemplar)) {
        ++dropped_exemplars;
        continue;
      }
      b->exemplars.push_back(std::move(exemplar));
    }
    item.exemplars = b->exemplars.size() - item.exemplar_at;
    b->items.push_back(item);
    b->held.push_back(std::move(entry));
  };
  auto on_metadata = [&](const WireMetadata& m) {
    if (m.family.empty() || !IsValidUtf8(m.family) || !IsValidUtf8(m.help) || !IsValidUtf8(m.unit)) {
      rejected.Add(PromReject::kInvalidMetadata, "");
      return;
    }
    b->metadata.push_back(
        {std::string(m.family), FamilyTypeFromProm(m.type), std::string(m.help), std::string(m.unit)});
  };
  Status scanned = ScanWriteRequest(frame.payload, &b->scratch, on_series, on_metadata);
  cache_lock.unlock();
  if (!scanned.ok()) {
    // Nothing of a malformed frame is stored, not even its first series.
    b->items.resize(items_before);
    b->samples.resize(samples_before);
    b->exemplars.resize(exemplars_before);
    b->held.resize(held_before);
    b->new_series.resize(new_before);
    b->metadata.resize(metadata_before);
    *outcome = IngestOutcome::kMalformed;
    frames_malformed_->Increment();
    return;
  }
  for (int i = 0; i < kPromRejectCount; ++i) {
    if (rejected.by_reason[i] > 0) {
      Reject(std::string(PromRejectName(static_cast<PromReject>(i))), static_cast<uint64_t>(rejected.by_reason[i]));
    }
  }
  if (dropped_exemplars > 0) Reject("invalid_exemplar", static_cast<uint64_t>(dropped_exemplars));
  if (histograms > 0) Reject("native_histogram", static_cast<uint64_t>(histograms));
}

void MetricsIngester::Decode(const Frame& frame, Batch* b, IngestOutcome* outcome) {
  *outcome = IngestOutcome::kStored;
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
      for (int i = 0; i < kPromRejectCount; ++i) {
        if (r->rejected.by_reason[i] > 0) {
          Reject(std::string(PromRejectName(static_cast<PromReject>(i))),
                 static_cast<uint64_t>(r->rejected.by_reason[i]));
        }
      }
      b->translated.push_back(std::move(r->series));
      for (const TimeSeries& ts : b->translated.back()) {
        Batch::Item item;
        item.labels = &ts.labels;
        item.sample_at = b->samples.size();
        item.samples = ts.samples.size();
        b->samples.insert(b->samples.end(), ts.samples.begin(), ts.samples.end());
        item.exemplar_at = b->exemplars.size();
        item.exemplars = ts.exemplars.size();
        b->exemplars.insert(b->exemplars.end(), ts.exemplars.begin(), ts.exemplars.end());
        b->items.push_back(item);
      }
      b->metadata.insert(b->metadata.end(), std::make_move_iterator(r->metadata.begin()),
                         std::make_move_iterator(r->metadata.end()));
      return;
    }
    case Signal::kPrometheusRemoteWrite:
      DecodeRemoteWrite(frame, b, outcome);
      return;
    default:
      frames_other_->Increment();
      frames_wrong_signal_->Increment();
      *outcome = IngestOutcome::kWrongSignal;
  }
}

}  // namespace telkit
