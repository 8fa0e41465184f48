#include "common/codec/snappy.h"

#include <snappy.h>

namespace telkit {

Result<size_t> SnappyUncompressedLength(std::string_view in) {
  if (in.empty()) return InvalidArgumentError("empty snappy block");
  size_t length = 0;
  if (!snappy::GetUncompressedLength(in.data(), in.size(), &length)) {
    return InvalidArgumentError("snappy block has a malformed length header");
  }
  return length;
}

Result<std::string> SnappyDecompress(std::string_view in, size_t max_output_bytes) {
  TELKIT_ASSIGN_OR_RETURN(size_t length, SnappyUncompressedLength(in));
  if (length > max_output_bytes) {
    return ResourceExhaustedError("snappy block declares " + std::to_string(length) +
                                  " uncompressed bytes, more than the limit of " + std::to_string(max_output_bytes));
  }
  std::string out(length, '\0');
  // RawUncompress checks every element against the declared length and the
  // input bounds; it fails rather than reading or writing out of bounds.
  if (!snappy::RawUncompress(in.data(), in.size(), out.data())) {
    return InvalidArgumentError("corrupt or truncated snappy block");
  }
  return out;
}

std::string SnappyCompress(std::string_view in) {
  std::string out;
  snappy::Compress(in.data(), in.size(), &out);
  return out;
}

}  // namespace telkit
