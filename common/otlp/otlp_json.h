// OTLP/JSON: the "JSON Protobuf Encoding" of the OTLP specification
// (opentelemetry-proto docs/specification.md), to and from the binary
// Export*ServiceRequest the stream carries.
//
// It is the proto3 JSON mapping with OTLP's deviations:
//  - traceId, spanId, parentSpanId (in Span, Span.Link, LogRecord, Exemplar)
//    are hex strings: case-insensitive on input, lowercase on output, "" is
//    empty bytes. All other bytes (AnyValue.bytesValue) are base64.
//  - Output: lowerCamelCase keys, enums as integers, 64-bit integers as
//    decimal strings, non-finite doubles as "NaN" / "Infinity" / "-Infinity",
//    fields at their default value left out (except members of a oneof and
//    `optional` fields, which have presence), one line, no spaces.
//  - Input is lenient where the mapping allows it: lowerCamelCase or the
//    .proto (snake_case) names, enums as integers or names, integers as
//    numbers or strings, doubles as numbers or strings, base64 in the standard
//    or URL-safe alphabet with or without padding, null = absent. Unknown keys
//    are ignored (the specification requires it). A field given under both
//    of its names, or two members of one oneof, is an error (of a key
//    repeated verbatim, JSON parsing keeps the last).
//    Not kept: the sign of a zero written "-0" (JSON readers take it for the
//    integer 0); our output writes negative zero as -0.0, which is kept.
//
// Round trip: for a canonical payload (what C++ SerializeToString produces
// from a message without unknown fields), protobuf -> JSON -> protobuf gives
// the same bytes. Not preserved: unknown fields, and the bits of a NaN that is
// not the default quiet NaN (JSON has one "NaN").
//
// Hostile input: JSON nested deeper than kMaxJsonNesting is refused before
// parsing, a message nested deeper than kMaxMessageNesting (protobuf's own
// parse limit, so every request produced here can be parsed again) is
// refused, numbers that do not fit their field, invalid UTF-8 and bad
// escapes are INVALID_ARGUMENT. Nothing here throws.
//
// Thread-safe: pure functions.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/base/status.h"
#include "common/otlp/signal.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace telkit {

// Arrays plus objects open at any point of a JSON document.
inline constexpr int kMaxJsonNesting = 256;
// Messages nested below the request (protobuf's default recursion limit).
inline constexpr int kMaxMessageNesting = 100;

// The serialized Export*ServiceRequest of `signal` from its OTLP/JSON form.
// INVALID_ARGUMENT on bad JSON, a wrong type, a bad hex id or a number out of
// range, with where it is ("field 'resourceSpans[0].scopeSpans[0].spans[2].traceId':
// ..."); UNIMPLEMENTED for a signal that is not OTLP (prom-rw).
Result<std::string> OtlpJsonToProtobuf(Signal signal, std::string_view json);

// Compact one-line OTLP/JSON of a serialized Export*ServiceRequest.
// INVALID_ARGUMENT when the bytes do not parse as that request (the message
// says where); UNIMPLEMENTED for a signal that is not OTLP.
Result<std::string> ProtobufToOtlpJson(Signal signal, std::string_view bytes);

// ---- Lower-level pieces, for callers that hold a parsed document or a message.

// Parses `text` as one JSON document (surrounding whitespace allowed), after
// checking that it nests no deeper than `max_nesting`. INVALID_ARGUMENT for
// anything that is not valid JSON (including invalid UTF-8 and numbers that
// overflow a double), naming the byte offset or line and column;
// RESOURCE_EXHAUSTED when memory runs out.
Result<nlohmann::json> ParseJsonDocument(std::string_view text, int max_nesting = kMaxJsonNesting);

// Merges the OTLP/JSON object `value` into `message` (any OTLP message type;
// usually a fresh Export*ServiceRequest). Errors as OtlpJsonToProtobuf; on
// error `message` holds a partial result.
Status OtlpJsonValueToMessage(const nlohmann::json& value, google::protobuf::Message* message);

// Appends the OTLP/JSON form of `message` to `out`. Never fails: a string
// field holding invalid UTF-8 (possible only for a message built in memory,
// parsing refuses it) gets U+FFFD for each bad byte.
void AppendOtlpJson(const google::protobuf::Message& message, std::string* out);

// ---- Encodings used by the JSON forms.

// Standard base64 with padding.
std::string Base64Encode(std::string_view bytes);
// Standard or URL-safe alphabet, padding optional. INVALID_ARGUMENT otherwise.
Result<std::string> Base64Decode(std::string_view text);
// Lowercase hex, two digits a byte.
void AppendHex(std::string_view bytes, std::string* out);
// Case-insensitive; INVALID_ARGUMENT for an odd length or a non-hex digit.
Result<std::string> HexDecode(std::string_view text);
// `s` as a quoted JSON string (escapes ", \ and control characters; invalid
// UTF-8 bytes become U+FFFD).
void AppendJsonString(std::string_view s, std::string* out);

}  // namespace telkit
