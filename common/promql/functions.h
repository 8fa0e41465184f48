// The PromQL function table: every function the parser accepts, with its
// argument types and return type (Prometheus 2.42's promql/parser/functions.go,
// plus the 3.x functions that the engine also evaluates).
//
// Immutable, static storage; thread-safe.
#pragma once

#include <string_view>
#include <vector>

#include "common/promql/ast.h"

namespace telkit::promql {

struct Function {
  std::string_view name;
  std::vector<ValueType> arg_types;
  // 0: exactly arg_types.size() arguments; n > 0: the last n may be left
  // out; -1: the last type repeats any number of times (0 or more).
  int variadic = 0;
  ValueType return_type = ValueType::kVector;
  bool experimental = false;  // newer than Prometheus 2.42
};

// nullptr when there is no function of that name.
const Function* FindFunction(std::string_view name);

}  // namespace telkit::promql
