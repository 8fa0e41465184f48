#include "common/stream/frame_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "common/stream/stream_input.h"
#include "common/stream/stream_output.h"

namespace telkit {
namespace {

// A real file in a temporary directory, removed afterwards.
class TempFile {
 public:
  TempFile() {
    char tmpl[] = "/tmp/telkit-stream-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ::close(fd);
    path_ = tmpl;
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }
  void Write(const std::string& bytes) const {
    FILE* f = std::fopen(path_.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }

 private:
  std::string path_;
};

std::string Header(uint64_t writer_id) {
  std::string h(kStreamHeaderSize, '\0');
  EncodeStreamHeader({kStreamVersion, 0, writer_id}, reinterpret_cast<uint8_t*>(h.data()));
  return h;
}

Frame MakeFrame(uint64_t seq, size_t payload_size) {
  Frame f;
  f.signal = static_cast<uint8_t>(1 + seq % 3);
  f.sequence = seq;
  f.time_unix_nano = 1000 + seq;
  for (size_t i = 0; i < payload_size; ++i) f.payload.push_back(static_cast<char>('a' + (seq + i) % 26));
  return f;
}

struct ReadAll {
  std::vector<Frame> frames;
  std::vector<std::string> reports;
  Status status;
};

ReadAll ReadFile(const std::string& path, CorruptionPolicy policy = CorruptionPolicy::kSkip) {
  ReadAll out;
  StreamInputOptions opt;
  opt.on_corruption = policy;
  opt.on_corruption_report = [&](const Status& s) { out.reports.push_back(s.message()); };
  auto in = OpenStreamInput(path, opt);
  if (!in.ok()) {
    out.status = in.status();
    return out;
  }
  for (;;) {
    auto f = (*in)->Next();
    if (!f.ok()) {
      out.status = f.status();
      break;
    }
    if (!f->has_value()) break;
    out.frames.push_back(std::move(**f));
  }
  return out;
}

TEST(FrameReader, WriterAndReaderAgreeOnAFile) {
  TempFile file;
  {
    StreamOutputOptions opt;
    opt.writer_id = 42;
    auto out = OpenStreamOutput(file.path(), opt);
    ASSERT_TRUE(out.ok());
    for (uint64_t i = 0; i < 100; ++i) {
      Frame f = MakeFrame(0, i * 37);
      f.signal = 2;
      ASSERT_TRUE((*out)->Write(std::move(f)).ok());
    }
  }
  ReadAll r = ReadFile(file.path());
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_EQ(r.frames.size(), 100u);
  for (uint64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(r.frames[i].sequence, i + 1);  // the writer numbers frames from 1
    EXPECT_EQ(r.frames[i].payload.size(), i * 37);
    EXPECT_GT(r.frames[i].time_unix_nano, 0u);
  }
  EXPECT_TRUE(r.reports.empty());
}

TEST(FrameReader, ConcatenatedStreamsAndEmptyInput) {
  TempFile file;
  file.Write(Header(1) + EncodeFrame(MakeFrame(1, 10)) + Header(2) + EncodeFrame(MakeFrame(1, 20)) + Header(3));
  ReadAll r = ReadFile(file.path());
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_EQ(r.frames[1].payload.size(), 20u);
  file.Write("");
  r = ReadFile(file.path());
  EXPECT_TRUE(r.status.ok());
  EXPECT_TRUE(r.frames.empty());
}

TEST(FrameReader, NotAStream) {
  TempFile file;
  file.Write("{\"resourceSpans\":[]}\n");
  ReadAll r = ReadFile(file.path());
  EXPECT_EQ(r.status.code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status.message().find("not a telkit stream"), std::string::npos);
}

TEST(FrameReader, CorruptPayloadIsSkippedWithItsOffset) {
  TempFile file;
  std::string s = Header(1) + EncodeFrame(MakeFrame(1, 50));
  size_t second = s.size();
  s += EncodeFrame(MakeFrame(2, 50)) + EncodeFrame(MakeFrame(3, 50));
  s[second + kFrameHeaderSize + 10] ^= 0x20;  // damage frame 2's payload
  file.Write(s);
  ReadAll r = ReadFile(file.path());
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_EQ(r.frames[0].sequence, 1u);
  EXPECT_EQ(r.frames[1].sequence, 3u);
  ASSERT_EQ(r.reports.size(), 1u);
  EXPECT_NE(r.reports[0].find("offset " + std::to_string(second)), std::string::npos) << r.reports[0];
  EXPECT_NE(r.reports[0].find("payload checksum"), std::string::npos);

  ReadAll strict = ReadFile(file.path(), CorruptionPolicy::kFail);
  EXPECT_EQ(strict.status.code(), StatusCode::kDataLoss);
  EXPECT_EQ(strict.frames.size(), 1u);
}

TEST(FrameReader, CorruptHeaderResynchronises) {
  TempFile file;
  std::string s = Header(1) + EncodeFrame(MakeFrame(1, 50));
  size_t second = s.size();
  s += EncodeFrame(MakeFrame(2, 5000)) + EncodeFrame(MakeFrame(3, 50));
  s[second + 9] ^= 0x7f;  // damage frame 2's length field
  file.Write(s);
  ReadAll r = ReadFile(file.path());
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_EQ(r.frames[1].sequence, 3u);
  ASSERT_FALSE(r.reports.empty());
  EXPECT_NE(r.reports[0].find("offset " + std::to_string(second)), std::string::npos);
}

TEST(FrameReader, TruncatedTailIsReported) {
  TempFile file;
  std::string s = Header(1) + EncodeFrame(MakeFrame(1, 50)) + EncodeFrame(MakeFrame(2, 50));
  file.Write(s.substr(0, s.size() - 7));
  ReadAll r = ReadFile(file.path());
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.frames.size(), 1u);
  ASSERT_EQ(r.reports.size(), 1u);
  EXPECT_NE(r.reports[0].find("truncated frame"), std::string::npos) << r.reports[0];
}

TEST(FrameReader, OversizedPayloadIsRefused) {
  TempFile file;
  file.Write(Header(1) + EncodeFrame(MakeFrame(1, 2000)) + EncodeFrame(MakeFrame(2, 10)));
  StreamInputOptions opt;
  opt.max_payload_bytes = 1000;
  std::vector<std::string> reports;
  opt.on_corruption_report = [&](const Status& s) { reports.push_back(s.message()); };
  auto in = OpenStreamInput(file.path(), opt);
  ASSERT_TRUE(in.ok());
  auto f = (*in)->Next();
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_EQ((*f)->sequence, 2u);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("exceeds the limit"), std::string::npos);
}

// Random damage never crashes the reader, and every frame it returns is one
// that was written (checksums make false positives practically impossible).
TEST(FrameReader, RandomDamageNeverYieldsAForeignFrame) {
  std::mt19937_64 rng(12345);
  std::string clean = Header(9);
  std::vector<std::string> payloads;
  for (uint64_t i = 1; i <= 40; ++i) {
    Frame f = MakeFrame(i, rng() % 300);
    payloads.push_back(f.payload);
    clean += EncodeFrame(f);
  }
  TempFile file;
  for (int round = 0; round < 300; ++round) {
    std::string s = clean;
    int damage = 1 + static_cast<int>(rng() % 8);
    for (int d = 0; d < damage; ++d) {
      size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[at] = static_cast<char>(rng()); break;
        case 1: s.erase(at, rng() % 64); break;
        case 2: s.insert(at, std::string(rng() % 64, static_cast<char>(rng()))); break;
      }
    }
    file.Write(s);
    ReadAll r = ReadFile(file.path());
    for (const Frame& f : r.frames) {
      ASSERT_GE(f.sequence, 1u);
      ASSERT_LE(f.sequence, 40u);
      EXPECT_EQ(f.payload, payloads[f.sequence - 1]);
    }
  }
}

}  // namespace
}  // namespace telkit
