#include "common/tsdb/chunk.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>

namespace telkit {
namespace {

constexpr uint64_t kStaleMarker = 0x7ff0000000000002ull;  // Prometheus' staleness NaN

double FromBits(uint64_t b) { return std::bit_cast<double>(b); }
uint64_t ToBits(double v) { return std::bit_cast<uint64_t>(v); }

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

// Decodes `chunk` and checks it holds exactly `want`, bit for bit.
void ExpectDecodesTo(std::string_view chunk, const std::vector<Sample>& want, const std::string& label) {
  auto got = DecodeChunk(chunk);
  ASSERT_TRUE(got.ok()) << label << ": " << got.status().ToString();
  ASSERT_EQ(got->size(), want.size()) << label;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ((*got)[i].t, want[i].t) << label << " sample " << i;
    ASSERT_EQ(ToBits((*got)[i].v), ToBits(want[i].v)) << label << " sample " << i << ": " << want[i].v;
  }
}

// Every way of encoding `samples` that applies must round-trip, and the
// appender must produce exactly EncodeChunk(kAppender).
void CheckRoundTrips(const std::vector<Sample>& samples, const std::string& label) {
  ChunkAppender a;
  for (const Sample& s : samples) ASSERT_TRUE(a.Append(s.t, s.v).ok());
  std::string bytes = a.Bytes();
  EXPECT_EQ(bytes.size(), a.size_bytes()) << label;
  ExpectDecodesTo(bytes, samples, label + " appender");
  auto same = EncodeChunk(samples, ChunkChoice::kAppender);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, bytes) << label;
  auto smallest = EncodeChunk(samples, ChunkChoice::kSmallest);
  ASSERT_TRUE(smallest.ok());
  EXPECT_LE(smallest->size(), bytes.size()) << label;
  ExpectDecodesTo(*smallest, samples, label + " smallest");
  for (auto ts : {TimestampEncoding::kRegular, TimestampEncoding::kDelta}) {
    for (auto vs : {ValueEncoding::kConstant, ValueEncoding::kDecimal, ValueEncoding::kXor}) {
      auto forced = EncodeChunkWith(samples, ts, vs);
      if (!forced.ok()) {
        EXPECT_EQ(forced.status().code(), StatusCode::kInvalidArgument);
        continue;
      }
      ExpectDecodesTo(*forced, samples,
                      label + " " + std::string(TimestampEncodingName(ts)) + "/" + std::string(ValueEncodingName(vs)));
    }
  }
  // Continuing a chunk from its bytes gives the same chunk.
  if (samples.size() >= 2) {
    size_t half = samples.size() / 2;
    auto first = EncodeChunk(std::span(samples).first(half), ChunkChoice::kAppender);
    ASSERT_TRUE(first.ok());
    auto cont = ChunkAppender::FromChunk(*first);
    ASSERT_TRUE(cont.ok()) << cont.status().ToString();
    for (size_t i = half; i < samples.size(); ++i) ASSERT_TRUE(cont->Append(samples[i].t, samples[i].v).ok());
    EXPECT_EQ(cont->Bytes(), bytes) << label;
  }
}

std::vector<Sample> Scrapes(int n, int64_t start, int64_t interval, int jitter, std::mt19937_64& rng) {
  std::vector<Sample> out;
  std::uniform_int_distribution<int> j(-jitter, jitter);
  for (int i = 0; i < n; ++i) out.push_back({start + i * interval + (jitter ? j(rng) : 0), 0});
  return out;
}

