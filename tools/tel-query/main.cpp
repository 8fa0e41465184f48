// tel-query: queries telemetry from the terminal and serves the query APIs.
//   tel-query promql EXPR        PromQL at one time or over a range
//   tel-query series MATCH...    series, labels, label-values NAME
//   tel-query serve              the Prometheus HTTP API over the store
//                                (Loki's over --logs-data, Tempo's over --traces-data)
//   tel-query trace ID           a trace as a waterfall, with its log lines
//   tel-query traceql Q          traces matching a TraceQL query, as a table
//   tel-query services           the service graph from the span metrics
//   tel-query logql QUERY        LogQL over the log store (--logs-data)
//   tel-query logs [QUERY]       recent log lines, --follow, --trace-id
// Logic lives in common/query (query_cli.h, query_server.h, trace_cli.h, logs_cli.h).
#include <malloc.h>
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
#include "common/fs/file_system.h"
#include "common/logql/logs_command.h"
#include "common/logql/parser.h"
#include "common/logql/output.h"
#include "common/model/memory_store.h"
#include "common/promql/query_output.h"
#include "common/query/query_cli.h"
#include "common/query/logs_cli.h"
#include "common/query/query_server.h"
#include "common/query/trace_cli.h"
#include "common/traceql/parser.h"
#include "common/tracestore/trace_reader.h"

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
  // Traces (serve --tempo-listen; trace, traceql)
  std::string traces_data;
  std::string tempo_listen = "127.0.0.1:3200";
  // trace / traceql / services
  std::string traceql, traceql_since, window = "5m", at;  // trace_id, logs_data: below
  bool attributes = false, no_logs = false;
  size_t limit = 20, spss = 3;
  std::string rules_state;
  CLI::App *promql = nullptr, *series = nullptr, *labels = nullptr, *label_values = nullptr, *serve = nullptr;
  CLI::App *trace = nullptr, *traceql_cmd = nullptr, *services = nullptr;
  std::string loki_listen = "127.0.0.1:3100";
  // logql / logs (the log store)
  std::string logs_data;
  std::string logql, log_time, log_start, log_end, log_step, log_direction = "backward", log_output = "table";
  size_t log_limit = 100;
  std::string since = "1h", trace_id, color = "auto";
  bool follow = false;
  CLI::App *logql_cmd = nullptr, *logs_cmd = nullptr;
};

void DataFlags(CLI::App* c, Flags& f);

void TracesFlag(CLI::App* c, Flags& f) {
  c->add_option("--traces-data", f.traces_data, "The trace store directory (trace-store's)")
      ->type_name("DIR")
      ->required();
}

void DeclareTraces(CLI::App& app, Flags& f) {
  CLI::App* t = app.add_subcommand("trace", "Draw a trace as a waterfall, then its log lines");
  f.trace = t;
  t->add_option("id", f.trace_id, "The trace id (hex)")->required()->type_name("ID");
  TracesFlag(t, f);
  t->add_flag("--attributes", f.attributes, "Show span attributes, events and links");
  t->add_option("--logs-data", f.logs_data, "The log store directory: print the trace's lines")->type_name("DIR");
  t->add_flag("--no-logs", f.no_logs, "Do not print log lines");
  t->footer("Colours on a terminal unless NO_COLOR; width from the terminal or COLUMNS.");

  CLI::App* q = app.add_subcommand("traceql", "List the traces that match a TraceQL query");
  f.traceql_cmd = q;
  q->add_option("query", f.traceql, "The TraceQL query: '{ status = error }'")->required()->type_name("Q");
  TracesFlag(q, f);
  q->add_option("--since", f.traceql_since, "Traces of the last D (default: all)")->type_name("D");
  q->add_option("--start", f.meta_start, "Traces from S")->type_name("S");
  q->add_option("--end", f.meta_end, "Traces up to E")->type_name("E");
  q->add_option("--limit", f.limit, "At most N traces, latest first")->capture_default_str()->type_name("N");
  q->add_option("--spss", f.spss, "Spans listed per spanset (json)")->capture_default_str()->type_name("N");
  q->add_option("-o,--output", f.output, "Output: table|json")
      ->capture_default_str()
      ->check(CLI::IsMember({"table", "json"}));

  CLI::App* g = app.add_subcommand("services", "Print the service graph from span metrics");
  f.services = g;
  DataFlags(g, f);
  g->add_option("--time", f.at, "At T (default: now)")->type_name("T");
  g->add_option("--window", f.window, "Rates and latencies over the last D")->capture_default_str()->type_name("D");
}

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

