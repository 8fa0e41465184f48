#include "common/tsdb/metrics_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "common/fs/fault_injecting_file_system.h"
#include "common/tsdb/block.h"
#include "common/tsdb/chunk.h"
#include "common/tsdb/wal_records.h"
#include "common/test_support/temp_dir.h"

namespace telkit {
namespace {

constexpr int64_t kHour = 3600 * 1000;

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (!out.empty()) out += ' ';
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

using test_support::TempDir;

LabelMatcher Eq(std::string name, std::string value) {
  return LabelMatcher::Make(MatchType::kEqual, std::move(name), std::move(value)).value();
}

TimeSeries Series(std::string metric, std::string instance, std::vector<Sample> samples) {
  TimeSeries ts;
  ts.labels = Labels{{"__name__", metric}, {"instance", instance}};
  ts.samples = std::move(samples);
  return ts;
}

MetricsStoreOptions TestOptions() {
  MetricsStoreOptions o;
  o.background = false;
  return o;
}

std::vector<Sample> SelectOne(MetricsStore* store, const std::string& metric, const std::string& instance,
                              int64_t mint = INT64_MIN, int64_t maxt = INT64_MAX) {
  std::vector<LabelMatcher> m = {Eq("__name__", metric), Eq("instance", instance)};
  auto r = store->Select(mint, maxt, m);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok() || r->empty()) return {};
  EXPECT_EQ(r->size(), 1u);
  return (*r)[0].samples;
}

TEST(MetricsStore, AppendSelectAndReopen) {
  TempDir dir;
  {
    auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::vector<TimeSeries> batch = {Series("up", "a", {{1000, 1}, {16000, 1}}), Series("up", "b", {{1000, 0}})};
    std::vector<MetricMetadata> meta = {{"up", MetricFamilyType::kGauge, "Target is up.", ""}};
    auto r = (*store)->Append(batch, meta);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->samples_appended, 3u);
    EXPECT_EQ(r->series_created, 2u);
    EXPECT_TRUE(r->rejected.empty());
    EXPECT_EQ(SelectOne(store->get(), "up", "a"), (std::vector<Sample>{{1000, 1}, {16000, 1}}));
    std::vector<LabelMatcher> m = {Eq("__name__", "up")};
    auto all = (*store)->Select(0, 5000, m);
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->size(), 2u);
    EXPECT_EQ((*all)[0].labels.Get("instance"), "a");
    EXPECT_EQ((*all)[0].samples.size(), 1u);
    auto values = (*store)->LabelValues("instance", INT64_MIN, INT64_MAX, m);
    ASSERT_TRUE(values.ok());
    EXPECT_EQ(*values, (std::vector<std::string>{"a", "b"}));
    auto names = (*store)->LabelNames(INT64_MIN, INT64_MAX, {});
    ASSERT_TRUE(names.ok());
    EXPECT_EQ(*names, (std::vector<std::string>{"__name__", "instance"}));
    EXPECT_EQ((*store)->stats().head_series, 2u);
    ASSERT_TRUE((*store)->Close().ok());
  }
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(SelectOne(store->get(), "up", "a"), (std::vector<Sample>{{1000, 1}, {16000, 1}}));
  EXPECT_EQ(SelectOne(store->get(), "up", "b"), (std::vector<Sample>{{1000, 0}}));
  auto md = (*store)->Metadata("up");
  ASSERT_TRUE(md.ok());
  ASSERT_EQ(md->size(), 1u);
  EXPECT_EQ((*md)[0].help, "Target is up.");
  // Refs continue after the replayed ones: a new series does not collide.
  std::vector<TimeSeries> more = {Series("up", "c", {{2000, 5}}), Series("up", "a", {{31000, 2}})};
  auto r = (*store)->Append(more);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->series_created, 1u);
  EXPECT_EQ(SelectOne(store->get(), "up", "c"), (std::vector<Sample>{{2000, 5}}));
  EXPECT_EQ(SelectOne(store->get(), "up", "a").size(), 3u);
}

