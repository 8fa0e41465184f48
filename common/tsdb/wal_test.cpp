#include "common/tsdb/wal.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "common/base/crc32c.h"
#include "common/fs/fault_injecting_file_system.h"

namespace telkit {
namespace {

constexpr uint64_t kSmallSegment = 4 * kWalBlockSize;  // rolls often

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

// Record `seq` of writer `thread`: recognisable, of a size that varies from
// empty to several blocks, content derived from (thread, seq).
std::string MakeRecord(int thread, int seq) {
  std::mt19937_64 rng(static_cast<uint64_t>(thread) * 1000003 + static_cast<uint64_t>(seq));
  static const size_t kSizes[] = {0, 1, 7, 100, 1000, 32000, kWalBlockSize - 27, kWalBlockSize, 70000};
  size_t size = kSizes[rng() % (sizeof kSizes / sizeof kSizes[0])];
  std::string r = std::to_string(thread) + ":" + std::to_string(seq) + ":";
  while (r.size() < size) r.push_back(static_cast<char>('a' + rng() % 26));
  return r;
}

// Which (thread, seq) a record is; false for bytes no writer produced.
bool ParseRecord(std::string_view r, int* thread, int* seq) {
  size_t a = r.find(':');
  if (a == std::string_view::npos) return false;
  size_t b = r.find(':', a + 1);
  if (b == std::string_view::npos) return false;
  *thread = std::stoi(std::string(r.substr(0, a)));
  *seq = std::stoi(std::string(r.substr(a + 1, b - a - 1)));
  return MakeRecord(*thread, *seq) == r;
}

struct ReadResult {
  Status status;
  std::vector<std::string> records;
  std::vector<WalDamage> damage;
};

ReadResult ReadAll(FileSystem* fs, const std::string& dir, WalCorruptionPolicy policy = WalCorruptionPolicy::kStop) {
  ReadResult out;
  WalReaderOptions o;
  o.on_corruption = policy;
  auto reader = WalReader::Open(fs, dir, o);
  if (!reader.ok()) {
    out.status = reader.status();
    return out;
  }
  for (;;) {
    auto r = (*reader)->Next();
    if (!r.ok()) {
      out.status = r.status();
      break;
    }
    if (!r->has_value()) break;
    out.records.emplace_back(**r);
  }
  out.damage = (*reader)->damage();
  return out;
}

// A fault-injecting file system with a durable /db directory.
struct Fs : FaultInjectingFileSystem {
  Fs() {
    EXPECT_TRUE(CreateDir("/db").ok());
    EXPECT_TRUE(SyncDir("/").ok());
  }
};

WalOptions Small() {
  WalOptions o;
  o.segment_bytes = kSmallSegment;
  return o;
}

// Golden bytes pin docs/format/tsdb-wal.md (CRCs checked with an
// independent CRC-32C implementation).
// clang-format off
TEST(WalFormat, GoldenHeaderAndFragments) {
  uint8_t h[kWalSegmentHeaderSize];
  EncodeWalSegmentHeader(7, h);
  std::string header(reinterpret_cast<char*>(h), sizeof h);
  EXPECT_EQ(Hex(header), "89544b57414c0d0a" "0100" "0000" "07000000" "dcf5b910");
  auto index = DecodeWalSegmentHeader(h);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(*index, 7u);

  std::string frag;
  AppendWalFragment(&frag, WalFragmentType::kFull, "abc");
  EXPECT_EQ(Hex(frag), "2581fce8" "0300" "01" "616263");
  frag.clear();
  AppendWalFragment(&frag, WalFragmentType::kFull, "");
  EXPECT_EQ(Hex(frag), "79200f92" "0000" "01");
}
// clang-format on

TEST(WalFormat, HeaderChecks) {
  uint8_t h[kWalSegmentHeaderSize];
  for (size_t byte = 0; byte < kWalSegmentHeaderSize; ++byte) {
    EncodeWalSegmentHeader(3, h);
    h[byte] ^= 0x10;
    EXPECT_FALSE(DecodeWalSegmentHeader(h).ok()) << byte;
  }
  // Another version or flags (with a valid CRC): UNIMPLEMENTED.
  EncodeWalSegmentHeader(3, h);
  h[8] = 2;
  uint32_t crc = Crc32c(h, 16);
  for (int i = 0; i < 4; ++i) h[16 + i] = static_cast<uint8_t>(crc >> (8 * i));
  EXPECT_EQ(DecodeWalSegmentHeader(h).status().code(), StatusCode::kUnimplemented);
}

TEST(WalFormat, SegmentNamesAndRecordLayout) {
  EXPECT_EQ(WalSegmentName(1), "00000001");
  EXPECT_EQ(WalSegmentName(123456789), "123456789");
  uint32_t i = 0;
  EXPECT_TRUE(ParseWalSegmentName("00000042", &i));
  EXPECT_EQ(i, 42u);
  EXPECT_TRUE(ParseWalSegmentName("4294967295", &i));
  EXPECT_FALSE(ParseWalSegmentName("4294967296", &i));
  EXPECT_FALSE(ParseWalSegmentName("0000042", &i));
  EXPECT_FALSE(ParseWalSegmentName("000000042", &i));  // not canonical
  EXPECT_FALSE(ParseWalSegmentName("00000001.tmp", &i));
  EXPECT_FALSE(ParseWalSegmentName("checkpoint", &i));
  // A record in one block, one that spans two, one that skips a block tail.
  EXPECT_EQ(WalRecordEnd(20, 100), 20u + 7 + 100);
  EXPECT_EQ(WalRecordEnd(20, kWalBlockSize), kWalBlockSize + 7 + 7 + 20);
  EXPECT_EQ(WalRecordEnd(kWalBlockSize - 3, 1), kWalBlockSize + 7 + 1);
  EXPECT_EQ(WalRecordEnd(kWalBlockSize - 7, 0), kWalBlockSize);  // an empty fragment fills the block
}

TEST(Wal, RoundTripAcrossBlocksAndSegments) {
  Fs fs;
  std::vector<std::string> want;
  {
    auto w = WalWriter::Open(&fs, "/db/wal", Small());
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_EQ((*w)->segment(), 1u);
    EXPECT_EQ(WalWriter::Open(&fs, "/none/wal", Small()).status().code(), StatusCode::kNotFound);
    for (int i = 0; i < 60; ++i) {
      want.push_back(MakeRecord(0, i));
      Status s = (*w)->Append(want.back());
      ASSERT_TRUE(s.ok()) << i << " size " << want.back().size() << ": " << s.ToString();
    }
    // Exactly the largest record, in a fresh segment.
    std::string big((*w)->max_record_bytes(), 'x');
    want.push_back(big);
    ASSERT_TRUE((*w)->Append(big).ok());
    EXPECT_EQ((*w)->Append(big + "y").code(), StatusCode::kInvalidArgument);
    WalStats st = (*w)->stats();
    EXPECT_EQ(st.records, 61u);
    EXPECT_GT(st.segments, 5u);
    ASSERT_TRUE((*w)->Close().ok());
    EXPECT_EQ((*w)->Append("late").code(), StatusCode::kFailedPrecondition);
  }
  auto segments = *ListWalSegments(&fs, "/db/wal");
  for (uint32_t s : segments) {
    EXPECT_LE(fs.Stat("/db/wal/" + WalSegmentName(s))->size, kSmallSegment);
  }
  ReadResult r = ReadAll(&fs, "/db/wal");
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_TRUE(r.damage.empty());
  EXPECT_EQ(r.records, want);

  // Reopening starts a new segment after the last; everything reads back in order.
  auto w = WalWriter::Open(&fs, "/db/wal", Small());
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->segment(), segments.back() + 1);
  ASSERT_TRUE((*w)->Append("after reopen").ok());
  want.push_back("after reopen");
  r = ReadAll(&fs, "/db/wal");
  EXPECT_EQ(r.records, want);

