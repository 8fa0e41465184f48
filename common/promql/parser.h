// The PromQL parser: query text to an AST (ast.h), with Prometheus 2.42's
// syntax and type checks. Errors are INVALID_ARGUMENT with Prometheus' text,
// "LINE:COL: parse error: MESSAGE" (1-based line and column of the offending
// token), so API clients see the messages they know.
//
// Stateless; thread-safe.
#pragma once

#include <string_view>

#include "common/base/status.h"
#include "common/promql/ast.h"

namespace telkit::promql {

struct ParseOptions {
  // Accept the functions marked experimental in functions.h.
  bool experimental_functions = true;
  // Prometheus 3.x's experimental duration expressions, the part that is
  // implemented: a duration literal where a number is expected (`1h` = 3600),
  // a number of seconds where a duration is expected (`x[300]`,
  // `offset 50`), a duration after @ (`@ 100s`).
  bool durations_as_numbers = false;
  // What step() and range() stand for inside 3.x duration expressions
  // (`x[step()*2]`): the query's step and end - start, 0 for an instant
  // query. Whoever parses for a query sets them (Engine::RangeQuery, the
  // HTTP API).
  int64_t query_step_ms = 0;
  int64_t query_range_ms = 0;
};

Result<ExprPtr> ParseExpr(std::string_view query, const ParseOptions& options = {});

// A duration as PromQL writes it: "1h30m", "5m", "100ms", "0"; units y w d h
// m s ms in that order, each at most once. INVALID_ARGUMENT otherwise.
Result<int64_t> ParseDuration(std::string_view text);

// A PromQL number literal: decimal, float with exponent, hex (0x1f), octal
// (0755), Inf and NaN (any case), with an optional sign.
Result<double> ParseNumber(std::string_view text);

// Unquotes a PromQL string literal ("..." or '...' with Go escapes, or
// `...` raw). INVALID_ARGUMENT for bad escapes.
Result<std::string> Unquote(std::string_view literal);

// Parses a series selector alone (`metric{a="b"}`), as the HTTP API's
// match[] parameter needs: the matchers, __name__ included.
Result<std::vector<LabelMatcher>> ParseMetricSelector(std::string_view text);

}  // namespace telkit::promql
