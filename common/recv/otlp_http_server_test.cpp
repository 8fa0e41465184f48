#include "common/recv/otlp_http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/codec/gzip.h"
#include "common/codec/snappy.h"
#include "common/prom/remote_write.h"
#include "common/recv/recv_testing.h"
#include "common/stream/stream_input.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

using testing::SampleRequest;
using testing::SampleRequestJson;
using namespace std::chrono_literals;

constexpr char kProtobuf[] = "application/x-protobuf";

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "recv_http_test_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

double Metric(const MetricsRegistry& registry, const std::string& series) {
  std::string text = registry.ExpositionText();
  size_t pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(text.substr(pos + series.size() + 2));
}

double Refused(const MetricsRegistry& registry, const std::string& reason) {
  return Metric(registry, "otlp_recv_refused_requests_total{protocol=\"http\",reason=\"" + reason + "\"}");
}

// Sends raw bytes on a fresh connection, then reads until the peer closes
// or `read_limit` bytes (bounded by a 10 s receive timeout).
std::string RawExchange(int port, const std::string& bytes, bool close_after_send = false,
                        size_t read_limit = 1 << 16) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  (void)!send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string out;
  if (!close_after_send) {
    char buf[4096];
    while (out.size() < read_limit) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
      // Stop after one whole response (the server may keep the connection).
      size_t end = out.find("\r\n\r\n");
      size_t length = out.find("Content-Length: ");
      if (end != std::string::npos && length != std::string::npos && length < end &&
          out.size() >= end + 4 + std::stoul(out.substr(length + 16))) {
        break;
      }
    }
  }
  close(fd);
  return out;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override { signal(SIGPIPE, SIG_IGN); }

  void Start(OtlpReceiverOptions receiver_options = {}, OtlpHttpServerOptions server_options = {},
             const BearerTokenCheck* auth = nullptr, std::string output_spec = "",
             StreamOutputOptions output_options = {}) {
    if (output_spec.empty()) output_spec = out_path_;
    auto output = OpenStreamOutput(output_spec, output_options);
    ASSERT_TRUE(output.ok()) << output.status().ToString();
    receiver_ = std::make_unique<OtlpReceiver>(receiver_options, std::move(*output), registry_);
    server_options.listen = {"127.0.0.1", 0};
    auto server = OtlpHttpServer::Start(server_options, *receiver_, auth);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(30, 0);
  }

  void TearDown() override {
    if (server_) server_->Stop();
    if (receiver_) (void)receiver_->Shutdown(5s);
  }

  std::vector<Frame> StopAndReadFrames() {
    server_->Stop();
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

  // Waits (bounded) until the counter reaches `value`: the server may still
  // be finishing a connection the client already gave up on.
  bool WaitForRefused(const std::string& reason, double value) {
    for (int i = 0; i < 10000; ++i) {
      if (Refused(registry_, reason) >= value) return true;
      std::this_thread::sleep_for(1ms);
    }
    return false;
  }

  TempDir dir_;
  std::string out_path_ = dir_.File("out.tks");
  MetricsRegistry registry_;
  std::unique_ptr<OtlpReceiver> receiver_;
  std::unique_ptr<OtlpHttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpServerTest, AcceptsProtobufAndAnswersInProtobuf) {
  Start();
  const std::string body = SampleRequest(Signal::kTraces, 3);
  auto res = client_->Post("/v1/traces", body, kProtobuf);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), kProtobuf);
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse response;
  ASSERT_TRUE(response.ParseFromString(res->body));
  EXPECT_FALSE(response.has_partial_success());
  std::vector<Frame> frames = StopAndReadFrames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, body);
}

TEST_F(HttpServerTest, AcceptsJsonWithCharsetAndAnswersInJson) {
  Start();
  auto res = client_->Post("/v1/logs", SampleRequestJson(Signal::kLogs, 2), "application/json; charset=utf-8");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(res->body, "{}");
  std::vector<Frame> frames = StopAndReadFrames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, SampleRequest(Signal::kLogs, 2));
}

TEST_F(HttpServerTest, AcceptsGzip) {
  Start();
  const std::string body = SampleRequest(Signal::kMetrics, 4);
  httplib::Headers headers = {{"Content-Encoding", "gzip"}};
  auto res = client_->Post("/v1/metrics", headers, GzipCompress(body), kProtobuf);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  std::vector<Frame> frames = StopAndReadFrames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, body);
}

