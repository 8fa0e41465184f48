// Loki's HTTP API over a real store directory written with the real
// LogStore, read through LogReader as `tel-query serve` does, with real HTTP
// requests (cpp-httplib client) and a raw-socket WebSocket client for /tail.
#include "common/lokiapi/loki_api_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/fs/file_system.h"
#include "common/lokiapi/websocket.h"
#include "common/test_support/temp_dir.h"

namespace telkit::lokiapi {
namespace {

using Json = nlohmann::json;
constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kNow = int64_t{1'800'000'000} * kSec;
const char* kTrace = "0af7651916cd43dd8448eb211c80319c";

class LokiApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LogStoreOptions o;
    o.background = false;
    auto s = LogStore::Open(DefaultFileSystem(), dir_.path() + "/logs", o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    Push({{"service_name", "api"}, {"level", "info"}},
         {{kNow - 50 * kSec, "GET /users 200 12ms", {{"trace_id", kTrace}}},
          {kNow - 40 * kSec, "GET /orders 200 30ms", {}}});
    Push({{"service_name", "api"}, {"level", "error"}}, {{kNow - 30 * kSec, "GET /orders 500 340ms", {{"trace_id", kTrace}}}});
    Push({{"service_name", "db"}, {"level", "warn"}}, {{kNow - 20 * kSec, R"({"msg":"slow query","ms":900})", {}}});
    auto r = LogReader::Open(DefaultFileSystem(), dir_.path() + "/logs");
    ASSERT_TRUE(r.ok());
    LokiApiServerOptions so;
    so.listen = {"127.0.0.1", 0};
    so.api.now_ns = [this] { return now_.load(); };
    so.tail_poll_ms = 20;
    so.tail_max_seconds = 5;
    auto srv = StartLokiApi(so, std::shared_ptr<LogQuerier>(std::move(*r)));
    ASSERT_TRUE(srv.ok()) << srv.status().ToString();
    server_ = std::move(*srv);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (store_) (void)store_->Close();
  }
  void Push(Labels stream, std::vector<LogEntry> entries) {
    LogPush p{std::move(stream), std::move(entries)};
    auto r = store_->Push(std::span<const LogPush>(&p, 1));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->rejected_total(), 0u);
  }
  // GET path; returns status and body.
  std::pair<int, std::string> Get(const std::string& path) {
    auto res = client_->Get(path.c_str());
    if (!res) return {0, ""};
    return {res->status, res->body};
  }
  static std::string Enc(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        out.push_back(static_cast<char>(c));
      } else {
        char b[4];
        std::snprintf(b, sizeof b, "%%%02X", c);
        out += b;
      }
    }
    return out;
  }

  test_support::TempDir dir_{true};
  std::unique_ptr<LogStore> store_;
  std::unique_ptr<LokiApiServer> server_;
  std::unique_ptr<httplib::Client> client_;
  std::atomic<int64_t> now_{kNow};
};

TEST_F(LokiApiTest, QueryRangeStreamsAsLoki) {
  auto [code, body] = Get("/loki/api/v1/query_range?query=" + Enc(R"({service_name="api"} |= "orders")") +
                          "&start=1799999900&end=1800000000&limit=10&direction=forward");
  ASSERT_EQ(code, 200) << body;
  Json j = Json::parse(body);
  EXPECT_EQ(j["status"], "success");
  EXPECT_EQ(j["data"]["resultType"], "streams");
  EXPECT_EQ(j["data"]["result"].dump(),
            R"([{"stream":{"level":"error","service_name":"api","trace_id":"0af7651916cd43dd8448eb211c80319c"},"values":[["1799999970000000000","GET /orders 500 340ms"]]},{"stream":{"level":"info","service_name":"api"},"values":[["1799999960000000000","GET /orders 200 30ms"]]}])");
  EXPECT_TRUE(j["data"]["stats"]["summary"].contains("execTime"));
  EXPECT_EQ(j["data"]["stats"]["summary"]["totalLinesProcessed"], 2);
  EXPECT_FALSE(j["data"].contains("encodingFlags"));
}

