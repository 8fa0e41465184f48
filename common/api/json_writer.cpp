#include "common/api/json_writer.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>

namespace telkit::api {
namespace {

// Bytes below 0x80 that Go's HTML-safe JSON encoding escapes.
constexpr bool NeedsEscape(unsigned char c) {
  return c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&';
}

// Length of the valid UTF-8 sequence at s[i] (2..4), or 0 when invalid.
size_t Utf8SequenceLength(std::string_view s, size_t i, uint32_t* cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t n;
  uint32_t v;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    v = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF)) {
    return 0;
  }
  *cp = v;
  return n;
}

}  // namespace

void JsonWriter::String(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out_.push_back('"');
  size_t start = 0;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (!NeedsEscape(c)) {
        ++i;
        continue;
      }
      out_.append(s.data() + start, i - start);
      switch (c) {
        case '"': out_.append("\\\""); break;
        case '\\': out_.append("\\\\"); break;
        case '\n': out_.append("\\n"); break;
        case '\r': out_.append("\\r"); break;
        case '\t': out_.append("\\t"); break;
        default:
          out_.append("\\u00");
          out_.push_back(kHex[c >> 4]);
          out_.push_back(kHex[c & 0xF]);
      }
      start = ++i;
      continue;
    }
    uint32_t cp = 0;
    size_t n = Utf8SequenceLength(s, i, &cp);
    if (n == 0) {
      out_.append(s.data() + start, i - start);
      out_.append("\\ufffd");
      start = ++i;
      continue;
    }
    if (cp == 0x2028 || cp == 0x2029) {
      out_.append(s.data() + start, i - start);
      out_.append(cp == 0x2028 ? "\\u2028" : "\\u2029");
      start = i + n;
    }
    i += n;
  }
  out_.append(s.data() + start, s.size() - start);
  out_.push_back('"');
}

void JsonWriter::Int(int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
}

void JsonWriter::Uint(uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
}

void JsonWriter::Double(double v) {
  if (!std::isfinite(v)) {
    out_.append("null");
    return;
  }
  char buf[64];
  double a = std::fabs(v);
  if (a != 0 && (a < 1e-6 || a >= 1e21)) {
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    size_t n = static_cast<size_t>(r.ptr - buf);
    // Go writes e-7, not e-07.
    if (n >= 4 && buf[n - 4] == 'e' && buf[n - 3] == '-' && buf[n - 2] == '0') {
      buf[n - 2] = buf[n - 1];
      --n;
    }
    out_.append(buf, n);
    return;
  }
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  out_.append(buf, r.ptr);
}

namespace {

// Writes MarshalTimestamp's form of `ms` at p; returns the end.
char* PutTimestamp(char* p, int64_t ms) {
  uint64_t u;
  if (ms < 0) {
    *p++ = '-';
    u = static_cast<uint64_t>(-(ms + 1)) + 1;
  } else {
    u = static_cast<uint64_t>(ms);
  }
  p = std::to_chars(p, p + 24, u / 1000).ptr;
  unsigned frac = static_cast<unsigned>(u % 1000);
  if (frac != 0) {
    p[0] = '.';
    p[1] = static_cast<char>('0' + frac / 100);
    p[2] = static_cast<char>('0' + frac / 10 % 10);
    p[3] = static_cast<char>('0' + frac % 10);
    p += 4;
  }
  return p;
}

// Writes "value" (quoted, Go's 'f' -1 form) at p; returns the end. The
// longest fixed form of a double (denormals) is about 330 characters.
constexpr size_t kMaxValueChars = 400;
char* PutSampleValue(char* p, double v) {
  *p++ = '"';
  if (std::isnan(v)) {
    std::memcpy(p, "NaN", 3);
    p += 3;
  } else if (std::isinf(v)) {
    std::memcpy(p, v > 0 ? "+Inf" : "-Inf", 4);
    p += 4;
  } else {
    p = std::to_chars(p, p + kMaxValueChars - 2, v, std::chars_format::fixed).ptr;
  }
  *p++ = '"';
  return p;
}

}  // namespace

void JsonWriter::Timestamp(int64_t ms) {
  char buf[32];
  out_.append(buf, PutTimestamp(buf, ms));
}

void JsonWriter::SampleValue(double v) {
  char buf[kMaxValueChars];
  out_.append(buf, PutSampleValue(buf, v));
}

void JsonWriter::Point(int64_t ms, double v) {
  char buf[kMaxValueChars + 40];
  char* p = buf;
  *p++ = '[';
  p = PutTimestamp(p, ms);
  *p++ = ',';
  p = PutSampleValue(p, v);
  *p++ = ']';
  out_.append(buf, p);
}

void JsonWriter::LabelsObject(const Labels& labels) {
  out_.push_back('{');
  bool first = true;
  for (const Label& l : labels) {
    if (!first) out_.push_back(',');
    first = false;
    String(l.name);
    out_.push_back(':');
    String(l.value);
  }
  out_.push_back('}');
}

std::string FormatRfc3339(int64_t ms) {
  int64_t secs = ms / 1000;
  int64_t frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld", static_cast<long long>(y),
                        static_cast<long long>(m), static_cast<long long>(d), static_cast<long long>(rem / 3600),
                        static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60));
  std::string s(buf, static_cast<size_t>(n));
  if (frac != 0) {
    char f[5];
    std::snprintf(f, sizeof f, ".%03lld", static_cast<long long>(frac));
    std::string fs(f);
    while (fs.back() == '0') fs.pop_back();
    s += fs;
  }
  s += 'Z';
  return s;
}

}  // namespace telkit::api
