// Snappy block format (the "raw" format, not the framing format): what
// Prometheus remote write uses for Content-Encoding: snappy.
//
// A block starts with the uncompressed length as a varint (at most 2^32 - 1).
// SnappyDecompress reads that length first and refuses a block whose
// declared length is over the caller's limit before allocating anything, so
// a small body cannot make the decoder allocate much.
//
// Thread-safety: stateless; safe to call concurrently.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace telkit {

// Decompresses one snappy block.
// REQUIRES: nothing; any bytes may be passed.
// Returns the decompressed bytes, or
//   INVALID_ARGUMENT    empty input, a bad length varint, corrupt or
//                       truncated data, a length that does not match the data;
//   RESOURCE_EXHAUSTED  the declared uncompressed length is over
//                       max_output_bytes (nothing was allocated).
Result<std::string> SnappyDecompress(std::string_view in, size_t max_output_bytes);

// The uncompressed length a block declares (its leading varint), without
// decompressing. INVALID_ARGUMENT when the varint is missing or malformed.
Result<size_t> SnappyUncompressedLength(std::string_view in);

// Compresses `in` into one snappy block. Nothing fails but allocation
// (std::bad_alloc, as any std::string allocation).
std::string SnappyCompress(std::string_view in);

}  // namespace telkit
