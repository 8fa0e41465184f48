#include "common/logstore/log_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "common/fs/fault_injecting_file_system.h"
#include "common/logstore/log_wal_record.h"
#include "common/test_support/temp_dir.h"

namespace telkit {
namespace {

constexpr int64_t kSec = 1'000'000'000;

using test_support::TempDir;

LabelMatcher Eq(std::string name, std::string value) {
  return LabelMatcher::Make(MatchType::kEqual, std::move(name), std::move(value)).value();
}

LogStoreOptions TestOptions() {
  LogStoreOptions o;
  o.background = false;
  return o;
}

LogPush Push(std::string job, std::vector<LogEntry> es) {
  return LogPush{Labels{{"job", job}}, std::move(es)};
}

// All lines of stream {job=...}, forward.
std::vector<LogEntry> All(LogQuerier* q, const std::string& job) {
  LogQuery query;
  query.matchers = {Eq("job", job)};
  query.limit = 0;
  auto r = q->Select(query);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok() || r->empty()) return {};
  EXPECT_EQ(r->size(), 1u);
  return (*r)[0].entries;
}

TEST(LogStore, PushSelectOrderDuplicatesAndReopen) {
  TempDir dir;
  std::vector<LogEntry> want;
  {
    auto store = LogStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::vector<LogPush> p = {Push("a", {{3, "three", {{"trace_id", "0af7651916cd43dd8448eb211c80319c"}}},
                                         {1, "one", {}},
                                         {2, "two", {}},
                                         {1, "one", {}},         // exact duplicate: dropped
                                         {1, "one bis", {}}})};  // same ts, other line: kept
    auto r = (*store)->Push(p);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->accepted, 4u);
    EXPECT_EQ(r->duplicates, 1u);
    EXPECT_EQ(r->streams_created, 1u);
    want = {{1, "one", {}}, {1, "one bis", {}}, {2, "two", {}},
            {3, "three", {{"trace_id", "0af7651916cd43dd8448eb211c80319c"}}}};
    EXPECT_EQ(All(store->get(), "a"), want);  // from the head
    ASSERT_TRUE((*store)->Flush().ok());
    EXPECT_EQ((*store)->stats().chunks_written, 1u);
    EXPECT_EQ(All(store->get(), "a"), want);  // from the chunk
    // A duplicate of a line already in a chunk is stored but never read twice.
    ASSERT_TRUE((*store)->Push(std::vector<LogPush>{Push("a", {{2, "two", {}}, {0, "zero", {}}})}).ok());
    auto got = All(store->get(), "a");
    ASSERT_EQ(got.size(), 5u);
    EXPECT_EQ(got[0].line, "zero");
  }
  auto store = LogStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(All(store->get(), "a").size(), 5u);
  // Backward with a limit, time range, substring filter.
  LogQuery q;
  q.matchers = {Eq("job", "a")};
  q.backward = true;
  q.limit = 2;
  auto r = (*store)->Select(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  ASSERT_EQ((*r)[0].entries.size(), 2u);
  EXPECT_EQ((*r)[0].entries[0].line, "three");
  EXPECT_EQ((*r)[0].entries[1].line, "two");
  q.backward = false;
  q.limit = 0;
  q.start_ns = 1;
  q.end_ns = 3;
  q.contains = {"one"};
  r = (*store)->Select(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].entries.size(), 2u);
}

