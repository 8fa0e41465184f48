// otlp-load: a bounded OTLP load generator for benchmarking a receiver
// (bench/otlp-recv/README.md).
//
// At start it builds --variants distinct Export*ServiceRequest messages of
// 512 items each (bench/common/otlp_requests.h), checks them with the wire
// scanner and, for HTTP with --gzip, compresses them once. Then
// --connections workers, each with its own connection (a gRPC channel with
// its own subchannel pool, or a keep-alive HTTP/1.1 connection), send them
// in a closed loop (one request in flight per connection) until --duration
// seconds have passed or --requests requests have been sent, whichever
// comes first.
//
// It prints `key=value` lines on stdout: items and requests per second
// (accepted ones only; mib_per_s counts every request sent), latency
// percentiles of accepted requests, its own CPU seconds (user + system,
// load phase only), and every failed request by status (`error.NAME=N`:
// the gRPC code name, http_NNN, or transport_ERROR). Pushback (gRPC
// UNAVAILABLE / RESOURCE_EXHAUSTED, HTTP 429 / 503) is counted as an error
// and in `pushback`; gRPC reports a refused connection as UNAVAILABLE too.
// After pushback the worker waits --backoff-ms before its next request,
// not the server's Retry-After, so that a saturated receiver stays loaded.
//
// Exit: 0 when at least one request was accepted, 1 otherwise, 2 usage.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/common/otlp_requests.h"
#include "common/cli/cli.h"
#include "common/codec/gzip.h"
#include "common/otlp/wire_scan.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace collector = opentelemetry::proto::collector;
using Clock = std::chrono::steady_clock;

constexpr char kTool[] = "otlp-load";

struct LoadOptions {
  std::string endpoint;  // HOST:PORT; empty: 127.0.0.1 and the protocol's port
  std::string protocol = "grpc";
  std::string signal = "traces";
  int connections = 4;
  double duration_seconds = 10;
  int64_t max_requests = 0;  // 0: only --duration bounds the run
  bool gzip = false;
  int variants = 32;
  int backoff_ms = 5;
  int timeout_ms = 10000;
};

// One request as it goes on the wire.
struct Payload {
  std::string body;  // gzip-compressed for HTTP with --gzip
  int64_t items = 0;
};

// What one request came to.
struct CallResult {
  bool ok = false;
  bool pushback = false;
  std::string error;      // status name when !ok
  int64_t rejected = 0;   // partial success: items the receiver refused
};

// One connection to the receiver. Used by one worker thread.
class LoadConnection {
 public:
  virtual ~LoadConnection() = default;
  virtual CallResult Send(const Payload& payload) = 0;
};

template <typename Response>
int64_t RejectedItems(const std::string& bytes) {
  Response response;
  if (!response.ParseFromString(bytes)) return 0;
  const auto& partial = response.partial_success();
  if constexpr (std::is_same_v<Response, collector::trace::v1::ExportTraceServiceResponse>) {
    return partial.rejected_spans();
  } else if constexpr (std::is_same_v<Response, collector::metrics::v1::ExportMetricsServiceResponse>) {
    return partial.rejected_data_points();
  } else {
    return partial.rejected_log_records();
  }
}

int64_t RejectedItems(Signal signal, const std::string& bytes) {
  if (bytes.empty()) return 0;
  switch (signal) {
    case Signal::kTraces:
      return RejectedItems<collector::trace::v1::ExportTraceServiceResponse>(bytes);
    case Signal::kMetrics:
      return RejectedItems<collector::metrics::v1::ExportMetricsServiceResponse>(bytes);
    default:
      return RejectedItems<collector::logs::v1::ExportLogsServiceResponse>(bytes);
  }
}

std::string GrpcMethod(Signal signal) {
  switch (signal) {
    case Signal::kTraces:
      return "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    case Signal::kMetrics:
      return "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    default:
      return "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
  }
}