TEST_F(LokiApiTest, MetricQueriesVectorMatrixScalar) {
  auto [c1, b1] = Get("/loki/api/v1/query?query=" + Enc(R"(sum by (level) (count_over_time({service_name=~".+"}[1m])))") +
                      "&time=1800000000");
  ASSERT_EQ(c1, 200) << b1;
  Json j = Json::parse(b1);
  EXPECT_EQ(j["data"]["resultType"], "vector");
  EXPECT_EQ(j["data"]["result"].dump(),
            R"([{"metric":{"level":"error"},"value":[1800000000,"1"]},{"metric":{"level":"info"},"value":[1800000000,"2"]},{"metric":{"level":"warn"},"value":[1800000000,"1"]}])");
  auto [c2, b2] = Get("/loki/api/v1/query_range?query=" + Enc(R"(sum(count_over_time({service_name="api"}[30s])))") +
                      "&start=1799999940&end=1800000000&step=30s");
  ASSERT_EQ(c2, 200) << b2;
  EXPECT_EQ(Json::parse(b2)["data"]["result"].dump(),
            R"([{"metric":{},"values":[[1799999970,"3"]]}])");
  // Grafana's health check.
  auto [c3, b3] = Get("/loki/api/v1/query?query=" + Enc("vector(1)+vector(1)") + "&time=1800000000000000000");
  ASSERT_EQ(c3, 200) << b3;
  EXPECT_EQ(Json::parse(b3)["data"]["result"].dump(), R"([{"metric":{},"value":[1800000000,"2"]}])");
  auto [c4, b4] = Get("/loki/api/v1/query?query=" + Enc("1+1") + "&time=1800000000.5");
  ASSERT_EQ(c4, 200) << b4;
  EXPECT_EQ(Json::parse(b4)["data"]["resultType"], "scalar");
  EXPECT_EQ(Json::parse(b4)["data"]["result"].dump(), R"([1800000000.5,"2"])");
}

TEST_F(LokiApiTest, ErrorsArePlainTextWithLokiCodes) {
  auto [c1, b1] = Get("/loki/api/v1/query_range?query=" + Enc(R"({service_name="api"} |= )"));
  EXPECT_EQ(c1, 400);
  EXPECT_EQ(b1, "parse error at line 1, col 25: syntax error: unexpected end of input\n");
  auto [c2, b2] = Get("/loki/api/v1/query?query=" + Enc(R"({service_name="api"})"));
  EXPECT_EQ(c2, 400);
  EXPECT_EQ(b2, "log queries are not supported as an instant query type, please change your query to a range query "
                "type\n");
  auto [c3, b3] = Get("/loki/api/v1/query_range?query=" + Enc(R"({service_name="api"})") + "&limit=6000");
  EXPECT_EQ(c3, 400);
  EXPECT_EQ(b3, "max entries limit per query exceeded, limit > max_entries_limit (6000 > 5000)\n");
  auto [c4, b4] = Get("/loki/api/v1/query_range?query=" + Enc(R"(count_over_time({service_name="db"} | json | unwrap msg [1m]))"));
  EXPECT_EQ(c4, 400);
  auto [c5, b5] = Get("/loki/api/v1/query_range?query=" + Enc(R"(sum(count_over_time({service_name="db"} | logfmt | x > 1 [1m])))") + "&start=notatime");
  EXPECT_EQ(c5, 400);
  EXPECT_NE(b5.find("cannot parse \"notatime\""), std::string::npos);
  auto [c6, b6] = Get("/loki/api/v1/nope");
  EXPECT_EQ(c6, 404);
  EXPECT_EQ(server_->counters().client_errors.load(), 6u);
}

TEST_F(LokiApiTest, LabelsValuesSeriesStatsBuildinfoReady) {
  auto [c1, b1] = Get("/loki/api/v1/labels?start=1799999000&end=1800000000");
  ASSERT_EQ(c1, 200);
  EXPECT_EQ(b1, R"({"status":"success","data":["level","service_name"]})");
  auto [c2, b2] = Get("/loki/api/v1/label/level/values?start=1799999000&end=1800000000&query=" +
                      Enc(R"({service_name="api"})"));
  EXPECT_EQ(b2, R"({"status":"success","data":["error","info"]})");
  auto [c3, b3] = Get("/loki/api/v1/series?match[]=" + Enc(R"({level=~"warn|error"})") +
                      "&start=1799999000&end=1800000000");
  EXPECT_EQ(b3, R"({"status":"success","data":[{"level":"error","service_name":"api"},{"level":"warn","service_name":"db"}]})");
  auto [c4, b4] = Get("/loki/api/v1/index/stats?query=" + Enc(R"({service_name="api"})") +
                      "&start=1799999000&end=1800000000");
  Json s = Json::parse(b4);
  EXPECT_EQ(s["streams"], 2);
  EXPECT_EQ(s["entries"], 3);
  EXPECT_GT(s["bytes"].get<int>(), 50);
  auto [c5, b5] = Get("/loki/api/v1/status/buildinfo");
  EXPECT_EQ(c5, 200);
  EXPECT_EQ(Json::parse(b5)["version"], TELKIT_VERSION);
  auto [c6, b6] = Get("/ready");
  EXPECT_EQ(c6, 200);
  EXPECT_EQ(b6, "ready\n");
}

