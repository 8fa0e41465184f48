#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "common/admin/admin_server.h"
#include "common/scrape/relabel.h"
#include "common/scrape/scrape_config.h"
#include "common/test_support/temp_dir.h"

namespace telkit {
namespace {

using namespace std::chrono_literals;

RelabelRule Rule(RelabelRuleSpec s) {
  auto r = RelabelRule::Compile(s);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return *r;
}

TEST(Relabel, ReplaceWithGroupsAndNamedGroups) {
  Labels l{{"__address__", "host:9100"}, {"job", "node"}};
  RelabelRuleSpec s;
  s.source_labels = {"__address__"};
  s.regex = "([^:]+):(?P<port>\\d+)";
  s.target_label = "host_${port}";
  s.replacement = "$1-${port}";
  EXPECT_TRUE(Rule(s).Apply(l));
  EXPECT_EQ(l.Get("host_9100"), "host-9100");
  // No match: unchanged. Empty result: label removed.
  RelabelRuleSpec none;
  none.source_labels = {"job"};
  none.regex = "other";
  none.target_label = "job";
  none.replacement = "x";
  EXPECT_TRUE(Rule(none).Apply(l));
  EXPECT_EQ(l.Get("job"), "node");
  RelabelRuleSpec empty;
  empty.source_labels = {"job"};
  empty.target_label = "job";
  empty.replacement = "";
  EXPECT_TRUE(Rule(empty).Apply(l));
  EXPECT_FALSE(l.Has("job"));
}

TEST(Relabel, SeparatorKeepDrop) {
  Labels l{{"a", "x"}, {"b", "y"}};
  RelabelRuleSpec keep;
  keep.source_labels = {"a", "b"};
  keep.regex = "x;y";
  keep.action = RelabelAction::kKeep;
  EXPECT_TRUE(Rule(keep).Apply(l));
  keep.regex = "x";  // anchored: "x;y" does not match "x"
  EXPECT_FALSE(Rule(keep).Apply(l));
  RelabelRuleSpec drop;
  drop.source_labels = {"a"};
  drop.regex = "x|z";
  drop.action = RelabelAction::kDrop;
  EXPECT_FALSE(Rule(drop).Apply(l));
}

TEST(Relabel, LabelmapLabeldropLabelkeep) {
  Labels l{{"__meta_env", "prod"}, {"__meta_zone", "a"}, {"keep_me", "1"}, {"tmp_x", "2"}};
  RelabelRuleSpec map;
  map.regex = "__meta_(.+)";
  map.action = RelabelAction::kLabelMap;
  EXPECT_TRUE(Rule(map).Apply(l));
  EXPECT_EQ(l.Get("env"), "prod");
  EXPECT_EQ(l.Get("zone"), "a");
  RelabelRuleSpec drop;
  drop.regex = "tmp_.*";
  drop.action = RelabelAction::kLabelDrop;
  EXPECT_TRUE(Rule(drop).Apply(l));
  EXPECT_FALSE(l.Has("tmp_x"));
  RelabelRuleSpec keep;
  keep.regex = "env|zone";
  keep.action = RelabelAction::kLabelKeep;
  EXPECT_TRUE(Rule(keep).Apply(l));
  EXPECT_EQ(l.ToString(), R"({env="prod", zone="a"})");
  EXPECT_FALSE(ParseRelabelAction("hashmod").ok());
  RelabelRuleSpec bad;
  bad.regex = "(";
  EXPECT_FALSE(RelabelRule::Compile(bad).ok());
}

TEST(ScrapeConfig, ParsesTheSubset) {
  auto c = ParseScrapeConfig(R"(
global:
  scrape_interval: 30s
  scrape_timeout: 5s
scrape_configs:
  - job_name: node
    scrape_interval: 1m30s
    metrics_path: /probe
    scheme: https
    honor_labels: true
    params: {module: [cpu, mem]}
    static_configs:
      - targets: ["a:9100", "b:9100"]
        labels: {env: dev}
    file_sd_configs:
      - files: [/tmp/*.json]
        refresh_interval: 10s
    relabel_configs:
      - source_labels: [__address__]
        regex: "([^:]+):.*"
        target_label: host
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: drop
  - job_name: self
)");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->jobs.size(), 2u);
  const ScrapeJobConfig& j = c->jobs[0];
  EXPECT_EQ(j.interval, 90s);
  EXPECT_EQ(j.timeout, 5s);
  EXPECT_EQ(j.metrics_path, "/probe");
  EXPECT_EQ(j.scheme, "https");
  EXPECT_TRUE(j.honor_labels);
  EXPECT_EQ(j.params.at("module").size(), 2u);
  EXPECT_EQ(j.static_groups[0].targets.size(), 2u);
  EXPECT_EQ(j.file_sd_files[0], "/tmp/*.json");
  EXPECT_EQ(j.file_sd_refresh, 10s);
  EXPECT_EQ(j.relabel.size(), 1u);
  EXPECT_EQ(j.metric_relabel.size(), 1u);
  EXPECT_EQ(c->jobs[1].interval, 30s);
}

TEST(ScrapeConfig, ErrorsNameTheKey) {
  auto expect_error = [](const char* yaml, const char* part) {
    auto c = ParseScrapeConfig(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_NE(c.status().message().find(part), std::string::npos) << c.status().message();
  };
  expect_error("scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n", "unknown key 'scrape_intervall'");
  expect_error("scrape_configs:\n  - static_configs: []\n", "job_name is required");
  expect_error("scrape_configs:\n  - job_name: a\n  - job_name: a\n", "used twice");
  expect_error("scrape_configs:\n  - job_name: a\n    scrape_interval: 5x\n", "invalid duration");
  expect_error("scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 6s\n", "greater");
  expect_error("scrape_configs:\n  - job_name: a\n    relabel_configs: [{action: hashmod}]\n", "not supported");
  expect_error("scrape_configs: [\n", "scrape config");
  EXPECT_EQ(*ParsePromDuration("1h2m3s4ms"), 3723004ms);
}

TEST(ScrapeConfig, BuildsTargetsAsPrometheus) {
  auto c = ParseScrapeConfig(R"(
scrape_configs:
  - job_name: node
    params: {module: [cpu], "collect[]": [x, y]}
    static_configs:
      - targets: ["a:9100", "b:9100", "drop-me:1"]
        labels: {env: dev}
    relabel_configs:
      - source_labels: [__address__]
        regex: drop-me:.*
        action: drop
      - source_labels: [__address__]
        regex: "([^:]+):.*"
        target_label: instance
        replacement: "${1}"
      - target_label: __metrics_path__
        replacement: /custom
)");
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto targets = BuildScrapeTargets(c->jobs[0], c->jobs[0].static_groups);
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0].url, "http://a:9100/custom?collect%5B%5D=x&collect%5B%5D=y&module=cpu");
  EXPECT_EQ(targets[0].labels.ToString(), R"({env="dev", instance="a", job="node"})");
  EXPECT_EQ(targets[1].url, "http://b:9100/custom?collect%5B%5D=x&collect%5B%5D=y&module=cpu");
}

TEST(ScrapeConfig, FileSd) {
  auto g = ParseFileSd(R"([{"targets": ["x:1"], "labels": {"team": "a"}}, {"targets": ["y:2"]}])", "f.json");
  ASSERT_TRUE(g.ok()) << g.status().message();
  ASSERT_EQ(g->size(), 2u);
  EXPECT_EQ((*g)[0].labels.Get("team"), "a");
  EXPECT_FALSE(ParseFileSd(R"({"targets": []})", "f.json").ok());
  EXPECT_FALSE(ParseFileSd(R"([{"targetz": []}])", "f.json").ok());
}

// A real admin endpoint found through a file_sd file; the file is rewritten
// without it: the service re-reads it and the target's series go stale.
TEST(ScrapeService, FileSdReloadScrapesAndStales) {
  test_support::TempDir dir;
  MetricsRegistry registry;
  registry.AddGauge("demo_value", "a value").Set(42);
  registry.AddGauge("drop_me_value", "dropped by metric_relabel_configs").Set(1);
  auto server = AdminServer::Start({}, registry);
  ASSERT_TRUE(server.ok());
  std::string sd = dir.path() + "/targets.json";
  std::ofstream(sd) << R"([{"targets": ["127.0.0.1:)" << (*server)->port() << R"("], "labels": {"team": "t"}}])";
  auto c = ParseScrapeConfig("scrape_configs:\n  - job_name: demo\n    scrape_interval: 100ms\n"
                             "    metric_relabel_configs: [{source_labels: [__name__], regex: drop_me_.*, action: drop}]\n"
                             "    file_sd_configs: [{files: ['" + dir.path() + "/*.json']}]\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  std::mutex mu;
  std::vector<TimeSeries> got;
  std::atomic<int> cancelled{0};
  ScrapeService service(std::move(*c), [&](const ScrapeTarget& t, ScrapeResult& r) {
    std::lock_guard lock(mu);
    if (r.status.code() == StatusCode::kCancelled) cancelled++;
    for (auto& s : r.series) got.push_back(s);
  }, nullptr);
  EXPECT_EQ(service.num_targets(), 1u);
  auto find = [&](std::string_view name) -> std::optional<TimeSeries> {
    std::lock_guard lock(mu);
    for (auto it = got.rbegin(); it != got.rend(); ++it)
      if (it->labels.MetricName() == name) return *it;
    return std::nullopt;
  };
  for (int i = 0; i < 50 && !find("demo_value"); ++i) std::this_thread::sleep_for(50ms);
  auto v = find("demo_value");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->labels.Get("job"), "demo");
  EXPECT_EQ(v->labels.Get("team"), "t");
  EXPECT_EQ(v->samples[0].v, 42);
  EXPECT_FALSE(find("drop_me_value"));  // metric_relabel dropped it
  auto up = find("up");
  ASSERT_TRUE(up);
  EXPECT_EQ(up->samples[0].v, 1);
  auto scraped = find("scrape_samples_scraped");
  auto post = find("scrape_samples_post_metric_relabeling");
  ASSERT_TRUE(scraped && post);
  EXPECT_LT(post->samples[0].v, scraped->samples[0].v);

  std::this_thread::sleep_for(20ms);  // a new mtime
  std::ofstream(sd, std::ios::trunc) << "[]";
  for (int i = 0; i < 60 && cancelled == 0; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(cancelled, 1);
  EXPECT_EQ(service.num_targets(), 0u);
  auto stale = find("demo_value");
  ASSERT_TRUE(stale);
  EXPECT_TRUE(IsStaleNaN(stale->samples[0].v));
  service.Stop();
}

}  // namespace
}  // namespace telkit
