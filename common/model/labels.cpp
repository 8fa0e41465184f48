#include "common/model/labels.h"

#include <algorithm>

#include "common/base/utf8.h"

namespace telkit {
namespace {

bool IsNameStart(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}

bool IsValidName(std::string_view name, bool allow_colon) {
  if (name.empty() || !IsNameStart(name[0], allow_colon)) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return IsNameStart(c, allow_colon) || (c >= '0' && c <= '9'); });
}

// The exposition format escapes backslash and newline everywhere, and the
// double quote inside label values only.
std::string EscapeText(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

template <typename Vector>
auto FindName(Vector& labels, std::string_view name) {
  return std::lower_bound(labels.begin(), labels.end(), name,
                          [](const Label& l, std::string_view n) { return l.name.compare(n) < 0; });
}

}  // namespace

Result<Labels> Labels::FromUnsorted(std::vector<Label> labels) {
  std::erase_if(labels, [](const Label& l) { return l.value.empty(); });
  std::sort(labels.begin(), labels.end(), [](const Label& a, const Label& b) { return a.name < b.name; });
  for (size_t i = 1; i < labels.size(); ++i) {
    if (labels[i].name == labels[i - 1].name) {
      return InvalidArgumentError("duplicate label name '" + labels[i].name + "'");
    }
  }
  Labels out;
  out.labels_ = std::move(labels);
  return out;
}

Labels::Labels(std::initializer_list<Label> labels) {
  for (const Label& l : labels) Set(l.name, l.value);
}

std::string_view Labels::Get(std::string_view name) const {
  auto it = FindName(labels_, name);
  return it != labels_.end() && it->name == name ? std::string_view(it->value) : std::string_view();
}

void Labels::Set(std::string_view name, std::string_view value) {
  auto it = FindName(labels_, name);
  const bool found = it != labels_.end() && it->name == name;
  if (value.empty()) {
    if (found) labels_.erase(it);
  } else if (found) {
    it->value = value;
  } else {
    labels_.insert(it, Label{std::string(name), std::string(value)});
  }
}

uint64_t Labels::Hash() const {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;
  };
  for (const Label& l : labels_) {
    mix(l.name);
    mix(l.value);
  }
  return h;
}

std::string Labels::ToString() const {
  std::string out(MetricName());
  out += '{';
  bool first = true;
  for (const Label& l : labels_) {
    if (l.name == kMetricNameLabel) continue;
    if (!first) out += ", ";
    first = false;
    out += l.name;
    out += "=\"";
    out += EscapeLabelValue(l.value);
    out += '"';
  }
  out += '}';
  return out;
}

bool IsValidMetricName(std::string_view name) { return IsValidName(name, /*allow_colon=*/true); }
bool IsValidLabelName(std::string_view name) { return IsValidName(name, /*allow_colon=*/false); }
bool IsValidUserLabelName(std::string_view name) { return IsValidLabelName(name) && !name.starts_with("__"); }

std::string EscapeLabelValue(std::string_view value) { return EscapeText(value, /*quote=*/true); }
std::string EscapeHelp(std::string_view help) { return EscapeText(help, /*quote=*/false); }

std::string_view LabelProblemName(LabelProblem p) {
  switch (p) {
    case LabelProblem::kNone: return "none";
    case LabelProblem::kMissingMetricName: return "missing_metric_name";
    case LabelProblem::kInvalidMetricName: return "invalid_metric_name";
    case LabelProblem::kInvalidLabelName: return "invalid_label_name";
    case LabelProblem::kInvalidLabelValue: return "invalid_label_value";
    case LabelProblem::kDuplicateLabelName: return "duplicate_label_name";
    case LabelProblem::kTooManyLabels: return "too_many_labels";
    case LabelProblem::kNameTooLong: return "label_name_too_long";
    case LabelProblem::kValueTooLong: return "label_value_too_long";
  }
  return "unknown";
}

LabelProblem CheckSeriesLabels(const Labels& labels, const LabelLimits& limits) {
  const std::string_view metric = labels.MetricName();
  if (metric.empty()) return LabelProblem::kMissingMetricName;
  if (!IsValidMetricName(metric)) return LabelProblem::kInvalidMetricName;
  if (labels.size() > limits.max_labels) return LabelProblem::kTooManyLabels;
  for (const Label& l : labels) {
    if (l.name.size() > limits.max_name_bytes) return LabelProblem::kNameTooLong;
    if (l.value.size() > limits.max_value_bytes) return LabelProblem::kValueTooLong;
    if (!IsValidLabelName(l.name)) return LabelProblem::kInvalidLabelName;
    if (!IsValidUtf8(l.value)) return LabelProblem::kInvalidLabelValue;
  }
  return LabelProblem::kNone;
}

}  // namespace telkit
