// Test support for the receiver (not part of libtelkit): sample OTLP export
// requests and a raw gRPC export call, shared by the unit tests and the
// otlp-test-client helper of the CLI tests.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "common/otlp/signal.h"

namespace telkit::testing {

// A serialized Export*ServiceRequest of `signal` with `items` valid items
// (spans, gauge data points, log records) in one resource
// (service.name = "recv-test"), then `invalid` invalid ones (a span or log
// record with an all-zero or short trace id, a point of a metric without a
// name). `pad_bytes` > 0 adds an attribute of that many bytes to the
// resource (to make large requests). Item i is named "item-<i>".
std::string SampleRequest(Signal signal, int items, int invalid = 0, size_t pad_bytes = 0);

// The same request in OTLP/JSON.
std::string SampleRequestJson(Signal signal, int items);

// "/opentelemetry.proto.collector.trace.v1.TraceService/Export", ...
std::string ExportMethod(Signal signal);

struct RawCallResult {
  grpc::Status status;
  std::string response;  // the response message bytes when OK
};

// One unary call of `method` with `body` as the message bytes, on a generic
// stub (so any bytes can be sent). Waits for the answer (the deadline bounds
// it).
RawCallResult RawUnaryCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                           const std::string& body, bool gzip = false, const std::string& bearer_token = "",
                           int deadline_seconds = 30);

}  // namespace telkit::testing
