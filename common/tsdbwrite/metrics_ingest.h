// The tsdb-write ingest path: one telemetry-stream frame (docs/format/
// stream.md) -> decoded series -> MetricsStore::Append -> may be
// acknowledged. Frames are judged as a whole only when they cannot be read:
//
//   metrics   OTLP ExportMetricsServiceRequest through the OtlpTranslator
//             (docs/otlp-to-prometheus.md; DELTA -> cumulative state kept here)
//   prom-rw   Prometheus remote-write WriteRequest, walked on the wire
//             (remote_write_wire.h): a series seen before is found by the
//             raw bytes of its labels in a cache (key -> head ref), so it
//             costs a hash lookup and no Labels; new series are checked as
//             DecodeWriteRequest checks them
//   other     traces, logs, unknown signals: counted (wrong_signal), acked
//   malformed payload that is not the signal's message: counted, acked,
//             skipped (retrying it could never succeed)
//
// Items refused by the translation or by the store are counted by reason
// (tsdb_write_rejected_total{reason}, the names of PromRejectName and of
// MetricsStore's AppendResult) and the rest of the frame is stored.
// Ingest() returns OK when the frame may be acknowledged: everything kept
// from it is durable (Append returned OK). A non-OK status is a store
// failure: the frame must not be acknowledged (the sender keeps it).
//
// Thread-safety: Ingest may be called from several threads (one per input);
// OTLP translation is serialised (the translator keeps delta state),
// appends run concurrently and share the WAL's fsync.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <vector>
#include <string>

#include "common/admin/metrics_registry.h"
#include "common/base/status.h"
#include "common/model/labels.h"
#include "common/prom/otlp_translate.h"
#include "common/stream/format.h"
#include "common/tsdb/metrics_store.h"

namespace telkit {

struct MetricsIngestOptions {
  LabelLimits limits;              // for translation and decoding (the store checks its own)
  size_t max_delta_series = 100000;
  bool target_info = true;
  bool scope_labels = true;
  // Remote-write series remembered by the raw bytes of their labels (the
  // cache is emptied when it would hold more). 0: no cache.
  size_t max_cached_series = 1 << 20;
};

// What Ingest() did with one frame.
enum class IngestOutcome { kStored, kWrongSignal, kMalformed };

class MetricsIngester {
 public:
  // REQUIRES: `store` and `registry` outlive the ingester.
  MetricsIngester(MetricsStore* store, MetricsRegistry* registry, MetricsIngestOptions options = {});

  // See the file comment. `outcome` (optional) says what happened.
  Status Ingest(const Frame& frame, IngestOutcome* outcome = nullptr);
  // Several frames, in order, with one store append (one WAL fsync): OK
  // when all of them may be acknowledged. Group commit for a busy input.
  Status IngestBatch(std::span<const Frame> frames);

  // Counts one frame as acknowledged (the caller acks after Ingest).
  void CountAck() { acked_->Increment(); }

  // Label limits of remote-write decoding (SIGHUP). The OTLP translator keeps
  // the limits it started with: replacing it would lose its DELTA totals.
  void SetLimits(const LabelLimits& limits);

  // Items rejected so far, by reason (for tests and the final log line).
  std::map<std::string, uint64_t> rejected() const;

 private:
  struct Batch;
  // Remote-write series known by the raw bytes of their labels: key -> the
  // head ref. No labels are kept (the head has them): a hit hands the store
  // the ref alone, and a ref the head no longer knows (after a flush) is
  // answered with the labels parsed again from the frame.
  // Open addressing, keys in one arena: a hit touches a slot and its key
  // (both prefetched ahead). Guarded by cache_mu_.
  class SeriesCache {
   public:
    struct Slot {
      uint64_t hash = 0;
      uint64_t ref = 0;  // the head ref learned from the store, 0 unknown
      uint32_t key_at = 0, key_len = 0;
      bool used = false;  // false: empty slot
    };
    void PrefetchSlot(uint64_t hash) const;
    void PrefetchKey(uint64_t hash) const;
    Slot* Find(std::string_view key, uint64_t hash);
    Slot* Insert(std::string_view key, uint64_t hash);  // REQUIRES: absent
    size_t size() const { return size_; }
    void Clear();

   private:
    std::vector<Slot> slots_;
    std::string keys_;
    size_t size_ = 0;
  };
  void Reject(const std::string& reason, uint64_t n);
  // Decodes `frame` into `batch` (appended), counting.
  void Decode(const Frame& frame, Batch* batch, IngestOutcome* outcome);
  void DecodeRemoteWrite(const Frame& frame, Batch* batch, IngestOutcome* outcome);
  std::unique_ptr<Labels> ParseCheckedLabels(std::string_view message, const LabelLimits& limits, Batch* batch,
                                             RejectCounts* rejected);
  Status Store(Batch& batch);
  void BeginBatch();
  // Learns the refs of the batch's remote-write series (refs: one per item,
  // nullptr when the append failed).
  void EndBatch(Batch* batch, const std::vector<uint64_t>* refs);

  MetricsStore* store_;
  MetricsRegistry* registry_;
  std::mutex translate_mu_;
  OtlpTranslator translator_;  // guarded by translate_mu_
  std::mutex limits_mu_;
  LabelLimits limits_;  // guarded by limits_mu_
  const size_t max_cached_series_;
  std::mutex cache_mu_;
  SeriesCache cache_;        // guarded by cache_mu_
  int batches_in_flight_ = 0;  // guarded by cache_mu_: the cache is emptied only when 0
  bool clear_cache_ = false;   // guarded by cache_mu_: SetLimits while batches were in flight
  Counter* frames_metrics_;
  Counter* frames_prom_rw_;
  Counter* frames_other_;
  Counter* frames_malformed_;
  Counter* frames_wrong_signal_;
  Counter* acked_;
  Counter* store_failures_;
  mutable std::mutex rejected_mu_;
  std::map<std::string, Counter*> rejected_;  // guarded by rejected_mu_
};

}  // namespace telkit
