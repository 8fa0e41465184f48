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
  if (c.Has(ProcessorKind::kTailSampling)) tail = std::make_unique<TailSampler>(c.tail);
  for (ProcessorKind k : c.order) {
    if (k == ProcessorKind::kBatch) {
      batching = true;
    } else if (k != ProcessorKind::kMemoryLimiter && k != ProcessorKind::kTailSampling) {
      (batching ? after : before).push_back(k);
    }
  }
}

PipelineCore::PipelineCore(const ProcessorConfig& config, std::array<bool, kSignalSlots> routed,
                           PipelineMetrics& metrics)
    : chain_(std::make_unique<Chain>(config)), routed_(routed), metrics_(metrics) {
  MetricsRegistry& r = metrics_.registry();
  for (int i = 0; i < kTailDecisionCount; ++i) {
    tail_decisions_[i] = &r.AddCounter("tel_batch_tail_decisions_total",
                                       "Traces tail_sampling decided, by the policy that kept them (or dropped)",
                                       {{"decision", std::string(TailDecisionName(static_cast<TailDecision>(i)))}});
  }
}

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
  if (chain_->tail && p.signal == Signal::kTraces) {  // held until its traces are decided
    TailOutput t;
    chain_->tail->Add(std::move(p), ack_id, held_bytes, frame.time_unix_nano, now, &t);
    EmitTail(std::move(t), now, out);
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
  AddToBatch(std::move(p), items, {ack_id}, held_bytes, frame.time_unix_nano, now, out);
}

void PipelineCore::AddToBatch(RequestParts&& p, int64_t items, std::vector<uint64_t> ack_ids, uint64_t held_bytes,
                              uint64_t time_unix_nano, PipelineClock::time_point now, std::vector<Dispatch>* out) {
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
    b.time_unix_nano = time_unix_nano;
  }
  if (time_unix_nano != 0) b.time_unix_nano = std::min(b.time_unix_nano, time_unix_nano);
  b.merger.Add(std::move(p));
  b.ack_ids.insert(b.ack_ids.end(), ack_ids.begin(), ack_ids.end());
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
  } else if (b.barrier) {  // completes frames whose kept spans went out before: travels behind them
    d.deliver = true;
    d.signal = static_cast<uint8_t>(parts.signal);
    d.payload = std::make_shared<std::string>();
  }
  b.barrier = false;
  out->push_back(std::move(d));
  UpdateGauge();
}

void PipelineCore::EmitTail(TailOutput&& t, PipelineClock::time_point now, std::vector<Dispatch>* out) {
  const auto traces = static_cast<uint8_t>(Signal::kTraces);
  metrics_.CountDrops(traces, t.dropped);
  for (int i = 0; i < kTailDecisionCount; ++i) {
    if (t.decisions[i] > 0) tail_decisions_[i]->Increment(static_cast<uint64_t>(t.decisions[i]));
  }
  tail_traces_.store(chain_->tail->held_traces(), std::memory_order_relaxed);
  tail_spans_.store(chain_->tail->held_spans(), std::memory_order_relaxed);
  if (t.empty()) return;
  if (!chain_->batching) {
    Dispatch d;
    d.ack_ids = std::move(t.ack_ids);
    d.held_bytes = t.held_bytes;
    d.signal = traces;
    d.time_unix_nano = t.time_unix_nano;
    if (t.kept_spans > 0) {
      d.deliver = true;
      d.items = t.kept_spans;
      d.payload = std::make_shared<std::string>(EncodeRequest(t.kept));
    } else if (t.barrier) {
      d.deliver = true;
      d.payload = std::make_shared<std::string>();
    }
    out->push_back(std::move(d));
    return;
  }
  Batch& b = batches_[BatchIndex(Signal::kTraces)];
  if (t.kept_spans > 0) {
    b.barrier |= t.barrier;
    AddToBatch(std::move(t.kept), t.kept_spans, std::move(t.ack_ids), t.held_bytes, t.time_unix_nano, now, out);
    return;
  }
  // Nothing kept: the completed frames join the open batch, or leave now.
  b.ack_ids.insert(b.ack_ids.end(), t.ack_ids.begin(), t.ack_ids.end());
  b.held_bytes += t.held_bytes;
  b.barrier |= t.barrier;
  if (b.merger.empty()) Flush(b, BatchTrigger::kTimeout, out);
}

void PipelineCore::FlushExpired(PipelineClock::time_point now, std::vector<Dispatch>* out) {
  if (chain_->tail) {
    TailOutput t;
    chain_->tail->Decide(now, &t);
    EmitTail(std::move(t), now, out);
  }
  for (Batch& b : batches_) {
    if (!b.merger.empty() && b.deadline <= now) Flush(b, BatchTrigger::kTimeout, out);
  }
}

void PipelineCore::FlushAll(std::vector<Dispatch>* out) {
  if (chain_->tail) {
    const PipelineClock::time_point now = PipelineClock::now();
    TailOutput t;
    chain_->tail->DecideAll(now, &t);
    EmitTail(std::move(t), now, out);
  }
  for (Batch& b : batches_) Flush(b, BatchTrigger::kFlush, out);
}

std::optional<PipelineClock::time_point> PipelineCore::NextDeadline() const {
  std::optional<PipelineClock::time_point> next;
  for (const Batch& b : batches_) {
    if (!b.merger.empty() && (!next || b.deadline < *next)) next = b.deadline;
  }
  if (chain_->tail) {
    std::optional<PipelineClock::time_point> t = chain_->tail->NextDeadline();
    if (t && (!next || *t < *next)) next = t;
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
