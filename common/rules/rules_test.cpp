#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "common/model/memory_store.h"
#include "common/rules/evaluator.h"
#include "common/rules/rule_file.h"
#include "common/rules/state_file.h"

namespace telkit::rules {
namespace {

constexpr int64_t kMin = 60 * 1000;

RuleFile MustParse(std::string_view text) {
  auto f = ParseRuleFile(text, "t.yml");
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? *f : RuleFile{};
}

// The examples of Prometheus' documentation (recording_rules.md, alerting_rules.md).
constexpr char kDocsRecording[] = R"(groups:
  - name: example
    rules:
    - record: code:prometheus_http_requests_total:sum
      expr: sum by (code) (prometheus_http_requests_total)
  - name: example2
    interval: 30s
    limit: 10
    query_offset: 1m
    rules:
    - record: job:http_inprogress_requests:sum
      expr: sum by (job) (http_inprogress_requests)
)";

constexpr char kDocsAlerting[] = R"(groups:
- name: example
  labels:
    team: myteam
  rules:
  - alert: HighRequestLatency
    expr: job:request_latency_seconds:mean5m{job="myjob"} > 0.5
    for: 10m
    keep_firing_for: 5m
    labels:
      severity: page
    annotations:
      summary: High request latency
)";

constexpr char kDocsTemplating[] = R"Y(groups:
- name: example
  rules:
  # Alert for any instance that is unreachable for >5 minutes.
  - alert: InstanceDown
    expr: up == 0
    for: 5m
    labels:
      severity: page
    annotations:
      summary: "Instance {{ $labels.instance }} down"
      description: "{{ $labels.instance }} of job {{ $labels.job }} has been down for more than 5 minutes."

  # Alert for any instance that has a median request latency >1s.
  - alert: APIHighRequestLatency
    expr: api_http_request_latencies_second{quantile="0.5"} > 1
    for: 10m
    annotations:
      summary: "High request latency on {{ $labels.instance }}"
      description: "{{ $labels.instance }} has a median request latency above 1s (current value: {{ $value }}s)"
)Y";

TEST(RuleFileTest, DocumentationExamplesLoad) {
  RuleFile rec = MustParse(kDocsRecording);
  EXPECT_TRUE(rec.errors.empty()) << (rec.errors.empty() ? "" : rec.errors[0].ToString("t"));
  ASSERT_EQ(rec.groups.size(), 2u);
  EXPECT_EQ(rec.groups[1].interval_ms, 30000);
  EXPECT_EQ(rec.groups[1].limit, 10);
  EXPECT_EQ(rec.groups[1].query_offset_ms, 60000);
  EXPECT_EQ(rec.groups[0].rules[0].line, 4);

  RuleFile tmpl = MustParse(kDocsTemplating);
  EXPECT_TRUE(tmpl.errors.empty());
  ASSERT_EQ(tmpl.groups.size(), 1u);
  EXPECT_EQ(tmpl.groups[0].rules[0].for_ms, 5 * kMin);
  EXPECT_EQ(tmpl.groups[0].rules[1].annotations.size(), 2u);

  // Group-level labels (Prometheus 3.x) go to every rule that does not set them.
  RuleFile al = MustParse(kDocsAlerting);
  EXPECT_TRUE(al.errors.empty());
  ASSERT_EQ(al.groups.size(), 1u);
  const Rule& hr = al.groups[0].rules[0];
  EXPECT_EQ(hr.keep_firing_for_ms, 5 * kMin);
  EXPECT_EQ(hr.labels, (std::vector<std::pair<std::string, std::string>>{{"severity", "page"}, {"team", "myteam"}}));
}

