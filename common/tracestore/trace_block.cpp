#include "common/tracestore/trace_block.h"

#include <zstd.h>

#include <cstdio>
#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>

#include "common/base/crc32c.h"

namespace telkit {
namespace {

static_assert(std::endian::native == std::endian::little, "block columns are read by copying little-endian arrays");

void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
               static_cast<char>(v >> 24)};
  out->append(b, 4);
}
void PutU64(std::string* out, uint64_t v) {
  PutU32(out, static_cast<uint32_t>(v));
  PutU32(out, static_cast<uint32_t>(v >> 32));
}
uint32_t GetU32(const char* p) {
  auto u = [&](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return u(0) | u(1) << 8 | u(2) << 16 | u(3) << 24;
}
uint64_t GetU64(const char* p) { return GetU32(p) | static_cast<uint64_t>(GetU32(p + 4)) << 32; }

}  // namespace

std::string TraceBlockFileName(uint64_t block) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "B%08llu.tblk", static_cast<unsigned long long>(block));
  return buf;
}

namespace {
ZSTD_CCtx* ThreadCCtx() {
  // One context per thread: ZSTD_compress would allocate (and free) about
  // a megabyte of state for every trace.
  static thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  return cctx.get();
}

// Appends the frame of `raw` (header + zstd) to *out; returns its length.
size_t AppendCompressedFrame(std::string_view raw, int zstd_level, std::string* out) {
  const size_t at = out->size();
  out->resize(at + kTraceFrameHeaderBytes + ZSTD_compressBound(raw.size()));
  char* body = out->data() + at + kTraceFrameHeaderBytes;
  size_t n = ZSTD_compressCCtx(ThreadCCtx(), body, out->size() - at - kTraceFrameHeaderBytes, raw.data(), raw.size(),
                               zstd_level);
  // ZSTD_compress cannot fail with a bound-sized buffer and a valid level.
  std::string header;
  PutU32(&header, static_cast<uint32_t>(n));
  PutU32(&header, Crc32c(body, n));
  PutU32(&header, static_cast<uint32_t>(raw.size()));
  std::memcpy(out->data() + at, header.data(), kTraceFrameHeaderBytes);
  out->resize(at + kTraceFrameHeaderBytes + n);
  return kTraceFrameHeaderBytes + n;
}

std::string CompressFrame(std::string_view raw, int zstd_level) {
  std::string out;
  AppendCompressedFrame(raw, zstd_level, &out);
  return out;
}

}  // namespace

size_t AppendTraceFrame(std::span<const SpanRecord* const> spans, int zstd_level, std::string* out) {
  static thread_local std::string raw;
  raw.clear();
  size_t total = 0;
  for (const SpanRecord* r : spans) total += 4 + r->otlp.size();
  raw.reserve(total);
  for (const SpanRecord* r : spans) {
    PutU32(&raw, static_cast<uint32_t>(r->otlp.size()));
    raw.append(r->otlp);
  }
  size_t n = AppendCompressedFrame(raw, zstd_level, out);
  // Keep the scratch buffer for ordinary traces; give back what a huge one took.
  if (raw.capacity() > (4u << 20)) std::string().swap(raw);
  return n;
}

std::string EncodeTraceFrame(std::span<const SpanRecord* const> spans, int zstd_level) {
  std::string out;
  AppendTraceFrame(spans, zstd_level, &out);
  return out;
}