std::string GrpcCodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
      "OUT_OF_RANGE", "UNIMPLEMENTED",   "INTERNAL",       "UNAVAILABLE",      "DATA_LOSS",         "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  if (index >= 0 && index < static_cast<int>(std::size(kNames))) return kNames[index];
  return "CODE_" + std::to_string(index);
}

// A gRPC channel of its own (its own subchannel pool, hence its own TCP
// connection) and the generic stub: payload bytes go out as they are.
class GrpcConnection final : public LoadConnection {
 public:
  GrpcConnection(const std::string& target, Signal signal, const LoadOptions& options)
      : signal_(signal), method_(GrpcMethod(signal)), options_(options) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxSendMessageSize(-1);
    stub_ = std::make_unique<grpc::GenericStub>(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }

  CallResult Send(const Payload& payload) override {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(options_.timeout_ms));
    // gRPC compresses each message itself (on this process's CPU).
    if (options_.gzip) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    grpc::Slice slice(payload.body.data(), payload.body.size(), grpc::Slice::STATIC_SLICE);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    bool done = false;
    stub_->UnaryCall(&context, method_, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      std::lock_guard lock(mu_);
      status = std::move(s);
      done = true;
      cv_.notify_one();
    });
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return done; });
    }
    CallResult result;
    if (!status.ok()) {
      result.error = GrpcCodeName(status.error_code());
      result.pushback = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                        status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
      return result;
    }
    result.ok = true;
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (response.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    result.rejected = RejectedItems(signal_, bytes);
    return result;
  }

 private:
  Signal signal_;
  std::string method_;
  const LoadOptions& options_;
  std::unique_ptr<grpc::GenericStub> stub_;
  std::mutex mu_;
  std::condition_variable cv_;
};

// One keep-alive HTTP/1.1 connection (httplib reconnects when the server
// closes it, e.g. after its keep-alive request limit).
class HttpConnection final : public LoadConnection {
 public:
  HttpConnection(const std::string& host, int port, Signal signal, const LoadOptions& options)
      : client_(host, port), signal_(signal) {
    path_ = signal == Signal::kTraces ? "/v1/traces" : signal == Signal::kMetrics ? "/v1/metrics" : "/v1/logs";
    client_.set_keep_alive(true);
    client_.set_tcp_nodelay(true);
    client_.set_compress(false);  // bodies are compressed once, up front
    client_.set_decompress(false);
    const auto timeout = std::chrono::milliseconds(options.timeout_ms);
    client_.set_connection_timeout(timeout);
    client_.set_read_timeout(timeout);
    client_.set_write_timeout(timeout);
    if (options.gzip) headers_.emplace("Content-Encoding", "gzip");
  }

  CallResult Send(const Payload& payload) override {
    CallResult result;
    httplib::Result res =
        client_.Post(path_, headers_, payload.body.data(), payload.body.size(), "application/x-protobuf");
    if (!res) {
      result.error = "transport_" + httplib::to_string(res.error());
      std::replace(result.error.begin(), result.error.end(), ' ', '_');
      return result;
    }
    if (res->status != 200) {
      result.error = "http_" + std::to_string(res->status);
      result.pushback = res->status == 429 || res->status == 503;
      return result;
    }
    result.ok = true;
    result.rejected = RejectedItems(signal_, res->body);
    return result;
  }

 private:
  httplib::Client client_;
  Signal signal_;
  std::string path_;
  httplib::Headers headers_;
};

struct WorkerStats {
  int64_t requests_ok = 0;
  int64_t items_ok = 0;
  int64_t rejected_items = 0;
  int64_t bytes_sent = 0;
  int64_t pushback = 0;
  std::map<std::string, int64_t> errors;
  std::vector<uint32_t> latency_us;  // accepted requests only
};

