#include "common/base/utf8.h"

#include <cstddef>
#include <cstring>

namespace telkit {
namespace {

// True when [p, p + n) is all ASCII: whole words ORed together (the last
// one overlapping), no branch a word.
inline bool IsAscii(const uint8_t* p, size_t n) {
  if (n >= 8) {
    uint64_t acc = 0;
    for (size_t i = 0; i + 8 <= n; i += 8) {
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      acc |= word;
    }
    uint64_t last;
    std::memcpy(&last, p + n - 8, 8);
    return ((acc | last) & 0x8080808080808080ULL) == 0;
  }
  if (n >= 4) {
    uint32_t first, last;
    std::memcpy(&first, p, 4);
    std::memcpy(&last, p + n - 4, 4);
    return ((first | last) & 0x80808080u) == 0;
  }
  uint32_t acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= p[i];
  return acc < 0x80;
}

// Returns the first byte of the first invalid UTF-8 sequence in [p, end), or
// nullptr when all of it is valid.
const uint8_t* FindInvalidUtf8Slow(const uint8_t* p, const uint8_t* end) {
  constexpr uint64_t kHighBits = 0x8080808080808080ULL;
  while (true) {
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if (word & kHighBits) break;
      p += 8;
    }
    while (p < end && *p < 0x80) ++p;
    if (p == end) return nullptr;
    const uint8_t b0 = p[0];
    const ptrdiff_t left = end - p;
    if (b0 < 0xC2) return p;  // a continuation byte, or an overlong 2-byte form
    if (b0 < 0xE0) {
      if (left < 2 || (p[1] & 0xC0) != 0x80) return p;
      p += 2;
    } else if (b0 < 0xF0) {
      if (left < 3) return p;
      const uint8_t lo = b0 == 0xE0 ? 0xA0 : 0x80;  // overlong
      const uint8_t hi = b0 == 0xED ? 0x9F : 0xBF;  // surrogates
      if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80) return p;
      p += 3;
    } else if (b0 < 0xF5) {
      if (left < 4) return p;
      const uint8_t lo = b0 == 0xF0 ? 0x90 : 0x80;  // overlong
      const uint8_t hi = b0 == 0xF4 ? 0x8F : 0xBF;  // above U+10FFFF
      if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return p;
      p += 4;
    } else {
      return p;
    }
  }
}

}  // namespace

const uint8_t* FindInvalidUtf8(const uint8_t* p, const uint8_t* end) {
  if (IsAscii(p, static_cast<size_t>(end - p))) [[likely]] {
    return nullptr;
  }
  return FindInvalidUtf8Slow(p, end);
}

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  return FindInvalidUtf8(p, p + s.size()) == nullptr;
}

size_t ReplaceInvalidUtf8(std::string* s) {
  if (IsValidUtf8(*s)) return 0;
  std::string out;
  out.reserve(s->size() + 8);
  size_t replaced = 0;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(s->data());
  const uint8_t* end = p + s->size();
  while (p < end) {
    const uint8_t* bad = FindInvalidUtf8(p, end);
    if (bad == nullptr) bad = end;
    out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(bad - p));
    if (bad == end) break;
    out.append("\xEF\xBF\xBD");
    ++replaced;
    p = bad + 1;
  }
  *s = std::move(out);
  return replaced;
}

}  // namespace telkit
