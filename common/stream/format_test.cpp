#include "common/stream/format.h"

#include <gtest/gtest.h>

#include "common/stream/endpoint.h"

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

// Golden bytes pin the format of docs/format/stream.md: a change here is a
// format change and needs a new version.
TEST(StreamFormat, GoldenStreamHeader) {
  uint8_t h[kStreamHeaderSize];
  EncodeStreamHeader({1, 0, 0x0123456789abcdefull}, h);
  std::string bytes(reinterpret_cast<char*>(h), sizeof h);
  EXPECT_EQ(Hex(bytes.substr(0, 20)), "8954454c4b49540a0100" "0000" "efcdab8967452301");
  auto decoded = DecodeStreamHeader(h);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->writer_id, 0x0123456789abcdefull);
}

TEST(StreamFormat, GoldenFrame) {
  Frame f;
  f.signal = static_cast<uint8_t>(Signal::kLogs);
  f.sequence = 7;
  f.time_unix_nano = 1700000000000000000ull;
  f.payload = "abc";
  std::string bytes = EncodeFrame(f);
  ASSERT_EQ(bytes.size(), kFrameHeaderSize + 3);
  EXPECT_EQ(Hex(bytes.substr(0, 28)),
            "f7544b46" "03" "00" "0000" "03000000" "0700000000000000" "00002a36fe9c9717");
  // CRC-32C("abc") = 0x364b3fb7, little-endian.
  EXPECT_EQ(Hex(bytes.substr(28, 4)), "b73f4b36");
  EXPECT_EQ(bytes.substr(36), "abc");
  auto h = DecodeFrameHeader(reinterpret_cast<const uint8_t*>(bytes.data()));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->signal, 3);
  EXPECT_EQ(h->sequence, 7u);
  EXPECT_EQ(h->payload_length, 3u);
  EXPECT_EQ(h->time_unix_nano, 1700000000000000000ull);
}

TEST(StreamFormat, EveryHeaderBitFlipIsDetected) {
  Frame f;
  f.signal = 1;
  f.sequence = 99;
  f.payload = "payload";
  std::string bytes = EncodeFrame(f);
  for (size_t byte = 0; byte < kFrameHeaderSize; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string b = bytes;
      b[byte] = static_cast<char>(b[byte] ^ (1 << bit));
      EXPECT_FALSE(DecodeFrameHeader(reinterpret_cast<const uint8_t*>(b.data())).ok()) << byte << ":" << bit;
    }
  }
}

TEST(StreamFormat, UnknownVersionAndFlagsAreRefused) {
  uint8_t h[kStreamHeaderSize];
  EncodeStreamHeader({2, 0, 1}, h);
  EXPECT_EQ(DecodeStreamHeader(h).status().code(), StatusCode::kUnimplemented);
  Frame f;
  f.signal = 1;
  f.flags = 0x01;  // incompatible bit
  std::string b = EncodeFrame(f);
  EXPECT_EQ(DecodeFrameHeader(reinterpret_cast<const uint8_t*>(b.data())).status().code(),
            StatusCode::kUnimplemented);
  f.flags = 0x10;  // compatible bit: accepted
  b = EncodeFrame(f);
  EXPECT_TRUE(DecodeFrameHeader(reinterpret_cast<const uint8_t*>(b.data())).ok());
}

TEST(StreamFormat, AckRoundTrip) {
  uint8_t a[kAckSize];
  EncodeAck(123456789, a);
  EXPECT_EQ(*DecodeAck(a), 123456789u);
  a[5] ^= 1;
  EXPECT_EQ(DecodeAck(a).status().code(), StatusCode::kDataLoss);
}

TEST(Endpoint, Parse) {
  EXPECT_EQ(ParseEndpoint("-")->kind, Endpoint::Kind::kStdio);
  EXPECT_EQ(ParseEndpoint("data/x.tks")->kind, Endpoint::Kind::kFile);
  EXPECT_EQ(ParseEndpoint("unix:/run/a.sock")->path, "/run/a.sock");
  EXPECT_EQ(ParseEndpoint("listen:unix:/run/a.sock")->kind, Endpoint::Kind::kUnixListen);
  EXPECT_EQ(ParseEndpoint("fd:3")->fd, 3);
  EXPECT_EQ(ParseEndpoint("systemd:metrics")->path, "metrics");
  EXPECT_EQ(ParseEndpoint("systemd")->kind, Endpoint::Kind::kSystemd);
  EXPECT_FALSE(ParseEndpoint("").ok());
  EXPECT_FALSE(ParseEndpoint("unix:").ok());
  EXPECT_FALSE(ParseEndpoint("fd:x").ok());
  EXPECT_FALSE(ParseEndpoint("listen:tcp:1").ok());
  EXPECT_FALSE(ParseEndpoint("unix:/" + std::string(200, 'a')).ok());
  EXPECT_EQ(ParseEndpoint("listen:unix:/a")->ToString(), "listen:unix:/a");
}

}  // namespace
}  // namespace telkit