double CpuSecondsOfProcess() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Builds and checks the payloads. INVALID_ARGUMENT / INTERNAL when a built
// request does not scan (a bug in the builders).
Result<std::vector<Payload>> BuildPayloads(Signal signal, const LoadOptions& options) {
  std::vector<Payload> payloads;
  for (int v = 0; v < options.variants; ++v) {
    Payload payload;
    payload.body = MakeBenchRequest(signal, static_cast<uint64_t>(v));
    Result<ScanReport> report = ScanExportRequest(signal, payload.body);
    if (!report.ok()) return report.status().WithContext("built request " + std::to_string(v));
    if (report->invalid_items != 0) return InternalError("built request " + std::to_string(v) + " has invalid items");
    payload.items = report->items;
    if (options.gzip && options.protocol == "http") payload.body = GzipCompress(payload.body);
    payloads.push_back(std::move(payload));
  }
  return payloads;
}

uint32_t Percentile(std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return sorted[index];
}

int Run(const LoadOptions& options) {
  std::optional<Signal> signal = ParseSignal(options.signal);
  if (!signal || (*signal != Signal::kTraces && *signal != Signal::kMetrics && *signal != Signal::kLogs)) {
    std::fprintf(stderr, "%s: unknown signal '%s' (use traces, metrics or logs)\n", kTool, options.signal.c_str());
    return kExitUsage;
  }
  const bool grpc = options.protocol == "grpc";
  std::string host = "127.0.0.1";
  int port = grpc ? 4317 : 4318;
  if (!options.endpoint.empty()) {
    const size_t colon = options.endpoint.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      std::fprintf(stderr, "%s: endpoint '%s' is not HOST:PORT\n", kTool, options.endpoint.c_str());
      return kExitUsage;
    }
    host = options.endpoint.substr(0, colon);
    port = std::atoi(options.endpoint.c_str() + colon + 1);
  }

  Result<std::vector<Payload>> payloads = BuildPayloads(*signal, options);
  if (!payloads.ok()) return ReportFailure(payloads.status());

  std::vector<std::unique_ptr<LoadConnection>> connections;
  for (int c = 0; c < options.connections; ++c) {
    if (grpc) {
      connections.push_back(std::make_unique<GrpcConnection>(host + ":" + std::to_string(port), *signal, options));
    } else {
      connections.push_back(std::make_unique<HttpConnection>(host, port, *signal, options));
    }
  }

  std::vector<WorkerStats> stats(connections.size());
  std::atomic<int64_t> budget{options.max_requests > 0 ? options.max_requests : INT64_MAX};
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::microseconds(static_cast<int64_t>(options.duration_seconds * 1e6));
  const double cpu_start = CpuSecondsOfProcess();
  std::vector<std::thread> workers;
  for (size_t w = 0; w < connections.size(); ++w) {
    workers.emplace_back([&, w] {
      WorkerStats& s = stats[w];
      s.latency_us.reserve(1 << 16);
      const std::vector<Payload>& all = *payloads;
      size_t next = w % all.size();
      while (Clock::now() < deadline && budget.fetch_sub(1) > 0) {
        const Payload& payload = all[next];
        next = (next + connections.size()) % all.size();
        const auto sent = Clock::now();
        CallResult result = connections[w]->Send(payload);
        const auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent).count();
        s.bytes_sent += static_cast<int64_t>(payload.body.size());
        if (result.ok) {
          ++s.requests_ok;
          s.items_ok += payload.items - result.rejected;
          s.rejected_items += result.rejected;
          s.latency_us.push_back(static_cast<uint32_t>(std::min<int64_t>(took, UINT32_MAX)));
          continue;
        }
        ++s.errors[result.error];
        if (result.pushback) {
          ++s.pushback;
          if (options.backoff_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(options.backoff_ms));
        }
      }
    });
  }
  for (std::thread& t : workers) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = CpuSecondsOfProcess() - cpu_start;

  WorkerStats total;
  for (WorkerStats& s : stats) {
    total.requests_ok += s.requests_ok;
    total.items_ok += s.items_ok;
    total.rejected_items += s.rejected_items;
    total.bytes_sent += s.bytes_sent;
    total.pushback += s.pushback;
    for (const auto& [name, count] : s.errors) total.errors[name] += count;
    total.latency_us.insert(total.latency_us.end(), s.latency_us.begin(), s.latency_us.end());
  }
  std::sort(total.latency_us.begin(), total.latency_us.end());
  int64_t errors = 0;
  for (const auto& [name, count] : total.errors) errors += count;

  std::printf("protocol=%s\nsignal=%s\nconnections=%d\ngzip=%d\n", options.protocol.c_str(),
              std::string(SignalName(*signal)).c_str(), options.connections, options.gzip ? 1 : 0);
  std::printf("items_per_request=%lld\nrequest_bytes=%lld\n", static_cast<long long>((*payloads)[0].items),
              static_cast<long long>((*payloads)[0].body.size()));
  std::printf("seconds=%.3f\nrequests_ok=%lld\nitems_ok=%lld\n", seconds, static_cast<long long>(total.requests_ok),
              static_cast<long long>(total.items_ok));
  std::printf("items_per_s=%.0f\nrequests_per_s=%.1f\nmib_per_s=%.1f\n", static_cast<double>(total.items_ok) / seconds,
              static_cast<double>(total.requests_ok) / seconds,
              static_cast<double>(total.bytes_sent) / seconds / (1 << 20));
  std::printf("latency_p50_ms=%.2f\nlatency_p99_ms=%.2f\nlatency_max_ms=%.2f\n",
              Percentile(total.latency_us, 0.50) / 1e3, Percentile(total.latency_us, 0.99) / 1e3,
              (total.latency_us.empty() ? 0 : total.latency_us.back()) / 1e3);
  std::printf("load_cpu_s=%.3f\nrejected_items=%lld\nerrors=%lld\npushback=%lld\n", cpu,
              static_cast<long long>(total.rejected_items), static_cast<long long>(errors),
              static_cast<long long>(total.pushback));
  for (const auto& [name, count] : total.errors) {
    std::printf("error.%s=%lld\n", name.c_str(), static_cast<long long>(count));
  }
  std::fflush(stdout);
  if (total.requests_ok == 0) {
    std::fprintf(stderr, "%s: no request was accepted by '%s:%d'\n", kTool, host.c_str(), port);
    return kExitFailure;
  }
  return kExitOk;
}

