// The rules state file: what tel-rules last evaluated, one JSON document
// rewritten atomically after every evaluation round. tel-rules restores
// pending and firing alerts from it on start (as Prometheus restores `for`
// state from ALERTS_FOR_STATE), and `tel-query serve --rules-state` serves
// /api/v1/rules and /api/v1/alerts from it. The format is
// docs/format/rules-state.md; change both together.
//
// Thread-safety: pure functions over values.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/rules/evaluator.h"

namespace telkit::rules {

inline constexpr int kRulesStateVersion = 1;

struct RuleState {
  RuleKind kind = RuleKind::kRecord;
  std::string name;
  std::string query;
  int64_t for_ms = 0;
  int64_t keep_firing_for_ms = 0;
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<std::pair<std::string, std::string>> annotations;
  RuleHealth health = RuleHealth::kUnknown;
  std::string last_error;
  int64_t last_eval_ms = 0;
  double eval_seconds = 0;
  std::map<Labels, Alert> alerts;
};

struct GroupState {
  std::string file;
  std::string name;
  int64_t interval_ms = 0;
  int64_t limit = 0;
  int64_t query_offset_ms = 0;
  int64_t last_eval_ms = 0;
  double eval_seconds = 0;
  std::vector<RuleState> rules;
};

struct RulesState {
  int64_t written_at_ms = 0;
  std::vector<GroupState> groups;
};

// The state of `groups` as the JSON document.
std::string EncodeRulesState(const std::vector<const GroupEvaluator*>& groups, int64_t now_ms);
// INVALID_ARGUMENT for text that is not a state document; UNIMPLEMENTED for
// another version.
Result<RulesState> DecodeRulesState(std::string_view text);
// Reads the file; NOT_FOUND when it does not exist.
Result<RulesState> ReadRulesStateFile(const std::string& path);

// Gives `g` the alert states the saved state has for its group (same file
// and name) and rules (same name, alerting). Inactive (resolved) alerts are
// restored too, so their resolved notification is still sent. Returns how
// many alerts were restored.
int RestoreGroupState(GroupEvaluator& g, const RulesState& state);

// Prometheus' /api/v1/rules "data" object: {"groups": [...]}. `type` is ""
// (all), "alert" or "record", as the API's type parameter.
nlohmann::json RulesApiData(const RulesState& state, std::string_view type = "");
// Prometheus' /api/v1/alerts "data" object: {"alerts": [...]} (pending and firing).
nlohmann::json AlertsApiData(const RulesState& state);

// RFC 3339 with milliseconds in UTC, as Go's time.Time marshals ("…Z").
std::string FormatRfc3339Ms(int64_t ms);

}  // namespace telkit::rules
