#include "common/logstore/log_chunk.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>

#include "common/base/crc32c.h"
#include "common/tsdb/byte_codec.h"

namespace telkit {
namespace {

constexpr char kMagic[4] = {'T', 'K', 'L', 'C'};
constexpr uint8_t kVersion = kChunkVersion2;  // what EncodeChunk writes
constexpr size_t kHeaderBytes = 32;
constexpr size_t kBlockHeaderBytes = 32;

void EncodeMetadata(std::string* out, const std::vector<Label>& md) {
  PutUvarint64(out, md.size());
  for (const Label& l : md) {
    PutString(out, l.name);
    PutString(out, l.value);
  }
}

// Raw block, version 2: first ts (fixed64), n-1 uvarint ts deltas, n
// uvarint line lengths, n uvarint metadata lengths, text, metadata.
// REQUIRES: `es` sorted by ts.
void EncodeRawBlock(std::span<const LogEntry> es, std::string* out, std::string* meta) {
  out->clear();
  meta->clear();
  PutFixed64(out, static_cast<uint64_t>(es[0].ts));
  for (size_t i = 1; i < es.size(); ++i) PutUvarint64(out, static_cast<uint64_t>(es[i].ts - es[i - 1].ts));
  for (const LogEntry& e : es) PutUvarint64(out, e.line.size());
  std::string one;
  for (const LogEntry& e : es) {
    one.clear();
    EncodeMetadata(&one, e.metadata);
    PutUvarint64(out, one.size());
    meta->append(one);
  }
  for (const LogEntry& e : es) out->append(e.line);
  out->append(*meta);
}

// Contexts reused per thread: ZSTD_compress/ZSTD_decompress allocate and
// initialise a fresh one on every call (megabytes at level 3).
struct ZstdContexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ~ZstdContexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};
ZstdContexts& Zstd() {
  thread_local ZstdContexts z;
  return z;
}

// Lays the fixed-width columns of a version 2 raw block (`raw`, n lines)
// out at `cols` (16 n bytes: ts, line_end, meta_end) and returns the
// length of its varint header, or 0 when malformed.
size_t ExpandColumns(std::string_view raw, size_t n, char* cols, uint64_t* text_len, uint64_t* meta_len) {
  ByteReader r(raw);
  uint64_t ts;
  if (!r.Fixed64(&ts)) return 0;
  char* ts_col = cols;
  char* line_col = cols + 8 * n;
  char* meta_col = cols + 12 * n;
  auto store64 = [](char* p, uint64_t v) { for (int k = 0; k < 8; ++k) p[k] = static_cast<char>(v >> (8 * k)); };
  auto store32 = [](char* p, uint32_t v) { for (int k = 0; k < 4; ++k) p[k] = static_cast<char>(v >> (8 * k)); };
  store64(ts_col, ts);
  for (size_t i = 1; i < n; ++i) {
    uint64_t d;
    if (!r.Uvarint(&d)) return 0;
    ts += d;
    store64(ts_col + 8 * i, ts);
  }
  uint64_t end = 0;
  for (size_t i = 0; i < n; ++i) {
    uint64_t len;
    if (!r.Uvarint(&len) || len > raw.size() || (end += len) > raw.size()) return 0;
    store32(line_col + 4 * i, static_cast<uint32_t>(end));
  }
  *text_len = end;
  end = 0;
  for (size_t i = 0; i < n; ++i) {
    uint64_t len;
    if (!r.Uvarint(&len) || len > raw.size() || (end += len) > raw.size()) return 0;
    store32(meta_col + 4 * i, static_cast<uint32_t>(end));
  }
  *meta_len = end;
  return raw.size() - r.remaining();
}

}  // namespace

size_t LogEntryRawBytes(const LogEntry& e) {
  size_t n = 16 + e.line.size() + 1;
  for (const Label& l : e.metadata) n += l.name.size() + l.value.size() + 2;
  return n;
}

