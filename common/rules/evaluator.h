// Rule group evaluation with Prometheus' semantics (rules/alerting.go,
// rules/recording.go, rules/group.go):
//
// Recording rule: the expression's instant vector at t - query_offset, each
// series renamed to the rule's name with the rule's labels set (templates);
// a scalar becomes one series without labels.
//
// Alerting rule: each series of the result is an alert, labelled with the
// series' labels minus __name__, the rule's (templated) labels and
// alertname. State machine per alert:
//   new result            -> pending (active_at = t); firing at once when for = 0
//   pending, t - active_at >= for          -> firing (fired_at = t)
//   gone, pending          -> deleted
//   gone, firing           -> kept firing while t - keep_firing_since < keep_firing_for,
//                             else inactive (resolved_at = t), kept 15m for
//                             the resolved notification, then deleted
// Every pending or firing alert yields ALERTS{alertstate=...} 1 and
// ALERTS_FOR_STATE = active_at in Unix seconds, stamped t - query_offset.
// Series a rule produced at the previous evaluation and not at this one get
// a stale marker, as Prometheus writes.
//
// `limit`: more series (or active alerts) than that fail the rule and
// produce nothing (alerts are cleared), as in Prometheus.
//
// Expressions are evaluated through ExprEvaluator, so a LogQL evaluator can
// be plugged in for Loki-ruler groups (QueryLanguage::kLogQL).
//
// Thread-safety: a GroupEvaluator is thread-compatible (one evaluation at a
// time); ExprEvaluator implementations say their own.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"
#include "common/model/series.h"
#include "common/promql/engine.h"
#include "common/rules/rule_file.h"

namespace telkit::rules {

inline constexpr int64_t kResolvedRetentionMs = 15 * 60 * 1000;
inline constexpr int64_t kDefaultIntervalMs = 60 * 1000;

struct EvalSample {
  Labels labels;
  double value = 0;
};

// Evaluates an expression of one query language at an instant.
class ExprEvaluator {
 public:
  virtual ~ExprEvaluator() = default;
  // INVALID_ARGUMENT with the parser's message for a syntax error.
  virtual Status Check(std::string_view expr) const = 0;
  // The instant vector (a scalar as one sample without labels) at `t_ms`.
  virtual Result<std::vector<EvalSample>> Eval(std::string_view expr, int64_t t_ms) = 0;
};

// PromQL over a Querier the caller owns (and keeps alive while evaluating).
class PromQLEvaluator : public ExprEvaluator {
 public:
  PromQLEvaluator(Querier* querier, promql::EngineOptions options = {}) : querier_(querier), engine_(options) {}
  void set_querier(Querier* q) { querier_ = q; }
  Status Check(std::string_view expr) const override;
  Result<std::vector<EvalSample>> Eval(std::string_view expr, int64_t t_ms) override;

 private:
  Querier* querier_;
  promql::Engine engine_;
};

enum class AlertState { kInactive = 0, kPending = 1, kFiring = 2 };
std::string_view AlertStateName(AlertState s);  // "inactive", "pending", "firing"

struct Alert {
  Labels labels;
  std::vector<std::pair<std::string, std::string>> annotations;
  AlertState state = AlertState::kPending;
  double value = 0;
  int64_t active_at_ms = 0;
  int64_t fired_at_ms = 0;
  int64_t resolved_at_ms = 0;        // 0: not resolved
  int64_t keep_firing_since_ms = 0;  // 0: not kept firing
  int64_t last_sent_ms = 0;          // 0: never notified
  int64_t valid_until_ms = 0;        // endsAt of the last notification
};

enum class RuleHealth { kUnknown, kOk, kErr };
std::string_view RuleHealthName(RuleHealth h);  // "unknown", "ok", "err"

struct RuleStatus {
  RuleHealth health = RuleHealth::kUnknown;
  std::string last_error;
  int64_t last_eval_ms = 0;
  double eval_seconds = 0;
  std::map<Labels, Alert> alerts;   // alerting rules: by alert labels
  std::vector<Labels> last_series;  // series written last time (for staleness)
};

struct GroupEvalOptions {
  std::map<std::string, std::string> external_labels;
  std::string external_url;
};

// What one evaluation of a group produced.
struct GroupEvalResult {
  std::vector<TimeSeries> series;  // recording results, ALERTS, ALERTS_FOR_STATE, stale markers
  int failed_rules = 0;
  std::vector<std::string> errors;  // "rule NAME: message"
};

class GroupEvaluator {
 public:
  GroupEvaluator(RuleGroup group, int64_t default_interval_ms = kDefaultIntervalMs);

  const RuleGroup& group() const { return group_; }
  int64_t interval_ms() const { return interval_ms_; }
  // A stable key: "FILE;NAME".
  std::string key() const { return group_.file + ";" + group_.name; }

  // Evaluates every rule in order at `t_ms` with `eval` (whose language
  // matches the group's). A failing rule is reported in the result and the
  // next rules still run; recording results are visible to later rules only
  // through the store (as in Prometheus, once written).
  GroupEvalResult Evaluate(ExprEvaluator& eval, int64_t t_ms, const GroupEvalOptions& options);

  std::vector<RuleStatus>& rule_status() { return status_; }
  const std::vector<RuleStatus>& rule_status() const { return status_; }
  int64_t last_eval_ms() const { return last_eval_ms_; }
  double last_eval_seconds() const { return last_eval_seconds_; }
  void set_last_eval(int64_t t_ms, double seconds) {
    last_eval_ms_ = t_ms;
    last_eval_seconds_ = seconds;
  }

  // Takes over alert states (restored from the state file or a previous
  // load of the group) for the rules of the same name and kind.
  void RestoreFrom(const std::string& rule_name, std::map<Labels, Alert> alerts, int64_t last_eval_ms);

 private:
  Status EvalRecording(size_t i, ExprEvaluator& eval, int64_t ts, const GroupEvalOptions& o, GroupEvalResult& out);
  Status EvalAlerting(size_t i, ExprEvaluator& eval, int64_t ts, int64_t now, const GroupEvalOptions& o,
                      GroupEvalResult& out);

  RuleGroup group_;
  int64_t interval_ms_;
  std::vector<RuleStatus> status_;
  int64_t last_eval_ms_ = 0;
  double last_eval_seconds_ = 0;
};

// Alerts that need a notification at `now_ms` (Prometheus' needsSending):
// firing and not sent within `resend_delay_ms`, or resolved after they were
// last sent. Marks them sent and sets their valid-until time
// (now + 4 * max(resend_delay, interval)) as Prometheus does.
std::vector<Alert> AlertsToSend(GroupEvaluator& g, int64_t now_ms, int64_t resend_delay_ms);

}  // namespace telkit::rules
