// Prometheus' XOR chunk (tsdb/chunkenc/xor.go), re-implemented bit for bit
// as the reference point of chunk_bench: a 2-byte big-endian sample count,
// then t0 as a varint, v0 as 64 bits, t1 - t0 as a uvarint, and for each
// later sample the delta-of-delta in Gorilla's buckets ('0', '10'+14 bits,
// '110'+17, '1110'+20, '1111'+64) and the value's XOR with the previous one.
// Only what the benchmark needs: encode a whole chunk, decode it back.
#pragma once

#include <bit>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/tsdb/bit_stream.h"
#include "common/tsdb/chunk.h"

namespace telkit::bench {

inline void PromWriteVarint(BitWriter& w, uint64_t x) {
  while (x >= 0x80) {
    w.Write((x & 0x7F) | 0x80, 8);
    x >>= 7;
  }
  w.Write(x, 8);
}

inline std::string PromXorEncode(std::span<const Sample> samples) {
  BitWriter w;
  int64_t t_prev = 0;
  uint64_t t_delta = 0;
  uint64_t v_prev = 0;
  int leading = 0xff, trailing = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    int64_t t = samples[i].t;
    uint64_t v = std::bit_cast<uint64_t>(samples[i].v);
    if (i == 0) {
      PromWriteVarint(w, (static_cast<uint64_t>(t) << 1) ^ static_cast<uint64_t>(t >> 63));
      w.Write(v, 64);
    } else {
      uint64_t delta = static_cast<uint64_t>(t) - static_cast<uint64_t>(t_prev);
      if (i == 1) {
        PromWriteVarint(w, delta);
      } else {
        auto dod = static_cast<int64_t>(delta - t_delta);
        auto in = [dod](int bits) {
          return -((int64_t{1} << (bits - 1)) - 1) <= dod && dod <= (int64_t{1} << (bits - 1));
        };
        if (dod == 0) {
          w.Write(0, 1);
        } else if (in(14)) {
          w.Write(0b10, 2);
          w.Write(static_cast<uint64_t>(dod), 14);
        } else if (in(17)) {
          w.Write(0b110, 3);
          w.Write(static_cast<uint64_t>(dod), 17);
        } else if (in(20)) {
          w.Write(0b1110, 4);
          w.Write(static_cast<uint64_t>(dod), 20);
        } else {
          w.Write(0b1111, 4);
          w.Write(static_cast<uint64_t>(dod), 64);
        }
      }
      t_delta = delta;
      uint64_t x = v ^ v_prev;
      if (x == 0) {
        w.Write(0, 1);
      } else {
        w.Write(1, 1);
        int l = std::min(std::countl_zero(x), 31);
        int tr = std::countr_zero(x);
        if (leading != 0xff && l >= leading && tr >= trailing) {
          w.Write(0, 1);
          w.Write(x >> trailing, 64 - leading - trailing);
        } else {
          leading = l;
          trailing = tr;
          w.Write(1, 1);
          w.Write(static_cast<uint64_t>(l), 5);
          w.Write(static_cast<uint64_t>(64 - l - tr), 6);
          w.Write(x >> tr, 64 - l - tr);
        }
      }
    }
    t_prev = t;
    v_prev = v;
  }
  std::string out;
  out.push_back(static_cast<char>(samples.size() >> 8));
  out.push_back(static_cast<char>(samples.size() & 0xFF));
  w.AppendTo(&out);
  return out;
}

inline uint64_t PromReadVarint(BitReader& r) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    uint64_t b = r.Read(8);
    x |= (b & 0x7F) << shift;
    if ((b & 0x80) == 0) break;
  }
  return x;
}

// Calls fn(t, v) for each sample; returns false on a malformed chunk.
template <typename Fn>
bool PromXorDecode(const std::string& chunk, Fn&& fn) {
  if (chunk.size() < 2) return false;
  size_t n = (static_cast<size_t>(static_cast<uint8_t>(chunk[0])) << 8) | static_cast<uint8_t>(chunk[1]);
  BitReader r(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(chunk.data()) + 2, chunk.size() - 2));
  int64_t t = 0;
  uint64_t t_delta = 0, v = 0;
  int leading = 0, trailing = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i == 0) {
      uint64_t z = PromReadVarint(r);
      t = static_cast<int64_t>((z >> 1) ^ (0 - (z & 1)));
      v = r.Read(64);
    } else {
      if (i == 1) {
        t_delta = PromReadVarint(r);
      } else {
        int ones = 0;
        while (ones < 4 && r.ReadBit()) ++ones;
        int64_t dod = 0;
        int size = ones == 1 ? 14 : ones == 2 ? 17 : ones == 3 ? 20 : 0;
        if (ones == 4) {
          dod = static_cast<int64_t>(r.Read(64));
        } else if (size != 0) {
          uint64_t bits = r.Read(size);
          if (bits > (uint64_t{1} << (size - 1))) bits -= uint64_t{1} << size;
          dod = static_cast<int64_t>(bits);
        }
        t_delta = static_cast<uint64_t>(static_cast<int64_t>(t_delta) + dod);
      }
      t = static_cast<int64_t>(static_cast<uint64_t>(t) + t_delta);
      if (r.ReadBit()) {
        if (r.ReadBit()) {
          leading = static_cast<int>(r.Read(5));
          int sig = static_cast<int>(r.Read(6));
          if (sig == 0) sig = 64;
          if (leading + sig > 64) return false;
          trailing = 64 - leading - sig;
        }
        v ^= r.Read(64 - leading - trailing) << trailing;
      }
    }
    if (r.overrun()) return false;
    fn(t, std::bit_cast<double>(v));
  }
  return true;
}

}  // namespace telkit::bench
