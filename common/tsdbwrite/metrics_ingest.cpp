#include "common/tsdbwrite/metrics_ingest.h"

#include <bit>
#include <cstring>
#include <deque>

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
  if (batches_in_flight_ == 0) {
    cache_.Clear();  // its series passed the old limits
  } else {
    clear_cache_ = true;  // at the end of the batches in flight
  }
}

// ---- SeriesCache

void MetricsIngester::SeriesCache::PrefetchSlot(uint64_t hash) const {
  if (!slots_.empty()) __builtin_prefetch(&slots_[hash & (slots_.size() - 1)]);
}

void MetricsIngester::SeriesCache::PrefetchKey(uint64_t hash) const {
  if (slots_.empty()) return;
  const Slot& slot = slots_[hash & (slots_.size() - 1)];
  if (slot.used && slot.hash == hash) __builtin_prefetch(keys_.data() + slot.key_at);
}

MetricsIngester::SeriesCache::Slot* MetricsIngester::SeriesCache::Find(std::string_view key, uint64_t hash) {
  if (slots_.empty()) return nullptr;
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    Slot& slot = slots_[i];
    if (!slot.used) return nullptr;
    if (slot.hash == hash && slot.key_len == key.size() &&
        std::memcmp(keys_.data() + slot.key_at, key.data(), key.size()) == 0) {
      return &slot;
    }
  }
}

MetricsIngester::SeriesCache::Slot* MetricsIngester::SeriesCache::Insert(std::string_view key, uint64_t hash) {
  if (slots_.size() < (size_ + 1) * 2) {  // load factor <= 1/2
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(64, std::bit_ceil((size_ + 1) * 4)), Slot{});
    const size_t mask = slots_.size() - 1;
    for (const Slot& o : old) {
      if (!o.used) continue;
      size_t i = o.hash & mask;
      while (slots_[i].used) i = (i + 1) & mask;
      slots_[i] = o;
    }
  }
  const size_t mask = slots_.size() - 1;
  size_t i = hash & mask;
  while (slots_[i].used) i = (i + 1) & mask;
  Slot& slot = slots_[i];
  slot.hash = hash;
  slot.ref = 0;
  slot.key_at = static_cast<uint32_t>(keys_.size());
  slot.key_len = static_cast<uint32_t>(key.size());
  keys_.append(key);
  slot.used = true;
  ++size_;
  return &slot;
}

void MetricsIngester::SeriesCache::Clear() {
  std::vector<Slot>().swap(slots_);
  std::string().swap(keys_);
  size_ = 0;
}

// What one IngestBatch hands the store: items in frame order, pointing into
// buffers that stay put until Store (and, for cached series, into the
// cache, which is not emptied while a batch is in flight).
struct MetricsIngester::Batch {
  struct Item {
    const Labels* labels = nullptr;
    uint64_t ref_hint = 0;
    size_t sample_at = 0, samples = 0;
    size_t exemplar_at = 0, exemplars = 0;
    // Remote write: the cache key, to learn the ref after the append, and
    // the series' message, to parse its labels again if the ref is stale.
    bool remote_write = false;
    std::string_view key;
    uint64_t hash = 0;
    std::string_view message;
    std::unique_ptr<Labels> fresh;  // parsed here (not in the cache, or its ref unknown yet)
  };
  // Remote-write series of a frame between the scan and the cache lookups.
  struct Scanned {
    std::string_view key;
    uint64_t hash = 0;
    std::string_view message;
    size_t sample_at = 0, samples = 0;
    size_t exemplar_view_at = 0, exemplar_views = 0;
  };
  std::vector<std::vector<TimeSeries>> translated;  // OTLP frames
  std::deque<std::string> key_copies;               // keys not adjacent in their frame
  std::vector<Sample> samples;
  std::vector<Exemplar> exemplars;
  std::vector<Item> items;
  std::vector<MetricMetadata> metadata;
  std::vector<Scanned> scanned;
  std::vector<std::string_view> exemplar_views;
  WireSeries scratch;
};

