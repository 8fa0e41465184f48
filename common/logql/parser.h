// LogQL parser: text to the syntax tree of ast.h, with Loki's grammar
// (pkg/logql/syntax) and its checks. Errors are INVALID_ARGUMENT with
// Loki's shape: `parse error at line L, col C: MESSAGE` (1-based), or the
// message of a semantic check (e.g. `invalid aggregation sum_over_time
// without unwrap`).
//
// Stateless; thread-safe.
#pragma once

#include <memory>
#include <string_view>

#include "common/base/status.h"
#include "common/logql/ast.h"

namespace telkit::logql {

Result<std::unique_ptr<Expr>> ParseExpr(std::string_view input);

// Printed forms (used in error messages and tests).
std::string RangeOpName(RangeOp op);
std::string AggOpName(AggOp op);

}  // namespace telkit::logql
