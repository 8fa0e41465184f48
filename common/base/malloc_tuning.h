// glibc malloc settings for daemons that pass large request buffers between
// threads, and giving a burst's memory back once a daemon is idle.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace telkit {

// Sets glibc's mmap and trim thresholds (which also turns off its dynamic
// adjustment) and the number of malloc arenas. No-op without glibc.
// REQUIRES: called from main() before any thread starts.
void TuneMalloc(size_t mmap_threshold, size_t trim_threshold, int max_arenas);

// Calls malloc_trim(0) once per idle period: after the daemon has seen no new
// work and reported itself idle for `idle_for`. Thread-compatible: one
// thread calls Tick(), every second or so.
class IdleMemoryTrimmer {
 public:
  explicit IdleMemoryTrimmer(std::chrono::milliseconds idle_for = std::chrono::seconds(2)) : idle_for_(idle_for) {}
  // `work_seen` is any counter that grows with work (requests, frames);
  // `idle` says nothing is queued. Returns true when it trimmed.
  bool Tick(uint64_t work_seen, bool idle);

 private:
  std::chrono::milliseconds idle_for_;
  uint64_t work_seen_ = 0;
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
  bool trimmed_ = false;
};

}  // namespace telkit
