#include "common/prom/reject.h"

#include <numeric>

namespace telkit {

std::string_view PromRejectName(PromReject reason) {
  switch (reason) {
    case PromReject::kMissingMetricName: return "missing_metric_name";
    case PromReject::kInvalidMetricName: return "invalid_metric_name";
    case PromReject::kInvalidLabelName: return "invalid_label_name";
    case PromReject::kInvalidUtf8: return "invalid_utf8";
    case PromReject::kDuplicateLabelName: return "duplicate_label_name";
    case PromReject::kTooManyLabels: return "too_many_labels";
    case PromReject::kLabelNameTooLong: return "label_name_too_long";
    case PromReject::kLabelValueTooLong: return "label_value_too_long";
    case PromReject::kNoSamples: return "no_samples";
    case PromReject::kInvalidMetadata: return "invalid_metadata";
    case PromReject::kNoData: return "no_data";
    case PromReject::kInvalidDataPoint: return "invalid_data_point";
    case PromReject::kOutOfOrderDelta: return "out_of_order_delta";
    case PromReject::kDeltaStateFull: return "delta_state_full";
  }
  return "unknown";
}

PromReject RejectForLabelProblem(LabelProblem problem) {
  switch (problem) {
    case LabelProblem::kNone:
    case LabelProblem::kMissingMetricName: return PromReject::kMissingMetricName;
    case LabelProblem::kInvalidMetricName: return PromReject::kInvalidMetricName;
    case LabelProblem::kInvalidLabelName: return PromReject::kInvalidLabelName;
    case LabelProblem::kInvalidLabelValue: return PromReject::kInvalidUtf8;
    case LabelProblem::kDuplicateLabelName: return PromReject::kDuplicateLabelName;
    case LabelProblem::kTooManyLabels: return PromReject::kTooManyLabels;
    case LabelProblem::kNameTooLong: return PromReject::kLabelNameTooLong;
    case LabelProblem::kValueTooLong: return PromReject::kLabelValueTooLong;
  }
  return PromReject::kInvalidLabelName;
}

void RejectCounts::Add(PromReject reason, std::string_view message) {
  ++by_reason[static_cast<int>(reason)];
  if (first_message.empty()) first_message = std::string(message);
}

int64_t RejectCounts::Total() const { return std::accumulate(by_reason.begin(), by_reason.end(), int64_t{0}); }

}  // namespace telkit
