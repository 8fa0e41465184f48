// query: relative times, CSV / chart / metadata output, and `tel-query
// serve` over a real store: a stopped one, and one a TsdbWriteServer in this
// process writes to (head over DIR/head.sock, then blocks after a flush).
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/fs/file_system.h"
#include "common/query/query_cli.h"
#include "common/query/query_server.h"
#include "common/tsdb/metrics_reader.h"
#include "common/tsdb/metrics_store.h"
#include "common/tsdbwrite/tsdb_write_server.h"

namespace telkit::query {
namespace {

TEST(ParseCliTime, AbsoluteAndRelativeForms) {
  const int64_t now = 1'700'000'000'000;
  EXPECT_EQ(*ParseCliTime("now", now), now);
  EXPECT_EQ(*ParseCliTime("now-1h", now), now - 3'600'000);
  EXPECT_EQ(*ParseCliTime("now+30s", now), now + 30'000);
  EXPECT_EQ(*ParseCliTime("-15m", now), now - 900'000);
  EXPECT_EQ(*ParseCliTime("1700000000.5", now), 1'700'000'000'500);
  EXPECT_EQ(*ParseCliTime("-5", now), -5000);  // Unix seconds before 1970
  EXPECT_EQ(*ParseCliTime("2023-11-14T22:13:20Z", now), 1'700'000'000'000);
  for (const char* bad : {"nowish", "now-", "now-1x", "-", "yesterday", ""}) {
    auto r = ParseCliTime(bad, now);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(std::string(ParseCliTime("soon", now).status().message()).find("'soon'"), std::string::npos);
}

promql::QueryResult TwoSeries() {
  promql::QueryResult r;
  r.type = promql::ValueType::kMatrix;
  r.series.push_back({Labels{{"__name__", "x"}, {"a", "1,2"}}, {{0, 1}, {15000, 2}, {30000, 4}}});
  r.series.push_back({Labels{{"__name__", "x"}, {"a", "2"}}, {{0, 4}, {15000, 3}, {30000, 0.5}}});
  return r;
}

TEST(FormatCsv, OneRowPerPointWithQuoting) {
  EXPECT_EQ(FormatCsv(TwoSeries()),
            "series,timestamp,value\n"
            "\"x{a=\"\"1,2\"\"}\",0,1\n\"x{a=\"\"1,2\"\"}\",15,2\n\"x{a=\"\"1,2\"\"}\",30,4\n"
            "\"x{a=\"\"2\"\"}\",0,4\n\"x{a=\"\"2\"\"}\",15,3\n\"x{a=\"\"2\"\"}\",30,0.5\n");
  promql::QueryResult s;
  s.type = promql::ValueType::kScalar;
  s.scalar = 0.1;
  s.t = 1500;
  EXPECT_EQ(FormatCsv(s), "series,timestamp,value\n,1.5,0.1\n");
}

TEST(FormatChart, BrailleAxesLegendAndColour) {
  ChartOptions o;
  o.width = 40;
  o.height = 5;
  std::string plain = FormatChart(TwoSeries(), o);
  EXPECT_EQ(plain.find("\x1b["), std::string::npos);
  EXPECT_NE(plain.find("\xe2\xa0"), std::string::npos) << plain;  // U+28xx braille
  EXPECT_EQ(plain.rfind("  4 \u2502", 0), 0u) << plain;               // max on the first row
  EXPECT_NE(plain.find("0.5 \u2502"), std::string::npos) << plain;    // min on the last
  EXPECT_NE(plain.find("1970-01-01T00:00:00Z"), std::string::npos);
  EXPECT_NE(plain.find("1970-01-01T00:00:30Z"), std::string::npos);
  EXPECT_NE(plain.find("[1] x{a=\"1,2\"}\n[2] x{a=\"2\"}\n"), std::string::npos) << plain;
  o.color = true;
  std::string colour = FormatChart(TwoSeries(), o);
  EXPECT_NE(colour.find("\x1b[31m"), std::string::npos);
  EXPECT_NE(colour.find("\x1b[32m"), std::string::npos);
  EXPECT_EQ(FormatChart(promql::QueryResult{}, o), "no data\n");
}

TEST(CaretLines, PointsAtTheColumn) {
  EXPECT_EQ(CaretLines("sum(x", "1:6: parse error: unclosed left parenthesis"), "  sum(x\n       ^\n");
  EXPECT_EQ(CaretLines("x", "found duplicate series"), "");
}

TEST(FormatMetadataTable, SeriesAndNames) {
  EXPECT_EQ(*FormatMetadataTable(R"({"status":"success","data":[{"__name__":"up","job":"a"}]})", true),
            "up{job=\"a\"}\n");
  EXPECT_EQ(*FormatMetadataTable(R"({"status":"success","data":["a","b"]})", false), "a\nb\n");
  EXPECT_FALSE(FormatMetadataTable("nope", false).ok());
}

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::path(::testing::TempDir()) /
            ("query_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<QueryServer> Serve() {
    QueryServerOptions o;
    o.data.data_dir = dir_;
    o.prometheus = api::PrometheusApiServerOptions{};
    o.prometheus->listen = {"127.0.0.1", 0};
    o.prometheus->threads = 2;
    o.admin = ListenAddress{"127.0.0.1", 0};
    auto s = QueryServer::Start(o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(*s) : nullptr;
  }
  static std::string Get(int port, const std::string& path, int* status = nullptr) {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Get(path);
    if (!r) return "no response";
    if (status) *status = r->status;
    return r->body;
  }
  static TimeSeries Series(const std::string& job, std::vector<Sample> samples) {
    return TimeSeries{Labels{{"__name__", "req_total"}, {"job", job}}, std::move(samples), {}};
  }
  std::string dir_;
};

TEST_F(ServeTest, StoppedStoreAndAdminEndpoint) {
  {
    auto store = MetricsStore::Open(DefaultFileSystem(), dir_);
    ASSERT_TRUE(store.ok()) << store.status().message();
    std::vector<TimeSeries> ts{Series("a", {{1000, 1}, {2000, 2}})};
    ASSERT_TRUE((*store)->Append(ts).ok());
    ASSERT_TRUE((*store)->Close().ok());
  }
  auto server = Serve();
  ASSERT_TRUE(server);
  EXPECT_EQ(Get(server->prometheus_port(), "/api/v1/query?query=req_total&time=2"),
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"req_total","job":"a"},"value":[2,"2"]}]}})");
  EXPECT_EQ(Get(server->prometheus_port(), "/api/v1/label/job/values"), R"({"status":"success","data":["a"]})");
  int status = 0;
  EXPECT_EQ(Get(server->admin_port(), "/healthz", &status).substr(0, 2), "ok");
  EXPECT_EQ(status, 200);
  EXPECT_NE(Get(server->admin_port(), "/metrics").find("tel_query_api_requests"), std::string::npos);
  // The lock is held only during a request: a writer can open the store now.
  auto again = MetricsStore::Open(DefaultFileSystem(), dir_);
  EXPECT_TRUE(again.ok()) << again.status().message();
}