TEST(MetricsStore, BackfillWritesOverlappingBlocksThatCompactionMerges) {
  TempDir dir;
  MetricsStoreOptions o = TestOptions();
  o.block_range_ms = 10000;
  o.max_future_ms = 0;
  {  // Without backfill, data older than the newest block is out of bounds.
    auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->Append(std::vector<TimeSeries>{Series("m", "a", {{20000, 1}, {25000, 2}})}).ok());
    ASSERT_TRUE((*store)->FlushHead().ok());
    auto r = (*store)->Append(std::vector<TimeSeries>{Series("m", "a", {{5000, 9}})});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->rejected["out_of_bounds"], 1u);
  }
  o.backfill = true;
  o.out_of_order_window_ms = 1000000;
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  // Older than every block, and inside the block [20000, 30000) with one
  // sample it already has.
  auto r = (*store)->Append(std::vector<TimeSeries>{Series("m", "a", {{5000, 9}, {21000, 3}, {25000, 2}})});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->rejected.empty());
  ASSERT_TRUE((*store)->FlushHead().ok());
  const std::vector<Sample> want = {{5000, 9}, {20000, 1}, {21000, 3}, {25000, 2}};
  EXPECT_EQ(SelectOne(store->get(), "m", "a"), want);  // read across overlapping blocks
  const uint64_t blocks_before = (*store)->stats().blocks;
  ASSERT_TRUE((*store)->Compact().ok());
  EXPECT_EQ((*store)->stats().overlapping_compactions, 1u);
  EXPECT_EQ((*store)->stats().blocks, blocks_before - 1);
  EXPECT_EQ(SelectOne(store->get(), "m", "a"), want);
  ASSERT_TRUE((*store)->Close().ok());
  // Reopened: the merged blocks are what is on disk.
  auto again = MetricsStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(SelectOne(again->get(), "m", "a"), want);
}

TEST(MetricsStore, RejectsPerItemWithReasons) {
  TempDir dir;
  MetricsStoreOptions o = TestOptions();
  o.max_series = 3;
  o.max_series_per_metric = 2;
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  MetricsStore* s = store->get();
  ASSERT_TRUE(s->Append(std::vector<TimeSeries>{Series("m", "a", {{1000, 1}, {2000, 2}})}).ok());
  std::vector<TimeSeries> batch = {
      Series("m", "a", {{2000, 2}, {2000, 3}, {1500, 9}, {3000, StaleNaN()}}),
      Series("m", "b", {{1000, 1}}),
      Series("m", "c", {{1000, 1}}),     // per-metric limit
      Series("n", "a", {{1000, 1}}),     // third series: fits
      Series("o", "a", {{1000, 1}}),     // fourth: series limit
  };
  TimeSeries bad;
  bad.labels = Labels{{"instance", "x"}};
  bad.samples = {{1, 1}};
  batch.push_back(bad);
  TimeSeries bad_name;
  bad_name.labels = Labels{{"__name__", "1bad"}};
  bad_name.samples = {{1, 1}, {2, 2}};
  batch.push_back(bad_name);
  auto r = s->Append(batch);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->samples_appended, 3u);  // stale marker, m/b, n/a
  EXPECT_EQ(r->rejected["duplicate"], 1u);
  EXPECT_EQ(r->rejected["duplicate_timestamp"], 1u);
  EXPECT_EQ(r->rejected["out_of_order"], 1u);
  EXPECT_EQ(r->rejected["series_per_metric_limit"], 1u);
  EXPECT_EQ(r->rejected["series_limit"], 1u);
  EXPECT_EQ(r->rejected[std::string(LabelProblemName(LabelProblem::kMissingMetricName))], 1u);
  EXPECT_EQ(r->rejected[std::string(LabelProblemName(LabelProblem::kInvalidMetricName))], 2u);
  // A timestamp far in the future (or the far past) is refused, not stored.
  auto future = s->Append(std::vector<TimeSeries>{Series("m", "a", {{int64_t{1} << 60, 1}, {INT64_MIN, 1}})});
  ASSERT_TRUE(future.ok());
  EXPECT_EQ(future->rejected["too_far_in_future"], 1u);
  EXPECT_EQ(future->rejected["out_of_bounds"], 1u);
  auto got = SelectOne(s, "m", "a");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(std::bit_cast<uint64_t>(got[2].v), kStaleNaNBits);  // bit-exact
  EXPECT_EQ(got[1], (Sample{2000, 2}));
  EXPECT_EQ(s->stats().rejected.at("out_of_order"), 1u);
}

TEST(MetricsStore, OutOfOrderWindow) {
  TempDir dir;
  MetricsStoreOptions o = TestOptions();
  o.out_of_order_window_ms = 10000;
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  MetricsStore* s = store->get();
  std::vector<Sample> in;
  for (int i = 0; i < 1000; ++i) in.push_back({int64_t{i} * 1000, double(i)});
  ASSERT_TRUE(s->Append(std::vector<TimeSeries>{Series("m", "a", in)}).ok());
  auto r = s->Append(std::vector<TimeSeries>{Series("m", "a", {{990500, 1.5}, {995000, 995}, {995000, 7}, {100, 3}, {1500, 2}})});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->samples_appended, 1u);
  EXPECT_EQ(r->rejected["duplicate"], 1u);
  EXPECT_EQ(r->rejected["duplicate_timestamp"], 1u);
  EXPECT_EQ(r->rejected["out_of_order"], 2u);
  auto got = SelectOne(s, "m", "a", 990000, 991000);
  EXPECT_EQ(got, (std::vector<Sample>{{990000, 990}, {990500, 1.5}, {991000, 991}}));
  ASSERT_TRUE(s->Close().ok());
  auto again = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(SelectOne(again->get(), "m", "a", 990000, 991000), got);
  EXPECT_EQ(SelectOne(again->get(), "m", "a").size(), 1001u);
}

