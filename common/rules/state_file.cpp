#include "common/rules/state_file.h"

#include <cinttypes>
#include <cmath>
#include <ctime>

#include "common/fs/file_system.h"
#include "common/promql/engine.h"

namespace telkit::rules {

using nlohmann::json;

std::string FormatRfc3339Ms(int64_t ms) {
  int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  int64_t frac = ms - secs * 1000;
  time_t t = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (frac != 0) {
    char f[8];
    std::snprintf(f, sizeof f, ".%03" PRId64, frac);
    out += f;
    while (out.back() == '0') out.pop_back();
  }
  return out + "Z";
}

namespace {

json PairsJson(const std::vector<std::pair<std::string, std::string>>& p) {
  json o = json::object();
  for (const auto& [k, v] : p) o[k] = v;
  return o;
}
json LabelsJson(const Labels& l) {
  json o = json::object();
  for (const auto& x : l) o[x.name] = x.value;
  return o;
}

Result<double> ParseValue(const json& j) {
  if (j.is_number()) return j.get<double>();
  if (!j.is_string()) return InvalidArgumentError("value must be a string");
  std::string s = j.get<std::string>();
  if (s == "NaN") return std::nan("");
  if (s == "+Inf") return INFINITY;
  if (s == "-Inf") return -INFINITY;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) return InvalidArgumentError("bad value '" + s + "'");
  return v;
}

Result<Labels> ParseLabels(const json& j) {
  if (!j.is_object()) return InvalidArgumentError("labels must be an object");
  std::vector<Label> v;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string()) return InvalidArgumentError("label values must be strings");
    v.push_back({it.key(), it.value().get<std::string>()});
  }
  return Labels::FromUnsorted(std::move(v));
}

std::vector<std::pair<std::string, std::string>> ParsePairs(const json& j) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.value().is_string()) out.emplace_back(it.key(), it.value().get<std::string>());
  return out;
}

AlertState ParseState(const std::string& s) {
  if (s == "firing") return AlertState::kFiring;
  if (s == "pending") return AlertState::kPending;
  return AlertState::kInactive;
}

RuleHealth ParseHealth(const std::string& s) {
  if (s == "ok") return RuleHealth::kOk;
  if (s == "err") return RuleHealth::kErr;
  return RuleHealth::kUnknown;
}

}  // namespace

std::string EncodeRulesState(const std::vector<const GroupEvaluator*>& groups, int64_t now_ms) {
  json doc;
  doc["version"] = kRulesStateVersion;
  doc["written_at_ms"] = now_ms;
  json gs = json::array();
  for (const GroupEvaluator* g : groups) {
    const RuleGroup& def = g->group();
    json jg;
    jg["file"] = def.file;
    jg["name"] = def.name;
    jg["interval_ms"] = g->interval_ms();
    jg["limit"] = def.limit;
    jg["query_offset_ms"] = def.query_offset_ms;
    jg["last_eval_ms"] = g->last_eval_ms();
    jg["eval_seconds"] = g->last_eval_seconds();
    json rules = json::array();
    for (size_t i = 0; i < def.rules.size(); ++i) {
      const Rule& r = def.rules[i];
      const RuleStatus& st = g->rule_status()[i];
      json jr;
      jr["type"] = r.kind == RuleKind::kAlert ? "alerting" : "recording";
      jr["name"] = r.name;
      jr["query"] = r.expr;
      if (r.kind == RuleKind::kAlert) {
        jr["for_ms"] = r.for_ms;
        jr["keep_firing_for_ms"] = r.keep_firing_for_ms;
        jr["annotations"] = PairsJson(r.annotations);
      }
      jr["labels"] = PairsJson(r.labels);
      jr["health"] = RuleHealthName(st.health);
      jr["last_error"] = st.last_error;
      jr["last_eval_ms"] = st.last_eval_ms;
      jr["eval_seconds"] = st.eval_seconds;
      if (r.kind == RuleKind::kAlert) {
        json alerts = json::array();
        for (const auto& [l, a] : st.alerts) {
          json ja;
          ja["labels"] = LabelsJson(a.labels);
          ja["annotations"] = PairsJson(a.annotations);
          ja["state"] = AlertStateName(a.state);
          ja["value"] = promql::FormatValue(a.value);
          ja["active_at_ms"] = a.active_at_ms;
          ja["fired_at_ms"] = a.fired_at_ms;
          ja["resolved_at_ms"] = a.resolved_at_ms;
          ja["keep_firing_since_ms"] = a.keep_firing_since_ms;
          ja["last_sent_ms"] = a.last_sent_ms;
          ja["valid_until_ms"] = a.valid_until_ms;
          alerts.push_back(std::move(ja));
        }
        jr["alerts"] = std::move(alerts);
      }
      rules.push_back(std::move(jr));
    }
    jg["rules"] = std::move(rules);
    gs.push_back(std::move(jg));
  }
  doc["groups"] = std::move(gs);
  return doc.dump(1) + "\n";
}

