#include "common/tsdb/chunk.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace telkit {
namespace {

constexpr double kPow10[kMaxDecimalDigits + 1] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                                  1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
constexpr double kTwo53 = 9007199254740992.0;
constexpr uint64_t kRiceSumMax = uint64_t{1} << 56;

uint64_t Bits(double v) { return std::bit_cast<uint64_t>(v); }
uint64_t ZigZag(int64_t x) { return (static_cast<uint64_t>(x) << 1) ^ static_cast<uint64_t>(x >> 63); }
int64_t UnZigZag(uint64_t z) { return static_cast<int64_t>((z >> 1) ^ (0 - (z & 1))); }
int BitLength(uint64_t x) { return 64 - std::countl_zero(x); }
uint64_t Magnitude(int64_t x) { return x < 0 ? 0 - static_cast<uint64_t>(x) : static_cast<uint64_t>(x); }
// Two's-complement wrapping arithmetic: encoder and decoder agree whatever
// the inputs, so any int64 sequence round-trips.
int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
int64_t WrapSub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

// ---- variable-length fields inside columns

// 7 bits n = bit length of x (0..64), then the n bits of x.
void WriteVarBits(BitWriter& w, uint64_t x) {
  int n = BitLength(x);
  w.Write(static_cast<uint64_t>(n), 7);
  w.Write(x, n);
}
bool ReadVarBits(BitReader& r, uint64_t* x) {
  int n = static_cast<int>(r.Read(7));
  if (n > 64) return false;
  *x = r.Read(n);
  return !r.overrun();
}

// Rice code with parameter k from the adaptive state; quotients of
// kRiceEscapeOnes or more are sent as kRiceEscapeOnes one-bits and VarBits.
// Returns whether the value was escaped.
__attribute__((always_inline)) inline bool WriteRice(BitWriter& w, RiceState& state, uint64_t z) {
  int k = state.Parameter();
  uint64_t q = z >> k;
  bool escaped = q >= static_cast<uint64_t>(kRiceEscapeOnes);
  if (!escaped) {
    int n = static_cast<int>(q) + 1 + k;  // q ones, a zero, k bits
    if (n <= 64) {
      uint64_t low = k == 0 ? 0 : z & (~uint64_t{0} >> (64 - k));
      w.Write(((((uint64_t{1} << q) - 1) << 1) << k) | low, n);
    } else {
      w.WriteOnes(static_cast<int>(q));
      w.WriteBit(false);
      w.Write(z, k);
    }
  } else {
    w.WriteOnes(kRiceEscapeOnes);
    WriteVarBits(w, z);
  }
  state.Update(z);
  return escaped;
}
__attribute__((always_inline)) inline bool ReadRice(BitReader& r, RiceState& state, uint64_t* z, bool* escaped) {
  int k = state.Parameter();
  *escaped = !r.ReadRiceCode(k, kRiceEscapeOnes, z);
  if (*escaped && !ReadVarBits(r, z)) return false;
  if (r.overrun()) return false;
  state.Update(*z);
  return true;
}

// ---- predictors, shared by encoder and decoder

// kDelta timestamps: the next interval is predicted as the moving average
// (weight 1/16, kept x16) of the earlier ones; an interval far off the
// prediction (error above 1/16 of it: a missed scrape, a new interval)
// restarts the average at that interval.
int64_t PredictInterval(uint64_t average) {
  constexpr int kShift = kTimestampAverageShift;
  return static_cast<int64_t>(average + (uint64_t{1} << (kShift - 1))) >> kShift;
}
void UpdateIntervalAverage(uint64_t* average, int64_t interval, int64_t predicted, int64_t error) {
  constexpr int kShift = kTimestampAverageShift;
  if (Magnitude(error) > (Magnitude(predicted) >> 4)) {
    *average = static_cast<uint64_t>(interval) << kShift;
  } else {
    *average =
        *average + static_cast<uint64_t>(interval) - static_cast<uint64_t>(static_cast<int64_t>(*average) >> kShift);
  }
}

// kDecimal values: the next delta is predicted as the moving average (weight
// 1/4, kept x4) of the earlier deltas; escaped errors (outliers such as a
// counter reset) do not move the average.
int64_t PredictDelta(uint64_t average) {
  constexpr int kShift = kValueAverageShift;
  return static_cast<int64_t>(average + (uint64_t{1} << (kShift - 1))) >> kShift;
}
void UpdateDeltaAverage(uint64_t* average, int64_t delta, bool first, bool escaped) {
  constexpr int kShift = kValueAverageShift;
  if (first) {
    *average = static_cast<uint64_t>(delta) << kShift;
  } else if (!escaped) {
    *average =
        *average + static_cast<uint64_t>(delta) - static_cast<uint64_t>(static_cast<int64_t>(*average) >> kShift);
  }
}

int ShiftOf(int64_t m) {
  return m == 0 ? kMaxBinaryShift : std::min(std::countr_zero(static_cast<uint64_t>(m)), kMaxBinaryShift);
}

void PutUvarint(std::string* out, uint64_t x) {
  while (x >= 0x80) {
    out->push_back(static_cast<char>(x | 0x80));
    x >>= 7;
  }
  out->push_back(static_cast<char>(x));
}
size_t UvarintLength(uint64_t x) {
  size_t n = 1;
  while (x >= 0x80) {
    x >>= 7;
    ++n;
  }
  return n;
}
// At most `max_bytes` bytes; false when truncated or longer.
bool GetUvarint(std::string_view* in, int max_bytes, uint64_t* x) {
  uint64_t v = 0;
  for (int i = 0; i < max_bytes && i < static_cast<int>(in->size()); ++i) {
    auto b = static_cast<uint8_t>((*in)[static_cast<size_t>(i)]);
    v |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
    if ((b & 0x80) == 0) {
      in->remove_prefix(static_cast<size_t>(i) + 1);
      *x = v;
      return true;
    }
  }
  return false;
}

struct Encodings {
  TimestampEncoding ts = TimestampEncoding::kRegular;
  ValueEncoding values = ValueEncoding::kConstant;
  int d = 0;
  int s = 0;
};

// The decimal digits d (the most any sample needs) and binary shift s (the
// fewest trailing zero bits of any m) that hold every sample; false when
// some sample is not a decimal.
bool DecimalParameters(std::span<const Sample> samples, int* d, int* s) {
  int digits = 0;
  for (const Sample& x : samples) {
    int md = MinDecimalDigits(x.v);
    if (md < 0) return false;
    digits = std::max(digits, md);
  }
  int shift = kMaxBinaryShift;
  for (const Sample& x : samples) {
    int64_t m;
    if (!DecimalFit(x.v, digits, &m)) return false;  // possible only near 2^53
    shift = std::min(shift, ShiftOf(m));
  }
  *d = digits;
  *s = shift;
  return true;
}

// The encodings ChunkAppender ends up with for `samples`: the most
// specific ones that hold all of them.
Encodings Choose(std::span<const Sample> samples) {
  Encodings e;
  size_t n = samples.size();
  if (n > 2) {
    int64_t interval = WrapSub(samples[1].t, samples[0].t);
    for (size_t i = 2; i < n; ++i) {
      if (WrapSub(samples[i].t, samples[i - 1].t) != interval) {
        e.ts = TimestampEncoding::kDelta;
        break;
      }
    }
  }
  bool constant = true;
  for (size_t i = 1; i < n && constant; ++i) constant = Bits(samples[i].v) == Bits(samples[0].v);
  if (constant) return e;
  e.values = DecimalParameters(samples, &e.d, &e.s) ? ValueEncoding::kDecimal : ValueEncoding::kXor;
  return e;
}

}  // namespace

