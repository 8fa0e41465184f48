// Prometheus relabelling (relabel_configs, metric_relabel_configs): each
// rule rewrites or filters a label set, in order. Supported actions:
// replace (default), keep, drop, labelmap, labeldrop, labelkeep, with
// Prometheus' semantics: source_labels joined with `separator` (";"), the
// regex fully anchored (default "(.*)"), `replacement` (default "$1") with
// $1, ${1} and ${name} references, `target_label` (may use references too).
// Thread-safety: a compiled RelabelRule is immutable and safe to share.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"

namespace re2 {
class RE2;
}

namespace telkit {

enum class RelabelAction { kReplace, kKeep, kDrop, kLabelMap, kLabelDrop, kLabelKeep };
// "replace", "keep", ...; INVALID_ARGUMENT for others (hashmod, lowercase, ...
// are not supported).
Result<RelabelAction> ParseRelabelAction(std::string_view name);

struct RelabelRuleSpec {
  std::vector<std::string> source_labels;
  std::string separator = ";";
  std::string regex = "(.*)";
  std::string target_label;
  std::string replacement = "$1";
  RelabelAction action = RelabelAction::kReplace;
};

class RelabelRule {
 public:
  // INVALID_ARGUMENT for a regex RE2 refuses, or a replace rule without a
  // target_label.
  static Result<RelabelRule> Compile(const RelabelRuleSpec& spec);
  // Applies the rule; false when the label set is dropped (keep/drop).
  bool Apply(Labels& labels) const;

 private:
  RelabelRuleSpec spec_;
  std::shared_ptr<const re2::RE2> re_;
  std::string rewrite_;         // replacement in RE2's \N form
  std::string target_rewrite_;  // target_label in RE2's \N form
};

// Applies `rules` in order; false as soon as one drops the set.
bool ApplyRelabel(const std::vector<RelabelRule>& rules, Labels& labels);

}  // namespace telkit