TEST(Chunk, AdversarialValuesAreBitExact) {
  const std::vector<double> specials = {
      0.0,
      -0.0,
      std::numeric_limits<double>::infinity(),
      -std::numeric_limits<double>::infinity(),
      FromBits(kStaleMarker),
      std::numeric_limits<double>::quiet_NaN(),
      FromBits(0xfff8000000000001ull),  // negative quiet NaN with a payload
      FromBits(0x7ff0000000000001ull),  // signalling NaN
      FromBits(0x7fffffffffffffffull),
      std::numeric_limits<double>::denorm_min(),
      -std::numeric_limits<double>::denorm_min(),
      std::numeric_limits<double>::max(),
      std::numeric_limits<double>::lowest(),
      std::numeric_limits<double>::min(),
      9007199254740991.0,  // 2^53 - 1
      9007199254740992.0,  // 2^53: not a decimal
      -9007199254740991.0,
      1e-15,
      0.1,
      0.30000000000000004,  // 0.1 + 0.2: no short decimal
      1e300,
      -1e300,
      123456.789,
  };
  std::mt19937_64 rng(1);
  // Each special alone in a series of ordinary values, and all of them in a row.
  for (size_t i = 0; i < specials.size(); ++i) {
    for (double base : {0.0, 42.0, 0.25, 1.7e9}) {
      std::vector<Sample> s = Scrapes(40, 1700000000000, 15000, 5, rng);
      for (size_t k = 0; k < s.size(); ++k) s[k].v = base + static_cast<double>(k);
      s[7].v = specials[i];
      s[8].v = specials[i];
      s[20].v = specials[i];
      CheckRoundTrips(s, "special " + std::to_string(i) + " base " + std::to_string(base));
    }
  }
  std::vector<Sample> all = Scrapes(static_cast<int>(specials.size()), 0, 1000, 0, rng);
  for (size_t k = 0; k < all.size(); ++k) all[k].v = specials[k];
  CheckRoundTrips(all, "all specials");
  // Stale markers in a constant series, and a series of only -0.0.
  std::vector<Sample> stale = Scrapes(10, 5000, 15000, 0, rng);
  for (auto& x : stale) x.v = FromBits(kStaleMarker);
  CheckRoundTrips(stale, "stale");
  for (auto& x : stale) x.v = -0.0;
  CheckRoundTrips(stale, "negative zero");
  EXPECT_EQ(ReadChunkInfo(*EncodeChunk(stale))->values, ValueEncoding::kConstant);
}

TEST(Chunk, AdversarialTimestamps) {
  std::mt19937_64 rng(2);
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  std::vector<std::vector<int64_t>> cases = {
      {0},
      {-5, -5, -5, -5},                     // equal
      {-86400000, -71400000, -56400000},    // negative, regular
      {1000, 999, 998, 1000, 1000, 0, -1},  // decreasing
      {kMin, kMax, kMin, 0, kMax, kMax},    // extreme jumps (wrapping deltas)
      {kMax - 2, kMax - 1, kMax},
      {kMin, kMin + 1, kMin + 2, kMin + 1000000000000},
      {0, 15000, 30000, 60000, 75000, 90000},   // a missed scrape
      {0, 15000, 30000, 60000, 90000, 120000},  // an interval change
  };
  std::vector<int64_t> irregular;
  int64_t t = -1000;
  for (int i = 0; i < 200; ++i) {
    t += static_cast<int64_t>(rng() % 100000);
    irregular.push_back(t);
  }
  cases.push_back(irregular);
  std::vector<int64_t> huge;
  for (int i = 0; i < 100; ++i) huge.push_back(static_cast<int64_t>(rng()));
  cases.push_back(huge);
  for (size_t c = 0; c < cases.size(); ++c) {
    std::vector<Sample> s;
    for (size_t i = 0; i < cases[c].size(); ++i) s.push_back({cases[c][i], static_cast<double>(i % 3)});
    CheckRoundTrips(s, "timestamps case " + std::to_string(c));
  }
}

TEST(Chunk, RandomSeriesRoundTrip) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> gauss(0, 1);
  for (int iter = 0; iter < 300; ++iter) {
    int n = 1 + static_cast<int>(rng() % 300);
    std::vector<Sample> s =
        Scrapes(n, static_cast<int64_t>(rng() % 2000000000000), 1 + rng() % 60000, static_cast<int>(rng() % 20), rng);
    int kind = iter % 8;
    double x = 0;
    for (int k = 0; k < n; ++k) {
      switch (kind) {
        case 0:
          x += static_cast<double>(rng() % 1000);
          break;  // counter
        case 1:
          x = (rng() % 50 == 0) ? 0 : x + static_cast<double>(rng() % 5000000);
          break;  // with resets
        case 2:
          x = std::round((x + gauss(rng)) * 100) / 100;
          break;  // 2-decimal walk
        case 3:
          x = std::floor(1e9 + gauss(rng) * 1e6) * 4096;
          break;  // page multiples
        case 4:
          x = std::exp(gauss(rng)) * 0.003;
          break;  // full-precision float
        case 5:
          x = FromBits(rng());
          break;  // any bits at all
        case 6:
          x = (rng() % 10 == 0) ? FromBits(kStaleMarker) : 7;
          break;  // stale markers
        case 7:
          x = static_cast<double>(static_cast<int64_t>(rng()) >> (rng() % 64));
          break;  // huge jumps
      }
      s[static_cast<size_t>(k)].v = x;
    }
    CheckRoundTrips(s, "random " + std::to_string(iter) + " kind " + std::to_string(kind));
  }
}