void MetricsIngester::BeginBatch() {
  std::lock_guard<std::mutex> lock(cache_mu_);
  ++batches_in_flight_;
}

void MetricsIngester::EndBatch(Batch* b, const std::vector<uint64_t>* refs) {
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (refs != nullptr && max_cached_series_ > 0) {
    for (size_t i = 0; i < b->items.size(); ++i) {
      Batch::Item& it = b->items[i];
      const uint64_t ref = (*refs)[i];
      if (!it.remote_write || ref == 0 || ref == it.ref_hint) continue;
      SeriesCache::Slot* slot = cache_.Find(it.key, it.hash);
      if (slot == nullptr && it.fresh != nullptr) {  // parsed and checked: cache it
        if (cache_.size() >= max_cached_series_) {
          if (batches_in_flight_ > 1) continue;  // others may point into it
          cache_.Clear();
        }
        slot = cache_.Insert(it.key, it.hash);
      }
      if (slot != nullptr) slot->ref = ref;
    }
  }
  if (--batches_in_flight_ == 0 && clear_cache_) {
    cache_.Clear();
    clear_cache_ = false;
  }
}

Status MetricsIngester::Store(Batch& b) {
  if (b.items.empty() && b.metadata.empty()) {
    EndBatch(&b, nullptr);
    return OkStatus();
  }
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
  if (appended.ok() && !appended->unknown_refs.empty()) {
    // Cached refs the head no longer knows: once more, with their labels
    // parsed again from the frames (which are still here).
    LabelLimits limits;
    {
      std::lock_guard<std::mutex> lock(limits_mu_);
      limits = limits_;
    }
    RejectCounts rejected;
    std::vector<SeriesRefAppend> again;
    std::vector<size_t> at;
    for (size_t i : appended->unknown_refs) {
      Batch::Item& it = b.items[i];
      it.ref_hint = 0;
      it.fresh = ParseCheckedLabels(it.message, limits, &b, &rejected);
      if (it.fresh == nullptr) continue;
      it.labels = it.fresh.get();
      SeriesRefAppend s = series[i];
      s.labels = it.labels;
      s.ref_hint = 0;
      again.push_back(s);
      at.push_back(i);
    }
    std::vector<uint64_t> again_refs(again.size());
    auto second = store_->AppendRefs(again, {}, again_refs);
    if (!second.ok()) {
      appended = second.status();
    } else {
      for (size_t j = 0; j < at.size(); ++j) refs[at[j]] = again_refs[j];
      for (const auto& [reason, n] : second->rejected) appended->rejected[reason] += n;
      for (int r = 0; r < kPromRejectCount; ++r) {
        if (rejected.by_reason[r] > 0) {
          appended->rejected[std::string(PromRejectName(static_cast<PromReject>(r)))] +=
              static_cast<uint64_t>(rejected.by_reason[r]);
        }
      }
    }
  }
  if (!appended.ok()) {
    EndBatch(&b, nullptr);
    store_failures_->Increment();
    return appended.status();
  }
  EndBatch(&b, &refs);
  for (const auto& [reason, n] : appended->rejected) {
    if (reason != "duplicate") Reject(reason, n);  // duplicates are ignored, not refused
  }
  return OkStatus();
}

Status MetricsIngester::Ingest(const Frame& frame, IngestOutcome* outcome) {
  IngestOutcome ignored;
  Batch batch;
  BeginBatch();
  Decode(frame, &batch, outcome != nullptr ? outcome : &ignored);
  return Store(batch);
}

Status MetricsIngester::IngestBatch(std::span<const Frame> frames) {
  Batch batch;
  IngestOutcome ignored;
  BeginBatch();
  for (const Frame& f : frames) Decode(f, &batch, &ignored);
  return Store(batch);
}

