// The on-disk spool of socket outputs: its bytes, what survives a crash at
// every file system operation and a full disk, and a spooled socket output
// that resends after a restart.
#include "common/pipeline/spool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "common/fs/fault_injecting_file_system.h"
#include "common/pipeline/spool_sink.h"
#include "common/stream/stream_input.h"

namespace telkit {
namespace {

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string PayloadOf(const SpoolRecord& r) { return r.bytes.substr(kFrameHeaderSize); }

std::unique_ptr<Spool> OpenOk(FileSystem* fs, const SpoolOptions& o = {}) {
  auto s = Spool::Open(fs, "/spool", o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

// Every unacknowledged frame, in order: payload.
std::vector<std::string> Contents(const Spool& s) {
  std::vector<std::string> out;
  for (uint64_t i = s.begin(); i < s.end(); ++i) {
    auto r = s.Read(i);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) out.push_back(PayloadOf(*r));
  }
  return out;
}

TEST(Spool, SegmentBytesAreTheDocumentedGoldenBytes) {
  FaultInjectingFileSystem fs;
  SpoolOptions o;
  o.writer_id = 0x1122334455667788;
  auto s = OpenOk(&fs, o);
  ASSERT_TRUE(s->Append(1, 1000, "abc").ok());
  auto names = fs.ListDir("/spool").value();
  ASSERT_EQ(names, std::vector<std::string>{"00000000000000000001.spool"});
  auto bytes = ReadFileToString(&fs, "/spool/00000000000000000001.spool").value();
  // docs/format/spool.md: the 24-byte header, then the frame of stream.md.
  EXPECT_EQ(Hex(bytes),
            "89544b53504f4f4c010000008877665544332211a11322b2"
            "f7544b4601000000030000000100000000000000e803000000000000b73f4b36530b5475616263");
  EXPECT_EQ(*fs.SyncedSize("/spool/00000000000000000001.spool"), bytes.size());  // durable before Append returned
  EXPECT_TRUE(fs.EntryDurable("/spool/00000000000000000001.spool"));
}

TEST(Spool, ReopenFindsUnacknowledgedFramesAndContinuesTheirSequence) {
  FaultInjectingFileSystem fs;
  uint64_t writer;
  {
    SpoolOptions o;
    o.segment_bytes = 100;  // a few frames a segment
    auto s = OpenOk(&fs, o);
    writer = s->writer_id();
    for (int i = 0; i < 10; ++i) ASSERT_EQ(*s->Append(1, 0, "frame" + std::to_string(i)), uint64_t(i));
    s->AckThrough(4);
    EXPECT_EQ(s->Stats().frames, 6u);
    EXPECT_GT(s->Stats().segments, 1u);
  }
  auto s = OpenOk(&fs);
  EXPECT_EQ(s->writer_id(), writer);
  EXPECT_EQ(s->Stats().recovered_frames, s->end() - s->begin());
  auto got = Contents(*s);
  // Segments that held only acknowledged frames are gone; the rest comes back,
  // perhaps with some acknowledged frames of a shared segment (duplicates).
  ASSERT_GE(got.size(), 6u);
  EXPECT_EQ(got.back(), "frame9");
  EXPECT_EQ(got[got.size() - 6], "frame4");
  EXPECT_EQ(s->SequenceAt(s->end() - 1), 10u);
  auto next = s->Append(1, 0, "frame10");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(s->Read(*next)->sequence, 11u);
  EXPECT_EQ(s->Read(*next)->writer_id, writer);
}

TEST(Spool, FullyAcknowledgedSegmentsAreDeleted) {
  FaultInjectingFileSystem fs;
  SpoolOptions o;
  o.segment_bytes = 150;
  auto s = OpenOk(&fs, o);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(s->Append(3, 0, std::string(40, 'x')).ok());
  EXPECT_EQ(s->Stats().segments, 10u);  // 24 + 2 * 76 bytes a segment
  s->AckThrough(20);
  EXPECT_EQ(s->Stats().frames, 0u);
  EXPECT_EQ(s->Stats().bytes, 0u);
  EXPECT_EQ(s->Stats().segments, 0u);
  EXPECT_EQ(s->Stats().disk_bytes, 0u);
  EXPECT_TRUE(fs.ListDir("/spool")->empty());
  s.reset();
  EXPECT_TRUE(Contents(*OpenOk(&fs)).empty());  // nothing resent after a restart
}

TEST(Spool, HasRoomUntilMaxBytesButAlwaysWhenEmpty) {
  FaultInjectingFileSystem fs;
  SpoolOptions o;
  o.max_bytes = 200;
  auto s = OpenOk(&fs, o);
  EXPECT_TRUE(s->HasRoom(1000));  // empty: any frame fits, or nothing could ever be sent
  ASSERT_TRUE(s->Append(1, 0, std::string(100, 'a')).ok());  // 24 + 136 bytes on disk
  EXPECT_TRUE(s->HasRoom(40));
  EXPECT_FALSE(s->HasRoom(41));
  s->AckThrough(1);
  EXPECT_TRUE(s->HasRoom(1000));
}

TEST(Spool, TornEndIsCutOffAtOpen) {
  FaultInjectingFileSystem fs;
  {
    auto s = OpenOk(&fs);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->Append(1, 0, "f" + std::to_string(i)).ok());
  }
  auto f = fs.NewAppendableFile("/spool/00000000000000000001.spool").value();
  ASSERT_TRUE(f->Append(std::string("\xF7TKF\x01\x00\x00\x00garbage", 15)).ok());
  ASSERT_TRUE(f->Close().ok());
  auto s = OpenOk(&fs);
  EXPECT_EQ(Contents(*s), (std::vector<std::string>{"f0", "f1", "f2"}));
  EXPECT_EQ(s->Stats().discarded_bytes, 15u);
  EXPECT_TRUE(s->Append(1, 0, "f3").ok());
  s.reset();
  EXPECT_EQ(Contents(*OpenOk(&fs)), (std::vector<std::string>{"f0", "f1", "f2", "f3"}));
}

// The promise: a frame whose Append returned OK (and so was acknowledged
// upstream) is found after a crash at any point, until it is acknowledged;
// nothing else ever shows up. Crashes at every mutating operation, in each
// crash mode.
TEST(Spool, EveryAppendedFrameSurvivesACrashAtEveryOperation) {
  for (CrashMode mode : {CrashMode::kDropUnsynced, CrashMode::kTornUnsynced, CrashMode::kZeroUnsynced}) {
    for (uint64_t n = 1; n < 120; ++n) {
      SCOPED_TRACE("crash mode " + std::to_string(int(mode)) + " at op " + std::to_string(n));
      FaultInjectingFileSystem fs;
      SpoolOptions o;
      o.segment_bytes = 120;
      std::vector<std::string> durable;  // appended and not acknowledged
      std::set<std::string> tried;
      {
        auto s = OpenOk(&fs, o);
        ASSERT_NE(s, nullptr);
        fs.CrashAtOp(n, mode, n);
        for (int i = 0; i < 16 && !fs.down(); ++i) {
          std::string p = "payload-" + std::to_string(i) + std::string(i * 3, 'z');
          tried.insert(p);
          if (s->Append(1, 0, p).ok()) durable.push_back(p);
          if (i % 5 == 4 && !fs.down()) {  // the peer acknowledged everything so far
            s->AckThrough(s->end());
            durable.clear();
          }
        }
      }
      if (!fs.down()) continue;  // ran out of operations before the crash
      fs.Restart();
      auto s = OpenOk(&fs, o);
      ASSERT_NE(s, nullptr);
      auto got = Contents(*s);
      for (const std::string& p : got) EXPECT_TRUE(tried.count(p)) << "unexpected frame " << p;
      // Every durable frame is there, in order (acknowledged ones may be too).
      size_t at = 0;
      for (const std::string& p : got) {
        if (at < durable.size() && p == durable[at]) ++at;
      }
      EXPECT_EQ(at, durable.size()) << "lost frames after a crash";
      // And the spool keeps working.
      ASSERT_TRUE(s->Append(1, 0, "after").ok());
      EXPECT_EQ(Contents(*s).back(), "after");
    }
  }
}

TEST(Spool, FullDiskFailsTheAppendIsCountedAndRecovers) {
  FaultInjectingFileSystem fs;
  auto s = OpenOk(&fs);
  ASSERT_TRUE(s->Append(1, 0, "one").ok());
  fs.SetSpaceLimit(50);
  auto r = s->Append(1, 0, std::string(100, 'x'));
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  EXPECT_EQ(s->Append(1, 0, "two").status().code(), StatusCode::kResourceExhausted);  // new segment: no room
  EXPECT_EQ(s->Stats().write_errors, 2u);
  EXPECT_EQ(Contents(*s), std::vector<std::string>{"one"});
  fs.ClearSpaceLimit();
  ASSERT_TRUE(s->Append(1, 0, "three").ok());
  EXPECT_EQ(Contents(*s), (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(s->SequenceAt(s->end() - 1), 2u);  // failed appends used no sequence number
  s.reset();
  auto again = OpenOk(&fs);
  EXPECT_EQ(Contents(*again), (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(again->Stats().discarded_bytes, 0u);  // the partial write was cut back at once
}

TEST(Spool, SpoolDirNamesAreSafeAndDistinct) {
  EXPECT_EQ(SpoolDirFor("/var/spool", "unix:/run/x.sock").substr(0, 28), "/var/spool/unix__run_x.sock-");
  EXPECT_NE(SpoolDirFor("d", "unix:/a/b"), SpoolDirFor("d", "unix:/a_b"));
}

// ---------------------------------------------------------- SpoolSink

std::string TempDir(const char* name) {
  std::string d = "/tmp/telkit-spool-test-" + std::to_string(::getpid()) + "-" + name;
  (void)std::system(("rm -rf '" + d + "'").c_str());
  return d;
}

Dispatch MakeDispatch(std::string payload) {
  Dispatch d;
  d.deliver = true;
  d.signal = 1;
  d.items = 1;
  d.payload = std::make_shared<std::string>(std::move(payload));
  return d;
}

// Reads frames from `in` until `want` distinct payloads arrived, acknowledging
// them when `ack`; returns payload -> writer-visible sequence.
std::map<std::string, uint64_t> Receive(StreamInput& in, size_t want, bool ack) {
  std::map<std::string, uint64_t> got;
  while (got.size() < want) {
    auto f = in.Next();
    if (!f.ok() || !f->has_value()) break;
    got[(*f)->payload] = (*f)->sequence;
    if (ack) in.Acknowledge(**f);
  }
  return got;
}

TEST(SpoolSink, SpooledFramesAreResentAfterTheOutputRestarts) {
  const std::string dir = TempDir("restart");
  const std::string sock = dir + ".sock";
  OutputTarget target{OutputTarget::Kind::kStream, "unix:" + sock, {}};
  ASSERT_TRUE(CanSpool(target));
  SpoolSettings settings{dir, 1 << 20, 4096, nullptr};
  auto in = OpenStreamInput("listen:unix:" + sock);
  ASSERT_TRUE(in.ok());
  std::map<std::string, uint64_t> first;
  {
    auto sink = OpenSpoolSink(target, settings);
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    SendReport report;
    for (int i = 0; i < 20; ++i) ASSERT_TRUE((*sink)->Send(MakeDispatch("p" + std::to_string(i)), true, &report).ok());
    first = Receive(**in, 20, false);  // received, never acknowledged; then the output "crashes"
    EXPECT_EQ((*sink)->Drain(50).code(), StatusCode::kDeadlineExceeded);
  }
  ASSERT_EQ(first.size(), 20u);
  in->reset();  // the old connection goes with the reader
  in = OpenStreamInput("listen:unix:" + sock);
  ASSERT_TRUE(in.ok());
  auto sink = OpenSpoolSink(target, settings);
  ASSERT_TRUE(sink.ok());
  auto again = Receive(**in, 20, true);
  EXPECT_EQ(again, first);  // every frame, with its original sequence number
  EXPECT_TRUE((*sink)->Drain(5000).ok());
  sink->reset();
  std::vector<std::string> left;
  for (auto& e : std::filesystem::directory_iterator(SpoolDirFor(dir, target.spec))) left.push_back(e.path());
  EXPECT_TRUE(left.empty()) << left.size() << " segment files left after every frame was acknowledged";
  (void)std::system(("rm -rf '" + dir + "' '" + sock + "'").c_str());
}

TEST(SpoolSink, AFullDiskPushesBackAndRecovers) {
  FaultInjectingFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/s").ok());
  const std::string sock = TempDir("enospc") + ".sock";
  OutputTarget target{OutputTarget::Kind::kStream, "unix:" + sock, {}};
  auto sink = OpenSpoolSink(target, SpoolSettings{"/s/spool", 1 << 20, 4096, &fs});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  fs.SetSpaceLimit(10);
  std::atomic<bool> sent{false};
  std::thread sender([&] {
    SendReport report;
    EXPECT_TRUE((*sink)->Send(MakeDispatch(std::string(200, 'x')), true, &report).ok());
    sent = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  EXPECT_FALSE(sent.load());  // backpressure: not taken while the disk is full
  fs.ClearSpaceLimit();
  sender.join();
  EXPECT_TRUE(sent.load());
  MetricsRegistry registry;
  (*sink)->RegisterMetrics(registry, {{"output", "x"}});
  const std::string text = registry.ExpositionText();
  EXPECT_NE(text.find("tel_batch_spool_frames{output=\"x\"} 1"), std::string::npos) << text;
  EXPECT_EQ(text.find("tel_batch_spool_write_errors_total{output=\"x\"} 0"), std::string::npos) << text;
  sink->reset();
}

}  // namespace
}  // namespace telkit