TEST(RuleFileTest, LineNumberedErrorsKeepTheOtherGroups) {
  RuleFile f = MustParse(R"(groups:
- name: good
  rules:
  - record: a:b
    expr: sum(up)
- name: bad
  rules:
  - alert: Broken
    expr: sum(up
  - record: x
    expr: up
    for: 5m
  - alert: BadTemplate
    expr: up
    annotations:
      a: "{{ nosuch }}"
  - expr: up
- name: good
  rules: []
)");
  ASSERT_EQ(f.groups.size(), 1u);
  EXPECT_EQ(f.groups[0].name, "good");
  EXPECT_EQ(f.errors[0].line, 9);
  EXPECT_NE(f.errors[0].message.find("could not parse expression"), std::string::npos) << f.errors[0].message;
  EXPECT_EQ(f.errors[1].line, 10);
  EXPECT_NE(f.errors[1].message.find("invalid field 'for' in recording rule"), std::string::npos);
  EXPECT_EQ(f.errors[2].line, 16);
  EXPECT_NE(f.errors[2].message.find("function \"nosuch\" not defined"), std::string::npos);
  EXPECT_EQ(f.errors[3].line, 17);
  // The repeated group name.
  ASSERT_EQ(f.errors.size(), 5u);
  EXPECT_EQ(f.errors[4].ToString("t.yml"), "t.yml:18:9: group name \"good\" is repeated in the same file");

  auto bad_yaml = ParseRuleFile("groups:\n  - name: x\n   rules: [\n", "y.yml");
  ASSERT_FALSE(bad_yaml.ok());
  EXPECT_EQ(bad_yaml.status().message().rfind("y.yml:", 0), 0u) << bad_yaml.status().message();
}

TEST(RuleFileTest, Durations) {
  EXPECT_EQ(*ParseRuleDuration("1h30m"), 90 * kMin);
  EXPECT_EQ(*ParseRuleDuration("0"), 0);
  EXPECT_FALSE(ParseRuleDuration("5 minutes").ok());
  EXPECT_EQ(FormatRuleDuration(90 * kMin), "1h30m");
  EXPECT_EQ(FormatRuleDuration(0), "0s");
}

class EvalTest : public ::testing::Test {
 protected:
  // up{job="a"} == 0 from minute `from` to `to` (inclusive), 1 otherwise, every minute.
  void Down(int from, int to, int until = 60) {
    for (int m = 0; m <= until; ++m)
      store_.Append(Labels{{"__name__", "up"}, {"job", "a"}, {"instance", "h:1"}}, m * kMin,
                    (m >= from && m <= to) ? 0 : 1);
  }
  GroupEvaluator Group(std::string_view yaml) {
    RuleFile f = MustParse(yaml);
    EXPECT_TRUE(f.errors.empty()) << f.errors[0].message;
    return GroupEvaluator(f.groups.at(0));
  }
  static std::vector<std::string> Alerts(const GroupEvalResult& r) {
    std::vector<std::string> out;
    for (const auto& s : r.series)
      if (s.labels.MetricName() == "ALERTS" && !IsStaleNaN(s.samples[0].v))
        out.push_back(std::string(s.labels.Get("alertstate")));
    return out;
  }
  MemoryStore store_;
  PromQLEvaluator eval_{&store_};
};

TEST_F(EvalTest, ForTiming) {
  Down(10, 20);
  GroupEvaluator g = Group(R"(groups:
- name: g
  rules:
  - alert: Down
    expr: up == 0
    for: 3m
    labels: {severity: page, instance: "{{ $labels.instance }}-x"}
    annotations: {summary: "{{ $labels.job }} down, value {{ $value }}"}
)");
  std::vector<std::string> states;
  for (int m = 9; m <= 23; ++m) {
    GroupEvalResult r = g.Evaluate(eval_, m * kMin, {});
    auto a = Alerts(r);
    states.push_back(a.empty() ? "-" : a[0]);
  }
  // minute: 9 10 11 12 13 ... 20 21
  EXPECT_EQ(states, (std::vector<std::string>{"-", "pending", "pending", "pending", "firing", "firing", "firing",
                                              "firing", "firing", "firing", "firing", "firing", "-", "-", "-"}));
  const auto& alerts = g.rule_status()[0].alerts;
  ASSERT_EQ(alerts.size(), 1u);
  const Alert& a = alerts.begin()->second;
  EXPECT_EQ(a.state, AlertState::kInactive);
  EXPECT_EQ(a.resolved_at_ms, 21 * kMin);
  EXPECT_EQ(a.labels.Get("instance"), "h:1-x");
  EXPECT_EQ(a.labels.Get("alertname"), "Down");
  EXPECT_EQ(a.annotations[0].second, "a down, value 0");
}

TEST_F(EvalTest, KeepFiringFor) {
  Down(10, 12);
  GroupEvaluator g = Group(R"(groups:
- name: g
  rules:
  - alert: Down
    expr: up == 0
    keep_firing_for: 2m
)");
  std::vector<std::string> states;
  for (int m = 10; m <= 17; ++m) {
    auto a = Alerts(g.Evaluate(eval_, m * kMin, {}));
    states.push_back(a.empty() ? "-" : a[0]);
  }
  // for: 0 fires at once; gone at 13, kept firing 13 and 14 (< 2m), resolved at 15.
  EXPECT_EQ(states, (std::vector<std::string>{"firing", "firing", "firing", "firing", "firing", "-", "-", "-"}));
}

TEST_F(EvalTest, RecordingRulesAlertsSeriesAndStaleness) {
  Down(5, 5, 10);
  GroupEvaluator g = Group(R"(groups:
- name: g
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
    labels: {tier: x}
  - alert: Down
    expr: up == 0
)");
  GroupEvalResult r = g.Evaluate(eval_, 5 * kMin, {});
  ASSERT_EQ(r.failed_rules, 0);
  ASSERT_EQ(r.series.size(), 3u);
  EXPECT_EQ(r.series[0].labels.ToString(), "job:up:sum{job=\"a\", tier=\"x\"}");
  EXPECT_EQ(r.series[0].samples[0].v, 0);
  EXPECT_EQ(r.series[1].labels.ToString(),
            "ALERTS{alertname=\"Down\", alertstate=\"firing\", instance=\"h:1\", job=\"a\"}");
  EXPECT_EQ(r.series[2].labels.MetricName(), "ALERTS_FOR_STATE");
  EXPECT_EQ(r.series[2].samples[0].v, 300);
  // Next minute: the ALERTS series go stale.
  GroupEvalResult r2 = g.Evaluate(eval_, 6 * kMin, {});
  int stale = 0;
  for (const auto& s : r2.series) stale += IsStaleNaN(s.samples[0].v);
  EXPECT_EQ(stale, 2);
}

TEST_F(EvalTest, FailingRuleDoesNotStopTheOthersAndLimit) {
  Down(0, 60);
  GroupEvaluator g = Group(R"(groups:
- name: g
  limit: 2
  rules:
  - record: bad
    expr: up * on() up
  - record: good
    expr: up
)");
  GroupEvalResult r = g.Evaluate(eval_, 5 * kMin, {});
  EXPECT_EQ(r.failed_rules, 0);
  EXPECT_EQ(r.series.size(), 2u);
  store_.Append(Labels{{"__name__", "up"}, {"job", "b"}}, 5 * kMin, 1);
  GroupEvalResult r2 = g.Evaluate(eval_, 5 * kMin, {});
  EXPECT_EQ(r2.failed_rules, 1);  // many-to-many matching
  EXPECT_EQ(g.rule_status()[0].health, RuleHealth::kErr);
  EXPECT_EQ(g.rule_status()[1].health, RuleHealth::kOk);
  int good = 0;
  for (const auto& s : r2.series) good += s.labels.MetricName() == "good" && !IsStaleNaN(s.samples[0].v);
  EXPECT_EQ(good, 2);
  store_.Append(Labels{{"__name__", "up"}, {"job", "c"}}, 5 * kMin, 1);
  GroupEvalResult r3 = g.Evaluate(eval_, 5 * kMin, {});
  EXPECT_EQ(r3.failed_rules, 2);
  ASSERT_EQ(r3.errors.size(), 2u);
  EXPECT_NE(r3.errors[1].find("exceeded limit of 2 with 3 series"), std::string::npos) << r3.errors[1];
}

TEST_F(EvalTest, StateSurvivesRestart) {
  Down(10, 30);
  const char* yaml = R"(groups:
- name: g
  rules:
  - alert: Slow
    expr: up == 0
    for: 10m
  - alert: Fast
    expr: up == 0
    for: 1m
)";
  GroupEvaluator g = Group(yaml);
  for (int m = 10; m <= 13; ++m) g.Evaluate(eval_, m * kMin, {});
  EXPECT_EQ(g.rule_status()[0].alerts.begin()->second.state, AlertState::kPending);
  EXPECT_EQ(g.rule_status()[1].alerts.begin()->second.state, AlertState::kFiring);
  std::string text = EncodeRulesState({&g}, 13 * kMin);
  auto st = DecodeRulesState(text);
  ASSERT_TRUE(st.ok()) << st.status().ToString();

  GroupEvaluator restarted = Group(yaml);
  EXPECT_EQ(RestoreGroupState(restarted, *st), 2);
  // Down at 20 after 10m pending since minute 10: fires at 20, not 30.
  std::vector<std::string> slow;
  for (int m = 14; m <= 20; ++m) {
    GroupEvalResult r = restarted.Evaluate(eval_, m * kMin, {});
    slow.push_back(
        std::string(restarted.rule_status()[0].alerts.begin()->second.state == AlertState::kFiring ? "F" : "P"));
  }
  EXPECT_EQ(slow, (std::vector<std::string>{"P", "P", "P", "P", "P", "P", "F"}));
  EXPECT_EQ(restarted.rule_status()[1].alerts.begin()->second.active_at_ms, 10 * kMin);

  nlohmann::json rules = RulesApiData(*st);
  EXPECT_EQ(rules["groups"][0]["rules"][0]["state"], "pending");
  EXPECT_EQ(rules["groups"][0]["rules"][1]["alerts"][0]["activeAt"], "1970-01-01T00:10:00Z");
  EXPECT_EQ(AlertsApiData(*st)["alerts"].size(), 2u);
  EXPECT_FALSE(DecodeRulesState("{\"version\": 9, \"groups\": []}").ok());
  EXPECT_FALSE(DecodeRulesState("not json").ok());
}

