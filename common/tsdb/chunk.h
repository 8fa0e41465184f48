// Chunks: the compressed form of a run of (timestamp, value) samples of one
// series. The format is docs/format/tsdb-chunks.md; change both together.
//
//   chunk = encoding:u8 | count:uvarint | ts_length:uvarint | ts column | value column
//
// A chunk holds a timestamp column and a value column, each with its own
// encoding (the high and low nibble of the first byte), packed MSB-first
// and zero-padded to a byte:
//   timestamps  kRegular   t0 and one interval: no bits per sample
//               kDelta     each interval predicted from a moving average of
//                          the earlier ones, the error Rice-coded (~5 bits a
//                          sample at 15 s +- 5 ms jitter, 1 bit when regular)
//   values      kConstant  one 64-bit value: no bits per sample
//               kDecimal   values that are exactly m / 10^d (m an integer
//                          below 2^53, d <= 15, m a multiple of 2^s): the
//                          integers q = m >> s, each delta predicted from a
//                          moving average of the earlier deltas, the error
//                          Rice-coded. Integer counters and gauges, and the
//                          decimals that text formats produce ("0.25").
//               kXor       Gorilla XOR of the IEEE-754 bits (Prometheus'
//                          value coding, bit for bit): everything else.
// Values are bit-exact in every encoding: NaN payloads, -0.0, +-Inf and
// Prometheus' stale marker (0x7ff0000000000002) come back as they went in.
// Any int64 timestamps are accepted (negative, equal, decreasing); the
// encodings are smallest for increasing, regularly spaced ones.
//
// The columns are separate so that a block can later store one timestamp
// column for all series scraped together. A chunk carries no checksum: the
// container (WAL record, block chunk file) checksums it. Decoding is strict
// and bounded: a truncated or altered chunk gives DATA_LOSS, never a crash
// or an unbounded loop.
//
// How many samples go into a chunk is the caller's policy (the head cuts
// chunks); the format allows kMaxChunkSamples. See bench/tsdb/chunk_bench.
//
// Thread-compatible: an appender or iterator is used by one thread at a
// time; distinct objects are independent.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/model/series.h"
#include "common/tsdb/bit_stream.h"

namespace telkit {

// ---- format constants (docs/format/tsdb-chunks.md)
enum class TimestampEncoding : uint8_t { kRegular = 1, kDelta = 2 };
enum class ValueEncoding : uint8_t { kConstant = 1, kDecimal = 2, kXor = 3 };
inline constexpr uint32_t kMaxChunkSamples = 65535;
inline constexpr int kMaxDecimalDigits = 15;      // d: 4 bits
inline constexpr int kMaxBinaryShift = 63;        // s: 6 bits
inline constexpr int kRiceEscapeOnes = 16;        // a quotient of 16+ is sent as an escape
inline constexpr int kTimestampAverageShift = 4;  // moving average weight 1/16
inline constexpr int kValueAverageShift = 2;      // moving average weight 1/4

std::string_view TimestampEncodingName(TimestampEncoding e);
std::string_view ValueEncodingName(ValueEncoding e);


// What a chunk's header says.
struct ChunkInfo {
  TimestampEncoding timestamps = TimestampEncoding::kRegular;
  ValueEncoding values = ValueEncoding::kConstant;
  uint32_t num_samples = 0;
  int decimal_digits = 0;  // d, for kDecimal
  int binary_shift = 0;    // s, for kDecimal
};

// Adaptive Rice coder state (docs/format/tsdb-chunks.md, "Rice codes"),
// shared by encoder and decoder so both adapt identically.
struct RiceState {
  uint64_t sum = 4;    // A: sum of recent coded values
  uint64_t count = 1;  // N: how many (halved with A every 8)
  // The smallest k with count * 2^k >= sum.
  int Parameter() const {
    int k = std::max(0, static_cast<int>(std::bit_width(sum)) - static_cast<int>(std::bit_width(count)));
    return (count << k) < sum ? k + 1 : k;
  }
  void Update(uint64_t z);
};

// Builds one chunk sample by sample. Each Append picks the smallest
// encoding that still holds every sample so far (regular/constant while
// they fit, then delta and decimal, then XOR); when a sample no longer fits,
// the samples so far are re-encoded (rare, and bounded: d only grows, s only
// shrinks). The chunk is readable at any time through Bytes().
class ChunkAppender {
 public:
  ChunkAppender();

  // Continues a chunk produced by Bytes() or EncodeChunk(). DATA_LOSS or
  // UNIMPLEMENTED as DecodeChunk.
  static Result<ChunkAppender> FromChunk(std::string_view chunk);

  // Appends one sample. RESOURCE_EXHAUSTED when the chunk already holds
  // kMaxChunkSamples samples.
  Status Append(int64_t t, double v);

  uint32_t num_samples() const { return n_; }
  // The size Bytes() would have now.
  size_t size_bytes() const;
  // The chunk as it is now; the appender can go on appending.
  std::string Bytes() const;
  void AppendTo(std::string* out) const;
  ChunkInfo info() const;
  // First and last timestamp. REQUIRES: num_samples() > 0.
  int64_t first_timestamp() const { return t0_; }
  int64_t last_timestamp() const { return t_prev_; }

