#include "common/scrape/relabel.h"

#include <re2/re2.h>

namespace telkit {
namespace {

// Prometheus' $1, ${1}, ${name} and $$ references to RE2's \1 form ("\\"
// for a literal backslash).
Result<std::string> ToRe2Rewrite(std::string_view s, const re2::RE2& re) {
  std::string out;
  const auto& named = re.NamedCapturingGroups();
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\') {
      out += "\\\\";
      continue;
    }
    if (c != '$' || i + 1 == s.size()) {
      out += c;
      continue;
    }
    if (s[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    std::string name;
    size_t j = i + 1;
    if (s[j] == '{') {
      size_t close = s.find('}', j);
      if (close == std::string_view::npos) {
        out += c;
        continue;
      }
      name = std::string(s.substr(j + 1, close - j - 1));
      j = close + 1;
    } else {
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) name += s[j++];
    }
    if (name.empty()) {
      out += c;
      continue;
    }
    int group = -1;
    if (std::all_of(name.begin(), name.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); })) {
      group = std::stoi(name);
    } else if (auto it = named.find(name); it != named.end()) {
      group = it->second;
    }
    // Go's Expand: a reference to a group that does not exist is empty.
    if (group >= 0 && group <= re.NumberOfCapturingGroups() && group <= 9) out += "\\" + std::to_string(group);
    i = j - 1;
  }
  return out;
}

}  // namespace

Result<RelabelAction> ParseRelabelAction(std::string_view name) {
  if (name == "replace" || name.empty()) return RelabelAction::kReplace;
  if (name == "keep") return RelabelAction::kKeep;
  if (name == "drop") return RelabelAction::kDrop;
  if (name == "labelmap") return RelabelAction::kLabelMap;
  if (name == "labeldrop") return RelabelAction::kLabelDrop;
  if (name == "labelkeep") return RelabelAction::kLabelKeep;
  return InvalidArgumentError("relabel action '" + std::string(name) +
                              "' is not supported (replace, keep, drop, labelmap, labeldrop, labelkeep)");
}

Result<RelabelRule> RelabelRule::Compile(const RelabelRuleSpec& spec) {
  RelabelRule r;
  r.spec_ = spec;
  auto re = std::make_shared<re2::RE2>("^(?:" + spec.regex + ")$", re2::RE2::Quiet);
  if (!re->ok()) return InvalidArgumentError("relabel regex '" + spec.regex + "': " + re->error());
  r.re_ = re;
  TELKIT_ASSIGN_OR_RETURN(r.rewrite_, ToRe2Rewrite(spec.replacement, *re));
  TELKIT_ASSIGN_OR_RETURN(r.target_rewrite_, ToRe2Rewrite(spec.target_label, *re));
  if (spec.action == RelabelAction::kReplace && spec.target_label.empty()) {
    return InvalidArgumentError("relabel action replace needs a target_label");
  }
  return r;
}

bool RelabelRule::Apply(Labels& labels) const {
  std::string value;
  for (size_t i = 0; i < spec_.source_labels.size(); ++i) {
    if (i > 0) value += spec_.separator;
    value += labels.Get(spec_.source_labels[i]);
  }
  switch (spec_.action) {
    case RelabelAction::kKeep: return re2::RE2::FullMatch(value, *re_);
    case RelabelAction::kDrop: return !re2::RE2::FullMatch(value, *re_);
    case RelabelAction::kReplace: {
      std::string target, replaced;
      if (!re2::RE2::Extract(value, *re_, target_rewrite_, &target)) return true;  // no match: unchanged
      if (!IsValidLabelName(target)) return true;
      re2::RE2::Extract(value, *re_, rewrite_, &replaced);
      labels.Set(target, replaced);  // empty: removes the label
      return true;
    }
    case RelabelAction::kLabelMap: {
      std::vector<std::pair<std::string, std::string>> add;
      for (const Label& l : labels) {
        std::string name;
        if (re2::RE2::Extract(l.name, *re_, rewrite_, &name) && IsValidLabelName(name)) add.emplace_back(name, l.value);
      }
      for (auto& [n, v] : add) labels.Set(n, v);
      return true;
    }
    case RelabelAction::kLabelDrop:
    case RelabelAction::kLabelKeep: {
      bool drop_matching = spec_.action == RelabelAction::kLabelDrop;
      std::vector<std::string> remove;
      for (const Label& l : labels)
        if (re2::RE2::FullMatch(l.name, *re_) == drop_matching) remove.push_back(l.name);
      for (const auto& n : remove) labels.Remove(n);
      return true;
    }
  }
  return true;
}

bool ApplyRelabel(const std::vector<RelabelRule>& rules, Labels& labels) {
  for (const RelabelRule& r : rules)
    if (!r.Apply(labels)) return false;
  return true;
}

}  // namespace telkit
