// Strict UTF-8 validation (protobuf's check_utf8 rule): no overlong forms,
// no surrogates, nothing above U+10FFFF. ASCII, the common case, is checked
// a word at a time. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <cstddef>
#include <string>
#include <string_view>

namespace telkit {

// The first byte of [p, end) that starts an invalid sequence, or nullptr.
const uint8_t* FindInvalidUtf8(const uint8_t* p, const uint8_t* end);
bool IsValidUtf8(std::string_view s);
// Replaces every byte that starts an invalid sequence (and cannot be part of
// a valid one) by U+FFFD, in place. Returns how many were replaced (0: `s`
// was valid and is unchanged).
size_t ReplaceInvalidUtf8(std::string* s);

}  // namespace telkit