namespace {
// A decompressed frame: the buffer is not zero-filled first (decompression
// writes every byte), which matters for multi-megabyte block indexes.
struct RawFrame {
  std::unique_ptr<char[]> data;
  size_t size = 0;
  std::string_view view() const { return std::string_view(data.get(), size); }
};

Result<RawFrame> DecompressFrame(std::string_view frame) {
  if (frame.size() < kTraceFrameHeaderBytes) return DataLossError("trace frame: short header");
  uint32_t clen = GetU32(frame.data()), crc = GetU32(frame.data() + 4), rlen = GetU32(frame.data() + 8);
  if (frame.size() - kTraceFrameHeaderBytes != clen) return DataLossError("trace frame: length mismatch");
  const char* c = frame.data() + kTraceFrameHeaderBytes;
  if (Crc32c(c, clen) != crc) return DataLossError("trace frame: checksum mismatch");
  if (rlen > kMaxTraceFrameRawBytes) return DataLossError("trace frame: raw length too large");
  RawFrame raw{std::make_unique_for_overwrite<char[]>(rlen == 0 ? 1 : rlen), rlen};
  static thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  size_t n = ZSTD_decompressDCtx(dctx.get(), raw.data.get(), rlen, c, clen);
  if (ZSTD_isError(n) || n != rlen) return DataLossError("trace frame: zstd: bad data");
  return raw;
}

}  // namespace

Result<std::vector<std::string>> DecodeTraceFrame(std::string_view frame) {
  TELKIT_ASSIGN_OR_RETURN(RawFrame frame_raw, DecompressFrame(frame));
  std::string_view raw = frame_raw.view();
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < raw.size()) {
    if (raw.size() - pos < 4) return DataLossError("trace frame: truncated span length");
    uint32_t len = GetU32(raw.data() + pos);
    pos += 4;
    if (raw.size() - pos < len) return DataLossError("trace frame: truncated span");
    out.emplace_back(raw.data() + pos, len);
    pos += len;
  }
  return out;
}

Result<std::vector<std::string>> ReadTraceFrame(FileSystem* fs, const std::string& path, uint64_t offset,
                                                uint64_t length) {
  if (length > kMaxTraceFrameRawBytes) return DataLossError("trace frame: length too large in catalogue");
  TELKIT_ASSIGN_OR_RETURN(auto file, fs->NewReadableFile(path));
  std::string buf(length, '\0');
  TELKIT_ASSIGN_OR_RETURN(size_t n, file->ReadAt(offset, std::span<char>(buf.data(), buf.size())));
  if (n != length) return DataLossError("trace frame: " + path + " ends before the frame");
  auto r = DecodeTraceFrame(buf);
  if (!r.ok()) return r.status().WithContext(path + " at " + std::to_string(offset));
  return r;
}

// ---- index frame -------------------------------------------------------

int64_t TraceBlockIndex::FindString(std::string_view s) const {
  for (size_t i = 0; i < strings.size(); ++i) {
    if (strings[i] == s) return static_cast<int64_t>(i);
  }
  return -1;
}

size_t TraceBlockIndex::MemoryBytes() const {
  return sizeof(*this) + traces.size() * (sizeof(BlockTrace) + 16) + service.size() * 4 + name.size() * 4 +
         kind.size() + status.size() + start_ns.size() * 8 + duration_ns.size() * 8 + attr_end.size() * 4 +
         attrs.size() * 8 + strings.MemoryBytes();
}

namespace {
uint32_t HashString(std::string_view s) {
  // FNV-1a over 8-byte words, then a final mix: the dictionary's strings
  // are short (names, routes, statuses), where std::hash's setup dominates.
  uint64_t h = 0xcbf29ce484222325ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  uint64_t w = 0;
  std::memcpy(&w, s.data() + i, s.size() - i);
  h = (h ^ w) * 0x9e3779b97f4a7c15ull;
  h ^= h >> 32;
  return static_cast<uint32_t>(h);
}
}  // namespace

void TraceBlockIndexBuilder::Grow() {
  std::vector<std::pair<uint32_t, uint32_t>> old;
  old.swap(slots_);
  slots_.assign(old.empty() ? 4096 : old.size() * 2, {0, 0});
  const size_t mask = slots_.size() - 1;
  for (const auto& e : old) {
    if (e.first == 0) continue;
    size_t i = e.second & mask;
    while (slots_[i].first != 0) i = (i + 1) & mask;
    slots_[i] = e;
  }
}

