// Trace blocks: the files holding cut traces, one zstd frame per trace.
// Format byte by byte: docs/format/tracestore-block.md.
//
//   file  = magic "TKTRBLK1" (8 bytes) frame*
//   frame = u32le compressed_len | u32le crc32c(compressed) | u32le raw_len |
//           zstd(compressed_len bytes)
//   raw   = (u32le span_len | ResourceSpans bytes){n}
//
// The catalogue (trace_catalogue.h) records each trace's frame offset and
// length, so a trace is read with one pread and one decompression.
//
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/fs/file_system.h"
#include "common/tracestore/span_record.h"

namespace telkit {

inline constexpr std::string_view kTraceBlockMagic = "TKTRBLK1";
inline constexpr size_t kTraceFrameHeaderBytes = 12;
// A frame's raw payload may not exceed this (bounds a reader's memory).
inline constexpr uint32_t kMaxTraceFrameRawBytes = 256u << 20;

// "B00000042.tblk"
std::string TraceBlockFileName(uint64_t block);

// One frame (header included) holding `spans` (their otlp bytes).
std::string EncodeTraceFrame(std::span<const SpanRecord* const> spans, int zstd_level = 3);

// The span payloads (serialized ResourceSpans) of one frame. DATA_LOSS when
// the frame is short, fails its checksum or does not decompress.
Result<std::vector<std::string>> DecodeTraceFrame(std::string_view frame);

// Reads and decodes the frame at [offset, offset+length) of a block file.
Result<std::vector<std::string>> ReadTraceFrame(FileSystem* fs, const std::string& path, uint64_t offset,
                                                uint64_t length);

}  // namespace telkit