TEST(MetricsStore, ExemplarsAndBadInput) {
  TempDir dir;
  MetricsStoreOptions o = TestOptions();
  o.wal.segment_bytes = 1 << 20;
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  TimeSeries ts = Series("req", "a", {{1000, 1}});
  ts.exemplars.push_back(Exemplar{Labels{{"trace_id", "abc"}}, 1, 1000});
  ts.exemplars.push_back(Exemplar{Labels{{"trace_id", std::string(200, 'x')}}, 1, 1000});
  std::vector<MetricMetadata> meta = {{"", MetricFamilyType::kGauge, "", ""}};
  auto r = (*store)->Append(std::vector<TimeSeries>{ts}, meta);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exemplars_appended, 1u);
  EXPECT_EQ(r->rejected["invalid_exemplar"], 1u);
  EXPECT_EQ(r->rejected["invalid_metadata"], 1u);
  std::vector<LabelMatcher> m = {Eq("__name__", "req")};
  auto ex = (*store)->Exemplars(0, 2000, m);
  ASSERT_TRUE(ex.ok());
  ASSERT_EQ(ex->size(), 1u);
  EXPECT_EQ((*ex)[0].second.labels.Get("trace_id"), "abc");
  // Too large for one WAL record: refused whole, and the store goes on.
  TimeSeries huge = Series("huge", "a", {});
  for (int i = 0; i < 200000; ++i) huge.samples.push_back({int64_t{i} + 2000, 1});
  auto r2 = (*store)->Append(std::vector<TimeSeries>{huge});
  EXPECT_EQ(r2.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*store)->Append(std::vector<TimeSeries>{Series("req", "a", {{2000, 2}})}).ok());
  ASSERT_TRUE((*store)->Close().ok());
  EXPECT_EQ((*store)->Append(std::vector<TimeSeries>{ts}).status().code(), StatusCode::kFailedPrecondition);
}

TEST(MetricsStore, ConcurrentAppendsShareFsyncs) {
  TempDir dir;
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
  ASSERT_TRUE(store.ok());
  MetricsStore* s = store->get();
  constexpr int kThreads = 4, kPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = s->Append(std::vector<TimeSeries>{Series("c", std::to_string(t), {{int64_t{i} * 1000, double(i)}}),
                                                   Series("shared", "x", {{int64_t{t} * 100000 + i, 1}})});
        ASSERT_TRUE(r.ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(SelectOne(s, "c", std::to_string(t)).size(), size_t{kPerThread});
  MetricsStoreStats st = s->stats();
  EXPECT_EQ(st.wal_records, uint64_t{kThreads * kPerThread});
  EXPECT_LE(st.wal_commits, st.wal_records);
  EXPECT_GT(st.wal_fsync_nanos, 0u);
  EXPECT_GE(st.wal_fsync_nanos, st.wal_fsync_max_nanos);
  EXPECT_EQ(st.append_calls, uint64_t{kThreads * kPerThread});
}

// Appends, queries and the background thread (cutting blocks every 10 s of
// data, compacting, checkpointing) at once: every acknowledged sample is
// readable throughout and after a reopen.
TEST(MetricsStore, ConcurrentAppendsQueriesAndBackgroundWork) {
  TempDir dir;
  MetricsStoreOptions o;
  o.block_range_ms = 10000;
  o.retention_ms = 1000 * 10000;
  o.background_interval_ms = 2;
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  MetricsStore* s = store->get();
  constexpr int kWriters = 2, kSteps = 200;
  std::atomic<int> done{0};
  // The writers move in step: a writer running ahead would let the head cut
  // a block past the other's next timestamp, which is then out of bounds.
  std::barrier step(kWriters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      // Counted on every exit, a failed assertion included, so the reader
      // below stops, the other writer is released, and the failure is reported instead of hanging.
      struct Done {
        std::atomic<int>& n;
        std::barrier<>& step;
        ~Done() {
          step.arrive_and_drop();
          n++;
        }
      } count_done{done, step};
      for (int i = 0; i < kSteps; ++i) {
        step.arrive_and_wait();
        std::vector<TimeSeries> batch;
        for (int k = 0; k < 10; ++k) {
          batch.push_back(Series("w" + std::to_string(w), std::to_string(k), {{int64_t{i} * 1000, double(i)}}));
        }
        auto r = s->Append(batch);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        ASSERT_EQ(r->samples_appended, 10u) << i;
      }
    });
  }
  threads.emplace_back([&] {
    while (done.load() < kWriters) {
      std::vector<LabelMatcher> m = {Eq("__name__", "w0"), Eq("instance", "3")};
      auto r = s->Select(INT64_MIN, INT64_MAX, m);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (!r->empty()) {
        const auto& v = (*r)[0].samples;
        for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], (Sample{int64_t(i) * 1000, double(i)}));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  for (auto& t : threads) t.join();
  MetricsStoreStats st = s->stats();
  EXPECT_GT(st.blocks_written, 0u);
  EXPECT_GT(st.wal_truncations, 0u);
  ASSERT_TRUE(s->Close().ok());
  auto again = MetricsStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
  ASSERT_TRUE(again.ok());
  for (int w = 0; w < kWriters; ++w) {
    for (int k = 0; k < 10; ++k) {
      auto got = SelectOne(again->get(), "w" + std::to_string(w), std::to_string(k));
      ASSERT_EQ(got.size(), size_t{kSteps});
      EXPECT_EQ(got.back(), (Sample{(kSteps - 1) * 1000, double(kSteps - 1)}));
    }
  }
}

// A reader in another process opens the index read-only before the writer
// adds blocks with new series and label values: it sees them.
TEST(MetricsStoreBlocks, BlockQuerierSeesLaterBlocks) {
  TempDir dir;
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Append(std::vector<TimeSeries>{Series("m", "a", {{1000, 1}})}).ok());
  ASSERT_TRUE((*store)->FlushHead().ok());
  auto q = BlockQuerier::Open(DefaultFileSystem(), dir.path());
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  std::vector<LabelMatcher> m = {Eq("__name__", "m")};
  auto sel = (*q)->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(sel.ok());
  EXPECT_EQ(sel->size(), 1u);
  ASSERT_TRUE((*store)->Append(std::vector<TimeSeries>{Series("m", "new", {{2000, 2}})},
                               std::vector<MetricMetadata>{{"m", MetricFamilyType::kCounter, "M.", ""}})
                  .ok());
  ASSERT_TRUE((*store)->FlushHead().ok());
  sel = (*q)->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(sel.ok()) << sel.status().ToString();
  ASSERT_EQ(sel->size(), 2u);
  EXPECT_EQ((*sel)[1].labels.Get("instance"), "new");
  EXPECT_EQ((*sel)[1].samples, (std::vector<Sample>{{2000, 2}}));
  auto re = LabelMatcher::Make(MatchType::kRegexMatch, "instance", "n.*").value();
  std::vector<LabelMatcher> m2 = {re};
  sel = (*q)->Select(INT64_MIN, INT64_MAX, m2);
  ASSERT_TRUE(sel.ok());
  EXPECT_EQ(sel->size(), 1u);
  auto md = (*q)->Metadata("m");
  ASSERT_TRUE(md.ok());
  ASSERT_EQ(md->size(), 1u);
  EXPECT_EQ((*md)[0].type, MetricFamilyType::kCounter);
  // A directory without a store is NOT_FOUND.
  EXPECT_EQ(BlockQuerier::Open(DefaultFileSystem(), dir.path() + "/nope").status().code(), StatusCode::kNotFound);
}

