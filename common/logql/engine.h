// The LogQL engine: evaluates a parsed query (parser.h) over a log store
// reader (LogQuerier: LogStore itself or the cross-process LogReader) with
// Loki's semantics:
//
// * Log queries return streams: lines in [start, end), `limit` lines over
//   all streams in the direction (backward = newest first), each stream
//   keyed by its stream labels + structured metadata + parsed labels.
//   Leading line filters are pushed down to the store's line scan (`|=`
//   with one value as the chunk text-region memmem, the others as the
//   store's line callback); the store is read in batches of lines, so a
//   query with a small limit over a large store stops early.
// * Range aggregations use left-open, right-closed windows (t-range, t]
//   (shifted by `offset`), evaluated at every step t = start, start+step,
//   ..., end (instant query: t = start = end).
// * A sample whose labels carry __error__ fails the metric query with
//   Loki's pipeline error, as Loki does.
// * Vector aggregations and binary operations follow PromQL's rules.
//
// Thread-compatible: one Engine per thread, or guard it; the querier must
// be thread-safe if shared (LogStore and LogReader are).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/logql/ast.h"
#include "common/logstore/log_store.h"
#include "common/model/labels.h"

namespace telkit::logql {

struct QueryParams {
  int64_t start_ns = 0, end_ns = 0;  // instant: start == end and step 0
  int64_t step_ns = 0;               // range queries: > 0
  size_t limit = 100;                // log queries: lines over all streams (0 = no limit)
  bool backward = true;              // log queries: newest first (Loki's default)
  bool instant() const { return step_ns == 0; }
};

struct EngineOptions {
  size_t max_series = 10000;       // series a metric query may produce (RESOURCE_EXHAUSTED beyond)
  size_t max_points = 11000;       // steps of a range query (Loki's limit)
  size_t batch_lines = 10000;      // log queries: lines read from the store per batch
  size_t metric_batch_lines = 100000;  // metric queries (which read every line of the range)
  uint64_t max_lines_scanned = 0;  // 0: no limit; else RESOURCE_EXHAUSTED beyond
};

struct LogLine {
  int64_t ts = 0;
  std::string line;
};

struct StreamResult {
  Labels labels;
  std::vector<LogLine> entries;  // in query direction
};

struct SeriesResult {
  Labels labels;
  std::vector<std::pair<int64_t, double>> points;  // (ts ns, value), ascending
};

struct QueryStats {
  uint64_t lines_scanned = 0;  // lines the store returned (after pushed-down filters)
  uint64_t bytes_scanned = 0;
  uint64_t lines_returned = 0;
  uint64_t batches = 0;
};

struct QueryResult {
  enum class Type { kStreams, kVector, kMatrix, kScalar };
  Type type = Type::kStreams;
  std::vector<StreamResult> streams;  // kStreams: sorted by labels
  std::vector<SeriesResult> series;   // kVector: one point each; kMatrix
  double scalar = 0;                  // kScalar
  int64_t scalar_ts = 0;
  QueryStats stats;
};

class Engine {
 public:
  explicit Engine(LogQuerier* querier, EngineOptions options = {}) : querier_(querier), options_(options) {}

  // Parses and runs `query`. INVALID_ARGUMENT for a parse error, a log
  // query run as an instant query, or a pipeline error; RESOURCE_EXHAUSTED
  // for a limit; the store's status for a read failure.
  Result<QueryResult> Query(std::string_view query, const QueryParams& params);
  Result<QueryResult> Execute(const Expr& expr, const QueryParams& params);

 private:
  LogQuerier* querier_;
  EngineOptions options_;
};

// Loki's name of a result type: "streams", "vector", "matrix", "scalar".
std::string_view ResultTypeName(QueryResult::Type t);

}  // namespace telkit::logql