Result<std::string> EncodeChunk(std::span<const LogEntry> entries, const ChunkOptions& options) {
  if (entries.empty()) return InvalidArgumentError("chunk: no entries");
  std::string out(kMagic, 4);
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(options.compression));
  out.append(2, '\0');  // reserved u16
  PutFixed64(&out, static_cast<uint64_t>(entries.front().ts));
  PutFixed64(&out, static_cast<uint64_t>(entries.back().ts));
  PutFixed32(&out, static_cast<uint32_t>(entries.size()));
  size_t nblocks_at = out.size();
  PutFixed32(&out, 0);
  uint32_t nblocks = 0;
  size_t i = 0;
  std::string compressed, block, meta;
  while (i < entries.size()) {
    size_t j = i, raw = 0;
    while (j < entries.size() && (j == i || raw + LogEntryRawBytes(entries[j]) <= options.block_bytes)) {
      raw += LogEntryRawBytes(entries[j]);
      ++j;
    }
    EncodeRawBlock(entries.subspan(i, j - i), &block, &meta);
    if (block.size() > UINT32_MAX / 2) return InvalidArgumentError("chunk: block too large");
    std::string_view data = block;
    if (options.compression == ChunkCompression::kZstd) {
      compressed.resize(ZSTD_compressBound(block.size()));
      size_t n = ZSTD_compressCCtx(Zstd().c, compressed.data(), compressed.size(), block.data(), block.size(),
                                   options.zstd_level);
      if (ZSTD_isError(n)) return InternalError(std::string("chunk: zstd: ") + ZSTD_getErrorName(n));
      compressed.resize(n);
      data = compressed;
    }
    PutFixed32(&out, static_cast<uint32_t>(data.size()));
    PutFixed32(&out, static_cast<uint32_t>(block.size()));
    PutFixed32(&out, static_cast<uint32_t>(j - i));
    PutFixed64(&out, static_cast<uint64_t>(entries[i].ts));
    PutFixed64(&out, static_cast<uint64_t>(entries[j - 1].ts));
    PutFixed32(&out, Crc32c(data));
    out.append(data);
    ++nblocks;
    i = j;
  }
  for (int k = 0; k < 4; ++k) out[nblocks_at + k] = static_cast<char>(nblocks >> (8 * k));
  PutFixed32(&out, Crc32c(out));
  return out;
}

Result<ParsedChunk> ParseChunk(std::string_view c) {
  if (c.size() < kHeaderBytes + 4 || std::string_view(c.data(), 4) != std::string_view(kMagic, 4))
    return DataLossError("chunk: bad magic or too short");
  const uint8_t version = static_cast<uint8_t>(c[4]);
  if (version != kChunkVersion1 && version != kChunkVersion2)
    return DataLossError("chunk: unsupported version " + std::to_string(version));
  ParsedChunk p;
  p.version = version;
  uint8_t comp = static_cast<uint8_t>(c[5]);
  if (comp > 1) return DataLossError("chunk: unknown compression " + std::to_string(comp));
  p.compression = static_cast<ChunkCompression>(comp);
  if (LoadFixed32(c.data() + c.size() - 4) != Crc32c(c.substr(0, c.size() - 4)))
    return DataLossError("chunk: checksum mismatch");
  p.mint = static_cast<int64_t>(LoadFixed64(c.data() + 8));
  p.maxt = static_cast<int64_t>(LoadFixed64(c.data() + 16));
  p.lines = LoadFixed32(c.data() + 24);
  uint32_t nblocks = LoadFixed32(c.data() + 28);
  size_t pos = kHeaderBytes, end = c.size() - 4;
  uint64_t lines = 0;
  for (uint32_t b = 0; b < nblocks; ++b) {
    if (end - pos < kBlockHeaderBytes) return DataLossError("chunk: truncated block header");
    ChunkBlockRef r;
    r.version = version;
    const char* h = c.data() + pos;
    r.compressed_len = LoadFixed32(h);
    r.raw_len = LoadFixed32(h + 4);
    r.lines = LoadFixed32(h + 8);
    r.mint = static_cast<int64_t>(LoadFixed64(h + 12));
    r.maxt = static_cast<int64_t>(LoadFixed64(h + 20));
    r.crc = LoadFixed32(h + 28);
    pos += kBlockHeaderBytes;
    if (end - pos < r.compressed_len) return DataLossError("chunk: truncated block");
    r.offset = static_cast<uint32_t>(pos);
    pos += r.compressed_len;
    lines += r.lines;
    p.blocks.push_back(r);
  }
  if (pos != end || lines != p.lines) return DataLossError("chunk: block table does not add up");
  return p;
}

