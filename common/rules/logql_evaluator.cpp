#include "common/rules/logql_evaluator.h"

#include "common/fs/file_system.h"
#include "common/logql/engine.h"
#include "common/logql/parser.h"

namespace telkit::rules {

Status CheckLogQLRuleExpr(std::string_view expr) {
  TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<logql::Expr> e, logql::ParseExpr(expr));
  if (e->IsLog()) return InvalidArgumentError("a rule needs a LogQL metric query, not a log query");
  return OkStatus();
}

Result<std::vector<EvalSample>> LogQLEvaluator::Eval(std::string_view expr, int64_t t_ms) {
  TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<logql::Expr> e, logql::ParseExpr(expr));
  if (e->IsLog()) return InvalidArgumentError("a rule needs a LogQL metric query, not a log query");
  if (!reader_) {
    Result<std::unique_ptr<LogReader>> r = LogReader::Open(DefaultFileSystem(), dir_);
    if (!r.ok()) return r.status().WithContext("open the log store '" + dir_ + "'");
    reader_ = std::move(*r);
  }
  logql::Engine engine(reader_.get());
  logql::QueryParams p;
  p.start_ns = p.end_ns = t_ms * 1'000'000;
  TELKIT_ASSIGN_OR_RETURN(logql::QueryResult r, engine.Execute(*e, p));
  std::vector<EvalSample> out;
  switch (r.type) {
    case logql::QueryResult::Type::kScalar:
      out.push_back({Labels{}, r.scalar});
      break;
    case logql::QueryResult::Type::kVector:
      for (logql::SeriesResult& s : r.series) {
        if (!s.points.empty()) out.push_back({std::move(s.labels), s.points.back().second});
      }
      break;
    default:
      return InvalidArgumentError("rule expression must be an instant vector or scalar, got " +
                                  std::string(logql::ResultTypeName(r.type)));
  }
  return out;
}

}  // namespace telkit::rules
