#include "common/logingest/log_ingest.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/otlp/signal.h"

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

}  // namespace
}  // namespace telkit
