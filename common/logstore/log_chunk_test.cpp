#include "common/logstore/log_chunk.h"

#include <gtest/gtest.h>

#include "common/base/crc32c.h"

#include <string>
#include <vector>

namespace telkit {
namespace {

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

std::string Unhex(std::string_view h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return out;
}

// The byte layout of docs/format/logstore-chunk.md, pinned.
TEST(LogChunk, GoldenBytesUncompressed) {
  std::vector<LogEntry> es = {{1, "ab", {{"k", "v"}}}, {2, "c", {}}};
  ChunkOptions o;
  o.compression = ChunkCompression::kNone;
  auto c = EncodeChunk(es, o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(Hex(*c),
            // header: magic, version 2, compression 0, reserved, mint 1, maxt 2, 2 lines, 1 block
            "544b4c4302000000"
            "0100000000000000"
            "0200000000000000"
            "02000000"
            "01000000"
            // block header: compressed 22, raw 22, 2 lines, mint 1, maxt 2, crc32c
            "16000000"
            "16000000"
            "02000000"
            "0100000000000000"
            "0200000000000000" +
                Hex(c->substr(60, 4)) +
                // raw block: ts0, ts delta, line lengths, metadata lengths, text "abc", metadata
                "0100000000000000"
                "01"
                "0201"
                "0501"
                "616263"
                "01016b0176"
                "00" +
                Hex(c->substr(c->size() - 4)));
  auto p = ParseChunk(*c);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->version, kChunkVersion2);
  EXPECT_EQ(p->blocks.size(), 1u);
  EXPECT_EQ(p->lines, 2u);
  std::string buf;
  auto v = BlockView::Decode(*c, p->compression, p->blocks[0], &buf);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->ts(1), 2);
  EXPECT_EQ(v->line(0), "ab");
  EXPECT_EQ(v->line(1), "c");
  std::vector<Label> md;
  ASSERT_TRUE(DecodeMetadata(v->metadata_bytes(0), &md).ok());
  EXPECT_EQ(md, (std::vector<Label>{{"k", "v"}}));
}

// Version 1 chunks (fixed-width columns) written before version 2 still read.
TEST(LogChunk, Version1GoldenBytesStillDecode) {
  std::string v1 = Unhex(
      "544b4c4301000000" "0100000000000000" "0200000000000000" "02000000" "01000000"
      "29000000" "29000000" "02000000" "0100000000000000" "0200000000000000" "00000000"
      "0100000000000000" "0200000000000000" "02000000" "03000000" "05000000" "06000000"
      "616263" "01016b0176" "00" "00000000");
  const uint32_t block_crc = Crc32c(std::string_view(v1).substr(64, 41));
  for (int k = 0; k < 4; ++k) v1[60 + k] = static_cast<char>(block_crc >> (8 * k));
  const uint32_t crc = Crc32c(std::string_view(v1).substr(0, v1.size() - 4));
  for (int k = 0; k < 4; ++k) v1[v1.size() - 4 + k] = static_cast<char>(crc >> (8 * k));
  auto p = ParseChunk(v1);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->version, kChunkVersion1);
  std::string buf;
  auto v = BlockView::Decode(v1, p->compression, p->blocks[0], &buf);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->size(), 2u);
  EXPECT_EQ(v->ts(0), 1);
  EXPECT_EQ(v->line(0), "ab");
  EXPECT_EQ(v->line(1), "c");
  EXPECT_EQ(v->text(), "abc");
}

std::vector<LogEntry> Corpus(size_t n) {
  std::vector<LogEntry> es;
  for (size_t i = 0; i < n; ++i) {
    LogEntry e;
    e.ts = static_cast<int64_t>(i) * 1000;
    e.line = "GET /api/v1/items/" + std::to_string(i % 97) + " status=" + (i % 13 == 0 ? "500" : "200") +
             " took=" + std::to_string(i % 1000) + "ms";
    if (i % 3 == 0) e.metadata = {{"trace_id", std::string(32, 'a' + static_cast<char>(i % 6))}};
    es.push_back(std::move(e));
  }
  return es;
}

TEST(LogChunk, RoundTripManyBlocksZstd) {
  auto es = Corpus(5000);
  ChunkOptions o;
  o.block_bytes = 16 << 10;
  auto c = EncodeChunk(es, o);
  ASSERT_TRUE(c.ok());
  auto p = ParseChunk(*c);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_GT(p->blocks.size(), 5u);
  std::string buf;
  size_t k = 0;
  for (const auto& ref : p->blocks) {
    auto b = BlockView::Decode(*c, p->compression, ref, &buf);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    for (size_t i = 0; i < b->size(); ++i, ++k) {
      ASSERT_EQ(b->ts(i), es[k].ts);
      ASSERT_EQ(b->line(i), es[k].line);
      std::vector<Label> md;
      ASSERT_TRUE(DecodeMetadata(b->metadata_bytes(i), &md).ok());
      ASSERT_EQ(md, es[k].metadata);
    }
  }
  EXPECT_EQ(k, es.size());
  EXPECT_LT(c->size(), es.size() * 20);  // compresses
}

TEST(LogChunk, SubstringFilterFindsExactlyTheMatchingLines) {
  std::vector<LogEntry> es = {{1, "alpha", {}}, {2, "", {}}, {3, "beta al", {}}, {4, "pha", {}}, {5, "xalphax", {}}};
  ChunkOptions o;
  auto c = EncodeChunk(es, o);
  ASSERT_TRUE(c.ok());
  auto p = ParseChunk(*c);
  std::string buf;
  auto b = BlockView::Decode(*c, p->compression, p->blocks[0], &buf);
  ASSERT_TRUE(b.ok());
  std::vector<uint32_t> hits;
  std::vector<std::string> needles = {"alpha"};
  MatchLines(*b, needles, &hits);
  // "al" + "pha" across lines 3 and 4 must not match.
  EXPECT_EQ(hits, (std::vector<uint32_t>{0, 4}));
  needles = {"al", "x"};
  MatchLines(*b, needles, &hits);
  EXPECT_EQ(hits, (std::vector<uint32_t>{4}));
  needles = {"zzz"};
  MatchLines(*b, needles, &hits);
  EXPECT_TRUE(hits.empty());
  needles = {};
  MatchLines(*b, needles, &hits);
  EXPECT_EQ(hits.size(), 5u);
}

TEST(LogChunk, EveryFlippedByteIsDetected) {
  auto es = Corpus(50);
  auto c = EncodeChunk(es, {});
  ASSERT_TRUE(c.ok());
  for (size_t i = 0; i < c->size(); ++i) {
    std::string bad = *c;
    bad[i] ^= 0x40;
    EXPECT_FALSE(ParseChunk(bad).ok()) << "byte " << i;
  }
  for (size_t n = 0; n < c->size(); n += 7) EXPECT_FALSE(ParseChunk(c->substr(0, n)).ok());
}

TEST(LogChunk, DamagedBlockIsDataLossNotACrash) {
  auto es = Corpus(200);
  ChunkOptions o;
  o.compression = ChunkCompression::kNone;
  auto c = EncodeChunk(es, o);
  auto p = ParseChunk(*c);
  ASSERT_TRUE(p.ok());
  // A block whose header lies about its line count (crc still right).
  ChunkBlockRef ref = p->blocks[0];
  ref.lines = 100000;
  std::string buf;
  EXPECT_EQ(BlockView::Decode(*c, p->compression, ref, &buf).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace telkit