TEST_F(HttpServerTest, PartialSuccessInBothEncodings) {
  Start();
  auto res = client_->Post("/v1/traces", SampleRequest(Signal::kTraces, 2, 3), kProtobuf);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse response;
  ASSERT_TRUE(response.ParseFromString(res->body));
  EXPECT_EQ(response.partial_success().rejected_spans(), 3);
  EXPECT_NE(response.partial_success().error_message().find("3 invalid spans rejected"), std::string::npos);

  std::string json_with_invalid = R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[
      {"body":{"stringValue":"ok"}},{"body":{"stringValue":"bad"},"traceId":"abcd"}]}]}]})";
  auto json = client_->Post("/v1/logs", json_with_invalid, "application/json");
  ASSERT_TRUE(json);
  EXPECT_EQ(json->status, 200);
  EXPECT_NE(json->body.find("\"partialSuccess\""), std::string::npos) << json->body;
  EXPECT_NE(json->body.find("\"rejectedLogRecords\":\"1\""), std::string::npos) << json->body;
}

TEST_F(HttpServerTest, BadDataIs400WithStatusInTheRequestEncoding) {
  Start();
  std::string body = SampleRequest(Signal::kTraces, 3);
  auto truncated = client_->Post("/v1/traces", body.substr(0, body.size() - 5), kProtobuf);
  ASSERT_TRUE(truncated);
  EXPECT_EQ(truncated->status, 400);
  EXPECT_EQ(truncated->get_header_value("Content-Type"), kProtobuf);
  EXPECT_EQ(truncated->body.substr(0, 2), std::string("\x08\x03"));  // google.rpc.Status code 3
  EXPECT_NE(truncated->body.find("malformed protobuf"), std::string::npos);

  auto bad_json = client_->Post("/v1/traces", "{\"resourceSpans\":", "application/json");
  ASSERT_TRUE(bad_json);
  EXPECT_EQ(bad_json->status, 400);
  EXPECT_EQ(bad_json->body.rfind("{\"code\":3,\"message\":\"invalid OTLP/JSON traces request", 0), 0u)
      << bad_json->body;
  EXPECT_EQ(Refused(registry_, "bad_data"), 2);

  // The daemon still serves.
  auto good = client_->Post("/v1/traces", body, kProtobuf);
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
}

TEST_F(HttpServerTest, UnsupportedContentTypeAndEncodingAre415) {
  Start();
  auto text = client_->Post("/v1/traces", "hello", "text/plain");
  ASSERT_TRUE(text);
  EXPECT_EQ(text->status, 415);
  EXPECT_NE(text->body.find("unsupported content type 'text/plain'"), std::string::npos);
  httplib::Headers brotli = {{"Content-Encoding", "br"}};
  auto br = client_->Post("/v1/traces", brotli, "xx", kProtobuf);
  ASSERT_TRUE(br);
  EXPECT_EQ(br->status, 415);
  auto multipart = client_->Post("/v1/traces", "--x\r\n\r\nhello\r\n--x--\r\n", "multipart/form-data; boundary=x");
  ASSERT_TRUE(multipart);
  EXPECT_EQ(multipart->status, 415);
  EXPECT_EQ(Refused(registry_, "unsupported_media_type"), 2);
  EXPECT_EQ(Refused(registry_, "unsupported_encoding"), 1);
  // The refused bodies were read: the same keep-alive connection goes on.
  auto good = client_->Post("/v1/traces", SampleRequest(Signal::kTraces, 1), kProtobuf);
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
}

// A remote-write body: `n` series of 2 samples each, the first `bad` of them
// with an invalid metric name.
std::string RemoteWriteBody(int n, int bad = 0) {
  std::vector<TimeSeries> series;
  for (int i = 0; i < n; ++i) {
    series.push_back({Labels{{"__name__", i < bad ? "0bad" : "rw_test"}, {"i", std::to_string(i)}},
                      {{1000, 1.0 * i}, {2000, 2.0 * i}},
                      {}});
  }
  std::vector<MetricMetadata> metadata = {{"rw_test", MetricFamilyType::kGauge, "A test.", ""}};
  return EncodeWriteRequest(series, metadata);
}

const httplib::Headers kSnappy = {{"Content-Encoding", "snappy"},
                                  {"X-Prometheus-Remote-Write-Version", "0.1.0"}};

