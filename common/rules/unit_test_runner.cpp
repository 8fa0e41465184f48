#include "common/rules/unit_test_runner.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "common/fs/file_system.h"
#include "common/model/memory_store.h"
#include "common/promql/engine.h"
#include "common/promql/parser.h"
#include "common/promql/promql_test_runner.h"
#include "common/rules/evaluator.h"
#include "common/rules/rule_file.h"

namespace telkit::rules {
namespace {

Status YamlError(const std::string& path, const YAML::Node& n, const std::string& msg) {
  return InvalidArgumentError(path + ":" + std::to_string(n.Mark().line + 1) + ":" +
                              std::to_string(n.Mark().column + 1) + ": " + msg);
}

Result<int64_t> DurationField(const std::string& path, const YAML::Node& n, int64_t def) {
  if (!n) return def;
  auto d = ParseRuleDuration(n.Scalar());
  if (!d.ok()) return YamlError(path, n, d.status().message());
  return *d;
}

std::string PairsString(std::vector<std::pair<std::string, std::string>> p) {
  std::sort(p.begin(), p.end());
  std::string out = "{";
  for (size_t i = 0; i < p.size(); ++i) out += (i ? ", " : "") + p[i].first + "=\"" + p[i].second + "\"";
  return out + "}";
}

std::string AlertString(const Labels& l, const std::vector<std::pair<std::string, std::string>>& ann) {
  std::vector<std::pair<std::string, std::string>> lp;
  for (const auto& x : l) lp.emplace_back(x.name, x.value);
  return "Labels:" + PairsString(lp) + " Annotations:" + PairsString(ann);
}

std::vector<std::pair<std::string, std::string>> MapOf(const YAML::Node& n) {
  std::vector<std::pair<std::string, std::string>> out;
  if (n && n.IsMap())
    for (auto it = n.begin(); it != n.end(); ++it) out.emplace_back(it->first.Scalar(), it->second.Scalar());
  return out;
}

bool SameValue(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (a == b) return true;
  return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b));
}

struct AlertTest {
  int64_t eval_time = 0;
  std::string alertname;
  std::vector<std::string> expected;  // AlertString of each
};