std::string_view TimestampEncodingName(TimestampEncoding e) {
  switch (e) {
    case TimestampEncoding::kRegular:
      return "regular";
    case TimestampEncoding::kDelta:
      return "delta";
  }
  return "unknown";
}

std::string_view ValueEncodingName(ValueEncoding e) {
  switch (e) {
    case ValueEncoding::kConstant:
      return "constant";
    case ValueEncoding::kDecimal:
      return "decimal";
    case ValueEncoding::kXor:
      return "xor";
  }
  return "unknown";
}

void RiceState::Update(uint64_t z) {
  sum = z >= kRiceSumMax - sum ? kRiceSumMax : sum + z;
  if (++count == 16) {
    sum = (sum + 1) >> 1;
    count = 8;
  }
}

bool DecimalFit(double v, int d, int64_t* m) {
  double x = v * kPow10[d];
  double ax = std::fabs(x);
  if (!(ax < kTwo53)) return false;  // also NaN and infinities
  // Below 2^51 the product is within 1/2 of m: round to nearest (adding and
  // subtracting 1.5 * 2^52 does that without a libm call). Above, the
  // product may be off by up to 2: look at the neighbours.
  int64_t lo, hi;
  if (ax < 2251799813685248.0) {
    lo = hi = static_cast<int64_t>((x + 6755399441055744.0) - 6755399441055744.0);
  } else {
    lo = static_cast<int64_t>(x) - 2;
    hi = lo + 4;
  }
  for (int64_t c = lo; c <= hi; ++c) {
    if (c <= -static_cast<int64_t>(kTwo53) || c >= static_cast<int64_t>(kTwo53)) continue;
    double back = d == 0 ? static_cast<double>(c) : static_cast<double>(c) / kPow10[d];
    if (Bits(back) == Bits(v)) {
      *m = c;
      return true;
    }
  }
  return false;
}

