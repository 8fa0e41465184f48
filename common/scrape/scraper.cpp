#include "common/scrape/scraper.h"

#include <httplib.h>

#include <algorithm>
#include <cstdio>
#include <optional>

namespace telkit {
namespace {

using Clock = std::chrono::steady_clock;

// Stands for "no timestamp in the exposition" while parsing.
constexpr int64_t kNoTimestamp = INT64_MIN;

TimeSeries OneSample(Labels labels, int64_t t, double v) { return TimeSeries{std::move(labels), {{t, v}}, {}}; }

}  // namespace

Status SplitScrapeUrl(std::string_view url, std::string* base, std::string* path) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return InvalidArgumentError("scrape URL '" + std::string(url) + "' has no scheme");
  std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return InvalidArgumentError("scrape URL '" + std::string(url) + "': scheme must be http or https");
  }
  size_t host_start = scheme_end + 3;
  size_t slash = url.find('/', host_start);
  std::string_view host = url.substr(host_start, slash == std::string_view::npos ? std::string_view::npos : slash - host_start);
  if (host.empty()) return InvalidArgumentError("scrape URL '" + std::string(url) + "' has no host");
  *base = std::string(url.substr(0, host_start)) + std::string(host);
  *path = slash == std::string_view::npos ? "/metrics" : std::string(url.substr(slash));
  return OkStatus();
}

Scraper::Scraper(ScrapeTarget target, ScrapeOptions options)
    : target_(std::move(target)), options_(std::move(options)) {
  url_status_ = SplitScrapeUrl(target_.url, &base_url_, &path_);
}

Result<Labels> Scraper::WithTargetLabels(const Labels& exposed) const {
  Labels out = exposed;
  for (const Label& t : target_.labels) {
    std::string_view existing = out.Get(t.name);
    if (existing.empty()) {
      out.Set(t.name, t.value);
      continue;
    }
    if (options_.honor_labels) continue;  // the exposed value stays
    // Prometheus: the exposed label moves to exported_<name> (again prefixed
    // while that is taken too).
    std::string moved = "exported_" + t.name;
    while (out.Has(moved)) moved = "exported_" + moved;
    std::string value(existing);
    out.Set(moved, value);
    out.Set(t.name, t.value);
  }
  return out;
}

Status Scraper::Fetch(int64_t now_ms, ScrapeResult* result, std::vector<Labels>* tracked) {
  TELKIT_RETURN_IF_ERROR(url_status_);
  const Clock::time_point deadline = Clock::now() + options_.timeout;
  Status failure;
  std::optional<ExpositionParser> parser;
  size_t body_bytes = 0;

  auto on_batch = [&](ExpositionBatch& b) -> Status {
    for (TimeSeries& ts : b.series) {
      bool explicit_ts = false;
      for (Sample& s : ts.samples) {
        if (s.t == kNoTimestamp || !options_.honor_timestamps) {
          s.t = now_ms;
        } else {
          explicit_ts = true;
        }
      }
      for (Exemplar& e : ts.exemplars) {
        if (e.t == kNoTimestamp) e.t = now_ms;
      }
      TELKIT_ASSIGN_OR_RETURN(ts.labels, WithTargetLabels(ts.labels));
      result->samples_scraped += ts.samples.size();
      if (options_.metric_relabel && !options_.metric_relabel(ts.labels)) continue;
      if (!explicit_ts) tracked->push_back(ts.labels);
      result->samples_post_relabel += ts.samples.size();
      result->series.push_back(std::move(ts));
    }
    for (MetricMetadata& m : b.metadata) result->metadata.push_back(std::move(m));
    if (options_.sample_limit != 0 && result->samples_scraped > options_.sample_limit) {
      return ResourceExhaustedError("sample_limit of " + std::to_string(options_.sample_limit) + " exceeded");
    }
    return OkStatus();
  };

  try {
    httplib::Client client(base_url_);
    auto secs = std::chrono::duration_cast<std::chrono::microseconds>(options_.timeout).count();
    client.set_connection_timeout(secs / 1000000, secs % 1000000);
    client.set_read_timeout(secs / 1000000, secs % 1000000);
    client.set_write_timeout(secs / 1000000, secs % 1000000);
    client.set_decompress(true);
    char timeout_header[32];
    std::snprintf(timeout_header, sizeof timeout_header, "%g",
                  std::chrono::duration<double>(options_.timeout).count());
    httplib::Headers headers = {
        {"Accept", std::string(options_.enable_openmetrics ? kScrapeAcceptOpenMetrics : kScrapeAcceptText)},
        {"Accept-Encoding", "gzip"},
        {"User-Agent", "telkit/" TELKIT_VERSION},
        {"X-Prometheus-Scrape-Timeout-Seconds", timeout_header},
    };
    auto on_response = [&](const httplib::Response& response) {
      if (response.status != 200) {
        failure = UnavailableError("server returned HTTP status " + std::to_string(response.status));
        return false;
      }
      result->format = ExpositionFormatFromContentType(response.get_header_value("Content-Type"));
      ExpositionOptions o;
      o.format = result->format;
      o.on_error = ExpositionErrorPolicy::kStop;  // as Prometheus: a bad exposition fails the scrape
      o.default_timestamp_ms = kNoTimestamp;
      o.limits = options_.limits;
      o.batch_samples = 4096;
      parser.emplace(o, on_batch);
      return true;
    };
    auto on_content = [&](const char* data, size_t n) {
      body_bytes += n;
      if (options_.body_limit_bytes != 0 && body_bytes > options_.body_limit_bytes) {
        failure = ResourceExhaustedError("body exceeds the limit of " + std::to_string(options_.body_limit_bytes) + " bytes");
        return false;
      }
      if (Clock::now() > deadline) {
        failure = Status(StatusCode::kDeadlineExceeded, "scrape timed out");
        return false;
      }
      Status s = parser->Feed(std::string_view(data, n));
      if (!s.ok()) {
        failure = s;
        return false;
      }
      return true;
    };
    auto res = client.Get(path_, headers, on_response, on_content);
    if (!failure.ok()) return failure;
    if (!res) {
      std::string why = httplib::to_string(res.error());
      if (Clock::now() >= deadline || res.error() == httplib::Error::ConnectionTimeout) {
        return Status(StatusCode::kDeadlineExceeded, "scrape timed out (" + why + ")");
      }
      return UnavailableError(why);
    }
    if (!parser) return UnavailableError("no response");
    return parser->Finish();
  } catch (const std::exception& e) {
    return InternalError(std::string("scrape: ") + e.what());
  }
}

