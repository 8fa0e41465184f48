// The memory limiter of tel-batch: counts the bytes of frames the pipeline
// holds (read and queued, in open batches, waiting for their outputs) and
// makes the readers wait before taking more. Over the soft limit no input
// is read at all, so backpressure reaches the writers (acks stop on
// sockets, the pipe fills); and a frame is taken only when it fits under the
// hard limit, so what is held never exceeds it.
//
// Bytes held elsewhere on the pipeline's behalf — socket outputs' resend
// buffers, which keep a copy of each frame until the peer acknowledges it —
// come from an `external` function and count towards the soft limit (in use
// = held + external): a downstream that stops acknowledging stops the
// reading too. They are bounded separately (each socket output buffers at
// most the hard limit), see docs/tel-batch.md "Memory".
//
// What the count leaves out (input buffers, copies made while encoding,
// memory malloc keeps after a free, the program itself) is watched through
// the process's resident set: while it is at or above the soft limit and
// anything is in use, readers wait too, after asking malloc to give freed
// memory back once per pause. With nothing in use they never wait (there
// would be nothing to wait for). This applies only while the soft limit is
// at least twice the process's resident set when it started (`floor`):
// below that the limits cannot bound the whole process, and holding the
// readers on the resident set would only serialise frames. So a process under sustained overload
// stays near the soft limit, below the hard one (tests/cli/tel-batch.bats
// "overload").
// Thread-safety: every method is safe from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace telkit {

class MemoryBudget {
 public:
  // 0 for both: no limit (the memory_limiter processor is not in the chain).
  // REQUIRES: soft <= hard.
  MemoryBudget(uint64_t soft_bytes, uint64_t hard_bytes) : soft_(soft_bytes), hard_(hard_bytes) {}

  // REQUIRES: soft <= hard (0 and 0 for no limit).
  void SetLimits(uint64_t soft_bytes, uint64_t hard_bytes);
  // Bytes held outside, polled while readers wait (every 20 ms). Must be
  // thread-safe and fast. REQUIRES: called before the budget is in use.
  void SetExternal(std::function<uint64_t()> external);
  // The process's resident bytes, polled before each frame is taken and
  // while readers wait (must be cheap: cache it), and what gives freed
  // memory back to the system (malloc_trim). REQUIRES: called before use.
  void SetResident(std::function<uint64_t()> resident, std::function<void()> release_free, uint64_t floor);

  // Blocks until `n` more bytes fit (in use below the soft limit, and in use
  // plus n at most the hard limit), then takes them. Returns
  // false, taking nothing, once Cancel() was called.
  // REQUIRES: n <= the hard limit (else it waits until cancelled).
  bool Acquire(uint64_t n);
  // Takes `n` bytes without waiting (what a reader holds when it is told to stop).
  void ForceAcquire(uint64_t n);
  void Release(uint64_t n);
  // Makes waiting and future Acquire() calls return false.
  void Cancel();

  uint64_t held() const;
  uint64_t in_use() const;  // held + external
  uint64_t soft_limit() const;
  uint64_t hard_limit() const;
  // Readers waiting now, and how often one had to wait.
  int waiting() const;
  uint64_t pauses() const;
  // How often a reader waited because of the resident set alone.
  uint64_t resident_pauses() const;

 private:
  uint64_t External() const { return external_ ? external_() : 0; }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t soft_;
  uint64_t hard_;
  uint64_t held_ = 0;
  int waiting_ = 0;
  uint64_t pauses_ = 0;
  bool cancelled_ = false;
  std::function<uint64_t()> external_;
  std::function<uint64_t()> resident_;
  std::function<void()> release_free_;
  uint64_t resident_floor_ = 0;
  uint64_t resident_pauses_ = 0;
};

}  // namespace telkit