TEST(Chunk, PicksTheExpectedEncodings) {
  std::mt19937_64 rng(4);
  auto info_of = [](const std::vector<Sample>& s) { return *ReadChunkInfo(*EncodeChunk(s, ChunkChoice::kAppender)); };
  std::vector<Sample> s = Scrapes(120, 1700000000000, 15000, 0, rng);
  for (auto& x : s) x.v = 1;
  ChunkInfo i = info_of(s);
  EXPECT_EQ(i.timestamps, TimestampEncoding::kRegular);
  EXPECT_EQ(i.values, ValueEncoding::kConstant);
  EXPECT_LE(EncodeChunk(s)->size(), 20u);  // 120 samples: header, t0, interval, value

  s = Scrapes(120, 1700000000000, 15000, 5, rng);
  double c = 1e6;
  for (auto& x : s) x.v = c += static_cast<double>(rng() % 100);
  i = info_of(s);
  EXPECT_EQ(i.timestamps, TimestampEncoding::kDelta);
  EXPECT_EQ(i.values, ValueEncoding::kDecimal);
  EXPECT_EQ(i.decimal_digits, 0);

  for (size_t k = 0; k < s.size(); ++k) s[k].v = 5368709120.0 + 1024.0 * static_cast<double>(rng() % 100000);
  i = info_of(s);
  EXPECT_EQ(i.values, ValueEncoding::kDecimal);
  EXPECT_GE(i.binary_shift, 10);

  for (size_t k = 0; k < s.size(); ++k) s[k].v = static_cast<double>(rng() % 1000) / 100;  // 2 decimals
  s[3].v = 0.5;
  i = info_of(s);
  EXPECT_EQ(i.values, ValueEncoding::kDecimal);
  EXPECT_EQ(i.decimal_digits, 2);

  std::normal_distribution<double> gauss(0, 1);
  for (auto& x : s) x.v = std::exp(gauss(rng)) * 0.003;
  EXPECT_EQ(info_of(s).values, ValueEncoding::kXor);
}

TEST(Chunk, DecimalFit) {
  int64_t m = 0;
  EXPECT_EQ(MinDecimalDigits(0.0), 0);
  EXPECT_EQ(MinDecimalDigits(-0.0), -1);
  EXPECT_EQ(MinDecimalDigits(0.1), 1);
  EXPECT_EQ(MinDecimalDigits(0.29), 2);
  EXPECT_TRUE(DecimalFit(0.29, 2, &m));
  EXPECT_EQ(m, 29);
  EXPECT_TRUE(DecimalFit(0.29, 5, &m));
  EXPECT_EQ(m, 29000);
  EXPECT_EQ(MinDecimalDigits(123456.789), 3);
  EXPECT_EQ(MinDecimalDigits(1e15), 0);
  EXPECT_EQ(MinDecimalDigits(9007199254740991.0), 0);
  EXPECT_EQ(MinDecimalDigits(9007199254740992.0), -1);
  EXPECT_EQ(MinDecimalDigits(1e-15), 15);
  EXPECT_EQ(MinDecimalDigits(1.5e-16), -1);
  EXPECT_EQ(MinDecimalDigits(0.30000000000000004), -1);
  EXPECT_EQ(MinDecimalDigits(std::numeric_limits<double>::quiet_NaN()), -1);
  EXPECT_EQ(MinDecimalDigits(std::numeric_limits<double>::infinity()), -1);
  EXPECT_EQ(MinDecimalDigits(-2.5), 1);
  EXPECT_TRUE(DecimalFit(-2.5, 1, &m));
  EXPECT_EQ(m, -25);
  // 16 significant digits: m close to 2^53, where the product is inexact.
  EXPECT_EQ(MinDecimalDigits(0.1234567890123456), -1);
  EXPECT_EQ(MinDecimalDigits(1.234567890123456), 15);
  EXPECT_EQ(MinDecimalDigits(8.999999999999999), 15);
}