TEST_F(EvalTest, NotificationsFiringThenResolved) {
  Down(10, 11);
  GroupEvaluator g = Group(R"(groups:
- name: g
  rules:
  - alert: Down
    expr: up == 0
)");
  g.Evaluate(eval_, 10 * kMin, {});
  auto s1 = AlertsToSend(g, 10 * kMin, kMin);
  ASSERT_EQ(s1.size(), 1u);
  EXPECT_EQ(s1[0].state, AlertState::kFiring);
  g.Evaluate(eval_, 10 * kMin + 30000, {});
  EXPECT_TRUE(AlertsToSend(g, 10 * kMin + 30000, kMin).empty());  // within resend delay
  g.Evaluate(eval_, 12 * kMin, {});
  auto s2 = AlertsToSend(g, 12 * kMin, kMin);
  ASSERT_EQ(s2.size(), 1u);
  EXPECT_EQ(s2[0].state, AlertState::kInactive);
  EXPECT_EQ(s2[0].resolved_at_ms, 12 * kMin);
}

}  // namespace
}  // namespace telkit::rules

namespace telkit::rules {
namespace {

// The state file format (docs/format/rules-state.md) pinned by a golden document.
TEST_F(EvalTest, StateFileGoldenDocument) {
  Down(10, 30);
  const char* yaml = R"(groups:
- name: g
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
  - alert: Down
    expr: up == 0
    for: 2m
    labels: {severity: page}
    annotations: {summary: "{{ $labels.instance }} down"}
)";
  GroupEvaluator g = Group(yaml);
  for (int m = 10; m <= 13; ++m) g.Evaluate(eval_, m * kMin, {});
  for (auto& s : g.rule_status()) s.eval_seconds = 0.001;
  g.set_last_eval(13 * kMin, 0.002);
  std::string text = EncodeRulesState({&g}, 13 * kMin);
  const std::string golden_path = std::string(TELKIT_SOURCE_DIR) + "/tests/testdata/rules/state-v1.json";
  if (std::getenv("TELKIT_UPDATE_GOLDEN")) {
    FILE* f = std::fopen(golden_path.c_str(), "w");
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  auto golden = ReadRulesStateFile(golden_path);
  ASSERT_TRUE(golden.ok()) << golden.status().ToString();
  std::ifstream in(golden_path);
  std::string golden_text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, golden_text);
  ASSERT_EQ(golden->groups.size(), 1u);
  const RuleState& r = golden->groups[0].rules[1];
  ASSERT_EQ(r.alerts.size(), 1u);
  const Alert& a = r.alerts.begin()->second;
  EXPECT_EQ(a.state, AlertState::kFiring);
  EXPECT_EQ(a.active_at_ms, 10 * kMin);
  EXPECT_EQ(a.fired_at_ms, 12 * kMin);
  // Restoring the golden state and encoding again gives the same bytes.
  GroupEvaluator again = Group(yaml);
  RestoreGroupState(again, *golden);
  for (auto& s : again.rule_status()) s.eval_seconds = 0.001;
  again.rule_status()[0].health = again.rule_status()[1].health = RuleHealth::kOk;
  again.rule_status()[0].last_eval_ms = 13 * kMin;
  EXPECT_EQ(EncodeRulesState({&again}, 13 * kMin), golden_text);
}

}  // namespace
}  // namespace telkit::rules
