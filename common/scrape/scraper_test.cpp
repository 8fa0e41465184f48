#include "common/scrape/scraper.h"
#include "common/scrape/scrape_manager.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "common/codec/gzip.h"

namespace telkit {
namespace {

using namespace std::chrono_literals;

// A real HTTP server on 127.0.0.1 whose /metrics answer the test sets.
class MetricsServer {
 public:
  MetricsServer() {
    server_.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      last_accept_ = req.get_header_value("Accept");
      last_timeout_header_ = req.get_header_value("X-Prometheus-Scrape-Timeout-Seconds");
      if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
      res.status = status_;
      bool om = openmetrics_body_.size() && last_accept_.find("openmetrics") != std::string::npos;
      std::string body = om ? openmetrics_body_ : text_body_;
      if (gzip_) {
        // Compressed here, with a content type httplib does not compress
        // again on its own (it does so for text/*).
        res.set_header("Content-Encoding", "gzip");
        res.set_content(GzipCompress(body), "application/openmetrics-text; version=1.0.0; charset=utf-8");
        return;
      }
      res.set_content(body, om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                               : "text/plain; version=0.0.4; charset=utf-8");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~MetricsServer() {
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/metrics"; }
  void Set(std::string text, std::string om = "") {
    std::lock_guard lock(mu_);
    text_body_ = std::move(text);
    openmetrics_body_ = std::move(om);
  }
  void SetStatus(int s) { std::lock_guard lock(mu_); status_ = s; }
  void SetDelay(std::chrono::milliseconds d) { std::lock_guard lock(mu_); delay_ = d; }
  void SetGzip(bool g) { std::lock_guard lock(mu_); gzip_ = g; }
  std::string last_accept() { std::lock_guard lock(mu_); return last_accept_; }
  std::string last_timeout_header() { std::lock_guard lock(mu_); return last_timeout_header_; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::string text_body_, openmetrics_body_, last_accept_, last_timeout_header_;
  int status_ = 200;
  bool gzip_ = false;
  std::chrono::milliseconds delay_{0};
};

ScrapeOptions With(void (*f)(ScrapeOptions&)) {
  ScrapeOptions o;
  f(o);
  return o;
}

const Labels kTarget{{"job", "node"}, {"instance", "host-1:9100"}};

// The series of a result by their text form; value of the last sample.
std::map<std::string, Sample> ByName(const ScrapeResult& r) {
  std::map<std::string, Sample> out;
  for (const TimeSeries& ts : r.series) {
    EXPECT_FALSE(ts.samples.empty());
    out[ts.labels.ToString()] = ts.samples.back();
  }
  return out;
}

double Report(const ScrapeResult& r, std::string_view name) {
  Labels l = kTarget;
  l.Set(kMetricNameLabel, name);
  auto m = ByName(r);
  auto it = m.find(l.ToString());
  EXPECT_NE(it, m.end()) << name;
  return it == m.end() ? -1 : it->second.v;
}

class ScraperTest : public ::testing::Test {
 protected:
  void SetUp() override { signal(SIGPIPE, SIG_IGN); }
  MetricsServer server_;
};

TEST_F(ScraperTest, PrometheusTextWithTargetLabelsAndReportSeries) {
  server_.Set(
      "# HELP requests_total Requests.\n# TYPE requests_total counter\n"
      "requests_total{code=\"200\"} 10\nrequests_total{code=\"500\"} 1\n"
      "temperature 21.5 1000\n");
  Scraper s({server_.Url(), kTarget}, With([](ScrapeOptions& o) { o.enable_openmetrics = false; }));
  ScrapeResult r = s.Scrape(5000);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.format, ExpositionFormat::kPrometheusText);
  EXPECT_NE(server_.last_accept().find("text/plain;version=0.0.4"), std::string::npos);
  EXPECT_EQ(server_.last_accept().find("openmetrics"), std::string::npos);
  EXPECT_EQ(server_.last_timeout_header(), "10");
  auto m = ByName(r);
  EXPECT_EQ(m.at("requests_total{code=\"200\", instance=\"host-1:9100\", job=\"node\"}"), (Sample{5000, 10}));
  EXPECT_EQ(m.at("temperature{instance=\"host-1:9100\", job=\"node\"}"), (Sample{1000, 21.5}));  // honored timestamp
  EXPECT_EQ(r.samples_scraped, 3u);
  EXPECT_EQ(Report(r, "up"), 1);
  EXPECT_EQ(Report(r, "scrape_samples_scraped"), 3);
  EXPECT_EQ(Report(r, "scrape_series_added"), 2);  // the one with a timestamp is not tracked
  EXPECT_GT(Report(r, "scrape_duration_seconds"), 0);
  ASSERT_EQ(r.metadata.size(), 1u);
  EXPECT_EQ(r.metadata[0].type, MetricFamilyType::kCounter);
}

TEST_F(ScraperTest, NegotiatesOpenMetrics) {
  server_.Set("plain_text_only 1\n",
              "# TYPE rpc counter\nrpc_total 7 # {trace_id=\"abc\"} 1 1.5\n# EOF\n");
  Scraper s({server_.Url(), kTarget}, {});
  ScrapeResult r = s.Scrape(9000);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.format, ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(server_.last_accept().rfind("application/openmetrics-text;version=1.0.0", 0), 0u);
  ASSERT_FALSE(r.series.empty());
  EXPECT_EQ(r.series[0].labels.MetricName(), "rpc_total");
  ASSERT_EQ(r.series[0].exemplars.size(), 1u);
  EXPECT_EQ(r.series[0].exemplars[0].t, 1500);
}

TEST_F(ScraperTest, StaleMarkersForSeriesThatDisappear) {
  server_.Set("a 1\nb 2\nwith_ts 3 100\n");
  Scraper s({server_.Url(), kTarget}, {});
  ASSERT_TRUE(s.Scrape(1000).status.ok());
  server_.Set("a 1\nc 3\n");
  ScrapeResult r = s.Scrape(2000);
  ASSERT_TRUE(r.status.ok());
  auto m = ByName(r);
  const auto& b = m.at("b{instance=\"host-1:9100\", job=\"node\"}");
  EXPECT_EQ(b.t, 2000);
  EXPECT_TRUE(IsStaleNaN(b.v));
  EXPECT_EQ(m.count("with_ts{instance=\"host-1:9100\", job=\"node\"}"), 0u);  // explicit timestamps: no marker
  EXPECT_FALSE(IsStaleNaN(m.at("a{instance=\"host-1:9100\", job=\"node\"}").v));
  EXPECT_EQ(Report(r, "scrape_series_added"), 1);

  // A failed scrape: up 0 and every series goes stale.
  server_.SetStatus(503);
  ScrapeResult failed = s.Scrape(3000);
  EXPECT_EQ(failed.status.code(), StatusCode::kUnavailable);
  EXPECT_NE(failed.status.message().find("HTTP status 503"), std::string::npos);
  EXPECT_EQ(Report(failed, "up"), 0);
  EXPECT_EQ(Report(failed, "scrape_samples_scraped"), 0);
  auto fm = ByName(failed);
  EXPECT_TRUE(IsStaleNaN(fm.at("a{instance=\"host-1:9100\", job=\"node\"}").v));
  EXPECT_TRUE(IsStaleNaN(fm.at("c{instance=\"host-1:9100\", job=\"node\"}").v));

  // A removed target: stale markers for its report series too.
  server_.SetStatus(200);
  ASSERT_TRUE(s.Scrape(4000).status.ok());
  auto all = s.StaleAll(5000);
  EXPECT_EQ(all.size(), 2u + 5u);
  for (const TimeSeries& ts : all) EXPECT_TRUE(IsStaleNaN(ts.samples[0].v));
}

TEST_F(ScraperTest, HonorLabels) {
  server_.Set("x{job=\"exposed\",instance=\"i\"} 1\n");
  Scraper renamed({server_.Url(), kTarget}, {});
  auto m = ByName(renamed.Scrape(1));
  EXPECT_EQ(m.count("x{exported_instance=\"i\", exported_job=\"exposed\", instance=\"host-1:9100\", job=\"node\"}"), 1u);
  Scraper honored({server_.Url(), kTarget}, With([](ScrapeOptions& o) { o.honor_labels = true; }));
  auto h = ByName(honored.Scrape(1));
  EXPECT_EQ(h.count("x{instance=\"i\", job=\"exposed\"}"), 1u);
}

TEST_F(ScraperTest, Timeout) {
  server_.Set("a 1\n");
  server_.SetDelay(600ms);
  Scraper s({server_.Url(), kTarget}, With([](ScrapeOptions& o) { o.timeout = 150ms; }));
  auto start = std::chrono::steady_clock::now();
  ScrapeResult r = s.Scrape(1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 550ms);
  EXPECT_EQ(r.status.code(), StatusCode::kDeadlineExceeded) << r.status.message();
  EXPECT_EQ(Report(r, "up"), 0);
}

TEST_F(ScraperTest, BodyAndSampleLimits) {
  std::string big;
  for (int i = 0; i < 5000; ++i) big += "m{i=\"" + std::to_string(i) + "\"} 1\n";
  server_.Set(big);
  Scraper small({server_.Url(), kTarget}, With([](ScrapeOptions& o) { o.body_limit_bytes = 10000; }));
  ScrapeResult r = small.Scrape(1);
  EXPECT_EQ(r.status.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status.message().find("body exceeds"), std::string::npos);
  EXPECT_EQ(Report(r, "up"), 0);

  Scraper limited({server_.Url(), kTarget}, With([](ScrapeOptions& o) { o.sample_limit = 100; }));
  ScrapeResult l = limited.Scrape(1);
  EXPECT_EQ(l.status.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(l.status.message().find("sample_limit"), std::string::npos);
  EXPECT_EQ(r.series.size(), 5u);  // report series only

  // A gzip bomb is bounded the same way: the limit counts inflated bytes.
  server_.Set(std::string(1 << 20, '#') + "\n# EOF\n");
  server_.SetGzip(true);
  ScrapeResult bomb = small.Scrape(2);
  EXPECT_EQ(bomb.status.code(), StatusCode::kResourceExhausted);
}

TEST_F(ScraperTest, GzipBody) {
  server_.Set("a 1\nb 2\n# EOF\n");
  server_.SetGzip(true);
  Scraper s({server_.Url(), kTarget}, {});
  ScrapeResult r = s.Scrape(1);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.samples_scraped, 2u);
}

TEST_F(ScraperTest, BadExpositionFailsTheScrapeWithItsLine) {
  server_.Set("a 1\nb{ 2\n");
  Scraper s({server_.Url(), kTarget}, {});
  ScrapeResult r = s.Scrape(1);
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status.message().find("line 2"), std::string::npos) << r.status.message();
  EXPECT_EQ(Report(r, "up"), 0);
}

TEST_F(ScraperTest, ManagerScrapesOnTheIntervalAndStalesRemovedTargets) {
  server_.Set("a 1\n");
  std::mutex mu;
  std::map<std::string, int> ok_scrapes;
  std::map<std::string, std::vector<TimeSeries>> removed;
  ScrapeManager m([&](const ScrapeTarget& t, ScrapeResult& r) {
    std::lock_guard lock(mu);
    std::string instance(t.labels.Get("instance"));
    if (r.status.code() == StatusCode::kCancelled) {
      removed[instance] = r.series;
    } else if (r.status.ok()) {
      ++ok_scrapes[instance];
    }
  });
  ScrapeTarget a{server_.Url(), Labels{{"job", "j"}, {"instance", "a"}}};
  ScrapeTarget b{server_.Url(), Labels{{"job", "j"}, {"instance", "b"}}};
  m.Sync({a, b}, {}, 100ms);
  EXPECT_EQ(m.num_targets(), 2u);
  std::this_thread::sleep_for(450ms);
  m.Sync({a}, {}, 100ms);  // b removed: stale markers
  EXPECT_EQ(m.num_targets(), 1u);
  std::this_thread::sleep_for(250ms);
  m.Stop();
  EXPECT_EQ(m.num_targets(), 0u);
  std::lock_guard lock(mu);
  EXPECT_GE(ok_scrapes["a"], 3);  // ~7 on an idle machine; bounds allow a loaded one
  EXPECT_LE(ok_scrapes["a"], 8);
  EXPECT_GE(ok_scrapes["b"], 2);
  EXPECT_LE(ok_scrapes["b"], 5);
  ASSERT_EQ(removed.count("b"), 1u);
  EXPECT_EQ(removed.count("a"), 0u);  // Stop leaves no markers
  EXPECT_EQ(removed["b"].size(), 1u + 5u);  // a{instance="b"} and the report series
  for (const TimeSeries& ts : removed["b"]) EXPECT_TRUE(IsStaleNaN(ts.samples[0].v));
}

TEST(Scraper, UnreachableAndBadUrls) {
  // A port nobody listens on (bound and closed).
  int port;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    ::close(fd);
  }
  Scraper s({"http://127.0.0.1:" + std::to_string(port) + "/metrics", kTarget}, With([](ScrapeOptions& o) { o.timeout = 1s; }));
  ScrapeResult r = s.Scrape(1);
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable) << r.status.message();
  EXPECT_EQ(Report(r, "up"), 0);

  std::string base, path;
  EXPECT_TRUE(SplitScrapeUrl("http://h:1", &base, &path).ok());
  EXPECT_EQ(base, "http://h:1");
  EXPECT_EQ(path, "/metrics");
  EXPECT_TRUE(SplitScrapeUrl("https://h/x?y=1", &base, &path).ok());
  EXPECT_EQ(path, "/x?y=1");
  EXPECT_FALSE(SplitScrapeUrl("ftp://h/x", &base, &path).ok());
  EXPECT_FALSE(SplitScrapeUrl("h:1/metrics", &base, &path).ok());
  Scraper bad({"nope", kTarget}, {});
  EXPECT_EQ(bad.Scrape(1).status.code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace telkit
