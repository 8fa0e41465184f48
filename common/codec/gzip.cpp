#include "common/codec/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace telkit {
namespace {

enum class Container { kGzip, kZlib, kRawDeflate };

constexpr size_t kMinBuffer = 16 * 1024;
// zlib counts bytes in uInt; longer buffers are fed in slices.
constexpr size_t kMaxSlice = UINT_MAX;
// Deflate cannot expand data more than about 1032:1, so a size claimed in a
// gzip trailer beyond that is a lie and is not used to size the buffer.
constexpr size_t kMaxDeflateRatio = 1032;

// True when `in` starts with a zlib header (RFC 1950 section 2.2): method 8
// (deflate), window at most 32 KiB, header checksum right.
bool HasZlibHeader(std::string_view in) {
  if (in.size() < 2) return false;
  const auto cmf = static_cast<uint8_t>(in[0]);
  const auto flg = static_cast<uint8_t>(in[1]);
  return (cmf & 0x0F) == 8 && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0;
}

// A first guess of the output size, from the ISIZE trailer of the (last)
// gzip member when it is plausible.
size_t InitialSize(std::string_view in, Container container, size_t cap) {
  size_t guess = in.size() * 4;
  if (container == Container::kGzip && in.size() >= 18) {
    const auto* t = reinterpret_cast<const uint8_t*>(in.data() + in.size() - 4);
    const size_t isize = t[0] | (t[1] << 8) | (t[2] << 16) | (static_cast<size_t>(t[3]) << 24);
    if (isize / kMaxDeflateRatio <= in.size()) guess = isize + 1;  // +1: end seen without growing
  }
  return std::min(cap, std::max(guess, kMinBuffer));
}

Result<std::string> Inflate(std::string_view in, size_t max_output_bytes, Container container) {
  const std::string kind = container == Container::kGzip ? "gzip" : "deflate";
  if (in.empty()) return InvalidArgumentError("empty " + kind + " stream");

  z_stream zs{};
  const int window_bits = container == Container::kGzip   ? 15 + 16
                          : container == Container::kZlib ? 15
                                                          : -15;
  if (inflateInit2(&zs, window_bits) != Z_OK) {
    return ResourceExhaustedError("cannot set up " + kind + " decompression: out of memory");
  }
  struct Ender {
    z_stream* zs;
    ~Ender() { inflateEnd(zs); }
  } ender{&zs};

  // One byte of room past the limit tells "exactly the limit" from "more".
  const size_t cap = max_output_bytes == SIZE_MAX ? SIZE_MAX : max_output_bytes + 1;
  std::string out(InitialSize(in, container, cap), '\0');
  size_t produced = 0;
  const auto* next_in = reinterpret_cast<const Bytef*>(in.data());
  size_t left_in = in.size();
  auto too_big = [&] {
    return ResourceExhaustedError(kind + " stream decompresses to more than the limit of " +
                                  std::to_string(max_output_bytes) + " bytes");
  };
  auto truncated = [&] { return InvalidArgumentError("truncated " + kind + " stream"); };

  while (true) {
    if (produced == out.size()) {
      if (produced >= cap) return too_big();
      out.resize(std::min(cap, std::max(out.size() * 2, kMinBuffer)));
    }
    zs.next_in = const_cast<Bytef*>(next_in);
    zs.avail_in = static_cast<uInt>(std::min(left_in, kMaxSlice));
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(std::min(out.size() - produced, kMaxSlice));
    const uInt in_before = zs.avail_in;
    const uInt out_before = zs.avail_out;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    next_in += in_before - zs.avail_in;
    left_in -= in_before - zs.avail_in;
    produced += out_before - zs.avail_out;
    if (produced > max_output_bytes) return too_big();

    switch (rc) {
      case Z_STREAM_END:
        if (left_in == 0) {
          out.resize(produced);
          return out;
        }
        if (container != Container::kGzip) {
          return InvalidArgumentError("data after the end of the " + kind + " stream at byte " +
                                      std::to_string(in.size() - left_in));
        }
        inflateReset(&zs);  // the next gzip member
        continue;
      case Z_OK:
        // Room left for output and no input left: the stream stops short.
        if (left_in == 0 && zs.avail_out > 0) return truncated();
        continue;
      case Z_BUF_ERROR:
        // No progress possible: for want of output room (grow), or of input.
        if (zs.avail_out == 0) continue;
        return truncated();
      case Z_NEED_DICT: return InvalidArgumentError(kind + " stream needs a preset dictionary");
      case Z_MEM_ERROR: return ResourceExhaustedError(kind + " decompression: out of memory");
      default:
        return InvalidArgumentError("corrupt " + kind + " stream at byte " +
                                    std::to_string(in.size() - left_in) + ": " +
                                    (zs.msg != nullptr ? zs.msg : "invalid data"));
    }
  }
}

}  // namespace

Result<std::string> GzipDecompress(std::string_view in, size_t max_output_bytes) {
  return Inflate(in, max_output_bytes, Container::kGzip);
}

Result<std::string> ZlibDeflateDecompress(std::string_view in, size_t max_output_bytes) {
  return Inflate(in, max_output_bytes,
                 HasZlibHeader(in) ? Container::kZlib : Container::kRawDeflate);
}

std::string GzipCompress(std::string_view in, int level) {
  z_stream zs{};
  if (deflateInit2(&zs, std::clamp(level, 0, 9), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw std::bad_alloc();  // the only failure with valid parameters
  }
  struct Ender {
    z_stream* zs;
    ~Ender() { deflateEnd(zs); }
  } ender{&zs};

  std::string out(deflateBound(&zs, in.size()), '\0');
  size_t produced = 0;
  const auto* next_in = reinterpret_cast<const Bytef*>(in.data());
  size_t left_in = in.size();
  while (true) {
    if (produced == out.size()) out.resize(out.size() * 2 + 64);
    zs.next_in = const_cast<Bytef*>(next_in);
    zs.avail_in = static_cast<uInt>(std::min(left_in, kMaxSlice));
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(std::min(out.size() - produced, kMaxSlice));
    const uInt in_before = zs.avail_in;
    const uInt out_before = zs.avail_out;
    const int rc = deflate(&zs, left_in <= kMaxSlice ? Z_FINISH : Z_NO_FLUSH);
    next_in += in_before - zs.avail_in;
    left_in -= in_before - zs.avail_in;
    produced += out_before - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) std::abort();  // impossible: the stream is set up
  }
  out.resize(produced);
  return out;
}

}  // namespace telkit