// A reader's open (tel-query over a stopped store) writes nothing: no new
// WAL segment per query, writes refused; its chunk cache and index caches
// follow blocks added, compacted and removed by the writer.
TEST(MetricsStoreReadOnly, WritesNothingAndFollowsBlockChanges) {
  TempDir dir;
  {
    auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Append(std::vector<TimeSeries>{Series("m", "a", {{1000, 1}, {2000, 2}})}).ok());
    ASSERT_TRUE((*store)->FlushHead().ok());
    ASSERT_TRUE((*store)->Append(std::vector<TimeSeries>{Series("m", "a", {{3 * kHour, 3}})}).ok());
    ASSERT_TRUE((*store)->Close().ok());
  }
  auto wal_files = [&] {
    auto names = DefaultFileSystem()->ListDir(dir.path() + "/wal");
    EXPECT_TRUE(names.ok());
    return names.ok() ? names->size() : 0;
  };
  const size_t before = wal_files();
  MetricsStoreOptions ro = TestOptions();
  ro.read_only = true;
  for (int i = 0; i < 3; ++i) {
    auto r = MetricsStore::Open(DefaultFileSystem(), dir.path(), ro);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    // Block samples (twice: decoded, then from the cache) and the WAL's head sample.
    for (int j = 0; j < 2; ++j) {
      EXPECT_EQ(SelectOne(r->get(), "m", "a"), (std::vector<Sample>{{1000, 1}, {2000, 2}, {3 * kHour, 3}}));
      EXPECT_EQ(SelectOne(r->get(), "m", "a", 1500, 2500), (std::vector<Sample>{{2000, 2}}));
    }
    auto app = (*r)->Append(std::vector<TimeSeries>{Series("m", "a", {{4 * kHour, 4}})});
    EXPECT_EQ(app.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ((*r)->FlushHead().code(), StatusCode::kFailedPrecondition);
    EXPECT_TRUE((*r)->Close().ok());
  }
  EXPECT_EQ(wal_files(), before);
  // A read-only store of a directory without one is an error, not a new store.
  EXPECT_FALSE(MetricsStore::Open(DefaultFileSystem(), dir.path() + "/none", ro).ok());

  // BlockQuerier (index caches on) across a writer's block changes.
  auto q = BlockQuerier::Open(DefaultFileSystem(), dir.path());
  ASSERT_TRUE(q.ok());
  std::vector<LabelMatcher> m = {Eq("__name__", "m")};
  auto sel = (*q)->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(sel.ok());
  ASSERT_EQ(sel->size(), 1u);
  EXPECT_EQ((*sel)[0].samples.size(), 2u);
  MetricsStoreOptions small = TestOptions();
  small.retention_ms = kHour;  // the first block falls out once a later one exists
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), small);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Append(std::vector<TimeSeries>{Series("m", "b", {{5 * kHour, 5}})}).ok());
  ASSERT_TRUE((*store)->FlushHead().ok());
  ASSERT_TRUE((*store)->Compact().ok());
  sel = (*q)->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(sel.ok()) << sel.status().ToString();
  auto direct = (*store)->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(direct.ok());
  ASSERT_EQ(sel->size(), direct->size());
  for (size_t i = 0; i < sel->size(); ++i) {
    EXPECT_EQ((*sel)[i].labels, (*direct)[i].labels);
    EXPECT_EQ((*sel)[i].samples, (*direct)[i].samples);
  }
  EXPECT_TRUE((*store)->Close().ok());
}

