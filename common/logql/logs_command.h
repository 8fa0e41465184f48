// `tel-query logs`: the recent lines of a log store in the terminal, like
// `tail` (optionally `-f`), with colour by level, and the lines of one trace
// (`--trace-id`: a label filter on the trace_id structured metadata).
//
// Thread-compatible: one call at a time per LogsCommand.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/base/status.h"
#include "common/logql/ast.h"
#include "common/logql/output.h"
#include "common/logstore/log_store.h"

namespace telkit::logql {

struct LogsCommand {
  std::string query;      // selector + pipeline; empty: every stream
  std::string trace_id;   // only lines with this trace_id metadata
  int64_t since_ns = int64_t{3600} * 1000000000;
  size_t limit = 100;     // lines printed before following (0: all)
  bool follow = false;
  int64_t poll_ms = 1000; // --follow: how often the store is read again
  enum class Format { kTable, kRaw, kJson } format = Format::kTable;
  bool color = false;
};

// The log query of the command: `query` (every stream when empty) plus
// `| trace_id="ID"`. INVALID_ARGUMENT for a parse error or a metric query.
Result<std::unique_ptr<Expr>> BuildLogsQuery(std::string_view query, std::string_view trace_id);

// Prints the last `limit` lines of [now - since, now] oldest first, then,
// with `follow`, every new line until `stop()` is true (checked every poll).
// `write` gets whole lines; it returns false when the output is gone
// (stops with OK). `now_ns` is the clock.
Status RunLogsCommand(const LogsCommand& cmd, LogQuerier* querier, const std::function<bool(std::string_view)>& write,
                      const std::function<bool()>& stop, const std::function<int64_t()>& now_ns);

}  // namespace telkit::logql
