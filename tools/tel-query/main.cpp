// tel-query: queries telemetry from the terminal. `tel-query promql EXPR`
// evaluates PromQL at one time or over a range and prints a table or the
// Prometheus HTTP API's JSON.
#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "common/cli/cli.h"
#include "common/promql/query_output.h"

namespace {

struct Flags {
  telkit::promql::QueryRequest req;
  std::string format = "table";
  std::string compat = "2";
  std::string lookback = "5m";
  std::string timeout = "2m";
  int64_t max_samples = 50'000'000;
  CLI::App* promql = nullptr;
};

void Declare(CLI::App& app, Flags& f) {
  app.require_subcommand(0, 1);
  app.footer("Run 'tel-query promql --help' for the flags of a query.");
  CLI::App* p = app.add_subcommand("promql", "Evaluate a PromQL expression");
  f.promql = p;
  p->add_option("expr", f.req.expr, "The PromQL expression")->required()->type_name("EXPR");
  p->add_option("--time", f.req.time, "Instant query at T (default: now)")->type_name("T");
  p->add_option("--start", f.req.start, "Range query from S")->type_name("S");
  p->add_option("--end", f.req.end, "Range query up to E (default: now)")->type_name("E");
  p->add_option("--step", f.req.step, "Range query resolution: 15s, 1m, 30")->type_name("D");
  p->add_option("--load", f.req.load_files, "Data: a .test script or exposition file")
      ->type_name("FILE")
      ->allow_extra_args(false)
      ->check(CLI::ExistingFile);
  p->add_option("--data", f.req.data_dir, "The metrics store directory")->type_name("DIR");
  p->add_option("--format", f.format, "Output: table|json")
      ->capture_default_str()
      ->check(CLI::IsMember({"table", "json"}));
  p->add_flag("--format-query", f.req.format_query, "Print the query in canonical form");
  p->add_option("--compat", f.compat, "Semantics of Prometheus 2 (2.42) or 3")
      ->capture_default_str()
      ->check(CLI::IsMember({"2", "3"}));
  p->add_option("--lookback-delta", f.lookback, "How far back a selector looks")->capture_default_str();
  p->add_option("--timeout", f.timeout, "Give up after this long")->capture_default_str();
  p->add_option("--max-samples", f.max_samples, "Refuse queries that hold more samples")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  p->footer(
      "T, S and E are Unix seconds or RFC 3339 times; D a duration or seconds.\n"
      "--step needs --start; --time excludes --start/--end/--step.");
}

int Run(Flags& f) {
  if (!f.promql->parsed()) {
    std::cerr << "tel-query: error: a subcommand is required: promql (see 'tel-query --help')\n";
    return telkit::kExitUsage;
  }
  telkit::promql::QueryRequest& r = f.req;
  if (!r.time.empty() && (!r.start.empty() || !r.end.empty() || !r.step.empty())) {
    std::cerr << "tel-query: error: --time excludes --start, --end and --step (see 'tel-query promql --help')\n";
    return telkit::kExitUsage;
  }
  if (r.start.empty() != r.step.empty() || (!r.end.empty() && r.start.empty())) {
    std::cerr << "tel-query: error: a range query needs --start and --step (see 'tel-query promql --help')\n";
    return telkit::kExitUsage;
  }
  auto lookback = telkit::promql::ParseApiDuration(f.lookback);
  auto timeout = telkit::promql::ParseApiDuration(f.timeout);
  if (!lookback.ok() || !timeout.ok()) {
    std::cerr << "tel-query: error: " << (lookback.ok() ? timeout : lookback).status().message()
              << " (see 'tel-query promql --help')\n";
    return telkit::kExitUsage;
  }
  r.json = f.format == "json";
  r.engine.compat = f.compat == "3" ? telkit::promql::Compat::kPrometheus3 : telkit::promql::Compat::kPrometheus2;
  r.engine.lookback_delta_ms = *lookback;
  r.engine.timeout = std::chrono::milliseconds(*timeout);
  r.engine.max_samples = f.max_samples;
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  telkit::Result<std::string> out = telkit::promql::RunQuery(r, now);
  if (!out.ok()) {
    if (r.json) std::cout << telkit::promql::FormatApiError(out.status()) << "\n";
    return telkit::ReportFailure(out.status());
  }
  std::cout << *out;
  std::cout.flush();
  return std::cout ? telkit::kExitOk : telkit::kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  return telkit::RunTool(
      "tel-query", "Query telemetry: PromQL over the metrics store", argc, argv,
      [&](CLI::App& app) { Declare(app, flags); }, [&] { return Run(flags); });
}
