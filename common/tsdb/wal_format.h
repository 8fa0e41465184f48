// The write-ahead log's byte format: constants and pure encode/decode
// functions. The spec is docs/format/tsdb-wal.md; change both together.
//
//   wal/        one directory of segment files named by index, "00000001"...
//   segment   = block*                       at most the configured size
//   block     = 32 KiB; block 0 begins with the 20-byte segment header
//   block     = fragment* padding            padding: < 7 zero bytes
//   fragment  = crc:u32 | length:u16 | type:u8 | payload[length]
//   record    = FULL | FIRST MIDDLE* LAST     never spans two segments
// All integers are little-endian. crc is CRC-32C (common/base/crc32c.h) of
// the length and type bytes followed by the payload.
// Thread-safe: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace telkit {

inline constexpr size_t kWalBlockSize = 32 * 1024;

// ---- segment header: 20 bytes at offset 0 of every segment
//  0  8  magic "\x89TKWAL\r\n"
//  8  2  version (kWalVersion)
// 10  2  flags: none defined; a reader refuses a header with any bit set
// 12  4  segment index: equals the number in the file name
// 16  4  CRC-32C of bytes 0..15
inline constexpr std::array<uint8_t, 8> kWalMagic = {0x89, 'T', 'K', 'W', 'A', 'L', '\r', '\n'};
inline constexpr uint16_t kWalVersion = 1;
inline constexpr size_t kWalSegmentHeaderSize = 20;

// ---- fragment header: 7 bytes, then `length` payload bytes
//  0  4  CRC-32C of bytes 4..6 and the payload
//  4  2  payload length; the fragment ends in the block it starts in
//  6  1  type (WalFragmentType)
inline constexpr size_t kWalFragmentHeaderSize = 7;

enum class WalFragmentType : uint8_t {
  kZero = 0,  // never written: zero bytes read as this are unwritten space
  kFull = 1,
  kFirst = 2,
  kMiddle = 3,
  kLast = 4,
};

// Segment file names: the index in 8 decimal digits (more when it needs them).
std::string WalSegmentName(uint32_t index);
// The index of a segment file name, or false when `name` is not one.
bool ParseWalSegmentName(std::string_view name, uint32_t* index);

void EncodeWalSegmentHeader(uint32_t index, uint8_t out[kWalSegmentHeaderSize]);
// The segment index. DATA_LOSS for a bad magic or checksum, UNIMPLEMENTED
// for another version or unknown flags.
Result<uint32_t> DecodeWalSegmentHeader(const uint8_t in[kWalSegmentHeaderSize]);

// Appends one fragment (header and payload). REQUIRES: payload.size() <= 65535.
void AppendWalFragment(std::string* out, WalFragmentType type, std::string_view payload);

// The bytes a record of `size` bytes occupies when it starts at segment
// offset `offset`: fragment headers, payload, and the padding of any block
// tail too short for a header that it skips first.
uint64_t WalRecordEnd(uint64_t offset, uint64_t size);

}  // namespace telkit
