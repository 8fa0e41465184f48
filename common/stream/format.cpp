#include "common/stream/format.h"

#include <cstring>

#include "common/base/crc32c.h"

namespace telkit {

void EncodeStreamHeader(const StreamHeader& header, uint8_t out[kStreamHeaderSize]) {
  std::memcpy(out, kStreamMagic.data(), kStreamMagic.size());
  PutU16(out + 8, header.version);
  PutU16(out + 10, header.flags);
  PutU64(out + 12, header.writer_id);
  PutU32(out + 20, Crc32c(out, 20));
}

bool LooksLikeStreamHeader(const uint8_t* in, size_t n) {
  return n >= kStreamMagic.size() && std::memcmp(in, kStreamMagic.data(), kStreamMagic.size()) == 0;
}

Result<StreamHeader> DecodeStreamHeader(const uint8_t in[kStreamHeaderSize]) {
  if (!LooksLikeStreamHeader(in, kStreamHeaderSize)) {
    return DataLossError("not a telkit stream (bad magic)");
  }
  if (GetU32(in + 20) != Crc32c(in, 20)) return DataLossError("stream header checksum mismatch");
  StreamHeader h;
  h.version = GetU16(in + 8);
  h.flags = GetU16(in + 10);
  h.writer_id = GetU64(in + 12);
  if (h.version != kStreamVersion) {
    return UnimplementedError("stream version " + std::to_string(h.version) + " is not supported (this build reads " +
                              std::to_string(kStreamVersion) + ")");
  }
  if (h.flags != 0) return UnimplementedError("stream header has unknown flags " + std::to_string(h.flags));
  return h;
}

void EncodeFrameHeader(const Frame& frame, uint8_t out[kFrameHeaderSize]) {
  std::memcpy(out, kFrameSync.data(), kFrameSync.size());
  out[4] = frame.signal;
  out[5] = frame.flags;
  out[6] = out[7] = 0;
  PutU32(out + 8, static_cast<uint32_t>(frame.payload.size()));
  PutU64(out + 12, frame.sequence);
  PutU64(out + 20, frame.time_unix_nano);
  PutU32(out + 28, Crc32c(frame.payload));
  PutU32(out + 32, Crc32c(out, 32));
}

Result<FrameHeader> DecodeFrameHeader(const uint8_t in[kFrameHeaderSize]) {
  if (std::memcmp(in, kFrameSync.data(), kFrameSync.size()) != 0) return DataLossError("bad frame sync bytes");
  if (GetU32(in + 32) != Crc32c(in, 32)) return DataLossError("frame header checksum mismatch");
  if (in[6] != 0 || in[7] != 0) return DataLossError("frame reserved bytes are not zero");
  FrameHeader h;
  h.signal = in[4];
  h.flags = in[5];
  h.payload_length = GetU32(in + 8);
  h.sequence = GetU64(in + 12);
  h.time_unix_nano = GetU64(in + 20);
  h.payload_crc = GetU32(in + 28);
  if (h.payload_length > kMaxPayloadLength) {
    return DataLossError("frame payload length " + std::to_string(h.payload_length) + " exceeds the format maximum");
  }
  if (h.flags & kFrameIncompatibleFlagsMask) {
    return UnimplementedError("frame has unknown incompatible flags " + std::to_string(h.flags));
  }
  return h;
}

std::string EncodeFrame(const Frame& frame) {
  std::string out(kFrameHeaderSize, '\0');
  EncodeFrameHeader(frame, reinterpret_cast<uint8_t*>(out.data()));
  out += frame.payload;
  return out;
}

void EncodeAck(uint64_t sequence, uint8_t out[kAckSize]) {
  std::memcpy(out, kAckSync.data(), kAckSync.size());
  PutU64(out + 4, sequence);
  PutU32(out + 12, Crc32c(out, 12));
}

Result<uint64_t> DecodeAck(const uint8_t in[kAckSize]) {
  if (std::memcmp(in, kAckSync.data(), kAckSync.size()) != 0) return DataLossError("bad ack sync bytes");
  if (GetU32(in + 12) != Crc32c(in, 12)) return DataLossError("ack checksum mismatch");
  return GetU64(in + 4);
}

}  // namespace telkit
