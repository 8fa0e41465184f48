#include "common/model/merge_querier.h"

#include <gtest/gtest.h>

#include <bit>
#include <random>

#include "common/model/memory_store.h"

namespace telkit {
namespace {

LabelMatcher M(MatchType t, std::string name, std::string value) {
  auto m = LabelMatcher::Make(t, std::move(name), std::move(value));
  EXPECT_TRUE(m.ok());
  return *m;
}

class FailingQuerier : public Querier {
 public:
  Result<std::vector<SeriesSamples>> Select(int64_t, int64_t, std::span<const LabelMatcher>) override {
    return UnavailableError("head down");
  }
  Result<std::vector<std::string>> LabelNames(int64_t, int64_t, std::span<const LabelMatcher>) override {
    return UnavailableError("head down");
  }
  Result<std::vector<std::string>> LabelValues(std::string_view, int64_t, int64_t,
                                               std::span<const LabelMatcher>) override {
    return UnavailableError("head down");
  }
};

TEST(MergeSamples, FirstWinsAtEqualTimestamps) {
  std::vector<Sample> a = {{1, 10}, {3, 30}, {5, 50}};
  std::vector<Sample> b = {{0, -1}, {3, -3}, {4, -4}, {5, -5}, {9, -9}};
  EXPECT_EQ(MergeSamples(a, b), (std::vector<Sample>{{0, -1}, {1, 10}, {3, 30}, {4, -4}, {5, 50}, {9, -9}}));
  EXPECT_EQ(MergeSamples(b, a), (std::vector<Sample>{{0, -1}, {1, 10}, {3, -3}, {4, -4}, {5, -5}, {9, -9}}));
  EXPECT_EQ(MergeSamples({}, a), a);
  EXPECT_EQ(MergeSamples(a, {}), a);
}

TEST(MergeQuerier, BlocksAndHead) {
  MemoryStore head, block;
  Labels up_a{{"__name__", "up"}, {"job", "a"}};
  Labels up_b{{"__name__", "up"}, {"job", "b"}};
  Labels other{{"__name__", "other"}, {"zone", "eu"}};
  block.Append(up_a, 1000, 1);
  block.Append(up_a, 2000, 1);
  block.Append(up_b, 1000, 0);
  head.Append(up_a, 2000, 7);  // overlaps the block: the head (listed first) wins
  head.Append(up_a, 3000, 1);
  head.Append(other, 3000, 5);
  MergeQuerier q({&head, &block});
  std::vector<LabelMatcher> ups = {M(MatchType::kEqual, "__name__", "up")};
  auto r = q.Select(0, 10000, ups);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].labels, up_a);
  EXPECT_EQ((*r)[0].samples, (std::vector<Sample>{{1000, 1}, {2000, 7}, {3000, 1}}));
  EXPECT_EQ((*r)[1].labels, up_b);
  EXPECT_EQ(*q.LabelNames(0, 10000, {}), (std::vector<std::string>{"__name__", "job", "zone"}));
  EXPECT_EQ(*q.LabelValues("job", 0, 10000, {}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*q.LabelValues("__name__", 0, 10000, {}), (std::vector<std::string>{"other", "up"}));
  EXPECT_TRUE(q.LabelValues("nope", 0, 10000, {})->empty());

  MergeQuerier reversed({&block, &head});
  EXPECT_EQ((*reversed.Select(0, 10000, ups))[0].samples[1], (Sample{2000, 1}));
  MergeQuerier none({});
  EXPECT_TRUE(none.Select(0, 1, ups)->empty());
}

TEST(MergeQuerier, ErrorsAreNotHidden) {
  MemoryStore block;
  block.Append(Labels{{"__name__", "up"}}, 1, 1);
  FailingQuerier head;
  MergeQuerier q({&block, &head});
  std::vector<LabelMatcher> ups = {M(MatchType::kEqual, "__name__", "up")};
  auto r = q.Select(0, 10, ups);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "querier 1: head down");
  EXPECT_FALSE(q.LabelNames(0, 10, {}).ok());
  EXPECT_FALSE(q.LabelValues("a", 0, 10, {}).ok());
}

