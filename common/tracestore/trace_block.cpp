#include "common/tracestore/trace_block.h"

#include <zstd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "common/base/crc32c.h"

namespace telkit {
namespace {

void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
               static_cast<char>(v >> 24)};
  out->append(b, 4);
}
uint32_t GetU32(const char* p) {
  auto u = [&](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return u(0) | u(1) << 8 | u(2) << 16 | u(3) << 24;
}

}  // namespace

std::string TraceBlockFileName(uint64_t block) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "B%08llu.tblk", static_cast<unsigned long long>(block));
  return buf;
}

std::string EncodeTraceFrame(std::span<const SpanRecord* const> spans, int zstd_level) {
  std::string raw;
  for (const SpanRecord* r : spans) {
    PutU32(&raw, static_cast<uint32_t>(r->otlp.size()));
    raw.append(r->otlp);
  }
  std::string out(kTraceFrameHeaderBytes + ZSTD_compressBound(raw.size()), '\0');
  // One context per thread: ZSTD_compress would allocate (and free) about
  // a megabyte of state for every trace.
  static thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  size_t n = ZSTD_compressCCtx(cctx.get(), out.data() + kTraceFrameHeaderBytes, out.size() - kTraceFrameHeaderBytes,
                               raw.data(), raw.size(), zstd_level);
  // ZSTD_compress cannot fail with a bound-sized buffer and a valid level.
  out.resize(kTraceFrameHeaderBytes + n);
  std::string header;
  PutU32(&header, static_cast<uint32_t>(n));
  PutU32(&header, Crc32c(out.data() + kTraceFrameHeaderBytes, n));
  PutU32(&header, static_cast<uint32_t>(raw.size()));
  std::memcpy(out.data(), header.data(), kTraceFrameHeaderBytes);
  return out;
}

Result<std::vector<std::string>> DecodeTraceFrame(std::string_view frame) {
  if (frame.size() < kTraceFrameHeaderBytes) return DataLossError("trace frame: short header");
  uint32_t clen = GetU32(frame.data()), crc = GetU32(frame.data() + 4), rlen = GetU32(frame.data() + 8);
  if (frame.size() - kTraceFrameHeaderBytes != clen) return DataLossError("trace frame: length mismatch");
  const char* c = frame.data() + kTraceFrameHeaderBytes;
  if (Crc32c(c, clen) != crc) return DataLossError("trace frame: checksum mismatch");
  if (rlen > kMaxTraceFrameRawBytes) return DataLossError("trace frame: raw length too large");
  std::string raw(rlen, '\0');
  static thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  size_t n = ZSTD_decompressDCtx(dctx.get(), raw.data(), raw.size(), c, clen);
  if (ZSTD_isError(n) || n != rlen) return DataLossError("trace frame: zstd: bad data");
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

}  // namespace telkit
