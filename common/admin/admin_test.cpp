#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "common/admin/admin_server.h"
#include "common/admin/http_server.h"
#include "common/admin/metrics_registry.h"
#include "common/admin/process_metrics.h"

namespace telkit {
namespace {

TEST(MetricsRegistry, ExpositionIsSortedWithHelpAndType) {
  MetricsRegistry registry;
  registry.AddCounter("b_requests_total", "Requests.", {{"signal", "traces"}, {"protocol", "http"}}).Increment(3);
  registry.AddCounter("b_requests_total", "Requests.", {{"protocol", "grpc"}, {"signal", "traces"}}).Increment();
  registry.AddGauge("a_queue_bytes", "Bytes queued.").Set(1.5);
  registry.AddCallback("c_computed", "Computed at scrape.", MetricType::kGauge, {}, [] { return 42.0; });
  EXPECT_EQ(registry.ExpositionText(),
            "# HELP a_queue_bytes Bytes queued.\n"
            "# TYPE a_queue_bytes gauge\n"
            "a_queue_bytes 1.5\n"
            "# HELP b_requests_total Requests.\n"
            "# TYPE b_requests_total counter\n"
            "b_requests_total{protocol=\"grpc\",signal=\"traces\"} 1\n"
            "b_requests_total{protocol=\"http\",signal=\"traces\"} 3\n"
            "# HELP c_computed Computed at scrape.\n"
            "# TYPE c_computed gauge\n"
            "c_computed 42\n");
}

TEST(MetricsRegistry, SameNameAndLabelsGiveTheSameSeries) {
  MetricsRegistry registry;
  Counter& a = registry.AddCounter("x_total", "X.", {{"k", "v"}});
  Counter& b = registry.AddCounter("x_total", "X.", {{"k", "v"}});
  Counter& c = registry.AddCounter("x_total", "X.", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  MetricsRegistry registry;
  registry.AddGauge("g", "line one\nback\\slash", {{"path", "a\"b\\c\nd"}}).Set(-2);
  EXPECT_EQ(registry.ExpositionText(),
            "# HELP g line one\\nback\\\\slash\n"
            "# TYPE g gauge\n"
            "g{path=\"a\\\"b\\\\c\\nd\"} -2\n");
}

TEST(MetricsRegistry, SpecialValues) {
  EXPECT_EQ(FormatSampleValue(NAN), "NaN");
  EXPECT_EQ(FormatSampleValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatSampleValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatSampleValue(1e6), "1000000");
  EXPECT_EQ(FormatSampleValue(0.25), "0.25");
}

TEST(MetricsRegistry, NameRules) {
  EXPECT_TRUE(IsValidMetricName("otlp_recv:rate_5m"));
  EXPECT_FALSE(IsValidMetricName("1abc"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_TRUE(IsValidUserLabelName("signal"));
  EXPECT_FALSE(IsValidUserLabelName("__name__"));
  EXPECT_FALSE(IsValidUserLabelName("a:b"));
}

TEST(MetricsRegistry, ConcurrentIncrementsAreNotLost) {
  MetricsRegistry registry;
  Counter& counter = registry.AddCounter("hits_total", "Hits.");
  Gauge& gauge = registry.AddGauge("level", "Level.");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        counter.Increment();
        gauge.Add(1);
        gauge.Add(-1);
      }
    });
  }
  // Scrapes while incrementing must be safe.
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(registry.ExpositionText().empty());
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter.Value(), 400000u);
  EXPECT_EQ(gauge.Value(), 0.0);
}

double SampleValue(const std::string& text, const std::string& series) {
  size_t pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return NAN;
  return std::stod(text.substr(pos + series.size() + 2));
}

TEST(ProcessMetrics, ReportPlausibleValues) {
  MetricsRegistry registry;
  RegisterProcessMetrics(registry, "admin_test");
  std::string text = registry.ExpositionText();
  EXPECT_GT(SampleValue(text, "process_resident_memory_bytes"), 1e5);
  EXPECT_GE(SampleValue(text, "process_virtual_memory_bytes"), SampleValue(text, "process_resident_memory_bytes"));
  EXPECT_GE(SampleValue(text, "process_cpu_seconds_total"), 0.0);
  EXPECT_GE(SampleValue(text, "process_open_fds"), 3.0);
  EXPECT_GE(SampleValue(text, "process_threads"), 1.0);
  double start = SampleValue(text, "process_start_time_seconds");
  double now = static_cast<double>(time(nullptr));
  EXPECT_GT(start, now - 3600);
  EXPECT_LE(start, now + 1);
  EXPECT_NE(text.find("telkit_build_info{tool=\"admin_test\",version=\"" TELKIT_VERSION "\"} 1\n"), std::string::npos);
}

TEST(ListenAddress, Parses) {
  auto a = ParseListenAddress("127.0.0.1:4318");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 4318);
  auto b = ParseListenAddress(":8888");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "0.0.0.0");
  auto c = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->ToString(), "[::1]:0");
  for (const char* bad : {"", "4318", "host:", "host:99999", "host:12a", "::1:80", "[::1]80"}) {
    auto r = ParseListenAddress(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(AdminServer, ServesHealthReadinessAndMetrics) {
  MetricsRegistry registry;
  registry.AddCounter("served_total", "Served.").Increment(7);
  std::atomic<bool> ready{false};
  AdminServerOptions options;
  options.ready = [&] { return ready.load(); };
  auto server = AdminServer::Start(options, registry);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  httplib::Client client("127.0.0.1", (*server)->port());

  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  auto not_ready = client.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  ready = true;
  auto is_ready = client.Get("/readyz");
  ASSERT_TRUE(is_ready);
  EXPECT_EQ(is_ready->status, 200);

  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), MetricsRegistry::kContentType);
  EXPECT_NE(metrics->body.find("served_total 7\n"), std::string::npos);

  auto missing = client.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto wrong_method = client.Post("/metrics", "", "text/plain");
  ASSERT_TRUE(wrong_method);
  EXPECT_EQ(wrong_method->status, 405);

  (*server)->Stop();
  (*server)->Stop();  // idempotent
}

TEST(AdminServer, BusyPortIsUnavailable) {
  MetricsRegistry registry;
  auto first = AdminServer::Start({}, registry);
  ASSERT_TRUE(first.ok());
  AdminServerOptions options;
  options.listen = {"127.0.0.1", (*first)->port()};
  auto second = AdminServer::Start(options, registry);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("cannot listen on '127.0.0.1:"), std::string::npos);
}

TEST(AdminServer, StopRightAfterStart) {
  MetricsRegistry registry;
  for (int i = 0; i < 20; ++i) {
    auto server = AdminServer::Start({}, registry);
    ASSERT_TRUE(server.ok());
  }
}

}  // namespace
}  // namespace telkit
