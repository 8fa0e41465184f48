#include "common/recv/recv_testing.h"

#include <grpcpp/generic/generic_stub.h>

#include <future>

#include "common/otlp/otlp_json.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit::testing {
namespace {

namespace common = opentelemetry::proto::common::v1;
namespace resource = opentelemetry::proto::resource::v1;

void FillResource(resource::Resource* r, size_t pad_bytes) {
  common::KeyValue* kv = r->add_attributes();
  kv->set_key("service.name");
  kv->mutable_value()->set_string_value("recv-test");
  if (pad_bytes > 0) {
    common::KeyValue* pad = r->add_attributes();
    pad->set_key("padding");
    pad->mutable_value()->set_string_value(std::string(pad_bytes, 'p'));
  }
}

std::string Id(int n, size_t size) {
  std::string id(size, '\0');
  for (size_t b = 0; b < size && b < 4; ++b) id[size - 1 - b] = static_cast<char>((n + 1) >> (8 * b));
  id[0] = 0x5a;
  return id;
}

}  // namespace

std::string SampleRequest(Signal signal, int items, int invalid, size_t pad_bytes) {
  const int total = items + invalid;
  switch (signal) {
    case Signal::kTraces: {
      opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request;
      auto* rs = request.add_resource_spans();
      FillResource(rs->mutable_resource(), pad_bytes);
      auto* ss = rs->add_scope_spans();
      ss->mutable_scope()->set_name("recv-test");
      for (int i = 0; i < total; ++i) {
        auto* span = ss->add_spans();
        span->set_trace_id(i < items ? Id(i, 16) : std::string(16, '\0'));
        span->set_span_id(Id(i, 8));
        span->set_name("item-" + std::to_string(i));
        span->set_start_time_unix_nano(1700000000000000000ull + i);
        span->set_end_time_unix_nano(1700000000000000000ull + i + 1000);
      }
      return request.SerializeAsString();
    }
    case Signal::kMetrics: {
      opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest request;
      auto* rm = request.add_resource_metrics();
      FillResource(rm->mutable_resource(), pad_bytes);
      auto* sm = rm->add_scope_metrics();
      for (int i = 0; i < total; ++i) {
        auto* metric = sm->add_metrics();
        if (i < items) metric->set_name("item-" + std::to_string(i));
        auto* point = metric->mutable_gauge()->add_data_points();
        point->set_time_unix_nano(1700000000000000000ull + i);
        point->set_as_double(i);
      }
      return request.SerializeAsString();
    }
    case Signal::kLogs: {
      opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest request;
      auto* rl = request.add_resource_logs();
      FillResource(rl->mutable_resource(), pad_bytes);
      auto* sl = rl->add_scope_logs();
      for (int i = 0; i < total; ++i) {
        auto* record = sl->add_log_records();
        record->set_time_unix_nano(1700000000000000000ull + i);
        record->mutable_body()->set_string_value("item-" + std::to_string(i));
        if (i >= items) record->set_trace_id("short");
      }
      return request.SerializeAsString();
    }
    default:
      return "";
  }
}

std::string SampleRequestJson(Signal signal, int items) {
  Result<std::string> json = ProtobufToOtlpJson(signal, SampleRequest(signal, items));
  return json.ok() ? *json : "";
}

std::string ExportMethod(Signal signal) {
  switch (signal) {
    case Signal::kTraces:
      return "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    case Signal::kMetrics:
      return "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    case Signal::kLogs:
      return "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    default:
      return "";
  }
}

RawCallResult RawUnaryCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                           const std::string& body, bool gzip, const std::string& bearer_token, int deadline_seconds) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(deadline_seconds));
  if (gzip) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  if (!bearer_token.empty()) context.AddMetadata("authorization", "Bearer " + bearer_token);
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  RawCallResult result;
  result.status = done.get_future().get();
  if (result.status.ok()) {
    std::vector<grpc::Slice> slices;
    if (response.Dump(&slices).ok()) {
      for (const auto& s : slices) result.response.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return result;
}

}  // namespace telkit::testing