  // Removing old segments leaves a contiguous tail that still reads.
  ASSERT_TRUE((*w)->RemoveSegmentsBefore(segments.back()).ok());
  EXPECT_EQ(ListWalSegments(&fs, "/db/wal")->front(), segments.back());
  r = ReadAll(&fs, "/db/wal");
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.records.back(), "after reopen");
}

TEST(Wal, EmptyOrMissingDirectoryIsAnEmptyLog) {
  Fs fs;
  ReadResult r = ReadAll(&fs, "/nothing/here");
  EXPECT_TRUE(r.status.ok());
  EXPECT_TRUE(r.records.empty());
  EXPECT_EQ(WalWriter::Open(&fs, "/db/wal", WalOptions{.segment_bytes = 1000}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Wal, GroupCommitSharesSyncs) {
  Fs fs;
  auto w = WalWriter::Open(&fs, "/db/wal", Small());
  ASSERT_TRUE(w.ok());
  constexpr int kThreads = 8, kEach = 200;
  // Slow fsyncs make appenders pile up behind the leader.
  fs.SetFaultHook([](FsOp op, std::string_view) {
    if (op == FsOp::kSync) std::this_thread::sleep_for(std::chrono::microseconds(300));
    return OkStatus();
  });
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        if (!(*w)->Append(MakeRecord(t, i)).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  fs.SetFaultHook({});
  EXPECT_EQ(failures.load(), 0);
  WalStats st = (*w)->stats();
  EXPECT_EQ(st.records, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_LT(st.commits, st.records);  // some commits carried several records
  std::printf("group commit: %lu records in %lu commits, %lu fsyncs\n", static_cast<unsigned long>(st.records),
              static_cast<unsigned long>(st.commits), static_cast<unsigned long>(st.syncs));
  ReadResult r = ReadAll(&fs, "/db/wal");
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.records.size(), static_cast<size_t>(kThreads * kEach));
  std::map<int, int> next;  // each thread's records in its order
  for (const auto& rec : r.records) {
    int t, s;
    ASSERT_TRUE(ParseRecord(rec, &t, &s));
    EXPECT_EQ(s, next[t]++);
  }
}

// A segment path and its bytes, for damage tests.
std::string SegmentPath(uint32_t index) { return "/db/wal/" + WalSegmentName(index); }

void Overwrite(Fs& fs, const std::string& path, uint64_t offset, std::string_view bytes) {
  std::string data = *ReadFileToString(&fs, path);
  data.replace(offset, bytes.size(), bytes);
  ASSERT_TRUE(WriteFileDurably(&fs, path, data).ok());
}

std::vector<std::string> WriteRecords(Fs& fs, int n) {
  auto w = WalWriter::Open(&fs, "/db/wal", Small());
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(MakeRecord(1, i));
    EXPECT_TRUE((*w)->Append(out.back()).ok());
  }
  return out;
}

TEST(Wal, DamageBeforeTheTailIsDataLoss) {
  Fs fs;
  std::vector<std::string> want = WriteRecords(fs, 40);
  auto segments = *ListWalSegments(&fs, "/db/wal");
  ASSERT_GE(segments.size(), 3u);
  Overwrite(fs, SegmentPath(segments[1]), 100, "garbage");
  ReadResult r = ReadAll(&fs, "/db/wal");
  EXPECT_EQ(r.status.code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status.message().find("'/db/wal/" + WalSegmentName(segments[1]) + "'"), std::string::npos)
      << r.status.message();
  EXPECT_NE(r.status.message().find("at offset"), std::string::npos) << r.status.message();
  // kSkip returns what is intact on both sides and says what it skipped.
  r = ReadAll(&fs, "/db/wal", WalCorruptionPolicy::kSkip);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_FALSE(r.damage.empty());
  EXPECT_EQ(r.damage[0].segment, segments[1]);
  EXPECT_GT(r.damage[0].skipped_bytes, 0u);
  EXPECT_FALSE(r.damage[0].tail);
  EXPECT_LT(r.records.size(), want.size());
  EXPECT_EQ(r.records.back(), want.back());
  for (const auto& rec : r.records) {
    int t, s;
    EXPECT_TRUE(ParseRecord(rec, &t, &s));
  }
}

TEST(Wal, MissingSegmentAndBadHeader) {
  Fs fs;
  std::vector<std::string> want = WriteRecords(fs, 40);
  auto segments = *ListWalSegments(&fs, "/db/wal");
  ASSERT_TRUE(fs.RemoveFile(SegmentPath(segments[1])).ok());
  ReadResult r = ReadAll(&fs, "/db/wal");
  EXPECT_EQ(r.status.code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status.message().find("missing segment " + WalSegmentName(segments[1])), std::string::npos);
  r = ReadAll(&fs, "/db/wal", WalCorruptionPolicy::kSkip);
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.records.back(), want.back());

  Overwrite(fs, SegmentPath(segments[2]), 12, std::string("\x09\0\0\0", 4));  // header index, CRC now wrong
  r = ReadAll(&fs, "/db/wal", WalCorruptionPolicy::kSkip);
  EXPECT_TRUE(r.status.ok());
  ASSERT_GE(r.damage.size(), 2u);
  EXPECT_EQ(r.damage[1].segment, segments[2]);
  EXPECT_EQ(r.damage[1].offset, 0u);
}

TEST(Wal, TornTailIsTheEndAndOpenRepairsIt) {
  for (uint64_t cut : {1u, 7u, 20u, 21u, 40u, 5000u}) {
    Fs fs;
    std::vector<std::string> want = WriteRecords(fs, 25);
    auto segments = *ListWalSegments(&fs, "/db/wal");
    std::string last = SegmentPath(segments.back());
    uint64_t size = fs.Stat(last)->size;
    ASSERT_GT(size, cut);
    ASSERT_TRUE(fs.Truncate(last, size - cut).ok());
    ReadResult r = ReadAll(&fs, "/db/wal");
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    ASSERT_EQ(r.damage.size(), 1u);
    EXPECT_TRUE(r.damage[0].tail);
    EXPECT_FALSE(r.damage[0].records_follow);
    ASSERT_LT(r.records.size(), want.size());
    EXPECT_TRUE(std::equal(r.records.begin(), r.records.end(), want.begin()));

    auto w = WalWriter::Open(&fs, "/db/wal", Small());
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE((*w)->Append("new").ok());
    ReadResult after = ReadAll(&fs, "/db/wal");
    ASSERT_TRUE(after.status.ok()) << after.status.ToString();
    EXPECT_TRUE(after.damage.empty()) << after.damage[0].ToString();
    std::vector<std::string> expect = r.records;
    expect.push_back("new");
    EXPECT_EQ(after.records, expect) << "cut " << cut;
  }
}

// A crash while a segment's header was written leaves it torn; Open removes
// it and must reuse its number, or the log would have a gap (data loss).
TEST(Wal, TornHeaderOfTheLastSegmentLeavesNoGap) {
  Fs fs;
  std::vector<std::string> want = WriteRecords(fs, 25);
  auto segments = *ListWalSegments(&fs, "/db/wal");
  ASSERT_GE(segments.size(), 2u);
  const uint32_t torn = segments.back() + 1;
  ASSERT_TRUE(WriteFileDurably(&fs, SegmentPath(torn), "\x89TKW").ok());
  for (int reopen = 0; reopen < 2; ++reopen) {
    auto w = WalWriter::Open(&fs, "/db/wal", Small());
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_EQ((*w)->segment(), torn + reopen);
    ASSERT_TRUE((*w)->Append("after " + std::to_string(reopen)).ok());
    want.push_back("after " + std::to_string(reopen));
  }
  ReadResult after = ReadAll(&fs, "/db/wal");
  ASSERT_TRUE(after.status.ok()) << after.status.ToString();
  EXPECT_TRUE(after.damage.empty());
  EXPECT_EQ(after.records, want);
}

TEST(Wal, ZeroedAndDamagedTails) {
  Fs fs;
  std::vector<std::string> want = WriteRecords(fs, 10);
  auto segments = *ListWalSegments(&fs, "/db/wal");
  std::string last = SegmentPath(segments.back());
  uint64_t size = fs.Stat(last)->size;
  // Zero bytes after the end (delayed allocation after a crash).
  ASSERT_TRUE(fs.Truncate(last, size + 3000).ok());
  ReadResult r = ReadAll(&fs, "/db/wal");
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.records, want);
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_NE(r.damage[0].reason.find("zero bytes"), std::string::npos) << r.damage[0].reason;
  EXPECT_EQ(r.damage[0].offset, size);
  EXPECT_EQ(r.damage[0].skipped_bytes, 3000u);

  // Damage in the last segment with intact records after it: kStop ends
  // there (and says records follow), kSkip reads past it.
  Fs fs2;
  auto w = WalWriter::Open(&fs2, "/db/wal", WalOptions{});
  std::vector<std::string> small;
  for (int i = 0; i < 400; ++i) {
    small.push_back(std::string(300, static_cast<char>('a' + i % 26)) + std::to_string(i));
    ASSERT_TRUE((*w)->Append(small.back()).ok());
  }
  Overwrite(fs2, SegmentPath(1), 5000, "XXXX");
  r = ReadAll(&fs2, "/db/wal");
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_TRUE(r.damage[0].tail);
  EXPECT_TRUE(r.damage[0].records_follow) << r.damage[0].ToString();
  size_t stopped = r.records.size();
  r = ReadAll(&fs2, "/db/wal", WalCorruptionPolicy::kSkip);
  ASSERT_TRUE(r.status.ok());
  EXPECT_GT(r.records.size(), stopped);
  EXPECT_EQ(r.records.back(), small.back());
  ASSERT_EQ(r.damage.size(), 1u);
  EXPECT_FALSE(r.damage[0].tail);
  // From the damaged record to the first record that starts in the next
  // block (after the end of one that straddles the boundary).
  EXPECT_GE(r.damage[0].skipped_bytes, kWalBlockSize - r.damage[0].offset);
  EXPECT_LT(r.damage[0].skipped_bytes, kWalBlockSize - r.damage[0].offset + 320);
}