Result<RulesState> DecodeRulesState(std::string_view text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return InvalidArgumentError("rules state: not a JSON object");
  if (!doc.contains("version") || !doc["version"].is_number_integer())
    return InvalidArgumentError("rules state: no version");
  if (doc["version"].get<int>() != kRulesStateVersion)
    return UnimplementedError("rules state: unsupported version " + std::to_string(doc["version"].get<int>()));
  RulesState st;
  auto i64 = [](const json& o, const char* k) -> int64_t {
    return o.contains(k) && o[k].is_number() ? o[k].get<int64_t>() : 0;
  };
  auto str = [](const json& o, const char* k) -> std::string {
    return o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : "";
  };
  st.written_at_ms = i64(doc, "written_at_ms");
  if (!doc.contains("groups") || !doc["groups"].is_array()) return InvalidArgumentError("rules state: no groups");
  for (const json& jg : doc["groups"]) {
    if (!jg.is_object()) return InvalidArgumentError("rules state: group must be an object");
    GroupState g;
    g.file = str(jg, "file");
    g.name = str(jg, "name");
    g.interval_ms = i64(jg, "interval_ms");
    g.limit = i64(jg, "limit");
    g.query_offset_ms = i64(jg, "query_offset_ms");
    g.last_eval_ms = i64(jg, "last_eval_ms");
    g.eval_seconds =
        jg.contains("eval_seconds") && jg["eval_seconds"].is_number() ? jg["eval_seconds"].get<double>() : 0;
    if (jg.contains("rules") && jg["rules"].is_array()) {
      for (const json& jr : jg["rules"]) {
        if (!jr.is_object()) return InvalidArgumentError("rules state: rule must be an object");
        RuleState r;
        r.kind = str(jr, "type") == "alerting" ? RuleKind::kAlert : RuleKind::kRecord;
        r.name = str(jr, "name");
        r.query = str(jr, "query");
        r.for_ms = i64(jr, "for_ms");
        r.keep_firing_for_ms = i64(jr, "keep_firing_for_ms");
        if (jr.contains("labels")) r.labels = ParsePairs(jr["labels"]);
        if (jr.contains("annotations")) r.annotations = ParsePairs(jr["annotations"]);
        r.health = ParseHealth(str(jr, "health"));
        r.last_error = str(jr, "last_error");
        r.last_eval_ms = i64(jr, "last_eval_ms");
        r.eval_seconds =
            jr.contains("eval_seconds") && jr["eval_seconds"].is_number() ? jr["eval_seconds"].get<double>() : 0;
        if (jr.contains("alerts") && jr["alerts"].is_array()) {
          for (const json& ja : jr["alerts"]) {
            if (!ja.is_object() || !ja.contains("labels")) return InvalidArgumentError("rules state: bad alert");
            Alert a;
            TELKIT_ASSIGN_OR_RETURN(a.labels, ParseLabels(ja["labels"]));
            if (ja.contains("annotations")) a.annotations = ParsePairs(ja["annotations"]);
            a.state = ParseState(str(ja, "state"));
            if (ja.contains("value")) {
              TELKIT_ASSIGN_OR_RETURN(a.value, ParseValue(ja["value"]));
            }
            a.active_at_ms = i64(ja, "active_at_ms");
            a.fired_at_ms = i64(ja, "fired_at_ms");
            a.resolved_at_ms = i64(ja, "resolved_at_ms");
            a.keep_firing_since_ms = i64(ja, "keep_firing_since_ms");
            a.last_sent_ms = i64(ja, "last_sent_ms");
            a.valid_until_ms = i64(ja, "valid_until_ms");
            r.alerts[a.labels] = std::move(a);
          }
        }
        g.rules.push_back(std::move(r));
      }
    }
    st.groups.push_back(std::move(g));
  }
  return st;
}