Result<BlockView> BlockView::Decode(std::string_view chunk, ChunkCompression compression, const ChunkBlockRef& ref,
                                    std::string* buf) {
  if (ref.offset > chunk.size() || chunk.size() - ref.offset < ref.compressed_len)
    return DataLossError("chunk block: out of the chunk");
  std::string_view data = chunk.substr(ref.offset, ref.compressed_len);
  if (Crc32c(data) != ref.crc) return DataLossError("chunk block: checksum mismatch");
  const size_t n = ref.lines;
  if (ref.raw_len > (1u << 30)) return DataLossError("chunk block: raw length too large");
  const bool v2 = ref.version == kChunkVersion2;
  // Version 2: each line takes at least one byte of every varint column.
  if (n == 0 || (v2 ? ref.raw_len < 8 + 2 * n : ref.raw_len / 16 < n))
    return DataLossError("chunk block: bad line count");
  std::string_view raw;
  if (compression == ChunkCompression::kZstd) {
    buf->resize(ref.raw_len + (v2 ? 16 * n : 0));
    size_t got = ZSTD_decompressDCtx(Zstd().d, buf->data(), ref.raw_len, data.data(), data.size());
    if (ZSTD_isError(got) || got != ref.raw_len) return DataLossError("chunk block: bad zstd data");
    raw = std::string_view(buf->data(), ref.raw_len);
  } else {
    if (data.size() != ref.raw_len) return DataLossError("chunk block: raw length mismatch");
    if (v2) {
      buf->resize(ref.raw_len + 16 * n);
      std::memcpy(buf->data(), data.data(), data.size());
      raw = std::string_view(buf->data(), ref.raw_len);
    } else {
      raw = data;
    }
  }
  BlockView v;
  v.n_ = n;
  size_t text_len, meta_len, head;
  if (v2) {
    char* cols = buf->data() + ref.raw_len;
    uint64_t t = 0, m = 0;
    head = ExpandColumns(raw, n, cols, &t, &m);
    if (head == 0 || head + t + m != raw.size()) return DataLossError("chunk block: regions do not add up");
    text_len = t;
    meta_len = m;
    v.ts_ = cols;
    v.line_ends_ = cols + 8 * n;
    v.meta_ends_ = cols + 12 * n;
  } else {
    head = 16 * n;
    v.ts_ = raw.data();
    v.line_ends_ = raw.data() + 8 * n;
    v.meta_ends_ = raw.data() + 12 * n;
    text_len = LoadFixed32(v.line_ends_ + 4 * (n - 1));
    meta_len = LoadFixed32(v.meta_ends_ + 4 * (n - 1));
    if (16 * n + text_len + meta_len != raw.size()) return DataLossError("chunk block: regions do not add up");
    uint32_t last = 0, last_meta = 0;
    for (size_t i = 0; i < n; ++i) {
      uint32_t e = LoadFixed32(v.line_ends_ + 4 * i), m = LoadFixed32(v.meta_ends_ + 4 * i);
      if (e < last || m < last_meta) return DataLossError("chunk block: offsets not ascending");
      last = e;
      last_meta = m;
    }
  }
  v.text_ = raw.substr(head, text_len);
  v.meta_ = raw.substr(head + text_len, meta_len);
  return v;
}

int64_t BlockView::ts(size_t i) const { return static_cast<int64_t>(LoadFixed64(ts_ + 8 * i)); }
uint32_t BlockView::line_end(size_t i) const { return LoadFixed32(line_ends_ + 4 * i); }
std::string_view BlockView::line(size_t i) const {
  uint32_t s = line_start(i);
  return text_.substr(s, line_end(i) - s);
}
std::string_view BlockView::metadata_bytes(size_t i) const {
  uint32_t s = i == 0 ? 0 : LoadFixed32(meta_ends_ + 4 * (i - 1));
  return meta_.substr(s, LoadFixed32(meta_ends_ + 4 * i) - s);
}
size_t BlockView::LineAt(uint32_t pos) const {
  // The first line whose end is > pos (empty lines end where they start).
  size_t lo = 0, hi = n_;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (line_end(mid) > pos) hi = mid; else lo = mid + 1;
  }
  return lo < n_ ? lo : n_ - 1;
}

Status DecodeMetadata(std::string_view bytes, std::vector<Label>* out) {
  ByteReader r(bytes);
  uint64_t n;
  if (!r.Uvarint(&n) || n > bytes.size()) return DataLossError("chunk: bad metadata");
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view k, v;
    if (!r.String(&k) || !r.String(&v)) return DataLossError("chunk: bad metadata");
    out->push_back(Label{std::string(k), std::string(v)});
  }
  return OkStatus();
}

void MatchLines(const BlockView& block, std::span<const std::string> needles, std::vector<uint32_t>* out) {
  out->clear();
  if (needles.empty()) {
    for (size_t i = 0; i < block.size(); ++i) out->push_back(static_cast<uint32_t>(i));
    return;
  }
  // The first needle scans the text region; the others check the hits.
  ForEachLineContaining(block, needles[0], [&](size_t i) {
    std::string_view l = block.line(i);
    for (size_t k = 1; k < needles.size(); ++k)
      if (l.find(needles[k]) == std::string_view::npos) return true;
    out->push_back(static_cast<uint32_t>(i));
    return true;
  });
}

}  // namespace telkit