// Golden bytes pin docs/format/tsdb-chunks.md: a change here is a format
// change. The bit strings are worked out in the format page's examples.
// clang-format off
TEST(Chunk, GoldenBytes) {
  // regular / constant. ts column: VarBits(zigzag 1000 = 2000) = 0001011
  // 11111010000, VarBits(zigzag 15000 = 30000) = 0001111 111010100110000:
  // 40 bits. Value column: the 64 bits of 1.0.
  std::vector<Sample> s = {{1000, 1.0}, {16000, 1.0}, {31000, 1.0}};
  EXPECT_EQ(Hex(*EncodeChunk(s)), "11" "03" "05" "17f407f530" "3ff0000000000000");

  // regular / decimal 0.25 0.5 1.25: d = 2, s = 0, q = 25 50 125.
  // 0010 000000 | VarBits(50) = 0000110 110010 | delta 25, predicted 0,
  // zigzag 50, k = 2: 12 ones, 0, 10 | delta 75, predicted 25, error 50,
  // zigzag 100, k = 5: 1110 00100 | 2 padding bits.
  s = {{1000, 0.25}, {16000, 0.5}, {31000, 1.25}};
  EXPECT_EQ(Hex(*EncodeChunk(s)), "12" "03" "05" "17f407f530" "200365ffeb88");

  // regular / decimal with a binary shift: 4096 8192 12288 8192 -> d = 0,
  // s = 12, q = 1 2 3 2.
  s = {{0, 4096}, {15000, 8192}, {30000, 12288}, {45000, 8192}};
  EXPECT_EQ(Hex(*EncodeChunk(s)), "12" "04" "04" "003fa980" "03014850");

  // delta / xor: timestamps 1000 16003 30998 (interval 15003, then an error
  // of -8 from the predicted 15003: zigzag 15, k = 2: 1110 11); values 1.5 1.5
  // 3.0: 64 bits, 0 (same), 1 1 00001 001011 11111111111 (new window).
  s = {{1000, 1.5}, {16003, 1.5}, {30998, 3.0}};
  EXPECT_EQ(Hex(*EncodeChunkWith(s, TimestampEncoding::kDelta, ValueEncoding::kXor)),
            "23" "03" "06" "17f407f536ec" "3ff8000000000000" "612fff80");

  // No samples.
  EXPECT_EQ(Hex(*EncodeChunk(std::vector<Sample>{})), "110000");
}
// clang-format on

TEST(Chunk, EveryTruncationIsAnError) {
  std::mt19937_64 rng(5);
  std::vector<std::vector<Sample>> series;
  std::vector<Sample> s = Scrapes(50, 1700000000000, 15000, 5, rng);
  for (auto& x : s) x.v = static_cast<double>(rng() % 100);
  series.push_back(s);
  for (auto& x : s) x.v = FromBits(rng());
  series.push_back(s);
  s = Scrapes(50, 1700000000000, 15000, 0, rng);
  for (auto& x : s) x.v = 3;
  series.push_back(s);
  for (const auto& samples : series) {
    std::string chunk = *EncodeChunk(samples);
    for (size_t len = 0; len < chunk.size(); ++len) {
      auto got = DecodeChunk(chunk.substr(0, len));
      ASSERT_FALSE(got.ok()) << "prefix of " << len << " of " << chunk.size();
      EXPECT_EQ(got.status().code(), StatusCode::kDataLoss) << got.status().ToString();
    }
    // One byte too many is an error too.
    EXPECT_EQ(DecodeChunk(chunk + std::string(1, '\0')).status().code(), StatusCode::kDataLoss);
  }
}