// The reader of a stopped store is kept across requests, without the lock,
// and reopened when a writer changes the store.
TEST_F(ServeTest, StoppedStoreReaderIsReusedAndReopenedWhenTheStoreChanges) {
  {
    auto store = MetricsStore::Open(DefaultFileSystem(), dir_);
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->Append(std::vector<TimeSeries>{Series("a", {{1000, 1}})}).ok());
    ASSERT_TRUE((*store)->Close().ok());
  }
  auto server = Serve();
  ASSERT_TRUE(server);
  const int port = server->prometheus_port();
  const std::string one =
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[2,"1"]}]}})";
  auto segments = [&] { return std::distance(std::filesystem::directory_iterator(dir_ + "/wal"), {}); };
  const auto before = segments();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Get(port, "/api/v1/query?query=sum(req_total)&time=2"), one);
  EXPECT_EQ(segments(), before);  // reads write nothing
  {  // A writer can take the lock between requests and add to the store.
    auto lock = LockStoreDir(dir_, StoreLockInfo{static_cast<int>(::getpid()), ""});
    ASSERT_TRUE(lock.ok()) << lock.status().message();
    auto store = MetricsStore::Open(DefaultFileSystem(), dir_);
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->Append(std::vector<TimeSeries>{Series("b", {{1500, 2}})}).ok());
    ASSERT_TRUE((*store)->Close().ok());
  }
  EXPECT_EQ(Get(port, "/api/v1/query?query=sum(req_total)&time=2"),
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[2,"3"]}]}})");
  {  // And while one holds the lock without serving a head: 503, then fine again.
    auto store = MetricsStore::Open(DefaultFileSystem(), dir_);
    ASSERT_TRUE(store.ok());
    auto lock = LockStoreDir(dir_, StoreLockInfo{static_cast<int>(::getpid()), ""});
    ASSERT_TRUE(lock.ok()) << lock.status().message();
    int status = 0;
    Get(port, "/api/v1/query?query=sum(req_total)&time=2", &status);
    EXPECT_EQ(status, 503);
    ASSERT_TRUE((*store)->Close().ok());
  }
  EXPECT_EQ(Get(port, "/api/v1/query?query=sum(req_total)&time=2"),
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[2,"3"]}]}})");
}

TEST_F(ServeTest, MissingStoreFailsAtStart) {
  QueryServerOptions o;
  o.data.data_dir = dir_ + "/none";
  o.prometheus = api::PrometheusApiServerOptions{};
  o.prometheus->listen = {"127.0.0.1", 0};
  EXPECT_FALSE(QueryServer::Start(o).ok());
}

TEST_F(ServeTest, ReadsTheLiveHeadAndBlocksWhileTsdbWriteRuns) {
  TsdbWriteConfig c;
  c.data_dir = dir_;
  c.store.background = false;
  auto writer = TsdbWriteServer::Start(c);
  ASSERT_TRUE(writer.ok()) << writer.status().message();
  auto server = Serve();
  ASSERT_TRUE(server);
  const int port = server->prometheus_port();
  std::vector<TimeSeries> first{Series("head", {{1000, 5}})};
  ASSERT_TRUE((*writer)->store()->Append(first).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  std::string body;
  while (std::chrono::steady_clock::now() < deadline) {
    body = Get(port, "/api/v1/query?query=req_total&time=1");
    if (body.find("\"head\"") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(body,
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"req_total","job":"head"},"value":[1,"5"]}]}})");
  ASSERT_TRUE((*writer)->store()->FlushHead().ok());  // now in a block
  // After the flush the head takes samples newer than the block only.
  std::vector<TimeSeries> second{Series("head2", {{61000, 7}})};
  auto appended = (*writer)->store()->Append(second);
  ASSERT_TRUE(appended.ok());
  ASSERT_EQ(appended->rejected_total(), 0u);
  EXPECT_EQ(Get(port, "/api/v1/query?query=sum(req_total)&time=61"),
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[61,"12"]}]}})");
  EXPECT_EQ(Get(port, "/api/v1/series?match[]=req_total"),
            R"({"status":"success","data":[{"__name__":"req_total","job":"head"},{"__name__":"req_total","job":"head2"}]})");
  EXPECT_TRUE((*writer)->Shutdown().ok());
}

}  // namespace
}  // namespace telkit::query
