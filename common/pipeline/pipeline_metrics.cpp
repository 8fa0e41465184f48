#include "common/pipeline/pipeline_metrics.h"

#include <string>

#include "common/otlp/signal.h"

namespace telkit {

int SignalSlot(uint8_t signal) {
  switch (signal) {
    case static_cast<uint8_t>(Signal::kTraces): return 0;
    case static_cast<uint8_t>(Signal::kMetrics): return 1;
    case static_cast<uint8_t>(Signal::kLogs): return 2;
    case static_cast<uint8_t>(Signal::kPrometheusRemoteWrite): return 3;
    default: return 4;
  }
}

std::string_view SignalSlotName(int slot) {
  switch (slot) {
    case 0: return "traces";
    case 1: return "metrics";
    case 2: return "logs";
    case 3: return "prom-rw";
    default: return "unknown";
  }
}

std::string_view BatchTriggerName(BatchTrigger trigger) {
  switch (trigger) {
    case BatchTrigger::kItems: return "items";
    case BatchTrigger::kBytes: return "bytes";
    case BatchTrigger::kTimeout: return "timeout";
    case BatchTrigger::kFlush: return "flush";
  }
  return "unknown";
}

PipelineMetrics::PipelineMetrics(MetricsRegistry& registry) : registry_(registry) {
  for (Signal s : {Signal::kTraces, Signal::kMetrics, Signal::kLogs}) {
    received_items(static_cast<uint8_t>(s));
  }
}

Counter& PipelineMetrics::Get(Slot& slot, std::string_view name, std::string_view help, const MetricLabels& labels) {
  if (Counter* c = slot.load(std::memory_order_acquire)) return *c;
  std::lock_guard lock(mu_);
  if (Counter* c = slot.load(std::memory_order_relaxed)) return *c;
  Counter& c = registry_.AddCounter(name, help, labels);
  slot.store(&c, std::memory_order_release);
  return c;
}

namespace {
MetricLabels SignalLabels(uint8_t signal) { return {{"signal", std::string(SignalLabel(signal))}}; }
}  // namespace

Counter& PipelineMetrics::received_frames(uint8_t signal) {
  return Get(received_frames_[SignalSlot(signal)], "tel_batch_received_frames_total", "Frames read from the inputs",
             SignalLabels(signal));
}

Counter& PipelineMetrics::received_items(uint8_t signal) {
  return Get(received_items_[SignalSlot(signal)], "tel_batch_received_items_total",
             "Spans, metric data points and log records read from the inputs", SignalLabels(signal));
}

Counter& PipelineMetrics::received_bytes(uint8_t signal) {
  return Get(received_bytes_[SignalSlot(signal)], "tel_batch_received_bytes_total",
             "Payload bytes read from the inputs", SignalLabels(signal));
}

Counter& PipelineMetrics::dropped_items(uint8_t signal, DropReason reason) {
  MetricLabels labels = SignalLabels(signal);
  labels.emplace_back("reason", std::string(DropReasonName(reason)));
  return Get(dropped_items_[SignalSlot(signal)][static_cast<size_t>(reason)], "tel_batch_dropped_items_total",
             "Items not forwarded, by reason", labels);
}

Counter& PipelineMetrics::dropped_frames(uint8_t signal, DropReason reason) {
  MetricLabels labels = SignalLabels(signal);
  labels.emplace_back("reason", std::string(DropReasonName(reason)));
  return Get(dropped_frames_[SignalSlot(signal)][static_cast<size_t>(reason)], "tel_batch_dropped_frames_total",
             "Whole frames not forwarded (malformed payload, no route), by reason", labels);
}

Counter& PipelineMetrics::batches(uint8_t signal, BatchTrigger trigger) {
  MetricLabels labels = SignalLabels(signal);
  labels.emplace_back("trigger", std::string(BatchTriggerName(trigger)));
  return Get(batches_[SignalSlot(signal)][static_cast<size_t>(trigger)], "tel_batch_batches_total",
             "Batches sent, by what closed them (items, bytes, timeout, flush)", labels);
}

Counter& PipelineMetrics::batch_items(uint8_t signal) {
  return Get(batch_items_[SignalSlot(signal)], "tel_batch_batch_items_total", "Items in the batches sent",
             SignalLabels(signal));
}

Counter& PipelineMetrics::batch_bytes(uint8_t signal) {
  return Get(batch_bytes_[SignalSlot(signal)], "tel_batch_batch_bytes_total", "Encoded bytes of the batches sent",
             SignalLabels(signal));
}

void PipelineMetrics::CountDrops(uint8_t signal, const DropCounts& dropped) {
  for (int r = 0; r < kDropReasonCount; ++r) {
    if (dropped.items[r] > 0) {
      dropped_items(signal, static_cast<DropReason>(r)).Increment(static_cast<uint64_t>(dropped.items[r]));
    }
  }
}

}  // namespace telkit
