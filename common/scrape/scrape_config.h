// otlp-recv's scrape configuration: the subset of Prometheus'
// `scrape_configs` YAML that telkit reads (docs/scrape.md), the targets it
// describes after relabelling, Prometheus' file_sd JSON (or YAML) target
// files, and ScrapeService, which scrapes every job and hands the results to
// one sink, re-reading file_sd files when they change.
//
//   global: {scrape_interval: 1m, scrape_timeout: 10s}
//   scrape_configs:
//     - job_name: node                  # required, unique
//       scrape_interval: 15s            # default: global's
//       scrape_timeout: 10s             # default: global's, at most the interval
//       metrics_path: /metrics
//       scheme: http                    # http | https
//       honor_labels: false
//       params: {module: [cpu]}
//       static_configs: [{targets: ["127.0.0.1:9100"], labels: {env: dev}}]
//       file_sd_configs: [{files: ["/etc/telkit/targets/*.json"], refresh_interval: 5m}]
//       relabel_configs: [...]          # on target labels (__address__, ...)
//       metric_relabel_configs: [...]   # on every scraped series
//
// Unknown keys are errors, as in Prometheus (a typo does not pass silently).
// Thread-safety: the config types are values; ScrapeService is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <condition_variable>

#include "common/base/status.h"
#include "common/model/labels.h"
#include "common/scrape/relabel.h"
#include "common/scrape/scrape_manager.h"
#include "common/scrape/scraper.h"

namespace telkit {

struct TargetGroup {
  std::vector<std::string> targets;  // host:port
  Labels labels;
  std::string source;                // the file it came from ("" for static)
};

struct ScrapeJobConfig {
  std::string job_name;
  std::chrono::milliseconds interval{std::chrono::minutes(1)};
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  std::string metrics_path = "/metrics";
  std::string scheme = "http";
  bool honor_labels = false;
  std::map<std::string, std::vector<std::string>> params;
  std::vector<TargetGroup> static_groups;
  std::vector<std::string> file_sd_files;  // paths or globs (last path component)
  std::chrono::milliseconds file_sd_refresh{std::chrono::minutes(5)};
  std::vector<RelabelRule> relabel;
  std::vector<RelabelRule> metric_relabel;
};

struct ScrapeConfigFile {
  std::vector<ScrapeJobConfig> jobs;
};

// Parses the YAML text. INVALID_ARGUMENT naming the key or job at fault.
Result<ScrapeConfigFile> ParseScrapeConfig(std::string_view yaml);
// Reads and parses a file; NOT_FOUND when it cannot be read.
Result<ScrapeConfigFile> LoadScrapeConfig(const std::string& path);

// "15s", "1m30s", "2h", "500ms" (Prometheus durations: ms s m h d w y).
Result<std::chrono::milliseconds> ParsePromDuration(std::string_view text);

// Prometheus' file_sd: a JSON (or YAML) list of {"targets": [...],
// "labels": {...}}. INVALID_ARGUMENT for anything else.
Result<std::vector<TargetGroup>> ParseFileSd(std::string_view text, const std::string& source);
// The files `patterns` name now (globs expanded, sorted).
std::vector<std::string> ExpandFileSdPatterns(const std::vector<std::string>& patterns);

// The targets of `job` for `groups`, as Prometheus builds them: the group's
// and job's labels plus __address__, __scheme__, __metrics_path__,
// __param_NAME, __scrape_interval__, __scrape_timeout__ (and
// __meta_filepath for file_sd), then relabel_configs; a dropped target or
// one with an empty __address__ is left out; labels starting with "__" are
// removed and `instance` defaults to __address__. Sorted by URL and labels,
// without duplicates.
std::vector<ScrapeTarget> BuildScrapeTargets(const ScrapeJobConfig& job, const std::vector<TargetGroup>& groups);

// Scrapes every job of a config (one ScrapeManager a job). file_sd files are
// checked for changes every second (mtime and size; at most every
// refresh_interval otherwise) and the job's targets re-synced; a file that
// cannot be read or parsed keeps the targets it gave before and is reported
// through `on_error`.
class ScrapeService {
 public:
  using ErrorSink = std::function<void(const Status& status)>;
  ScrapeService(ScrapeConfigFile config, ScrapeSink sink, ErrorSink on_error);
  ScrapeService(const ScrapeService&) = delete;
  ScrapeService& operator=(const ScrapeService&) = delete;
  ~ScrapeService();  // Stop()
  // Stops every job (no stale markers: a restart resumes the series). Idempotent.
  void Stop();
  size_t num_targets() const;
  // Replaces the configuration (SIGHUP): a job kept by name gets the new
  // settings and target set (targets kept go on undisturbed, removed ones
  // get stale markers); a job no longer present has all its targets staled
  // and stops; new jobs start. REQUIRES: not after Stop(), and not
  // concurrently with Stop().
  void Reload(ScrapeConfigFile config);
  // Re-reads the file_sd files now (what the watcher does on a change).
  // REQUIRES: not after Stop().
  void RefreshFileSd();

 private:
  struct Job;
  void Watch();
  void SyncJob(Job& job);

  ScrapeSink sink_;
  ErrorSink on_error_;
  std::vector<std::unique_ptr<Job>> jobs_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  mutable std::mutex refresh_mu_;  // guards jobs_ and started_: one refresh or reload at a time
  bool started_ = false;   // jobs synced once (guarded by refresh_mu_): changes re-sync
  std::thread watcher_;
};

}  // namespace telkit
