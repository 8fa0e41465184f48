// libFuzzer target for chunk decoding and encoding.
//  * Any bytes as a chunk: decoding must end (bounded by kMaxChunkSamples)
//    without a crash; whatever decodes must re-encode and decode to the same
//    samples, bit for bit.
//  * The same bytes as samples (16 bytes each: int64 t, double bits): every
//    encoding that accepts them must round-trip bit for bit, and the
//    appender must equal EncodeChunk(kAppender).
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "common/tsdb/chunk.h"

namespace {

using telkit::Sample;

void Check(bool ok) {
  if (!ok) std::abort();
}

bool SameBits(const std::vector<Sample>& a, const std::vector<Sample>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].t != b[i].t || std::bit_cast<uint64_t>(a[i].v) != std::bit_cast<uint64_t>(b[i].v)) return false;
  }
  return true;
}

void RoundTrip(const std::vector<Sample>& samples) {
  auto smallest = telkit::EncodeChunk(samples, telkit::ChunkChoice::kSmallest);
  Check(smallest.ok());
  auto back = telkit::DecodeChunk(*smallest);
  Check(back.ok() && SameBits(*back, samples));
  telkit::ChunkAppender a;
  for (const Sample& s : samples) Check(a.Append(s.t, s.v).ok());
  auto same = telkit::EncodeChunk(samples, telkit::ChunkChoice::kAppender);
  Check(same.ok() && *same == a.Bytes());
  for (auto ts : {telkit::TimestampEncoding::kRegular, telkit::TimestampEncoding::kDelta}) {
    for (auto vs : {telkit::ValueEncoding::kConstant, telkit::ValueEncoding::kDecimal, telkit::ValueEncoding::kXor}) {
      auto forced = telkit::EncodeChunkWith(samples, ts, vs);
      if (!forced.ok()) continue;
      auto got = telkit::DecodeChunk(*forced);
      Check(got.ok() && SameBits(*got, samples));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto decoded = telkit::DecodeChunk(bytes);
  if (decoded.ok()) RoundTrip(*decoded);

  std::vector<Sample> samples;
  for (size_t i = 0; i + 16 <= size && samples.size() < 600; i += 16) {
    Sample s;
    uint64_t v;
    std::memcpy(&s.t, data + i, 8);
    std::memcpy(&v, data + i + 8, 8);
    s.v = std::bit_cast<double>(v);
    samples.push_back(s);
  }
  RoundTrip(samples);
  return 0;
}
