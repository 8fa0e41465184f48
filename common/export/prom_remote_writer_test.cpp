#include "common/export/prom_remote_writer.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/admin/metrics_registry.h"
#include "common/codec/snappy.h"
#include "common/prom/remote_write.h"
#include "common/recv/otlp_http_server.h"
#include "common/recv/otlp_receiver.h"
#include "common/stream/stream_input.h"
#include "common/stream/stream_output.h"

namespace telkit {
namespace {

std::string SampleWriteRequest() {
  TimeSeries ts{Labels{{"__name__", "writer_test"}, {"job", "t"}}, {{1000, 1}, {2000, 2}}, {}};
  return EncodeWriteRequest(std::span(&ts, 1));
}

// A receiver that answers with the statuses in `script`, then 204, and
// records what it got.
class ScriptedReceiver {
 public:
  explicit ScriptedReceiver(std::vector<int> script) : script_(std::move(script)) {
    server_.Post("/api/v1/write", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      requests_.push_back(req);
      const size_t n = requests_.size() - 1;
      res.status = n < script_.size() ? script_[n] : 204;
      if (res.status == 503) res.set_header("Retry-After", "0");
      if (res.status >= 400) res.set_content("nope\n", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 5000 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ScriptedReceiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/api/v1/write"; }
  std::vector<httplib::Request> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  std::vector<int> script_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<httplib::Request> requests_;
};

PromRemoteWriterOptions Options(const std::string& url) {
  PromRemoteWriterOptions o;
  o.url = url;
  o.initial_backoff_ms = 1;
  o.max_backoff_ms = 10;
  o.timeout_ms = 5000;
  return o;
}

TEST(PromRemoteWriter, SendsSnappyProtobufWithTheRemoteWriteHeaders) {
  ScriptedReceiver receiver({});
  auto writer = PromRemoteWriter::Create(Options(receiver.url()));
  ASSERT_TRUE(writer.ok());
  Result<int> attempts = (*writer)->Write(SampleWriteRequest());
  ASSERT_TRUE(attempts.ok()) << attempts.status().ToString();
  EXPECT_EQ(*attempts, 1);
  auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].get_header_value("Content-Type"), "application/x-protobuf");
  EXPECT_EQ(requests[0].get_header_value("X-Prometheus-Remote-Write-Version"), "0.1.0");
  Result<std::string> body = SnappyDecompress(requests[0].body, 1 << 20);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, SampleWriteRequest());
}

TEST(PromRemoteWriter, RetriesOnlyServerErrorsAnd429) {
  ScriptedReceiver retried({503, 500, 429});
  auto writer = PromRemoteWriter::Create(Options(retried.url()));
  Result<int> attempts = (*writer)->Write(SampleWriteRequest());
  ASSERT_TRUE(attempts.ok()) << attempts.status().ToString();
  EXPECT_EQ(*attempts, 4);

  ScriptedReceiver refused({400});
  writer = PromRemoteWriter::Create(Options(refused.url()));
  attempts = (*writer)->Write(SampleWriteRequest());
  EXPECT_EQ(attempts.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(attempts.status().message().find("HTTP 400: nope"), std::string::npos) << attempts.status().message();
  EXPECT_EQ(refused.requests().size(), 1u);

  ScriptedReceiver down({503, 503, 503, 503, 503, 503});
  writer = PromRemoteWriter::Create(Options(down.url()));
  attempts = (*writer)->Write(SampleWriteRequest());
  EXPECT_EQ(attempts.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(down.requests().size(), 5u);  // max_attempts
}

TEST(PromRemoteWriter, ConnectionErrorsAreUnavailable) {
  // A port that was free a moment ago and has nothing listening now.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  const int port = ntohs(addr.sin_port);
  PromRemoteWriterOptions o = Options("http://127.0.0.1:" + std::to_string(port) + "/api/v1/write");
  o.max_attempts = 2;
  auto writer = PromRemoteWriter::Create(o);
  Result<int> attempts = (*writer)->Write(SampleWriteRequest());
  EXPECT_EQ(attempts.status().code(), StatusCode::kUnavailable);
}

TEST(PromRemoteWriter, BadUrlsAreRefused) {
  EXPECT_EQ(PromRemoteWriter::Create(Options("ftp://x/y")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PromRemoteWriter::Create(Options("http://")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(PromRemoteWriter::Create(Options("http://host:9090")).ok());
}

// The real receiver on the other side: otlp-recv's own remote-write endpoint.
TEST(PromRemoteWriter, OtlpRecvTakesWhatItSends) {
  signal(SIGPIPE, SIG_IGN);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("prw_test_" + std::to_string(getpid()) + ".tks")).string();
  MetricsRegistry registry;
  {
    auto output = OpenStreamOutput(path, {});
    ASSERT_TRUE(output.ok());
    OtlpReceiver receiver({}, std::move(*output), registry);
    OtlpHttpServerOptions server_options;
    server_options.listen = {"127.0.0.1", 0};
    auto server = OtlpHttpServer::Start(server_options, receiver, nullptr);
    ASSERT_TRUE(server.ok());
    auto writer =
        PromRemoteWriter::Create(Options("http://127.0.0.1:" + std::to_string((*server)->port()) + "/api/v1/write"));
    Result<int> attempts = (*writer)->Write(SampleWriteRequest());
    ASSERT_TRUE(attempts.ok()) << attempts.status().ToString();
    (*server)->Stop();
    ASSERT_TRUE(receiver.Shutdown(std::chrono::seconds(5)).ok());
  }
  auto input = OpenStreamInput(path);
  ASSERT_TRUE(input.ok());
  auto frame = (*input)->Next();
  ASSERT_TRUE(frame.ok() && frame->has_value());
  EXPECT_EQ((*frame)->signal, static_cast<uint8_t>(Signal::kPrometheusRemoteWrite));
  EXPECT_EQ((*frame)->payload, SampleWriteRequest());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace telkit
