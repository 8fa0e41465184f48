// wire_scan_bench: CPU cost of validating OTLP requests by wire-format scan
// (ScanExportRequest, with and without UTF-8 checks) against full protobuf
// parsing (ParseFromArray into a fresh arena per request), and of gzip
// inflate for reference, per million items.
//
// Requests are built to look like real SDK output: 512 spans with ~10
// attributes of mixed types, events and links; 512 metric data points of
// all kinds with attributes; 512 log records with bodies and attributes.
//
// Usage: wire_scan_bench [SECONDS_PER_CASE]   (default 0.5)
// Prints a table; asserts nothing. Pin to a core for stable figures.
#include <google/protobuf/arena.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "common/codec/gzip.h"
#include "common/otlp/wire_scan.h"
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

constexpr int kItemsPerRequest = 512;
constexpr uint64_t kBaseTime = 1700000000000000000ull;

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

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

// ~10 attributes of mixed types, as an HTTP server span carries.
void SpanAttributes(Attributes* attrs, int i) {
  Add(attrs, "http.request.method", std::string(i % 5 ? "GET" : "POST"));
  Add(attrs, "http.route", "/api/v1/orders/{id}/items");
  Add(attrs, "url.path", "/api/v1/orders/" + std::to_string(100000 + i) + "/items");
  Add(attrs, "http.response.status_code", int64_t{i % 17 ? 200 : 503});
  Add(attrs, "server.address", std::string("checkout.internal"));
  Add(attrs, "client.address", "10.0." + std::to_string(i % 7) + "." + std::to_string(i % 250));
  Add(attrs, "user_agent.original",
      std::string("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0"));
  Add(attrs, "http.request.body.size", int64_t{512 + i});
  KeyValue* kv = attrs->Add();
  kv->set_key("cache.hit");
  kv->mutable_value()->set_bool_value(i % 3 == 0);
  kv = attrs->Add();
  kv->set_key("sampling.ratio");
  kv->mutable_value()->set_double_value(0.25);
}

std::string MakeTraces() {
  ExportTraceServiceRequest r;
  auto* rs = r.add_resource_spans();
  ResourceAttributes(rs->mutable_resource()->mutable_attributes());
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp");
  ss->mutable_scope()->set_version("0.46.1");
  for (int i = 0; i < kItemsPerRequest; ++i) {
    auto* s = ss->add_spans();
    s->set_trace_id(IdBytes(16, i / 8));
    s->set_span_id(IdBytes(8, 1000 + i));
    if (i % 8) s->set_parent_span_id(IdBytes(8, 1000 + i - 1));
    s->set_name("GET /api/v1/orders/{id}/items");
    s->set_kind(otlp::trace::v1::Span::SPAN_KIND_SERVER);
    s->set_start_time_unix_nano(kBaseTime + i * 1000003ull);
    s->set_end_time_unix_nano(kBaseTime + i * 1000003ull + 250000 + i);
    s->set_flags(0x101);
    SpanAttributes(s->mutable_attributes(), i);
    if (i % 4 == 0) {
      auto* ev = s->add_events();
      ev->set_name("exception");
      ev->set_time_unix_nano(kBaseTime + i * 1000003ull + 1000);
      Add(ev->mutable_attributes(), "exception.type", std::string("context.DeadlineExceeded"));
    }
    s->mutable_status()->set_code(i % 17 ? otlp::trace::v1::Status::STATUS_CODE_UNSET
                                         : otlp::trace::v1::Status::STATUS_CODE_ERROR);
  }
  return r.SerializeAsString();
}

void PointAttributes(Attributes* attrs, int i) {
  Add(attrs, "http.request.method", std::string(i % 2 ? "GET" : "POST"));
  Add(attrs, "http.route", "/api/v1/route" + std::to_string(i % 16));
  Add(attrs, "http.response.status_code", int64_t{200 + (i % 3)});
  Add(attrs, "server.address", std::string("checkout.internal"));
}