TEST(LogStore, LimitsAreCountedPerReason) {
  TempDir dir;
  LogStoreOptions o = TestOptions();
  o.limits.max_line_bytes = 10;
  o.limits.max_streams = 2;
  o.limits.max_labels_per_stream = 2;
  auto store = LogStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  std::vector<LogPush> p = {
      Push("a", {{1, "short", {}}, {2, "much too long line", {}}}),
      Push("b", {{1, "x", {}}}),
      Push("c", {{1, "over the stream limit", {}}}),
      LogPush{Labels{{"a", "1"}, {"b", "2"}, {"c", "3"}}, {{1, "x", {}}}},
      LogPush{Labels{{"bad-name", "1"}}, {{1, "x", {}}}},
      LogPush{Labels{}, {{1, "x", {}}}},
      Push("a", {{3, std::string("bad \xff utf8"), {}}}),
  };
  auto r = (*store)->Push(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->accepted, 3u);
  EXPECT_EQ(r->rejected["line_too_long"], 1u);
  EXPECT_EQ(r->rejected["stream_limit"], 1u);
  EXPECT_EQ(r->rejected["too_many_labels"], 1u);
  EXPECT_EQ(r->rejected["invalid_labels"], 2u);
  auto got = All(store->get(), "a");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].line, "bad \xEF\xBF\xBD utf8");
  EXPECT_EQ((*store)->stats().invalid_utf8_replaced, 1u);
  EXPECT_EQ((*store)->stats().rejected.at("invalid_labels"), 2u);
}

TEST(LogStore, IngestionRateLimit) {
  TempDir dir;
  LogStoreOptions o = TestOptions();
  o.limits.rate_bytes_per_sec = 1000;  // a burst of 1000 bytes, refilled at 1000/s
  auto store = LogStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  std::vector<LogEntry> es;
  for (int i = 0; i < 100; ++i) es.push_back({i, std::string(83, 'x'), {}});  // 100 bytes each
  auto r = (*store)->Push(std::vector<LogPush>{Push("a", es)});
  ASSERT_TRUE(r.ok());
  EXPECT_GE(r->accepted, 10u);
  EXPECT_LE(r->accepted, 11u);
  EXPECT_EQ(r->rejected["rate_limited"], 100 - r->accepted);
}

TEST(LogStore, ChunksCutBySizeAndReadAcrossChunksWithLimits) {
  TempDir dir;
  LogStoreOptions o = TestOptions();
  o.chunk_target_bytes = 4096;
  o.chunk.block_bytes = 1024;
  auto store = LogStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  for (int b = 0; b < 20; ++b) {
    std::vector<LogEntry> es;
    for (int i = 0; i < 50; ++i) {
      int n = b * 50 + i;
      es.push_back({int64_t{n} * kSec, "line " + std::to_string(n) + (n % 10 == 0 ? " ERROR" : " ok"), {}});
    }
    ASSERT_TRUE((*store)->Push(std::vector<LogPush>{Push("a", es), Push("b", {es[0]})}).ok());
  }
  auto st = (*store)->stats();
  EXPECT_GT(st.chunks_written, 5u);
  EXPECT_EQ(st.lines_appended, 1020u);
  LogQuery q;
  q.matchers = {Eq("job", "a")};
  q.contains = {"ERROR"};
  q.limit = 7;
  q.backward = true;
  auto r = (*store)->Select(q);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  ASSERT_EQ((*r)[0].entries.size(), 7u);
  EXPECT_EQ((*r)[0].entries[0].line, "line 990 ERROR");
  EXPECT_EQ((*r)[0].entries[6].line, "line 930 ERROR");
  // Global limit over two streams, forward.
  q.matchers = {LabelMatcher::Make(MatchType::kRegexMatch, "job", "a|b").value()};
  q.contains = {};
  q.limit = 3;
  q.backward = false;
  r = (*store)->Select(q);
  ASSERT_TRUE(r.ok());
  size_t n = 0;
  for (auto& s : *r) n += s.entries.size();
  EXPECT_EQ(n, 3u);
  auto streams = (*store)->Streams(std::vector<LabelMatcher>{}, 0, INT64_MAX);
  ASSERT_TRUE(streams.ok());
  EXPECT_EQ(streams->size(), 2u);
}

