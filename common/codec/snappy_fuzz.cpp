// libFuzzer target for the snappy decoder: any input either decompresses
// within the limit or is refused with INVALID_ARGUMENT or
// RESOURCE_EXHAUSTED; whatever is compressed decompresses back.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/codec/snappy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr size_t kLimit = 1 << 20;
  telkit::Result<std::string> out = telkit::SnappyDecompress(in, kLimit);
  if (out.ok()) {
    if (out->size() > kLimit) std::abort();
  } else if (out.status().code() != telkit::StatusCode::kInvalidArgument &&
             out.status().code() != telkit::StatusCode::kResourceExhausted) {
    std::abort();
  }
  telkit::Result<std::string> back = telkit::SnappyDecompress(telkit::SnappyCompress(in), size);
  if (!back.ok() || *back != in) std::abort();
  return 0;
}