uint32_t TraceBlockIndexBuilder::Intern(std::string_view s) {
  if (index_.strings.empty()) {
    index_.strings.push_back("");
    Grow();
  }
  if (s.empty()) return 0;
  if ((index_.strings.size() + 1) * 2 > slots_.size()) Grow();  // load <= 1/2
  const uint32_t h = HashString(s);
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    auto& e = slots_[i];
    if (e.first == 0) {
      auto id = static_cast<uint32_t>(index_.strings.size());
      index_.strings.push_back(s);
      e = {id + 1, h};
      return id;
    }
    if (e.second == h && index_.strings[e.first - 1] == s) return e.first - 1;
  }
}

TraceBlockIndex TraceBlockIndexBuilder::TakeIndex() {
  slots_.clear();
  slots_.shrink_to_fit();
  return std::move(index_);
}

void TraceBlockIndexBuilder::AddTrace(std::string_view trace_id, uint64_t offset, uint32_t length,
                                      std::span<const SpanRecord* const> spans) {
  Intern("");
  BlockTrace t;
  t.trace_id = std::string(trace_id);
  t.offset = offset;
  t.length = length;
  t.first_span = static_cast<uint32_t>(index_.service.size());
  t.spans = static_cast<uint32_t>(spans.size());
  bool first = true;
  for (const SpanRecord* r : spans) {
    // A span ending before it starts (unset end) counts as ending at its
    // start, so that [start_ns, end_ns] covers every span start.
    auto st = static_cast<int64_t>(r->start_ns), en = std::max(st, static_cast<int64_t>(r->end_ns));
    t.start_ns = first ? st : std::min(t.start_ns, st);
    t.end_ns = first ? en : std::max(t.end_ns, en);
    first = false;
    uint32_t svc = Intern(r->service);
    uint32_t nm = Intern(r->name);
    if (r->parent_span_id.empty() && t.root_name == 0 && t.root_service == 0) {
      t.root_service = svc;
      t.root_name = nm;
    }
    index_.service.push_back(svc);
    index_.name.push_back(nm);
    index_.kind.push_back(static_cast<uint8_t>(r->kind));
    index_.status.push_back(static_cast<uint8_t>(r->status));
    index_.start_ns.push_back(st);
    index_.duration_ns.push_back(r->duration_ns());
    for (const auto& [k, v] : r->attributes) {
      uint32_t key = Intern(k);  // key first: the dictionary order is part of the format
      index_.attrs.emplace_back(key, Intern(v));
    }
    index_.attr_end.push_back(static_cast<uint32_t>(index_.attrs.size()));
  }
  index_.traces.push_back(std::move(t));
}

std::string EncodeTraceBlockIndexRaw(const TraceBlockIndex& x) {
  std::string raw;
  size_t n = x.service.size();
  raw.reserve(16 + x.traces.size() * kTraceIndexTraceBytes + n * 30 + x.attrs.size() * 8);
  PutU32(&raw, static_cast<uint32_t>(x.strings.size()));
  for (size_t i = 0; i < x.strings.size(); ++i) {
    std::string_view s = x.strings[i];
    PutU32(&raw, static_cast<uint32_t>(s.size()));
    raw.append(s);
  }
  PutU32(&raw, static_cast<uint32_t>(x.traces.size()));
  for (const BlockTrace& t : x.traces) {
    std::string id = t.trace_id;
    id.resize(16, '\0');
    raw.append(id);
    PutU64(&raw, t.offset);
    PutU32(&raw, t.length);
    PutU32(&raw, t.first_span);
    PutU32(&raw, t.spans);
    PutU32(&raw, t.root_service);
    PutU32(&raw, t.root_name);
    PutU32(&raw, 0);  // reserved
    PutU64(&raw, static_cast<uint64_t>(t.start_ns));
    PutU64(&raw, static_cast<uint64_t>(t.end_ns));
  }
  PutU32(&raw, static_cast<uint32_t>(n));
  for (uint32_t v : x.service) PutU32(&raw, v);
  for (uint32_t v : x.name) PutU32(&raw, v);
  raw.append(reinterpret_cast<const char*>(x.kind.data()), n);
  raw.append(reinterpret_cast<const char*>(x.status.data()), n);
  for (int64_t v : x.start_ns) PutU64(&raw, static_cast<uint64_t>(v));
  for (uint64_t v : x.duration_ns) PutU64(&raw, v);
  for (uint32_t v : x.attr_end) PutU32(&raw, v);
  PutU32(&raw, static_cast<uint32_t>(x.attrs.size()));
  for (const auto& [k, v] : x.attrs) {
    PutU32(&raw, k);
    PutU32(&raw, v);
  }
  return raw;
}

