#include "common/rules/notifier.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/admin/metrics_registry.h"
#include "common/rules/daemon.h"
#include "common/rules/rule_file.h"
#include "common/test_support/temp_dir.h"

namespace telkit::rules {
namespace {

Notification Sample(bool resolved) {
  Notification n;
  n.labels = Labels{{"alertname", "Down"}, {"job", "a"}};
  n.annotations = {{"summary", "a is down"}};
  n.resolved = resolved;
  n.starts_at_ms = 600000;
  n.ends_at_ms = resolved ? 720000 : 840500;
  n.generator_url = "/graph?g0.expr=up == 0";
  n.value = 0;
  return n;
}

// The bodies of docs/format/rules-notifications.md, byte for byte.
TEST(NotifierTest, GoldenBodies) {
  EXPECT_EQ(
      AlertmanagerBody({Sample(false)}).dump(),
      R"([{"annotations":{"summary":"a is down"},"endsAt":"1970-01-01T00:14:00.5Z","generatorURL":"/graph?g0.expr=up == 0","labels":{"alertname":"Down","job":"a"},"startsAt":"1970-01-01T00:10:00Z"}])");
  EXPECT_EQ(
      WebhookBody({Sample(true)}).dump(),
      R"({"alerts":[{"annotations":{"summary":"a is down"},"endsAt":"1970-01-01T00:12:00Z","generatorURL":"/graph?g0.expr=up == 0","labels":{"alertname":"Down","job":"a"},"startsAt":"1970-01-01T00:10:00Z","status":"resolved","value":"0"}],"receiver":"tel-rules","status":"resolved","version":"1"})");
}

TEST(NotifierTest, CommandExitStatusAndTimeout) {
  test_support::TempDir dir;
  std::string out = dir.path() + "/out";
  EXPECT_TRUE(RunNotifyCommand("cat > '" + out + "'", "{\"x\":1}\n", 5000).ok());
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "{\"x\":1}");
  Status st = RunNotifyCommand("exit 3", "", 5000);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("exited with status 3"), std::string::npos);
  auto start = std::chrono::steady_clock::now();
  st = RunNotifyCommand("sleep 10", "", 200);
  EXPECT_NE(st.message().find("timed out"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

// A webhook that fails twice, then accepts: retried with backoff, delivered once.
TEST(NotifierTest, WebhookRetriesWithBackoff) {
  httplib::Server server;
  std::mutex mu;
  int calls = 0;
  std::string body;
  server.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    if (++calls <= 2) {
      res.status = 503;
      return;
    }
    body = req.body;
    res.status = 200;
  });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  MetricsRegistry registry;
  NotifierOptions o;
  o.webhooks = {"http://127.0.0.1:" + std::to_string(port) + "/hook"};
  o.initial_backoff_ms = 20;
  auto n = Notifier::Start(o, &registry);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  (*n)->Send({Sample(false)});
  (*n)->Stop(5000);
  server.stop();
  t.join();
  EXPECT_EQ(calls, 3);
  EXPECT_NE(body.find("\"status\":\"firing\""), std::string::npos);
  std::string text = registry.ExpositionText();
  EXPECT_NE(text.find("telrules_notification_retries_total{kind=\"webhook\",target=\"" + o.webhooks[0] + "\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("telrules_notifications_sent_total{kind=\"webhook\",target=\"" + o.webhooks[0] + "\"} 1"),
            std::string::npos);
  EXPECT_FALSE(Notifier::Start({.alertmanagers = {"https://x"}}, nullptr).ok());
}

TEST(RulesDaemonTest, MissedIterationsAndLoadErrors) {
  test_support::TempDir dir;
  std::ofstream(dir.path() + "/a.yml")
      << "groups:\n  - name: g\n    interval: 10s\n    rules:\n      - record: x\n        expr: vector(1)\n";
  std::ofstream(dir.path() + "/b.yml") << "groups:\n  - name: bad\n    rules:\n      - record: y\n        expr: sum(\n";
  MetricsRegistry registry;
  RulesDaemonOptions o;
  o.rule_globs = {dir.path() + "/*.yml"};
  std::vector<std::string> errors;
  auto d = RulesDaemon::Start(o, registry, &errors);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("b.yml:5:15:"), std::string::npos) << errors[0];
  EXPECT_EQ((*d)->num_groups(), 1u);
  (*d)->Tick(1'000'000);
  (*d)->Tick(1'005'000);  // not due
  (*d)->Tick(1'050'000);  // due at 1'010'000: 4 evaluations missed
  std::string text = registry.ExpositionText();
  std::string key = dir.path() + "/a.yml;g";
  EXPECT_NE(text.find("telrules_group_iterations_missed_total{rule_group=\"" + key + "\"} 4"), std::string::npos)
      << text;
  EXPECT_NE(text.find("telrules_group_evaluations_total{rule_group=\"" + key + "\"} 2"), std::string::npos);
  EXPECT_NE(text.find("telrules_config_last_reload_successful 0"), std::string::npos);
  (*d)->Stop(1000);
}

TEST(RuleFileTest, LokiRulerFilesParseWithLogQL) {
  const char* loki = R"(groups:
  - name: should_fire
    rules:
      - alert: HighPercentageError
        expr: |
          sum(rate({app="foo", env="production"} |= "error" [5m])) by (job)
            /
          sum(rate({app="foo", env="production"}[5m])) by (job)
            > 0.05
        for: 10m
        labels:
            severity: page
        annotations:
            summary: High request latency
  - name: credentials_leak
    rules:
      - alert: http-credentials-leaked
        annotations:
          message: "{{ $labels.job }} is leaking http basic auth credentials."
        expr: 'sum by (cluster, job, pod) (count_over_time({namespace="prod"} |~ "http(s?)://(\\w+):(\\w+)@" [5m]) > 0)'
        for: 10m
        labels:
          severity: critical
)";
  ParseRuleFileOptions po;
  po.language = QueryLanguage::kLogQL;
  auto f = ParseRuleFile(loki, "loki.yml", po);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->errors.empty());
  ASSERT_EQ(f->groups.size(), 2u);
  EXPECT_EQ(f->groups[0].language, QueryLanguage::kLogQL);
  // As PromQL the same file is an error with a line number.
  auto p = ParseRuleFile(loki, "loki.yml");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->errors.empty());
}

}  // namespace
}  // namespace telkit::rules