Result<RulesState> ReadRulesStateFile(const std::string& path) {
  TELKIT_ASSIGN_OR_RETURN(std::string text, ReadFileToString(DefaultFileSystem(), path, 256u << 20));
  auto st = DecodeRulesState(text);
  if (!st.ok()) return st.status().WithContext("'" + path + "'");
  return st;
}

int RestoreGroupState(GroupEvaluator& g, const RulesState& state) {
  int n = 0;
  for (const GroupState& gs : state.groups) {
    if (gs.file != g.group().file || gs.name != g.group().name) continue;
    for (const RuleState& rs : gs.rules) {
      if (rs.kind != RuleKind::kAlert || rs.alerts.empty()) continue;
      n += static_cast<int>(rs.alerts.size());
      g.RestoreFrom(rs.name, rs.alerts, rs.last_eval_ms);
    }
    g.set_last_eval(gs.last_eval_ms, gs.eval_seconds);
  }
  return n;
}

namespace {

json AlertApi(const Alert& a) {
  json j;
  j["labels"] = LabelsJson(a.labels);
  j["annotations"] = PairsJson(a.annotations);
  j["state"] = AlertStateName(a.state);
  j["activeAt"] = FormatRfc3339Ms(a.active_at_ms);
  j["value"] = promql::FormatValue(a.value);
  if (a.keep_firing_since_ms) j["keepFiringSince"] = FormatRfc3339Ms(a.keep_firing_since_ms);
  return j;
}

}  // namespace

json RulesApiData(const RulesState& state, std::string_view type) {
  json groups = json::array();
  for (const GroupState& g : state.groups) {
    json jg;
    jg["name"] = g.name;
    jg["file"] = g.file;
    jg["interval"] = static_cast<double>(g.interval_ms) / 1000.0;
    jg["limit"] = g.limit;
    json rules = json::array();
    for (const RuleState& r : g.rules) {
      bool alert = r.kind == RuleKind::kAlert;
      if ((type == "alert" && !alert) || (type == "record" && alert)) continue;
      json jr;
      jr["name"] = r.name;
      jr["query"] = r.query;
      jr["labels"] = PairsJson(r.labels);
      jr["health"] = RuleHealthName(r.health);
      if (!r.last_error.empty()) jr["lastError"] = r.last_error;
      jr["evaluationTime"] = r.eval_seconds;
      jr["lastEvaluation"] = FormatRfc3339Ms(r.last_eval_ms);
      jr["type"] = alert ? "alerting" : "recording";
      if (alert) {
        jr["duration"] = static_cast<double>(r.for_ms) / 1000.0;
        jr["keepFiringFor"] = static_cast<double>(r.keep_firing_for_ms) / 1000.0;
        jr["annotations"] = PairsJson(r.annotations);
        json alerts = json::array();
        std::string st = "inactive";
        for (const auto& [l, a] : r.alerts) {
          if (a.state == AlertState::kInactive) continue;
          if (a.state == AlertState::kFiring)
            st = "firing";
          else if (st != "firing")
            st = "pending";
          alerts.push_back(AlertApi(a));
        }
        jr["alerts"] = std::move(alerts);
        jr["state"] = st;
      }
      rules.push_back(std::move(jr));
    }
    jg["rules"] = std::move(rules);
    jg["evaluationTime"] = g.eval_seconds;
    jg["lastEvaluation"] = FormatRfc3339Ms(g.last_eval_ms);
    groups.push_back(std::move(jg));
  }
  json data;
  data["groups"] = std::move(groups);
  return data;
}

json AlertsApiData(const RulesState& state) {
  json alerts = json::array();
  for (const GroupState& g : state.groups)
    for (const RuleState& r : g.rules)
      for (const auto& [l, a] : r.alerts)
        if (a.state != AlertState::kInactive) alerts.push_back(AlertApi(a));
  json data;
  data["alerts"] = std::move(alerts);
  return data;
}

}  // namespace telkit::rules
