#include "common/pipeline/ack_tracker.h"

#include <algorithm>

namespace telkit {

uint64_t AckTracker::Begin(size_t input, uint64_t origin, uint64_t sequence) {
  std::lock_guard lock(mu_);
  const uint64_t id = next_id_++;
  const Key key{input, origin};
  connections_[key].push_back({id, sequence, false});
  where_.emplace(id, key);
  ++pending_;
  return id;
}

void AckTracker::Done(uint64_t id) {
  std::lock_guard lock(mu_);
  auto w = where_.find(id);
  if (w == where_.end()) return;
  const Key key = w->second;
  where_.erase(w);
  --pending_;
  auto c = connections_.find(key);
  std::deque<Entry>& entries = c->second;
  // Ids grow with arrival, so the deque is sorted by id.
  auto e = std::lower_bound(entries.begin(), entries.end(), id,
                            [](const Entry& entry, uint64_t v) { return entry.id < v; });
  if (e == entries.end() || e->id != id) return;
  e->done = true;
  bool acked = false;
  uint64_t last = 0;
  while (!entries.empty() && entries.front().done) {
    last = entries.front().sequence;
    acked = true;
    entries.pop_front();
  }
  if (acked) ack_(key.first, key.second, last);
  if (entries.empty()) connections_.erase(c);
}

size_t AckTracker::pending() const {
  std::lock_guard lock(mu_);
  return pending_;
}

}  // namespace telkit