TEST_F(HttpServerTest, RemoteWriteIsForwardedAsOnePromRwFrame) {
  Start();
  const std::string body = RemoteWriteBody(3);
  auto res = client_->Post("/api/v1/write", kSnappy, SnappyCompress(body), kProtobuf);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 204) << res->body;
  EXPECT_EQ(res->body, "");
  EXPECT_EQ(Metric(registry_, R"(otlp_recv_received_items_total{protocol="http",signal="prom-rw"})"), 6);
  EXPECT_EQ(Metric(registry_, R"(otlp_recv_accepted_requests_total{protocol="http",signal="prom-rw"})"), 1);
  std::vector<Frame> frames = StopAndReadFrames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].signal, static_cast<uint8_t>(Signal::kPrometheusRemoteWrite));
  EXPECT_EQ(frames[0].payload, body);  // uncompressed, byte for byte
}

TEST_F(HttpServerTest, RemoteWriteDropsBadSeriesAndCountsThem) {
  Start();
  auto res = client_->Post("/api/v1/write", kSnappy, SnappyCompress(RemoteWriteBody(3, 2)),
                           "application/x-protobuf;proto=prometheus.WriteRequest");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 204) << res->body;
  EXPECT_EQ(Metric(registry_, R"(otlp_recv_rejected_items_total{protocol="http",signal="prom-rw"})"), 4);
  EXPECT_EQ(Metric(registry_, R"(otlp_recv_prom_rw_rejected_series_total{reason="invalid_metric_name"})"), 2);
  std::vector<Frame> frames = StopAndReadFrames();
  ASSERT_EQ(frames.size(), 1u);
  Result<DecodedWriteRequest> forwarded = DecodeWriteRequest(frames[0].payload);
  ASSERT_TRUE(forwarded.ok());
  ASSERT_EQ(forwarded->series.size(), 1u);
  EXPECT_EQ(forwarded->series[0].labels.Get("i"), "2");
  EXPECT_EQ(forwarded->metadata.size(), 1u);
}

TEST_F(HttpServerTest, RemoteWriteRefusals) {
  OtlpReceiverOptions options;
  options.max_request_bytes = 1 << 16;
  options.max_decompressed_bytes = 1 << 17;
  options.queue_capacity_bytes = 1 << 20;
  Start(options);
  const std::string body = RemoteWriteBody(2);
  // Snappy that is not snappy, and snappy of bytes that are not a WriteRequest: 400 in plain text.
  auto corrupt = client_->Post("/api/v1/write", kSnappy, "\x05\x10hel", kProtobuf);
  ASSERT_TRUE(corrupt);
  EXPECT_EQ(corrupt->status, 400);
  EXPECT_EQ(corrupt->get_header_value("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_NE(corrupt->body.find("invalid snappy body"), std::string::npos) << corrupt->body;
  auto not_proto = client_->Post("/api/v1/write", kSnappy, SnappyCompress("\xff\xff\xff"), kProtobuf);
  ASSERT_TRUE(not_proto);
  EXPECT_EQ(not_proto->status, 400);
  EXPECT_NE(not_proto->body.find("malformed remote-write request"), std::string::npos) << not_proto->body;
  // A block that declares more than the decompressed limit: 413 before inflating.
  auto bomb = client_->Post("/api/v1/write", kSnappy, SnappyCompress(std::string((1 << 17) + 1, 'x')), kProtobuf);
  ASSERT_TRUE(bomb);
  EXPECT_EQ(bomb->status, 413);
  auto big = client_->Post("/api/v1/write", kSnappy, std::string((1 << 16) + 1, 'x'), kProtobuf);
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  // Another content type or encoding: 415; remote write 2.0 is not spoken.
  auto json = client_->Post("/api/v1/write", kSnappy, SnappyCompress(body), "application/json");
  ASSERT_TRUE(json);
  EXPECT_EQ(json->status, 415);
  auto v2 = client_->Post("/api/v1/write", kSnappy, SnappyCompress(body),
                          "application/x-protobuf;proto=io.prometheus.write.v2.Request");
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->status, 415);
  auto plain = client_->Post("/api/v1/write", body, kProtobuf);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 415);
  EXPECT_NE(plain->body.find("remote write takes snappy"), std::string::npos) << plain->body;
  // Snappy on an OTLP path is refused.
  auto otlp = client_->Post("/v1/metrics", kSnappy, SnappyCompress(SampleRequest(Signal::kMetrics, 1)), kProtobuf);
  ASSERT_TRUE(otlp);
  EXPECT_EQ(otlp->status, 415);
  EXPECT_EQ(Refused(registry_, "bad_data"), 2);
  EXPECT_EQ(Refused(registry_, "decompressed_too_large"), 1);
  EXPECT_EQ(Refused(registry_, "too_large"), 1);
  EXPECT_EQ(Refused(registry_, "unsupported_media_type"), 2);
  EXPECT_EQ(Refused(registry_, "unsupported_encoding"), 2);
  // Still serving, on the same connection.
  auto good = client_->Post("/api/v1/write", kSnappy, SnappyCompress(body), kProtobuf);
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 204);
  std::vector<Frame> frames = StopAndReadFrames();
  ASSERT_EQ(frames.size(), 1u);
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  Start();
  auto missing = client_->Post("/v1/profiles", "x", kProtobuf);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto get = client_->Get("/v1/traces");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 405);
  EXPECT_EQ(get->get_header_value("Allow"), "POST");
  auto put = client_->Put("/v1/traces", "x", kProtobuf);
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 405);
  auto root = client_->Get("/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 404);
  EXPECT_EQ(Refused(registry_, "not_found"), 2);
  EXPECT_EQ(Refused(registry_, "method_not_allowed"), 2);
}

