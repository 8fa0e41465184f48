// Strict UTF-8 validation (protobuf's check_utf8 rule): no overlong forms,
// no surrogates, nothing above U+10FFFF. ASCII, the common case, is checked
// a word at a time. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string_view>

namespace telkit {

// The first byte of [p, end) that starts an invalid sequence, or nullptr.
const uint8_t* FindInvalidUtf8(const uint8_t* p, const uint8_t* end);
bool IsValidUtf8(std::string_view s);

}  // namespace telkit