void DeclareLogs(CLI::App& app, Flags& f) {
  CLI::App* q = app.add_subcommand("logql", "Evaluate a LogQL query over the log store");
  f.logql_cmd = q;
  q->add_option("query", f.logql, "The LogQL query")->required()->type_name("QUERY");
  q->add_option("--logs-data", f.logs_data, "The log store directory (log-ingest's)")->required()->type_name("DIR");
  q->add_option("--time", f.log_time, "Metric query: instant at T (default: now)")->type_name("T");
  q->add_option("--start", f.log_start, "From S (default: now-1h; metric: a range query)")->type_name("S");
  q->add_option("--end", f.log_end, "Up to E (default: now)")->type_name("E");
  q->add_option("--step", f.log_step, "Metric range query resolution (default: range/250)")->type_name("D");
  q->add_option("--limit", f.log_limit, "Log query: at most N lines (0: all)")->capture_default_str();
  q->add_option("--direction", f.log_direction, "Log query: backward (newest first) or forward")
      ->capture_default_str()
      ->check(CLI::IsMember({"backward", "forward"}));
  q->add_option("-o,--output", f.log_output, "Output: table|json|raw")
      ->capture_default_str()
      ->check(CLI::IsMember({"table", "json", "raw"}));
  q->footer("A log query reads [S, E); a metric query runs at T, or over S..E by D.\n"
            "json: Loki's /loki/api/v1/query_range body.");

  CLI::App* l = app.add_subcommand("logs", "Print recent log lines, like tail (-f)");
  f.logs_cmd = l;
  l->add_option("query", f.logql, "Selector and pipeline (default: every stream)")->type_name("QUERY");
  l->add_option("--logs-data", f.logs_data, "The log store directory (log-ingest's)")->required()->type_name("DIR");
  l->add_option("--since", f.since, "Lines of the last D")->capture_default_str();
  l->add_option("--limit", f.log_limit, "At most N lines before following (0: all)")->capture_default_str();
  l->add_flag("-f,--follow", f.follow, "Keep printing new lines until interrupted");
  l->add_option("--trace-id", f.trace_id, "Only the lines of this trace (trace_id metadata)")->type_name("ID");
  l->add_option("-o,--output", f.log_output, "Output: table|json|raw")
      ->capture_default_str()
      ->check(CLI::IsMember({"table", "json", "raw"}));
  l->add_option("--color", f.color, "Colour lines by level: auto|always|never")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "always", "never"}));
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

  DeclareLogs(app, f);

  CLI::App* d = app.add_subcommand("serve", "Serve the Prometheus HTTP API over the store");
  f.serve = d;
  d->add_option("--listen", f.listen, "Prometheus API address")->option_text("ADDR=127.0.0.1:9090");
  d->add_option("--rules-state", f.rules_state, "tel-rules' state: /api/v1/rules, /alerts")->type_name("FILE");
  d->add_option("--admin-listen", f.admin_listen, "/healthz /readyz /metrics; empty: none")
      ->option_text("ADDR=127.0.0.1:8893");
  DataFlags(d, f);
  d->add_option("--traces-data", f.traces_data, "The trace store directory (trace-store's)")->type_name("DIR");
  d->add_option("--tempo-listen", f.tempo_listen, "Tempo API address (needs --traces-data); empty: none")
      ->option_text("ADDR=127.0.0.1:3200");
  d->add_option("--logs-data", f.logs_data, "The log store directory: serves Loki's API")->type_name("DIR");
  d->add_option("--loki-listen", f.loki_listen, "Loki API address (with --logs-data); empty: none")
      ->option_text("ADDR=127.0.0.1:3100");
  EngineFlags(d, f);
  DeclareTraces(app, f);
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
  if ((result->type == telkit::promql::ValueType::kVector || result->type == telkit::promql::ValueType::kMatrix) &&
      result->series.empty()) {
    // An empty table would print nothing at all; say so, on stderr so that
    // stdout stays the (empty) result for scripts. Exit status stays 0.
    std::cerr << "tel-query: no data: the query returned no series\n";
    return 0;
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
  // glibc gives each request thread its own arena and keeps what a big
  // range query freed in it: with 8+ threads peak RSS grew ~10 MiB a
  // query (55 MiB after four range queries, 36 MiB with two arenas).
  mallopt(M_ARENA_MAX, 2);
  telkit::query::QueryServerOptions options;
  options.data = {f.data_dir, f.load_files};
  const bool metrics = !f.data_dir.empty() || !f.load_files.empty();
  if (!metrics && f.logs_data.empty() && f.traces_data.empty()) {
    return Usage("serve", "no data: give --data DIR, --load FILE, --logs-data DIR or --traces-data DIR");
  }
  if (!f.data_dir.empty() && !f.load_files.empty()) return Usage("serve", "--data and --load exclude each other");
  if (!f.logs_data.empty() && !f.loki_listen.empty()) {
    auto loki = telkit::ParseListenAddress(f.loki_listen);
    if (!loki.ok()) return Usage("serve", "--loki-listen: " + std::string(loki.status().message()));
    telkit::lokiapi::LokiApiServerOptions lo;
    lo.listen = *loki;
    options.loki = lo;
    options.logs_data = f.logs_data;
  }
  telkit::api::PrometheusApiServerOptions api;
  auto listen = telkit::ParseListenAddress(f.listen);
  if (!listen.ok()) return Usage("serve", "--listen: " + std::string(listen.status().message()));
  api.listen = *listen;
  if (std::string m = BuildEngine(f, api.api.engine); !m.empty()) return Usage("serve", m);
  api.api.flags = {{"query.lookback-delta", f.lookback}, {"query.timeout", f.timeout},
                   {"query.max-samples", std::to_string(f.max_samples)}, {"storage.tsdb.path", f.data_dir}};
  if (metrics) options.prometheus = api;
  if (!f.traces_data.empty() && !f.tempo_listen.empty()) {
    auto tempo = telkit::ParseListenAddress(f.tempo_listen);
    if (!tempo.ok()) return Usage("serve", "--tempo-listen: " + std::string(tempo.status().message()));
    telkit::tempoapi::TempoApiServerOptions t;
    t.listen = *tempo;
    t.api.traces_dir = f.traces_data;
    options.tempo = t;
  }
  if (!options.prometheus && !options.loki && !options.tempo) {
    return Usage("serve", "nothing to serve: --logs-data needs --loki-listen, --traces-data --tempo-listen");
  }
  options.rules_state = f.rules_state;
  if (!f.admin_listen.empty()) {
    auto admin = telkit::ParseListenAddress(f.admin_listen);
    if (!admin.ok()) return Usage("serve", "--admin-listen: " + std::string(admin.status().message()));
    options.admin = *admin;
  }
  telkit::BlockDaemonSignals();
  auto server = telkit::query::QueryServer::Start(options);
  if (!server.ok()) return telkit::ReportFailure(server.status());
  if (options.prometheus) {
    spdlog::info("Prometheus API on {}", telkit::ListenAddress{listen->host, (*server)->prometheus_port()}.ToString());
  }
  if (options.tempo) {
    spdlog::info("Tempo API on {}", telkit::ListenAddress{options.tempo->listen.host, (*server)->tempo_port()}.ToString());
  }
  if (options.loki) {
    spdlog::info("Loki API on {}", telkit::ListenAddress{options.loki->listen.host, (*server)->loki_port()}.ToString());
  }
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

int TerminalWidth() {
  winsize ws{};
  int w = 100;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) w = ws.ws_col;
  else if (const char* c = std::getenv("COLUMNS"); c != nullptr && std::atoi(c) > 20) w = std::atoi(c);
  return std::min(w, 400);
}