// ---- crashes and a full disk, with the fault-injecting file system

struct Workload {
  std::vector<std::string> acked;      // Append returned OK
  std::vector<std::string> attempted;  // in order
};

// One writer: opens the log, appends `n` records of thread `id`.
Workload RunWriter(FileSystem* fs, int id, int n) {
  Workload w;
  auto writer = WalWriter::Open(fs, "/db/wal", Small());
  if (!writer.ok()) return w;
  for (int i = 0; i < n; ++i) {
    std::string rec = MakeRecord(id, i);
    w.attempted.push_back(rec);
    if (!(*writer)->Append(rec).ok()) break;
    w.acked.push_back(rec);
  }
  return w;
}

// What a reader finds after a crash: no error, only records some writer
// attempted, each writer's records a prefix of what it attempted that
// includes everything acknowledged.
void CheckRecovered(FileSystem* fs, const std::vector<Workload>& writers, const std::string& label) {
  ReadResult r = ReadAll(fs, "/db/wal");
  ASSERT_TRUE(r.status.ok()) << label << ": " << r.status.ToString();
  std::map<int, int> next;
  for (const auto& rec : r.records) {
    int t, s;
    ASSERT_TRUE(ParseRecord(rec, &t, &s)) << label << ": a record no writer wrote";
    ASSERT_EQ(s, next[t]) << label << ": writer " << t << " out of order or with a hole";
    ++next[t];
  }
  for (size_t t = 0; t < writers.size(); ++t) {
    EXPECT_GE(next[static_cast<int>(t)], static_cast<int>(writers[t].acked.size()))
        << label << ": writer " << t << " lost acknowledged records";
    EXPECT_LE(next[static_cast<int>(t)], static_cast<int>(writers[t].attempted.size())) << label;
  }
}

