// Scrapes a set of targets on an interval, one thread a target, the way
// Prometheus' scrape manager does: each target at a fixed offset within the
// interval (a hash of its URL and labels, so load spreads and restarts keep
// the phase), results handed to one sink. Sync() replaces the target set:
// new targets start, kept ones go on undisturbed (their staleness state
// intact), removed ones stop and their series get stale markers.
//
// Thread-safe. The sink is called from the target threads, concurrently
// for different targets; it must be thread-safe and should not block long
// (a slow sink delays that target's next scrape, never another's).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/scrape/scraper.h"

namespace telkit {

// Receives every scrape's result. For a removed target it gets a result
// whose status is CANCELLED ("target removed") and whose series are the
// stale markers of everything that target had.
using ScrapeSink = std::function<void(const ScrapeTarget& target, ScrapeResult& result)>;

class ScrapeManager {
 public:
  explicit ScrapeManager(ScrapeSink sink);
  ~ScrapeManager();  // Stop()

  // Makes `targets` the scraped set (a target is identified by URL and
  // labels). REQUIRES: interval > 0. Options and interval apply to targets
  // started by this call; kept targets keep theirs.
  void Sync(const std::vector<ScrapeTarget>& targets, const ScrapeOptions& options,
            std::chrono::milliseconds interval);
  // Stops every target without stale markers (a restart resumes the series);
  // waits for scrapes in flight (at most their timeout). Idempotent.
  void Stop();
  size_t num_targets() const;

 private:
  struct Loop;
  static std::string Key(const ScrapeTarget& t);
  void Run(Loop* loop);

  ScrapeSink sink_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Loop>> loops_;  // by Key, guarded by mu_
};

}  // namespace telkit
