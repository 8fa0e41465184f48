// A Querier over several Queriers read as one store: the immutable blocks on
// disk and the head behind the query socket, say. Series with equal labels
// are merged by time; where two queriers hold a sample at the same
// timestamp, the one listed first wins (list the fresher source first — the
// head — or the one whose values are authoritative). Label names and values
// are unioned, sorted and unique.
//
// Thread-safe when every querier is; it holds no state of its own besides
// the list.
#pragma once

#include <vector>

#include "common/model/series.h"

namespace telkit {

class MergeQuerier : public Querier {
 public:
  // REQUIRES: every querier is non-null and outlives this object.
  explicit MergeQuerier(std::vector<Querier*> queriers);

  // Fails with the first querier's error, prefixed with its index
  // ("querier 1: ..."): a result missing one source would be silently wrong.
  Result<std::vector<SeriesSamples>> Select(int64_t mint, int64_t maxt,
                                            std::span<const LabelMatcher> matchers) override;
  Result<std::vector<std::string>> LabelNames(int64_t mint, int64_t maxt,
                                              std::span<const LabelMatcher> matchers) override;
  Result<std::vector<std::string>> LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                               std::span<const LabelMatcher> matchers) override;
  // The union by family; where several queriers describe one family, the
  // one listed first wins (as for samples).
  Result<std::vector<MetricMetadata>> Metadata(std::string_view family) override;

 private:
  std::vector<Querier*> queriers_;
};

// Merges series lists, each sorted by labels with samples sorted by time, as
// MergeQuerier::Select does: equal labels merged, at an equal timestamp the
// earlier list's sample kept. Exposed for stores that merge in-process.
std::vector<SeriesSamples> MergeSeriesSets(std::vector<std::vector<SeriesSamples>> sets);

// Merges samples sorted by time; at an equal timestamp `a`'s sample is kept.
std::vector<Sample> MergeSamples(std::span<const Sample> a, std::span<const Sample> b);

}  // namespace telkit
