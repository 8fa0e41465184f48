// The OTLP Export*ServiceRequest / Export*ServiceResponse messages by signal:
// creating a request of the right type and encoding the response a receiver
// sends back (OTLP specification, "Full Success" and "Partial Success"), in
// binary protobuf and in OTLP/JSON.
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <google/protobuf/message.h>

#include "common/otlp/signal.h"

namespace telkit {

// True for the signals whose payload is an OTLP Export*ServiceRequest
// (traces, metrics, logs).
bool IsOtlpSignal(Signal signal);

// A new, empty ExportTraceServiceRequest, ExportMetricsServiceRequest or
// ExportLogsServiceRequest; nullptr for a signal that is not OTLP.
std::unique_ptr<google::protobuf::Message> NewExportRequest(Signal signal);

// The default instance of the request / response type of `signal` (owned by
// protobuf, lives for the whole process); nullptr for a signal that is not OTLP.
const google::protobuf::Message* ExportRequestPrototype(Signal signal);
const google::protobuf::Message* ExportResponsePrototype(Signal signal);

// The serialized Export*ServiceResponse. Full success (rejected == 0 and an
// empty message) is the empty response, as the specification requires;
// otherwise partial_success carries `rejected` (spans, data points or log
// records) and `error_message`.
// REQUIRES: rejected >= 0. Returns "" for a signal that is not OTLP.
std::string EncodeExportResponse(Signal signal, int64_t rejected, std::string_view error_message);

// The same response in OTLP/JSON, e.g. `{}` or
// `{"partialSuccess":{"rejectedSpans":"3","errorMessage":"..."}}`.
// Returns "{}" for a signal that is not OTLP.
std::string EncodeExportResponseJson(Signal signal, int64_t rejected, std::string_view error_message);

// What one item of `signal` is called in messages: "spans", "data points",
// "log records" ("samples" for prom-rw, "items" otherwise).
std::string_view ItemNoun(Signal signal);

}  // namespace telkit
