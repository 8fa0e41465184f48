#include "bench/common/otlp_requests.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace otlp = opentelemetry::proto;
using otlp::collector::logs::v1::ExportLogsServiceRequest;
using otlp::collector::metrics::v1::ExportMetricsServiceRequest;
using otlp::collector::trace::v1::ExportTraceServiceRequest;
using otlp::common::v1::KeyValue;
using Attributes = google::protobuf::RepeatedPtrField<KeyValue>;

constexpr int kItems = kBenchItemsPerRequest;
constexpr uint64_t kBaseTime = 1700000000000000000ull;
// Seeds of different variants never meet (a request uses < 2 * kItems seeds).
constexpr uint64_t kSeedStride = 1000003;
constexpr uint64_t kSecond = 1000000000ull;

std::string IdBytes(size_t n, uint64_t seed) {
  std::string id(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    id[i] = static_cast<char>((seed >> 33) | 1);
  }
  return id;
}

void Add(Attributes* attrs, const char* key, const std::string& value) {
  KeyValue* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}
void Add(Attributes* attrs, const char* key, int64_t value) {
  KeyValue* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_int_value(value);
}

void ResourceAttributes(Attributes* attrs) {
  Add(attrs, "service.name", std::string("checkout"));
  Add(attrs, "service.version", std::string("2.14.1"));
  Add(attrs, "host.name", std::string("ip-10-0-3-17.eu-west-1.compute.internal"));
  Add(attrs, "telemetry.sdk.language", std::string("go"));
  Add(attrs, "process.pid", int64_t{4242});
}

// ~10 attributes of mixed types, as an HTTP server span carries. `n` is the
// item's number across variants.
void SpanAttributes(Attributes* attrs, int i, uint64_t n) {
  Add(attrs, "http.request.method", std::string(i % 5 ? "GET" : "POST"));
  Add(attrs, "http.route", "/api/v1/orders/{id}/items");
  Add(attrs, "url.path", "/api/v1/orders/" + std::to_string(100000 + n) + "/items");
  Add(attrs, "http.response.status_code", int64_t{i % 17 ? 200 : 503});
  Add(attrs, "server.address", std::string("checkout.internal"));
  Add(attrs, "client.address", "10.0." + std::to_string(n % 7) + "." + std::to_string(n % 250));
  Add(attrs, "user_agent.original",
      std::string("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0"));
  Add(attrs, "http.request.body.size", static_cast<int64_t>(512 + n % 100000));
  KeyValue* kv = attrs->Add();
  kv->set_key("cache.hit");
  kv->mutable_value()->set_bool_value(i % 3 == 0);
  kv = attrs->Add();
  kv->set_key("sampling.ratio");
  kv->mutable_value()->set_double_value(0.25);
}

void PointAttributes(Attributes* attrs, int i) {
  Add(attrs, "http.request.method", std::string(i % 2 ? "GET" : "POST"));
  Add(attrs, "http.route", "/api/v1/route" + std::to_string(i % 16));
  Add(attrs, "http.response.status_code", int64_t{200 + (i % 3)});
  Add(attrs, "server.address", std::string("checkout.internal"));
}

}  // namespace

std::string MakeBenchTraceRequest(uint64_t variant) {
  const uint64_t seed = variant * kSeedStride;
  const uint64_t base_time = kBaseTime + variant * kSecond;
  ExportTraceServiceRequest r;
  auto* rs = r.add_resource_spans();
  ResourceAttributes(rs->mutable_resource()->mutable_attributes());
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp");
  ss->mutable_scope()->set_version("0.46.1");
  for (int i = 0; i < kItems; ++i) {
    auto* s = ss->add_spans();
    s->set_trace_id(IdBytes(16, seed + i / 8));
    s->set_span_id(IdBytes(8, seed + 1000 + i));
    if (i % 8) s->set_parent_span_id(IdBytes(8, seed + 1000 + i - 1));
    s->set_name("GET /api/v1/orders/{id}/items");
    s->set_kind(otlp::trace::v1::Span::SPAN_KIND_SERVER);
    s->set_start_time_unix_nano(base_time + i * 1000003ull);
    s->set_end_time_unix_nano(base_time + i * 1000003ull + 250000 + i);
    s->set_flags(0x101);
    SpanAttributes(s->mutable_attributes(), i, variant * kItems + i);
    if (i % 4 == 0) {
      auto* ev = s->add_events();
      ev->set_name("exception");
      ev->set_time_unix_nano(base_time + i * 1000003ull + 1000);
      Add(ev->mutable_attributes(), "exception.type", std::string("context.DeadlineExceeded"));
    }
    s->mutable_status()->set_code(i % 17 ? otlp::trace::v1::Status::STATUS_CODE_UNSET
                                         : otlp::trace::v1::Status::STATUS_CODE_ERROR);
  }
  return r.SerializeAsString();
}