TEST(LogStore, RetentionByTimeAndSizeDeletesFiles) {
  TempDir dir;
  LogStoreOptions o = TestOptions();
  o.retention_ns = 100 * kSec;
  auto chunk_files = [&] {
    size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(dir.path() + "/chunks")) n += e.is_regular_file();
    return n;
  };
  {
    auto store = LogStore::Open(DefaultFileSystem(), dir.path(), o);
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE((*store)->Push(std::vector<LogPush>{Push("a", {{int64_t{i} * 50 * kSec, "l" + std::to_string(i), {}}})})
                      .ok());
      ASSERT_TRUE((*store)->Flush().ok());
    }
    EXPECT_EQ(chunk_files(), 10u);
    ASSERT_TRUE((*store)->Maintain().ok());
    // newest = 450 s: chunks with maxt < 350 s are gone (0..300 s: 7 chunks).
    EXPECT_EQ(chunk_files(), 3u);
    EXPECT_EQ((*store)->stats().retention_deleted_chunks, 7u);
    EXPECT_EQ(All(store->get(), "a").size(), 3u);
    // Too old for the retention horizon: refused.
    auto r = (*store)->Push(std::vector<LogPush>{Push("a", {{1, "ancient", {}}})});
    EXPECT_EQ(r->rejected["too_old"], 1u);
  }
  o.retention_ns = 0;
  o.retention_bytes = 1;  // everything but... nothing fits: all chunks go
  auto store = LogStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Maintain().ok());
  EXPECT_EQ(chunk_files(), 0u);
  EXPECT_TRUE(All(store->get(), "a").empty());
}

TEST(LogStore, ReaderInAnotherProcessSeesAcknowledgedLinesAtOnce) {
  TempDir dir;
  LogStoreOptions o = TestOptions();
  o.chunk_target_bytes = 2048;
  auto store = LogStore::Open(DefaultFileSystem(), dir.path(), o);
  ASSERT_TRUE(store.ok());
  auto reader = LogReader::Open(DefaultFileSystem(), dir.path());
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE((*store)->Push(std::vector<LogPush>{Push("a", {{i, "line number " + std::to_string(i), {}}})}).ok());
    if (i % 50 == 49) {
      // Chunks cut so far and the WAL tail, without duplicates.
      auto got = All(reader->get(), "a");
      ASSERT_EQ(got.size(), size_t(i + 1));
    }
  }
  EXPECT_GT((*store)->stats().chunks_written, 0u);
  // In a forked child (a separate process with its own SQLite connection).
  pid_t pid = fork();
  if (pid == 0) {
    auto r = LogReader::Open(DefaultFileSystem(), dir.path());
    if (!r.ok()) _exit(2);
    _exit(All(r->get(), "a").size() == 200 ? 0 : 3);
  }
  int status;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(LogWalRecord, GoldenBytes) {
  std::string rec;
  std::vector<LogPush> p = {LogPush{Labels{{"job", "x"}}, {{-1, "hi", {{"k", "v"}}}}}};
  EncodeLogWalRecord(7, p, &rec);
  std::string want("\x01" "\x07\0\0\0\0\0\0\0" "\x01" "\x01" "\x03job" "\x01x" "\x01" "\x01" "\x02hi" "\x01" "\x01k"
                   "\x01v",
                   27);
  EXPECT_EQ(rec, want);
  auto d = DecodeLogWalRecord(rec);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->seq, 7u);
  EXPECT_EQ(d->pushes[0].entries[0].line, "hi");
  for (size_t n = 0; n < rec.size(); ++n) EXPECT_FALSE(DecodeLogWalRecord(rec.substr(0, n)).ok());
}

