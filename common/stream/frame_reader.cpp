#include "common/stream/frame_reader.h"

#include <algorithm>
#include <cstring>

#include "common/base/crc32c.h"
#include "common/base/fd.h"

namespace telkit {
namespace {

constexpr size_t kReadChunk = 256 << 10;

}  // namespace

FrameReader::FrameReader(int fd, const StreamInputOptions& options, int cancel_fd, uint64_t origin)
    : fd_(fd), cancel_fd_(cancel_fd), origin_(origin), options_(options) {}

Result<bool> FrameReader::Fill(size_t n) {
  while (Available() < n) {
    if (eof_) return false;
    if (pos_ > 0 && (pos_ >= buf_.size() / 2 || buf_.size() + kReadChunk > buf_.capacity())) {
      buf_.erase(0, pos_);  // compact: keep only unread bytes
      base_offset_ += pos_;
      pos_ = 0;
    }
    size_t want = std::max(kReadChunk, n - Available());
    size_t old = buf_.size();
    buf_.resize(old + want);
    Result<size_t> got = ReadSome(fd_, buf_.data() + old, want, cancel_fd_);
    buf_.resize(old + (got.ok() ? *got : 0));
    if (!got.ok()) return got.status();
    if (*got == 0) eof_ = true;
    stats_.bytes_read += got.ok() ? *got : 0;
  }
  return true;
}

Status FrameReader::Corrupt(const std::string& what) {
  ++stats_.frames_corrupt;
  Status s = DataLossError("corrupt stream at offset " + std::to_string(offset()) + ": " + what);
  if (options_.on_corruption_report) options_.on_corruption_report(s);
  if (options_.on_corruption == CorruptionPolicy::kFail) return s;
  return Resync();
}

Status FrameReader::Resync() {
  uint64_t start = offset();
  ++pos_;
  for (;;) {
    // Find the next byte that could start a frame (0xF7) or a stream header (0x89).
    size_t i = 0;
    while (i < Available() && *At(i) != kFrameSync[0] && *At(i) != kStreamMagic[0]) ++i;
    pos_ += i;
    if (Available() == 0) {
      TELKIT_ASSIGN_OR_RETURN(bool more, Fill(1));
      if (!more) break;
      continue;
    }
    size_t need = *At(0) == kFrameSync[0] ? kFrameHeaderSize : kStreamHeaderSize;
    TELKIT_ASSIGN_OR_RETURN(bool enough, Fill(need));
    if (!enough) {  // too few bytes left to hold anything valid
      pos_ = buf_.size();
      break;
    }
    if (*At(0) == kFrameSync[0] ? DecodeFrameHeader(At(0)).ok() : DecodeStreamHeader(At(0)).ok()) {
      in_stream_ = *At(0) == kFrameSync[0];  // frames after a lost header are still good
      break;
    }
    ++pos_;
  }
  stats_.bytes_skipped += offset() - start;
  return OkStatus();
}

Result<std::optional<Frame>> FrameReader::Next() {
  for (;;) {
    TELKIT_ASSIGN_OR_RETURN(bool any, Fill(1));
    if (!any) return std::optional<Frame>();
    if (!in_stream_ || LooksLikeStreamHeader(At(0), std::min<size_t>(Available(), kStreamMagic.size()))) {
      TELKIT_ASSIGN_OR_RETURN(bool full, Fill(kStreamHeaderSize));
      if (offset() == 0 && !LooksLikeStreamHeader(At(0), Available())) {
        return DataLossError("input is not a telkit stream (no stream header at offset 0)");
      }
      if (!full) {
        TELKIT_RETURN_IF_ERROR(Corrupt("truncated stream header (" + std::to_string(Available()) + " of " +
                                       std::to_string(kStreamHeaderSize) + " bytes)"));
        continue;
      }
      Result<StreamHeader> header = DecodeStreamHeader(At(0));
      if (!header.ok()) {
        TELKIT_RETURN_IF_ERROR(Corrupt(header.status().message()));
        continue;
      }
      if (options_.on_stream_header) options_.on_stream_header(*header, origin_);
      pos_ += kStreamHeaderSize;
      in_stream_ = true;
      continue;
    }
    TELKIT_ASSIGN_OR_RETURN(bool have_header, Fill(kFrameHeaderSize));
    if (!have_header) {
      TELKIT_RETURN_IF_ERROR(Corrupt("truncated frame header (" + std::to_string(Available()) + " of " +
                                     std::to_string(kFrameHeaderSize) + " bytes)"));
      continue;
    }
    Result<FrameHeader> header = DecodeFrameHeader(At(0));
    if (!header.ok()) {
      TELKIT_RETURN_IF_ERROR(Corrupt(header.status().message()));
      continue;
    }
    if (header->payload_length > options_.max_payload_bytes) {
      TELKIT_RETURN_IF_ERROR(Corrupt("frame payload of " + std::to_string(header->payload_length) +
                                     " bytes exceeds the limit of " + std::to_string(options_.max_payload_bytes)));
      continue;
    }
    size_t total = kFrameHeaderSize + header->payload_length;
    TELKIT_ASSIGN_OR_RETURN(bool have_all, Fill(total));
    if (!have_all) {
      TELKIT_RETURN_IF_ERROR(Corrupt("truncated frame (" + std::to_string(Available()) + " of " +
                                     std::to_string(total) + " bytes)"));
      continue;
    }
    const char* payload = reinterpret_cast<const char*>(At(kFrameHeaderSize));
    if (Crc32c(payload, header->payload_length) != header->payload_crc) {
      ++stats_.frames_corrupt;
      Status s = DataLossError("corrupt stream at offset " + std::to_string(offset()) +
                               ": payload checksum mismatch in frame " + std::to_string(header->sequence));
      if (options_.on_corruption_report) options_.on_corruption_report(s);
      if (options_.on_corruption == CorruptionPolicy::kFail) return s;
      pos_ += total;  // the header is intact, so its length can be trusted
      stats_.bytes_skipped += total;
      continue;
    }
    Frame frame;
    frame.signal = header->signal;
    frame.flags = header->flags;
    frame.sequence = header->sequence;
    frame.time_unix_nano = header->time_unix_nano;
    frame.payload.assign(payload, header->payload_length);
    frame.origin = origin_;
    pos_ += total;
    ++stats_.frames_read;
    return std::optional<Frame>(std::move(frame));
  }
}

}  // namespace telkit
