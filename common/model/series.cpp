#include "common/model/series.h"

#include <bit>

namespace telkit {

bool IsStaleNaN(double v) { return std::bit_cast<uint64_t>(v) == kStaleNaNBits; }
double StaleNaN() { return std::bit_cast<double>(kStaleNaNBits); }

std::string_view MetricFamilyTypeName(MetricFamilyType t) {
  switch (t) {
    case MetricFamilyType::kUnknown: return "unknown";
    case MetricFamilyType::kCounter: return "counter";
    case MetricFamilyType::kGauge: return "gauge";
    case MetricFamilyType::kSummary: return "summary";
    case MetricFamilyType::kHistogram: return "histogram";
    case MetricFamilyType::kGaugeHistogram: return "gaugehistogram";
    case MetricFamilyType::kInfo: return "info";
    case MetricFamilyType::kStateSet: return "stateset";
  }
  return "unknown";
}

}  // namespace telkit