 private:
  void Reset();
  // Encodes one sample with the current encodings; false when the value does
  // not fit the current decimal parameters (nothing is written then).
  bool EncodeTimestamp(int64_t t);
  bool EncodeValue(double v);
  // The value column re-encoded for n_ copies of the first value (all the
  // samples so far while the values were constant).
  void ReencodeConstantValues(ValueEncoding values, int d, int s);
  // Encodes `samples` from scratch with the given encodings.
  // REQUIRES: every sample fits them.
  void EncodeAll(std::span<const Sample> samples, TimestampEncoding ts, ValueEncoding values, int d, int s);
  std::vector<Sample> DecodeAll() const;
  friend Result<std::string> EncodeChunkWith(std::span<const Sample>, TimestampEncoding, ValueEncoding);

  BitWriter ts_;
  BitWriter val_;
  uint32_t n_ = 0;
  TimestampEncoding ts_enc_ = TimestampEncoding::kRegular;
  ValueEncoding val_enc_ = ValueEncoding::kConstant;
  // timestamp state
  int64_t t0_ = 0;
  int64_t t_prev_ = 0;
  int64_t interval_ = 0;     // kRegular: t1 - t0
  uint64_t ts_average_ = 0;  // kDelta: moving average of intervals, x16
  RiceState ts_rice_;
  // value state
  uint64_t v0_bits_ = 0;
  uint64_t v_prev_bits_ = 0;  // kXor
  int xor_leading_ = 0xff;    // kXor: window of the last written value
  int xor_trailing_ = 0;
  int d_ = 0;  // kDecimal
  int s_ = 0;
  int64_t q_prev_ = 0;
  uint64_t val_average_ = 0;  // moving average of deltas, x4
  RiceState val_rice_;
};

// Reads a chunk sample by sample. The chunk bytes must outlive the iterator.
class ChunkIterator {
 public:
  // Parses the header. DATA_LOSS when it is malformed (truncated, a column
  // length beyond the chunk, a count over kMaxChunkSamples), UNIMPLEMENTED
  // for an encoding this version does not know.
  static Result<ChunkIterator> Open(std::string_view chunk);
  // A temporary string would not outlive the iterator.
  static Result<ChunkIterator> Open(std::string&& chunk) = delete;

  // Advances to the next sample: false at the end or on an error, which
  // status() then holds (DATA_LOSS: truncated column, value out of range,
  // bytes or nonzero bits after the last sample).
  bool Next();
  int64_t t() const { return t_; }
  double v() const { return v_; }
  const Status& status() const { return status_; }
  const ChunkInfo& info() const { return info_; }

 private:
  ChunkIterator() = default;
  bool Fail(std::string what);

  ChunkInfo info_;
  BitReader ts_;
  BitReader val_;
  uint32_t i_ = 0;
  int64_t t_ = 0;
  double v_ = 0;
  Status status_;
  // decoder state, mirroring ChunkAppender's
  int64_t interval_ = 0;
  uint64_t ts_average_ = 0;
  RiceState ts_rice_;
  uint64_t v_bits_ = 0;
  int xor_leading_ = 0;
  int xor_trailing_ = 0;
  int64_t q_ = 0;
  uint64_t val_average_ = 0;
  RiceState val_rice_;
  double scale_ = 1;  // 10^d
};

// How EncodeChunk picks the value encoding.
enum class ChunkChoice {
  kAppender,  // exactly what ChunkAppender produces
  kSmallest,  // also tries XOR where the appender chose decimal; keeps the smaller
};

// Encodes `samples` as one chunk. INVALID_ARGUMENT when there are more than
// kMaxChunkSamples.
Result<std::string> EncodeChunk(std::span<const Sample> samples, ChunkChoice choice = ChunkChoice::kSmallest);
// Encodes `samples` with the given encodings (decimal parameters are the
// smallest that hold every value). INVALID_ARGUMENT when the samples do not
// fit them (kRegular for irregular timestamps, kConstant for changing
// values, kDecimal for non-decimals) or are too many. For tests and
// benchmarks; stores use ChunkAppender or EncodeChunk.
Result<std::string> EncodeChunkWith(std::span<const Sample> samples, TimestampEncoding ts, ValueEncoding values);
// Decodes a whole chunk: every sample, or the first error.
Result<std::vector<Sample>> DecodeChunk(std::string_view chunk);
// The header alone.
Result<ChunkInfo> ReadChunkInfo(std::string_view chunk);

// Whether v == m / 10^d exactly (bit for bit) for an integer |m| < 2^53;
// sets *m. Exposed for tests and benchmarks.
bool DecimalFit(double v, int d, int64_t* m);
// The smallest d <= kMaxDecimalDigits for which DecimalFit holds, or -1.
int MinDecimalDigits(double v);

}  // namespace telkit
