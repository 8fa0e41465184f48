#include "common/export/otlp_exporter.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/otlp/otlp_json.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

// Every Export*ServiceResponse has the same shape (partial_success = 1 with
// rejected count = 1 and error_message = 2), so one message type reads all.
using AnyExportResponse = opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse;

std::string_view ServicePath(Signal signal) {
  switch (signal) {
    case Signal::kTraces: return "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    case Signal::kMetrics: return "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    case Signal::kLogs: return "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    default: return {};
  }
}

std::string_view HttpPath(Signal signal) {
  switch (signal) {
    case Signal::kTraces: return "/v1/traces";
    case Signal::kMetrics: return "/v1/metrics";
    case Signal::kLogs: return "/v1/logs";
    default: return {};
  }
}

// One attempt's outcome: a result, or a status plus whether to try again.
struct Attempt {
  Status status;
  bool retryable = false;
  int retry_after_ms = -1;  // from the server, when it said
  ExportResult result;
};

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return ErrnoError("open '" + path + "'");
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

class ExporterBase : public OtlpExporter {
 public:
  explicit ExporterBase(const OtlpExporterOptions& options) : options_(options) {}

  Result<ExportResult> Export(Signal signal, std::string_view payload) final {
    if (ServicePath(signal).empty()) {
      return InvalidArgumentError("signal '" + std::string(SignalName(signal)) + "' cannot be sent over OTLP");
    }
    int backoff = options_.initial_backoff_ms;
    for (int attempt = 1;; ++attempt) {
      Attempt a = Once(signal, payload);
      if (a.status.ok()) {
        a.result.attempts = attempt;
        return a.result;
      }
      if (!a.retryable || attempt >= options_.max_attempts) {
        return a.status.WithContext("export " + std::string(SignalName(signal)) + " to '" + options_.endpoint +
                                    "' (attempt " + std::to_string(attempt) + ")");
      }
      int wait = a.retry_after_ms >= 0 ? std::min(a.retry_after_ms, options_.max_backoff_ms) : backoff;
      std::this_thread::sleep_for(std::chrono::milliseconds(wait));
      backoff = std::min(backoff * 2, options_.max_backoff_ms);
    }
  }

 protected:
  virtual Attempt Once(Signal signal, std::string_view payload) = 0;
  static void ReadPartialSuccess(const AnyExportResponse& r, ExportResult& out) {
    out.rejected = r.partial_success().rejected_spans();
    out.error_message = r.partial_success().error_message();
  }
  OtlpExporterOptions options_;
};

class GrpcExporter final : public ExporterBase {
 public:
  GrpcExporter(const OtlpExporterOptions& options, std::shared_ptr<grpc::Channel> channel)
      : ExporterBase(options), stub_(std::move(channel)) {}

 private:
  Attempt Once(Signal signal, std::string_view payload) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(options_.timeout_ms));
    if (options_.gzip) ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    for (const auto& [k, v] : options_.headers) {
      std::string key = k;
      std::transform(key.begin(), key.end(), key.begin(), ::tolower);
      ctx.AddMetadata(key, v);
    }
    grpc::Slice slice(payload.data(), payload.size());
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    grpc::Status status;
    stub_.UnaryCall(&ctx, std::string(ServicePath(signal)), grpc::StubOptions(), &request, &response,
                    [&](grpc::Status s) {
                      std::lock_guard lock(mu);
                      status = std::move(s);
                      done = true;
                      cv.notify_one();
                    });
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    Attempt a;
    if (!status.ok()) {
      a.status = Status(static_cast<StatusCode>(status.error_code()), "gRPC " + status.error_message());
      switch (status.error_code()) {
        case grpc::StatusCode::UNAVAILABLE:
        case grpc::StatusCode::RESOURCE_EXHAUSTED:
        case grpc::StatusCode::ABORTED:
        case grpc::StatusCode::DEADLINE_EXCEEDED:
        case grpc::StatusCode::CANCELLED:
        case grpc::StatusCode::OUT_OF_RANGE:
        case grpc::StatusCode::DATA_LOSS: a.retryable = true; break;
        default: break;
      }
      return a;
    }
    std::vector<grpc::Slice> slices;
    if (!response.Dump(&slices).ok()) return a;
    std::string bytes;
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    AnyExportResponse r;
    if (r.ParseFromString(bytes)) ReadPartialSuccess(r, a.result);
    return a;
  }

  grpc::GenericStub stub_;
};

class HttpExporter final : public ExporterBase {
 public:
  HttpExporter(const OtlpExporterOptions& options, std::string base, std::string prefix)
      : ExporterBase(options), base_(std::move(base)), prefix_(std::move(prefix)) {}

