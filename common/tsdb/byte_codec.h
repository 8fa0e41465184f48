// Little helpers for the byte formats of the metrics store (WAL records,
// block files, index blobs): LEB128 varints, zigzag, fixed little-endian
// integers, length-prefixed strings, and a bounds-checked reader that never
// reads past its input. Formats: docs/format/tsdb-wal.md, tsdb-block.md.
//
// Thread-compatible value types.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace telkit {

inline uint64_t ZigZag(int64_t x) { return (static_cast<uint64_t>(x) << 1) ^ static_cast<uint64_t>(x >> 63); }
inline int64_t UnZigZag(uint64_t z) { return static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1); }

inline void PutUvarint64(std::string* out, uint64_t x) {
  while (x >= 0x80) {
    out->push_back(static_cast<char>(x | 0x80));
    x >>= 7;
  }
  out->push_back(static_cast<char>(x));
}
inline void PutVarint64(std::string* out, int64_t x) { PutUvarint64(out, ZigZag(x)); }
inline void PutFixed32(std::string* out, uint32_t x) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(x >> (8 * i)));
}
inline void PutFixed64(std::string* out, uint64_t x) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(x >> (8 * i)));
}
inline void PutString(std::string* out, std::string_view s) {
  PutUvarint64(out, s.size());
  out->append(s);
}
inline uint32_t LoadFixed32(const char* p) {
  uint32_t x = 0;
  for (int i = 3; i >= 0; --i) x = (x << 8) | static_cast<uint8_t>(p[i]);
  return x;
}
inline uint64_t LoadFixed64(const char* p) {
  uint64_t x = 0;
  for (int i = 7; i >= 0; --i) x = (x << 8) | static_cast<uint8_t>(p[i]);
  return x;
}

// Reads from a byte string; every getter returns false (and reads nothing
// more) once the input is exhausted or malformed: a varint over 10 bytes or
// over 64 bits, a string longer than what is left.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool empty() const { return in_.empty(); }
  size_t remaining() const { return in_.size(); }
  std::string_view rest() const { return in_; }

  bool Uvarint(uint64_t* x) {
    uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      if (in_.empty()) return false;
      uint8_t b = static_cast<uint8_t>(in_[0]);
      in_.remove_prefix(1);
      if (i == 9 && b > 1) return false;
      v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if (b < 0x80) {
        *x = v;
        return true;
      }
    }
    return false;
  }
  bool Varint(int64_t* x) {
    uint64_t z;
    if (!Uvarint(&z)) return false;
    *x = UnZigZag(z);
    return true;
  }
  bool Byte(uint8_t* b) {
    if (in_.empty()) return false;
    *b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool Fixed32(uint32_t* x) {
    if (in_.size() < 4) return false;
    *x = LoadFixed32(in_.data());
    in_.remove_prefix(4);
    return true;
  }
  bool Fixed64(uint64_t* x) {
    if (in_.size() < 8) return false;
    *x = LoadFixed64(in_.data());
    in_.remove_prefix(8);
    return true;
  }
  bool Bytes(size_t n, std::string_view* out) {
    if (in_.size() < n) return false;
    *out = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool String(std::string_view* out) {
    uint64_t n;
    return Uvarint(&n) && n <= in_.size() && Bytes(static_cast<size_t>(n), out);
  }

 private:
  std::string_view in_;
};

}  // namespace telkit