std::string MakeBenchMetricsRequest(uint64_t variant) {
  const uint64_t seed = variant * kSeedStride;
  const uint64_t base_time = kBaseTime + variant * kSecond;
  const auto offset = static_cast<int64_t>(variant % 1000000);
  ExportMetricsServiceRequest r;
  auto* rm = r.add_resource_metrics();
  ResourceAttributes(rm->mutable_resource()->mutable_attributes());
  auto* sm = rm->add_scope_metrics();
  sm->mutable_scope()->set_name("go.opentelemetry.io/otel/sdk/metric");
  for (int m = 0; m < kItems / 8; ++m) {
    auto* metric = sm->add_metrics();
    metric->set_name("http.server.metric_" + std::to_string(m));
    metric->set_unit("s");
    metric->set_description("Duration of HTTP server requests.");
    for (int p = 0; p < 8; ++p) {
      const int i = m * 8 + p;
      switch (m % 5) {
        case 0: {
          auto* dp = metric->mutable_gauge()->add_data_points();
          dp->set_time_unix_nano(base_time);
          dp->set_as_double(0.5 * i + static_cast<double>(offset));
          PointAttributes(dp->mutable_attributes(), i);
          break;
        }
        case 1: {
          metric->mutable_sum()->set_is_monotonic(true);
          auto* dp = metric->mutable_sum()->add_data_points();
          dp->set_start_time_unix_nano(kBaseTime - 60 * kSecond);
          dp->set_time_unix_nano(base_time);
          dp->set_as_int(1000 + i + offset);
          PointAttributes(dp->mutable_attributes(), i);
          break;
        }
        case 2: {
          auto* dp = metric->mutable_histogram()->add_data_points();
          dp->set_start_time_unix_nano(kBaseTime - 60 * kSecond);
          dp->set_time_unix_nano(base_time);
          dp->set_count(100 + offset);
          dp->set_sum(12.5 + static_cast<double>(offset));
          for (double b : {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0}) {
            dp->add_explicit_bounds(b);
          }
          for (int b = 0; b < 11; ++b) dp->add_bucket_counts(b * 3 + (b == 0 ? offset : 0));
          PointAttributes(dp->mutable_attributes(), i);
          auto* ex = dp->add_exemplars();
          ex->set_as_double(0.3);
          ex->set_trace_id(IdBytes(16, seed + i));
          ex->set_span_id(IdBytes(8, seed + i));
          break;
        }
        case 3: {
          auto* dp = metric->mutable_exponential_histogram()->add_data_points();
          dp->set_time_unix_nano(base_time);
          dp->set_count(100 + offset);
          dp->set_scale(3);
          dp->mutable_positive()->set_offset(-4);
          for (int b = 0; b < 20; ++b) dp->mutable_positive()->add_bucket_counts(b * 37 + (b == 0 ? offset : 0));
          PointAttributes(dp->mutable_attributes(), i);
          break;
        }
        default: {
          auto* dp = metric->mutable_summary()->add_data_points();
          dp->set_time_unix_nano(base_time);
          dp->set_count(100 + offset);
          dp->set_sum(50 + static_cast<double>(offset));
          for (double q : {0.5, 0.9, 0.99}) {
            auto* vq = dp->add_quantile_values();
            vq->set_quantile(q);
            vq->set_value(q * 3);
          }
          PointAttributes(dp->mutable_attributes(), i);
          break;
        }
      }
    }
  }
  return r.SerializeAsString();
}

std::string MakeBenchLogsRequest(uint64_t variant) {
  const uint64_t seed = variant * kSeedStride;
  const uint64_t base_time = kBaseTime + variant * kSecond;
  ExportLogsServiceRequest r;
  auto* rl = r.add_resource_logs();
  ResourceAttributes(rl->mutable_resource()->mutable_attributes());
  auto* sl = rl->add_scope_logs();
  sl->mutable_scope()->set_name("app.logger");
  for (int i = 0; i < kItems; ++i) {
    const uint64_t n = variant * kItems + i;
    auto* lr = sl->add_log_records();
    lr->set_time_unix_nano(base_time + i);
    lr->set_observed_time_unix_nano(base_time + i + 10);
    lr->set_severity_number(otlp::logs::v1::SEVERITY_NUMBER_INFO);
    lr->set_severity_text("INFO");
    lr->mutable_body()->set_string_value("order " + std::to_string(100000 + n) + " accepted for customer " +
                                         std::to_string(n * 7) +
                                         " after 3 retries; payment provider answered 200 OK");
    Add(lr->mutable_attributes(), "code.function", std::string("handleOrder"));
    Add(lr->mutable_attributes(), "code.lineno", int64_t{217});
    Add(lr->mutable_attributes(), "order.id", std::to_string(100000 + n));
    Add(lr->mutable_attributes(), "thread.name", std::string("worker-3"));
    if (i % 2) {
      lr->set_trace_id(IdBytes(16, seed + i));
      lr->set_span_id(IdBytes(8, seed + i));
    }
  }
  return r.SerializeAsString();
}

std::string MakeBenchRequest(Signal signal, uint64_t variant) {
  switch (signal) {
    case Signal::kTraces:
      return MakeBenchTraceRequest(variant);
    case Signal::kMetrics:
      return MakeBenchMetricsRequest(variant);
    case Signal::kLogs:
      return MakeBenchLogsRequest(variant);
    default:
      return std::string();
  }
}

}  // namespace telkit