TEST(BlockSetCache, DecodedChunksAreReusedAndBounded) {
  TempDir dir;
  BlockBuilder b;
  std::vector<std::vector<ChunkRef>> refs;
  for (int s = 0; s < 5; ++s) {
    std::vector<Sample> samples;
    for (int i = 0; i < 100; ++i) samples.push_back(Sample{i * 15000, double(s * 1000 + i)});
    auto r = b.AddSeries(samples);
    ASSERT_TRUE(r.ok());
    refs.push_back(*r);
  }
  BlockMeta meta;
  meta.id = 1;
  ASSERT_TRUE(DefaultFileSystem()->CreateDir(dir.path() + "/blocks").ok());
  ASSERT_TRUE(WriteBlockDir(DefaultFileSystem(), dir.path() + "/blocks", &meta, b).ok());
  // Room for four chunks of 100 samples (1600 bytes each; one chunk may
  // take at most a quarter of the cache).
  BlockSet set(DefaultFileSystem(), dir.path() + "/blocks", 6400);
  auto first = set.ReadSamples(1, refs[0][0]);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ((*first)->size(), 100u);
  EXPECT_EQ((**first)[7], (Sample{7 * 15000, 7}));
  auto again = set.ReadSamples(1, refs[0][0]);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(first->get(), again->get());  // the cached copy
  for (int s = 1; s < 5; ++s) ASSERT_TRUE(set.ReadSamples(1, refs[s][0]).ok());
  EXPECT_EQ(set.cached_bytes(), size_t{6400});
  auto evicted = set.ReadSamples(1, refs[0][0]);  // least recently used: decoded again
  ASSERT_TRUE(evicted.ok());
  EXPECT_NE(first->get(), evicted->get());
  EXPECT_EQ(**first, **evicted);
  set.Forget(1);
  EXPECT_EQ(set.cached_bytes(), 0u);
  // Off (the writer's BlockSet): nothing kept.
  BlockSet off(DefaultFileSystem(), dir.path() + "/blocks");
  ASSERT_TRUE(off.ReadSamples(1, refs[1][0]).ok());
  EXPECT_EQ(off.cached_bytes(), 0u);
}

// Crash at every file-system operation of a small workload: nothing whose
// Append returned OK is lost, nothing appears twice or altered.
TEST(MetricsStoreCrash, EveryCrashPointKeepsAcknowledgedSamples) {
  TempDir index_dir;
  for (CrashMode mode : {CrashMode::kDropUnsynced, CrashMode::kTornUnsynced, CrashMode::kZeroUnsynced}) {
    for (uint64_t n = 1; n <= 40; ++n) {
      FaultInjectingFileSystem fs;
      MetricsStoreOptions o = TestOptions();
      o.wal.segment_bytes = 32 * 1024;
      std::map<std::string, std::vector<Sample>> acked;
      {
        auto store = MetricsStore::Open(&fs, "db", o);
        ASSERT_TRUE(store.ok()) << store.status().ToString();
        fs.CrashAtOp(n, mode, n);
        for (int i = 0; i < 30; ++i) {
          std::vector<TimeSeries> batch;
          for (int k = 0; k < 3; ++k) {
            batch.push_back(Series("m", std::to_string((i + k) % 5), {{int64_t{i} * 1000, double(i * 10 + k)}}));
          }
          auto r = (*store)->Append(batch);
          if (!r.ok()) break;
          for (auto& ts : batch) acked[std::string(ts.labels.Get("instance"))].push_back(ts.samples[0]);
        }
        if (!fs.down()) fs.SimulateCrash(mode, n);
      }
      fs.Restart();
      auto store = MetricsStore::Open(&fs, "db", o);
      ASSERT_TRUE(store.ok()) << "crash at op " << n << ": " << store.status().ToString();
      for (auto& [inst, samples] : acked) {
        auto got = SelectOne(store->get(), "m", inst);
        // Every acknowledged sample is there; anything else there was
        // attempted (a later, unacknowledged append) and is newer.
        ASSERT_GE(got.size(), samples.size()) << "op " << n;
        for (size_t i = 0; i < samples.size(); ++i) ASSERT_EQ(got[i], samples[i]) << "op " << n;
        for (size_t i = 1; i < got.size(); ++i) ASSERT_LT(got[i - 1].t, got[i].t);
      }
      // The store keeps working after the restart.
      ASSERT_TRUE((*store)->Append(std::vector<TimeSeries>{Series("m", "0", {{100000, 1}})}).ok());
    }
  }
}

