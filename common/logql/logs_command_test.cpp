#include "common/logql/logs_command.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/fs/file_system.h"
#include "common/test_support/temp_dir.h"

namespace telkit::logql {
namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kNow = 1'800'000'000 * kSec;

std::unique_ptr<LogStore> OpenStore(const std::string& dir) {
  LogStoreOptions o;
  o.background = false;
  auto s = LogStore::Open(DefaultFileSystem(), dir, o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

void Push(LogStore* s, Labels stream, std::vector<LogEntry> entries) {
  LogPush p{std::move(stream), std::move(entries)};
  auto r = s->Push(std::span<const LogPush>(&p, 1));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->rejected_total(), 0u);
}

TEST(LogsCommand, TraceIdFindsTheLinesOfOneTrace) {
  test_support::TempDir dir(true);
  auto store = OpenStore(dir.path() + "/s");
  const std::string trace = "0af7651916cd43dd8448eb211c80319c";
  Push(store.get(), {{"service_name", "api"}, {"level", "info"}},
       {{kNow - 30 * kSec, "GET /a", {{"trace_id", trace}, {"span_id", "b7ad6b7169203331"}}},
        {kNow - 20 * kSec, "GET /b", {{"trace_id", "ffffffffffffffffffffffffffffffff"}}}});
  Push(store.get(), {{"service_name", "db"}, {"level", "error"}},
       {{kNow - 10 * kSec, "query failed", {{"trace_id", trace}}}});
  LogsCommand cmd;
  cmd.trace_id = "0AF7651916CD43DD8448EB211C80319C";  // case does not matter
  cmd.format = LogsCommand::Format::kRaw;
  std::string out;
  ASSERT_TRUE(RunLogsCommand(
                  cmd, store.get(), [&](std::string_view s) { return out.append(s), true; }, [] { return true; },
                  [] { return kNow; })
                  .ok());
  EXPECT_EQ(out, "GET /a\nquery failed\n");
  // The same through the cross-process reader, as tel-query reads.
  auto reader = LogReader::Open(DefaultFileSystem(), dir.path() + "/s");
  ASSERT_TRUE(reader.ok());
  out.clear();
  cmd.format = LogsCommand::Format::kJson;
  ASSERT_TRUE(RunLogsCommand(
                  cmd, reader->get(), [&](std::string_view s) { return out.append(s), true; }, [] { return true; },
                  [] { return kNow; })
                  .ok());
  EXPECT_EQ(out,
            "{\"timestamp\":\"2027-01-15T07:59:30Z\",\"labels\":{\"level\":\"info\",\"service_name\":\"api\","
            "\"span_id\":\"b7ad6b7169203331\",\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\"},\"line\":\"GET /a\"}\n"
            "{\"timestamp\":\"2027-01-15T07:59:50Z\",\"labels\":{\"level\":\"error\",\"service_name\":\"db\","
            "\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\"},\"line\":\"query failed\"}\n");
}

TEST(LogsCommand, FollowPrintsNewLinesOnceLikeTail) {
  test_support::TempDir dir(true);
  auto store = OpenStore(dir.path() + "/s");
  Push(store.get(), {{"job", "app"}}, {{kNow - 3 * kSec, "old 1", {}}, {kNow - 2 * kSec, "old 2", {}},
                                       {kNow - 1 * kSec, "old 3", {}}});
  std::atomic<int64_t> now{kNow};
  std::mutex mu;
  std::string out;
  std::atomic<bool> stop{false};
  LogsCommand cmd;
  cmd.limit = 2;
  cmd.follow = true;
  cmd.poll_ms = 20;
  cmd.format = LogsCommand::Format::kRaw;
  auto reader = LogReader::Open(DefaultFileSystem(), dir.path() + "/s");
  ASSERT_TRUE(reader.ok());
  std::thread t([&] {
    Status st = RunLogsCommand(
        cmd, reader->get(),
        [&](std::string_view s) {
          std::lock_guard<std::mutex> l(mu);
          out.append(s);
          return true;
        },
        [&] { return stop.load(); }, [&] { return now.load(); });
    EXPECT_TRUE(st.ok()) << st.ToString();
  });
  auto wait_for = [&](const std::string& want) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard<std::mutex> l(mu);
        if (out == want) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard<std::mutex> l(mu);
    ADD_FAILURE() << "got:\n" << out << "want:\n" << want;
    return false;
  };
  EXPECT_TRUE(wait_for("old 2\nold 3\n"));
  // A new line, one at the same timestamp as the last printed, one older
  // than the cursor (late): the first two appear once each.
  now = kNow + 5 * kSec;
  Push(store.get(), {{"job", "app"}}, {{kNow + 1 * kSec, "new 1", {}}, {kNow - 1 * kSec, "same ts", {}}});
  EXPECT_TRUE(wait_for("old 2\nold 3\nsame ts\nnew 1\n"));
  Push(store.get(), {{"job", "app"}}, {{kNow + 2 * kSec, "new 2", {}}});
  EXPECT_TRUE(wait_for("old 2\nold 3\nsame ts\nnew 1\nnew 2\n"));
  stop = true;
  t.join();
}

}  // namespace
}  // namespace telkit::logql
