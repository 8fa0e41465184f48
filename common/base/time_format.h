// Formatting of Unix times in UTC, shared by the query outputs, the LogQL
// template functions and the rules templates.
//
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string>

namespace telkit {

// `ns` nanoseconds since the Unix epoch, in UTC: strftime(`date_format`) of
// the whole second (rounded down, so negative times work), then "." and
// `frac_digits` (1..9) digits of the fraction; with `trim`, trailing zeros are
// dropped and so is the dot of a whole second (Go's ".999999999" layouts).
// frac_digits 0: no fraction.
std::string FormatUtcNanos(int64_t ns, const char* date_format, int frac_digits, bool trim);

}  // namespace telkit