// Crashes while blocks are cut and the WAL is checkpointed.
TEST(MetricsStoreCrash, CrashDuringBlockCutAndCheckpoint) {
  for (uint64_t n = 1; n <= 30; ++n) {
    TempDir index_dir;
    FaultInjectingFileSystem fs;
    MetricsStoreOptions o = TestOptions();
    o.block_range_ms = 10000;
    o.index_path = index_dir.path() + "/index.db";
    std::map<std::string, std::vector<Sample>> acked;
    auto append = [&](MetricsStore* s, int i) {
      std::vector<TimeSeries> batch = {Series("m", "a", {{int64_t{i} * 1000, double(i)}}),
                                       Series("m", "b", {{int64_t{i} * 1000, double(-i)}})};
      if (!s->Append(batch).ok()) return false;
      for (auto& ts : batch) acked[std::string(ts.labels.Get("instance"))].push_back(ts.samples[0]);
      return true;
    };
    {
      auto store = MetricsStore::Open(&fs, "db", o);
      ASSERT_TRUE(store.ok());
      for (int i = 0; i < 20; ++i) ASSERT_TRUE(append(store->get(), i));
      fs.CrashAtOp(n, CrashMode::kTornUnsynced, n);
      (void)(*store)->Compact();
      for (int i = 20; i < 30 && !fs.down(); ++i) append(store->get(), i);
      if (!fs.down()) fs.SimulateCrash(CrashMode::kTornUnsynced, n);
    }
    fs.Restart();
    auto store = MetricsStore::Open(&fs, "db", o);
    ASSERT_TRUE(store.ok()) << "crash at op " << n << ": " << store.status().ToString();
    for (auto& [inst, samples] : acked) {
      auto got = SelectOne(store->get(), "m", inst);
      ASSERT_GE(got.size(), samples.size()) << "op " << n;
      for (size_t i = 0; i < samples.size(); ++i) ASSERT_EQ(got[i], samples[i]) << "op " << n << " i " << i;
    }
  }
}

// A real process killed with SIGKILL in the middle of ingesting: every
// append it reported (through a pipe, after Append returned OK) is there.
TEST(MetricsStoreCrash, KillNineMidIngest) {
  TempDir dir;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    MetricsStoreOptions o;
    o.block_range_ms = 20000;  // blocks get cut while it runs
    o.background_interval_ms = 5;
    auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
    if (!store.ok()) _exit(2);
    for (int i = 0; i < 1000000; ++i) {
      std::vector<TimeSeries> batch;
      for (int k = 0; k < 20; ++k) batch.push_back(Series("k", std::to_string(k), {{int64_t{i} * 1000, double(i)}}));
      if (!(*store)->Append(batch).ok()) _exit(3);
      if (write(fds[1], &i, sizeof i) != sizeof i) _exit(4);
    }
    _exit(0);
  }
  close(fds[1]);
  int last = -1, v;
  while (last < 300 && read(fds[0], &v, sizeof v) == sizeof v) last = v;
  kill(pid, SIGKILL);
  while (read(fds[0], &v, sizeof v) == sizeof v) last = v;  // acknowledged before the kill
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (int k = 0; k < 20; ++k) {
    auto got = SelectOne(store->get(), "k", std::to_string(k));
    ASSERT_GE(got.size(), size_t(last + 1)) << k;
    for (int i = 0; i <= last; ++i) ASSERT_EQ(got[i], (Sample{int64_t{i} * 1000, double(i)})) << k;
  }
  EXPECT_GT((*store)->stats().blocks, 0u);
}

std::vector<TimeSeries> ScrapeBatch(int hosts, int metrics, int64_t t, int i) {
  std::vector<TimeSeries> batch;
  for (int h = 0; h < hosts; ++h) {
    for (int m = 0; m < metrics; ++m) {
      TimeSeries ts;
      ts.labels = Labels{{"__name__", "metric_" + std::to_string(m)}, {"host", "h" + std::to_string(h)}};
      // Hosts scrape at their own offset: one timestamp column per host.
      ts.samples = {{t + h * 7, double(i * (m + 1))}};
      batch.push_back(std::move(ts));
    }
  }
  return batch;
}