// A store that also describes its families.
class MetadataStore : public MemoryStore {
 public:
  explicit MetadataStore(std::vector<MetricMetadata> md) : md_(std::move(md)) {}
  Result<std::vector<MetricMetadata>> Metadata(std::string_view family) override {
    std::vector<MetricMetadata> out;
    for (const auto& m : md_) {
      if (family.empty() || m.family == family) out.push_back(m);
    }
    return out;
  }

 private:
  std::vector<MetricMetadata> md_;
};

TEST(MergeQuerier, MetadataIsTheUnionByFamilyFirstWins) {
  MetadataStore head({{"up", MetricFamilyType::kGauge, "Up (head).", ""},
                      {"req", MetricFamilyType::kCounter, "Requests.", ""}});
  MetadataStore blocks({{"up", MetricFamilyType::kGauge, "Up (blocks).", ""},
                        {"lat", MetricFamilyType::kHistogram, "Latency.", "seconds"}});
  MemoryStore none;  // the Querier default: no metadata
  MergeQuerier q({&head, &none, &blocks});
  auto all = q.Metadata("");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].family, "lat");  // sorted by family
  EXPECT_EQ((*all)[1].family, "req");
  EXPECT_EQ((*all)[2].help, "Up (head).");
  auto one = q.Metadata("lat");
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].unit, "seconds");
  FailingQuerier down;
  MergeQuerier failing({&blocks, &down});
  EXPECT_TRUE(failing.Metadata("").ok());  // FailingQuerier keeps the default
}

// Property: merging N stores equals one store that got every sample, the
// first store's last (so that its values overwrite).
TEST(MergeQuerier, EqualsOneCombinedStoreForRandomData) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 20; ++round) {
    int n = 1 + static_cast<int>(rng() % 4);
    std::vector<MemoryStore> stores(n);
    std::vector<std::vector<std::pair<Labels, Sample>>> appended(n);
    for (int s = 0; s < n; ++s) {
      int k = static_cast<int>(rng() % 200);
      for (int i = 0; i < k; ++i) {
        Labels l{{"__name__", rng() % 2 ? "a" : "b"}, {"i", std::to_string(rng() % 5)}};
        if (rng() % 4 == 0) l.Set("x", std::to_string(rng() % 3));
        Sample smp{static_cast<int64_t>(rng() % 100), static_cast<double>(s * 1000 + i)};
        stores[s].Append(l, smp.t, smp.v);
        appended[s].push_back({l, smp});
      }
    }
    MemoryStore combined;
    for (int s = n - 1; s >= 0; --s) {
      for (auto& [l, smp] : appended[s]) combined.Append(l, smp.t, smp.v);
    }
    std::vector<Querier*> qs;
    for (auto& s : stores) qs.push_back(&s);
    MergeQuerier merged(qs);
    for (int q = 0; q < 10; ++q) {
      int64_t mint = static_cast<int64_t>(rng() % 100) - 10, maxt = mint + static_cast<int64_t>(rng() % 80);
      std::vector<LabelMatcher> m = {M(MatchType::kRegexMatch, "__name__", rng() % 2 ? "a|b" : "a")};
      if (rng() % 2) m.push_back(M(MatchType::kNotEqual, "x", "1"));
      auto got = merged.Select(mint, maxt, m);
      auto want = combined.Select(mint, maxt, m);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(got->size(), want->size());
      for (size_t i = 0; i < got->size(); ++i) {
        EXPECT_EQ((*got)[i].labels, (*want)[i].labels);
        EXPECT_EQ((*got)[i].samples, (*want)[i].samples);
      }
      EXPECT_EQ(*merged.LabelNames(mint, maxt, m), *combined.LabelNames(mint, maxt, m));
      EXPECT_EQ(*merged.LabelValues("i", mint, maxt, {}), *combined.LabelValues("i", mint, maxt, {}));
    }
  }
}

}  // namespace
}  // namespace telkit