TEST(WalCrash, EveryCrashPointLosesNothingAcknowledged) {
  int crash_points = 0;
  for (CrashMode mode : {CrashMode::kDropUnsynced, CrashMode::kTornUnsynced, CrashMode::kZeroUnsynced}) {
    for (uint64_t n = 1;; ++n) {
      Fs fs;
      ASSERT_TRUE(fs.CreateDir("/db").ok());
      ASSERT_TRUE(fs.SyncDir("/").ok());
      fs.CrashAtOp(n, mode, /*seed=*/n);
      std::vector<Workload> writers = {RunWriter(&fs, 0, 30)};
      bool crashed = fs.down();
      fs.Restart();
      std::string label = "mode " + std::to_string(static_cast<int>(mode)) + " crash at op " + std::to_string(n);
      CheckRecovered(&fs, writers, label);
      if (HasFatalFailure()) return;
      // Restart: repair and go on; then crash once more during that, and recover again.
      fs.CrashAtOp(1 + n % 7, mode, n + 1);
      Workload second = RunWriter(&fs, 1, 5);
      bool crashed_again = fs.down();
      fs.Restart();
      writers.push_back(second);
      CheckRecovered(&fs, writers, label + " and again after restart");
      if (!crashed_again) {
        EXPECT_EQ(second.acked.size(), 5u) << label;
      }
      if (!crashed) break;  // the workload finished before op n
      ++crash_points;
    }
  }
  EXPECT_GT(crash_points, 150);
}