void Declare(CLI::App& app, LoadOptions& o) {
  app.add_option("--endpoint", o.endpoint, "Receiver HOST:PORT (default 127.0.0.1:4317 or :4318)")
      ->option_text("HOST:PORT");
  app.add_option("--protocol", o.protocol, "grpc or http (HTTP/protobuf)")
      ->check(CLI::IsMember({"grpc", "http"}))
      ->option_text("P=grpc");
  app.add_option("--signal", o.signal, "traces, metrics or logs")
      ->check(CLI::IsMember({"traces", "metrics", "logs"}))
      ->option_text("S=traces");
  app.add_option("--connections", o.connections, "Connections, one request in flight each")
      ->check(CLI::Range(1, 256))
      ->option_text("N=4");
  app.add_option("--duration", o.duration_seconds, "Stop after this many seconds")
      ->check(CLI::Range(0.1, 3600.0))
      ->option_text("S=10");
  app.add_option("--requests", o.max_requests, "Stop after this many requests (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->option_text("N=0");
  app.add_flag("--gzip", o.gzip, "Compress requests with gzip");
  app.add_option("--variants", o.variants, "Distinct requests built up front")
      ->check(CLI::Range(1, 1024))
      ->option_text("N=32");
  app.add_option("--backoff-ms", o.backoff_ms, "Pause after a pushback answer")
      ->check(CLI::Range(0, 10000))
      ->option_text("MS=5");
  app.add_option("--timeout-ms", o.timeout_ms, "Deadline of each request")
      ->check(CLI::Range(1, 600000))
      ->option_text("MS=10000");
}

}  // namespace
}  // namespace telkit

int main(int argc, char** argv) {
  telkit::LoadOptions options;
  return telkit::RunTool(
      telkit::kTool, "Send pre-encoded OTLP requests to a receiver, bounded in time and count.", argc, argv,
      [&](CLI::App& app) { telkit::Declare(app, options); }, [&] { return telkit::Run(options); });
}
