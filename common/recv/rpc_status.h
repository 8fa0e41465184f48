// google.rpc.Status, the error body of OTLP: the body of an OTLP/HTTP error
// response (binary protobuf or JSON, as the request was) and the details of a
// gRPC error status. A retryable error carries a google.rpc.RetryInfo detail
// with the delay, which OTLP clients honour (OTLP specification, "Failures"
// and "Throttling").
//
//   message Status   { int32 code = 1; string message = 2; repeated Any details = 3; }
//   message Any      { string type_url = 1; bytes value = 2; }
//   message RetryInfo { Duration retry_delay = 1; }
//   message Duration { int64 seconds = 1; int32 nanos = 2; }
// Thread-safe: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/base/status.h"

namespace telkit {

inline constexpr std::string_view kRetryInfoTypeUrl = "type.googleapis.com/google.rpc.RetryInfo";

// Serialized google.rpc.Status; with a RetryInfo detail when
// retry_after_seconds > 0.
std::string EncodeRpcStatus(StatusCode code, std::string_view message, int retry_after_seconds = 0);

// The same in the proto3 JSON mapping, e.g. {"code":3,"message":"..."} or
// {"code":14,"message":"...","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2s"}]}.
std::string EncodeRpcStatusJson(StatusCode code, std::string_view message, int retry_after_seconds = 0);

}  // namespace telkit
