// Reading the telemetry stream from any endpoint (endpoint.h).
//
// A listening input accepts any number of writers at once; frames of one
// connection keep their order. A corrupt or truncated frame is reported with
// its byte offset and skipped (CorruptionPolicy::kSkip, the default: the
// reader resynchronises on the next valid frame header) or ends the input
// with DATA_LOSS (kFail). It never crashes the reader.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "common/base/status.h"
#include "common/stream/format.h"

namespace telkit {

enum class CorruptionPolicy { kSkip, kFail };

struct StreamInputOptions {
  CorruptionPolicy on_corruption = CorruptionPolicy::kSkip;
  // Frames with a larger payload are treated as corrupt (memory safety).
  uint32_t max_payload_bytes = 64u << 20;
  // Called for every corruption found (with kSkip too), from the thread that
  // reads the connection. Must be thread-safe for listening inputs.
  std::function<void(const Status&)> on_corruption_report;
  // Listening inputs: frames buffered across connections before readers block.
  uint64_t max_buffered_bytes = 64ull << 20;
  // Called with each stream header as it is read (tel-cat reproduces them).
  std::function<void(const StreamHeader&, uint64_t origin)> on_stream_header;
};

struct StreamInputStats {
  uint64_t frames_read = 0;
  uint64_t bytes_read = 0;
  uint64_t frames_corrupt = 0;
  uint64_t bytes_skipped = 0;
  uint64_t connections_accepted = 0;
  uint64_t connections_open = 0;
};

// Next() from one thread; Acknowledge(), Cancel() and Stats() from any.
class StreamInput {
 public:
  virtual ~StreamInput() = default;

  // The next frame; nullopt at the end of input (EOF of a pipe or file; a
  // listening input ends only after Cancel()). DATA_LOSS with kFail on
  // corruption, CANCELLED after Cancel().
  virtual Result<std::optional<Frame>> Next() = 0;
  // Declares `frame` and every earlier frame of its connection durable: sends
  // the ack record on sockets; no-op for pipes and files.
  virtual void Acknowledge(const Frame& frame) = 0;
  // Unblocks Next() and stops accepting connections.
  virtual void Cancel() = 0;
  virtual StreamInputStats Stats() const = 0;
};

Result<std::unique_ptr<StreamInput>> OpenStreamInput(std::string_view spec, const StreamInputOptions& options = {});

}  // namespace telkit
