// Why a series, data point or metadata entry was left out of a conversion
// into the Prometheus model (remote_write.h, otlp_translate.h). The names are
// stable: they are the "reason" label of counters.
//
// Value types; thread-compatible.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/model/labels.h"

namespace telkit {

enum class PromReject : uint8_t {
  kMissingMetricName,   // no __name__ (or an OTLP metric without a name)
  kInvalidMetricName,   // __name__ outside [a-zA-Z_:][a-zA-Z0-9_:]*
  kInvalidLabelName,    // a label name outside [a-zA-Z_][a-zA-Z0-9_]*
  kInvalidUtf8,         // a label value that is not UTF-8
  kDuplicateLabelName,  // the same label name twice in one series
  kTooManyLabels,       // over LabelLimits::max_labels
  kLabelNameTooLong,    // over LabelLimits::max_name_bytes
  kLabelValueTooLong,   // over LabelLimits::max_value_bytes
  kNoSamples,           // a remote-write series without float samples
  kInvalidMetadata,     // metadata without a family name, or not UTF-8
  kNoData,              // an OTLP metric whose data (gauge, sum, ...) is unset
  kInvalidDataPoint,    // e.g. histogram bucket counts that do not fit the bounds
  kOutOfOrderDelta,     // a DELTA point not newer than the last one of its series
  kDeltaStateFull,      // a new DELTA series while the translator tracks its maximum
};
inline constexpr int kPromRejectCount = 14;

// "missing_metric_name", "invalid_metric_name", "invalid_label_name",
// "invalid_utf8", "duplicate_label_name", "too_many_labels",
// "label_name_too_long", "label_value_too_long", "no_samples",
// "invalid_metadata", "no_data", "invalid_data_point", "out_of_order_delta",
// "delta_state_full".
std::string_view PromRejectName(PromReject reason);

// The reject for a LabelProblem other than kNone.
PromReject RejectForLabelProblem(LabelProblem problem);

// Rejected items counted by reason, with the first one described.
struct RejectCounts {
  std::array<int64_t, kPromRejectCount> by_reason{};
  std::string first_message;  // "" when nothing was rejected

  void Add(PromReject reason, std::string_view message);
  int64_t Count(PromReject reason) const { return by_reason[static_cast<int>(reason)]; }
  int64_t Total() const;
};

}  // namespace telkit
