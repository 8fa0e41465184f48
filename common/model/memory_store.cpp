#include "common/model/memory_store.h"

#include <set>

namespace telkit {

void MemoryStore::Append(const Labels& labels, std::span<const Sample> samples) {
  std::lock_guard lock(mu_);
  auto& series = series_[labels];
  for (const Sample& s : samples) series[s.t] = s.v;
}

void MemoryStore::Append(const Labels& labels, int64_t t, double v) {
  const Sample s{t, v};
  Append(labels, std::span<const Sample>(&s, 1));
}

void MemoryStore::Clear() {
  std::lock_guard lock(mu_);
  series_.clear();
}

size_t MemoryStore::num_series() const {
  std::lock_guard lock(mu_);
  return series_.size();
}

std::vector<SeriesSamples> MemoryStore::Matching(int64_t mint, int64_t maxt,
                                                 std::span<const LabelMatcher> matchers) const {
  std::vector<SeriesSamples> out;
  std::lock_guard lock(mu_);
  for (const auto& [labels, samples] : series_) {
    if (!MatchesAll(labels, matchers)) continue;
    SeriesSamples s{labels, {}};
    for (auto it = samples.lower_bound(mint); it != samples.end() && it->first <= maxt; ++it) {
      s.samples.push_back({it->first, it->second});
    }
    if (!s.samples.empty()) out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<SeriesSamples>> MemoryStore::Select(int64_t mint, int64_t maxt,
                                                       std::span<const LabelMatcher> matchers) {
  return Matching(mint, maxt, matchers);
}

Result<std::vector<std::string>> MemoryStore::LabelNames(int64_t mint, int64_t maxt,
                                                         std::span<const LabelMatcher> matchers) {
  std::set<std::string> names;
  for (const SeriesSamples& s : Matching(mint, maxt, matchers)) {
    for (const Label& l : s.labels) names.insert(l.name);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Result<std::vector<std::string>> MemoryStore::LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                                          std::span<const LabelMatcher> matchers) {
  std::set<std::string, std::less<>> values;
  for (const SeriesSamples& s : Matching(mint, maxt, matchers)) {
    if (std::string_view v = s.labels.Get(name); !v.empty()) values.emplace(v);
  }
  return std::vector<std::string>(values.begin(), values.end());
}

}  // namespace telkit
