#include "common/logingest/log_ingest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "common/otlp/loki_stream.h"
#include "common/otlp/signal.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"

namespace telkit {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "logingest_test.XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(LogIngest, ParseLogTime) {
  EXPECT_EQ(*ParseLogTime("1700000000"), 1700000000'000000000);
  EXPECT_EQ(*ParseLogTime("1700000000.5"), 1700000000'500000000);
  EXPECT_EQ(*ParseLogTime("1700000000123"), 1700000000'123000000);     // ms
  EXPECT_EQ(*ParseLogTime("1700000000123456"), 1700000000'123456000);  // us (journald)
  EXPECT_EQ(*ParseLogTime("1700000000123456789"), 1700000000'123456789);
  EXPECT_EQ(*ParseLogTime("2023-11-14T22:13:20Z"), 1700000000'000000000);
  EXPECT_EQ(*ParseLogTime("2023-11-14T23:13:20.25+01:00"), 1700000000'250000000);
  EXPECT_FALSE(ParseLogTime("yesterday").ok());
  EXPECT_FALSE(ParseLogTime("2023-11-14T22:13:20").ok());
  EXPECT_FALSE(ParseLogTime("").ok());
  EXPECT_EQ(FormatLogTime(1700000000'000000006), "2023-11-14T22:13:20.000000006Z");
}

TEST(LogIngest, ParseLogSelector) {
  auto m = ParseLogSelector(R"({job="a", level=~"err.*",x!="y" , z!~`q`})");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->size(), 4u);
  EXPECT_EQ((*m)[1].ToString(), "level=~\"err.*\"");
  EXPECT_FALSE(ParseLogSelector("{}").ok());
  EXPECT_FALSE(ParseLogSelector("{job=\"\"}").ok());
  EXPECT_FALSE(ParseLogSelector("{job=\"a\"").ok());
  EXPECT_FALSE(ParseLogSelector("job=\"a\"").ok());
  EXPECT_FALSE(ParseLogSelector("{job=~\"(\"}").ok());
}

TEST(LogIngest, PlainJsonLinesWithJournalTimestamps) {
  TempDir dir;
  LogStoreOptions so;
  so.background = false;
  auto store = LogStore::Open(DefaultFileSystem(), dir.path(), so);
  ASSERT_TRUE(store.ok());
  PlainIngestOptions o;
  o.labels = Labels{{"job", "journal"}};
  o.json = true;
  o.message_field = "MESSAGE";
  PlainIngester in(store->get(), o);
  ASSERT_TRUE(in.Feed("{\"__REALTIME_TIMESTAMP\":\"1700000000000001\",\"MESSAGE\":\"started\"}\nnot json\n{\"MESS").ok());
  ASSERT_TRUE(in.Feed("AGE\":\"no time\"}").ok());
  ASSERT_TRUE(in.Flush(true).ok());
  EXPECT_EQ(in.stats().lines_read, 3u);
  EXPECT_EQ(in.stats().lines_accepted, 3u);
  EXPECT_EQ(in.stats().bad_json, 1u);
  EXPECT_EQ(in.stats().bad_time, 1u);
  LogQuery q;
  q.matchers = *ParseLogSelector("{job=\"journal\"}");
  q.contains = {"started"};
  auto r = (*store)->Select(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].entries[0].ts, 1700000000'000001000);
  EXPECT_EQ((*r)[0].entries[0].line, "started");
  EXPECT_EQ(FormatLogQueryResult(*r, false, false),
            "2023-11-14T22:13:20.000001000Z {job=\"journal\"} started\n");
}

TEST(LogIngest, ParseLabelsFlag) {
  auto l = ParseLabelsFlag("job=app,env=a=b,empty=");
  ASSERT_TRUE(l.ok()) << l.status().message();
  EXPECT_EQ(*l, (Labels{{"empty", ""}, {"env", "a=b"}, {"job", "app"}}));
  EXPECT_EQ(ParseLabelsFlag("job").status().message(), "--labels: 'job' is not name=value");
  EXPECT_EQ(ParseLabelsFlag("job=a,").status().message(), "--labels: '' is not name=value");
  EXPECT_EQ(ParseLabelsFlag("=a").status().message(), "--labels: '=a' is not name=value");
  EXPECT_EQ(ParseLabelsFlag("1x=a").status().message(), "--labels: invalid label name '1x'");
  EXPECT_EQ(ParseLabelsFlag("a=1,a=2").status().message(), "--labels: need distinct names with values");
}

TEST(LogIngest, ReadPlainStreamReadsAPipeUntilEofAndStopsOnRequest) {
  TempDir dir;
  LogStoreOptions so;
  so.background = false;
  auto store = LogStore::Open(DefaultFileSystem(), dir.path(), so);
  ASSERT_TRUE(store.ok());
  PlainIngestOptions o;
  o.labels = Labels{{"job", "pipe"}};
  PlainIngester in(store->get(), o);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string text = "one\ntwo\nthree";  // the last line has no newline
  ASSERT_EQ(write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fds[1]);
  std::atomic<bool> stop{false};
  ASSERT_TRUE(ReadPlainStream(fds[0], &in, stop).ok());
  close(fds[0]);
  EXPECT_EQ(in.stats().lines_accepted, 3u);
  // A stop request ends the loop although the writer stays open.
  ASSERT_EQ(pipe(fds), 0);
  stop = true;
  ASSERT_TRUE(ReadPlainStream(fds[0], &in, stop).ok());
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(in.stats().lines_accepted, 3u);
}

TEST(LogIngest, ServerCountsMalformedAndOtherFramesAndStoresLogs) {
  TempDir dir;
  LogIngestConfig c;
  c.data_dir = dir.path() + "/db";
  c.store.background = false;
  auto s = LogIngestServer::Start(c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Frame bad;
  bad.signal = static_cast<uint8_t>(Signal::kLogs);
  bad.payload = "\xff\xff\xff not protobuf";
  EXPECT_TRUE((*s)->IngestFrame(bad).ok());
  Frame other;
  other.signal = static_cast<uint8_t>(Signal::kTraces);
  EXPECT_TRUE((*s)->IngestFrame(other).ok());
  std::string text = (*s)->registry().ExpositionText();
  EXPECT_NE(text.find("log_ingest_frames_total{kind=\"malformed\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("log_ingest_frames_total{kind=\"other\"} 1"), std::string::npos);
  // A second server on the same directory is refused (the writer lock).
  EXPECT_EQ(LogIngestServer::Start(c).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*s)->Shutdown().ok());
}

constexpr int64_t kBaseNs = 1'700'000'000'000'000'000;

// A logs frame of one stream with exactly `labels` (the Loki convention,
// docs/logs-mapping.md) and the lines (ts, text).
Frame StreamFrame(const std::vector<Label>& labels, const std::vector<std::pair<int64_t, std::string>>& lines) {
  opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest req;
  auto* rl = req.add_resource_logs();
  auto* marker = rl->mutable_resource()->add_attributes();
  marker->set_key(std::string(kLokiStreamAttribute));
  marker->mutable_value()->set_bool_value(true);
  for (const Label& l : labels) {
    auto* kv = rl->mutable_resource()->add_attributes();
    kv->set_key(l.name);
    kv->mutable_value()->set_string_value(l.value);
  }
  auto* sl = rl->add_scope_logs();
  for (const auto& [ts, text] : lines) {
    auto* r = sl->add_log_records();
    r->set_time_unix_nano(static_cast<uint64_t>(kBaseNs + ts));  // 0 would mean "now"
    r->mutable_body()->set_string_value(text);
  }
  Frame f;
  f.signal = static_cast<uint8_t>(Signal::kLogs);
  f.payload = req.SerializeAsString();
  return f;
}

double Metric(LogIngestServer& s, const std::string& series) {
  std::string text = s.registry().ExpositionText();
  size_t pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(text.substr(pos + series.size() + 2));
}

// The limits of the issue, each through the daemon's path with its counter:
// line size, labels per stream, streams (per tenant: the store is one
// tenant), out-of-order lines accepted, exact duplicates dropped.
TEST(LogIngest, LimitsAuditThroughFrames) {
  TempDir dir;
  LogIngestConfig c;
  c.data_dir = dir.path() + "/db";
  c.store.background = false;
  c.store.limits.max_line_bytes = 100;
  c.store.limits.max_labels_per_stream = 3;
  c.store.limits.max_streams = 2;
  auto s = LogIngestServer::Start(c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  LogIngestServer& srv = **s;
  ASSERT_TRUE(srv.IngestFrame(StreamFrame({{"job", "a"}}, {{3, "three"}, {1, "one"}, {2, "two"}, {1, "one"},
                                                          {4, std::string(101, 'x')}}))
                  .ok());
  ASSERT_TRUE(srv.IngestFrame(StreamFrame({{"job", "a"}}, {{2, "two"}, {0, "zero"}})).ok());  // dup, older line
  ASSERT_TRUE(srv.IngestFrame(StreamFrame({{"job", "b"}, {"x", "1"}, {"y", "2"}, {"z", "3"}}, {{1, "l"}})).ok());
  ASSERT_TRUE(srv.IngestFrame(StreamFrame({{"job", "c"}}, {{1, "second stream"}})).ok());
  ASSERT_TRUE(srv.IngestFrame(StreamFrame({{"job", "d"}}, {{1, "third stream"}, {2, "x"}})).ok());
  EXPECT_EQ(Metric(srv, "log_ingest_rejected_lines_total{reason=\"line_too_long\"}"), 1);
  EXPECT_EQ(Metric(srv, "log_ingest_rejected_lines_total{reason=\"too_many_labels\"}"), 1);
  EXPECT_EQ(Metric(srv, "log_ingest_rejected_lines_total{reason=\"stream_limit\"}"), 2);
  EXPECT_EQ(Metric(srv, "log_ingest_duplicates_total"), 2);
  EXPECT_EQ(Metric(srv, "log_ingest_lines_total"), 5);
  LogQuery q;
  q.matchers = {*LabelMatcher::Make(MatchType::kEqual, "job", "a")};
  q.limit = 0;
  auto r = srv.store()->Select(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  std::vector<std::string> lines;
  for (const auto& e : (*r)[0].entries) lines.push_back(e.line);
  EXPECT_EQ(lines, (std::vector<std::string>{"zero", "one", "two", "three"}));  // out of order in, sorted out
  EXPECT_TRUE(srv.Shutdown().ok());
}

// The rate limit holds frames (backpressure: not acknowledged meanwhile)
// instead of dropping lines; only a frame over the whole burst loses lines.
TEST(LogIngest, RateLimitHoldsFramesInsteadOfDropping) {
  TempDir dir;
  LogIngestConfig c;
  c.data_dir = dir.path() + "/db";
  c.store.background = false;
  c.store.limits.rate_bytes_per_sec = 100000;  // burst = one second
  auto s = LogIngestServer::Start(c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  LogIngestServer& srv = **s;
  auto frame = [](int first, int n) {
    std::vector<std::pair<int64_t, std::string>> lines;
    for (int i = first; i < first + n; ++i) lines.emplace_back(i, std::string(1000 - 17, 'a' + i % 26));
    return StreamFrame({{"job", "rate"}}, lines);
  };
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(srv.IngestFrame(frame(0, 70)).ok());   // within the burst: at once
  ASSERT_TRUE(srv.IngestFrame(frame(70, 70)).ok());  // waits ~0.4 s for tokens
  const double held = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(held, 0.3);
  EXPECT_EQ(Metric(srv, "log_ingest_rejected_lines_total{reason=\"rate_limited\"}"), 0);
  EXPECT_EQ(Metric(srv, "log_ingest_lines_total"), 140);
  EXPECT_GT(Metric(srv, "log_ingest_rate_limit_wait_seconds_total"), 0.2);
  ASSERT_TRUE(srv.IngestFrame(frame(140, 110)).ok());  // over the burst: waits for a full bucket, drops the rest
  const double dropped = Metric(srv, "log_ingest_rejected_lines_total{reason=\"rate_limited\"}");
  EXPECT_GE(dropped, 9);
  EXPECT_LE(dropped, 11);
  EXPECT_TRUE(srv.Shutdown().ok());
}

}  // namespace
}  // namespace telkit
