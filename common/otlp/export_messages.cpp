#include "common/otlp/export_messages.h"

#include <type_traits>

#include "common/otlp/otlp_json.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace trace_pb = opentelemetry::proto::collector::trace::v1;
namespace metrics_pb = opentelemetry::proto::collector::metrics::v1;
namespace logs_pb = opentelemetry::proto::collector::logs::v1;

template <typename Response>
void FillPartialSuccess(Response* response, int64_t rejected, std::string_view error_message) {
  if (rejected == 0 && error_message.empty()) return;
  auto* partial = response->mutable_partial_success();
  if constexpr (std::is_same_v<Response, trace_pb::ExportTraceServiceResponse>) {
    partial->set_rejected_spans(rejected);
  } else if constexpr (std::is_same_v<Response, metrics_pb::ExportMetricsServiceResponse>) {
    partial->set_rejected_data_points(rejected);
  } else {
    partial->set_rejected_log_records(rejected);
  }
  partial->set_error_message(std::string(error_message));
}

// Builds the response message of `signal` into `out`; false when not OTLP.
template <typename Fn>
bool WithResponse(Signal signal, int64_t rejected, std::string_view error_message, Fn&& fn) {
  switch (signal) {
    case Signal::kTraces: {
      trace_pb::ExportTraceServiceResponse r;
      FillPartialSuccess(&r, rejected, error_message);
      fn(r);
      return true;
    }
    case Signal::kMetrics: {
      metrics_pb::ExportMetricsServiceResponse r;
      FillPartialSuccess(&r, rejected, error_message);
      fn(r);
      return true;
    }
    case Signal::kLogs: {
      logs_pb::ExportLogsServiceResponse r;
      FillPartialSuccess(&r, rejected, error_message);
      fn(r);
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

bool IsOtlpSignal(Signal signal) {
  return signal == Signal::kTraces || signal == Signal::kMetrics || signal == Signal::kLogs;
}

const google::protobuf::Message* ExportRequestPrototype(Signal signal) {
  switch (signal) {
    case Signal::kTraces: return &trace_pb::ExportTraceServiceRequest::default_instance();
    case Signal::kMetrics: return &metrics_pb::ExportMetricsServiceRequest::default_instance();
    case Signal::kLogs: return &logs_pb::ExportLogsServiceRequest::default_instance();
    default: return nullptr;
  }
}

const google::protobuf::Message* ExportResponsePrototype(Signal signal) {
  switch (signal) {
    case Signal::kTraces: return &trace_pb::ExportTraceServiceResponse::default_instance();
    case Signal::kMetrics: return &metrics_pb::ExportMetricsServiceResponse::default_instance();
    case Signal::kLogs: return &logs_pb::ExportLogsServiceResponse::default_instance();
    default: return nullptr;
  }
}

std::unique_ptr<google::protobuf::Message> NewExportRequest(Signal signal) {
  const google::protobuf::Message* prototype = ExportRequestPrototype(signal);
  if (prototype == nullptr) return nullptr;
  return std::unique_ptr<google::protobuf::Message>(prototype->New());
}

std::string EncodeExportResponse(Signal signal, int64_t rejected, std::string_view error_message) {
  std::string out;
  WithResponse(signal, rejected, error_message,
               [&](const google::protobuf::Message& m) { m.SerializeToString(&out); });
  return out;
}

std::string EncodeExportResponseJson(Signal signal, int64_t rejected, std::string_view error_message) {
  std::string out;
  if (!WithResponse(signal, rejected, error_message,
                    [&](const google::protobuf::Message& m) { AppendOtlpJson(m, &out); })) {
    out = "{}";
  }
  return out;
}

std::string_view ItemNoun(Signal signal) {
  switch (signal) {
    case Signal::kTraces: return "spans";
    case Signal::kMetrics: return "data points";
    case Signal::kLogs: return "log records";
    case Signal::kPrometheusRemoteWrite: return "samples";
  }
  return "items";
}

}  // namespace telkit
