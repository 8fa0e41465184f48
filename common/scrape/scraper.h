// Scraping a /metrics endpoint the way Prometheus does: an HTTP GET that
// negotiates OpenMetrics or the Prometheus text format, bounded in time and
// body size, parsed as it streams in (common/expfmt), with the target's
// labels attached and Prometheus' report series added:
//   up                        1 when the scrape succeeded, else 0
//   scrape_duration_seconds   how long it took
//   scrape_samples_scraped    samples in the exposition (0 when it failed)
//   scrape_samples_post_metric_relabeling   those metric_relabel kept
//   scrape_series_added       series not in the previous successful scrape
// A series that was in the previous scrape and is missing now (or the whole
// previous scrape when this one failed) gets Prometheus' stale marker at the
// scrape time, so queries stop returning it at once instead of after the
// 5-minute lookback. Series exposed with explicit timestamps get no stale
// markers (Prometheus' default).
//
// Label conflicts between the exposition and the target labels follow
// Prometheus' honor_labels: false (default) renames the exposed label to
// exported_<name>; true keeps the exposed value.
//
// A Scraper belongs to one target and remembers its previous scrape.
// Thread-compatible: one scrape at a time; distinct Scrapers are independent.
#pragma once

#include <functional>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/expfmt/exposition.h"
#include "common/model/labels.h"
#include "common/model/series.h"

namespace telkit {

// What Prometheus sends: OpenMetrics first, then the text format.
inline constexpr std::string_view kScrapeAcceptOpenMetrics =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
inline constexpr std::string_view kScrapeAcceptText = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1";

struct ScrapeOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // the whole request
  size_t body_limit_bytes = 64 << 20;  // after decompression; 0 = no limit
  size_t sample_limit = 0;             // more samples fail the scrape; 0 = no limit
  bool enable_openmetrics = true;      // ask for OpenMetrics (exemplars, _created)
  bool honor_labels = false;
  bool honor_timestamps = true;        // false: every sample gets the scrape time
  // metric_relabel_configs: called with each scraped series' labels (target
  // labels attached); false drops the series. Must be thread-safe. Unset:
  // every series is kept.
  std::function<bool(Labels& labels)> metric_relabel;
  LabelLimits limits;
};

struct ScrapeTarget {
  std::string url;  // http(s)://host:port/path; "/metrics" when there is no path
  Labels labels;    // job, instance, ...: added to every series
};

struct ScrapeResult {
  int64_t timestamp_ms = 0;  // the scrape time
  Status status;             // OK, or why up is 0
  ExpositionFormat format = ExpositionFormat::kPrometheusText;  // what the target answered
  uint64_t samples_scraped = 0;
  uint64_t samples_post_relabel = 0;  // kept by metric_relabel
  double duration_seconds = 0;
  std::vector<TimeSeries> series;          // exposition, stale markers, then report series
  std::vector<MetricMetadata> metadata;
};

class Scraper {
 public:
  Scraper(ScrapeTarget target, ScrapeOptions options);

  // Scrapes once at `now_ms` (the timestamp of samples without one and of
  // the report series). Never fails as a call: a failed scrape is up == 0
  // with result.status saying why (UNAVAILABLE: connection or HTTP status;
  // DEADLINE_EXCEEDED; RESOURCE_EXHAUSTED: body or sample limit;
  // INVALID_ARGUMENT: the exposition, with its line).
  ScrapeResult Scrape(int64_t now_ms);

  // Stale markers at `now_ms` for every series of the last scrape (report
  // series included): for a target that is being removed.
  std::vector<TimeSeries> StaleAll(int64_t now_ms);

  const ScrapeTarget& target() const { return target_; }

 private:
  // Fetches and parses into `result`; the series get target labels attached.
  // `tracked` gets the series exposed without timestamps (sorted, unique).
  Status Fetch(int64_t now_ms, ScrapeResult* result, std::vector<Labels>* tracked);
  Result<Labels> WithTargetLabels(const Labels& exposed) const;

  ScrapeTarget target_;
  ScrapeOptions options_;
  std::string base_url_;  // scheme://host:port
  std::string path_;
  Status url_status_;
  // Series of the last scrape that get stale markers when they go missing
  // (sorted, unique; those exposed without a timestamp).
  std::vector<Labels> last_series_;
  bool scraped_before_ = false;
};

// Splits http(s)://host[:port][/path] into "scheme://host:port" and the path.
// INVALID_ARGUMENT for anything else.
Status SplitScrapeUrl(std::string_view url, std::string* base, std::string* path);

}  // namespace telkit
