#include "common/pipeline/tail_sampling.h"

#include <algorithm>

#include "common/pipeline/item_fields.h"
#include "common/pipeline/proto_wire.h"

namespace telkit {

std::string_view TailDecisionName(TailDecision d) {
  switch (d) {
    case TailDecision::kError: return "error";
    case TailDecision::kLatency: return "latency";
    case TailDecision::kCondition: return "condition";
    case TailDecision::kRate: return "rate";
    case TailDecision::kDropped: return "dropped";
  }
  return "unknown";
}

TailSampler::TailSampler(TailSamplingSettings settings)
    : settings_(std::move(settings)), merger_(std::make_unique<RequestMerger>(Signal::kTraces)) {}

void TailSampler::Add(RequestParts&& parts, uint64_t ack_id, uint64_t held_bytes, uint64_t time_unix_nano,
                      Clock::time_point now, TailOutput* out) {
  const uint64_t key = next_frame_++;
  HeldFrame& frame = frames_[key];
  frame.ack_id = ack_id;
  frame.held_bytes = held_bytes;
  frame.time_unix_nano = time_unix_nano;
  frame.storage = std::move(parts.storage);
  bool need_attributes = false, need_resource = false;
  for (const FilterExpr& e : settings_.conditions) {
    need_attributes |= e.uses_attributes();
    need_resource |= e.uses_resource();
  }
  SpanFields span;
  AttributeList resource_attributes;
  int64_t spans = 0;
  std::vector<std::string> new_traces;
  for (const ResourcePart& resource : parts.resources) {
    if (need_resource) {
      std::string_view resource_message;
      WireReader r(resource.header);
      WireField f;
      while (r.Next(&f)) {
        if (f.number == kResourceEntryResourceField && f.wire_type == kWireLen) resource_message = f.bytes;
      }
      CollectAttributes(resource_message, 1, &resource_attributes);
    }
    for (const ScopePart& scope : resource.scopes) {
      FilterSubject subject;
      subject.resource_attributes = &resource_attributes;
      ScopeNameVersion(scope.header, &subject.scope_name, &subject.scope_version);
      subject.span = &span;
      for (std::string_view item : scope.items) {
        ++spans;
        if (!DecodeSpanFields(item, &span, need_attributes)) span = SpanFields{};
        std::string id(span.trace_id);
        auto [it, inserted] = traces_.try_emplace(id);
        Trace& t = it->second;
        if (inserted) {
          t.deadline = now + std::chrono::milliseconds(settings_.decision_wait_ms);
          order_.emplace_back(t.deadline, id);
          new_traces.push_back(id);
        }
        t.spans.push_back({resource.header, scope.header, item, key});
        if (t.frames.empty() || t.frames.back() != key) {
          t.frames.push_back(key);
          ++frame.pending;
        }
        t.error |= span.status_code == 2;  // STATUS_CODE_ERROR
        if (span.start_time_unix_nano) t.min_start = std::min(t.min_start, span.start_time_unix_nano);
        t.max_end = std::max(t.max_end, span.end_time_unix_nano);
        if (!t.matched) {
          for (const FilterExpr& e : settings_.conditions) {
            if (e.Matches(subject)) {
              t.matched = true;
              break;
            }
          }
        }
      }
    }
  }
  held_spans_.fetch_add(spans, std::memory_order_relaxed);
  held_traces_.store(static_cast<int64_t>(traces_.size()), std::memory_order_relaxed);
  // Over the bound: the oldest traces are decided early (never the ones this frame just started).
  while (static_cast<int64_t>(traces_.size()) > settings_.max_traces && !order_.empty()) {
    auto [deadline, id] = order_.front();
    order_.pop_front();
    auto it = traces_.find(id);
    if (it == traces_.end() || it->second.deadline != deadline) continue;  // stale entry
    DecideOne(id, now, out);
  }
  if (frame.pending == 0) frames_.erase(key);  // cannot happen: parts had spans
  Finish(out);
}

void TailSampler::Decide(Clock::time_point now, TailOutput* out) {
  while (!order_.empty() && order_.front().first <= now) {
    auto [deadline, id] = order_.front();
    order_.pop_front();
    auto it = traces_.find(id);
    if (it == traces_.end() || it->second.deadline != deadline) continue;
    DecideOne(id, now, out);
  }
  Finish(out);
}

void TailSampler::DecideAll(Clock::time_point now, TailOutput* out) {
  while (!order_.empty()) {
    auto [deadline, id] = order_.front();
    order_.pop_front();
    auto it = traces_.find(id);
    if (it == traces_.end() || it->second.deadline != deadline) continue;
    DecideOne(id, now, out);
  }
  Finish(out);
}

std::optional<TailSampler::Clock::time_point> TailSampler::NextDeadline() const {
  for (const auto& [deadline, id] : order_) {
    auto it = traces_.find(id);
    if (it != traces_.end() && it->second.deadline == deadline) return deadline;
  }
  return std::nullopt;
}

TailDecision TailSampler::Judge(const Trace& t, Clock::time_point now) {
  if (t.error) return TailDecision::kError;
  if (settings_.latency_ms > 0 && t.max_end > t.min_start && t.min_start != UINT64_MAX &&
      t.max_end - t.min_start > static_cast<uint64_t>(settings_.latency_ms) * 1'000'000) {
    return TailDecision::kLatency;
  }
  if (t.matched) return TailDecision::kCondition;
  if (settings_.rate_per_second > 0) {
    const double cap = std::max(1.0, settings_.rate_per_second);
    if (!refilled_) {
      tokens_ = cap;
    } else if (now > *refilled_) {
      tokens_ = std::min(cap, tokens_ + std::chrono::duration<double>(now - *refilled_).count() *
                                            settings_.rate_per_second);
    }
    if (!refilled_ || now > *refilled_) refilled_ = now;
    if (tokens_ >= 1) {
      tokens_ -= 1;
      return TailDecision::kRate;
    }
  }
  return TailDecision::kDropped;
}

void TailSampler::DecideOne(const std::string& trace_id, Clock::time_point now, TailOutput* out) {
  auto node = traces_.extract(trace_id);
  Trace& t = node.mapped();
  const TailDecision d = Judge(t, now);
  ++out->decisions[static_cast<size_t>(d)];
  const auto n = static_cast<int64_t>(t.spans.size());
  if (d == TailDecision::kDropped) {
    out->dropped.Add(DropReason::kTailSampling, n);
  } else {
    for (const Span& s : t.spans) {
      RequestParts one;
      one.signal = Signal::kTraces;
      one.resources.push_back({s.resource_header, {{s.scope_header, {s.bytes}, 1}}});
      if (auto f = frames_.find(s.frame); f != frames_.end()) one.storage = f->second.storage;  // keeps the bytes
      merger_->Add(std::move(one));
    }
    out->kept_spans += n;
  }
  held_spans_.fetch_sub(n, std::memory_order_relaxed);
  for (uint64_t key : t.frames) {
    auto it = frames_.find(key);
    if (it == frames_.end()) continue;
    HeldFrame& f = it->second;
    f.any_kept |= d != TailDecision::kDropped;
    if (--f.pending > 0) continue;
    out->ack_ids.push_back(f.ack_id);
    out->held_bytes += f.held_bytes;
    if (out->time_unix_nano == 0 || f.time_unix_nano < out->time_unix_nano) out->time_unix_nano = f.time_unix_nano;
    out->barrier |= f.any_kept;
    frames_.erase(it);
  }
  held_traces_.store(static_cast<int64_t>(traces_.size()), std::memory_order_relaxed);
}

// Moves the round's kept spans into out->kept.
void TailSampler::Finish(TailOutput* out) {
  if (merger_->empty()) return;
  RequestParts merged = merger_->Take();
  if (!out->kept.resources.empty()) {  // an earlier round in the same output: merge
    RequestMerger m(Signal::kTraces);
    m.Add(std::move(out->kept));
    m.Add(std::move(merged));
    merged = m.Take();
  }
  out->kept = std::move(merged);
}

}  // namespace telkit
