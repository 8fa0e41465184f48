// Bit-level writer and reader for the chunk encodings (docs/format/tsdb-chunks.md):
// bits are packed most significant first, the last byte zero-padded.
// The reader never reads outside its span: reading past the end sets
// overrun() and returns zero bits, so a truncated chunk is an error, never a
// crash.
// Thread-compatible.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace telkit {

// The bit loops are the inner loops of chunk encoding and decoding.
#define TELKIT_BITS_INLINE __attribute__((always_inline)) inline

class BitWriter {
 public:
  // Appends the low `n` bits of `v`, most significant first. 0 <= n <= 64.
  TELKIT_BITS_INLINE void Write(uint64_t v, int n) {
    if (n > 32) {
      WriteUpTo32(v >> 32, n - 32);
      n = 32;
    }
    WriteUpTo32(v, n);
  }
  void WriteBit(bool bit) { WriteUpTo32(bit ? 1 : 0, 1); }
  // `n` one-bits, 0 <= n <= 64.
  void WriteOnes(int n) { Write(~uint64_t{0}, n); }

  uint64_t bit_size() const { return bytes_.size() * 8 + static_cast<uint64_t>(used_); }
  size_t byte_size() const { return bytes_.size() + static_cast<size_t>((used_ + 7) / 8); }
  // Appends the bytes written so far, the partial last byte zero-padded.
  void AppendTo(std::string* out) const {
    out->append(bytes_);
    for (int i = 0; i < (used_ + 7) / 8; ++i) out->push_back(static_cast<char>(acc_ >> (56 - 8 * i)));
  }
  void Clear() {
    bytes_.clear();
    acc_ = 0;
    used_ = 0;
  }
  // Releases spare capacity (for long-lived writers of finished chunks).
  void ShrinkToFit() { bytes_.shrink_to_fit(); }

 private:
  TELKIT_BITS_INLINE void WriteUpTo32(uint64_t v, int n) {
    if (n == 0) return;
    v &= ~uint64_t{0} >> (64 - n);
    acc_ |= v << (64 - used_ - n);  // used_ < 32 and n <= 32: fits
    used_ += n;
    if (used_ >= 32) {
      char b[4] = {static_cast<char>(acc_ >> 56), static_cast<char>(acc_ >> 48), static_cast<char>(acc_ >> 40),
                   static_cast<char>(acc_ >> 32)};
      bytes_.append(b, 4);
      acc_ <<= 32;
      used_ -= 32;
    }
  }

  std::string bytes_;  // complete 4-byte groups
  uint64_t acc_ = 0;   // pending bits, left-aligned
  int used_ = 0;       // pending bit count, < 32 between calls
};

class BitReader {
 public:
  BitReader() = default;
  explicit BitReader(std::span<const uint8_t> data) : data_(data.data()), size_(data.size()) {}

  // Reads `n` bits, 0 <= n <= 64. On overrun returns 0 and sets overrun().
  TELKIT_BITS_INLINE uint64_t Read(int n) {
    if (n > 56) {
      uint64_t hi = ReadUpTo56(n - 32);
      return (hi << 32) | ReadUpTo56(32);
    }
    return ReadUpTo56(n);
  }
  bool ReadBit() { return Read(1) != 0; }

  // Counts one-bits up to `limit` (<= 56). Returns the count; when it is
  // below `limit`, the terminating zero bit was consumed too.
  int ReadUnary(int limit) {
    if (avail_ <= limit) Refill();
    int ones = std::countl_one(buf_);  // bits past avail_ are zero
    if (ones >= limit) {
      if (avail_ < limit) return static_cast<int>(Overrun());
      buf_ <<= limit;
      avail_ -= limit;
      return limit;
    }
    if (ones + 1 > avail_) return static_cast<int>(Overrun());
    buf_ <<= ones + 1;  // ones + 1 <= 56
    avail_ -= ones + 1;
    return ones;
  }

  // Rice code with parameter k (<= 56) and escape after `limit` ones:
  // returns false when escaped (the `limit` ones are consumed). Fast path
  // for codes that lie in the refilled buffer.
  TELKIT_BITS_INLINE bool ReadRiceCode(int k, int limit, uint64_t* z) {
    if (avail_ < 64 - 7) Refill();
    int ones = std::countl_one(buf_);
    if (ones < limit && ones + 1 + k <= avail_) {
      uint64_t rest = buf_ << (ones + 1);  // ones + 1 <= limit <= 56
      *z = (static_cast<uint64_t>(ones) << k) | (k == 0 ? 0 : rest >> (64 - k));
      int used = ones + 1 + k;
      buf_ = used == 64 ? 0 : buf_ << used;
      avail_ -= used;
      return true;
    }
    int q = ReadUnary(limit);
    if (q == limit) return false;
    *z = (static_cast<uint64_t>(q) << k) | Read(k);
    return true;
  }

  bool overrun() const { return overrun_; }
  uint64_t bits_left() const { return static_cast<uint64_t>(avail_) + 8 * (size_ - pos_); }
  // True when fewer than 8 bits are left and all of them are zero: the
  // column ended exactly where its padding began.
  bool AtZeroPadding() {
    uint64_t left = bits_left();
    return !overrun_ && left < 8 && Read(static_cast<int>(left)) == 0;
  }

 private:
  TELKIT_BITS_INLINE uint64_t ReadUpTo56(int n) {
    if (n == 0) return 0;
    if (avail_ < n) {
      Refill();
      if (avail_ < n) return Overrun();
    }
    uint64_t v = buf_ >> (64 - n);
    buf_ <<= n;
    avail_ -= n;
    return v;
  }
  TELKIT_BITS_INLINE void Refill() {
    if (size_ - pos_ >= 8) {  // whole bytes from one big-endian load
      uint64_t w;
      std::memcpy(&w, data_ + pos_, 8);
      if constexpr (std::endian::native == std::endian::little) w = __builtin_bswap64(w);
      int bytes = (64 - avail_) >> 3;
      int now = avail_ + 8 * bytes;
      uint64_t add = w >> avail_;
      if (now < 64) add &= ~(~uint64_t{0} >> now);
      buf_ |= add;
      avail_ = now;
      pos_ += static_cast<size_t>(bytes);
      return;
    }
    while (avail_ <= 56 && pos_ < size_) {
      buf_ |= uint64_t{data_[pos_++]} << (56 - avail_);
      avail_ += 8;
    }
  }
  uint64_t Overrun() {
    overrun_ = true;
    buf_ = 0;
    avail_ = 0;
    pos_ = size_;
    return 0;
  }

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
  uint64_t buf_ = 0;  // left-aligned; bits past avail_ are zero
  int avail_ = 0;
  bool overrun_ = false;
};

#undef TELKIT_BITS_INLINE

}  // namespace telkit