TEST(MetricsStoreBlocks, HeadBecomesBlocksQueryableAndCompact) {
  TempDir dir;
  MetricsStoreOptions o = TestOptions();
  o.block_range_ms = kHour;
  o.retention_ms = 100 * kHour;
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  MetricsStore* s = store->get();
  // 4 hours at 60 s: 240 scrapes of 5 hosts x 4 metrics.
  for (int i = 0; i < 240; ++i) {
    auto r = s->Append(ScrapeBatch(5, 4, int64_t{i} * 60000, i));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->samples_appended, 20u);
  }
  ASSERT_TRUE(s->Compact().ok());
  MetricsStoreStats st = s->stats();
  // The head spans 4 h: hours 0, 1 and 2 are cut (until it spans <= 1.5 h),
  // then the window [0, 3h) is complete and its three blocks are merged.
  EXPECT_EQ(st.blocks_written, 4u);
  EXPECT_EQ(st.compactions, 1u);
  EXPECT_EQ(st.blocks, 1u);
  EXPECT_EQ(st.min_valid_time, 3 * kHour);
  EXPECT_GE(st.head_mint, 3 * kHour);
  EXPECT_GE(st.wal_truncations, 3u);
  // Every sample is still there, from blocks and head.
  std::vector<LabelMatcher> m = {Eq("__name__", "metric_1"), Eq("host", "h3")};
  auto sel = s->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(sel.ok());
  ASSERT_EQ(sel->size(), 1u);
  ASSERT_EQ((*sel)[0].samples.size(), 240u);
  for (int i = 0; i < 240; ++i) EXPECT_EQ((*sel)[0].samples[i], (Sample{int64_t{i} * 60000 + 21, double(i * 2)}));
  // Too old for the head now.
  auto late = s->Append(ScrapeBatch(1, 1, 1000, 0));
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->rejected["out_of_bounds"], 1u);

  // Another process's view: blocks only.
  {
    auto q = BlockQuerier::Open(DefaultFileSystem(), dir.path());
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    auto bsel = (*q)->Select(INT64_MIN, INT64_MAX, m);
    ASSERT_TRUE(bsel.ok()) << bsel.status().ToString();
    ASSERT_EQ(bsel->size(), 1u);
    EXPECT_EQ((*bsel)[0].samples.size(), 180u);
    auto hosts = (*q)->LabelValues("host", INT64_MIN, INT64_MAX, {});
    ASSERT_TRUE(hosts.ok());
    EXPECT_EQ(hosts->size(), 5u);
  }
  // More data: 2 more hours, then FlushHead; the blocks of [3h, 6h) merge.
  for (int i = 240; i < 360; ++i) ASSERT_TRUE(s->Append(ScrapeBatch(5, 4, int64_t{i} * 60000, i)).ok());
  ASSERT_TRUE(s->FlushHead().ok());
  EXPECT_EQ(s->stats().head_chunks, 0u);
  ASSERT_TRUE(s->Compact().ok());
  st = s->stats();
  // [3h, 6h) is not complete (samples up to 6h - 1 ms may still come): no merge.
  EXPECT_EQ(st.compactions, 1u);
  EXPECT_EQ(st.blocks, 4u);
  sel = s->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(sel.ok());
  ASSERT_EQ((*sel)[0].samples.size(), 360u);
  for (int i = 0; i < 360; ++i) ASSERT_EQ((*sel)[0].samples[i], (Sample{int64_t{i} * 60000 + 21, double(i * 2)}));
  ASSERT_TRUE(s->Close().ok());

  auto again = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  sel = (*again)->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(sel.ok());
  ASSERT_EQ((*sel)[0].samples.size(), 360u);
  EXPECT_EQ((*again)->stats().head_series, 0u);
}

TEST(MetricsStoreBlocks, RetentionByTimeAndSize) {
  TempDir dir;
  MetricsStoreOptions o = TestOptions();
  o.block_range_ms = kHour;
  o.retention_ms = 3 * kHour;
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  MetricsStore* s = store->get();
  for (int i = 0; i < 6 * 60; ++i) ASSERT_TRUE(s->Append(ScrapeBatch(2, 2, int64_t{i} * 60000, i)).ok());
  ASSERT_TRUE(s->FlushHead().ok());
  ASSERT_TRUE(s->Compact().ok());
  MetricsStoreStats st = s->stats();
  // Six blocks (no compaction: 3h is over retention / 10); the newest ends
  // at 6h - 60 s + 1 ms, so hours 0 and 1 end before newest - 3h.
  EXPECT_EQ(st.retention_removed_blocks, 2u);
  std::vector<LabelMatcher> m = {Eq("__name__", "metric_0"), Eq("host", "h0")};
  auto sel = s->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(sel.ok());
  ASSERT_EQ(sel->size(), 1u);
  EXPECT_EQ((*sel)[0].samples.front().t, 2 * kHour);
  ASSERT_TRUE(s->Close().ok());

  o.retention_bytes = 1;  // keeps removing the oldest while over
  auto again = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)->Compact().ok());
  EXPECT_EQ((*again)->stats().blocks, 0u);
  sel = (*again)->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(sel.ok());
  EXPECT_TRUE(sel->empty());
}

