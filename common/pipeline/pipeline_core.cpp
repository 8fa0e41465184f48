#include "common/pipeline/pipeline_core.h"

#include <algorithm>

#include "common/otlp/export_messages.h"

namespace telkit {
namespace {

int BatchIndex(Signal signal) {
  switch (signal) {
    case Signal::kTraces: return 0;
    case Signal::kMetrics: return 1;
    default: return 2;
  }
}

FilterRules RulesOrNone(const ProcessorConfig& c, const FilterRules& rules) {
  return c.Has(ProcessorKind::kFilter) ? rules : FilterRules{};
}

Dispatch Completion(uint64_t ack_id, uint64_t held_bytes) {
  Dispatch d;
  d.ack_ids.push_back(ack_id);
  d.held_bytes = held_bytes;
  return d;
}

}  // namespace

PipelineCore::Chain::Chain(const ProcessorConfig& c)
    : limits(c.batch),
      resource(c.Has(ProcessorKind::kResource) ? c.resource_actions : std::vector<ResourceAction>{}),
      filter(RulesOrNone(c, c.traces_filter), RulesOrNone(c, c.metrics_filter), RulesOrNone(c, c.logs_filter)),
      sampler(c.Has(ProcessorKind::kSampling) ? c.sampling.percent : 100, c.sampling.seed, c.sampling.logs) {
  for (ProcessorKind k : c.order) {
    if (k == ProcessorKind::kBatch) {
      batching = true;
    } else if (k != ProcessorKind::kMemoryLimiter) {
      (batching ? after : before).push_back(k);
    }
  }
}

PipelineCore::PipelineCore(const ProcessorConfig& config, std::array<bool, kSignalSlots> routed,
                           PipelineMetrics& metrics)
    : chain_(std::make_unique<Chain>(config)), routed_(routed), metrics_(metrics) {}

bool PipelineCore::Run(const std::vector<ProcessorKind>& stages, RequestParts& parts) {
  DropCounts dropped;
  bool changed = false;
  for (ProcessorKind k : stages) {
    switch (k) {
      case ProcessorKind::kResource: changed |= chain_->resource.Apply(parts); break;
      case ProcessorKind::kFilter: changed |= chain_->filter.Apply(parts, &dropped) > 0; break;
      case ProcessorKind::kSampling: changed |= chain_->sampler.Apply(parts, &dropped) > 0; break;
      default: break;
    }
  }
  metrics_.CountDrops(static_cast<uint8_t>(parts.signal), dropped);
  return changed;
}

void PipelineCore::Add(Frame frame, uint64_t ack_id, uint64_t held_bytes, PipelineClock::time_point now,
                       std::vector<Dispatch>* out) {
  const uint8_t signal = frame.signal;
  metrics_.received_frames(signal).Increment();
  metrics_.received_bytes(signal).Increment(frame.payload.size());
  const bool otlp = IsKnownSignal(signal) && IsOtlpSignal(static_cast<Signal>(signal));
  auto payload = std::make_shared<std::string>(std::move(frame.payload));
  std::optional<Result<RequestParts>> parts;
  if (otlp) {
    parts.emplace(DecomposeRequest(static_cast<Signal>(signal), payload));
    if (!parts->ok()) {
      metrics_.dropped_frames(signal, DropReason::kMalformed).Increment();
      out->push_back(Completion(ack_id, held_bytes));
      return;
    }
    metrics_.received_items(signal).Increment(static_cast<uint64_t>((**parts).ItemCount()));
  }
  if (!routed_[SignalSlot(signal)]) {
    metrics_.dropped_frames(signal, DropReason::kNoRoute).Increment();
    if (otlp) metrics_.dropped_items(signal, DropReason::kNoRoute).Increment((**parts).ItemCount());
    out->push_back(Completion(ack_id, held_bytes));
    return;
  }
  if (!otlp) {  // passes through untouched
    Dispatch d = Completion(ack_id, held_bytes);
    d.deliver = true;
    d.signal = signal;
    d.time_unix_nano = frame.time_unix_nano;
    d.payload = std::move(payload);
    out->push_back(std::move(d));
    return;
  }
  RequestParts& p = **parts;
  const bool changed = Run(chain_->before, p);
  const int64_t items = p.ItemCount();
  if (items == 0) {  // nothing left (or nothing to begin with)
    out->push_back(Completion(ack_id, held_bytes));
    return;
  }
  if (!chain_->batching) {
    Dispatch d = Completion(ack_id, held_bytes);
    d.deliver = true;
    d.signal = signal;
    d.time_unix_nano = frame.time_unix_nano;
    if (changed) {
      d.payload = std::make_shared<std::string>(EncodeRequest(p));
    } else {
      parts.reset();  // drops the parts' reference: the dispatch is the payload's only owner
      d.payload = std::move(payload);
    }
    d.items = items;
    out->push_back(std::move(d));
    return;
  }
  Batch& b = batches_[BatchIndex(p.signal)];
  const BatchLimits& limits = chain_->limits;
  const size_t bytes = p.EncodedSize();
  if (!b.merger.empty()) {
    if (b.merger.item_count() + items > limits.max_items) {
      Flush(b, BatchTrigger::kItems, out);
    } else if (b.merger.approx_bytes() + bytes > limits.max_bytes) {
      Flush(b, BatchTrigger::kBytes, out);
    }
  }
  if (b.merger.empty()) {
    b.deadline = now + std::chrono::milliseconds(limits.timeout_ms);
    b.time_unix_nano = frame.time_unix_nano;
  }
  b.time_unix_nano = std::min(b.time_unix_nano, frame.time_unix_nano);
  b.merger.Add(std::move(p));
  b.ack_ids.push_back(ack_id);
  b.held_bytes += held_bytes;
  if (b.merger.item_count() >= limits.max_items) {
    Flush(b, BatchTrigger::kItems, out);
  } else if (b.merger.approx_bytes() >= limits.max_bytes) {
    Flush(b, BatchTrigger::kBytes, out);
  } else if (limits.timeout_ms == 0) {
    Flush(b, BatchTrigger::kTimeout, out);
  }
  UpdateGauge();
}

void PipelineCore::Flush(Batch& b, BatchTrigger trigger, std::vector<Dispatch>* out) {
  if (b.merger.empty() && b.ack_ids.empty()) return;
  RequestParts parts = b.merger.Take();
  Run(chain_->after, parts);
  Dispatch d;
  d.ack_ids = std::move(b.ack_ids);
  d.held_bytes = b.held_bytes;
  b.ack_ids.clear();
  b.held_bytes = 0;
  d.items = parts.ItemCount();
  if (d.items > 0) {
    const auto signal = static_cast<uint8_t>(parts.signal);
    d.deliver = true;
    d.signal = signal;
    d.time_unix_nano = b.time_unix_nano;
    d.payload = std::make_shared<std::string>(EncodeRequest(parts));
    metrics_.batches(signal, trigger).Increment();
    metrics_.batch_items(signal).Increment(static_cast<uint64_t>(d.items));
    metrics_.batch_bytes(signal).Increment(d.payload->size());
  }
  out->push_back(std::move(d));
  UpdateGauge();
}

void PipelineCore::FlushExpired(PipelineClock::time_point now, std::vector<Dispatch>* out) {
  for (Batch& b : batches_) {
    if (!b.merger.empty() && b.deadline <= now) Flush(b, BatchTrigger::kTimeout, out);
  }
}

void PipelineCore::FlushAll(std::vector<Dispatch>* out) {
  for (Batch& b : batches_) Flush(b, BatchTrigger::kFlush, out);
}

std::optional<PipelineClock::time_point> PipelineCore::NextDeadline() const {
  std::optional<PipelineClock::time_point> next;
  for (const Batch& b : batches_) {
    if (!b.merger.empty() && (!next || b.deadline < *next)) next = b.deadline;
  }
  return next;
}

void PipelineCore::Reconfigure(const ProcessorConfig& config, std::vector<Dispatch>* out) {
  FlushAll(out);
  chain_ = std::make_unique<Chain>(config);
}

void PipelineCore::UpdateGauge() {
  int64_t n = 0;
  for (const Batch& b : batches_) n += b.merger.item_count();
  batched_items_.store(n, std::memory_order_relaxed);
}

}  // namespace telkit