int MinDecimalDigits(double v) {
  int64_t m;
  for (int d = 0; d <= kMaxDecimalDigits; ++d) {
    if (DecimalFit(v, d, &m)) return d;
  }
  return -1;
}

// ---- ChunkAppender

ChunkAppender::ChunkAppender() = default;

void ChunkAppender::Reset() {
  ts_.Clear();
  val_.Clear();
  n_ = 0;
  ts_enc_ = TimestampEncoding::kRegular;
  val_enc_ = ValueEncoding::kConstant;
  ts_rice_ = RiceState();
  val_rice_ = RiceState();
  xor_leading_ = 0xff;
  xor_trailing_ = 0;
  d_ = 0;
  s_ = 0;
}

bool ChunkAppender::EncodeTimestamp(int64_t t) {
  if (n_ == 0) {
    t0_ = t;
    WriteVarBits(ts_, ZigZag(t));
  } else if (n_ == 1) {
    interval_ = WrapSub(t, t0_);
    WriteVarBits(ts_, ZigZag(interval_));
    ts_average_ = static_cast<uint64_t>(interval_) << kTimestampAverageShift;
  } else if (ts_enc_ == TimestampEncoding::kRegular) {
    if (t != WrapAdd(t_prev_, interval_)) return false;
  } else {
    int64_t interval = WrapSub(t, t_prev_);
    int64_t predicted = PredictInterval(ts_average_);
    int64_t error = WrapSub(interval, predicted);
    WriteRice(ts_, ts_rice_, ZigZag(error));
    UpdateIntervalAverage(&ts_average_, interval, predicted, error);
  }
  t_prev_ = t;
  return true;
}

