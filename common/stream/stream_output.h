// Writing the telemetry stream to any endpoint (endpoint.h).
//
// Pipes and files are best effort: a frame is "delivered" once write(2)
// returned. On Unix sockets the receiver acknowledges frames once durable;
// the output keeps unacknowledged frames (up to `max_unacked_bytes`),
// reconnects with backoff after the peer goes away and resends them, so a
// restart of the next stage loses nothing (it may see duplicates, which the
// stores ignore). docs/format/stream.md describes the protocol.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "common/base/status.h"
#include "common/stream/format.h"

namespace telkit {

struct StreamOutputOptions {
  uint64_t writer_id = 0;  // 0 = random
  // Socket outputs: Write() blocks while this many bytes await an ack.
  uint64_t max_unacked_bytes = 256ull << 20;
};

struct StreamOutputStats {
  uint64_t frames_written = 0;
  uint64_t bytes_written = 0;
  uint64_t frames_acked = 0;      // sockets only
  uint64_t unacked_bytes = 0;     // sockets only
  uint64_t reconnects = 0;        // sockets only
  bool connected = false;
};

// Thread-compatible: one writer thread at a time (the owner serialises calls).
class StreamOutput {
 public:
  virtual ~StreamOutput() = default;

  // Writes `frame`: assigns the next sequence number when frame.sequence is 0
  // and stamps the current time when frame.time_unix_nano is 0. Blocks while a
  // socket output's unacked buffer is full (backpressure) or while a socket
  // output has no peer. Errors: UNAVAILABLE/ RESOURCE_EXHAUSTED from the OS for
  // pipes and files (EPIPE, ENOSPC), CANCELLED after Cancel().
  virtual Status Write(Frame frame) = 0;
  // Starts a new stream in the output: writes a stream header with
  // `writer_id` and continues sequence numbers from whatever frames say.
  // Used when copying a stream faithfully (tel-cat), not by daemons.
  virtual Status StartStream(uint64_t writer_id) = 0;
  // Blocks until every written frame reached the OS and, on sockets, was
  // acknowledged, or `timeout_ms` passed (DEADLINE_EXCEEDED).
  virtual Status Drain(int timeout_ms) = 0;
  // Makes blocked and future Write() calls return CANCELLED (for shutdown).
  virtual void Cancel() = 0;
  virtual StreamOutputStats Stats() const = 0;
};

Result<std::unique_ptr<StreamOutput>> OpenStreamOutput(std::string_view spec, const StreamOutputOptions& options = {});

}  // namespace telkit
