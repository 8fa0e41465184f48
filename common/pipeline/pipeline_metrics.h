// tel-batch's self-metrics (the tel_batch_* families on /metrics), kept in
// a MetricsRegistry. Series with a signal label are created on first use,
// except received items of the three OTLP signals, which are always there.
//
//   tel_batch_received_frames_total{signal}    frames read from the inputs
//   tel_batch_received_items_total{signal}     spans, data points, log records read
//   tel_batch_received_bytes_total{signal}     payload bytes read
//   tel_batch_dropped_items_total{signal,reason}   items not forwarded, by DropReason
//   tel_batch_dropped_frames_total{signal,reason}  whole frames not forwarded
//                                                  (malformed, no route)
//   tel_batch_batches_total{signal,trigger}    batches sent, by what closed them
//                                              (items, bytes, timeout, flush)
//   tel_batch_batch_items_total{signal}        items in those batches
//   tel_batch_batch_bytes_total{signal}        encoded bytes of those batches
// (the pipeline and its outputs register the rest: queue, memory, outputs).
// Thread-safety: every method is safe from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string_view>

#include "common/admin/metrics_registry.h"
#include "common/pipeline/processors.h"

namespace telkit {

// Signal label values: traces, metrics, logs, prom-rw, unknown.
inline constexpr int kSignalSlots = 5;
int SignalSlot(uint8_t signal);
std::string_view SignalSlotName(int slot);
inline std::string_view SignalLabel(uint8_t signal) { return SignalSlotName(SignalSlot(signal)); }

enum class BatchTrigger : uint8_t { kItems, kBytes, kTimeout, kFlush };
inline constexpr int kBatchTriggerCount = 4;
std::string_view BatchTriggerName(BatchTrigger trigger);  // items, bytes, timeout, flush

class PipelineMetrics {
 public:
  // REQUIRES: `registry` outlives this object.
  explicit PipelineMetrics(MetricsRegistry& registry);
  PipelineMetrics(const PipelineMetrics&) = delete;
  PipelineMetrics& operator=(const PipelineMetrics&) = delete;

  MetricsRegistry& registry() const { return registry_; }

  Counter& received_frames(uint8_t signal);
  Counter& received_items(uint8_t signal);
  Counter& received_bytes(uint8_t signal);
  Counter& dropped_items(uint8_t signal, DropReason reason);
  Counter& dropped_frames(uint8_t signal, DropReason reason);
  Counter& batches(uint8_t signal, BatchTrigger trigger);
  Counter& batch_items(uint8_t signal);
  Counter& batch_bytes(uint8_t signal);

  // Adds every nonzero count of `dropped` to dropped_items.
  void CountDrops(uint8_t signal, const DropCounts& dropped);

 private:
  using Slot = std::atomic<Counter*>;
  Counter& Get(Slot& slot, std::string_view name, std::string_view help, const MetricLabels& labels);

  MetricsRegistry& registry_;
  std::mutex mu_;  // creation of series
  std::array<Slot, kSignalSlots> received_frames_{}, received_items_{}, received_bytes_{};
  std::array<std::array<Slot, kDropReasonCount>, kSignalSlots> dropped_items_{}, dropped_frames_{};
  std::array<std::array<Slot, kBatchTriggerCount>, kSignalSlots> batches_{};
  std::array<Slot, kSignalSlots> batch_items_{}, batch_bytes_{};
};

}  // namespace telkit
