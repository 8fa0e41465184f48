#include "common/model/series.h"

#include <bit>

namespace telkit {

bool IsStaleNaN(double v) { return std::bit_cast<uint64_t>(v) == kStaleNaNBits; }
double StaleNaN() { return std::bit_cast<double>(kStaleNaNBits); }

}  // namespace telkit
