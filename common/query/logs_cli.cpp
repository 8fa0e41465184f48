#include "common/query/logs_cli.h"

#include <algorithm>

#include "common/promql/query_output.h"
#include "common/query/query_cli.h"

namespace telkit::query {

Result<logql::QueryParams> LogqlQueryParams(const LogqlWindowFlags& f, bool log_query, int64_t now) {
  if (!f.time.empty() && (log_query || !f.start.empty() || !f.step.empty())) {
    return InvalidArgumentError("--time is for instant metric queries; it excludes --start and --step");
  }
  Status bad;
  auto parse = [&](const std::string& text, int64_t fallback_ms) -> int64_t {
    if (text.empty() || !bad.ok()) return fallback_ms * 1000000;
    auto v = ParseCliTime(text, now);
    if (!v.ok()) bad = v.status();
    return v.ok() ? *v * 1000000 : 0;
  };
  logql::QueryParams p;
  p.limit = f.limit;
  p.backward = f.direction == "backward";
  if (log_query || !f.start.empty()) {
    p.start_ns = parse(f.start, now - 3600 * 1000);
    p.end_ns = parse(f.end, now);
    if (!log_query) {
      int64_t step_ms = std::max<int64_t>(1000, (p.end_ns - p.start_ns) / 1000000 / 250 / 1000 * 1000);
      if (!f.step.empty()) {
        auto d = promql::ParseApiDuration(f.step);
        if (!d.ok()) bad = d.status();
        else step_ms = *d;
      }
      p.step_ns = step_ms * 1000000;
    } else {
      p.step_ns = 1;
      if (f.end.empty()) p.end_ns += 1;  // include lines written at this very instant
    }
  } else {
    p.start_ns = p.end_ns = parse(f.time, now);
  }
  if (!bad.ok()) return InvalidArgumentError(std::string(bad.message()));
  return p;
}

Result<logql::LogsCommand> BuildLogsCommand(const LogsFlags& f, bool terminal_color) {
  auto since = promql::ParseApiDuration(f.since);
  if (!since.ok()) return InvalidArgumentError("--since: " + std::string(since.status().message()));
  logql::LogsCommand cmd;
  cmd.query = f.query;
  cmd.trace_id = f.trace_id;
  cmd.since_ns = *since * 1000000;
  cmd.limit = f.limit;
  cmd.follow = f.follow;
  cmd.format = f.output == "json"  ? logql::LogsCommand::Format::kJson
               : f.output == "raw" ? logql::LogsCommand::Format::kRaw
                                   : logql::LogsCommand::Format::kTable;
  cmd.color = f.color == "always" || (f.color == "auto" && terminal_color);
  if (auto q = logql::BuildLogsQuery(cmd.query, cmd.trace_id); !q.ok()) {
    return InvalidArgumentError(std::string(q.status().message()));
  }
  return cmd;
}

}  // namespace telkit::query
