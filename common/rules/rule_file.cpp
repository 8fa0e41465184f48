#include "common/rules/rule_file.h"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <optional>
#include <set>

#include "common/fs/file_system.h"
#include "common/model/labels.h"
#include "common/promql/parser.h"
#include "common/rules/template.h"

namespace telkit::rules {

std::string RuleFileError::ToString(std::string_view file) const {
  return std::string(file) + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

Result<int64_t> ParseRuleDuration(std::string_view text) {
  auto d = promql::ParseDuration(text);
  if (!d.ok()) return InvalidArgumentError("not a valid duration string: \"" + std::string(text) + "\"");
  if (*d < 0) return InvalidArgumentError("negative duration \"" + std::string(text) + "\"");
  return *d;
}

std::string FormatRuleDuration(int64_t ms) {
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  struct U {
    const char* name;
    int64_t ms;
  };
  static const U kUnits[] = {{"y", 365LL * 86400000},
                             {"w", 7LL * 86400000},
                             {"d", 86400000},
                             {"h", 3600000},
                             {"m", 60000},
                             {"s", 1000},
                             {"ms", 1}};
  for (const auto& u : kUnits) {
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms) + u.name;
      ms %= u.ms;
    }
  }
  return out;
}

namespace {

struct Ctx {
  RuleFile* file;
  const ParseRuleFileOptions* options;
  bool group_ok = true;
  void Error(const YAML::Node& at, std::string msg) {
    YAML::Mark m = at.Mark();
    file->errors.push_back({m.line + 1, m.column + 1, std::move(msg)});
    group_ok = false;
  }
};

bool ScalarString(Ctx& c, const YAML::Node& n, const std::string& what, std::string* out) {
  if (!n.IsScalar()) {
    c.Error(n, what + " must be a string");
    return false;
  }
  *out = n.Scalar();
  return true;
}

bool Duration(Ctx& c, const YAML::Node& n, const std::string& what, int64_t* out) {
  std::string s;
  if (!ScalarString(c, n, what, &s)) return false;
  auto d = ParseRuleDuration(s);
  if (!d.ok()) {
    c.Error(n, what + ": " + d.status().message());
    return false;
  }
  *out = *d;
  return true;
}

bool StringMap(Ctx& c, const YAML::Node& n, const std::string& ctx, const std::string& what, bool label_names,
               std::vector<std::pair<std::string, std::string>>* out) {
  if (n.IsNull()) return true;
  if (!n.IsMap()) {
    c.Error(n, what + " must be a map of strings");
    return false;
  }
  std::set<std::string> seen;
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string k = it->first.Scalar(), v;
    if (!it->second.IsScalar() && !it->second.IsNull()) {
      c.Error(it->second, what + " \"" + k + "\" must be a string");
      continue;
    }
    v = it->second.IsNull() ? "" : it->second.Scalar();
    if (!seen.insert(k).second) {
      c.Error(it->first, what + " \"" + k + "\" given twice");
      continue;
    }
    if (label_names && !IsValidLabelName(k)) {
      c.Error(it->first, "invalid label name: " + k);
      continue;
    }
    auto t = Template::Parse(v);
    if (!t.ok()) {
      c.Error(it->second, ctx + what + " \"" + k + "\": " + t.status().message());
      continue;
    }
    out->emplace_back(k, v);
  }
  return true;
}

void ParseRule(Ctx& c, const YAML::Node& n, RuleGroup& g, size_t index) {
  if (!n.IsMap()) {
    c.Error(n, "rule " + std::to_string(index) + " must be a map");
    return;
  }
  Rule r;
  r.line = n.Mark().line + 1;
  bool has_for = false, has_keep = false, has_annotations = false;
  std::optional<YAML::Node> record, alert, expr, labels, annotations;
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string key = it->first.Scalar();
    const YAML::Node& v = it->second;
    if (key == "record")
      record.emplace(v);
    else if (key == "alert")
      alert.emplace(v);
    else if (key == "expr")
      expr.emplace(v);
    else if (key == "for") {
      has_for = true;
      Duration(c, v, "for", &r.for_ms);
    } else if (key == "keep_firing_for") {
      has_keep = true;
      Duration(c, v, "keep_firing_for", &r.keep_firing_for_ms);
    } else if (key == "labels")
      labels.emplace(v);
    else if (key == "annotations") {
      has_annotations = true;
      annotations.emplace(v);
    } else
      c.Error(it->first, "field " + key + " not found in type rulefmt.Rule");
  }
  std::string what = "group \"" + g.name + "\", rule " + std::to_string(index);
  if (record && alert) {
    c.Error(n, what + ": only one of 'record' and 'alert' must be set");
    return;
  }
  if (!record && !alert) {
    c.Error(n, what + ": one of 'record' or 'alert' must be set");
    return;
  }
  const YAML::Node& name = record ? *record : *alert;
  r.kind = record ? RuleKind::kRecord : RuleKind::kAlert;
  if (!ScalarString(c, name, record ? "record" : "alert", &r.name)) return;
  what += ", \"" + r.name + "\"";
  if (labels) StringMap(c, *labels, what + ": ", "label", true, &r.labels);
  if (annotations) StringMap(c, *annotations, what + ": ", "annotation", false, &r.annotations);
  if (r.kind == RuleKind::kRecord) {
    if (!IsValidMetricName(r.name)) c.Error(name, what + ": invalid recording rule name: " + r.name);
    if (has_for) c.Error(n, what + ": invalid field 'for' in recording rule");
    if (has_keep) c.Error(n, what + ": invalid field 'keep_firing_for' in recording rule");
    if (has_annotations) c.Error(n, what + ": invalid field 'annotations' in recording rule");
    for (const auto& [k, v] : r.labels)
      if (k == "__name__") c.Error(n, what + ": invalid label name: __name__");
  } else if (r.name.empty()) {
    c.Error(name, what + ": alert name must not be empty");
  }
  if (!expr || expr->IsNull() || (expr->IsScalar() && expr->Scalar().empty())) {
    c.Error(n, what + ": field 'expr' must be set in rule");
    return;
  }
  if (!ScalarString(c, *expr, "expr", &r.expr)) return;
  ExprChecker check = c.options->check_expr;
  if (!check && g.language == QueryLanguage::kPromQL) {
    check = [](std::string_view e) -> Status {
      auto p = promql::ParseExpr(e);
      return p.ok() ? OkStatus() : p.status();
    };
  }
  if (check) {
    Status st = check(r.expr);
    if (!st.ok()) c.Error(*expr, what + ": could not parse expression: " + st.message());
  }
  g.rules.push_back(std::move(r));
}

