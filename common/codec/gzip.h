// gzip and zlib (HTTP Content-Encoding: gzip / deflate) for request and
// response bodies, with a hard limit on the decompressed size.
//
// Decompression never holds more than about 1.5 x max_output_bytes of output
// (the buffer doubles up to max_output_bytes + 1) and stops as soon as the
// output would pass the limit, so a "gzip bomb" costs at most the time to
// inflate max_output_bytes.
//
// Thread-safety: stateless; safe to call concurrently.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace telkit {

// Decompresses a gzip stream (RFC 1952). Several gzip members one after the
// other (what `cat a.gz b.gz` makes) decompress to the concatenation of their
// contents; anything after the last member that is not a gzip member is an
// error.
// REQUIRES: nothing; any bytes may be passed.
// Returns the decompressed bytes, or
//   INVALID_ARGUMENT    empty, corrupt (bad header, bad data, bad CRC or size
//                       trailer) or truncated input, trailing garbage;
//   RESOURCE_EXHAUSTED  the output would exceed max_output_bytes, or zlib
//                       could not get memory.
Result<std::string> GzipDecompress(std::string_view in, size_t max_output_bytes);

// Decompresses HTTP "deflate": a zlib stream (RFC 1950), or a raw deflate
// stream (RFC 1951) as some clients send; told apart by the zlib header.
// REQUIRES: nothing; any bytes may be passed.
// Returns the decompressed bytes, or
//   INVALID_ARGUMENT    empty, corrupt or truncated input, bytes after the
//                       end of the stream, a stream that needs a preset
//                       dictionary;
//   RESOURCE_EXHAUSTED  as for GzipDecompress.
Result<std::string> ZlibDeflateDecompress(std::string_view in, size_t max_output_bytes);

// Compresses `in` into one gzip member. `level` is zlib's: 0 (store) to 9
// (smallest); values outside are clamped. Allocation failure throws
// std::bad_alloc, as any std::string allocation does; nothing else fails.
std::string GzipCompress(std::string_view in, int level = 6);

}  // namespace telkit