 private:
  Attempt Once(Signal signal, std::string_view payload) override {
    Attempt a;
    bool json = options_.protocol == OtlpProtocol::kHttpJson;
    std::string body;
    if (json) {
      Result<std::string> j = ProtobufToOtlpJson(signal, payload);
      if (!j.ok()) {
        a.status = j.status();
        return a;
      }
      body = std::move(*j);
    } else {
      body.assign(payload);
    }
    httplib::Client client(base_);
    client.set_connection_timeout(std::chrono::milliseconds(options_.timeout_ms));
    client.set_read_timeout(std::chrono::milliseconds(options_.timeout_ms));
    client.set_write_timeout(std::chrono::milliseconds(options_.timeout_ms));
    client.set_compress(options_.gzip);
    client.set_decompress(true);
    if (!options_.ca_file.empty()) client.set_ca_cert_path(options_.ca_file.c_str());
    client.enable_server_certificate_verification(!options_.insecure_skip_verify);
    httplib::Headers headers;
    for (const auto& [k, v] : options_.headers) headers.emplace(k, v);
    std::string path = prefix_ + std::string(HttpPath(signal));
    auto res = client.Post(path, headers, body, json ? "application/json" : "application/x-protobuf");
    if (!res) {
      a.status = UnavailableError("HTTP request failed: " + httplib::to_string(res.error()));
      a.retryable = true;
      return a;
    }
    if (res->status / 100 == 2) {
      if (json) {
        auto j = nlohmann::json::parse(res->body, nullptr, false);
        if (j.is_object() && j.contains("partialSuccess") && j["partialSuccess"].is_object()) {
          for (const auto& [k, v] : j["partialSuccess"].items()) {
            if (k.starts_with("rejected")) {
              a.result.rejected = v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
            }
            if (k == "errorMessage" && v.is_string()) a.result.error_message = v.get<std::string>();
          }
        }
      } else {
        AnyExportResponse r;
        if (r.ParseFromString(res->body)) ReadPartialSuccess(r, a.result);
      }
      return a;
    }
    std::string snippet = res->body.substr(0, 200);
    a.status = Status(res->status == 400   ? StatusCode::kInvalidArgument
                      : res->status == 401 ? StatusCode::kUnauthenticated
                      : res->status == 413 ? StatusCode::kResourceExhausted
                                           : StatusCode::kUnavailable,
                      "HTTP " + std::to_string(res->status) + (snippet.empty() ? "" : ": " + snippet));
    a.retryable = res->status == 429 || res->status == 502 || res->status == 503 || res->status == 504;
    if (res->has_header("Retry-After")) {
      try {
        a.retry_after_ms = std::stoi(res->get_header_value("Retry-After")) * 1000;
      } catch (const std::exception&) {
      }
    }
    return a;
  }

  std::string base_;    // scheme://host:port
  std::string prefix_;  // path before /v1/...
};

}  // namespace

Result<OtlpProtocol> ParseOtlpProtocol(std::string_view name) {
  if (name == "grpc") return OtlpProtocol::kGrpc;
  if (name == "http/protobuf") return OtlpProtocol::kHttpProtobuf;
  if (name == "http/json") return OtlpProtocol::kHttpJson;
  return InvalidArgumentError("unknown OTLP protocol '" + std::string(name) +
                              "' (use grpc, http/protobuf or http/json)");
}

Result<std::unique_ptr<OtlpExporter>> CreateOtlpExporter(const OtlpExporterOptions& options) {
  const std::string& ep = options.endpoint;
  if (ep.empty()) return InvalidArgumentError("empty OTLP endpoint");
  bool https = ep.starts_with("https://");
  bool http = ep.starts_with("http://");
  if (options.protocol == OtlpProtocol::kGrpc) {
    std::string target = https ? ep.substr(8) : http ? ep.substr(7) : ep;
    while (!target.empty() && target.back() == '/') target.pop_back();
    if (target.empty() || target.find('/') != std::string::npos) {
      return InvalidArgumentError("gRPC endpoint '" + ep + "' must be host:port");
    }
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
    if (https) {
      grpc::SslCredentialsOptions ssl;
      if (!options.ca_file.empty()) {
        TELKIT_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(options.ca_file));
      }
      creds = grpc::SslCredentials(ssl);
    }
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(-1);
    args.SetMaxReceiveMessageSize(64 << 20);
    return std::unique_ptr<OtlpExporter>(
        new GrpcExporter(options, grpc::CreateCustomChannel(target, creds, args)));
  }
  if (!https && !http) return InvalidArgumentError("HTTP endpoint '" + ep + "' must start with http:// or https://");
  size_t slash = ep.find('/', https ? 8 : 7);
  std::string base = slash == std::string::npos ? ep : ep.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : ep.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return std::unique_ptr<OtlpExporter>(new HttpExporter(options, base, prefix));
}

}  // namespace telkit