void ParseGroup(Ctx& c, const YAML::Node& n, std::set<std::string>& names) {
  c.group_ok = true;
  if (!n.IsMap()) {
    c.Error(n, "group must be a map");
    return;
  }
  RuleGroup g;
  g.file = c.file->path;
  g.line = n.Mark().line + 1;
  g.language = c.options->language;
  std::optional<YAML::Node> rules, name_node, group_labels;
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string key = it->first.Scalar();
    const YAML::Node& v = it->second;
    if (key == "name") {
      name_node.emplace(v);
      ScalarString(c, v, "name", &g.name);
    } else if (key == "interval")
      Duration(c, v, "interval", &g.interval_ms);
    else if (key == "query_offset")
      Duration(c, v, "query_offset", &g.query_offset_ms);
    else if (key == "limit") {
      try {
        g.limit = v.as<int64_t>();
        if (g.limit < 0) c.Error(v, "limit must not be negative");
      } catch (const YAML::Exception&) {
        c.Error(v, "limit must be an integer");
      }
    } else if (key == "rules")
      rules.emplace(v);
    else if (key == "labels")
      group_labels.emplace(v);
    else
      c.Error(it->first, "field " + key + " not found in type rulefmt.RuleGroup");
  }
  if (g.name.empty())
    c.Error(n, "group name must not be empty");
  else if (!names.insert(g.name).second)
    c.Error(*name_node, "group name \"" + g.name + "\" is repeated in the same file");
  if (rules && !rules->IsNull()) {
    if (!rules->IsSequence()) {
      c.Error(*rules, "group \"" + g.name + "\": rules must be a list");
    } else {
      size_t i = 0;
      for (const auto& r : *rules) ParseRule(c, r, g, ++i);
    }
  }
  // Prometheus 3.x group labels: added to every rule that does not set them.
  if (group_labels) {
    std::vector<std::pair<std::string, std::string>> gl;
    StringMap(c, *group_labels, "group \"" + g.name + "\": ", "label", true, &gl);
    for (auto& r : g.rules) {
      for (const auto& [k, v] : gl) {
        bool set = false;
        for (const auto& [rk, rv] : r.labels) set |= rk == k;
        if (!set) r.labels.emplace_back(k, v);
      }
    }
  }
  if (c.group_ok) c.file->groups.push_back(std::move(g));
}

}  // namespace

Result<RuleFile> ParseRuleFile(std::string_view text, std::string_view path, const ParseRuleFileOptions& options) {
  RuleFile file;
  file.path = std::string(path);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    return InvalidArgumentError(std::string(path) + ":" + std::to_string(e.mark.line + 1) + ":" +
                                std::to_string(e.mark.column + 1) + ": yaml: " + e.msg);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string(path) + ": yaml: " + e.what());
  }
  Ctx c{&file, &options};
  try {
    if (root.IsNull()) return file;  // an empty file has no groups, as in Prometheus
    if (!root.IsMap()) return InvalidArgumentError(std::string(path) + ":1:1: a rule file must be a map with 'groups'");
    std::set<std::string> names;
    for (auto it = root.begin(); it != root.end(); ++it) {
      const std::string key = it->first.Scalar();
      if (key == "groups") {
        if (it->second.IsNull()) continue;
        if (!it->second.IsSequence()) {
          YAML::Mark m = it->second.Mark();
          return InvalidArgumentError(std::string(path) + ":" + std::to_string(m.line + 1) + ":" +
                                      std::to_string(m.column + 1) + ": groups must be a list");
        }
        for (const auto& g : it->second) ParseGroup(c, g, names);
      } else if (key == "namespace" || key == "tenant") {
        // The Loki ruler API's wrappers; ignored.
      } else {
        c.Error(it->first, "field " + key + " not found in type rulefmt.RuleGroups");
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string(path) + ":" + std::to_string(e.mark.line + 1) + ": yaml: " + e.msg);
  }
  return file;
}

Result<RuleFile> LoadRuleFile(const std::string& path, const ParseRuleFileOptions& options) {
  TELKIT_ASSIGN_OR_RETURN(std::string text, ReadFileToString(DefaultFileSystem(), path, 64u << 20));
  return ParseRuleFile(text, path, options);
}

Result<std::vector<std::string>> ExpandRuleGlob(const std::string& pattern) {
  if (pattern.find_first_of("*?[") == std::string::npos) return std::vector<std::string>{pattern};
  glob_t g{};
  int rc = glob(pattern.c_str(), 0, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  globfree(&g);
  if (rc != 0 && rc != GLOB_NOMATCH) return InvalidArgumentError("bad rule file pattern '" + pattern + "'");
  return out;  // glob sorts
}

}  // namespace telkit::rules
