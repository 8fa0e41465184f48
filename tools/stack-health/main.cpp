// stack-health: checks the whole telkit stack (every daemon's admin
// endpoint, disks, store freshness, TLS expiry, an end-to-end canary) and
// exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, so it drops into
// Nagios-style checks, cron, systemd timers and shell scripts.
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "common/cli/cli.h"
#include "common/health/health_checks.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

struct Flags {
  std::vector<std::string> targets;
  bool no_daemons = false;
  std::string data;
  std::vector<std::string> disks;
  std::vector<std::string> tls_certs;
  std::vector<std::string> tls_connect;
  std::string state_file;
  std::string method = "auto";
  std::string prometheus_url = "http://127.0.0.1:9090";
  std::string loki_url = "http://127.0.0.1:3100";
  std::string tempo_url = "http://127.0.0.1:3200";
  std::string otlp_url = "http://127.0.0.1:4318";
  bool no_freshness = false;
  double freshness_window = 900;
  bool canary = false;
  double canary_timeout = 10;
  double timeout = 2;
  bool json = false;
  bool prometheus = false;
  std::string output;
  double watch = 0;
  std::string color = "auto";
  // thresholds
  double disk_free_warn = 15, disk_free_crit = 5;
  double disk_full_warn = 24, disk_full_crit = 1;
  double dropped_warn = 1, dropped_crit = 0;
  double queue_warn = 80, queue_crit = 95;
  uint64_t spool_warn = 0, wal_warn = 0, memory_warn = 0, memory_crit = 0;
  double stale_warn = 0, stale_crit = 0;
  double cert_warn = 21, cert_crit = 7;
  double canary_warn = 5;
};

void Declare(CLI::App& app, Flags& f) {
  app.footer(
      "Exit status: 0 OK, 1 WARNING, 2 CRITICAL (or a usage error), 3 UNKNOWN.\n"
      "Thresholds of 0 are off. SIZE takes K, M, G suffixes. A config file\n"
      "(--config) takes the long flags as keys: disk-free-warn = 20.");
  app.add_option("-t,--target", f.targets, "Daemon admin endpoint (repeatable)")
      ->type_name("NAME=HOST:PORT")
      ->allow_extra_args(false);
  app.add_flag("--no-daemons", f.no_daemons, "Skip the admin endpoint checks");
  app.add_option("-d,--data", f.data, "Stack data dir (metrics/ logs/ traces/)")->type_name("DIR");
  app.add_option("--disk", f.disks, "Another directory to check (repeatable)")
      ->type_name("DIR")
      ->allow_extra_args(false);
  app.add_option("--tls-cert", f.tls_certs, "PEM certificate to check (repeatable)")
      ->type_name("FILE")
      ->allow_extra_args(false);
  app.add_option("--tls-connect", f.tls_connect, "TLS listener to check (repeatable)")
      ->type_name("HOST:PORT")
      ->allow_extra_args(false);
  app.add_option("--state-file", f.state_file, "Remember counters and sizes here")->type_name("FILE");
  app.add_option("--query-method", f.method, "Read stores: auto|api|store")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "api", "store"}));
  app.add_option("--prometheus-url", f.prometheus_url, "Prometheus HTTP API")->type_name("URL")->capture_default_str();
  app.add_option("--loki-url", f.loki_url, "Loki HTTP API")->type_name("URL")->capture_default_str();
  app.add_option("--tempo-url", f.tempo_url, "Tempo HTTP API")->type_name("URL")->capture_default_str();
  app.add_option("--otlp-url", f.otlp_url, "OTLP/HTTP receiver of the canary")->type_name("URL")->capture_default_str();
  app.add_flag("--no-freshness", f.no_freshness, "Skip the store freshness checks");
  app.add_option("--freshness-window", f.freshness_window, "Seconds back to look for data")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--canary", f.canary, "Send a canary through OTLP and time it");
  app.add_option("--canary-timeout", f.canary_timeout, "Seconds to wait for the canary")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--timeout", f.timeout, "Seconds each HTTP request may take")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", f.json, "Print JSON");
  app.add_flag("--prometheus", f.prometheus, "Print Prometheus text (textfile)");
  app.add_option("-o,--output", f.output, "Write the output to FILE atomically")->type_name("FILE");
  app.add_option("-w,--watch", f.watch, "Run again every SECONDS until Ctrl-C")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber);
  app.add_option("--color", f.color, "Colour the table: auto|always|never")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "always", "never"}));
  auto num = [&](const char* name, double& v, const char* unit, const char* help) {
    app.add_option(name, v, help)
        ->type_name(unit)
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber)
        ->group("Thresholds");
  };
  auto size = [&](const char* name, uint64_t& v, const char* help) {
    app.add_option(name, v, help)
        ->transform(CLI::AsSizeValue(false))
        ->option_text("SIZE=0")
        ->group("Thresholds");
  };
  num("--disk-free-warn", f.disk_free_warn, "PCT", "Free disk % at most");
  num("--disk-free-crit", f.disk_free_crit, "PCT", "Free disk % at most");
  num("--disk-full-warn", f.disk_full_warn, "HOURS", "Hours until full at most");
  num("--disk-full-crit", f.disk_full_crit, "HOURS", "Hours until full at most");
  num("--dropped-warn", f.dropped_warn, "N", "Items dropped since last run");
  num("--dropped-crit", f.dropped_crit, "N", "Items dropped since last run");
  num("--queue-warn", f.queue_warn, "PCT", "Queue fill % at least");
  num("--queue-crit", f.queue_crit, "PCT", "Queue fill % at least");
  size("--spool-warn", f.spool_warn, "Bytes spooled to disk");
  size("--wal-warn", f.wal_warn, "WAL size of a store");
  size("--memory-warn", f.memory_warn, "Resident memory of a daemon");
  size("--memory-crit", f.memory_crit, "Resident memory of a daemon");
  num("--stale-warn", f.stale_warn, "SECONDS", "Seconds since the newest item");
  num("--stale-crit", f.stale_crit, "SECONDS", "Seconds since the newest item");
  num("--cert-warn", f.cert_warn, "DAYS", "Days until a certificate expires");
  num("--cert-crit", f.cert_crit, "DAYS", "Days until a certificate expires");
  num("--canary-warn", f.canary_warn, "SECONDS", "Canary latency in seconds");
}