TEST(Chunk, CorruptHeadersAndPadding) {
  EXPECT_EQ(DecodeChunk("").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeChunk(std::string("\x41\x01\x00", 3)).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(DecodeChunk(std::string("\x14\x01\x00", 3)).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(DecodeChunk(std::string("\x00\x00\x00", 3)).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(DecodeChunk(std::string("\x11\xff\xff\x07\x00", 5)).status().code(), StatusCode::kDataLoss);  // count
  EXPECT_EQ(DecodeChunk(std::string("\x11\x01\x09\x00", 4)).status().code(), StatusCode::kDataLoss);      // ts length
  EXPECT_EQ(DecodeChunk(std::string("\x11\x00\x00\x00", 4)).status().code(),
            StatusCode::kDataLoss);  // 0 samples + bytes
  // Nonzero padding bits after the last sample.
  std::vector<Sample> s = {{1000, 0.25}, {16000, 0.5}, {31000, 1.25}};
  std::string chunk = *EncodeChunk(s);
  chunk.back() = static_cast<char>(chunk.back() | 0x01);  // value column ends with 2 padding bits
  auto got = DecodeChunk(chunk);
  EXPECT_EQ(got.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(got.status().message().find("bits after"), std::string::npos) << got.status().message();
}

TEST(Chunk, BitFlipsNeverCrash) {
  std::mt19937_64 rng(6);
  std::vector<Sample> s = Scrapes(60, 1700000000000, 15000, 5, rng);
  for (size_t k = 0; k < s.size(); ++k) s[k].v = k % 2 ? static_cast<double>(k) * 0.25 : FromBits(rng());
  for (auto vs : {ValueEncoding::kDecimal, ValueEncoding::kXor}) {
    if (vs == ValueEncoding::kDecimal) {
      for (size_t k = 0; k < s.size(); ++k) s[k].v = static_cast<double>(k) * 0.25;
    }
    std::string chunk = *EncodeChunkWith(s, TimestampEncoding::kDelta, vs);
    int errors = 0;
    for (size_t byte = 0; byte < chunk.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string b = chunk;
        b[byte] = static_cast<char>(b[byte] ^ (1 << bit));
        auto got = DecodeChunk(b);
        if (!got.ok())
          ++errors;
        else
          EXPECT_LE(got->size(), kMaxChunkSamples);
      }
    }
    EXPECT_GT(errors, 0);
  }
}

TEST(Chunk, Limits) {
  ChunkAppender a;
  for (uint32_t i = 0; i < kMaxChunkSamples; ++i) ASSERT_TRUE(a.Append(i, 1).ok());
  EXPECT_EQ(a.Append(kMaxChunkSamples, 1).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(a.num_samples(), kMaxChunkSamples);
  auto decoded = DecodeChunk(a.Bytes());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->size(), kMaxChunkSamples);
  std::vector<Sample> too_many(kMaxChunkSamples + 1);
  EXPECT_EQ(EncodeChunk(too_many).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeChunkWith(too_many, TimestampEncoding::kDelta, ValueEncoding::kXor).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Chunk, IteratorReportsInfoAndFirstLast) {
  ChunkAppender a;
  EXPECT_EQ(a.Bytes(), std::string("\x11\x00\x00", 3));
  ASSERT_TRUE(a.Append(-7, 1.5).ok());
  ASSERT_TRUE(a.Append(8, 2.5).ok());
  EXPECT_EQ(a.first_timestamp(), -7);
  EXPECT_EQ(a.last_timestamp(), 8);
  std::string bytes = a.Bytes();
  auto it = ChunkIterator::Open(bytes);
  ASSERT_TRUE(it.ok());
  EXPECT_EQ(it->info().num_samples, 2u);
  EXPECT_EQ(it->info().values, ValueEncoding::kDecimal);
  EXPECT_EQ(it->info().decimal_digits, 1);
  ASSERT_TRUE(it->Next());
  EXPECT_EQ(it->t(), -7);
  EXPECT_EQ(it->v(), 1.5);
  ASSERT_TRUE(it->Next());
  EXPECT_EQ(it->t(), 8);
  EXPECT_EQ(it->v(), 2.5);
  EXPECT_FALSE(it->Next());
  EXPECT_TRUE(it->status().ok());
}

}  // namespace
}  // namespace telkit
