// LogQL for Loki-ruler rule groups: metric queries (count_over_time, rate,
// ... and their aggregations) evaluated at an instant over the log store that
// log-ingest writes, read through LogReader from this process while the
// daemon runs. The store is opened at the first evaluation, so tel-rules can
// start before log-ingest has created it.
//
// Thread-compatible (the rules daemon evaluates groups one at a time).
#pragma once

#include <memory>
#include <string>

#include "common/logstore/log_store.h"
#include "common/rules/evaluator.h"

namespace telkit::rules {

// OK for a LogQL metric query; INVALID_ARGUMENT with the parser's message, or
// for a log query (a rule needs numbers, not lines).
Status CheckLogQLRuleExpr(std::string_view expr);

class LogQLEvaluator : public ExprEvaluator {
 public:
  explicit LogQLEvaluator(std::string logs_dir) : dir_(std::move(logs_dir)) {}
  Status Check(std::string_view expr) const override { return CheckLogQLRuleExpr(expr); }
  // The vector at `t_ms` (a scalar as one sample without labels);
  // UNAVAILABLE / NOT_FOUND while the log store cannot be opened.
  Result<std::vector<EvalSample>> Eval(std::string_view expr, int64_t t_ms) override;

 private:
  const std::string dir_;
  std::unique_ptr<LogReader> reader_;
};

}  // namespace telkit::rules
