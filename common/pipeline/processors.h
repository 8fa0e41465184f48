// The item processors of tel-batch, each working on a decomposed request
// (request_parts.h) at the wire level: resource attribute edits, the item
// filter, and consistent probabilistic trace sampling. Each reports what it
// removed through DropCounts, by reason, so the pipeline can count every
// item it does not forward.
// Thread-safety: ItemFilter and TraceSampler are immutable after
// construction and may be shared; ResourceProcessor keeps a cache and is
// thread-compatible (the pipeline thread owns it).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/base/status.h"
#include "common/pipeline/filter_expr.h"
#include "common/pipeline/request_parts.h"

namespace telkit {

// Why items were not forwarded ("reason" label of tel_batch_dropped_*).
enum class DropReason : uint8_t {
  kFilterDrop,         // matched a --drop-* expression
  kFilterKeep,         // matched none of the --keep-* expressions
  kSampling,           // --sample-percent left its trace out
  kNoRoute,            // no output takes the signal
  kMalformed,          // the payload's framing is broken
  kExportRejected,     // an OTLP endpoint refused it (not retryable, or partial success)
  kUnsupportedSignal,  // an OTLP exporter cannot send the signal (prom-rw, unknown)
  kTailSampling,       // tail_sampling: no policy kept its trace
};
inline constexpr int kDropReasonCount = 8;
// "filter_drop", "filter_keep", "sampling", "no_route", "malformed",
// "export_rejected", "unsupported_signal", "tail_sampling".
std::string_view DropReasonName(DropReason reason);

struct DropCounts {
  std::array<int64_t, kDropReasonCount> items{};
  void Add(DropReason reason, int64_t n) { items[static_cast<size_t>(reason)] += n; }
  int64_t Get(DropReason reason) const { return items[static_cast<size_t>(reason)]; }
};

// ---- resource

struct ResourceAction {
  enum class Kind { kInsert, kUpdate, kUpsert, kDelete };
  Kind kind = Kind::kUpsert;
  std::string key;
  std::string value;  // a string attribute value; unused for kDelete
};

// "insert:KEY=VALUE" (only when KEY is absent), "update:KEY=VALUE" (only
// when present), "upsert:KEY=VALUE" (either way), "delete:KEY". The value is
// everything after the first '='. INVALID_ARGUMENT otherwise.
Result<ResourceAction> ParseResourceAction(std::string_view spec);

// Applies resource actions, in order, to every resource entry. Results are
// cached by the resource entry's bytes, since a stream repeats the same few
// resources over and over.
class ResourceProcessor {
 public:
  explicit ResourceProcessor(std::vector<ResourceAction> actions) : actions_(std::move(actions)) {}
  // True when some resource entry changed.
  bool Apply(RequestParts& parts);
  // The new header of a resource entry (ResourcePart::header) after the
  // actions: the Resource message (field 1) rewritten, other fields kept.
  std::string Rewrite(std::string_view header) const;

 private:
  static constexpr size_t kMaxCacheEntries = 4096;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<ResourceAction> actions_;
  // header bytes -> new header (nullptr: unchanged)
  std::unordered_map<std::string, std::shared_ptr<const std::string>, Hash, std::equal_to<>> cache_;
};

// ---- filter

struct FilterRules {
  std::vector<FilterExpr> drop;  // an item matching any of these is dropped
  std::vector<FilterExpr> keep;  // when not empty, an item matching none of these is dropped
  bool empty() const { return drop.empty() && keep.empty(); }
};

// Drops spans, log records and metric data points by FilterRules for their
// signal. Scope and resource entries left without items are removed; a
// metric left without data points is removed.
class ItemFilter {
 public:
  ItemFilter(FilterRules traces, FilterRules metrics, FilterRules logs);
  bool empty() const { return traces_.empty() && metrics_.empty() && logs_.empty(); }
  // Returns the items removed (also added to *dropped by reason).
  int64_t Apply(RequestParts& parts, DropCounts* dropped) const;

 private:
  const FilterRules& RulesFor(Signal signal) const;
  FilterRules traces_, metrics_, logs_;
  bool traces_resource_ = false, metrics_resource_ = false, logs_resource_ = false;
  bool traces_attributes_ = false, logs_attributes_ = false;
};

// ---- sampling

// The hash of a trace id that sampling decisions come from: 32-bit FNV-1a
// over the 4 bytes of `seed` (little-endian) followed by the trace id bytes.
// The same as the OpenTelemetry Collector's probabilistic_sampler in its
// hash_seed mode, so a tel-batch and a collector with the same seed agree.
uint32_t TraceIdHash(std::string_view trace_id, uint32_t seed);

// Keeps a trace when (TraceIdHash & 0x3FFF) < floor(percent * 163.84): the
// decision depends on the trace id alone, so every span of a trace gets the
// same one, in any number of processes. Log records with a 16-byte trace id
// follow their trace when `logs` is set; records without one are kept.
class TraceSampler {
 public:
  TraceSampler(double percent, uint32_t seed, bool logs);
  // False at 100 percent, where nothing is ever dropped.
  bool enabled() const { return threshold_ < kBuckets; }
  bool Keep(std::string_view trace_id) const;
  // Returns the items removed (also added to *dropped as kSampling).
  int64_t Apply(RequestParts& parts, DropCounts* dropped) const;

 private:
  static constexpr uint32_t kBuckets = 0x4000;
  uint32_t threshold_;
  uint32_t seed_;
  bool logs_;
};

}  // namespace telkit
