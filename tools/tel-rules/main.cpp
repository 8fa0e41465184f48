// tel-rules: Prometheus-compatible recording and alerting rules.
//   tel-rules run --rules GLOB --data DIR --out SPEC   the evaluating daemon
//   tel-rules check FILE...                            syntax, queries, templates
//   tel-rules test FILE...                             `promtool test rules` files
// Logic lives in common/rules (daemon.h, rule_file.h, unit_test_runner.h).
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "common/admin/admin_server.h"
#include "common/admin/process_metrics.h"
#include "common/cli/cli.h"
#include "common/daemon/daemon.h"
#include "common/rules/daemon.h"
#include "common/rules/logql_evaluator.h"
#include "common/rules/rule_file.h"
#include "common/rules/unit_test_runner.h"

namespace {

constexpr char kTool[] = "tel-rules";
using telkit::kExitFailure;
using telkit::kExitOk;
using telkit::kExitUsage;

struct Flags {
  std::vector<std::string> rules, logql_rules, files;
  std::string data, logs_data, out, state;
  std::string interval = "1m", resend_delay = "1m";
  std::vector<std::string> alertmanagers, webhooks, commands, external_labels;
  std::string external_url;
  std::string admin_listen = "127.0.0.1:8894";
  int notify_attempts = 5;
  std::string notify_backoff = "500ms", notify_timeout = "10s";
  bool logql = false;
  CLI::App *run = nullptr, *check = nullptr, *test = nullptr;
};

void Declare(CLI::App& app, Flags& f) {
  app.require_subcommand(0, 1);
  app.footer("Run 'tel-rules SUBCOMMAND --help' for its flags.");
  CLI::App* r = app.add_subcommand("run", "Evaluate rule groups and send notifications");
  f.run = r;
  r->add_option("--rules", f.rules, "Prometheus rule files (repeatable)")->type_name("GLOB");
  r->add_option("--logql-rules", f.logql_rules, "Loki ruler rule files (repeatable)")->type_name("GLOB");
  r->add_option("--data", f.data, "The metrics store directory (tsdb-write's)")->type_name("DIR");
  r->add_option("--logs-data", f.logs_data, "The log store directory (log-ingest's), for --logql-rules")
      ->type_name("DIR");
  r->add_option("--out", f.out, "Stream output for results: unix:SOCK, FILE, -")->type_name("SPEC");
  r->add_option("--state", f.state, "State file: alerts survive restarts")->type_name("FILE");
  r->add_option("--evaluation-interval", f.interval, "Default group interval")->capture_default_str();
  r->add_option("--alertmanager", f.alertmanagers, "Alertmanager base URL (repeatable)")->type_name("URL");
  r->add_option("--webhook", f.webhooks, "POST notifications as JSON (repeatable)")->type_name("URL");
  r->add_option("--notify-command", f.commands, "Run CMD with each alert as JSON on stdin")->type_name("CMD");
  r->add_option("--resend-delay", f.resend_delay, "Resend firing alerts this often")->capture_default_str();
  r->add_option("--notify-attempts", f.notify_attempts, "Delivery attempts per notification")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  r->add_option("--notify-backoff", f.notify_backoff, "First retry delay (doubles)")->capture_default_str();
  r->add_option("--notify-timeout", f.notify_timeout, "Per request or command run")->capture_default_str();
  r->add_option("--external-label", f.external_labels, "NAME=VALUE for templates (repeatable)")->type_name("L");
  r->add_option("--external-url", f.external_url, "Base of generatorURL in notifications")->type_name("URL");
  r->add_option("--admin-listen", f.admin_listen, "/healthz /readyz /metrics; '' disables")
      ->option_text("ADDR=127.0.0.1:8894");
  r->footer(
      "SIGHUP reloads the rule files; SIGTERM or SIGINT saves the state, flushes the\n"
      "output and notifications, and exits. URLs are http:// only.");

  CLI::App* c = app.add_subcommand("check", "Check rule files: YAML, queries, templates");
  f.check = c;
  c->add_option("files", f.files, "Rule files")->required()->type_name("FILE");
  c->add_flag("--logql", f.logql, "The files are Loki ruler files (LogQL)");

  CLI::App* t = app.add_subcommand("test", "Run rule unit tests (promtool test rules format)");
  f.test = t;
  t->add_option("files", f.files, "Test files")->required()->type_name("FILE");
}

int Usage(const std::string& sub, const std::string& message) {
  std::cerr << kTool << ": error: " << message << " (see 'tel-rules " << sub << " --help')\n";
  return kExitUsage;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int Check(const Flags& f) {
  int bad = 0;
  telkit::rules::ParseRuleFileOptions po;
  if (f.logql) {
    po.language = telkit::rules::QueryLanguage::kLogQL;
    po.check_expr = telkit::rules::CheckLogQLRuleExpr;
  }
  for (const auto& path : f.files) {
    std::cout << "Checking " << path << "\n";
    auto file = telkit::rules::LoadRuleFile(path, po);
    if (!file.ok()) {
      std::cout << "  FAILED:\n";
      std::cerr << file.status().message() << "\n";
      ++bad;
      continue;
    }
    if (!file->errors.empty()) {
      std::cout << "  FAILED:\n";
      for (const auto& e : file->errors) std::cerr << e.ToString(path) << "\n";
      ++bad;
      continue;
    }
    size_t n = 0;
    for (const auto& g : file->groups) n += g.rules.size();
    std::cout << "  SUCCESS: " << n << " rules found\n";
  }
  return bad ? kExitFailure : kExitOk;
}

int Test(const Flags& f) {
  int bad = 0;
  for (const auto& path : f.files) {
    std::cout << "Unit Testing: " << path << "\n";
    auto r = telkit::rules::RunRuleUnitTests(path);
    if (!r.ok()) {
      std::cout << "  FAILED:\n";
      std::cerr << r.status().message() << "\n";
      ++bad;
      continue;
    }
    if (r->failed) {
      std::cout << "  FAILED:\n";
      for (const auto& e : r->failures) std::cout << e << "\n";
      ++bad;
    } else {
      std::cout << "  SUCCESS\n";
    }
  }
  return bad ? kExitFailure : kExitOk;
}

int Run(const Flags& f) {
  if (f.rules.empty() && f.logql_rules.empty()) return Usage("run", "--rules GLOB is required");
  if (!f.logql_rules.empty() && f.logs_data.empty()) return Usage("run", "--logql-rules needs --logs-data DIR");
  telkit::rules::RulesDaemonOptions o;
  o.rule_globs = f.rules;
  o.logql_rule_globs = f.logql_rules;
  o.data_dir = f.data;
  o.output = f.out;
  o.state_file = f.state;
  o.external_url = f.external_url;
  auto dur = [&](const std::string& flag, const std::string& v, int64_t* out) -> bool {
    auto d = telkit::rules::ParseRuleDuration(v);
    if (!d.ok() || *d <= 0) return false;
    *out = *d;
    (void)flag;
    return true;
  };
  if (!dur("--evaluation-interval", f.interval, &o.default_interval_ms))
    return Usage("run", "--evaluation-interval: bad duration '" + f.interval + "'");
  if (!dur("--resend-delay", f.resend_delay, &o.resend_delay_ms))
    return Usage("run", "--resend-delay: bad duration '" + f.resend_delay + "'");
  if (!dur("--notify-backoff", f.notify_backoff, &o.notify.initial_backoff_ms))
    return Usage("run", "--notify-backoff: bad duration '" + f.notify_backoff + "'");
  if (!dur("--notify-timeout", f.notify_timeout, &o.notify.timeout_ms))
    return Usage("run", "--notify-timeout: bad duration '" + f.notify_timeout + "'");
  for (const auto& l : f.external_labels) {
    size_t eq = l.find('=');
    if (eq == std::string::npos || eq == 0) return Usage("run", "--external-label: want NAME=VALUE, got '" + l + "'");
    o.external_labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  o.notify.alertmanagers = f.alertmanagers;
  o.notify.webhooks = f.webhooks;
  o.notify.commands = f.commands;
  o.notify.max_attempts = f.notify_attempts;
  o.engine.compat = telkit::promql::Compat::kPrometheus3;
  std::optional<telkit::ListenAddress> admin;
  if (!f.admin_listen.empty()) {
    auto a = telkit::ParseListenAddress(f.admin_listen);
    if (!a.ok()) return Usage("run", "--admin-listen: " + a.status().message());
    admin = *a;
  }

  telkit::BlockDaemonSignals();
  telkit::MetricsRegistry registry;
  telkit::RegisterProcessMetrics(registry, kTool);
  std::vector<std::string> load_errors;
  auto daemon = telkit::rules::RulesDaemon::Start(o, registry, &load_errors);
  if (!daemon.ok()) return telkit::ReportFailure(daemon.status());
  if (!f.logs_data.empty()) (*daemon)->SetLogQLEvaluator(std::make_unique<telkit::rules::LogQLEvaluator>(f.logs_data));
  for (const auto& e : load_errors) spdlog::error("{}", e);
  spdlog::info("{} rule groups loaded", (*daemon)->num_groups());
  std::unique_ptr<telkit::AdminServer> admin_server;
  if (admin) {
    auto s = telkit::AdminServer::Start({.listen = *admin}, registry);
    if (!s.ok()) return telkit::ReportFailure(s.status());
    admin_server = std::move(*s);
    spdlog::info("admin endpoint on {}", telkit::ListenAddress{admin->host, admin_server->port()}.ToString());
  }
  telkit::NotifyDaemonReady("evaluating");
  auto tick = [&] {
    telkit::rules::TickReport r = (*daemon)->Tick(NowMs());
    for (const auto& e : r.errors) spdlog::warn("{}", e);
    return true;
  };
  tick();
  const int sig = telkit::RunDaemonLoop({.tick = std::chrono::milliseconds(100),
                                         .on_reload =
                                             [&] {
                                               auto errors = (*daemon)->Reload();
                                               for (const auto& e : errors) spdlog::error("{}", e);
                                               spdlog::info("SIGHUP: {} rule groups loaded", (*daemon)->num_groups());
                                             },
                                         .on_tick = tick});
  if (sig != 0) spdlog::info("received {}, stopping", telkit::DaemonSignalName(sig));
  telkit::NotifyDaemonStopping("flushing");
  (*daemon)->Stop(5000);
  if (admin_server) admin_server->Stop();
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  return telkit::RunTool(
      kTool, "Evaluate Prometheus recording and alerting rules; check and test rule files.", argc, argv,
      [&](CLI::App& app) { Declare(app, flags); },
      [&] {
        if (flags.run->parsed()) return Run(flags);
        if (flags.check->parsed()) return Check(flags);
        if (flags.test->parsed()) return Test(flags);
        std::cerr << kTool << ": error: a subcommand is required: run, check or test (see 'tel-rules --help')\n";
        return kExitUsage;
      });
}