Status RunOne(const std::string& path, const YAML::Node& t, const std::vector<RuleGroup>& groups, int64_t eval_interval,
              UnitTestReport& report) {
  std::string name = t["name"] ? t["name"].Scalar() : "";
  TELKIT_ASSIGN_OR_RETURN(int64_t interval, DurationField(path, t["interval"], eval_interval));
  MemoryStore store;
  if (const YAML::Node& in = t["input_series"]) {
    std::string script = "load " + FormatRuleDuration(interval) + "\n";
    for (const auto& s : in) {
      if (!s["series"]) return YamlError(path, s, "input_series entry without series");
      script += "  " + s["series"].Scalar() + " " + (s["values"] ? s["values"].Scalar() : "") + "\n";
    }
    Status st = promql::LoadTestScriptData(script, store);
    if (!st.ok()) return YamlError(path, in, "input_series: " + st.message());
  }
  GroupEvalOptions opts;
  for (const auto& [k, v] : MapOf(t["external_labels"])) opts.external_labels[k] = v;
  if (t["external_url"]) opts.external_url = t["external_url"].Scalar();

  std::vector<AlertTest> alert_tests;
  int64_t maxt = 0;
  if (const YAML::Node& at = t["alert_rule_test"]) {
    for (const auto& a : at) {
      AlertTest x;
      TELKIT_ASSIGN_OR_RETURN(x.eval_time, DurationField(path, a["eval_time"], 0));
      x.alertname = a["alertname"] ? a["alertname"].Scalar() : "";
      if (const YAML::Node& ea = a["exp_alerts"]) {
        for (const auto& e : ea) {
          auto lp = MapOf(e["exp_labels"]);
          lp.emplace_back("alertname", x.alertname);
          std::vector<Label> lv;
          for (auto& [k, v] : lp) lv.push_back({k, v});
          auto l = Labels::FromUnsorted(lv);
          if (!l.ok()) return YamlError(path, e, l.status().message());
          x.expected.push_back(AlertString(*l, MapOf(e["exp_annotations"])));
        }
      }
      std::sort(x.expected.begin(), x.expected.end());
      maxt = std::max(maxt, x.eval_time);
      alert_tests.push_back(std::move(x));
    }
  }
  std::sort(alert_tests.begin(), alert_tests.end(),
            [](const AlertTest& a, const AlertTest& b) { return a.eval_time < b.eval_time; });
  if (const YAML::Node& pt = t["promql_expr_test"]) {
    for (const auto& p : pt) {
      TELKIT_ASSIGN_OR_RETURN(int64_t et, DurationField(path, p["eval_time"], 0));
      maxt = std::max(maxt, et);
    }
  }

  std::string prefix = "  " + (name.empty() ? std::string() : name + ": ");
  PromQLEvaluator eval(&store);
  std::vector<GroupEvaluator> gs;
  for (const auto& g : groups) gs.emplace_back(g);
  size_t next_alert = 0;
  for (int64_t ts = 0; ts <= maxt; ts += eval_interval) {
    for (auto& g : gs) {
      GroupEvalResult r = g.Evaluate(eval, ts, opts);
      for (const auto& s : r.series) store.Append(s.labels, s.samples);
    }
    while (next_alert < alert_tests.size() && alert_tests[next_alert].eval_time >= ts &&
           alert_tests[next_alert].eval_time < ts + eval_interval) {
      const AlertTest& a = alert_tests[next_alert++];
      ++report.tests;
      std::vector<std::string> got;
      for (auto& g : gs)
        for (size_t i = 0; i < g.group().rules.size(); ++i)
          if (g.group().rules[i].kind == RuleKind::kAlert && g.group().rules[i].name == a.alertname)
            for (const auto& [l, al] : g.rule_status()[i].alerts)
              if (al.state == AlertState::kFiring) got.push_back(AlertString(al.labels, al.annotations));
      std::sort(got.begin(), got.end());
      if (got != a.expected) {
        ++report.failed;
        auto join = [](const std::vector<std::string>& v) {
          std::string s = "[";
          for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
          return s + "]";
        };
        report.failures.push_back(prefix + "alertname: " + a.alertname + ", time: " + FormatRuleDuration(a.eval_time) +
                                  ",\n        exp:" + join(a.expected) + ",\n        got:" + join(got));
      }
    }
  }

  if (const YAML::Node& pt = t["promql_expr_test"]) {
    promql::Engine engine;
    for (const auto& p : pt) {
      ++report.tests;
      std::string expr = p["expr"] ? p["expr"].Scalar() : "";
      TELKIT_ASSIGN_OR_RETURN(int64_t et, DurationField(path, p["eval_time"], 0));
      std::vector<std::string> exp, got;
      if (const YAML::Node& es = p["exp_samples"]) {
        for (const auto& s : es) {
          std::string ls = s["labels"] ? s["labels"].Scalar() : "{}";
          Labels l;
          if (ls != "{}" && !ls.empty()) {
            auto m = promql::ParseMetricSelector(ls);
            if (!m.ok()) return YamlError(path, s, "labels: " + m.status().message());
            std::vector<Label> lv;
            for (const auto& x : *m) lv.push_back({x.name(), x.value()});
            TELKIT_ASSIGN_OR_RETURN(l, Labels::FromUnsorted(lv));
          }
          double v = 0;
          if (s["value"]) {
            auto n = promql::ParseNumber(s["value"].Scalar());
            if (!n.ok()) return YamlError(path, s["value"], "value: " + n.status().message());
            v = *n;
          }
          exp.push_back(l.ToString() + " " + promql::FormatValue(v));
        }
      }
      auto r = eval.Eval(expr, et);
      if (!r.ok()) {
        ++report.failed;
        report.failures.push_back(prefix + "expr: \"" + expr + "\", time: " + FormatRuleDuration(et) +
                                  ", err: " + r.status().message());
        continue;
      }
      for (const auto& s : *r) got.push_back(s.labels.ToString() + " " + promql::FormatValue(s.value));
      std::sort(exp.begin(), exp.end());
      std::sort(got.begin(), got.end());
      bool same = exp.size() == got.size();
      for (size_t i = 0; same && i < exp.size(); ++i) {
        size_t a = exp[i].rfind(' '), b = got[i].rfind(' ');
        same = exp[i].substr(0, a) == got[i].substr(0, b) &&
               SameValue(std::strtod(exp[i].c_str() + a + 1, nullptr), std::strtod(got[i].c_str() + b + 1, nullptr));
      }
      if (!same) {
        ++report.failed;
        std::string e, g;
        for (const auto& x : exp) e += "\n        " + x;
        for (const auto& x : got) g += "\n        " + x;
        report.failures.push_back(prefix + "expr: \"" + expr + "\", time: " + FormatRuleDuration(et) +
                                  ",\n    exp:" + e + "\n    got:" + g);
      }
    }
  }
  return OkStatus();
}

}  // namespace

Result<UnitTestReport> RunRuleUnitTests(const std::string& path) {
  TELKIT_ASSIGN_OR_RETURN(std::string text, ReadFileToString(DefaultFileSystem(), path, 64u << 20));
  UnitTestReport report;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) return InvalidArgumentError(path + ": a test file must be a map");
    TELKIT_ASSIGN_OR_RETURN(int64_t eval_interval,
                            DurationField(path, root["evaluation_interval"], kDefaultIntervalMs));
    if (eval_interval <= 0) return InvalidArgumentError(path + ": evaluation_interval must be positive");
    std::vector<RuleGroup> groups;
    std::string dir = DirName(path);
    if (const YAML::Node& rf = root["rule_files"]) {
      for (const auto& f : rf) {
        std::string p = f.Scalar();
        if (!p.empty() && p[0] != '/') p = JoinPath(dir, p);
        TELKIT_ASSIGN_OR_RETURN(std::vector<std::string> files, ExpandRuleGlob(p));
        for (const auto& file : files) {
          TELKIT_ASSIGN_OR_RETURN(RuleFile parsed, LoadRuleFile(file));
          if (!parsed.errors.empty()) return InvalidArgumentError(parsed.errors[0].ToString(file));
          for (auto& g : parsed.groups) groups.push_back(std::move(g));
        }
      }
    }
    if (const YAML::Node& tests = root["tests"]) {
      for (const auto& t : tests) TELKIT_RETURN_IF_ERROR(RunOne(path, t, groups, eval_interval, report));
    }
  } catch (const YAML::ParserException& e) {
    return InvalidArgumentError(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                                ": yaml: " + e.msg);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(path + ": yaml: " + e.what());
  }
  return report;
}

}  // namespace telkit::rules
