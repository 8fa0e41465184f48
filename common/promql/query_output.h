// What tel-query needs around the engine: loading sample data into a
// MemoryStore (test scripts, Prometheus text / OpenMetrics exposition), time
// and step arguments as the Prometheus HTTP API takes them, and printing a
// result as a table or as the API's JSON.
//
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/model/memory_store.h"
#include "common/promql/engine.h"

namespace telkit::promql {

// Adds the samples of a Prometheus text-format or OpenMetrics exposition to
// `store`: lines `name{label="v",...} value [timestamp]`, comments and
// `# TYPE`/`# HELP` ignored. Timestamps are milliseconds in the text format
// and seconds (possibly fractional) in OpenMetrics (a file ending in
// `# EOF`); a sample without one is stored at `default_t_ms`.
// INVALID_ARGUMENT naming the line for anything else.
Status LoadExposition(std::string_view text, int64_t default_t_ms, MemoryStore& store);

// A time as the API takes it: Unix seconds (fractional allowed) or RFC 3339
// ("2026-11-25T01:02:03Z", "...+01:00", fractional seconds). In ms.
Result<int64_t> ParseApiTime(std::string_view text);

// A step or duration: a PromQL duration ("15s", "1h30m") or seconds ("15",
// "0.5"). In ms; INVALID_ARGUMENT unless positive.
Result<int64_t> ParseApiDuration(std::string_view text);

// Timestamps in seconds as the API prints them: "600", "1435781451.781".
std::string FormatApiTime(int64_t t_ms);

// Prometheus' labels text: name{a="b", c="d"}; "{}" for no labels.
std::string SeriesName(const Labels& labels);

// Aligned columns: SERIES VALUE for a vector, SERIES TIMESTAMP VALUE per point
// for a matrix, TIMESTAMP VALUE for a scalar, the text for a string. Ends
// with a newline; an empty result prints nothing.
std::string FormatTable(const QueryResult& result);

// The HTTP API's body for a successful query:
// {"status":"success","data":{"resultType":"vector","result":[...]}} with
// values as strings and timestamps as seconds. One line, no newline.
std::string FormatApiJson(const QueryResult& result);

// The API's error body: {"status":"error","errorType":"bad_data","error":"..."}.
// errorType from the code: INVALID_ARGUMENT bad_data, DEADLINE_EXCEEDED
// timeout, RESOURCE_EXHAUSTED execution, CANCELLED canceled, other internal.
std::string FormatApiError(const Status& status);

}  // namespace telkit::promql

namespace telkit::promql {

// One `tel-query promql` invocation.
struct QueryRequest {
  std::string expr;
  std::string time;                     // instant query at this time ("" = now)
  std::string start, end, step;         // range query when start is set
  std::vector<std::string> load_files;  // *.test scripts or exposition files
  std::string data_dir;                 // the metrics store (not connected yet)
  bool json = false;                    // the API's JSON instead of a table
  bool format_query = false;            // print the query in canonical form only
  EngineOptions engine;
};

// Loads the data, runs the query and returns what goes to stdout.
// INVALID_ARGUMENT for bad times, files and queries; UNIMPLEMENTED for
// data_dir; the engine's codes otherwise.
Result<std::string> RunQuery(const QueryRequest& request, int64_t now_ms);

}  // namespace telkit::promql