bool ChunkAppender::EncodeValue(double v) {
  uint64_t bits = Bits(v);
  switch (val_enc_) {
    case ValueEncoding::kConstant:
      if (n_ == 0) {
        v0_bits_ = bits;
        val_.Write(bits, 64);
        return true;
      }
      return bits == v0_bits_;
    case ValueEncoding::kDecimal: {
      int64_t m;
      if (!DecimalFit(v, d_, &m)) return false;
      if (s_ > 0 && (static_cast<uint64_t>(m) & ((uint64_t{1} << s_) - 1)) != 0) return false;
      int64_t q = m >> s_;  // exact: m is a multiple of 2^s
      if (n_ == 0) {
        v0_bits_ = bits;
        val_.Write(static_cast<uint64_t>(d_), 4);
        val_.Write(static_cast<uint64_t>(s_), 6);
        WriteVarBits(val_, ZigZag(q));
      } else {
        int64_t delta = q - q_prev_;  // |q| < 2^53: no overflow
        int64_t predicted = n_ == 1 ? 0 : PredictDelta(val_average_);
        bool escaped = WriteRice(val_, val_rice_, ZigZag(WrapSub(delta, predicted)));
        UpdateDeltaAverage(&val_average_, delta, n_ == 1, escaped);
      }
      q_prev_ = q;
      return true;
    }
    case ValueEncoding::kXor:
      if (n_ == 0) {
        v0_bits_ = bits;
        val_.Write(bits, 64);
      } else {
        uint64_t x = bits ^ v_prev_bits_;
        if (x == 0) {
          val_.WriteBit(false);
        } else {
          val_.WriteBit(true);
          int leading = std::min(std::countl_zero(x), 31);
          int trailing = std::countr_zero(x);
          if (xor_leading_ != 0xff && leading >= xor_leading_ && trailing >= xor_trailing_) {
            val_.WriteBit(false);
            val_.Write(x >> xor_trailing_, 64 - xor_leading_ - xor_trailing_);
          } else {
            xor_leading_ = leading;
            xor_trailing_ = trailing;
            int significant = 64 - leading - trailing;
            val_.WriteBit(true);
            val_.Write(static_cast<uint64_t>(leading), 5);
            val_.Write(static_cast<uint64_t>(significant), 6);  // 64 is written as 0
            val_.Write(x >> trailing, significant);
          }
        }
      }
      v_prev_bits_ = bits;
      return true;
  }
  return false;
}

Status ChunkAppender::Append(int64_t t, double v) {
  if (n_ >= kMaxChunkSamples) {
    return ResourceExhaustedError("chunk is full: " + std::to_string(kMaxChunkSamples) + " samples");
  }
  // Fast path: the sample fits the current encodings. The timestamp check
  // comes first and writes nothing when it fails.
  bool ts_fits = !(ts_enc_ == TimestampEncoding::kRegular && n_ >= 2 && t != WrapAdd(t_prev_, interval_));
  if (ts_fits && EncodeValue(v)) {
    EncodeTimestamp(t);
    ++n_;
    return OkStatus();
  }
  // The common transitions are done in place, exactly as EncodeAll would
  // produce them: the first irregular interval turns kRegular into kDelta
  // (the first two timestamps are coded alike, every later interval was
  // the regular one), and the first changed value turns kConstant into
  // kDecimal or kXor (every value so far was the first one).
  if (!ts_fits) {
    int64_t t_last = t_prev_;
    ts_enc_ = TimestampEncoding::kDelta;
    ts_rice_ = RiceState();
    ts_average_ = static_cast<uint64_t>(interval_) << kTimestampAverageShift;
    uint32_t n = n_;
    t_prev_ = WrapAdd(t0_, interval_);
    for (n_ = 2; n_ < n; ++n_) EncodeTimestamp(WrapAdd(t_prev_, interval_));
    t_prev_ = t_last;
    if (EncodeValue(v)) {
      EncodeTimestamp(t);
      ++n_;
      return OkStatus();
    }
  }
  if (val_enc_ == ValueEncoding::kConstant) {
    Sample pair[2] = {{t0_, std::bit_cast<double>(v0_bits_)}, {t, v}};
    int d = 0, s = 0;
    bool decimal = DecimalParameters(pair, &d, &s);
    ReencodeConstantValues(decimal ? ValueEncoding::kDecimal : ValueEncoding::kXor, d, s);
    [[maybe_unused]] bool fits = EncodeValue(v);
    EncodeTimestamp(t);
    ++n_;
    return OkStatus();
  }
  // Rare: new decimal parameters, or the fall back to XOR.
  std::vector<Sample> samples = DecodeAll();
  samples.push_back({t, v});
  Encodings e = Choose(samples);
  EncodeAll(samples, e.ts, e.values, e.d, e.s);
  return OkStatus();
}