ScrapeResult Scraper::Scrape(int64_t now_ms) {
  ScrapeResult r;
  r.timestamp_ms = now_ms;
  const Clock::time_point start = Clock::now();
  std::vector<Labels> tracked;
  r.status = Fetch(now_ms, &r, &tracked);
  r.duration_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!r.status.ok()) {
    r.status = Status(r.status.code(), "scrape '" + target_.url + "': " + r.status.message());
    r.series.clear();
    r.metadata.clear();
    r.samples_scraped = 0;
    r.samples_post_relabel = 0;
    tracked.clear();
  }
  std::sort(tracked.begin(), tracked.end());
  tracked.erase(std::unique(tracked.begin(), tracked.end()), tracked.end());

  // Stale markers for what went missing; count what is new.
  std::vector<Labels> gone;
  std::set_difference(last_series_.begin(), last_series_.end(), tracked.begin(), tracked.end(), std::back_inserter(gone));
  uint64_t added = 0;
  if (r.status.ok()) {
    std::vector<Labels> fresh;
    std::set_difference(tracked.begin(), tracked.end(), last_series_.begin(), last_series_.end(), std::back_inserter(fresh));
    added = fresh.size();
  }
  for (Labels& l : gone) r.series.push_back(OneSample(std::move(l), now_ms, StaleNaN()));
  last_series_ = std::move(tracked);
  scraped_before_ = true;

  auto report = [&](std::string_view name, double v) {
    Labels l = target_.labels;
    l.Set(kMetricNameLabel, name);
    r.series.push_back(OneSample(std::move(l), now_ms, v));
  };
  report("up", r.status.ok() ? 1 : 0);
  report("scrape_duration_seconds", r.duration_seconds);
  report("scrape_samples_scraped", static_cast<double>(r.samples_scraped));
  report("scrape_samples_post_metric_relabeling", static_cast<double>(r.samples_post_relabel));
  report("scrape_series_added", static_cast<double>(added));
  return r;
}

std::vector<TimeSeries> Scraper::StaleAll(int64_t now_ms) {
  std::vector<TimeSeries> out;
  for (Labels& l : last_series_) out.push_back(OneSample(std::move(l), now_ms, StaleNaN()));
  last_series_.clear();
  if (scraped_before_) {
    for (std::string_view name : {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                                  "scrape_samples_post_metric_relabeling", "scrape_series_added"}) {
      Labels l = target_.labels;
      l.Set(kMetricNameLabel, name);
      out.push_back(OneSample(std::move(l), now_ms, StaleNaN()));
    }
  }
  scraped_before_ = false;
  return out;
}

}  // namespace telkit
