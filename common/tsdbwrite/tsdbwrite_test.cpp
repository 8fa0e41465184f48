// The tsdb-write daemon in-process: real Unix sockets, a real store on disk,
// the reader as another process would use it.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/model/matcher.h"
#include "common/otlp/signal.h"
#include "common/prom/remote_write.h"
#include "common/stream/stream_output.h"
#include "common/tsdb/metrics_reader.h"
#include "common/tsdbwrite/tsdb_write_server.h"

namespace telkit {
namespace {

LabelMatcher M(MatchType t, std::string name, std::string value) {
  auto m = LabelMatcher::Make(t, std::move(name), std::move(value));
  EXPECT_TRUE(m.ok());
  return *m;
}

class TsdbWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("tsdbwrite_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<TsdbWriteServer> Start() {
    TsdbWriteConfig c;
    c.data_dir = dir_.string();
    c.store.background = false;
    c.admin = ListenAddress{"127.0.0.1", 0};
    auto s = TsdbWriteServer::Start(c);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::string sock() const { return "unix:" + (dir_ / "ingest.sock").string(); }

  std::filesystem::path dir_;
};

Frame RemoteWriteFrame(const std::string& name, std::vector<Sample> samples, std::vector<MetricMetadata> md = {}) {
  TimeSeries ts{Labels{{"__name__", name}, {"job", "t"}}, std::move(samples), {}};
  Frame f;
  f.signal = static_cast<uint8_t>(Signal::kPrometheusRemoteWrite);
  f.payload = EncodeWriteRequest(std::span<const TimeSeries>(&ts, 1), md);
  return f;
}

TEST_F(TsdbWriteTest, AckedFramesAreReadableFromAnotherReader) {
  auto server = Start();
  ASSERT_TRUE(server);
  auto out = OpenStreamOutput(sock());
  ASSERT_TRUE(out.ok()) << out.status().message();
  std::vector<MetricMetadata> md = {{"up", MetricFamilyType::kGauge, "Up.", ""}};
  ASSERT_TRUE((*out)->Write(RemoteWriteFrame("up", {{1000, 1}, {2000, 0}}, md)).ok());
  Frame traces;
  traces.signal = static_cast<uint8_t>(Signal::kTraces);
  traces.payload = "x";
  ASSERT_TRUE((*out)->Write(traces).ok());
  Frame bad;
  bad.signal = static_cast<uint8_t>(Signal::kPrometheusRemoteWrite);
  bad.payload = "\xff\xff\xff not protobuf";
  ASSERT_TRUE((*out)->Write(bad).ok());
  ASSERT_TRUE((*out)->Write(RemoteWriteFrame("up", {{500, 7}})).ok());  // out of order
  ASSERT_TRUE((*out)->Drain(5000).ok());  // every frame acknowledged
  EXPECT_EQ((*out)->Stats().frames_acked, 4u);

  auto reader = OpenMetricsReader(DefaultFileSystem(), dir_.string());
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  EXPECT_EQ((*reader)->mode(), MetricsReader::Mode::kDaemon);
  std::vector<LabelMatcher> m = {M(MatchType::kEqual, "__name__", "up")};
  auto got = (*reader)->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].samples, (std::vector<Sample>{{1000, 1}, {2000, 0}}));
  auto meta = (*reader)->Metadata("");
  ASSERT_TRUE(meta.ok()) << meta.status().message();
  ASSERT_EQ(meta->size(), 1u);
  EXPECT_EQ((*meta)[0].help, "Up.");

  const std::string text = server->registry().ExpositionText();
  EXPECT_NE(text.find("tsdb_write_frames_dropped_total{reason=\"wrong_signal\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("tsdb_write_frames_dropped_total{reason=\"malformed\"} 1"), std::string::npos);
  EXPECT_NE(text.find("tsdb_write_rejected_total{reason=\"out_of_order\"} 1"), std::string::npos);
  EXPECT_NE(text.find("tsdb_write_frames_acked_total 4"), std::string::npos);
  EXPECT_NE(text.find("tsdb_write_samples_appended_total 2"), std::string::npos);

  // A second writer of the same directory is refused.
  TsdbWriteConfig c;
  c.data_dir = dir_.string();
  auto second = TsdbWriteServer::Start(c);
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);

  (*out)->Cancel();
  reader->reset();
  ASSERT_TRUE(server->Shutdown().ok());
  server.reset();

  // Stopped: the reader opens the store and sees the WAL's samples too.
  auto stopped = OpenMetricsReader(DefaultFileSystem(), dir_.string());
  ASSERT_TRUE(stopped.ok()) << stopped.status().message();
  EXPECT_EQ((*stopped)->mode(), MetricsReader::Mode::kStoppedStore);
  got = (*stopped)->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].samples.size(), 2u);
  // While it holds the store, a daemon cannot start.
  EXPECT_EQ(TsdbWriteServer::Start(c).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(TsdbWriteTest, HeadAndBlocksMergeAfterFlush) {
  auto server = Start();
  ASSERT_TRUE(server);
  auto out = OpenStreamOutput(sock());
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE((*out)->Write(RemoteWriteFrame("m", {{1000, 1}, {2000, 2}})).ok());
  ASSERT_TRUE((*out)->Drain(5000).ok());
  ASSERT_TRUE(server->store()->FlushHead().ok());
  ASSERT_TRUE((*out)->Write(RemoteWriteFrame("m", {{3000, 3}})).ok());
  ASSERT_TRUE((*out)->Drain(5000).ok());
  auto reader = OpenMetricsReader(DefaultFileSystem(), dir_.string());
  ASSERT_TRUE(reader.ok());
  std::vector<LabelMatcher> m = {M(MatchType::kEqual, "__name__", "m")};
  auto got = (*reader)->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].samples, (std::vector<Sample>{{1000, 1}, {2000, 2}, {3000, 3}}));
  (*out)->Cancel();
}

TEST_F(TsdbWriteTest, IngestBatchAppendsFramesInOrderWithOneAppend) {
  auto store = MetricsStore::Open(DefaultFileSystem(), dir_.string(), [] {
    MetricsStoreOptions o;
    o.background = false;
    return o;
  }());
  ASSERT_TRUE(store.ok()) << store.status().message();
  MetricsRegistry registry;
  MetricsIngester ingester(store->get(), &registry);
  Frame logs;
  logs.signal = static_cast<uint8_t>(Signal::kLogs);
  std::vector<Frame> frames = {RemoteWriteFrame("m", {{1000, 1}}), logs, RemoteWriteFrame("m", {{2000, 2}}),
                               RemoteWriteFrame("m", {{3000, 3}, {4000, 4}})};
  ASSERT_TRUE(ingester.IngestBatch(frames).ok());
  EXPECT_EQ((*store)->stats().append_calls, 1u);  // one append, one fsync
  std::vector<LabelMatcher> m = {M(MatchType::kEqual, "__name__", "m")};
  auto got = (*store)->Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].samples, (std::vector<Sample>{{1000, 1}, {2000, 2}, {3000, 3}, {4000, 4}}));
  EXPECT_TRUE(ingester.rejected().empty());
  EXPECT_NE(registry.ExpositionText().find("tsdb_write_frames_dropped_total{reason=\"wrong_signal\"} 1"),
            std::string::npos);
  ASSERT_TRUE((*store)->Close().ok());
}

}  // namespace
}  // namespace telkit
