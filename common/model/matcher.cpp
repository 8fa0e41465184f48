#include "common/model/matcher.h"

#include <re2/re2.h>

namespace telkit {

std::string_view MatchTypeString(MatchType t) {
  switch (t) {
    case MatchType::kEqual: return "=";
    case MatchType::kNotEqual: return "!=";
    case MatchType::kRegexMatch: return "=~";
    case MatchType::kRegexNoMatch: return "!~";
  }
  return "?";
}

LabelMatcher::LabelMatcher(MatchType type, std::string name, std::string value, std::shared_ptr<const re2::RE2> re)
    : type_(type), name_(std::move(name)), value_(std::move(value)), re_(std::move(re)) {}

Result<LabelMatcher> LabelMatcher::Make(MatchType type, std::string name, std::string value) {
  std::shared_ptr<const re2::RE2> re;
  if (type == MatchType::kRegexMatch || type == MatchType::kRegexNoMatch) {
    RE2::Options options;
    options.set_log_errors(false);
    options.set_dot_nl(true);  // Prometheus: "." matches newlines too
    auto compiled = std::make_shared<re2::RE2>("^(?:" + value + ")$", options);
    if (!compiled->ok()) {
      return InvalidArgumentError("invalid regular expression '" + value + "': " + compiled->error());
    }
    re = std::move(compiled);
  }
  return LabelMatcher(type, std::move(name), std::move(value), std::move(re));
}

bool LabelMatcher::Matches(std::string_view value) const {
  switch (type_) {
    case MatchType::kEqual: return value == value_;
    case MatchType::kNotEqual: return value != value_;
    case MatchType::kRegexMatch: return RE2::FullMatch(value, *re_);
    case MatchType::kRegexNoMatch: return !RE2::FullMatch(value, *re_);
  }
  return false;
}

std::string LabelMatcher::ToString() const {
  return name_ + std::string(MatchTypeString(type_)) + "\"" + EscapeLabelValue(value_) + "\"";
}

bool MatchesAll(const Labels& labels, std::span<const LabelMatcher> matchers) {
  for (const LabelMatcher& m : matchers) {
    if (!m.Matches(labels)) return false;
  }
  return true;
}

}  // namespace telkit
