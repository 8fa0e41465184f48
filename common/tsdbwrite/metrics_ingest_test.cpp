// MetricsIngester over a real store on disk: the remote-write path that
// finds known series by the raw bytes of their labels (series-ref cache).
#include "common/tsdbwrite/metrics_ingest.h"

#include <gtest/gtest.h>

#include "common/otlp/signal.h"
#include "common/prom/remote_write.h"
#include "common/test_support/temp_dir.h"

namespace telkit {
namespace {

using test_support::TempDir;

Frame RwFrame(std::vector<TimeSeries> series) {
  Frame f;
  f.signal = static_cast<uint8_t>(Signal::kPrometheusRemoteWrite);
  f.payload = EncodeWriteRequest(series);
  return f;
}

TimeSeries Ts(Labels labels, std::vector<Sample> samples) { return TimeSeries{std::move(labels), std::move(samples), {}}; }

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MetricsStoreOptions o;
    o.background = false;
    o.max_future_ms = 0;
    auto s = MetricsStore::Open(DefaultFileSystem(), dir_.path(), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    ingester_ = std::make_unique<MetricsIngester>(store_.get(), &registry_);
  }
  std::vector<SeriesSamples> All() {
    auto m = LabelMatcher::Make(MatchType::kRegexMatch, "__name__", ".+");
    auto r = store_->Select(INT64_MIN, INT64_MAX, std::span(&*m, 1));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::vector<SeriesSamples>{};
  }

  TempDir dir_;
  MetricsRegistry registry_;
  std::unique_ptr<MetricsStore> store_;
  std::unique_ptr<MetricsIngester> ingester_;
};

TEST_F(IngestTest, KnownSeriesAreFoundByRawLabelBytesAcrossFramesAndFlushes) {
  const Labels a{{"__name__", "a"}, {"job", "x"}}, b{{"__name__", "b"}, {"job", "x"}};
  // One sample per TimeSeries, a series twice in one request (as senders do).
  ASSERT_TRUE(ingester_->Ingest(RwFrame({Ts(a, {{1000, 1}}), Ts(b, {{1000, 2}}), Ts(a, {{2000, 3}})})).ok());
  EXPECT_EQ(store_->stats().series_created, 2u);
  std::vector<Frame> frames = {RwFrame({Ts(a, {{3000, 4}}), Ts(b, {{3000, 5}})}),
                               RwFrame({Ts(a, {{4000, 6}})})};
  ASSERT_TRUE(ingester_->IngestBatch(frames).ok());
  EXPECT_EQ(store_->stats().series_created, 2u);
  // After a flush the head forgets the series: the cached refs are stale
  // and the labels find (recreate) them.
  ASSERT_TRUE(store_->FlushHead().ok());
  ASSERT_TRUE(ingester_->Ingest(RwFrame({Ts(a, {{10'000'000, 7}}), Ts(b, {{10'000'000, 8}})})).ok());
  ASSERT_TRUE(ingester_->Ingest(RwFrame({Ts(a, {{10'001'000, 9}})})).ok());
  auto all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].labels, a);
  EXPECT_EQ(all[0].samples, (std::vector<Sample>{{1000, 1}, {2000, 3}, {3000, 4}, {4000, 6}, {10'000'000, 7}, {10'001'000, 9}}));
  EXPECT_EQ(all[1].samples, (std::vector<Sample>{{1000, 2}, {3000, 5}, {10'000'000, 8}}));
  EXPECT_TRUE(ingester_->rejected().empty());
}

TEST_F(IngestTest, BadSeriesAreRejectedEvenWhenTheirNeighboursAreCached) {
  const Labels good{{"__name__", "g"}};
  ASSERT_TRUE(ingester_->Ingest(RwFrame({Ts(good, {{1000, 1}})})).ok());
  Labels bad_name;
  bad_name.Set("__name__", "1bad");
  ASSERT_TRUE(ingester_->Ingest(RwFrame({Ts(good, {{2000, 2}}), Ts(bad_name, {{2000, 1}}),
                                         Ts(Labels{{"__name__", "empty"}}, {})}))
                  .ok());
  auto rejected = ingester_->rejected();
  EXPECT_EQ(rejected["invalid_metric_name"], 1u);
  EXPECT_EQ(rejected["no_samples"], 1u);
  // Tighter limits apply to series already cached.
  LabelLimits tight;
  tight.max_labels = 1;
  const Labels two{{"__name__", "t"}, {"job", "x"}};
  ASSERT_TRUE(ingester_->Ingest(RwFrame({Ts(two, {{1000, 1}})})).ok());
  ingester_->SetLimits(tight);
  ASSERT_TRUE(ingester_->Ingest(RwFrame({Ts(two, {{2000, 1}}), Ts(good, {{3000, 3}})})).ok());
  EXPECT_EQ(ingester_->rejected()["too_many_labels"], 1u);
  auto all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].samples.size(), 3u);  // g
  EXPECT_EQ(all[1].samples.size(), 1u);  // t: only the sample before the limit
}

