#include "common/codec/snappy.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace telkit {
namespace {

using namespace std::string_literals;

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string Compressible(size_t n) {
  std::string s;
  for (int i = 0; s.size() < n; ++i) s += "http_requests_total{code=\"" + std::to_string(200 + i % 5) + "\"} 1\n";
  s.resize(n);
  return s;
}

TEST(SnappyTest, GoldenBytes) {
  // Block format: varint length 5, literal tag (5-1)<<2, the bytes.
  EXPECT_EQ(SnappyCompress("hello"), "\x05\x10hello"s);
  EXPECT_EQ(SnappyCompress(""), "\x00"s);
  // Length 12: literal "abc" (tag 0x08), then copy with 1-byte offset:
  // tag = ((len-4)<<2) | 1 | (offset>>8)<<5 = (5<<2)|1 = 0x15, offset 3.
  Result<std::string> out = SnappyDecompress("\x0c\x08" "abc" "\x15\x03"s, 100);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "abcabcabcabc");
}

TEST(SnappyTest, RoundTrips) {
  for (size_t n : {0u, 1u, 100u, 65536u, 300000u}) {
    for (const std::string& in : {RandomBytes(n, n), Compressible(n)}) {
      Result<std::string> back = SnappyDecompress(SnappyCompress(in), in.size());
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_EQ(*back, in);
    }
  }
  EXPECT_LT(SnappyCompress(Compressible(100000)).size(), 20000u);
}

TEST(SnappyTest, DeclaredLengthOverLimitIsRefusedBeforeAllocating) {
  const std::string big = SnappyCompress(Compressible(1 << 20));
  Result<std::string> out = SnappyDecompress(big, (1 << 20) - 1);
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(SnappyDecompress(big, 1 << 20).ok());
  // 4 GiB - 1 declared by five bytes: refused, not allocated.
  const std::string bomb = "\xff\xff\xff\xff\x0f\x00"s;
  ASSERT_TRUE(SnappyUncompressedLength(bomb).ok());
  EXPECT_EQ(*SnappyUncompressedLength(bomb), 0xffffffffu);
  out = SnappyDecompress(bomb, 64 << 20);
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("4294967295"), std::string::npos);
}

TEST(SnappyTest, CorruptInputIsInvalidArgument) {
  const std::string cases[] = {
      ""s,                                  // empty
      "\xff\xff\xff\xff\xff\xff"s,          // varint too long
      "\x80"s,                              // varint cut short
      "\x05\x10hel"s,                       // literal cut short
      "\x06\x10hello"s,                     // declared longer than the data
      "\x04\x10hello"s,                     // declared shorter than the data
      "\x08\x05\x01"s,                      // copy before any output
      "\x0c\x08" "abc" "\x15\x09"s,         // copy offset beyond the output
  };
  for (const std::string& in : cases) {
    Result<std::string> out = SnappyDecompress(in, 1 << 20);
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << testing::PrintToString(in);
  }
  // Random garbage never crashes; it is refused or decodes within the limit.
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    std::string in = RandomBytes(1 + seed % 64, seed);
    Result<std::string> out = SnappyDecompress(in, 4096);
    if (out.ok()) {
      EXPECT_LE(out->size(), 4096u);
    } else {
      EXPECT_TRUE(out.status().code() == StatusCode::kInvalidArgument ||
                  out.status().code() == StatusCode::kResourceExhausted);
    }
  }
}

}  // namespace
}  // namespace telkit
