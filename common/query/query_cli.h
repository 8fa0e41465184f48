// What `tel-query` does in the terminal, apart from flag parsing: where the
// data comes from (the metrics store in a directory, or files loaded into
// memory), times in absolute and relative forms, and the outputs of a query
// (table, the HTTP API's JSON, CSV, a line chart) and of the metadata
// subcommands (series, labels, label-values).
//
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/model/series.h"
#include "common/promql/engine.h"

namespace telkit::query {

// Where queries read: `data_dir` (the tsdb-write store: blocks and the live
// head, OpenMetricsReader) or, when load_files is not empty, those files
// (*.test scripts, exposition files) in memory. Samples of an exposition
// without a timestamp are stored at `default_t_ms`.
struct DataSource {
  std::string data_dir;
  std::vector<std::string> load_files;
};

// Opens the Querier of `source`. INVALID_ARGUMENT when both or neither are
// given; the store's and the loaders' errors otherwise ("load 'f': line 3: ...").
Result<std::shared_ptr<Querier>> OpenDataSource(const DataSource& source, int64_t default_t_ms);

// A time on the command line, in ms: "now", "now-1h", "now+30s", "-15m"
// (relative to `now_ms`), Unix seconds ("1700000000.5") or RFC 3339.
// INVALID_ARGUMENT naming the text otherwise.
Result<int64_t> ParseCliTime(std::string_view text, int64_t now_ms);

enum class Output { kTable, kJson, kCsv, kChart };
Result<Output> ParseOutput(std::string_view name);  // table|json|csv|chart

struct ChartOptions {
  int width = 80;       // columns of the whole chart, axis labels included
  int height = 16;      // rows of the plot area
  bool color = false;   // ANSI colours, one per series
};

// CSV (RFC 4180, "\r\n"-free: "\n" line ends): header `series,timestamp,value`
// and one row per point; a scalar or string has an empty series column.
// Timestamps in seconds as the API prints them.
std::string FormatCsv(const promql::QueryResult& result);

// A line chart of a matrix (range query) or vector (one point per series) in
// Unicode braille (2x4 dots a cell): the y axis with min/max labels on the
// left, the time axis with its first and last times (UTC) below, then a
// legend: one line per series with its colour (or its marker letter when
// there is no colour). Series beyond 12 are drawn but summarised in the
// legend as "... and N more". Empty result: "no data\n".
std::string FormatChart(const promql::QueryResult& result, const ChartOptions& options);

// A parse error message "1:16: parse error: ..." as two extra lines under
// the expression: the expression and a caret under column 16. Empty when
// `message` has no "LINE:COL:" position.
std::string CaretLines(std::string_view expr, std::string_view message);

// The metadata subcommands print the API's JSON body (`json`) or a table
// made from it: series one labels text a line, labels / label-values one
// name a line. `body` is an /api/v1/series, /labels or /label/X/values
// success body. INVALID_ARGUMENT when it is not.
Result<std::string> FormatMetadataTable(std::string_view body, bool is_series);

}  // namespace telkit::query