// The labels of one remote-write series message, checked; nullptr (counted
// in `rejected`) when refused.
std::unique_ptr<Labels> MetricsIngester::ParseCheckedLabels(std::string_view message, const LabelLimits& limits,
                                                            Batch* b, RejectCounts* rejected) {
  if (!ParseWireSeries(message, &b->scratch)) return nullptr;  // parsed once already
  PromReject reject;
  if (!CheckWireLabels(&b->scratch, limits, &reject)) {
    rejected->Add(reject, "");
    return nullptr;
  }
  Result<Labels> labels = WireLabelsToLabels(b->scratch.labels);
  if (!labels.ok()) {
    rejected->Add(PromReject::kDuplicateLabelName, "");
    return nullptr;
  }
  return std::make_unique<Labels>(std::move(labels).value());
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
  const size_t samples_before = b->samples.size(), metadata_before = b->metadata.size();
  b->scanned.clear();
  b->exemplar_views.clear();
  // Pass 1, without the cache: keys, their hashes, samples.
  auto on_series = [&](WireSeries& ts) {
    histograms += ts.histograms;
    Batch::Scanned sc;
    sc.key = ts.label_key;
    if (!ts.key_buf.empty() && ts.label_key.data() == ts.key_buf.data()) sc.key = b->key_copies.emplace_back(ts.key_buf);
    sc.hash = std::hash<std::string_view>{}(sc.key);
    sc.message = ts.message;
    sc.sample_at = b->samples.size();
    sc.samples = ts.samples.size();
    b->samples.insert(b->samples.end(), ts.samples.begin(), ts.samples.end());
    sc.exemplar_view_at = b->exemplar_views.size();
    sc.exemplar_views = ts.exemplars.size();
    b->exemplar_views.insert(b->exemplar_views.end(), ts.exemplars.begin(), ts.exemplars.end());
    b->scanned.push_back(sc);
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
  if (!scanned.ok()) {
    // Nothing of a malformed frame is stored, not even its first series.
    b->samples.resize(samples_before);
    b->metadata.resize(metadata_before);
    *outcome = IngestOutcome::kMalformed;
    frames_malformed_->Increment();
    return;
  }
  // Pass 2: the cache, with its memory fetched a few series ahead.
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    const std::vector<Batch::Scanned>& sc = b->scanned;
    if (const size_t need = b->items.size() + sc.size(); need > b->items.capacity()) {
      b->items.reserve(std::max(need, 2 * b->items.capacity()));
    }
    constexpr size_t kAhead = 8;
    for (size_t i = 0; i < std::min(kAhead, sc.size()); ++i) cache_.PrefetchSlot(sc[i].hash);
    for (size_t i = 0; i < sc.size(); ++i) {
      if (i + kAhead < sc.size()) cache_.PrefetchSlot(sc[i + kAhead].hash);
      if (i + kAhead / 2 < sc.size()) cache_.PrefetchKey(sc[i + kAhead / 2].hash);
      Batch::Item item;
      item.remote_write = true;
      item.key = sc[i].key;
      item.hash = sc[i].hash;
      item.message = sc[i].message;
      const SeriesCache::Slot* slot = cache_.Find(sc[i].key, sc[i].hash);
      if (slot != nullptr && slot->ref != 0) {
        item.ref_hint = slot->ref;  // no labels: the store knows the series by ref
      } else {
        // New to the cache (or its ref not learned yet): judged as
        // DecodeWriteRequest judges a series.
        std::unique_ptr<Labels> labels = ParseCheckedLabels(sc[i].message, limits, b, &rejected);
        if (labels == nullptr) continue;
        item.fresh = std::move(labels);
        item.labels = item.fresh.get();
      }
      if (sc[i].samples == 0) {
        rejected.Add(PromReject::kNoSamples, "");
        continue;
      }
      item.sample_at = sc[i].sample_at;
      item.samples = sc[i].samples;
      item.exemplar_at = b->exemplars.size();
      for (size_t e = 0; e < sc[i].exemplar_views; ++e) {
        Exemplar exemplar;
        if (!DecodeWireExemplar(b->exemplar_views[sc[i].exemplar_view_at + e], limits, &exemplar)) {
          ++dropped_exemplars;
          continue;
        }
        b->exemplars.push_back(std::move(exemplar));
      }
      item.exemplars = b->exemplars.size() - item.exemplar_at;
      b->items.push_back(std::move(item));
    }
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
        b->items.push_back(std::move(item));
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
