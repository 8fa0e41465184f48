#include "common/promql/functions.h"

#include <map>

namespace telkit::promql {
namespace {

constexpr ValueType S = ValueType::kScalar;
constexpr ValueType V = ValueType::kVector;
constexpr ValueType M = ValueType::kMatrix;
constexpr ValueType Str = ValueType::kString;

const std::map<std::string_view, Function, std::less<>>& Table() {
  static const auto* table = [] {
    auto* t = new std::map<std::string_view, Function, std::less<>>;
    auto add = [t](Function f) { t->emplace(f.name, std::move(f)); };
    for (std::string_view n : {"abs", "ceil", "exp", "floor", "ln", "log2", "log10", "sqrt", "sgn", "deg", "rad",
                               "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh",
                               "tan", "tanh", "timestamp", "sort", "sort_desc", "absent"}) {
      add({n, {V}, 0, V});
    }
    for (std::string_view n : {"days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute",
                               "month", "year"}) {
      add({n, {V}, 1, V});
    }
    for (std::string_view n : {"absent_over_time", "avg_over_time", "changes", "count_over_time", "delta", "deriv",
                               "idelta", "increase", "irate", "last_over_time", "max_over_time", "min_over_time",
                               "present_over_time", "rate", "resets", "stddev_over_time", "stdvar_over_time",
                               "sum_over_time"}) {
      add({n, {M}, 0, V});
    }
    for (std::string_view n : {"first_over_time", "mad_over_time", "ts_of_first_over_time", "ts_of_last_over_time",
                               "ts_of_min_over_time", "ts_of_max_over_time"}) {
      add({n, {M}, 0, V, true});
    }
    add({"clamp", {V, S, S}, 0, V});
    add({"clamp_max", {V, S}, 0, V});
    add({"clamp_min", {V, S}, 0, V});
    add({"round", {V, S}, 1, V});
    add({"histogram_quantile", {S, V}, 0, V});
    add({"histogram_fraction", {S, S, V}, 0, V});
    add({"histogram_count", {V}, 0, V});
    add({"histogram_sum", {V}, 0, V});
    add({"histogram_avg", {V}, 0, V, true});
    add({"histogram_stddev", {V}, 0, V, true});
    add({"histogram_stdvar", {V}, 0, V, true});
    add({"holt_winters", {M, S, S}, 0, V});
    add({"double_exponential_smoothing", {M, S, S}, 0, V, true});
    add({"label_replace", {V, Str, Str, Str, Str}, 0, V});
    add({"label_join", {V, Str, Str, Str}, -1, V});
    add({"sort_by_label", {V, Str}, -1, V, true});
    add({"sort_by_label_desc", {V, Str}, -1, V, true});
    add({"predict_linear", {M, S}, 0, V});
    add({"quantile_over_time", {S, M}, 0, V});
    add({"pi", {}, 0, S});
    add({"min_of", {S, S}, 0, S, true});
    add({"max_of", {S, S}, 0, S, true});
    add({"histogram_quantiles", {V, Str, S}, -1, V, true});
    for (std::string_view n : {"start", "end", "step", "range"}) add({n, {}, 0, S, true});
    add({"time", {}, 0, S});
    add({"scalar", {V}, 0, S});
    add({"vector", {S}, 0, V});
    add({"info", {V, V}, 1, V, true});
    return t;
  }();
  return *table;
}

}  // namespace

const Function* FindFunction(std::string_view name) {
  const auto& t = Table();
  auto it = t.find(name);
  return it == t.end() ? nullptr : &it->second;
}

}  // namespace telkit::promql