TEST_F(IngestTest, NothingOfAMalformedFrameIsStoredAndTheRestOfTheBatchIs) {
  Frame good = RwFrame({Ts(Labels{{"__name__", "a"}}, {{1000, 1}})});
  Frame damaged = RwFrame({Ts(Labels{{"__name__", "b"}}, {{1000, 1}}), Ts(Labels{{"__name__", "c"}}, {{1000, 1}})});
  damaged.payload.resize(damaged.payload.size() - 3);  // the second series is cut short
  std::vector<Frame> frames = {good, damaged};
  ASSERT_TRUE(ingester_->IngestBatch(frames).ok());
  auto all = All();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].labels.MetricName(), "a");
}

TEST_F(IngestTest, AppendRefsReportsRefsAndTakesStaleHints) {
  const Labels a{{"__name__", "a"}};
  std::vector<Sample> s1 = {{1000, 1}}, s2 = {{2000, 2}};
  SeriesRefAppend one{&a, 0, s1, {}};
  uint64_t ref = 0;
  ASSERT_TRUE(store_->AppendRefs(std::span(&one, 1), {}, std::span(&ref, 1)).ok());
  EXPECT_NE(ref, 0u);
  SeriesRefAppend stale{&a, ref + 1000, s2, {}};  // no such ref: found by labels
  uint64_t ref2 = 0;
  ASSERT_TRUE(store_->AppendRefs(std::span(&stale, 1), {}, std::span(&ref2, 1)).ok());
  EXPECT_EQ(ref2, ref);
  EXPECT_EQ(store_->stats().series_created, 1u);
  EXPECT_EQ(store_->stats().samples_appended, 2u);
}

TEST_F(IngestTest, AppendRefsWithoutLabelsListsStaleRefsAndAppendsNothingOfThem) {
  const Labels a{{"__name__", "a"}}, b{{"__name__", "b"}};
  std::vector<Sample> s1 = {{1000, 1}}, s2 = {{2000, 2}};
  std::vector<SeriesRefAppend> first = {{&a, 0, s1, {}}, {&b, 0, s1, {}}};
  std::vector<uint64_t> refs(2);
  ASSERT_TRUE(store_->AppendRefs(first, {}, refs).ok());
  // Known refs need no labels; a stale one without labels is listed, the rest stored.
  std::vector<SeriesRefAppend> second = {{nullptr, refs[1] + 1000, s2, {}}, {nullptr, refs[1], s2, {}}};
  std::vector<uint64_t> refs2(2);
  auto r = store_->AppendRefs(second, {}, refs2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->unknown_refs, std::vector<size_t>{0});
  EXPECT_EQ(refs2[0], 0u);
  EXPECT_EQ(refs2[1], refs[1]);
  EXPECT_EQ(r->samples_appended, 1u);
  // Neither labels nor a ref: refused as a whole.
  SeriesRefAppend none{nullptr, 0, s2, {}};
  EXPECT_EQ(store_->AppendRefs(std::span(&none, 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->stats().samples_appended, 3u);
}

TEST_F(IngestTest, CachedSeriesDroppedByTheHeadAreRecreatedFromTheFrameInOneBatch) {
  const Labels a{{"__name__", "a"}, {"job", "x"}};
  ASSERT_TRUE(ingester_->Ingest(RwFrame({Ts(a, {{1000, 1}})})).ok());
  ASSERT_TRUE(ingester_->Ingest(RwFrame({Ts(a, {{2000, 2}})})).ok());  // the ref is cached now
  ASSERT_TRUE(store_->FlushHead().ok());
  // The same series twice in a batch, both with the stale ref.
  std::vector<Frame> frames = {RwFrame({Ts(a, {{3000, 3}})}), RwFrame({Ts(a, {{4000, 4}})})};
  ASSERT_TRUE(ingester_->IngestBatch(frames).ok());
  ASSERT_TRUE(ingester_->Ingest(RwFrame({Ts(a, {{5000, 5}})})).ok());  // the new ref was learned
  auto all = All();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].samples.size(), 5u);
  EXPECT_EQ(store_->stats().samples_appended, 5u);
  EXPECT_TRUE(ingester_->rejected().empty());
}

}  // namespace
}  // namespace telkit
