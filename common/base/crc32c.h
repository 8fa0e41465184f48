// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every
// telkit format (docs/format/). Uses SSE4.2 when the CPU has it.
// Thread-safe: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace telkit {

// Extends `crc` (the CRC of earlier bytes, 0 to start) over data[0, n).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

inline uint32_t Crc32c(const void* data, size_t n) { return Crc32cExtend(0, data, n); }
inline uint32_t Crc32c(std::string_view s) { return Crc32cExtend(0, s.data(), s.size()); }

}  // namespace telkit
