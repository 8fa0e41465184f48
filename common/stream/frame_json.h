// The JSON-lines form of a telemetry stream (`tel-cat --format json`, and
// back): one JSON object a line, for humans, jq and curl-style request
// bodies. The binary form is docs/format/stream.md (common/stream/format.h).
//
//   {"stream":{"version":1,"writerId":"00112233aabbccdd"}}          a stream header
//   {"seq":"12","time":"1732486000123456789","signal":"traces","flags":0,
//    "payload":{...OTLP/JSON of the Export*ServiceRequest...}}        a frame
//
// Frames: seq and time are decimal strings (64-bit), signal is the name from
// common/otlp/signal.h or, for a value this build does not know, its number.
// The payload of traces / metrics / logs is its OTLP/JSON object
// (common/otlp/otlp_json.h), that of prom-rw the JSON form of its
// prometheus.WriteRequest (common/prom/remote_write_json.h); other signals,
// and payloads that do not parse,
// are written as "payloadBase64" (plus "payloadError": why, when it did not
// parse). The header's "flags" and the frame's "payloadError" only appear
// when there is something to say.
//
// Round trip: FrameToJsonLine -> ParseJsonLine -> EncodeFrame gives the same
// bytes whenever the payload is canonical protobuf (exactly what C++
// SerializeToString writes: field order, no explicitly written default
// values, no unknown fields), and always for base64 payloads. SDKs often
// write explicit defaults (the OpenTelemetry JS SDK writes every
// dropped_*_count = 0), so FrameJsonOptions::exact adds the original bytes
// as "payloadBase64" next to "payload" whenever they are not canonical;
// ParseJsonLine then restores them, unless "payload" was edited.
// Thread-safe: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "common/base/status.h"
#include "common/stream/format.h"

namespace telkit {

using JsonLine = std::variant<StreamHeader, Frame>;

// One line without its trailing newline.
std::string StreamHeaderToJsonLine(const StreamHeader& header);
struct FrameJsonOptions {
  bool exact = false;  // keep non-canonical payload bytes (see above)
};

// One line without its trailing newline. Never fails (see above).
std::string FrameToJsonLine(const Frame& frame, const FrameJsonOptions& options = {});

// Parses one line (surrounding whitespace, such as a trailing "\n" or
// "\r\n", is fine). Accepts:
//  - a stream header line; "version" defaults to 1 and must be 1, "flags"
//    defaults to 0 and must be 0, "writerId" is 16 hex digits (default 0);
//  - a frame line; "seq", "time" (strings or numbers) and "flags" default to
//    0, "signal" is required, "payload" (an OTLP/JSON object for traces,
//    metrics and logs, a WriteRequest JSON object for prom-rw) and/or "payloadBase64" (both: the exact form above);
//    neither means an empty payload; other keys ("payloadError", ...) are ignored;
//  - a bare OTLP/JSON request: an object with "resourceSpans",
//    "resourceMetrics" or "resourceLogs" (or resource_spans, ...), which
//    becomes a frame of that signal with sequence 0 and time 0.
// The payload of a frame is serialized protobuf, canonical (C++
// SerializeToString) when it came from "payload".
// INVALID_ARGUMENT with a clear message for anything else; RESOURCE_EXHAUSTED
// when memory runs out.
Result<JsonLine> ParseJsonLine(std::string_view line);

}  // namespace telkit
