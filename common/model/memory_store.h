// A metrics store held entirely in memory: series with their samples, no
// durability. It is a real Querier, for the places that need data without a
// disk — query-language test scripts (`load` blocks), the head-socket tests,
// small tools — and the reference the disk store's reads are compared with.
//
// Thread-safe: appends and reads may run concurrently (one mutex).
#pragma once

#include <map>
#include <mutex>

#include "common/model/series.h"

namespace telkit {

class MemoryStore : public Querier {
 public:
  // Adds samples to the series `labels` (created when new). Samples may come
  // in any order; one at an existing timestamp replaces the old value.
  void Append(const Labels& labels, std::span<const Sample> samples);
  void Append(const Labels& labels, int64_t t, double v);
  void Clear();
  size_t num_series() const;

  Result<std::vector<SeriesSamples>> Select(int64_t mint, int64_t maxt,
                                            std::span<const LabelMatcher> matchers) override;
  Result<std::vector<std::string>> LabelNames(int64_t mint, int64_t maxt,
                                              std::span<const LabelMatcher> matchers) override;
  Result<std::vector<std::string>> LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                               std::span<const LabelMatcher> matchers) override;

 private:
  // The series matching `matchers` with their samples in [mint, maxt].
  std::vector<SeriesSamples> Matching(int64_t mint, int64_t maxt, std::span<const LabelMatcher> matchers) const;

  mutable std::mutex mu_;
  std::map<Labels, std::map<int64_t, double>> series_;  // sorted by labels, then time
};

}  // namespace telkit