std::string TraceBlockIndexBuilder::Finish(int zstd_level) const {
  return CompressFrame(EncodeTraceBlockIndexRaw(index_), zstd_level);
}

size_t TraceBlockIndexBuilder::FinishTo(int zstd_level, std::string* out) const {
  return AppendCompressedFrame(EncodeTraceBlockIndexRaw(index_), zstd_level, out);
}

std::string EncodeTraceBlockFooter(uint64_t index_offset, uint64_t index_length) {
  std::string out;
  PutU64(&out, index_offset);
  PutU64(&out, index_length);
  out.append(kTraceBlockFooterMagic);
  return out;
}

Status DecodeTraceBlockFooter(std::string_view footer, uint64_t* index_offset, uint64_t* index_length) {
  if (footer.size() != kTraceBlockFooterBytes || footer.substr(16) != kTraceBlockFooterMagic) {
    return DataLossError("trace block: bad footer");
  }
  *index_offset = GetU64(footer.data());
  *index_length = GetU64(footer.data() + 8);
  return OkStatus();
}

namespace {

// Bounds-checked little-endian reads over the raw index.
struct Cursor {
  std::string_view d;
  size_t pos = 0;
  bool ok = true;
  bool Need(size_t n) {
    if (!ok || d.size() - pos < n) ok = false;
    return ok;
  }
  uint32_t U32() {
    if (!Need(4)) return 0;
    uint32_t v = GetU32(d.data() + pos);
    pos += 4;
    return v;
  }
  uint64_t U64() {
    if (!Need(8)) return 0;
    uint64_t v = GetU64(d.data() + pos);
    pos += 8;
    return v;
  }
  // A column of n fixed-width little-endian values, copied whole (the
  // host is little-endian: static_assert below).
  template <typename T>
  void Column(std::vector<T>* out, size_t n) {
    if (!Need(n * sizeof(T))) return;
    out->resize(n);
    std::memcpy(out->data(), d.data() + pos, n * sizeof(T));
    pos += n * sizeof(T);
  }
  std::string_view Bytes(size_t n) {
    if (!Need(n)) return {};
    std::string_view v = d.substr(pos, n);
    pos += n;
    return v;
  }
};

}  // namespace

