// tel-query's terminal side for logs: the time window of `tel-query logql`
// from its flags (validation beyond the flag checks), so main only opens the
// store, runs the engine and prints; and the `tel-query logs` command from
// its flags.
//
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "common/base/status.h"
#include "common/logql/engine.h"
#include "common/logql/logs_command.h"

namespace telkit::query {

// The `tel-query logql` flags that shape the query window. Times are
// ParseCliTime forms ("" = default), step a PromQL duration ("" = automatic).
struct LogqlWindowFlags {
  std::string time, start, end, step;
  std::string direction = "backward";  // backward | forward
  size_t limit = 100;
};

// The engine parameters for a query at `now_ms`. Log queries (and metric
// queries given --start) run over [start, end), defaulting to the last hour;
// a log query without --end includes lines written at `now_ms` itself. A
// metric range query's step defaults to a 250th of the range (whole seconds,
// at least 1s). Otherwise it is an instant query at --time (default now).
// INVALID_ARGUMENT (a usage error) when --time is combined with a log query,
// --start or --step, or for a time or step that does not parse.
Result<logql::QueryParams> LogqlQueryParams(const LogqlWindowFlags& flags, bool log_query, int64_t now_ms);

// The `tel-query logs` flags.
struct LogsFlags {
  std::string query, trace_id;
  std::string since = "1h";       // a PromQL duration
  size_t limit = 100;
  bool follow = false;
  std::string output = "table";   // table | raw | json
  std::string color = "auto";     // auto | always | never
};

// The logs command; `terminal_color` is what "auto" colour means (stdout a
// terminal and NO_COLOR unset). INVALID_ARGUMENT (a usage error) for a bad
// --since ("--since: ...") or a query / trace id BuildLogsQuery rejects.
Result<logql::LogsCommand> BuildLogsCommand(const LogsFlags& flags, bool terminal_color);

}  // namespace telkit::query
