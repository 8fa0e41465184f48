#include "common/base/malloc_tuning.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace telkit {

void TuneMalloc(size_t mmap_threshold, size_t trim_threshold, int max_arenas) {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim_threshold));
  mallopt(M_ARENA_MAX, max_arenas);
#endif
}

bool IdleMemoryTrimmer::Tick(uint64_t work_seen, bool idle) {
  const auto now = std::chrono::steady_clock::now();
  if (work_seen != work_seen_ || !idle) {
    work_seen_ = work_seen;
    last_activity_ = now;
    trimmed_ = false;
    return false;
  }
  if (trimmed_ || now - last_activity_ < idle_for_) return false;
  trimmed_ = true;
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  return true;
}

}  // namespace telkit
