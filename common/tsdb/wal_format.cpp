#include "common/tsdb/wal_format.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/base/crc32c.h"

namespace telkit {
namespace {

void PutU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint16_t GetU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t GetU32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

}  // namespace

std::string WalSegmentName(uint32_t index) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08u", index);
  return buf;
}

bool ParseWalSegmentName(std::string_view name, uint32_t* index) {
  if (name.size() < 8 || name.size() > 10) return false;
  uint64_t v = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT32_MAX || WalSegmentName(static_cast<uint32_t>(v)) != name) return false;  // canonical only
  *index = static_cast<uint32_t>(v);
  return true;
}

void EncodeWalSegmentHeader(uint32_t index, uint8_t out[kWalSegmentHeaderSize]) {
  std::memcpy(out, kWalMagic.data(), kWalMagic.size());
  PutU16(out + 8, kWalVersion);
  PutU16(out + 10, 0);
  PutU32(out + 12, index);
  PutU32(out + 16, Crc32c(out, 16));
}

Result<uint32_t> DecodeWalSegmentHeader(const uint8_t in[kWalSegmentHeaderSize]) {
  if (std::memcmp(in, kWalMagic.data(), kWalMagic.size()) != 0) return DataLossError("not a wal segment (bad magic)");
  if (GetU32(in + 16) != Crc32c(in, 16)) return DataLossError("segment header checksum mismatch");
  if (GetU16(in + 8) != kWalVersion) {
    return UnimplementedError("wal segment version " + std::to_string(GetU16(in + 8)) + " is not supported");
  }
  if (GetU16(in + 10) != 0) return UnimplementedError("wal segment has unknown flags");
  return GetU32(in + 12);
}

void AppendWalFragment(std::string* out, WalFragmentType type, std::string_view payload) {
  uint8_t h[kWalFragmentHeaderSize];
  PutU16(h + 4, static_cast<uint16_t>(payload.size()));
  h[6] = static_cast<uint8_t>(type);
  uint32_t crc = Crc32cExtend(Crc32c(h + 4, 3), payload.data(), payload.size());
  PutU32(h, crc);
  out->append(reinterpret_cast<const char*>(h), sizeof h);
  out->append(payload);
}

uint64_t WalRecordEnd(uint64_t offset, uint64_t size) {
  uint64_t end = offset;
  uint64_t left = size;
  do {
    uint64_t room = kWalBlockSize - end % kWalBlockSize;
    if (room < kWalFragmentHeaderSize) end += room;  // padding
    uint64_t avail = kWalBlockSize - end % kWalBlockSize - kWalFragmentHeaderSize;
    uint64_t fragment = std::min(left, avail);
    end += kWalFragmentHeaderSize + fragment;
    left -= fragment;
  } while (left > 0);
  return end;
}

}  // namespace telkit