TEST_F(HttpServerTest, BodyOverTheLimitIs413) {
  OtlpReceiverOptions options;
  options.max_request_bytes = 4096;
  Start(options);
  auto big = client_->Post("/v1/traces", SampleRequest(Signal::kTraces, 1, 0, 8192), kProtobuf);
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  // Chunked, so that no Content-Length announces it: stopped while reading.
  auto chunked = client_->Post(
      "/v1/traces",
      [](size_t offset, httplib::DataSink& sink) {
        if (offset >= 20000) {
          sink.done();
          return true;
        }
        std::string chunk(1000, 'x');
        return sink.write(chunk.data(), chunk.size());
      },
      kProtobuf);
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 413);
  EXPECT_EQ(Refused(registry_, "too_large"), 2);
  // The refused bodies were read and dropped: the connection goes on.
  auto good = client_->Post("/v1/traces", SampleRequest(Signal::kTraces, 1), kProtobuf);
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
}

TEST_F(HttpServerTest, GzipBombIs413) {
  OtlpReceiverOptions options;
  options.max_request_bytes = 1 << 20;
  options.max_decompressed_bytes = 4 << 20;
  Start(options);
  httplib::Headers headers = {{"Content-Encoding", "gzip"}};
  auto res = client_->Post("/v1/logs", headers, GzipCompress(std::string(32 << 20, 'a'), 9), kProtobuf);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(Refused(registry_, "decompressed_too_large"), 1);
}