void ChunkAppender::ReencodeConstantValues(ValueEncoding values, int d, int s) {
  double v0 = std::bit_cast<double>(v0_bits_);
  uint32_t n = n_;
  val_.Clear();
  val_rice_ = RiceState();
  val_enc_ = values;
  d_ = d;
  s_ = s;
  xor_leading_ = 0xff;
  xor_trailing_ = 0;
  for (n_ = 0; n_ < n; ++n_) [[maybe_unused]] bool fits = EncodeValue(v0);
}

void ChunkAppender::EncodeAll(std::span<const Sample> samples, TimestampEncoding ts, ValueEncoding values, int d,
                              int s) {
  Reset();
  ts_enc_ = ts;
  val_enc_ = values;
  d_ = d;
  s_ = s;
  for (const Sample& x : samples) {
    [[maybe_unused]] bool fits = EncodeValue(x.v);  // the caller checked that every sample fits
    EncodeTimestamp(x.t);
    ++n_;
  }
}

std::vector<Sample> ChunkAppender::DecodeAll() const {
  auto decoded = DecodeChunk(Bytes());
  return decoded.ok() ? std::move(decoded).value() : std::vector<Sample>{};  // always ok: we wrote it
}

size_t ChunkAppender::size_bytes() const {
  size_t ts = ts_.byte_size();
  return 1 + UvarintLength(n_) + UvarintLength(ts) + ts + val_.byte_size();
}

void ChunkAppender::AppendTo(std::string* out) const {
  out->reserve(out->size() + size_bytes());
  out->push_back(static_cast<char>((static_cast<uint8_t>(ts_enc_) << 4) | static_cast<uint8_t>(val_enc_)));
  PutUvarint(out, n_);
  PutUvarint(out, ts_.byte_size());
  ts_.AppendTo(out);
  val_.AppendTo(out);
}

std::string ChunkAppender::Bytes() const {
  std::string out;
  AppendTo(&out);
  return out;
}

ChunkInfo ChunkAppender::info() const {
  ChunkInfo i;
  i.timestamps = ts_enc_;
  i.values = val_enc_;
  i.num_samples = n_;
  if (val_enc_ == ValueEncoding::kDecimal) {
    i.decimal_digits = d_;
    i.binary_shift = s_;
  }
  return i;
}

Result<ChunkAppender> ChunkAppender::FromChunk(std::string_view chunk) {
  TELKIT_ASSIGN_OR_RETURN(auto samples, DecodeChunk(chunk));
  ChunkAppender a;
  for (const Sample& s : samples) TELKIT_RETURN_IF_ERROR(a.Append(s.t, s.v));
  return a;
}

// ---- ChunkIterator

