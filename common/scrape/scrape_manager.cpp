#include "common/scrape/scrape_manager.h"

namespace telkit {

struct ScrapeManager::Loop {
  Loop(ScrapeTarget t, ScrapeOptions o, std::chrono::milliseconds i) : scraper(std::move(t), std::move(o)), interval(i) {}
  Scraper scraper;
  std::chrono::milliseconds interval;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;  // guarded by mu
};

ScrapeManager::ScrapeManager(ScrapeSink sink) : sink_(std::move(sink)) {}

ScrapeManager::~ScrapeManager() { Stop(); }

std::string ScrapeManager::Key(const ScrapeTarget& t) { return t.url + "\xff" + t.labels.ToString(); }

size_t ScrapeManager::num_targets() const {
  std::lock_guard lock(mu_);
  return loops_.size();
}

void ScrapeManager::Run(Loop* loop) {
  using Clock = std::chrono::steady_clock;
  const auto interval = loop->interval;
  // A stable offset within the interval: FNV-1a of the target's key.
  uint64_t h = 1469598103934665603ULL;
  for (char c : Key(loop->scraper.target())) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ULL;
  const auto period = static_cast<uint64_t>(interval.count());
  auto now_wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  // The first tick: the next wall-clock instant t with t % interval == offset.
  int64_t wait_ms = static_cast<int64_t>((h % period + period - static_cast<uint64_t>(now_wall) % period) % period);
  Clock::time_point next = Clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    {
      std::unique_lock lock(loop->mu);
      if (loop->cv.wait_until(lock, next, [&] { return loop->stop; })) return;
    }
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    ScrapeResult r = loop->scraper.Scrape(now_ms);
    sink_(loop->scraper.target(), r);
    // Skip ticks missed while scraping took longer than the interval.
    next += interval;
    while (next <= Clock::now()) next += interval;
  }
}

void ScrapeManager::Sync(const std::vector<ScrapeTarget>& targets, const ScrapeOptions& options,
                         std::chrono::milliseconds interval) {
  if (interval.count() <= 0) interval = std::chrono::milliseconds(1);
  std::map<std::string, const ScrapeTarget*> wanted;
  for (const ScrapeTarget& t : targets) wanted.emplace(Key(t), &t);
  std::vector<std::unique_ptr<Loop>> removed;
  {
    std::lock_guard lock(mu_);
    for (auto it = loops_.begin(); it != loops_.end();) {
      if (wanted.count(it->first) == 0) {
        removed.push_back(std::move(it->second));
        it = loops_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [key, target] : wanted) {
      if (loops_.count(key) != 0) continue;
      auto loop = std::make_unique<Loop>(*target, options, interval);
      Loop* raw = loop.get();
      loops_.emplace(key, std::move(loop));
      raw->thread = std::thread([this, raw] { Run(raw); });
    }
  }
  for (auto& loop : removed) {
    {
      std::lock_guard lock(loop->mu);
      loop->stop = true;
    }
    loop->cv.notify_all();
    loop->thread.join();
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    ScrapeResult r;
    r.timestamp_ms = now_ms;
    r.status = CancelledError("target removed");
    r.series = loop->scraper.StaleAll(now_ms);
    sink_(loop->scraper.target(), r);
  }
}

void ScrapeManager::Stop() {
  std::map<std::string, std::unique_ptr<Loop>> loops;
  {
    std::lock_guard lock(mu_);
    loops.swap(loops_);
  }
  for (auto& [key, loop] : loops) {
    {
      std::lock_guard lock(loop->mu);
      loop->stop = true;
    }
    loop->cv.notify_all();
  }
  for (auto& [key, loop] : loops) loop->thread.join();
}

}  // namespace telkit