TEST(MetricsStoreBlocks, LeftoversAreCleanedAndSnapshotIsOpenable) {
  TempDir dir;
  MetricsStoreOptions o = TestOptions();
  {
    auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Append(ScrapeBatch(2, 2, 1000, 1)).ok());
    ASSERT_TRUE((*store)->FlushHead().ok());
    ASSERT_TRUE((*store)->Append(ScrapeBatch(2, 2, 61000, 2)).ok());
    ASSERT_TRUE((*store)->Snapshot(dir.path() + "/snap").ok());
    EXPECT_FALSE((*store)->Snapshot(dir.path() + "/snap").ok());
  }
  // An interrupted block write and a block the index does not know.
  std::filesystem::create_directories(dir.path() + "/blocks/00000000000000aa.tmp");
  std::filesystem::create_directories(dir.path() + "/blocks/00000000000000bb");
  {
    auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/blocks/00000000000000aa.tmp"));
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/blocks/00000000000000bb"));
    std::vector<LabelMatcher> m = {Eq("__name__", "metric_1")};
    auto sel = (*store)->Select(INT64_MIN, INT64_MAX, m);
    ASSERT_TRUE(sel.ok()) << int(sel.status().code()) << sel.status().message();
    ASSERT_EQ(sel->size(), 2u);
    EXPECT_EQ((*sel)[0].samples.size(), 2u);
  }
  auto snap = MetricsStore::Open(DefaultFileSystem(), dir.path() + "/snap", o);
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  std::vector<LabelMatcher> m = {Eq("__name__", "metric_1")};
  auto sel = (*snap)->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(sel.ok());
  ASSERT_EQ(sel->size(), 2u);
  EXPECT_EQ((*sel)[0].samples.size(), 2u);
}

TEST(MetricsStoreBlocks, DamagedChunkIsDataLossNotACrash) {
  TempDir dir;
  {
    auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Append(ScrapeBatch(1, 1, 1000, 1)).ok());
    ASSERT_TRUE((*store)->FlushHead().ok());
  }
  std::string path = dir.path() + "/blocks/0000000000000001/chunks";
  FILE* f = fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  fseek(f, -3, SEEK_END);
  fputc(0x55, f);
  fclose(f);
  auto store = MetricsStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
  ASSERT_TRUE(store.ok());
  std::vector<LabelMatcher> m = {Eq("__name__", "metric_0")};
  EXPECT_EQ((*store)->Select(INT64_MIN, INT64_MAX, m).status().code(), StatusCode::kDataLoss);
}

// Pins docs/format/tsdb-block.md: two series sharing one timestamp column.
TEST(BlockFormat, GoldenBytes) {
  BlockBuilder b;
  auto r1 = b.AddSeries(std::vector<Sample>{{1000, 1}, {16000, 1}});
  auto r2 = b.AddSeries(std::vector<Sample>{{1000, 2}, {16000, 3}});
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(b.timestamp_columns(), 1u);
  EXPECT_EQ(Hex(b.bytes()),
            "89 54 4b 43 48 4b 0d 0a 01 00 00 00 00 00 00 00 "  // header
            "01 07 01 02 17 f4 07 f5 30 e3 a0 9d c0 "           // timestamps @16
            "02 0a 11 10 3f f0 00 00 00 00 00 00 82 c2 97 e2 "  // chunk @29
            "02 05 12 10 00 01 c4 89 49 2c 37");                // chunk @45
  ASSERT_EQ((*r1)[0].offset, 29u);
  ASSERT_EQ((*r2)[0].offset, 45u);
  FaultInjectingFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("b").ok());
  BlockMeta meta;
  meta.id = 1;
  ASSERT_TRUE(WriteBlockDir(&fs, "b", &meta, b).ok());
  auto file = fs.NewReadableFile("b/0000000000000001/chunks");
  ASSERT_TRUE(file.ok());
  auto chunk = ReadBlockChunk(**file, (*r2)[0].offset, (*r2)[0].length);
  ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
  EXPECT_EQ(*DecodeChunk(*chunk), (std::vector<Sample>{{1000, 2}, {16000, 3}}));
  // A reference to something that is not a chunk record is data loss.
  EXPECT_EQ(ReadBlockChunk(**file, 16, 0).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace telkit