bool UseColor() { return telkit::IsTerminal(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr; }

int RunTrace(Flags& f) {
  auto id = telkit::ParseHexId(f.trace_id);
  if (!id.ok() || id->size() != 16) return Usage("trace", "invalid trace id '" + f.trace_id + "': want 32 hex digits");
  telkit::query::WaterfallOptions o;
  o.width = TerminalWidth();
  o.color = UseColor();
  o.attributes = f.attributes;
  auto out = telkit::query::RenderTrace(f.traces_data, f.trace_id, f.no_logs ? "" : f.logs_data, o);
  if (!out.ok()) return telkit::ReportFailure(out.status());
  return Print(*out);
}

int RunTraceql(Flags& f) {
  auto query = telkit::traceql::Parse(f.traceql);
  if (!query.ok()) {
    int code = telkit::ReportFailure(query.status());
    return code == kExitFailure ? kExitUsage : code;
  }
  telkit::query::TraceqlSearchFlags flags{f.traceql_since, f.meta_start, f.meta_end, f.limit, f.spss};
  auto o = telkit::query::TraceqlSearchOptions(flags, NowMs());
  if (!o.ok()) return Usage("traceql", std::string(o.status().message()));
  auto reader = telkit::TraceReader::Open(f.traces_data);
  if (!reader.ok()) return telkit::ReportFailure(reader.status().WithContext("open the trace store '" + f.traces_data + "'"));
  auto source = telkit::traceql::NewTraceReaderSource(reader->get());
  auto result = telkit::traceql::Search(*source, **query, *o);
  if (!result.ok()) return telkit::ReportFailure(result.status());
  if (f.output == "json") return Print(telkit::query::FormatTraceqlJson(*result));
  return Print(telkit::query::FormatTraceqlTable(*result));
}

int RunServices(Flags& f) {
  if (!f.data_dir.empty() && !f.load_files.empty()) return Usage("services", "--data and --load exclude each other");
  if (f.data_dir.empty() && f.load_files.empty()) return Usage("services", "no data: give --data DIR or --load FILE");
  auto t = telkit::query::ServicesTime(f.at, f.window, NowMs());
  if (!t.ok()) return Usage("services", std::string(t.status().message()));
  auto querier = telkit::query::OpenDataSource({f.data_dir, f.load_files}, *t);
  if (!querier.ok()) return telkit::ReportFailure(querier.status());
  auto edges = telkit::query::ServiceGraph(**querier, *t, f.window);
  if (!edges.ok()) return telkit::ReportFailure(edges.status());
  return Print(telkit::query::FormatServiceGraph(*edges));
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int RunLogql(Flags& f) {
  auto expr = telkit::logql::ParseExpr(f.logql);
  if (!expr.ok()) return telkit::ReportFailure(expr.status());
  telkit::query::LogqlWindowFlags window{f.log_time, f.log_start, f.log_end, f.log_step, f.log_direction, f.log_limit};
  auto params = telkit::query::LogqlQueryParams(window, (*expr)->IsLog(), NowMs());
  if (!params.ok()) return Usage("logql", std::string(params.status().message()));
  const telkit::logql::QueryParams& p = *params;
  auto reader = telkit::LogReader::Open(telkit::DefaultFileSystem(), f.logs_data);
  if (!reader.ok()) return telkit::ReportFailure(reader.status());
  telkit::logql::Engine engine(reader->get());
  auto t0 = std::chrono::steady_clock::now();
  auto r = engine.Execute(**expr, p);
  if (!r.ok()) return telkit::ReportFailure(r.status());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (f.log_output == "json") return Print(telkit::logql::FormatLokiJson(*r, secs) + "\n");
  if (f.log_output == "raw") return Print(telkit::logql::FormatRawLines(*r, p.backward));
  telkit::logql::TableOptions table;
  table.backward = p.backward;
  table.color = telkit::IsTerminal(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr;
  return Print(telkit::logql::FormatLogTable(*r, table));
}

volatile std::sig_atomic_t g_stop = 0;

int RunLogs(Flags& f) {
  telkit::query::LogsFlags flags{f.logql, f.trace_id, f.since, f.log_limit, f.follow, f.log_output, f.color};
  auto cmd = telkit::query::BuildLogsCommand(flags, UseColor());
  if (!cmd.ok()) return Usage("logs", std::string(cmd.status().message()));
  auto reader = telkit::LogReader::Open(telkit::DefaultFileSystem(), f.logs_data);
  if (!reader.ok()) return telkit::ReportFailure(reader.status());
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGPIPE, SIG_IGN);
  auto st = telkit::logql::RunLogsCommand(
      *cmd, reader->get(),
      [](std::string_view s) {
        std::cout << s << std::flush;
        return static_cast<bool>(std::cout);
      },
      [] { return g_stop != 0; }, NowNs);
  if (!st.ok()) return telkit::ReportFailure(st);
  return kExitOk;
}

int Run(Flags& f) {
  if (f.logql_cmd->parsed()) return RunLogql(f);
  if (f.logs_cmd->parsed()) return RunLogs(f);
  if (f.promql->parsed()) return RunPromql(f);
  if (f.trace->parsed()) return RunTrace(f);
  if (f.traceql_cmd->parsed()) return RunTraceql(f);
  if (f.services->parsed()) return RunServices(f);
  if (f.serve->parsed()) return RunServe(f);
  for (CLI::App* sub : {f.series, f.labels, f.label_values}) {
    if (sub->parsed()) return RunMeta(f, sub);
  }
  std::cerr << "tel-query: error: a subcommand is required: promql, series, labels, label-values, logql, logs, "
               "trace, traceql, services or serve "
               "(see 'tel-query --help')\n";
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  return telkit::RunTool(
      "tel-query", "Query telemetry: PromQL and LogQL over the stores, and their HTTP APIs", argc, argv,
      [&](CLI::App& app) { Declare(app, flags); }, [&] { return Run(flags); });
}
