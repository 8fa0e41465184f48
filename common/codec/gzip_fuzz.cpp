// libFuzzer target for the gzip and deflate decoders: any input either
// decompresses within the limit or is refused with INVALID_ARGUMENT or
// RESOURCE_EXHAUSTED; whatever is compressed decompresses back.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/codec/gzip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr size_t kLimit = 1 << 20;
  for (auto* decompress : {&telkit::GzipDecompress, &telkit::ZlibDeflateDecompress}) {
    telkit::Result<std::string> out = decompress(in, kLimit);
    if (out.ok()) {
      if (out->size() > kLimit) std::abort();
    } else if (out.status().code() != telkit::StatusCode::kInvalidArgument &&
               out.status().code() != telkit::StatusCode::kResourceExhausted) {
      std::abort();
    }
  }
  const int level = size > 0 ? data[0] % 10 : 6;
  telkit::Result<std::string> back = telkit::GzipDecompress(telkit::GzipCompress(in, level), size);
  if (!back.ok() || *back != in) std::abort();
  return 0;
}
