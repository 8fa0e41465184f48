// Decodes stream headers and frames from one byte source (a pipe, file or
// connected socket), tolerating corruption as StreamInputOptions says.
// Thread-compatible: one thread calls Next().
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/base/status.h"
#include "common/stream/format.h"
#include "common/stream/stream_input.h"

namespace telkit {

class FrameReader {
 public:
  // Reads from `fd` (not owned). `cancel_fd` >= 0 makes blocked reads return
  // CANCELLED once it becomes readable. Frames get `origin` as their origin.
  FrameReader(int fd, const StreamInputOptions& options, int cancel_fd = -1, uint64_t origin = 0);

  // The next valid frame, or nullopt at end of input. Corruption is reported
  // through options.on_corruption_report with the byte offset, then skipped
  // (kSkip) or returned as DATA_LOSS (kFail). Input that does not start with
  // a stream header is always DATA_LOSS ("not a telkit stream").
  Result<std::optional<Frame>> Next();

  // Byte offset of the next unread byte of the input.
  uint64_t offset() const { return base_offset_ + pos_; }
  const StreamInputStats& stats() const { return stats_; }

 private:
  // Makes at least `n` bytes available at pos_; false when the input ends first.
  Result<bool> Fill(size_t n);
  // Handles a corruption found at offset(): reports it, and for kSkip moves
  // pos_ to the next position that decodes as a frame or stream header.
  Status Corrupt(const std::string& what);
  Status Resync();
  size_t Available() const { return buf_.size() - pos_; }
  const uint8_t* At(size_t i) const { return reinterpret_cast<const uint8_t*>(buf_.data()) + pos_ + i; }

  int fd_;
  int cancel_fd_;
  uint64_t origin_;
  StreamInputOptions options_;
  std::string buf_;
  size_t pos_ = 0;
  uint64_t base_offset_ = 0;  // input offset of buf_[0]
  bool eof_ = false;
  bool in_stream_ = false;  // a stream header has been read
  StreamInputStats stats_;
};

}  // namespace telkit
