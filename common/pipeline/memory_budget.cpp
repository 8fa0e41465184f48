#include "common/pipeline/memory_budget.h"

#include <algorithm>
#include <chrono>

namespace telkit {

void MemoryBudget::SetLimits(uint64_t soft_bytes, uint64_t hard_bytes) {
  {
    std::lock_guard lock(mu_);
    soft_ = soft_bytes;
    hard_ = hard_bytes;
  }
  cv_.notify_all();
}

void MemoryBudget::SetExternal(std::function<uint64_t()> external) {
  std::lock_guard lock(mu_);
  external_ = std::move(external);
}

void MemoryBudget::SetResident(std::function<uint64_t()> resident, std::function<void()> release_free,
                               uint64_t floor) {
  std::lock_guard lock(mu_);
  resident_floor_ = floor;
  resident_ = std::move(resident);
  release_free_ = std::move(release_free);
}

bool MemoryBudget::Acquire(uint64_t n) {
  std::unique_lock lock(mu_);
  bool counted = false;
  bool released = false;
  for (;;) {
    if (cancelled_) break;
    if (hard_ == 0) {  // no limit
      held_ += n;
      break;
    }
    const uint64_t in_use = held_ + External();
    bool resident_over = false;
    if (in_use < soft_ && in_use + n <= hard_) {
      resident_over = in_use > 0 && resident_ && resident_floor_ * 2 <= soft_ && resident_() >= soft_;
      if (resident_over && !released && release_free_) {
        released = true;  // once per pause: malloc_trim walks the heap
        release_free_();
        resident_over = resident_() >= soft_;
      }
      if (!resident_over) {
        held_ += n;
        break;
      }
    }
    if (!counted) {
      counted = true;
      ++pauses_;
      if (resident_over) ++resident_pauses_;
      ++waiting_;
    }
    // Releases notify; the external bytes go down unannounced, so look again soon.
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
  if (counted) --waiting_;
  return !cancelled_;
}

void MemoryBudget::ForceAcquire(uint64_t n) {
  std::lock_guard lock(mu_);
  held_ += n;
}

void MemoryBudget::Release(uint64_t n) {
  {
    std::lock_guard lock(mu_);
    held_ -= std::min(held_, n);
  }
  cv_.notify_all();
}

void MemoryBudget::Cancel() {
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
}

uint64_t MemoryBudget::held() const {
  std::lock_guard lock(mu_);
  return held_;
}

uint64_t MemoryBudget::in_use() const {
  std::lock_guard lock(mu_);
  return held_ + External();
}

uint64_t MemoryBudget::soft_limit() const {
  std::lock_guard lock(mu_);
  return soft_;
}

uint64_t MemoryBudget::hard_limit() const {
  std::lock_guard lock(mu_);
  return hard_;
}

int MemoryBudget::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_;
}

uint64_t MemoryBudget::resident_pauses() const {
  std::lock_guard lock(mu_);
  return resident_pauses_;
}

uint64_t MemoryBudget::pauses() const {
  std::lock_guard lock(mu_);
  return pauses_;
}

}  // namespace telkit
