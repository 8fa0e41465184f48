// tel-query: queries telemetry from the terminal and serves the query APIs.
//   tel-query promql EXPR        PromQL at one time or over a range
//   tel-query series MATCH...    series, labels, label-values NAME
//   tel-query serve              the Prometheus HTTP API over the store
// Logic lives in common/query (query_cli.h, query_server.h).
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "common/api/prometheus_api.h"
#include "common/cli/cli.h"
#include "common/daemon/daemon.h"
#include "common/model/memory_store.h"
#include "common/promql/query_output.h"
#include "common/query/query_cli.h"
#include "common/query/query_server.h"

namespace {

using telkit::kExitFailure;
using telkit::kExitOk;
using telkit::kExitUsage;

struct Flags {
  // Shared by the subcommands.
  std::string data_dir;
  std::vector<std::string> load_files;
  std::string output = "table";
  std::string compat = "3";
  std::string lookback = "5m";
  std::string timeout = "2m";
  int64_t max_samples = 50'000'000;
  // promql
  telkit::promql::QueryRequest req;
  // series / labels / label-values
  std::vector<std::string> match;
  std::string name;
  std::string meta_start, meta_end;
  // serve
  std::string listen = "127.0.0.1:9090";
  std::string admin_listen = "127.0.0.1:8893";
  std::string rules_state;
  CLI::App *promql = nullptr, *series = nullptr, *labels = nullptr, *label_values = nullptr, *serve = nullptr;
};

void DataFlags(CLI::App* c, Flags& f) {
  c->add_option("--data", f.data_dir, "The metrics store directory (tsdb-write's)")->type_name("DIR");
  c->add_option("--load", f.load_files, "Data instead: a .test script or exposition file")
      ->type_name("FILE")
      ->allow_extra_args(false)
      ->check(CLI::ExistingFile);
}

void EngineFlags(CLI::App* c, Flags& f) {
  c->add_option("--compat", f.compat, "Semantics of Prometheus 3 (default) or 2 (2.42)")
      ->capture_default_str()
      ->check(CLI::IsMember({"2", "3"}));
  c->add_option("--lookback-delta", f.lookback, "How far back a selector looks")->capture_default_str();
  c->add_option("--timeout", f.timeout, "Give up a query after this long")->capture_default_str();
  c->add_option("--max-samples", f.max_samples, "Refuse queries that hold more samples")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

void MetaFlags(CLI::App* c, Flags& f) {
  c->add_option("--start", f.meta_start, "Only series with samples after S")->type_name("S");
  c->add_option("--end", f.meta_end, "Only series with samples before E")->type_name("E");
  DataFlags(c, f);
  c->add_option("-o,--output", f.output, "Output: table|json")
      ->capture_default_str()
      ->check(CLI::IsMember({"table", "json"}));
}

void Declare(CLI::App& app, Flags& f) {
  app.require_subcommand(0, 1);
  app.footer(
      "Run 'tel-query SUBCOMMAND --help' for its flags. Times T, S, E: now, now-1h,\n"
      "-15m, Unix seconds or RFC 3339; durations D: 15s, 1m30s or seconds.");
  CLI::App* p = app.add_subcommand("promql", "Evaluate a PromQL expression");
  f.promql = p;
  p->add_option("expr", f.req.expr, "The PromQL expression")->required()->type_name("EXPR");
  p->add_option("--time", f.req.time, "Instant query at T (default: now)")->type_name("T");
  p->add_option("--start", f.req.start, "Range query from S")->type_name("S");
  p->add_option("--end", f.req.end, "Range query up to E (default: now)")->type_name("E");
  p->add_option("--step", f.req.step, "Range query resolution: 15s, 1m, 30")->type_name("D");
  DataFlags(p, f);
  p->add_option("-o,--output,--format", f.output, "Output: table|json|csv|chart")
      ->capture_default_str()
      ->check(CLI::IsMember({"table", "json", "csv", "chart"}));
  p->add_flag("--format-query", f.req.format_query, "Print the query in canonical form");
  EngineFlags(p, f);
  p->footer(
      "T, S and E: now, now-1h, -15m, Unix seconds or RFC 3339; D a duration or\n"
      "seconds. --step needs --start; --time excludes --start/--end/--step.\n"
      "chart: a line chart in braille, in colour on a terminal unless NO_COLOR.");

  CLI::App* s = app.add_subcommand("series", "List the series that match selectors");
  f.series = s;
  s->add_option("match", f.match, "Series selectors: up, '{job=\"api\"}'")->required()->type_name("MATCH");
  MetaFlags(s, f);

  CLI::App* l = app.add_subcommand("labels", "List label names");
  f.labels = l;
  l->add_option("--match", f.match, "Only of series matching this selector (repeatable)")->type_name("MATCH");
  MetaFlags(l, f);

  CLI::App* v = app.add_subcommand("label-values", "List the values of a label");
  f.label_values = v;
  v->add_option("name", f.name, "The label name (__name__: metric names)")->required()->type_name("NAME");
  v->add_option("--match", f.match, "Only of series matching this selector (repeatable)")->type_name("MATCH");
  MetaFlags(v, f);

  CLI::App* d = app.add_subcommand("serve", "Serve the Prometheus HTTP API over the store");
  f.serve = d;
  d->add_option("--listen", f.listen, "Prometheus API address")->option_text("ADDR=127.0.0.1:9090");
  d->add_option("--rules-state", f.rules_state, "tel-rules' state: /api/v1/rules, /alerts")->type_name("FILE");
  d->add_option("--admin-listen", f.admin_listen, "/healthz /readyz /metrics; empty: none")
      ->option_text("ADDR=127.0.0.1:8893");
  DataFlags(d, f);
  EngineFlags(d, f);
  d->footer(
      "ADDR is HOST:PORT. SIGTERM or SIGINT finishes requests in progress and exits;\n"
      "SIGHUP is accepted and changes nothing.");
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int Usage(const std::string& sub, const std::string& message) {
  std::cerr << "tel-query: error: " << message << " (see 'tel-query " << sub << " --help')\n";
  return kExitUsage;
}

// Engine options from the shared flags; "" on success, else the message.
std::string BuildEngine(const Flags& f, telkit::promql::EngineOptions& e) {
  auto lookback = telkit::promql::ParseApiDuration(f.lookback);
  auto timeout = telkit::promql::ParseApiDuration(f.timeout);
  if (!lookback.ok() || !timeout.ok()) return std::string((lookback.ok() ? timeout : lookback).status().message());
  e.compat = f.compat == "2" ? telkit::promql::Compat::kPrometheus2 : telkit::promql::Compat::kPrometheus3;
  e.lookback_delta_ms = *lookback;
  e.timeout = std::chrono::milliseconds(*timeout);
  e.max_samples = f.max_samples;
  return "";
}

int Print(const std::string& text) {
  std::cout << text;
  std::cout.flush();
  return std::cout ? kExitOk : kExitFailure;
}

int RunPromql(Flags& f) {
  telkit::promql::QueryRequest& r = f.req;
  if (!r.time.empty() && (!r.start.empty() || !r.end.empty() || !r.step.empty())) {
    return Usage("promql", "--time excludes --start, --end and --step");
  }
  if (r.start.empty() != r.step.empty() || (!r.end.empty() && r.start.empty())) {
    return Usage("promql", "a range query needs --start and --step");
  }
  if (!f.data_dir.empty() && !f.load_files.empty()) return Usage("promql", "--data and --load exclude each other");
  if (std::string m = BuildEngine(f, r.engine); !m.empty()) return Usage("promql", m);
  if (r.format_query) {
    r.json = false;
    auto out = telkit::promql::RunQuery(r, NowMs());
    if (!out.ok()) return telkit::ReportFailure(out.status());
    return Print(*out);
  }
  const bool json = f.output == "json";
  const int64_t now = NowMs();
  const bool range = !r.start.empty();
  int64_t t = now, start = 0, end = now, step = 0;
  telkit::Status bad;
  auto parse = [&](const std::string& text, int64_t& into) {
    if (text.empty() || !bad.ok()) return;
    auto v = telkit::query::ParseCliTime(text, now);
    if (v.ok()) into = *v; else bad = v.status();
  };
  parse(r.time, t);
  parse(r.start, start);
  parse(r.end, end);
  if (range && bad.ok()) {
    auto d = telkit::promql::ParseApiDuration(r.step);
    if (d.ok()) step = *d; else bad = d.status();
  }
  if (!bad.ok()) return Usage("promql", std::string(bad.message()));

  auto fail = [&](const telkit::Status& s) {
    if (json) std::cout << telkit::promql::FormatApiError(s) << "\n" << std::flush;
    int code = telkit::ReportFailure(s);
    std::cerr << telkit::query::CaretLines(r.expr, s.message());
    return code;
  };
  telkit::query::DataSource source{f.data_dir, f.load_files};
  std::shared_ptr<telkit::Querier> querier;
  if (source.data_dir.empty() && source.load_files.empty()) {
    querier = std::make_shared<telkit::MemoryStore>();  // constant expressions need no data
  } else {
    auto q = telkit::query::OpenDataSource(source, range ? end : t);
    if (!q.ok()) return fail(q.status());
    querier = *q;
  }
  telkit::promql::Engine engine(r.engine);
  auto result = range ? engine.RangeQuery(*querier, r.expr, start, end, step) : engine.InstantQuery(*querier, r.expr, t);
  if (!result.ok()) return fail(result.status());
  for (const std::string& w : result->warnings) spdlog::warn("{}", w);
  if (json) {
    auto body = telkit::api::FormatQueryResponse(*result, result->warnings);
    if (!body.ok()) return fail(body.status());
    return Print(*body + "\n");
  }
  if (f.output == "csv") return Print(telkit::query::FormatCsv(*result));
  if (f.output == "chart") {
    telkit::query::ChartOptions chart;
    chart.color = telkit::IsTerminal(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr;
    winsize ws{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) chart.width = ws.ws_col;
    else if (const char* c = std::getenv("COLUMNS"); c != nullptr && std::atoi(c) > 20) chart.width = std::atoi(c);
    chart.width = std::min(chart.width, 400);
    return Print(telkit::query::FormatChart(*result, chart));
  }
  return Print(telkit::promql::FormatTable(*result));
}

int RunMeta(Flags& f, CLI::App* sub) {
  const std::string name = sub->get_name();
  if (!f.data_dir.empty() && !f.load_files.empty()) return Usage(name, "--data and --load exclude each other");
  if (f.data_dir.empty() && f.load_files.empty()) return Usage(name, "no data: give --data DIR or --load FILE");
  const int64_t now = NowMs();
  telkit::api::ApiRequest req;
  for (auto [text, param] : {std::pair{f.meta_start, "start"}, std::pair{f.meta_end, "end"}}) {
    if (text.empty()) continue;
    auto v = telkit::query::ParseCliTime(text, now);
    if (!v.ok()) return Usage(name, std::string(v.status().message()));
    req.params.emplace_back(param, telkit::promql::FormatApiTime(*v));
  }
  for (const std::string& m : f.match) req.params.emplace_back("match[]", m);
  req.path = sub == f.series ? "/api/v1/series" : sub == f.labels ? "/api/v1/labels" : "/api/v1/label/" + f.name + "/values";
  auto backend = telkit::query::MakeBackend({f.data_dir, f.load_files}, now);
  if (!backend.ok()) return telkit::ReportFailure(backend.status());
  telkit::api::PrometheusApiOptions options;
  options.now_ms = [now] { return now; };
  telkit::api::PrometheusApi api(options, std::move(*backend));
  telkit::api::ApiResponse resp = api.Handle(req);
  const bool json = f.output == "json";
  if (resp.status != 200) {
    if (json) std::cout << resp.body << "\n" << std::flush;
    std::string message = resp.body;
    if (auto pos = message.find("\"error\":\""); pos != std::string::npos) {
      message = message.substr(pos + 9);
      if (auto q = message.rfind('"'); q != std::string::npos) message.resize(q);
    }
    return telkit::ReportFailure(telkit::InvalidArgumentError(message));
  }
  if (json) return Print(resp.body + "\n");
  auto table = telkit::query::FormatMetadataTable(resp.body, sub == f.series);
  if (!table.ok()) return telkit::ReportFailure(table.status());
  return Print(*table);
}

int RunServe(Flags& f) {
  telkit::query::QueryServerOptions options;
  options.data = {f.data_dir, f.load_files};
  if (f.data_dir.empty() && f.load_files.empty()) return Usage("serve", "no data: give --data DIR or --load FILE");
  if (!f.data_dir.empty() && !f.load_files.empty()) return Usage("serve", "--data and --load exclude each other");
  telkit::api::PrometheusApiServerOptions api;
  auto listen = telkit::ParseListenAddress(f.listen);
  if (!listen.ok()) return Usage("serve", "--listen: " + std::string(listen.status().message()));
  api.listen = *listen;
  if (std::string m = BuildEngine(f, api.api.engine); !m.empty()) return Usage("serve", m);
  api.api.flags = {{"query.lookback-delta", f.lookback}, {"query.timeout", f.timeout},
                   {"query.max-samples", std::to_string(f.max_samples)}, {"storage.tsdb.path", f.data_dir}};
  options.prometheus = api;
  options.rules_state = f.rules_state;
  if (!f.admin_listen.empty()) {
    auto admin = telkit::ParseListenAddress(f.admin_listen);
    if (!admin.ok()) return Usage("serve", "--admin-listen: " + std::string(admin.status().message()));
    options.admin = *admin;
  }
  telkit::BlockDaemonSignals();
  auto server = telkit::query::QueryServer::Start(options);
  if (!server.ok()) return telkit::ReportFailure(server.status());
  spdlog::info("Prometheus API on {}", telkit::ListenAddress{listen->host, (*server)->prometheus_port()}.ToString());
  if (options.admin) {
    spdlog::info("admin endpoint on {}", telkit::ListenAddress{options.admin->host, (*server)->admin_port()}.ToString());
  }
  telkit::NotifyDaemonReady("serving queries");
  const int sig = telkit::RunDaemonLoop(
      {.tick = std::chrono::milliseconds(1000),
       .on_reload = [] { spdlog::info("SIGHUP: nothing to reload (the store is reopened for every request)"); },
       .on_tick = {}});
  telkit::NotifyDaemonStopping("");
  spdlog::info("signal {}: finishing requests in progress", sig);
  (*server)->Stop();
  return kExitOk;
}

int Run(Flags& f) {
  if (f.promql->parsed()) return RunPromql(f);
  if (f.serve->parsed()) return RunServe(f);
  for (CLI::App* sub : {f.series, f.labels, f.label_values}) {
    if (sub->parsed()) return RunMeta(f, sub);
  }
  std::cerr << "tel-query: error: a subcommand is required: promql, series, labels, label-values or serve "
               "(see 'tel-query --help')\n";
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  return telkit::RunTool(
      "tel-query", "Query telemetry: PromQL over the metrics store, and its HTTP API", argc, argv,
      [&](CLI::App& app) { Declare(app, flags); }, [&] { return Run(flags); });
}