// 512 points: 64 metrics of 8 points, cycling gauge, sum, histogram,
// exponential histogram, summary.
std::string MakeMetrics() {
  ExportMetricsServiceRequest r;
  auto* rm = r.add_resource_metrics();
  ResourceAttributes(rm->mutable_resource()->mutable_attributes());
  auto* sm = rm->add_scope_metrics();
  sm->mutable_scope()->set_name("go.opentelemetry.io/otel/sdk/metric");
  for (int m = 0; m < kItemsPerRequest / 8; ++m) {
    auto* metric = sm->add_metrics();
    metric->set_name("http.server.metric_" + std::to_string(m));
    metric->set_unit("s");
    metric->set_description("Duration of HTTP server requests.");
    for (int p = 0; p < 8; ++p) {
      const int i = m * 8 + p;
      switch (m % 5) {
        case 0: {
          auto* dp = metric->mutable_gauge()->add_data_points();
          dp->set_time_unix_nano(kBaseTime);
          dp->set_as_double(0.5 * i);
          PointAttributes(dp->mutable_attributes(), i);
          break;
        }
        case 1: {
          metric->mutable_sum()->set_is_monotonic(true);
          auto* dp = metric->mutable_sum()->add_data_points();
          dp->set_start_time_unix_nano(kBaseTime - 60000000000ull);
          dp->set_time_unix_nano(kBaseTime);
          dp->set_as_int(1000 + i);
          PointAttributes(dp->mutable_attributes(), i);
          break;
        }
        case 2: {
          auto* dp = metric->mutable_histogram()->add_data_points();
          dp->set_start_time_unix_nano(kBaseTime - 60000000000ull);
          dp->set_time_unix_nano(kBaseTime);
          dp->set_count(100);
          dp->set_sum(12.5);
          for (double b : {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0}) {
            dp->add_explicit_bounds(b);
          }
          for (int b = 0; b < 11; ++b) dp->add_bucket_counts(b * 3);
          PointAttributes(dp->mutable_attributes(), i);
          auto* ex = dp->add_exemplars();
          ex->set_as_double(0.3);
          ex->set_trace_id(IdBytes(16, i));
          ex->set_span_id(IdBytes(8, i));
          break;
        }
        case 3: {
          auto* dp = metric->mutable_exponential_histogram()->add_data_points();
          dp->set_time_unix_nano(kBaseTime);
          dp->set_count(100);
          dp->set_scale(3);
          dp->mutable_positive()->set_offset(-4);
          for (int b = 0; b < 20; ++b) dp->mutable_positive()->add_bucket_counts(b * 37);
          PointAttributes(dp->mutable_attributes(), i);
          break;
        }
        default: {
          auto* dp = metric->mutable_summary()->add_data_points();
          dp->set_time_unix_nano(kBaseTime);
          dp->set_count(100);
          dp->set_sum(50);
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

std::string MakeLogs() {
  ExportLogsServiceRequest r;
  auto* rl = r.add_resource_logs();
  ResourceAttributes(rl->mutable_resource()->mutable_attributes());
  auto* sl = rl->add_scope_logs();
  sl->mutable_scope()->set_name("app.logger");
  for (int i = 0; i < kItemsPerRequest; ++i) {
    auto* lr = sl->add_log_records();
    lr->set_time_unix_nano(kBaseTime + i);
    lr->set_observed_time_unix_nano(kBaseTime + i + 10);
    lr->set_severity_number(otlp::logs::v1::SEVERITY_NUMBER_INFO);
    lr->set_severity_text("INFO");
    lr->mutable_body()->set_string_value("order " + std::to_string(100000 + i) +
                                         " accepted for customer " + std::to_string(i * 7) +
                                         " after 3 retries; payment provider answered 200 OK");
    Add(lr->mutable_attributes(), "code.function", std::string("handleOrder"));
    Add(lr->mutable_attributes(), "code.lineno", int64_t{217});
    Add(lr->mutable_attributes(), "order.id", std::to_string(100000 + i));
    Add(lr->mutable_attributes(), "thread.name", std::string("worker-3"));
    if (i % 2) {
      lr->set_trace_id(IdBytes(16, i));
      lr->set_span_id(IdBytes(8, i));
    }
  }
  return r.SerializeAsString();
}

// Runs `fn` (one request) repeatedly for about `seconds` of CPU; returns CPU
// seconds per million items.
double PerMillionItems(double seconds, int64_t items_per_call, const std::function<void()>& fn) {
  int64_t calls = 0;
  const double start = CpuSeconds();
  double elapsed = 0;
  do {
    for (int i = 0; i < 16; ++i) fn();
    calls += 16;
    elapsed = CpuSeconds() - start;
  } while (elapsed < seconds);
  return elapsed / static_cast<double>(calls * items_per_call) * 1e6;
}

template <typename Request>
int BenchOne(const char* name, Signal signal, const std::string& bytes, double seconds) {
  Result<ScanReport> check = ScanExportRequest(signal, bytes);
  if (!check.ok() || check->items != kItemsPerRequest || check->invalid_items != 0) {
    std::fprintf(stderr, "wire_scan_bench: bad %s request: %s\n", name,
                 check.status().ToString().c_str());
    return 1;
  }
  const std::string gz = GzipCompress(bytes);
  int64_t sink = 0;
  const double scan_utf8 = PerMillionItems(
      seconds, kItemsPerRequest, [&] { sink += ScanExportRequest(signal, bytes)->items; });
  const double scan_plain = PerMillionItems(seconds, kItemsPerRequest, [&] {
    sink += ScanExportRequest(signal, bytes, ScanOptions{.check_utf8 = false})->items;
  });
  const double parse = PerMillionItems(seconds, kItemsPerRequest, [&] {
    google::protobuf::Arena arena;
    auto* request = google::protobuf::Arena::CreateMessage<Request>(&arena);
    sink += request->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  });
  const double inflate = PerMillionItems(seconds, kItemsPerRequest, [&] {
    sink += static_cast<int64_t>(GzipDecompress(gz, bytes.size())->size());
  });
  std::printf("%-8s %9.0f %10.3f %10.3f %10.3f %7.1fx %10.3f\n", name,
              static_cast<double>(bytes.size()) / kItemsPerRequest, scan_utf8, scan_plain, parse,
              parse / scan_utf8, inflate);
  if (sink == 42) std::printf(" ");  // keeps the work observable
  return 0;
}

int Main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.5;
  if (!(seconds > 0)) {
    std::fprintf(stderr, "usage: wire_scan_bench [SECONDS_PER_CASE]\n");
    return 2;
  }
  std::printf("CPU seconds per million items (%d items a request)\n", kItemsPerRequest);
  std::printf("%-8s %9s %10s %10s %10s %8s %10s\n", "signal", "B/item", "scan+utf8", "scan",
              "parse", "parse/", "gunzip");
  std::printf("%-8s %9s %10s %10s %10s %8s %10s\n", "", "", "", "", "(arena)", "scan+utf8",
              "(ref.)");
  int rc = 0;
  rc |= BenchOne<ExportTraceServiceRequest>("traces", Signal::kTraces, MakeTraces(), seconds);
  rc |= BenchOne<ExportMetricsServiceRequest>("metrics", Signal::kMetrics, MakeMetrics(), seconds);
  rc |= BenchOne<ExportLogsServiceRequest>("logs", Signal::kLogs, MakeLogs(), seconds);
  return rc;
}

}  // namespace
}  // namespace telkit

int main(int argc, char** argv) { return telkit::Main(argc, argv); }
