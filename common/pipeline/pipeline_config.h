// What tel-batch's processors are told to do: the processor chain and each
// processor's settings, both as the command line gives them
// (ProcessorSettings: strings and numbers) and compiled (ProcessorConfig:
// parsed expressions and actions). docs/tel-batch.md describes every setting.
// Thread-safety: values; CompileProcessors is a pure function.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/pipeline/processors.h"
#include "common/pipeline/tail_sampling.h"

namespace telkit {

enum class ProcessorKind : uint8_t { kMemoryLimiter, kResource, kFilter, kSampling, kTailSampling, kBatch };
// "memory_limiter", "resource", "filter", "sampling", "tail_sampling", "batch".
std::string_view ProcessorKindName(ProcessorKind kind);

struct BatchLimits {
  int64_t max_items = 8192;         // spans, data points or log records a batch
  uint64_t max_bytes = 8ull << 20;  // encoded request bytes a batch (about)
  int timeout_ms = 200;             // a batch leaves at the latest this long after its first frame
};

struct SamplingSettings {
  double percent = 100;  // traces kept, 0..100
  uint32_t seed = 0;     // TraceIdHash seed; processes that agree use the same one
  bool logs = false;     // log records with a trace id follow their trace
};

// The processors as given by flags (or the config file).
struct ProcessorSettings {
  std::vector<std::string> order = {"memory_limiter", "resource", "filter", "sampling", "batch"};
  uint64_t memory_soft_mib = 384;
  uint64_t memory_hard_mib = 512;
  BatchLimits batch;
  std::vector<std::string> resource_actions;  // "upsert:KEY=VALUE", ...
  std::vector<std::string> drop_spans, keep_spans, drop_logs, keep_logs, drop_points, keep_points;
  SamplingSettings sampling;
  // tail_sampling
  int tail_decision_wait_ms = 10000;
  int64_t tail_max_traces = 50000;
  int64_t tail_latency_ms = 0;
  std::vector<std::string> tail_keep_spans;
  double tail_rate_per_second = 0;
};

// The compiled chain. Processors not in `order` do nothing, whatever their
// settings say.
struct ProcessorConfig {
  std::vector<ProcessorKind> order;
  // memory_limiter: 0 = no limit (the processor is not in the chain).
  uint64_t memory_soft_bytes = 0;
  uint64_t memory_hard_bytes = 0;
  BatchLimits batch;
  std::vector<ResourceAction> resource_actions;
  FilterRules traces_filter, metrics_filter, logs_filter;
  SamplingSettings sampling;
  TailSamplingSettings tail;

  bool Has(ProcessorKind kind) const;
};

// Checks and compiles the settings. INVALID_ARGUMENT naming the flag and the
// problem, e.g. "--drop-spans 'name = x': column 6: expected an operator
// (...)", "--processor 'memory_limiter' must come first", "unknown processor
// 'sample' (memory_limiter resource filter sampling tail_sampling batch)",
// "--memory-soft-mib 600 is above --memory-hard-mib 512".
// `max_frame_bytes` is the largest frame an input accepts: the hard limit
// must hold one.
Result<ProcessorConfig> CompileProcessors(const ProcessorSettings& settings, uint64_t max_frame_bytes);

}  // namespace telkit