int Run(const Flags& f) {
  std::signal(SIGPIPE, SIG_IGN);
  if (f.json && f.prometheus) {
    spdlog::error("--json and --prometheus exclude each other");
    return telkit::kExitUsage;
  }
  telkit::HealthOptions o;
  if (!f.targets.empty()) {
    o.targets.clear();
    for (const auto& spec : f.targets) {
      telkit::Result<telkit::HealthTarget> t = telkit::ParseHealthTarget(spec);
      if (!t.ok()) {
        spdlog::error("{}", t.status().message());
        return telkit::kExitUsage;
      }
      o.targets.push_back(*t);
    }
  }
  if (f.no_daemons) o.targets.clear();
  o.data_dir = f.data;
  o.disk_paths = f.disks;
  o.tls_cert_files = f.tls_certs;
  o.tls_connect = f.tls_connect;
  o.state_file = f.state_file;
  o.method = *telkit::ParseQueryMethod(f.method);
  o.prometheus_url = f.prometheus_url;
  o.loki_url = f.loki_url;
  o.tempo_url = f.tempo_url;
  o.otlp_url = f.otlp_url;
  o.freshness = !f.no_freshness;
  o.freshness_window_s = f.freshness_window;
  o.canary = f.canary;
  o.canary_timeout_s = f.canary_timeout;
  o.timeout_ms = static_cast<int>(f.timeout * 1000);
  telkit::HealthThresholds& th = o.thresholds;
  th.disk_free_warn = f.disk_free_warn / 100;
  th.disk_free_crit = f.disk_free_crit / 100;
  th.disk_full_warn_s = f.disk_full_warn * 3600;
  th.disk_full_crit_s = f.disk_full_crit * 3600;
  th.dropped_warn = f.dropped_warn;
  th.dropped_crit = f.dropped_crit;
  th.queue_warn = f.queue_warn / 100;
  th.queue_crit = f.queue_crit / 100;
  th.spool_warn_bytes = static_cast<double>(f.spool_warn);
  th.wal_warn_bytes = static_cast<double>(f.wal_warn);
  th.memory_warn_bytes = static_cast<double>(f.memory_warn);
  th.memory_crit_bytes = static_cast<double>(f.memory_crit);
  th.stale_warn_s = f.stale_warn;
  th.stale_crit_s = f.stale_crit;
  th.cert_warn_s = f.cert_warn * 86400;
  th.cert_crit_s = f.cert_crit * 86400;
  th.canary_warn_s = f.canary_warn;

  bool tty = f.output.empty() && telkit::IsTerminal(1);
  bool color = f.color == "always" || (f.color == "auto" && tty && std::getenv("NO_COLOR") == nullptr);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  telkit::HealthMemory memory;
  telkit::HealthState state = telkit::HealthState::kUnknown;
  for (bool first = true; !g_stop; first = false) {
    auto started = std::chrono::steady_clock::now();
    telkit::HealthReport report = telkit::RunHealthOnce(o, &memory);
    state = report.Overall();
    std::string text = f.json         ? telkit::RenderJson(report)
                       : f.prometheus ? telkit::RenderPrometheus(report)
                                      : telkit::RenderTable(report, color);
    if (!f.output.empty()) {
      telkit::Status s = telkit::WriteFileAtomically(f.output, text);
      if (!s.ok()) {
        spdlog::error("{}", s.message());
        return static_cast<int>(telkit::HealthState::kUnknown);
      }
    } else {
      if (f.watch > 0 && tty && !f.json && !f.prometheus) std::fputs("\033[H\033[2J", stdout);
      if (f.watch > 0 && !first && (f.json || f.prometheus) == false && !tty) std::fputs("\n", stdout);
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    }
    if (f.watch <= 0) break;
    auto until = started + std::chrono::milliseconds(static_cast<int64_t>(f.watch * 1000));
    while (!g_stop && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return static_cast<int>(state);
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  return telkit::RunTool(
      "stack-health", "Check the telkit stack: daemons, disks, freshness, TLS, an end-to-end canary.", argc, argv,
      [&](CLI::App& app) { Declare(app, flags); }, [&] { return Run(flags); });
}