Result<ChunkIterator> ChunkIterator::Open(std::string_view chunk) {
  auto corrupt = [](std::string_view what) { return DataLossError("corrupt chunk: " + std::string(what)); };
  if (chunk.empty()) return corrupt("empty");
  auto encoding = static_cast<uint8_t>(chunk[0]);
  chunk.remove_prefix(1);
  ChunkIterator it;
  uint8_t ts = encoding >> 4;
  uint8_t values = encoding & 0x0F;
  if (ts < 1 || ts > 2 || values < 1 || values > 3) {
    static const char* kHex = "0123456789abcdef";
    return UnimplementedError(std::string("unknown chunk encoding 0x") + kHex[encoding >> 4] + kHex[encoding & 15]);
  }
  it.info_.timestamps = static_cast<TimestampEncoding>(ts);
  it.info_.values = static_cast<ValueEncoding>(values);
  uint64_t n, ts_length;
  if (!GetUvarint(&chunk, 3, &n)) return corrupt("truncated header");
  if (n > kMaxChunkSamples) return corrupt("sample count " + std::to_string(n) + " over the limit");
  if (!GetUvarint(&chunk, 5, &ts_length)) return corrupt("truncated header");
  if (ts_length > chunk.size()) {
    return corrupt("timestamp column of " + std::to_string(ts_length) + " bytes, only " + std::to_string(chunk.size()) +
                   " left");
  }
  it.info_.num_samples = static_cast<uint32_t>(n);
  auto bytes = [](std::string_view s) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  it.ts_ = BitReader(bytes(chunk.substr(0, ts_length)));
  it.val_ = BitReader(bytes(chunk.substr(ts_length)));
  if (n == 0) {
    if (!chunk.empty()) return corrupt("bytes in a chunk of no samples");
    return it;
  }
  if (it.info_.values == ValueEncoding::kDecimal) {
    it.info_.decimal_digits = static_cast<int>(it.val_.Read(4));
    it.info_.binary_shift = static_cast<int>(it.val_.Read(6));
    if (it.val_.overrun()) return corrupt("truncated value column");
    it.scale_ = kPow10[it.info_.decimal_digits];
  }
  return it;
}

bool ChunkIterator::Fail(std::string what) {
  status_ = DataLossError("corrupt chunk: " + what + " at sample " + std::to_string(i_) + " of " +
                          std::to_string(info_.num_samples));
  i_ = info_.num_samples;
  return false;
}

bool ChunkIterator::Next() {
  if (i_ >= info_.num_samples) return false;
  // timestamp
  if (i_ == 0) {
    uint64_t z;
    if (!ReadVarBits(ts_, &z)) return Fail("bad first timestamp");
    t_ = UnZigZag(z);
  } else if (i_ == 1) {
    uint64_t z;
    if (!ReadVarBits(ts_, &z)) return Fail("bad first interval");
    interval_ = UnZigZag(z);
    t_ = WrapAdd(t_, interval_);
    ts_average_ = static_cast<uint64_t>(interval_) << kTimestampAverageShift;
  } else if (info_.timestamps == TimestampEncoding::kRegular) {
    t_ = WrapAdd(t_, interval_);
  } else {
    uint64_t z;
    bool escaped;
    if (!ReadRice(ts_, ts_rice_, &z, &escaped)) return Fail("truncated timestamp column");
    int64_t predicted = PredictInterval(ts_average_);
    int64_t error = UnZigZag(z);
    int64_t interval = WrapAdd(predicted, error);
    t_ = WrapAdd(t_, interval);
    UpdateIntervalAverage(&ts_average_, interval, predicted, error);
  }
  // value
  switch (info_.values) {
    case ValueEncoding::kConstant:
      if (i_ == 0) v_bits_ = val_.Read(64);
      break;
    case ValueEncoding::kDecimal: {
      if (i_ == 0) {
        uint64_t z;
        if (!ReadVarBits(val_, &z)) return Fail("bad first value");
        q_ = UnZigZag(z);
      } else {
        uint64_t z;
        bool escaped;
        if (!ReadRice(val_, val_rice_, &z, &escaped)) return Fail("truncated value column");
        int64_t predicted = i_ == 1 ? 0 : PredictDelta(val_average_);
        int64_t delta = WrapAdd(predicted, UnZigZag(z));
        q_ = WrapAdd(q_, delta);
        UpdateDeltaAverage(&val_average_, delta, i_ == 1, escaped);
      }
      auto m = static_cast<int64_t>(static_cast<uint64_t>(q_) << info_.binary_shift);
      if ((m >> info_.binary_shift) != q_ || Magnitude(m) >= (uint64_t{1} << 53)) {
        return Fail("decimal value out of range");
      }
      double v = static_cast<double>(m);
      if (info_.decimal_digits > 0) v /= scale_;
      v_bits_ = Bits(v);
      break;
    }
    case ValueEncoding::kXor:
      if (i_ == 0) {
        v_bits_ = val_.Read(64);
      } else if (val_.ReadBit()) {
        if (val_.ReadBit()) {
          xor_leading_ = static_cast<int>(val_.Read(5));
          int significant = static_cast<int>(val_.Read(6));
          if (significant == 0) significant = 64;
          if (xor_leading_ + significant > 64) return Fail("bad xor window");
          xor_trailing_ = 64 - xor_leading_ - significant;
        }
        v_bits_ ^= val_.Read(64 - xor_leading_ - xor_trailing_) << xor_trailing_;
      }
      break;
  }
  if (ts_.overrun()) return Fail("truncated timestamp column");
  if (val_.overrun()) return Fail("truncated value column");
  v_ = std::bit_cast<double>(v_bits_);
  if (++i_ == info_.num_samples) {
    if (!ts_.AtZeroPadding()) {
      i_ = info_.num_samples - 1;
      return Fail("bits after the timestamp column's last sample");
    }
    if (!val_.AtZeroPadding()) {
      i_ = info_.num_samples - 1;
      return Fail("bits after the value column's last sample");
    }
  }
  return true;
}

