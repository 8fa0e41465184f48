#include "common/base/time_format.h"

#include <cstdio>
#include <ctime>

namespace telkit {

std::string FormatUtcNanos(int64_t ns, const char* date_format, int frac_digits, bool trim) {
  int64_t secs = ns / 1'000'000'000;
  int64_t frac = ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  const size_t n = std::strftime(buf, sizeof buf, date_format, &tm);
  std::string out(buf, n);
  if (frac_digits <= 0) return out;
  if (frac_digits > 9) frac_digits = 9;
  char digits[16];
  std::snprintf(digits, sizeof digits, "%09lld", static_cast<long long>(frac));
  std::string f(digits, static_cast<size_t>(frac_digits));
  if (trim) {
    while (!f.empty() && f.back() == '0') f.pop_back();
    if (f.empty()) return out;
  }
  return out + "." + f;
}

}  // namespace telkit
