// Label matchers as PromQL and LogQL selectors use them: name, operator
// (= != =~ !~) and value. Regular expressions are RE2, anchored at both ends
// (Prometheus' semantics: `job=~"api"` matches "api", not "api-gw").
// An absent label matches as the empty string, so {foo=""} selects series
// without foo and {foo!=""} series with it.
//
// Immutable after Make(); copies share the compiled regex. Thread-safe.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"

namespace re2 {
class RE2;
}

namespace telkit {

enum class MatchType { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };
std::string_view MatchTypeString(MatchType t);  // "=", "!=", "=~", "!~"

class LabelMatcher {
 public:
  // INVALID_ARGUMENT for a regex RE2 does not accept; the message names it.
  static Result<LabelMatcher> Make(MatchType type, std::string name, std::string value);

  MatchType type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::string& value() const { return value_; }

  bool Matches(std::string_view value) const;
  bool Matches(const Labels& labels) const { return Matches(labels.Get(name_)); }
  // Whether the matcher accepts the empty string, i.e. series without the label.
  bool MatchesEmpty() const { return Matches(std::string_view()); }

  // name="value" with the value escaped, as PromQL prints it.
  std::string ToString() const;

 private:
  LabelMatcher(MatchType type, std::string name, std::string value, std::shared_ptr<const re2::RE2> re);
  MatchType type_;
  std::string name_;
  std::string value_;
  std::shared_ptr<const re2::RE2> re_;  // for the regex types
};

bool MatchesAll(const Labels& labels, std::span<const LabelMatcher> matchers);

}  // namespace telkit
