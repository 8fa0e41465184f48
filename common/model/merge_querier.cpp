#include "common/model/merge_querier.h"

#include <algorithm>
#include <map>

namespace telkit {
namespace {

Status Prefixed(size_t i, const Status& s) {
  return Status(s.code(), "querier " + std::to_string(i) + ": " + s.message());
}

// Sorted union (tolerates lists that are not sorted or unique).
std::vector<std::string> Union(std::vector<std::vector<std::string>> lists) {
  if (lists.size() == 1) return std::move(lists[0]);
  std::vector<std::string> out;
  for (auto& l : lists) out.insert(out.end(), std::make_move_iterator(l.begin()), std::make_move_iterator(l.end()));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

std::vector<Sample> MergeSamples(std::span<const Sample> a, std::span<const Sample> b) {
  std::vector<Sample> out;
  out.reserve(a.size() + b.size());
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i].t < b[j].t) {
      out.push_back(a[i++]);
    } else if (b[j].t < a[i].t) {
      out.push_back(b[j++]);
    } else {
      out.push_back(a[i++]);
      ++j;
    }
  }
  out.insert(out.end(), a.begin() + static_cast<ptrdiff_t>(i), a.end());
  out.insert(out.end(), b.begin() + static_cast<ptrdiff_t>(j), b.end());
  return out;
}

std::vector<SeriesSamples> MergeSeriesSets(std::vector<std::vector<SeriesSamples>> sets) {
  if (sets.empty()) return {};
  if (sets.size() == 1) return std::move(sets[0]);
  std::vector<SeriesSamples> out;
  for (auto& set : sets) {
    // Two-way merge of the result so far (earlier sets, which win) with `set`.
    std::vector<SeriesSamples> merged;
    merged.reserve(std::max(out.size(), set.size()));
    size_t i = 0, j = 0;
    while (i < out.size() || j < set.size()) {
      if (j == set.size() || (i < out.size() && out[i].labels < set[j].labels)) {
        merged.push_back(std::move(out[i++]));
      } else if (i == out.size() || set[j].labels < out[i].labels) {
        merged.push_back(std::move(set[j++]));
      } else {
        SeriesSamples s{std::move(out[i].labels), MergeSamples(out[i].samples, set[j].samples)};
        merged.push_back(std::move(s));
        ++i;
        ++j;
      }
    }
    out = std::move(merged);
  }
  return out;
}

MergeQuerier::MergeQuerier(std::vector<Querier*> queriers) : queriers_(std::move(queriers)) {}

Result<std::vector<SeriesSamples>> MergeQuerier::Select(int64_t mint, int64_t maxt,
                                                        std::span<const LabelMatcher> matchers) {
  std::vector<std::vector<SeriesSamples>> sets;
  sets.reserve(queriers_.size());
  for (size_t i = 0; i < queriers_.size(); ++i) {
    auto r = queriers_[i]->Select(mint, maxt, matchers);
    if (!r.ok()) return Prefixed(i, r.status());
    sets.push_back(std::move(*r));
  }
  return MergeSeriesSets(std::move(sets));
}

Result<std::vector<std::string>> MergeQuerier::LabelNames(int64_t mint, int64_t maxt,
                                                          std::span<const LabelMatcher> matchers) {
  std::vector<std::vector<std::string>> lists;
  for (size_t i = 0; i < queriers_.size(); ++i) {
    auto r = queriers_[i]->LabelNames(mint, maxt, matchers);
    if (!r.ok()) return Prefixed(i, r.status());
    lists.push_back(std::move(*r));
  }
  return Union(std::move(lists));
}

Result<std::vector<std::string>> MergeQuerier::LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                                           std::span<const LabelMatcher> matchers) {
  std::vector<std::vector<std::string>> lists;
  for (size_t i = 0; i < queriers_.size(); ++i) {
    auto r = queriers_[i]->LabelValues(name, mint, maxt, matchers);
    if (!r.ok()) return Prefixed(i, r.status());
    lists.push_back(std::move(*r));
  }
  return Union(std::move(lists));
}

Result<std::vector<MetricMetadata>> MergeQuerier::Metadata(std::string_view family) {
  std::map<std::string, MetricMetadata, std::less<>> by_family;
  for (size_t i = 0; i < queriers_.size(); ++i) {
    auto r = queriers_[i]->Metadata(family);
    if (!r.ok()) return Prefixed(i, r.status());
    for (MetricMetadata& m : *r) by_family.try_emplace(m.family, std::move(m));  // first querier wins
  }
  std::vector<MetricMetadata> out;
  out.reserve(by_family.size());
  for (auto& [k, m] : by_family) out.push_back(std::move(m));
  return out;
}

}  // namespace telkit
