#include "common/rules/evaluator.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "common/rules/template.h"

namespace telkit::rules {

std::string_view AlertStateName(AlertState s) {
  switch (s) {
    case AlertState::kInactive:
      return "inactive";
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
  }
  return "inactive";
}

std::string_view RuleHealthName(RuleHealth h) {
  switch (h) {
    case RuleHealth::kUnknown:
      return "unknown";
    case RuleHealth::kOk:
      return "ok";
    case RuleHealth::kErr:
      return "err";
  }
  return "unknown";
}

Status PromQLEvaluator::Check(std::string_view expr) const {
  auto p = promql::ParseExpr(expr, engine_.options().parse);
  return p.ok() ? OkStatus() : p.status();
}

Result<std::vector<EvalSample>> PromQLEvaluator::Eval(std::string_view expr, int64_t t_ms) {
  if (!querier_) return FailedPreconditionError("no metrics store to query");
  TELKIT_ASSIGN_OR_RETURN(promql::QueryResult r, engine_.InstantQuery(*querier_, expr, t_ms));
  std::vector<EvalSample> out;
  switch (r.type) {
    case promql::ValueType::kScalar:
      out.push_back({Labels{}, r.scalar});
      break;
    case promql::ValueType::kVector:
      for (auto& s : r.series)
        if (!s.points.empty()) out.push_back({std::move(s.labels), s.points.back().v});
      break;
    default:
      return InvalidArgumentError("rule expression must be an instant vector or scalar, got " +
                                  std::string(promql::ValueTypeName(r.type)));
  }
  return out;
}

namespace {

std::map<std::string, std::string> ToMap(const Labels& l) {
  std::map<std::string, std::string> m;
  for (const auto& x : l) m[x.name] = x.value;
  return m;
}

TemplateQueryFunc QueryFunc(ExprEvaluator& eval, int64_t t) {
  return [&eval, t](const std::string& q) -> Result<std::vector<TemplateSample>> {
    TELKIT_ASSIGN_OR_RETURN(std::vector<EvalSample> v, eval.Eval(q, t));
    std::vector<TemplateSample> out;
    for (const auto& s : v) out.push_back({ToMap(s.labels), s.value});
    return out;
  };
}

// Appends stale markers for the series written last time and not now, and
// remembers the current set.
void Staleness(RuleStatus& st, const std::vector<TimeSeries>& now_series, size_t from, int64_t ts,
               GroupEvalResult& out) {
  std::set<Labels> current;
  for (size_t i = from; i < now_series.size(); ++i) current.insert(now_series[i].labels);
  for (const auto& l : st.last_series)
    if (!current.count(l)) out.series.push_back({l, {{ts, StaleNaN()}}, {}});
  st.last_series.assign(current.begin(), current.end());
}

}  // namespace

GroupEvaluator::GroupEvaluator(RuleGroup group, int64_t default_interval_ms)
    : group_(std::move(group)),
      interval_ms_(group_.interval_ms > 0 ? group_.interval_ms : default_interval_ms),
      status_(group_.rules.size()) {}

void GroupEvaluator::RestoreFrom(const std::string& rule_name, std::map<Labels, Alert> alerts, int64_t last_eval_ms) {
  for (size_t i = 0; i < group_.rules.size(); ++i) {
    if (group_.rules[i].kind == RuleKind::kAlert && group_.rules[i].name == rule_name) {
      status_[i].alerts = std::move(alerts);
      status_[i].last_eval_ms = last_eval_ms;
      return;
    }
  }
}

GroupEvalResult GroupEvaluator::Evaluate(ExprEvaluator& eval, int64_t t_ms, const GroupEvalOptions& options) {
  GroupEvalResult out;
  const int64_t ts = t_ms - group_.query_offset_ms;
  for (size_t i = 0; i < group_.rules.size(); ++i) {
    auto start = std::chrono::steady_clock::now();
    size_t from = out.series.size();
    Status st = group_.rules[i].kind == RuleKind::kRecord ? EvalRecording(i, eval, ts, options, out)
                                                          : EvalAlerting(i, eval, ts, t_ms, options, out);
    RuleStatus& rs = status_[i];
    if (!st.ok()) {
      out.series.resize(from);
      ++out.failed_rules;
      out.errors.push_back("rule '" + group_.rules[i].name + "': " + st.message());
      rs.health = RuleHealth::kErr;
      rs.last_error = st.message();
    } else {
      rs.health = RuleHealth::kOk;
      rs.last_error.clear();
    }
    Staleness(rs, out.series, from, ts, out);
    rs.last_eval_ms = t_ms;
    rs.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return out;
}

Status GroupEvaluator::EvalRecording(size_t i, ExprEvaluator& eval, int64_t ts, const GroupEvalOptions& o,
                                     GroupEvalResult& out) {
  (void)o;
  const Rule& r = group_.rules[i];
  TELKIT_ASSIGN_OR_RETURN(std::vector<EvalSample> v, eval.Eval(r.expr, ts));
  std::set<Labels> seen;
  std::vector<TimeSeries> res;
  for (auto& s : v) {
    Labels l = s.labels;
    l.Set(kMetricNameLabel, r.name);
    for (const auto& [k, val] : r.labels) l.Set(k, val);
    if (!seen.insert(l).second)
      return InvalidArgumentError("vector contains metrics with the same labelset after applying rule labels");
    res.push_back({std::move(l), {{ts, s.value}}, {}});
  }
  if (group_.limit > 0 && static_cast<int64_t>(res.size()) > group_.limit)
    return InvalidArgumentError("exceeded limit of " + std::to_string(group_.limit) + " with " +
                                std::to_string(res.size()) + " series");
  for (auto& t : res) out.series.push_back(std::move(t));
  return OkStatus();
}

Status GroupEvaluator::EvalAlerting(size_t i, ExprEvaluator& eval, int64_t ts, int64_t now, const GroupEvalOptions& o,
                                    GroupEvalResult& out) {
  const Rule& r = group_.rules[i];
  RuleStatus& rs = status_[i];
  auto& active = rs.alerts;
  Result<std::vector<EvalSample>> res = eval.Eval(r.expr, ts);
  if (!res.ok()) return res.status();

  // Build the alerts of this evaluation.
  std::map<Labels, Alert> fresh;
  Status template_error;
  for (const auto& s : *res) {
    TemplateData d;
    Labels sl = s.labels;
    sl.Remove(kMetricNameLabel);
    d.labels = ToMap(sl);
    d.external_labels = o.external_labels;
    d.external_url = o.external_url;
    d.value = s.value;
    d.query = QueryFunc(eval, ts);
    Labels l = sl;
    for (const auto& [k, v] : r.labels) {
      auto e = ExpandTemplate(v, d);
      // As Prometheus: a failing template expands to an error text.
      l.Set(k, e.ok() ? *e : "<error expanding template: " + e.status().message() + ">");
    }
    l.Set("alertname", r.name);
    Alert a;
    a.labels = l;
    a.value = s.value;
    for (const auto& [k, v] : r.annotations) {
      auto e = ExpandTemplate(v, d);
      a.annotations.emplace_back(k, e.ok() ? *e : "<error expanding template: " + e.status().message() + ">");
    }
    if (fresh.count(l))
      return InvalidArgumentError("vector contains metrics with the same labelset after applying alert labels");
    fresh.emplace(l, std::move(a));
  }

  for (auto& [l, a] : fresh) {
    auto it = active.find(l);
    if (it != active.end() && it->second.state != AlertState::kInactive) {
      it->second.value = a.value;
      it->second.annotations = a.annotations;
      continue;
    }
    a.state = AlertState::kPending;
    a.active_at_ms = ts;
    active[l] = std::move(a);
  }

  int64_t num_active = 0;
  std::vector<TimeSeries> series;
  for (auto it = active.begin(); it != active.end();) {
    Alert& a = it->second;
    if (!fresh.count(it->first)) {
      bool keep = false;
      if (a.state == AlertState::kFiring && r.keep_firing_for_ms > 0) {
        if (a.keep_firing_since_ms == 0) a.keep_firing_since_ms = ts;
        if (ts - a.keep_firing_since_ms < r.keep_firing_for_ms) keep = true;
      }
      if (!keep) {
        if (a.state == AlertState::kPending ||
            (a.resolved_at_ms != 0 && ts - a.resolved_at_ms > kResolvedRetentionMs)) {
          it = active.erase(it);
          continue;
        }
        if (a.state != AlertState::kInactive) {
          a.state = AlertState::kInactive;
          a.resolved_at_ms = ts;
        }
        ++it;
        continue;
      }
    } else {
      a.keep_firing_since_ms = 0;
    }
    ++num_active;
    if (a.state == AlertState::kPending && ts - a.active_at_ms >= r.for_ms) {
      a.state = AlertState::kFiring;
      a.fired_at_ms = ts;
    }
    Labels al = a.labels;
    al.Set(kMetricNameLabel, "ALERTS");
    al.Set("alertstate", AlertStateName(a.state));
    series.push_back({std::move(al), {{ts, 1}}, {}});
    Labels fl = a.labels;
    fl.Set(kMetricNameLabel, "ALERTS_FOR_STATE");
    series.push_back({std::move(fl), {{ts, static_cast<double>(a.active_at_ms / 1000)}}, {}});
    ++it;
  }
  (void)now;
  if (group_.limit > 0 && num_active > group_.limit) {
    active.clear();
    return InvalidArgumentError("exceeded limit of " + std::to_string(group_.limit) + " with " +
                                std::to_string(num_active) + " alerts");
  }
  for (auto& s : series) out.series.push_back(std::move(s));
  return OkStatus();
}

std::vector<Alert> AlertsToSend(GroupEvaluator& g, int64_t now_ms, int64_t resend_delay_ms) {
  std::vector<Alert> out;
  int64_t valid = now_ms + 4 * std::max(resend_delay_ms, g.interval_ms());
  for (size_t i = 0; i < g.group().rules.size(); ++i) {
    for (auto& [l, a] : g.rule_status()[i].alerts) {
      if (a.state == AlertState::kPending) continue;
      // Prometheus' needsSending.
      bool send = a.resolved_at_ms > a.last_sent_ms || a.last_sent_ms + resend_delay_ms < now_ms;
      if (!send) continue;
      a.last_sent_ms = now_ms;
      a.valid_until_ms = valid;
      out.push_back(a);
    }
  }
  return out;
}

}  // namespace telkit::rules