Result<std::vector<Sample>> DecodeChunk(std::string_view chunk) {
  TELKIT_ASSIGN_OR_RETURN(ChunkIterator it, ChunkIterator::Open(chunk));
  std::vector<Sample> out;
  out.reserve(it.info().num_samples);
  while (it.Next()) out.push_back({it.t(), it.v()});
  if (!it.status().ok()) return it.status();
  return out;
}

Result<ChunkInfo> ReadChunkInfo(std::string_view chunk) {
  TELKIT_ASSIGN_OR_RETURN(ChunkIterator it, ChunkIterator::Open(chunk));
  return it.info();
}

Result<std::string> EncodeChunk(std::span<const Sample> samples, ChunkChoice choice) {
  if (samples.size() > kMaxChunkSamples) {
    return InvalidArgumentError("chunk of " + std::to_string(samples.size()) + " samples is over the limit of " +
                                std::to_string(kMaxChunkSamples));
  }
  ChunkAppender a;
  for (const Sample& s : samples) TELKIT_RETURN_IF_ERROR(a.Append(s.t, s.v));
  std::string best = a.Bytes();
  if (choice == ChunkChoice::kSmallest && a.info().values == ValueEncoding::kDecimal) {
    // XOR can beat decimal on values with many digits that barely repeat.
    TELKIT_ASSIGN_OR_RETURN(std::string xor_chunk, EncodeChunkWith(samples, a.info().timestamps, ValueEncoding::kXor));
    if (xor_chunk.size() < best.size()) best = std::move(xor_chunk);
  }
  return best;
}

Result<std::string> EncodeChunkWith(std::span<const Sample> samples, TimestampEncoding ts, ValueEncoding values) {
  if (samples.size() > kMaxChunkSamples) {
    return InvalidArgumentError("chunk of " + std::to_string(samples.size()) + " samples is over the limit of " +
                                std::to_string(kMaxChunkSamples));
  }
  Encodings fits = Choose(samples);
  int d = 0, s = 0;
  switch (ts) {
    case TimestampEncoding::kRegular:
      if (fits.ts != TimestampEncoding::kRegular) return InvalidArgumentError("timestamps are not regular");
      break;
    case TimestampEncoding::kDelta:
      break;
    default:
      return InvalidArgumentError("unknown timestamp encoding");
  }
  switch (values) {
    case ValueEncoding::kConstant:
      if (fits.values != ValueEncoding::kConstant) return InvalidArgumentError("values are not constant");
      break;
    case ValueEncoding::kDecimal:
      if (!DecimalParameters(samples, &d, &s)) return InvalidArgumentError("values are not decimals");
      break;
    case ValueEncoding::kXor:
      break;
    default:
      return InvalidArgumentError("unknown value encoding");
  }
  ChunkAppender a;
  a.EncodeAll(samples, ts, values, d, s);
  return a.Bytes();
}

}  // namespace telkit