// What Grafana's Loki data source sends (Explore and dashboards, Grafana 10
// and 11): health check, label browser, a log query with its volume
// histogram and the query-size estimate, a metric panel, POST forms.
TEST_F(LokiApiTest, GrafanaRequestsReplay) {
  const std::string start = "1799996400000000000", end = "1800000000000000000";
  struct Req {
    std::string path;
    int status;
    std::string want_in_body;
  } reqs[] = {
      {"/loki/api/v1/query?query=vector%281%29%2Bvector%281%29&time=" + end, 200, R"("resultType":"vector")"},
      {"/loki/api/v1/labels?start=" + start + "&end=" + end, 200, R"("service_name")"},
      {"/loki/api/v1/label/service_name/values?start=" + start + "&end=" + end, 200, R"(["api","db"])"},
      {"/loki/api/v1/series?match%5B%5D=" + Enc(R"({service_name="api"})") + "&start=" + start + "&end=" + end, 200,
       R"({"level":"info","service_name":"api"})"},
      {"/loki/api/v1/index/stats?query=" + Enc(R"({service_name="api"})") + "&start=" + start + "&end=" + end, 200,
       R"("entries":3)"},
      {"/loki/api/v1/query_range?direction=backward&end=" + end + "&limit=1000&query=" +
           Enc(R"({service_name="api"} |= `orders` | logfmt)") + "&start=" + start + "&step=2000ms",
       200, R"("resultType":"streams")"},
      {"/loki/api/v1/query_range?direction=backward&end=" + end + "&query=" +
           Enc(R"(sum by (level) (count_over_time({service_name="api"} | drop __error__[2s])))") + "&start=" + start +
           "&step=2000ms",
       200, R"("resultType":"matrix")"},
      {"/loki/api/v1/query_range?direction=backward&end=" + end + "&query=" +
           Enc(R"(sum by (service_name) (rate({service_name=~".+"} | json | __error__="" [$__auto])))") + "&start=" +
           start + "&step=60",
       400, "parse error"},
      {"/loki/api/v1/query_range?direction=backward&end=" + end + "&query=" +
           Enc(R"(sum by (service_name) (rate({service_name=~".+"}[1m])))") + "&start=" + start + "&step=60",
       200, R"({"metric":{"service_name":"db"})"},
  };
  for (const Req& r : reqs) {
    auto [code, body] = Get(r.path);
    EXPECT_EQ(code, r.status) << r.path << "\n" << body;
    EXPECT_NE(body.find(r.want_in_body), std::string::npos) << r.path << "\n" << body;
  }
  // Grafana's "POST" HTTP method setting sends a form.
  auto res = client_->Post("/loki/api/v1/query_range",
                           "query=" + Enc(R"({service_name="db"})") + "&start=" + start + "&end=" + end + "&limit=5",
                           "application/x-www-form-urlencoded");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find(R"(slow query)"), std::string::npos);
}

// A minimal WebSocket client: handshake, then frames until close.
struct WsClient {
  int fd = -1;
  std::string buf;
  ~WsClient() {
    if (fd >= 0) close(fd);
  }
  bool Connect(int port, const std::string& target, std::string* response_head) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req = "GET " + target +
                      " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return false;
    while (buf.find("\r\n\r\n") == std::string::npos) {
      if (!Fill()) return false;
    }
    size_t e = buf.find("\r\n\r\n");
    *response_head = buf.substr(0, e);
    buf.erase(0, e + 4);
    return true;
  }
  bool Fill() {
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
    return true;
  }
  // Next frame: opcode and payload; false at EOF.
  bool Frame(int* op, std::string* payload) {
    while (buf.size() < 2) {
      if (!Fill()) return false;
    }
    size_t len = static_cast<unsigned char>(buf[1]) & 0x7F, hdr = 2;
    if (len == 126) {
      while (buf.size() < 4) {
        if (!Fill()) return false;
      }
      len = (static_cast<size_t>(static_cast<unsigned char>(buf[2])) << 8) | static_cast<unsigned char>(buf[3]);
      hdr = 4;
    }
    while (buf.size() < hdr + len) {
      if (!Fill()) return false;
    }
    *op = static_cast<unsigned char>(buf[0]) & 0x0F;
    *payload = buf.substr(hdr, len);
    buf.erase(0, hdr + len);
    return true;
  }
};

