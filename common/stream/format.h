// The telemetry stream's byte format: constants and pure encode/decode
// functions. The spec is docs/format/stream.md; change both together.
//
//   stream  = stream_header frame* (stream_header frame*)*   concatenation is valid
//   ack     = what a receiver sends back on a socket connection
// All integers are little-endian. Checksums are CRC-32C (common/base/crc32c.h).
// Thread-safe: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/status.h"
#include "common/otlp/signal.h"

namespace telkit {

// ---- stream header: 24 bytes
//  0  8  magic "\x89TELKIT\n"
//  8  2  version (kStreamVersion)
// 10  2  flags (none defined; a reader refuses a header with any bit set)
// 12  8  writer id: random per writer session; scopes sequence numbers
// 20  4  CRC-32C of bytes 0..19
inline constexpr std::array<uint8_t, 8> kStreamMagic = {0x89, 'T', 'E', 'L', 'K', 'I', 'T', '\n'};
inline constexpr uint16_t kStreamVersion = 1;
inline constexpr size_t kStreamHeaderSize = 24;

// ---- frame header: 36 bytes, then `payload_length` payload bytes
//  0  4  sync "\xF7TKF"
//  4  1  signal (common/otlp/signal.h)
//  5  1  flags: bits 0-3 incompatible (a reader refuses a frame with an unknown
//        one set), bits 4-7 compatible (ignored when unknown); none defined yet
//  6  2  reserved, zero
//  8  4  payload length
// 12  8  sequence number (per writer id, starts at 1, increases by 1)
// 20  8  receive time, Unix nanoseconds (when the first stage got the data)
// 28  4  CRC-32C of the payload
// 32  4  CRC-32C of bytes 0..31
inline constexpr std::array<uint8_t, 4> kFrameSync = {0xF7, 'T', 'K', 'F'};
inline constexpr size_t kFrameHeaderSize = 36;
inline constexpr uint8_t kFrameIncompatibleFlagsMask = 0x0F;
// No payload may exceed this, whatever a reader's own limit.
inline constexpr uint32_t kMaxPayloadLength = 1u << 30;

// ---- ack record: 16 bytes, receiver -> sender on socket connections
//  0  4  sync "\xF7TKA"
//  4  8  sequence: every frame of this connection's writer id with a
//        sequence <= this one is durable at the receiver
// 12  4  CRC-32C of bytes 0..11
inline constexpr std::array<uint8_t, 4> kAckSync = {0xF7, 'T', 'K', 'A'};
inline constexpr size_t kAckSize = 16;

struct StreamHeader {
  uint16_t version = kStreamVersion;
  uint16_t flags = 0;
  uint64_t writer_id = 0;
  bool operator==(const StreamHeader&) const = default;
};

// One unit of the stream: the payload is the protobuf request exactly as the
// first stage received it (or converted it, for JSON), never re-encoded.
struct Frame {
  uint8_t signal = 0;  // a Signal value, or an unknown one passed through
  uint8_t flags = 0;
  uint64_t sequence = 0;        // 0 = "let the writer assign the next one"
  uint64_t time_unix_nano = 0;  // 0 = "let the writer stamp the current time"
  std::string payload;
  // Which input connection delivered the frame (0 for pipes and files); only
  // meaningful to the StreamInput that produced it, for Acknowledge().
  uint64_t origin = 0;

  Signal signal_enum() const { return static_cast<Signal>(signal); }
};

// The decoded fixed part of a frame.
struct FrameHeader {
  uint8_t signal = 0;
  uint8_t flags = 0;
  uint32_t payload_length = 0;
  uint64_t sequence = 0;
  uint64_t time_unix_nano = 0;
  uint32_t payload_crc = 0;
};

void EncodeStreamHeader(const StreamHeader& header, uint8_t out[kStreamHeaderSize]);
// DATA_LOSS on bad magic or checksum; UNIMPLEMENTED for an unknown version or flags.
Result<StreamHeader> DecodeStreamHeader(const uint8_t in[kStreamHeaderSize]);
bool LooksLikeStreamHeader(const uint8_t* in, size_t n);  // magic matches (n >= 8)

// Fills in payload_length and payload_crc from `payload`.
void EncodeFrameHeader(const Frame& frame, uint8_t out[kFrameHeaderSize]);
// DATA_LOSS on bad sync, header checksum, nonzero reserved bytes or a length
// over kMaxPayloadLength; UNIMPLEMENTED for unknown incompatible flags.
Result<FrameHeader> DecodeFrameHeader(const uint8_t in[kFrameHeaderSize]);
// Header plus payload in one string (for tests and small writers).
std::string EncodeFrame(const Frame& frame);

void EncodeAck(uint64_t sequence, uint8_t out[kAckSize]);
// DATA_LOSS on bad sync or checksum.
Result<uint64_t> DecodeAck(const uint8_t in[kAckSize]);

// Little-endian helpers shared by the format code.
inline void PutU16(uint8_t* p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
inline void PutU32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = v >> (8 * i); }
inline void PutU64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; ++i) p[i] = v >> (8 * i); }
inline uint16_t GetU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
inline uint32_t GetU32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
inline uint64_t GetU64(const uint8_t* p) { return uint64_t{GetU32(p)} | uint64_t{GetU32(p + 4)} << 32; }

}  // namespace telkit
