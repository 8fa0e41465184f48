#include "common/codec/gzip.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

namespace telkit {
namespace {

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Text-like data that compresses well.
std::string Compressible(size_t n) {
  std::string s;
  for (int i = 0; s.size() < n; ++i) {
    s += "GET /api/v1/items/" + std::to_string(i % 97) + " 200 " + std::to_string(i) + "\n";
  }
  s.resize(n);
  return s;
}

// zlib's own one-shot compressors, for the other containers.
std::string Deflate(std::string_view in, int window_bits) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// One gzip member of `chunks` MiB of zeros, about 1 KiB a MiB, built
// without compressing all of it: after Z_FULL_FLUSH deflate starts afresh,
// so every 1 MiB of zeros compresses to the same bytes.
std::string ZeroBomb(int chunks) {
  const std::string mib(1 << 20, '\0');
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  auto step = [&](std::string_view in, int flush) {
    std::string out(1 << 16, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, flush);
    EXPECT_EQ(zs.avail_in, 0u);
    out.resize(out.size() - zs.avail_out);
    return out;
  };
  const std::string first = step(mib, Z_FULL_FLUSH);
  const std::string block = step(mib, Z_FULL_FLUSH);
  EXPECT_EQ(first, block);
  const std::string last = step("", Z_FINISH);
  deflateEnd(&zs);

  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(mib.data()), static_cast<uInt>(mib.size()));
  uLong crc_all = crc;
  for (int i = 1; i < chunks; ++i) crc_all = crc32_combine(crc_all, crc, 1 << 20);
  const uint32_t isize = static_cast<uint32_t>(uint64_t{static_cast<uint64_t>(chunks)} << 20);

  std::string gz("\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03", 10);
  gz.reserve(10 + block.size() * static_cast<size_t>(chunks) + last.size() + 8);
  for (int i = 0; i < chunks; ++i) gz += block;
  gz += last;
  for (uint32_t v : {static_cast<uint32_t>(crc_all), isize}) {
    for (int b = 0; b < 4; ++b) gz.push_back(static_cast<char>(v >> (8 * b)));
  }
  return gz;
}

TEST(Gzip, RoundTripsAtEveryLevel) {
  for (const std::string& data :
       {std::string(), std::string("x"), RandomBytes(100000, 1), Compressible(1 << 20)}) {
    for (int level : {-5, 0, 1, 6, 9, 42}) {
      const std::string gz = GzipCompress(data, level);
      ASSERT_GE(gz.size(), 18u) << "header and trailer";
      EXPECT_EQ(static_cast<uint8_t>(gz[0]), 0x1f);
      EXPECT_EQ(static_cast<uint8_t>(gz[1]), 0x8b);
      Result<std::string> out = GzipDecompress(gz, data.size());
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_EQ(*out, data) << "size " << data.size() << " level " << level;
    }
  }
  // It compresses, more at higher levels; level 0 stores.
  const std::string text = Compressible(1 << 20);
  EXPECT_LT(GzipCompress(text, 6).size(), text.size() / 5);
  EXPECT_LE(GzipCompress(text, 9).size(), GzipCompress(text, 1).size());
  EXPECT_GT(GzipCompress(text, 0).size(), text.size());
}

TEST(Gzip, DecompressesConcatenatedMembers) {
  const std::string a = Compressible(5000), b = RandomBytes(3000, 2);
  const std::string gz = GzipCompress(a) + GzipCompress("") + GzipCompress(b, 1);
  Result<std::string> out = GzipDecompress(gz, 1 << 20);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, a + b);
}

TEST(Gzip, LimitIsInclusive) {
  const std::string data = Compressible(100000);
  const std::string gz = GzipCompress(data);
  EXPECT_TRUE(GzipDecompress(gz, data.size()).ok());
  Result<std::string> out = GzipDecompress(gz, data.size() - 1);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(out.status().message(),
            "gzip stream decompresses to more than the limit of 99999 bytes");
  // Across members too.
  out = GzipDecompress(gz + gz, 2 * data.size() - 1);
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(GzipDecompress(GzipCompress(""), 0).ok());
  EXPECT_EQ(GzipDecompress(GzipCompress("a"), 0).status().code(), StatusCode::kResourceExhausted);
}

TEST(Gzip, RefusesABombOfOneGibOfZerosAtTheLimit) {
  const std::string bomb = ZeroBomb(1024);  // 1 GiB of zeros in about 1 MiB
  ASSERT_LT(bomb.size(), 2u << 20);
  Result<std::string> out = GzipDecompress(bomb, 16 << 20);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  // The same bomb as 1024 concatenated members of 1 MiB each.
  const std::string member = GzipCompress(std::string(1 << 20, '\0'), 9);
  std::string members;
  for (int i = 0; i < 1024; ++i) members += member;
  out = GzipDecompress(members, 16 << 20);
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  // A small one built the same way is real gzip.
  Result<std::string> small = GzipDecompress(ZeroBomb(8), 8 << 20);
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_EQ(*small, std::string(8 << 20, '\0'));
}

TEST(Gzip, RefusesCorruptAndTruncatedInput) {
  const std::string data = Compressible(20000);
  const std::string gz = GzipCompress(data);
  auto code = [](std::string_view in) { return GzipDecompress(in, 1 << 20).status().code(); };

  EXPECT_EQ(GzipDecompress("", 100).status().message(), "empty gzip stream");
  EXPECT_EQ(code("hello, world"), StatusCode::kInvalidArgument);
  for (size_t n = 1; n < gz.size(); ++n) {
    ASSERT_EQ(code(gz.substr(0, n)), StatusCode::kInvalidArgument) << "prefix of " << n;
  }
  EXPECT_EQ(GzipDecompress(gz.substr(0, gz.size() / 2), 1 << 20).status().message(),
            "truncated gzip stream");
  // A damaged byte in the data or the CRC trailer.
  for (size_t at : {gz.size() / 2, gz.size() - 6}) {
    std::string bad = gz;
    bad[at] ^= 0x55;
    Result<std::string> out = GzipDecompress(bad, 1 << 20);
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << at;
    EXPECT_EQ(out.status().message().rfind("corrupt gzip stream at byte ", 0), 0u)
        << out.status().message();
  }
  // Trailing bytes that are not another member.
  EXPECT_EQ(code(gz + "junk"), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(gz + std::string(8, '\0')), StatusCode::kInvalidArgument);
  // zlib and raw deflate are not gzip.
  EXPECT_EQ(code(Deflate(data, 15)), StatusCode::kInvalidArgument);
}

TEST(ZlibDeflate, DecompressesZlibAndRawDeflate) {
  const std::string data = Compressible(50000);
  for (int window_bits : {15, -15}) {
    const std::string z = Deflate(data, window_bits);
    Result<std::string> out = ZlibDeflateDecompress(z, data.size());
    ASSERT_TRUE(out.ok()) << window_bits << ": " << out.status().ToString();
    EXPECT_EQ(*out, data);
    out = ZlibDeflateDecompress(z, data.size() - 1);
    EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted) << window_bits;
    out = ZlibDeflateDecompress(z.substr(0, z.size() - 3), data.size());
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << window_bits;
    out = ZlibDeflateDecompress(z + "x", data.size());
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << window_bits;
    EXPECT_EQ(out.status().message(),
              "data after the end of the deflate stream at byte " + std::to_string(z.size()));
  }
  EXPECT_TRUE(ZlibDeflateDecompress(Deflate("", 15), 0).ok());
  EXPECT_EQ(ZlibDeflateDecompress("", 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ZlibDeflateDecompress("\xff\xff\xff", 10).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace telkit