TEST_F(HttpServerTest, ExpectContinueGetsTheRefusalBeforeTheBody) {
  OtlpReceiverOptions options;
  options.max_request_bytes = 4096;
  Start(options);
  std::string answer = RawExchange(server_->port(),
                                   "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                                   "Content-Length: 100000000\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer;
  EXPECT_EQ(Refused(registry_, "too_large"), 1);
}

TEST_F(HttpServerTest, ClientThatDisconnectsMidRequestDoesNotHurt) {
  Start();
  RawExchange(server_->port(),
              "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
              "Content-Length: 1000\r\n\r\n0123456789",
              /*close_after_send=*/true);
  EXPECT_TRUE(WaitForRefused("aborted", 1));
  // Garbage instead of HTTP.
  std::string answer = RawExchange(server_->port(), "\x16\x03\x01 not http at all\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
  EXPECT_TRUE(WaitForRefused("bad_http", 1));
  auto good = client_->Post("/v1/traces", SampleRequest(Signal::kTraces, 1), kProtobuf);
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
  EXPECT_EQ(Metric(registry_, "otlp_recv_in_flight_requests{protocol=\"http\"}"), 0);
}

TEST_F(HttpServerTest, BearerToken) {
  std::string token_file = dir_.File("token");
  std::ofstream(token_file) << "t0ken\n";
  auto auth = BearerTokenCheck::FromFile(token_file);
  ASSERT_TRUE(auth.ok());
  Start({}, {}, auth->get());
  const std::string body = SampleRequest(Signal::kTraces, 1);
  auto none = client_->Post("/v1/traces", body, kProtobuf);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("WWW-Authenticate"), "Bearer");
  httplib::Headers wrong = {{"Authorization", "Bearer nope"}};
  auto bad = client_->Post("/v1/traces", wrong, body, kProtobuf);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  httplib::Headers right = {{"Authorization", "Bearer t0ken"}};
  auto ok = client_->Post("/v1/traces", right, body, kProtobuf);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(Refused(registry_, "unauthenticated"), 2);
}

TEST_F(HttpServerTest, FullQueueIs503WithRetryAfter) {
  OtlpReceiverOptions options;
  options.max_request_bytes = 64 << 10;
  options.max_decompressed_bytes = 64 << 10;
  options.queue_capacity_bytes = 64 << 10;
  options.retry_after_seconds = 7;
  StreamOutputOptions output_options;
  output_options.max_unacked_bytes = 1;
  Start(options, {}, nullptr, "listen:unix:" + dir_.File("nobody.sock"), output_options);
  const std::string body = SampleRequest(Signal::kTraces, 1, 0, 10 << 10);
  int status = 0;
  std::string retry_after;
  for (int i = 0; i < 100 && status != 503; ++i) {
    auto res = client_->Post("/v1/traces", body, kProtobuf);
    ASSERT_TRUE(res);
    status = res->status;
    retry_after = res->get_header_value("Retry-After");
  }
  EXPECT_EQ(status, 503);
  EXPECT_EQ(retry_after, "7");
  EXPECT_EQ(Refused(registry_, "queue_full"), 1);
  server_->Stop();
  EXPECT_EQ(receiver_->Shutdown(100ms).code(), StatusCode::kDeadlineExceeded);
}

TEST_F(HttpServerTest, DrainingIs503) {
  Start();
  receiver_->StartDrain();
  auto res = client_->Post("/v1/traces", SampleRequest(Signal::kTraces, 1), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_FALSE(res->get_header_value("Retry-After").empty());
  EXPECT_EQ(Refused(registry_, "draining"), 1);
}

TEST_F(HttpServerTest, ManyConcurrentClients) {
  Start();
  const std::string body = SampleRequest(Signal::kTraces, 2);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 50; ++t) {
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", server_->port());
      client.set_read_timeout(60, 0);
      client.set_connection_timeout(60, 0);
      for (int i = 0; i < 4; ++i) {
        auto res = client.Post("/v1/traces", body, kProtobuf);
        if (res && res->status == 200) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(StopAndReadFrames().size(), 200u);
}

// ---- TLS, with certificates made by the openssl command.

bool MakeCertificates(const TempDir& dir) {
  const std::string d = dir.path();
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
  return std::system(("(" + script + ") >/dev/null 2>&1").c_str()) == 0;
}

TEST_F(HttpServerTest, TlsAndMutualTls) {
  ASSERT_TRUE(MakeCertificates(dir_));
  OtlpHttpServerOptions options;
  options.tls = {dir_.File("server.pem"), dir_.File("server.key"), dir_.File("ca.pem")};
  Start({}, options);
  const std::string body = SampleRequest(Signal::kTraces, 1);
  {
    httplib::SSLClient client("127.0.0.1", server_->port(), dir_.File("client.pem"), dir_.File("client.key"));
    client.set_ca_cert_path(dir_.File("ca.pem").c_str());
    client.enable_server_certificate_verification(true);
    auto res = client.Post("/v1/traces", body, kProtobuf);
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
  }
  {
    httplib::SSLClient no_client_cert("127.0.0.1", server_->port());
    no_client_cert.set_ca_cert_path(dir_.File("ca.pem").c_str());
    auto res = no_client_cert.Post("/v1/traces", body, kProtobuf);
    EXPECT_FALSE(res);
  }
  {
    httplib::Client plain("127.0.0.1", server_->port());
    plain.set_read_timeout(5, 0);
    auto res = plain.Post("/v1/traces", body, kProtobuf);
    EXPECT_TRUE(!res || res->status != 200);
  }
}

TEST(HttpServerOptions, RefusesHalfTlsConfiguration) {
  MetricsRegistry registry;
  TempDir dir;
  auto output = OpenStreamOutput(dir.File("out"));
  ASSERT_TRUE(output.ok());
  OtlpReceiver receiver({}, std::move(*output), registry);
  OtlpHttpServerOptions options;
  options.listen = {"127.0.0.1", 0};
  options.tls.cert = dir.File("missing.pem");
  auto server = OtlpHttpServer::Start(options, receiver, nullptr);
  EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace telkit
