// Outputs of LogQL results: Loki's query response JSON (what
// /loki/api/v1/query[_range] returns and `tel-query logql -o json` prints),
// a terminal table, and raw lines. Byte layout of the JSON:
// docs/format/loki-http-api.md.
//
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/status.h"
#include "common/logql/engine.h"

namespace telkit::logql {

// {"status":"success","data":{"resultType":...,"result":[...],"stats":{...}}}
// streams: {"stream":{labels},"values":[["<ns>","line"],...]}; vector:
// {"metric":{labels},"value":[<seconds>,"<value>"]}; matrix: "values"
// with one pair a point; scalar: [<seconds>,"<value>"]. `exec_seconds` goes
// into stats.summary.execTime. One line, no newline.
std::string FormatLokiJson(const QueryResult& result, double exec_seconds);

// Loki's error body is plain text: the message, with a status code chosen
// from the Status (400 for INVALID_ARGUMENT, 422 would be Loki's for limits
// but it answers 400 for those too, 500 otherwise).
int LokiHttpStatus(const Status& status);

// Terminal colour of a level label value (ANSI SGR code), "" for none.
std::string_view LevelColor(std::string_view level);

// The level of a line: its `level` (or detected_level, severity_text)
// label, else `level=x`/`lvl=x` (logfmt) or `"level":"x"` (JSON) in the line.
std::string_view DetectLevel(const Labels& labels, std::string_view line);

struct TableOptions {
  bool color = false;     // colour lines by DetectLevel
  bool labels = true;     // print the stream labels before each line
  bool backward = true;   // the order lines are printed in (merged over streams)
};

// streams: one line per entry, "RFC3339NANO {labels} line", merged over
// streams in the direction. Metrics: "{labels} VALUE" (vector), "{labels}
// TIME VALUE" per point (matrix), "VALUE" (scalar). Ends with a newline
// unless empty.
std::string FormatLogTable(const QueryResult& result, const TableOptions& options);
// The lines only (streams), merged in the direction; metrics as the table.
std::string FormatRawLines(const QueryResult& result, bool backward);

// RFC 3339 with nanoseconds in UTC, trailing zeros of the fraction dropped:
// "2026-11-25T03:00:00.5Z".
std::string FormatRfc3339Nano(int64_t ns);

}  // namespace telkit::logql
