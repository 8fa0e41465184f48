#include "common/recv/otlp_grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/recv/recv_testing.h"
#include "common/recv/rpc_status.h"
#include "common/stream/stream_input.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.grpc.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.grpc.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace telkit {
namespace {

namespace trace_v1 = opentelemetry::proto::collector::trace::v1;
namespace metrics_v1 = opentelemetry::proto::collector::metrics::v1;
namespace logs_v1 = opentelemetry::proto::collector::logs::v1;
using testing::ExportMethod;
using testing::RawUnaryCall;
using testing::SampleRequest;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "recv_grpc_test_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

double Refused(const MetricsRegistry& registry, const std::string& reason) {
  std::string series = "otlp_recv_refused_requests_total{protocol=\"grpc\",reason=\"" + reason + "\"}";
  std::string text = registry.ExpositionText();
  size_t pos = text.find("\n" + series + " ");
  return pos == std::string::npos ? -1 : std::stod(text.substr(pos + series.size() + 2));
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + 30s);
  return context;
}

class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override { signal(SIGPIPE, SIG_IGN); }

  void Start(OtlpReceiverOptions receiver_options = {}, OtlpGrpcServerOptions server_options = {},
             const BearerTokenCheck* auth = nullptr, std::string output_spec = "",
             StreamOutputOptions output_options = {}) {
    if (output_spec.empty()) output_spec = out_path_;
    auto output = OpenStreamOutput(output_spec, output_options);
    ASSERT_TRUE(output.ok()) << output.status().ToString();
    receiver_ = std::make_unique<OtlpReceiver>(receiver_options, std::move(*output), registry_);
    server_options.listen = {"127.0.0.1", 0};
    auto server = OtlpGrpcServer::Start(server_options, *receiver_, auth);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    target_ = "127.0.0.1:" + std::to_string(server_->port());
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(-1);
    channel_ = grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), args);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(1s);
    if (receiver_) (void)receiver_->Shutdown(5s);
  }

  std::vector<Frame> StopAndReadFrames() {
    server_->Shutdown(5s);
    EXPECT_TRUE(receiver_->Shutdown(10s).ok());
    std::vector<Frame> frames;
    auto input = OpenStreamInput(out_path_);
    if (!input.ok()) return frames;
    for (int i = 0; i < 100000; ++i) {
      auto next = (*input)->Next();
      if (!next.ok() || !next->has_value()) break;
      frames.push_back(std::move(**next));
    }
    return frames;
  }

  TempDir dir_;
  std::string out_path_ = dir_.File("out.tks");
  MetricsRegistry registry_;
  std::unique_ptr<OtlpReceiver> receiver_;
  std::unique_ptr<OtlpGrpcServer> server_;
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GrpcServerTest, GeneratedStubsOfAllThreeServices) {
  Start();
  trace_v1::ExportTraceServiceRequest traces;
  ASSERT_TRUE(traces.ParseFromString(SampleRequest(Signal::kTraces, 3)));
  trace_v1::ExportTraceServiceResponse traces_response;
  grpc::Status status = trace_v1::TraceService::NewStub(channel_)->Export(Context().get(), traces, &traces_response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(traces_response.has_partial_success());

  metrics_v1::ExportMetricsServiceRequest metrics;
  ASSERT_TRUE(metrics.ParseFromString(SampleRequest(Signal::kMetrics, 2)));
  metrics_v1::ExportMetricsServiceResponse metrics_response;
  status = metrics_v1::MetricsService::NewStub(channel_)->Export(Context().get(), metrics, &metrics_response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  logs_v1::ExportLogsServiceRequest logs;
  ASSERT_TRUE(logs.ParseFromString(SampleRequest(Signal::kLogs, 4)));
  logs_v1::ExportLogsServiceResponse logs_response;
  status = logs_v1::LogsService::NewStub(channel_)->Export(Context().get(), logs, &logs_response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  std::vector<Frame> frames = StopAndReadFrames();
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].signal, static_cast<uint8_t>(Signal::kTraces));
  EXPECT_EQ(frames[0].payload, traces.SerializeAsString());
  EXPECT_EQ(frames[1].payload, metrics.SerializeAsString());
  EXPECT_EQ(frames[2].payload, logs.SerializeAsString());
}

TEST_F(GrpcServerTest, GzipCompressedRequest) {
  Start();
  trace_v1::ExportTraceServiceRequest request;
  ASSERT_TRUE(request.ParseFromString(SampleRequest(Signal::kTraces, 50, 0, 100000)));
  auto context = Context();
  context->set_compression_algorithm(GRPC_COMPRESS_GZIP);
  trace_v1::ExportTraceServiceResponse response;
  grpc::Status status = trace_v1::TraceService::NewStub(channel_)->Export(context.get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<Frame> frames = StopAndReadFrames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, request.SerializeAsString());
}

TEST_F(GrpcServerTest, PartialSuccess) {
  Start();
  trace_v1::ExportTraceServiceRequest request;
  ASSERT_TRUE(request.ParseFromString(SampleRequest(Signal::kTraces, 4, 2)));
  trace_v1::ExportTraceServiceResponse response;
  grpc::Status status = trace_v1::TraceService::NewStub(channel_)->Export(Context().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.partial_success().rejected_spans(), 2);
  EXPECT_NE(response.partial_success().error_message().find("2 invalid spans rejected"), std::string::npos);
}

TEST_F(GrpcServerTest, MalformedMessageIsInvalidArgument) {
  Start();
  std::string body = SampleRequest(Signal::kLogs, 3);
  auto result = RawUnaryCall(channel_, ExportMethod(Signal::kLogs), body.substr(0, body.size() - 3));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(result.status.error_message().find("malformed protobuf"), std::string::npos);
  EXPECT_EQ(Refused(registry_, "bad_data"), 1);
  EXPECT_TRUE(RawUnaryCall(channel_, ExportMethod(Signal::kLogs), body).status.ok());
}

TEST_F(GrpcServerTest, MessageOverTheLimits) {
  OtlpReceiverOptions options;
  options.max_request_bytes = 64 << 10;
  options.max_decompressed_bytes = 256 << 10;
  Start(options);
  // Over max_request_bytes: refused by the receiver.
  auto over = RawUnaryCall(channel_, ExportMethod(Signal::kTraces), SampleRequest(Signal::kTraces, 1, 0, 100 << 10));
  EXPECT_EQ(over.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Refused(registry_, "too_large"), 1);
  // Over max_decompressed_bytes: refused by gRPC before it is buffered.
  auto way_over = RawUnaryCall(channel_, ExportMethod(Signal::kTraces), SampleRequest(Signal::kTraces, 1, 0, 1 << 20));
  EXPECT_EQ(way_over.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // The server still serves.
  EXPECT_TRUE(RawUnaryCall(channel_, ExportMethod(Signal::kTraces), SampleRequest(Signal::kTraces, 1)).status.ok());
}

TEST_F(GrpcServerTest, UnknownMethodIsUnimplemented) {
  Start();
  auto result = RawUnaryCall(channel_, "/opentelemetry.proto.collector.profiles.v1.ProfilesService/Export", "");
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(Refused(registry_, "not_found"), 1);
}

TEST_F(GrpcServerTest, BearerTokenInMetadata) {
  std::ofstream(dir_.File("token")) << "grpc-t0ken\n";
  auto auth = BearerTokenCheck::FromFile(dir_.File("token"));
  ASSERT_TRUE(auth.ok());
  Start({}, {}, auth->get());
  const std::string body = SampleRequest(Signal::kTraces, 1);
  EXPECT_EQ(RawUnaryCall(channel_, ExportMethod(Signal::kTraces), body).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(RawUnaryCall(channel_, ExportMethod(Signal::kTraces), body, false, "wrong").status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(RawUnaryCall(channel_, ExportMethod(Signal::kTraces), body, false, "grpc-t0ken").status.ok());
  EXPECT_EQ(Refused(registry_, "unauthenticated"), 2);
}

TEST_F(GrpcServerTest, FullQueueIsUnavailableWithRetryInfo) {
  OtlpReceiverOptions options;
  options.max_request_bytes = 64 << 10;
  options.max_decompressed_bytes = 64 << 10;
  options.queue_capacity_bytes = 64 << 10;
  options.retry_after_seconds = 4;
  StreamOutputOptions output_options;
  output_options.max_unacked_bytes = 1;
  Start(options, {}, nullptr, "listen:unix:" + dir_.File("nobody.sock"), output_options);
  const std::string body = SampleRequest(Signal::kTraces, 1, 0, 10 << 10);
  grpc::Status status;
  for (int i = 0; i < 100 && status.ok(); ++i)
    status = RawUnaryCall(channel_, ExportMethod(Signal::kTraces), body).status;
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_details(), EncodeRpcStatus(StatusCode::kUnavailable, status.error_message(), 4));
  EXPECT_EQ(Refused(registry_, "queue_full"), 1);
  server_->Shutdown(1s);
  EXPECT_EQ(receiver_->Shutdown(100ms).code(), StatusCode::kDeadlineExceeded);
}

TEST_F(GrpcServerTest, ManyConcurrentCalls) {
  Start();
  const std::string body = SampleRequest(Signal::kTraces, 2);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 20; ++t) {
    threads.emplace_back([&] {
      auto channel = grpc::CreateChannel(target_, grpc::InsecureChannelCredentials());
      for (int i = 0; i < 10; ++i) {
        if (RawUnaryCall(channel, ExportMethod(Signal::kTraces), body, i % 2 == 0).status.ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(StopAndReadFrames().size(), 200u);
}

TEST_F(GrpcServerTest, BusyPortIsUnavailable) {
  Start();
  MetricsRegistry registry;
  auto output = OpenStreamOutput(dir_.File("other.tks"));
  ASSERT_TRUE(output.ok());
  OtlpReceiver receiver({}, std::move(*output), registry);
  OtlpGrpcServerOptions options;
  options.listen = {"127.0.0.1", server_->port()};
  auto second = OtlpGrpcServer::Start(options, receiver, nullptr);
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
}

TEST_F(GrpcServerTest, MutualTls) {
  const std::string d = dir_.path();
  std::ofstream(d + "/ext.cnf") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  std::string script =
      "cd '" + d +
      "' && "
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem "
      "-days 2 -subj /CN=telkit-test-ca && "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr "
      "-subj /CN=localhost && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
      "-extfile ext.cnf && "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout client.key -out client.csr "
      "-subj /CN=client && "
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2";
  ASSERT_EQ(std::system(("(" + script + ") >/dev/null 2>&1").c_str()), 0);
  OtlpGrpcServerOptions options;
  options.tls = {dir_.File("server.pem"), dir_.File("server.key"), dir_.File("ca.pem")};
  Start({}, options);
  auto read = [](const std::string& path) { return ReadSmallFile(path).value(); };
  grpc::SslCredentialsOptions with_cert;
  with_cert.pem_root_certs = read(dir_.File("ca.pem"));
  with_cert.pem_private_key = read(dir_.File("client.key"));
  with_cert.pem_cert_chain = read(dir_.File("client.pem"));
  auto tls_channel = grpc::CreateChannel(target_, grpc::SslCredentials(with_cert));
  const std::string body = SampleRequest(Signal::kTraces, 1);
  auto ok = RawUnaryCall(tls_channel, ExportMethod(Signal::kTraces), body, false, "", 10);
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  grpc::SslCredentialsOptions without_cert;
  without_cert.pem_root_certs = read(dir_.File("ca.pem"));
  auto anonymous = grpc::CreateChannel(target_, grpc::SslCredentials(without_cert));
  EXPECT_FALSE(RawUnaryCall(anonymous, ExportMethod(Signal::kTraces), body, false, "", 5).status.ok());
}

}  // namespace
}  // namespace telkit
