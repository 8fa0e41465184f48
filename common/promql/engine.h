// The PromQL engine: evaluates a parsed expression (ast.h) over a Querier
// (common/model/series.h) at one instant or over a range of steps, with
// Prometheus' semantics — 5-minute lookback, stale markers ending series,
// range functions over windows, vector matching, aggregations.
//
// How it evaluates: every node yields its value for all steps at once (a
// series keeps one point per step it has a value at; a scalar one value per
// step). Selectors read each series once for the whole query range, and range
// functions slide a window over those samples step by step, so a range query
// costs about one pass over the data, not one selection per step.
//
// Compatibility: `EngineOptions::compat` picks the behaviour of Prometheus
// 2.42 (the Debian 12 binary; default) or 3.x where they differ — chiefly
// 3.x's left-open windows (a sample exactly at t - range or t - lookback does
// not count), compensated sum/avg, NaN stddev of NaN; the full list is in
// docs/promql.md.
//
// Native histograms are not supported: the data model has float samples only.
//
// An Engine is immutable after construction and may run queries from several
// threads at once, as long as the Querier passed in is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/model/series.h"
#include "common/promql/ast.h"
#include "common/promql/parser.h"

namespace telkit::promql {

enum class Compat { kPrometheus2, kPrometheus3 };

struct EngineOptions {
  int64_t lookback_delta_ms = 5 * 60 * 1000;
  // Subquery step when the query gives none (`x[1h:]`).
  int64_t default_subquery_step_ms = 60 * 1000;
  // RESOURCE_EXHAUSTED beyond this many samples: read by one range selector,
  // in one window of a range function, or per step of one instant vector
  // selector or aggregation (Prometheus' --query.max-samples, roughly).
  int64_t max_samples = 50'000'000;
  // At most this many steps in a range query (as Prometheus' API: 11000).
  int64_t max_steps = 11000;
  std::chrono::milliseconds timeout{std::chrono::minutes(2)};  // DEADLINE_EXCEEDED beyond
  Compat compat = Compat::kPrometheus2;
  // Prometheus 3's --enable-feature=promql-delayed-name-removal (off by
  // default there too; its test files assume it on): functions and
  // operators that drop __name__ mark the series instead, and the names go
  // when the query's result is complete; series that then share a labelset
  // merge (range) or are an error (same time).
  bool delayed_name_removal = false;
  // Prometheus 3's --enable-feature=type-and-unit-labels: wherever __name__
  // is dropped, the __type__ and __unit__ labels go with it.
  bool type_and_unit_labels = false;
  ParseOptions parse;  // for the query text
};

struct Series {
  Labels labels;
  std::vector<Sample> points;  // sorted by t
  // Delayed __name__ removal: the name is still in `labels` (aggregations
  // by __name__, label_replace and label_join still see it) and goes at the
  // end of the query.
  bool drop_name = false;
};
using Matrix = std::vector<Series>;

// A query's result. For a vector each series has one point (at the
// evaluation time); for a matrix (range query, or an instant query of a range
// vector expression) the points in time order; a scalar or string is one
// value. Range-query series are sorted by labels; instant vectors keep the
// engine's order (which `sort`, `topk` ... define).
struct QueryResult {
  ValueType type = ValueType::kNone;
  Matrix series;
  double scalar = 0;
  std::string str;
  int64_t t = 0;  // evaluation time of an instant scalar/string result
  // Prometheus' warning/info annotations; none are produced yet.
  std::vector<std::string> warnings;
};

class Engine {
 public:
  explicit Engine(EngineOptions options = {}) : options_(options) {}

  const EngineOptions& options() const { return options_; }

  // Parses and evaluates `query` at `t_ms`. INVALID_ARGUMENT for parse errors
  // (Prometheus' "1:5: parse error: ..." text) and for evaluation errors
  // (vector matching, duplicate series, bad parameters), RESOURCE_EXHAUSTED
  // over max_samples, DEADLINE_EXCEEDED over the timeout, and the Querier's
  // own errors.
  Result<QueryResult> InstantQuery(Querier& querier, std::string_view query, int64_t t_ms) const;

  // Evaluates at start, start+step, ... <= end. REQUIRES nothing: bad ranges
  // (end < start, step <= 0, too many steps) are INVALID_ARGUMENT; so is an
  // expression that is not a scalar or instant vector.
  Result<QueryResult> RangeQuery(Querier& querier, std::string_view query, int64_t start_ms, int64_t end_ms,
                                 int64_t step_ms) const;

  // The same for an already parsed expression. `instant` selects the instant
  // form (start == end, range-vector results allowed).
  Result<QueryResult> Evaluate(Querier& querier, const Expr& expr, int64_t start_ms, int64_t end_ms,
                               int64_t step_ms, bool instant) const;

 private:
  EngineOptions options_;
};

// Formats a float as Prometheus' API does (Go's strconv 'f', -1 / +Inf/-Inf/NaN).
std::string FormatValue(double v);

}  // namespace telkit::promql