TEST_F(LokiApiTest, TailIsAWebSocketOfNewLines) {
  WsClient ws;
  std::string head;
  ASSERT_TRUE(ws.Connect(server_->port(),
                         "/loki/api/v1/tail?query=" + Enc(R"({service_name="api"})") + "&start=1799999900&limit=2",
                         &head));
  EXPECT_NE(head.find("HTTP/1.1 101"), std::string::npos) << head;
  // RFC 6455 section 1.3's example key and accept value.
  EXPECT_NE(head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos) << head;
  int op = 0;
  std::string payload;
  ASSERT_TRUE(ws.Frame(&op, &payload));
  EXPECT_EQ(op, 1);
  Json first = Json::parse(payload);
  EXPECT_EQ(first["dropped_entries"], nullptr);
  std::string all = first["streams"].dump();
  EXPECT_NE(all.find("GET /orders 200 30ms"), std::string::npos) << all;  // the newest two
  EXPECT_NE(all.find("GET /orders 500 340ms"), std::string::npos) << all;
  EXPECT_EQ(all.find("GET /users"), std::string::npos) << all;
  // A line written now arrives in the next frame.
  now_ = kNow + 10 * kSec;
  Push({{"service_name", "api"}, {"level", "info"}}, {{kNow + 5 * kSec, "GET /new 201 1ms", {}}});
  ASSERT_TRUE(ws.Frame(&op, &payload));
  EXPECT_EQ(op, 1);
  EXPECT_EQ(Json::parse(payload)["streams"].dump(),
            R"([{"stream":{"level":"info","service_name":"api"},"values":[["1800000005000000000","GET /new 201 1ms"]]}])");
  EXPECT_EQ(server_->counters().tails_active.load(), 1u);
  // Stopping the server ends the tail with a close frame.
  std::thread stopper([&] { server_->Stop(); });
  bool closed = false;
  while (ws.Frame(&op, &payload)) {
    if (op == 8) {
      closed = true;
      EXPECT_EQ(payload.substr(0, 2), std::string("\x03\xE8", 2));
      break;
    }
  }
  stopper.join();
  EXPECT_TRUE(closed);
}

TEST_F(LokiApiTest, TailRefusesPlainHttpAndMetricQueries) {
  auto [c1, b1] = Get("/loki/api/v1/tail?query=" + Enc(R"({service_name="api"})"));
  EXPECT_EQ(c1, 400);
  EXPECT_NE(b1.find("not using the websocket protocol"), std::string::npos);
  WsClient ws;
  std::string head;
  ASSERT_TRUE(ws.Connect(server_->port(), "/loki/api/v1/tail?query=" + Enc(R"(rate({a="b"}[1m]))"), &head));
  EXPECT_NE(head.find("HTTP/1.1 400"), std::string::npos) << head;
}

TEST(WebSocket, FramesAndAcceptKey) {
  EXPECT_EQ(WebSocketAccept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(Base64(Sha1("abc")), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
  EXPECT_EQ(EncodeWsFrame(WsOpcode::kText, "hi"), std::string("\x81\x02hi", 4));
  EXPECT_EQ(EncodeWsFrame(WsOpcode::kPing, ""), std::string("\x89\x00", 2));
  std::string big(300, 'x');
  EXPECT_EQ(EncodeWsFrame(WsOpcode::kText, big).substr(0, 4), std::string("\x81\x7e\x01\x2c", 4));
  std::string huge(70000, 'y');
  EXPECT_EQ(EncodeWsFrame(WsOpcode::kText, huge).substr(0, 10), std::string("\x81\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10));
  EXPECT_EQ(EncodeWsClose(1000, "bye"), std::string("\x88\x05\x03\xe8" "bye", 7));
}

TEST(LokiTime, Formats) {
  EXPECT_EQ(*ParseLokiTime("1800000000"), 1800000000 * kSec);
  EXPECT_EQ(*ParseLokiTime("1800000000123456789"), 1800000000123456789);
  EXPECT_EQ(*ParseLokiTime("1800000000.25"), 1800000000 * kSec + 250000000);
  EXPECT_EQ(*ParseLokiTime("2027-01-15T08:00:00.000000001Z"), kNow + 1);
  EXPECT_FALSE(ParseLokiTime("soon").ok());
  EXPECT_EQ(*ParseLokiDuration("2000ms"), 2 * kSec);
  EXPECT_EQ(*ParseLokiDuration("60"), 60 * kSec);
  EXPECT_EQ(*ParseLokiDuration("0.5"), kSec / 2);
  EXPECT_FALSE(ParseLokiDuration("0").ok());
}

}  // namespace
}  // namespace telkit::lokiapi
