// The synchronous heart of tel-batch: frames in, processed and batched
// payloads out, with no threads and no I/O (pipeline.h adds those).
//
// For each OTLP frame (traces, metrics, logs) the core takes the payload
// apart (request_parts.h), runs the processors in their configured order —
// those before `batch` on each frame, those after it on each merged batch —
// and hands out Dispatches: a payload for the outputs of the frame's signal,
// with the input frames it completes. Frames of other signals (prom-rw and
// unknown ones) pass through untouched. A frame whose every item was dropped,
// and a frame no output takes, come out as a Dispatch with deliver = false:
// complete at once. The memory limiter is not here: it decides what is read
// (memory_budget.h).
//
// A frame is never split: a frame with more items or bytes than the batch
// limits forms a batch of its own. A batch closes when the next frame would
// take it over a limit, when it reaches one, or at its deadline (the first
// frame's arrival plus batch timeout), and on FlushAll.
// Thread-compatible: one thread (the pipeline thread) drives a core; the
// gauges (batched_items) may be read from any.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/pipeline/pipeline_config.h"
#include "common/pipeline/pipeline_metrics.h"
#include "common/pipeline/processors.h"
#include "common/pipeline/request_parts.h"
#include "common/stream/format.h"

namespace telkit {

using PipelineClock = std::chrono::steady_clock;

// What leaves the core.
struct Dispatch {
  // False when there is nothing to send: complete the input frames at once.
  bool deliver = false;
  uint8_t signal = 0;
  uint64_t time_unix_nano = 0;  // the earliest receive time of the frames in it
  // Not const: an output that is the only one to get it may take the bytes.
  std::shared_ptr<std::string> payload;
  int64_t items = 0;
  // The input frames this completes, as given to Add().
  std::vector<uint64_t> ack_ids;
  // The sum of their held_bytes (for the memory budget).
  uint64_t held_bytes = 0;
};

class PipelineCore {
 public:
  // `routed[SignalSlot(s)]` says whether some output takes signal s; frames
  // of other signals are dropped (kNoRoute). REQUIRES: `metrics` outlives
  // the core.
  PipelineCore(const ProcessorConfig& config, std::array<bool, kSignalSlots> routed, PipelineMetrics& metrics);

  // Takes one input frame. `ack_id` and `held_bytes` come back in the
  // Dispatch that completes it. Appends what is ready to *out.
  void Add(Frame frame, uint64_t ack_id, uint64_t held_bytes, PipelineClock::time_point now,
           std::vector<Dispatch>* out);
  // Closes the batches whose deadline is at or before `now`.
  void FlushExpired(PipelineClock::time_point now, std::vector<Dispatch>* out);
  // Closes every open batch (shutdown, end of input, reconfiguration).
  void FlushAll(std::vector<Dispatch>* out);
  // The earliest deadline of an open batch.
  std::optional<PipelineClock::time_point> NextDeadline() const;

  // Replaces the processors: flushes every batch first (into *out).
  void Reconfigure(const ProcessorConfig& config, std::vector<Dispatch>* out);

  // Items waiting in open batches.
  int64_t batched_items() const { return batched_items_.load(std::memory_order_relaxed); }
  // Traces and spans tail_sampling holds (tel_batch_tail_held_{traces,spans}).
  int64_t tail_held_traces() const { return tail_traces_.load(std::memory_order_relaxed); }
  int64_t tail_held_spans() const { return tail_spans_.load(std::memory_order_relaxed); }

 private:
  struct Chain {
    explicit Chain(const ProcessorConfig& c);
    std::vector<ProcessorKind> before, after;  // resource, filter, sampling around batch
    bool batching = false;
    BatchLimits limits;
    ResourceProcessor resource;
    ItemFilter filter;
    TraceSampler sampler;
    std::unique_ptr<TailSampler> tail;  // tail_sampling, when in the chain
  };
  struct Batch {
    explicit Batch(Signal s) : merger(s) {}
    RequestMerger merger;
    std::vector<uint64_t> ack_ids;
    uint64_t held_bytes = 0;
    uint64_t time_unix_nano = 0;
    PipelineClock::time_point deadline;
    bool barrier = false;  // flush as an empty delivery even without items (tail_sampling)
  };

  // Runs `stages`; true when the request changed.
  bool Run(const std::vector<ProcessorKind>& stages, RequestParts& parts);
  void Flush(Batch& batch, BatchTrigger trigger, std::vector<Dispatch>* out);
  void UpdateGauge();
  // Hands on what a round of tail sampling decided.
  void EmitTail(TailOutput&& t, PipelineClock::time_point now, std::vector<Dispatch>* out);
  // Adds `p` (with the input frames it completes) to its batch, flushing as the limits say.
  void AddToBatch(RequestParts&& p, int64_t items, std::vector<uint64_t> ack_ids, uint64_t held_bytes,
                  uint64_t time_unix_nano, PipelineClock::time_point now, std::vector<Dispatch>* out);

  std::unique_ptr<Chain> chain_;
  std::array<bool, kSignalSlots> routed_;
  PipelineMetrics& metrics_;
  std::array<Batch, 3> batches_{Batch(Signal::kTraces), Batch(Signal::kMetrics), Batch(Signal::kLogs)};
  std::atomic<int64_t> batched_items_{0};
  std::atomic<int64_t> tail_traces_{0}, tail_spans_{0};
  std::array<Counter*, kTailDecisionCount> tail_decisions_{};
};

}  // namespace telkit
