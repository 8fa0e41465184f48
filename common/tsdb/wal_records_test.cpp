#include "common/tsdb/wal_records.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>

namespace telkit {
namespace {

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (!out.empty()) out += ' ';
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

WalBatch GoldenBatch() {
  WalBatch b;
  b.series.push_back({1, Labels{{"__name__", "up"}, {"job", "a"}}});
  b.samples.push_back({1, 1000, std::bit_cast<uint64_t>(1.0)});
  b.samples.push_back({2, 1000, kStaleNaNBits});
  b.samples.push_back({1, 16000, std::bit_cast<uint64_t>(-0.0)});
  return b;
}

// Pins docs/format/tsdb-wal.md, "Records": change both together.
TEST(WalRecords, GoldenBytes) {
  std::string out;
  EncodeWalBatch(GoldenBatch(), &out);
  EXPECT_EQ(Hex(out),
            // series entry: type 1, length 21, count 1, ref 1, 2 labels
            "01 15 01 01 02 08 5f 5f 6e 61 6d 65 5f 5f 02 75 70 03 6a 6f 62 01 61 "
            // samples entry: type 2, length 34, count 3
            "02 22 03 "
            // ref 1, t 1000 (zigzag 2000), 1.0
            "01 d0 0f 00 00 00 00 00 00 f0 3f "
            // dref +1, dt 0, stale NaN
            "02 00 02 00 00 00 00 00 f0 7f "
            // dref -1, dt +15000 (zigzag 30000), -0.0
            "01 b0 ea 01 00 00 00 00 00 00 00 80");
  WalBatch back;
  ASSERT_TRUE(DecodeWalBatch(out, &back).ok());
  EXPECT_EQ(back.series, GoldenBatch().series);
  EXPECT_EQ(back.samples, GoldenBatch().samples);
}

TEST(WalRecords, RoundTripAllEntryTypes) {
  WalBatch b = GoldenBatch();
  b.samples.push_back({7, INT64_MIN, 1});
  b.samples.push_back({3, INT64_MAX, 2});
  b.exemplars.push_back({1, Exemplar{Labels{{"trace_id", "abc"}}, 2.5, 1234}});
  b.metadata.push_back({"http_requests", MetricFamilyType::kCounter, "Requests.", "requests"});
  b.chunks.push_back({9, std::string("\x11\x00\x00", 3)});
  std::string out;
  EncodeWalBatch(b, &out);
  WalBatch back;
  ASSERT_TRUE(DecodeWalBatch(out, &back).ok());
  EXPECT_EQ(back.series, b.series);
  EXPECT_EQ(back.samples, b.samples);
  EXPECT_EQ(back.exemplars, b.exemplars);
  EXPECT_EQ(back.metadata, b.metadata);
  EXPECT_EQ(back.chunks, b.chunks);
}

TEST(WalRecords, EveryTruncationIsDataLoss) {
  WalBatch b = GoldenBatch();
  b.metadata.push_back({"up", MetricFamilyType::kGauge, "h", ""});
  std::string out;
  EncodeWalBatch(b, &out);
  std::string series_only, first_two;
  WalBatch part;
  part.series = b.series;
  EncodeWalBatch(part, &series_only);
  part.samples = b.samples;
  EncodeWalBatch(part, &first_two);
  for (size_t n = 0; n < out.size(); ++n) {
    // A cut between entries leaves a shorter valid record (the WAL's CRC
    // protects the whole record; this is about malformed bytes).
    if (n == series_only.size() || n == first_two.size()) continue;
    WalBatch back;
    Status s = DecodeWalBatch(std::string_view(out).substr(0, n), &back);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << n;
  }
}

TEST(WalRecords, UnknownEntryTypeIsUnimplemented) {
  WalBatch back;
  EXPECT_EQ(DecodeWalBatch(std::string("\x09\x01\x00", 3), &back).code(), StatusCode::kUnimplemented);
  // A count larger than the body cannot allocate unbounded memory.
  EXPECT_EQ(DecodeWalBatch(std::string("\x01\x02\xff\x7f", 4), &back).code(), StatusCode::kDataLoss);
}

TEST(WalRecords, LabelsRoundTripAndRejectDuplicates) {
  Labels l{{"__name__", "x"}, {"a", "\xc3\xa9"}};
  std::string enc;
  EncodeLabels(l, &enc);
  auto back = DecodeLabels(enc);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, l);
  std::string dup("\x02\x01" "a" "\x01" "x" "\x01" "a" "\x01" "y", 10);
  EXPECT_EQ(DecodeLabels(dup).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace telkit
