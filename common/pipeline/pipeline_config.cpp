#include "common/pipeline/pipeline_config.h"

#include <algorithm>
#include <array>

namespace telkit {
namespace {

constexpr std::array kKinds = {ProcessorKind::kMemoryLimiter, ProcessorKind::kResource, ProcessorKind::kFilter,
                               ProcessorKind::kSampling, ProcessorKind::kTailSampling, ProcessorKind::kBatch};

std::string KindList() {
  std::string s;
  for (ProcessorKind k : kKinds) {
    if (!s.empty()) s += ' ';
    s += ProcessorKindName(k);
  }
  return s;
}

Status CompileExprs(Signal signal, const char* flag, const std::vector<std::string>& texts,
                    std::vector<FilterExpr>* out) {
  for (const std::string& text : texts) {
    Result<FilterExpr> e = FilterExpr::Parse(signal, text);
    if (!e.ok()) return e.status().WithContext(std::string(flag) + " '" + text + "'");
    out->push_back(std::move(*e));
  }
  return OkStatus();
}

}  // namespace

std::string_view ProcessorKindName(ProcessorKind kind) {
  switch (kind) {
    case ProcessorKind::kMemoryLimiter: return "memory_limiter";
    case ProcessorKind::kResource: return "resource";
    case ProcessorKind::kFilter: return "filter";
    case ProcessorKind::kSampling: return "sampling";
    case ProcessorKind::kTailSampling: return "tail_sampling";
    case ProcessorKind::kBatch: return "batch";
  }
  return "unknown";
}

bool ProcessorConfig::Has(ProcessorKind kind) const {
  return std::find(order.begin(), order.end(), kind) != order.end();
}

Result<ProcessorConfig> CompileProcessors(const ProcessorSettings& s, uint64_t max_frame_bytes) {
  ProcessorConfig c;
  for (const std::string& name : s.order) {
    auto it = std::find_if(kKinds.begin(), kKinds.end(), [&](ProcessorKind k) { return ProcessorKindName(k) == name; });
    if (it == kKinds.end()) return InvalidArgumentError("unknown processor '" + name + "' (" + KindList() + ")");
    if (c.Has(*it)) return InvalidArgumentError("--processor '" + name + "' is given twice");
    c.order.push_back(*it);
  }
  if (c.Has(ProcessorKind::kMemoryLimiter) && c.order.front() != ProcessorKind::kMemoryLimiter) {
    return InvalidArgumentError("--processor 'memory_limiter' must come first: it decides what is read at all");
  }
  if (c.Has(ProcessorKind::kMemoryLimiter)) {
    if (s.memory_hard_mib == 0 || s.memory_soft_mib == 0) {
      return InvalidArgumentError("--memory-soft-mib and --memory-hard-mib must be positive");
    }
    if (s.memory_soft_mib > s.memory_hard_mib) {
      return InvalidArgumentError("--memory-soft-mib " + std::to_string(s.memory_soft_mib) +
                                  " is above --memory-hard-mib " + std::to_string(s.memory_hard_mib));
    }
    c.memory_soft_bytes = s.memory_soft_mib << 20;
    c.memory_hard_bytes = s.memory_hard_mib << 20;
    if (c.memory_hard_bytes < max_frame_bytes) {
      return InvalidArgumentError("--memory-hard-mib " + std::to_string(s.memory_hard_mib) +
                                  " cannot hold one frame of --max-frame-bytes " + std::to_string(max_frame_bytes));
    }
  }
  if (s.batch.max_items <= 0) return InvalidArgumentError("--batch-max-items must be positive");
  if (s.batch.max_bytes == 0) return InvalidArgumentError("--batch-max-bytes must be positive");
  if (s.batch.timeout_ms < 0) return InvalidArgumentError("--batch-timeout must not be negative");
  c.batch = s.batch;
  for (const std::string& spec : s.resource_actions) {
    Result<ResourceAction> a = ParseResourceAction(spec);
    if (!a.ok()) return a.status().WithContext("--resource-attr");
    c.resource_actions.push_back(std::move(*a));
  }
  TELKIT_RETURN_IF_ERROR(CompileExprs(Signal::kTraces, "--drop-spans", s.drop_spans, &c.traces_filter.drop));
  TELKIT_RETURN_IF_ERROR(CompileExprs(Signal::kTraces, "--keep-spans", s.keep_spans, &c.traces_filter.keep));
  TELKIT_RETURN_IF_ERROR(CompileExprs(Signal::kLogs, "--drop-logs", s.drop_logs, &c.logs_filter.drop));
  TELKIT_RETURN_IF_ERROR(CompileExprs(Signal::kLogs, "--keep-logs", s.keep_logs, &c.logs_filter.keep));
  TELKIT_RETURN_IF_ERROR(CompileExprs(Signal::kMetrics, "--drop-points", s.drop_points, &c.metrics_filter.drop));
  TELKIT_RETURN_IF_ERROR(CompileExprs(Signal::kMetrics, "--keep-points", s.keep_points, &c.metrics_filter.keep));
  if (!(s.sampling.percent >= 0 && s.sampling.percent <= 100)) {
    return InvalidArgumentError("--sample-percent must be between 0 and 100");
  }
  c.sampling = s.sampling;
  if (c.Has(ProcessorKind::kTailSampling)) {
    auto at = [&](ProcessorKind k) { return std::find(c.order.begin(), c.order.end(), k) - c.order.begin(); };
    if (c.Has(ProcessorKind::kBatch) ? at(ProcessorKind::kTailSampling) + 1 != at(ProcessorKind::kBatch)
                                     : c.order.back() != ProcessorKind::kTailSampling) {
      return InvalidArgumentError("--processor 'tail_sampling' must come right before 'batch' (or last without it)");
    }
  }
  if (s.tail_decision_wait_ms < 0) return InvalidArgumentError("--tail-decision-wait must not be negative");
  if (s.tail_max_traces <= 0) return InvalidArgumentError("--tail-max-traces must be positive");
  if (s.tail_latency_ms < 0) return InvalidArgumentError("--tail-latency-ms must not be negative");
  if (!(s.tail_rate_per_second >= 0)) return InvalidArgumentError("--tail-rate-per-second must not be negative");
  c.tail.decision_wait_ms = s.tail_decision_wait_ms;
  c.tail.max_traces = s.tail_max_traces;
  c.tail.latency_ms = s.tail_latency_ms;
  c.tail.rate_per_second = s.tail_rate_per_second;
  TELKIT_RETURN_IF_ERROR(CompileExprs(Signal::kTraces, "--tail-keep-spans", s.tail_keep_spans, &c.tail.conditions));
  return c;
}

}  // namespace telkit
