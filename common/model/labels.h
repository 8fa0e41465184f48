// Labels: the identity of a time series, as Prometheus defines it — a set of
// (name, value) pairs with unique names, the metric name under "__name__".
// Kept sorted by name, so equal sets compare and hash equally however they
// were built.
//
// Validation follows Prometheus' classic (pre-UTF-8) rules, which every
// PromQL client accepts without quoting:
//   metric name  [a-zA-Z_:][a-zA-Z0-9_:]*
//   label name   [a-zA-Z_][a-zA-Z0-9_]*   ("__" prefixes are reserved)
//   label value  any valid UTF-8; an empty value means "label absent"
// What the stores accept is further bounded by LabelLimits.
//
// Value type; thread-compatible.
#pragma once

#include <compare>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"

namespace telkit {

inline constexpr std::string_view kMetricNameLabel = "__name__";

struct Label {
  std::string name;
  std::string value;
  friend bool operator==(const Label&, const Label&) = default;
  friend auto operator<=>(const Label&, const Label&) = default;
};

class Labels {
 public:
  Labels() = default;
  // Sorts `labels` by name and drops the ones with an empty value (absent,
  // as in Prometheus). INVALID_ARGUMENT when a name occurs twice.
  static Result<Labels> FromUnsorted(std::vector<Label> labels);
  // For literals in code and tests. REQUIRES: unique names.
  Labels(std::initializer_list<Label> labels);

  size_t size() const { return labels_.size(); }
  bool empty() const { return labels_.empty(); }
  auto begin() const { return labels_.begin(); }
  auto end() const { return labels_.end(); }
  const Label& operator[](size_t i) const { return labels_[i]; }

  // The value of `name`, or "" when absent.
  std::string_view Get(std::string_view name) const;
  bool Has(std::string_view name) const { return !Get(name).empty(); }
  std::string_view MetricName() const { return Get(kMetricNameLabel); }

  // Sets (or with an empty value removes) one label, keeping the order.
  void Set(std::string_view name, std::string_view value);
  void Remove(std::string_view name) { Set(name, ""); }

  // 64-bit hash of the sorted pairs, stable across processes and versions
  // (it may be persisted): FNV-1a over "name\xffvalue\xff" of each pair.
  uint64_t Hash() const;

  // Prometheus' text form: name{a="b", c="d"}, values escaped as in the
  // exposition format; {a="b"} without a metric name.
  std::string ToString() const;

  friend bool operator==(const Labels&, const Labels&) = default;
  friend auto operator<=>(const Labels& a, const Labels& b) { return a.labels_ <=> b.labels_; }

 private:
  std::vector<Label> labels_;  // sorted by name, unique names, no empty values
};

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*. Names starting with "__" are reserved for the
// system; IsValidUserLabelName also refuses those.
bool IsValidLabelName(std::string_view name);
bool IsValidUserLabelName(std::string_view name);

// The exposition format's escaping: label values escape \\, \" and \n;
// help text escapes \\ and \n.
std::string EscapeLabelValue(std::string_view value);
std::string EscapeHelp(std::string_view help);

// Bounds on what a store accepts, with Prometheus' remote-write receiver
// defaults where it has them.
struct LabelLimits {
  size_t max_labels = 64;                // per series, __name__ included
  size_t max_name_bytes = 1024;          // per label name
  size_t max_value_bytes = 4096;         // per label value
};

// Why a series was refused; stable names for counters ("reason" label).
enum class LabelProblem {
  kNone,
  kMissingMetricName,
  kInvalidMetricName,
  kInvalidLabelName,
  kInvalidLabelValue,  // not UTF-8
  kDuplicateLabelName,
  kTooManyLabels,
  kNameTooLong,
  kValueTooLong,
};
std::string_view LabelProblemName(LabelProblem p);

// Checks a series identity against the naming rules and `limits`; the
// first problem found, or kNone.
LabelProblem CheckSeriesLabels(const Labels& labels, const LabelLimits& limits);

}  // namespace telkit