// Crash at every file-system operation while pushing, cutting chunks and
// checkpointing: every acknowledged line is there after the restart, once.
TEST(LogStoreCrash, EveryCrashPointKeepsAcknowledgedLines) {
  int full_runs = 0;  // runs where the crash came after the cuts and the checkpoint
  for (CrashMode mode : {CrashMode::kDropUnsynced, CrashMode::kTornUnsynced, CrashMode::kZeroUnsynced}) {
    for (uint64_t n = 1; n <= 150; ++n) {
      TempDir index_dir(true);
      FaultInjectingFileSystem fs;
      LogStoreOptions o = TestOptions();
      o.index_path = index_dir.path() + "/index.db";
      o.chunk_target_bytes = 600;
      o.wal_checkpoint_bytes = 3000;
      o.wal.segment_bytes = 32 * 1024;
      std::map<std::string, std::vector<LogEntry>> acked;
      {
        auto store = LogStore::Open(&fs, "db", o);
        ASSERT_TRUE(store.ok()) << store.status().ToString();
        fs.CrashAtOp(n, mode, n);
        for (int i = 0; i < 40; ++i) {
          std::vector<LogPush> batch;
          for (int k = 0; k < 3; ++k) {
            // Out of order on purpose.
            batch.push_back(Push(std::to_string((i + k) % 4), {{int64_t{(i * 7) % 40}, "line " + std::to_string(i), {}}}));
          }
          auto r = (*store)->Push(batch);
          if (!r.ok()) break;
          for (auto& p : batch) acked[std::string(p.stream.Get("job"))].push_back(p.entries[0]);
        }
        if (!fs.down()) fs.SimulateCrash(mode, n);
      }
      fs.Restart();
      auto store = LogStore::Open(&fs, "db", o);
      ASSERT_TRUE(store.ok()) << "crash at op " << n << ": " << store.status().ToString();
      if (!acked.empty() && acked.begin()->second.size() >= 30) full_runs++;
      for (auto& [job, lines] : acked) {
        auto got = All(store->get(), job);
        std::map<std::pair<int64_t, std::string>, int> seen;
        for (auto& e : got) seen[{e.ts, e.line}]++;
        for (auto& e : lines) ASSERT_EQ((seen[{e.ts, e.line}]), 1) << "op " << n << " job " << job << " " << e.line;
      }
      ASSERT_TRUE((*store)->Push(std::vector<LogPush>{Push("0", {{99, "after", {}}})}).ok());
      ASSERT_TRUE((*store)->Flush().ok());
    }
  }
  EXPECT_GT(full_runs, 3);
}

// A real process killed with SIGKILL while ingesting with the background
// thread cutting chunks: every acknowledged line is there.
TEST(LogStoreCrash, KillNineMidIngest) {
  TempDir dir;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    LogStoreOptions o;
    o.chunk_target_bytes = 8192;
    o.wal_checkpoint_bytes = 64 << 10;
    o.background_interval_ms = 5;
    auto store = LogStore::Open(DefaultFileSystem(), dir.path(), o);
    if (!store.ok()) _exit(2);
    for (int i = 0; i < 1000000; ++i) {
      std::vector<LogPush> batch;
      for (int k = 0; k < 5; ++k) batch.push_back(Push(std::to_string(k), {{int64_t{i}, "msg " + std::to_string(i), {}}}));
      if (!(*store)->Push(batch).ok()) _exit(3);
      if (write(fds[1], &i, sizeof i) != sizeof i) _exit(4);
    }
    _exit(0);
  }
  close(fds[1]);
  int last = -1, v;
  while (last < 2000 && read(fds[0], &v, sizeof v) == sizeof v) last = v;
  kill(pid, SIGKILL);
  while (read(fds[0], &v, sizeof v) == sizeof v) last = v;
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  auto store = LogStore::Open(DefaultFileSystem(), dir.path(), TestOptions());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (int k = 0; k < 5; ++k) {
    auto got = All(store->get(), std::to_string(k));
    ASSERT_GE(got.size(), size_t(last + 1)) << k;
    for (int i = 0; i <= last; ++i) ASSERT_EQ(got[i].line, "msg " + std::to_string(i)) << k;
  }
  EXPECT_GT((*store)->stats().chunks, 0u);
}

}  // namespace
}  // namespace telkit