TEST(WalCrash, ConcurrentWritersCrashAnywhere) {
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 30; ++iter) {
    Fs fs;
    ASSERT_TRUE(fs.CreateDir("/db").ok());
    ASSERT_TRUE(fs.SyncDir("/").ok());
    auto w = WalWriter::Open(&fs, "/db/wal", Small());
    ASSERT_TRUE(w.ok());
    constexpr int kThreads = 4, kEach = 40;
    fs.CrashAtOp(1 + rng() % 150, iter % 2 ? CrashMode::kTornUnsynced : CrashMode::kDropUnsynced, rng());
    std::vector<Workload> writers(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          std::string rec = MakeRecord(t, i);
          writers[static_cast<size_t>(t)].attempted.push_back(rec);
          if (!(*w)->Append(rec).ok()) break;
          writers[static_cast<size_t>(t)].acked.push_back(rec);
        }
      });
    }
    for (auto& th : threads) th.join();
    w->reset();
    fs.SimulateCrash();  // if the armed crash did not fire, crash now
    fs.Restart();
    CheckRecovered(&fs, writers, "iteration " + std::to_string(iter));
    if (HasFatalFailure()) return;
  }
}

TEST(WalCrash, FullDiskIsReportedAndTheLogStaysReadable) {
  for (uint64_t limit : {0u, 10u, 100u, 5000u, 40000u, 70000u, 150000u}) {
    Fs fs;
    auto w = WalWriter::Open(&fs, "/db/wal", Small());
    ASSERT_TRUE(w.ok());
    fs.SetSpaceLimit(limit);
    std::vector<std::string> acked;
    Status failure;
    for (int i = 0; i < 100; ++i) {
      std::string rec = MakeRecord(2, i);
      Status s = (*w)->Append(rec);
      if (!s.ok()) {
        failure = s;
        break;
      }
      acked.push_back(rec);
    }
    ASSERT_EQ(failure.code(), StatusCode::kResourceExhausted) << limit << ": " << failure.ToString();
    EXPECT_NE(failure.message().find("no space left"), std::string::npos) << failure.message();
    // Sticky: the tail may be torn, so nothing more goes after it.
    EXPECT_EQ((*w)->Append("x").code(), StatusCode::kResourceExhausted);
    w->reset();

    ReadResult r = ReadAll(&fs, "/db/wal");
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.records, acked) << limit;
    for (const auto& d : r.damage) EXPECT_TRUE(d.tail) << d.ToString();

    // Space again: reopening repairs the tail, and appends work.
    fs.ClearSpaceLimit();
    auto again = WalWriter::Open(&fs, "/db/wal", Small());
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    ASSERT_TRUE((*again)->Append("after").ok());
    r = ReadAll(&fs, "/db/wal");
    ASSERT_TRUE(r.status.ok());
    EXPECT_TRUE(r.damage.empty());
    acked.push_back("after");
    EXPECT_EQ(r.records, acked);
  }
}

TEST(WalCrash, FailedSyncFailsTheAppendAndStaysFailed) {
  Fs fs;
  auto w = WalWriter::Open(&fs, "/db/wal", Small());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("one").ok());
  fs.SetFaultHook([](FsOp op, std::string_view path) {
    return op == FsOp::kSync ? ErrnoError("sync '" + std::string(path) + "'", EIO) : OkStatus();
  });
  Status s = (*w)->Append("two");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("input/output error"), std::string::npos) << s.message();
  fs.SetFaultHook({});
  EXPECT_FALSE((*w)->Append("three").ok());
  EXPECT_EQ((*w)->stats().records, 1u);
}

}  // namespace
}  // namespace telkit
