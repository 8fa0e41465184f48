// Acknowledges input frames in the order the stream protocol requires
// (docs/format/stream.md "Acknowledgements"): an ack record says that a
// frame and every earlier frame of its connection are durable, but frames
// finish in any order here (traces wait in one batch while logs leave in
// another). The tracker remembers, per input connection, the frames not yet
// finished in arrival order, and acknowledges the longest finished prefix.
// Thread-safety: every method is safe from any thread. The ack function is
// called with the tracker's lock held, so acks of one connection go out in
// order; it must not call back into the tracker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace telkit {

class AckTracker {
 public:
  // Called to acknowledge `sequence` (and everything before it) on
  // connection `origin` of input number `input`.
  using AckFn = std::function<void(size_t input, uint64_t origin, uint64_t sequence)>;
  explicit AckTracker(AckFn ack) : ack_(std::move(ack)) {}

  // Registers a frame read from `input`/`origin` with `sequence`; returns its
  // id for Done(). Frames of one connection must be registered in the order
  // they were read.
  uint64_t Begin(size_t input, uint64_t origin, uint64_t sequence);
  // Marks the frame finished (delivered to every output, or dropped by
  // policy) and acknowledges what became a finished prefix.
  // REQUIRES: `id` came from Begin and was not finished before.
  void Done(uint64_t id);

  // Frames registered and not finished.
  size_t pending() const;

 private:
  using Key = std::pair<size_t, uint64_t>;  // input, origin
  struct Entry {
    uint64_t id;
    uint64_t sequence;
    bool done;
  };

  AckFn ack_;
  mutable std::mutex mu_;
  uint64_t next_id_ = 1;
  size_t pending_ = 0;
  std::map<Key, std::deque<Entry>> connections_;
  std::unordered_map<uint64_t, Key> where_;
};

}  // namespace telkit