Result<TraceBlockIndex> DecodeTraceBlockIndexRaw(std::string_view raw) {
  TraceBlockIndex x;
  Cursor c{raw};
  uint32_t ns = c.U32();
  if (!c.ok || ns > raw.size() / 4) return DataLossError("trace block index: bad string count");
  x.strings.reserve(ns, raw.size());
  for (uint32_t i = 0; i < ns && c.ok; ++i) x.strings.push_back(c.Bytes(c.U32()));
  uint32_t nt = c.U32();
  if (!c.ok || nt > raw.size() / kTraceIndexTraceBytes) return DataLossError("trace block index: bad trace count");
  x.traces.resize(nt);
  for (BlockTrace& t : x.traces) {
    t.trace_id = std::string(c.Bytes(16));
    t.offset = c.U64();
    t.length = c.U32();
    t.first_span = c.U32();
    t.spans = c.U32();
    t.root_service = c.U32();
    t.root_name = c.U32();
    (void)c.U32();
    t.start_ns = static_cast<int64_t>(c.U64());
    t.end_ns = static_cast<int64_t>(c.U64());
  }
  uint32_t n = c.U32();
  if (!c.ok || n > raw.size() / 30) return DataLossError("trace block index: bad span count");
  c.Column(&x.service, n);
  c.Column(&x.name, n);
  c.Column(&x.kind, n);
  c.Column(&x.status, n);
  c.Column(&x.start_ns, n);
  c.Column(&x.duration_ns, n);
  c.Column(&x.attr_end, n);
  uint32_t na = c.U32();
  if (!c.ok || na > raw.size() / 8) return DataLossError("trace block index: bad attribute count");
  static_assert(sizeof(std::pair<uint32_t, uint32_t>) == 8);
  if (c.Need(size_t{na} * 8)) {
    x.attrs.resize(na);
    std::memcpy(static_cast<void*>(x.attrs.data()), raw.data() + c.pos, size_t{na} * 8);
    c.pos += size_t{na} * 8;
  }
  if (!c.ok) return DataLossError("trace block index: truncated");
  if (c.pos != raw.size()) return DataLossError("trace block index: trailing bytes");
  // Consistency: ids in range, traces cover the columns in order.
  if (ns == 0 || !x.strings[0].empty()) return DataLossError("trace block index: string 0 is not empty");
  uint32_t next = 0;
  for (const BlockTrace& t : x.traces) {
    if (t.first_span != next || t.spans > n - next || t.root_service >= ns || t.root_name >= ns) {
      return DataLossError("trace block index: bad trace entry");
    }
    next += t.spans;
  }
  if (next != n) return DataLossError("trace block index: traces do not cover the spans");
  uint32_t prev = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (x.service[i] >= ns || x.name[i] >= ns || x.attr_end[i] < prev || x.attr_end[i] > na) {
      return DataLossError("trace block index: bad span column entry");
    }
    prev = x.attr_end[i];
  }
  if (prev != na) return DataLossError("trace block index: attributes not covered");
  for (const auto& [kk, vv] : x.attrs) {
    if (kk >= ns || vv >= ns) return DataLossError("trace block index: bad attribute id");
  }
  return x;
}

Result<TraceBlockIndex> DecodeTraceBlockIndex(std::string_view frame) {
  TELKIT_ASSIGN_OR_RETURN(RawFrame raw, DecompressFrame(frame));
  return DecodeTraceBlockIndexRaw(raw.view());
}

Result<TraceBlockIndex> ReadTraceBlockIndex(FileSystem* fs, const std::string& path, uint64_t offset,
                                            uint64_t length) {
  TELKIT_ASSIGN_OR_RETURN(auto file, fs->NewReadableFile(path));
  if (length == 0) {
    TELKIT_ASSIGN_OR_RETURN(uint64_t size, file->Size());
    if (size < kTraceBlockMagic.size() + kTraceBlockFooterBytes)
      return DataLossError("trace block: " + path + " too short");
    std::string footer(kTraceBlockFooterBytes, '\0');
    TELKIT_ASSIGN_OR_RETURN(size_t n,
                            file->ReadAt(size - kTraceBlockFooterBytes, std::span<char>(footer.data(), footer.size())));
    if (n != footer.size()) return DataLossError("trace block: " + path + ": short footer read");
    TELKIT_RETURN_IF_ERROR(DecodeTraceBlockFooter(footer, &offset, &length).WithContext(path));
  }
  if (length > kMaxTraceFrameRawBytes) return DataLossError("trace block index: " + path + ": length too large");
  std::string buf(length, '\0');
  TELKIT_ASSIGN_OR_RETURN(size_t n, file->ReadAt(offset, std::span<char>(buf.data(), buf.size())));
  if (n != length) return DataLossError("trace block index: " + path + " ends before the index");
  auto r = DecodeTraceBlockIndex(buf);
  if (!r.ok()) return r.status().WithContext(path);
  return r;
}

}  // namespace telkit
