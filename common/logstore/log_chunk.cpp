#include "common/logstore/log_chunk.h"

#include <zstd.h>

#include <algorithm>

#include "common/base/crc32c.h"
#include "common/tsdb/byte_codec.h"

namespace telkit {
namespace {

constexpr char kMagic[4] = {'T', 'K', 'L', 'C'};
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderBytes = 32;
constexpr size_t kBlockHeaderBytes = 32;

void EncodeMetadata(std::string* out, const std::vector<Label>& md) {
  PutUvarint64(out, md.size());
  for (const Label& l : md) {
    PutString(out, l.name);
    PutString(out, l.value);
  }
}

// Raw block: n x ts, n x line_end, n x meta_end, text, metadata.
std::string EncodeRawBlock(std::span<const LogEntry> es) {
  std::string out, text, meta;
  for (const LogEntry& e : es) PutFixed64(&out, static_cast<uint64_t>(e.ts));
  for (const LogEntry& e : es) {
    text.append(e.line);
    PutFixed32(&out, static_cast<uint32_t>(text.size()));
  }
  for (const LogEntry& e : es) {
    EncodeMetadata(&meta, e.metadata);
    PutFixed32(&out, static_cast<uint32_t>(meta.size()));
  }
  out.append(text);
  out.append(meta);
  return out;
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
  std::string compressed;
  while (i < entries.size()) {
    size_t j = i, raw = 0;
    while (j < entries.size() && (j == i || raw + LogEntryRawBytes(entries[j]) <= options.block_bytes)) {
      raw += LogEntryRawBytes(entries[j]);
      ++j;
    }
    std::string block = EncodeRawBlock(entries.subspan(i, j - i));
    if (block.size() > UINT32_MAX / 2) return InvalidArgumentError("chunk: block too large");
    std::string_view data = block;
    if (options.compression == ChunkCompression::kZstd) {
      compressed.resize(ZSTD_compressBound(block.size()));
      size_t n = ZSTD_compress(compressed.data(), compressed.size(), block.data(), block.size(), options.zstd_level);
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
  if (static_cast<uint8_t>(c[4]) != kVersion)
    return DataLossError("chunk: unsupported version " + std::to_string(static_cast<uint8_t>(c[4])));
  ParsedChunk p;
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
  std::string_view data = chunk.substr(ref.offset, ref.compressed_len);
  if (Crc32c(data) != ref.crc) return DataLossError("chunk block: checksum mismatch");
  std::string_view raw;
  if (compression == ChunkCompression::kZstd) {
    if (ref.raw_len > (1u << 30)) return DataLossError("chunk block: raw length too large");
    buf->resize(ref.raw_len);
    size_t n = ZSTD_decompress(buf->data(), buf->size(), data.data(), data.size());
    if (ZSTD_isError(n) || n != ref.raw_len) return DataLossError("chunk block: bad zstd data");
    raw = *buf;
  } else {
    if (data.size() != ref.raw_len) return DataLossError("chunk block: raw length mismatch");
    raw = data;
  }
  BlockView v;
  size_t n = ref.lines;
  if (n == 0 || raw.size() / 16 < n) return DataLossError("chunk block: bad line count");
  v.n_ = n;
  v.ts_ = raw.data();
  v.line_ends_ = raw.data() + 8 * n;
  v.meta_ends_ = raw.data() + 12 * n;
  size_t text_len = LoadFixed32(v.line_ends_ + 4 * (n - 1));
  size_t meta_len = LoadFixed32(v.meta_ends_ + 4 * (n - 1));
  if (16 * n + text_len + meta_len != raw.size()) return DataLossError("chunk block: regions do not add up");
  uint32_t last = 0, last_meta = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t e = LoadFixed32(v.line_ends_ + 4 * i), m = LoadFixed32(v.meta_ends_ + 4 * i);
    if (e < last || m < last_meta) return DataLossError("chunk block: offsets not ascending");
    last = e;
    last_meta = m;
  }
  v.text_ = raw.substr(16 * n, text_len);
  v.meta_ = raw.substr(16 * n + text_len, meta_len);
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
