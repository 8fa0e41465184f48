#include <gtest/gtest.h>

#include <string>

#include "common/base/utf8.h"
#include "common/base/crc32c.h"
#include "common/base/time_format.h"
#include "common/base/status.h"

namespace telkit {
namespace {

TEST(Crc32c, KnownVectors) {
  // RFC 3720 (iSCSI) test vectors.
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros), 0x8A9136AAu);
  std::string ones(32, '\xff');
  EXPECT_EQ(Crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(Crc32c, ExtendEqualsWhole) {
  std::string s;
  for (int i = 0; i < 1000; ++i) s.push_back(static_cast<char>(i * 7));
  for (size_t cut : {0u, 1u, 7u, 8u, 9u, 500u, 999u, 1000u}) {
    uint32_t a = Crc32c(s.data(), cut);
    EXPECT_EQ(Crc32cExtend(a, s.data() + cut, s.size() - cut), Crc32c(s)) << cut;
  }
}

// Long buffers take the three-stripe path; it must agree with a plain
// bitwise CRC at every length and alignment around the stripe boundaries.
uint32_t BitwiseCrc32c(const std::string& s) {
  uint32_t crc = ~0u;
  for (unsigned char ch : s) {
    crc ^= ch;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

TEST(Crc32c, LongBuffersAgreeWithTheBitwiseDefinition) {
  std::string s;
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 40000; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    s.push_back(static_cast<char>(x));
  }
  for (size_t len : {12287u, 12288u, 12289u, 24576u, 24583u, 39999u}) {
    for (size_t start : {0u, 1u, 5u}) {
      std::string part = s.substr(start, len);
      EXPECT_EQ(Crc32c(part), BitwiseCrc32c(part)) << len << "@" << start;
    }
  }
  // Extending across a call boundary in the middle of a stripe group.
  EXPECT_EQ(Crc32cExtend(Crc32c(s.data(), 5000), s.data() + 5000, 30000), Crc32c(s.data(), 35000));
}

Result<int> Half(int x) {
  if (x % 2) return InvalidArgumentError("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  TELKIT_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(Status, ResultAndMacros) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().WithContext("quarter 6").ToString(), "INVALID_ARGUMENT: quarter 6: odd");
}

TEST(Status, ErrnoMapping) {
  EXPECT_EQ(ErrnoError("open 'x'", ENOENT).code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoError("write", ENOSPC).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoError("open 'x'", ENOENT).message(), "open 'x': no such file or directory");
}

}  // namespace
}  // namespace telkit

namespace telkit {
namespace {

TEST(Utf8, ReplaceInvalidUtf8) {
  std::string ok = "plain ascii and \xC3\xA9";
  EXPECT_EQ(ReplaceInvalidUtf8(&ok), 0u);
  EXPECT_EQ(ok, "plain ascii and \xC3\xA9");
  std::string bad = "a\xFF" "b\xC3" "(\xED\xA0\x80";  // stray byte, truncated sequence, surrogate
  EXPECT_EQ(ReplaceInvalidUtf8(&bad), 5u);
  EXPECT_TRUE(IsValidUtf8(bad));
  EXPECT_EQ(bad.substr(0, 5), "a\xEF\xBF\xBD" "b");
}

}  // namespace
}  // namespace telkit

namespace telkit {
namespace {

TEST(TimeFormat, FormatUtcNanos) {
  const int64_t t = 1'700'000'000'120'000'000;  // 2023-11-14T22:13:20.12Z
  EXPECT_EQ(FormatUtcNanos(t, "%Y-%m-%dT%H:%M:%S", 9, true), "2023-11-14T22:13:20.12");
  EXPECT_EQ(FormatUtcNanos(t, "%Y-%m-%dT%H:%M:%S", 9, false), "2023-11-14T22:13:20.120000000");
  EXPECT_EQ(FormatUtcNanos(t, "%H:%M:%S", 3, false), "22:13:20.120");
  EXPECT_EQ(FormatUtcNanos(t, "%H:%M:%S", 0, false), "22:13:20");
  EXPECT_EQ(FormatUtcNanos(1'700'000'000'000'000'000, "%H:%M:%S", 9, true), "22:13:20");
  // Before the epoch the second rounds down and the fraction counts up from it.
  EXPECT_EQ(FormatUtcNanos(-1, "%Y-%m-%dT%H:%M:%S", 9, true), "1969-12-31T23:59:59.999999999");
}

}  // namespace
}  // namespace telkit
