#include "common/recv/loki_push.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <random>
#include <thread>

#include "common/codec/gzip.h"
#include "common/codec/snappy.h"
#include "common/logstore/otlp_logs.h"
#include "common/recv/otlp_http_server.h"
#include "common/stream/stream_input.h"
#include "common/test_support/temp_dir.h"
#include "loki/push.pb.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"

namespace telkit {
namespace {

using namespace std::chrono_literals;
using opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest;

constexpr char kJson[] = "application/json";
constexpr char kProtobuf[] = "application/x-protobuf";

// A PushRequest written with the generated classes (as a Go client would).
std::string ProtoPush(const std::string& labels, const std::vector<std::pair<int64_t, std::string>>& lines,
                      const std::vector<std::pair<std::string, std::string>>& metadata = {}) {
  logproto::PushRequest req;
  auto* s = req.add_streams();
  s->set_labels(labels);
  for (const auto& [ts, line] : lines) {
    auto* e = s->add_entries();
    e->mutable_timestamp()->set_seconds(ts / 1'000'000'000);
    e->mutable_timestamp()->set_nanos(static_cast<int32_t>(ts % 1'000'000'000));
    e->set_line(line);
    for (const auto& [k, v] : metadata) {
      auto* m = e->add_structuredmetadata();
      m->set_name(k);
      m->set_value(v);
    }
  }
  return req.SerializeAsString();
}

TEST(LokiPush, ParsesLabelText) {
  auto l = ParseLokiLabels(R"( {job="api", env = "prod\"x\\y\n"} )");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].name, "job");
  EXPECT_EQ((*l)[1].value, "prod\"x\\y\n");
  EXPECT_TRUE(ParseLokiLabels("{}").ok());
  for (const char* bad : {"", "job=\"x\"", "{job=\"x\"", "{job=x}", "{job=\"x\",}", "{=\"x\"}", "{a=\"\\q\"}",
                          "{a=\"b\"} x"}) {
    EXPECT_EQ(ParseLokiLabels(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(LokiPush, DecodesJsonWithStructuredMetadata) {
  auto d = DecodeLokiPushJson(R"({"streams":[{"stream":{"job":"api","env":"prod"},
      "values":[["1700000000000000001","hello"],["1700000000000000002","world",{"trace_id":"abc","user":"u1"}]]}]})",
                              {});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(d->streams.size(), 1u);
  EXPECT_EQ(d->entries, 2);
  EXPECT_EQ(d->streams[0].labels, (Labels{{"env", "prod"}, {"job", "api"}}));
  const auto& e = d->streams[0].entries;
  EXPECT_EQ(e[0].ts_ns, 1700000000000000001);
  EXPECT_EQ(e[0].line, "hello");
  ASSERT_EQ(e[1].metadata.size(), 2u);
  EXPECT_EQ(e[1].metadata[0], (Label{"trace_id", "abc"}));
}

TEST(LokiPush, MalformedJsonFailsAsAWhole) {
  for (const char* bad : {"", "{", "[]", R"({"x":1})", R"({"streams":{}})", R"({"streams":[{"stream":{"a":1}}]})",
                          R"({"streams":[{"stream":{"a":"b"},"values":[["x","l"]]}]})",
                          R"({"streams":[{"stream":{"a":"b"},"values":[["1"]]}]})",
                          R"({"streams":[{"stream":{"a":"b"},"values":[["1",2]]}]})",
                          R"({"streams":[{"stream":{"a":"b"},"values":[["1","l",{"k":1}]]}]})",
                          R"({"streams":[{"stream":{"a":"b"},"values":[["99999999999999999999","l"]]}]})"}) {
    auto d = DecodeLokiPushJson(bad, {});
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(d.status().message().empty());
  }
}

TEST(LokiPush, JudgesStreamsAndEntriesLikeLoki) {
  LokiPushLimits limits;
  limits.max_line_bytes = 10;
  limits.max_labels_per_stream = 2;
  limits.max_label_value_bytes = 8;
  auto d = DecodeLokiPushJson(R"({"streams":[
      {"stream":{"ok":"1"},"values":[["1","short"],["2","this line is too long"]]},
      {"stream":{"bad-name":"1"},"values":[["1","a"],["2","b"]]},
      {"stream":{"__reserved":"1"},"values":[["1","a"]]},
      {"stream":{"a":"1","b":"2","c":"3"},"values":[["1","a"]]},
      {"stream":{"a":"123456789"},"values":[["1","a"]]},
      {"stream":{},"values":[["1","a"]]},
      {"stream":{"e":""},"values":[["1","a"]]}]})",
                              limits);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->entries, 1);
  EXPECT_EQ(d->rejected_entries, 8);
  EXPECT_EQ(d->rejected_by_reason[static_cast<int>(LokiReject::kLineTooLong)], 1);
  EXPECT_EQ(d->rejected_by_reason[static_cast<int>(LokiReject::kInvalidLabels)], 3);
  EXPECT_EQ(d->rejected_by_reason[static_cast<int>(LokiReject::kTooManyLabels)], 1);
  EXPECT_EQ(d->rejected_by_reason[static_cast<int>(LokiReject::kLabelTooLong)], 1);
  EXPECT_EQ(d->rejected_by_reason[static_cast<int>(LokiReject::kMissingLabels)], 2);
  EXPECT_EQ(d->first_error,
            "Max entry size '10' bytes exceeded for stream '{ok=\"1\"}' while adding an entry with length '21' bytes");
  ASSERT_EQ(d->streams.size(), 1u);
}

TEST(LokiPush, InvalidUtf8IsReplacedAndCounted) {
  std::string json = "{\"streams\":[{\"stream\":{\"a\":\"x\xff\"},\"values\":[[\"1\",\"bad \xc3\x28 line\"]]}]}";
  auto d = DecodeLokiPushJson(json, {});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->invalid_utf8, 2);
  EXPECT_EQ(d->streams[0].labels.Get("a"), "x\xEF\xBF\xBD");
  EXPECT_EQ(d->streams[0].entries[0].line, "bad \xEF\xBF\xBD( line");

  auto p = DecodeLokiPushProtobuf(ProtoPush("{a=\"\xfe\"}", {{5, "l\xff"}}, {{"k", "v\xff"}}), {});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->invalid_utf8, 3);
  EXPECT_EQ(p->streams[0].entries[0].metadata[0].value, "v\xEF\xBF\xBD");
}

TEST(LokiPush, DecodesProtobuf) {
  auto d = DecodeLokiPushProtobuf(ProtoPush(R"({job="api", host="h1"})", {{1700000000123456789, "a"}, {7, "b"}},
                                            {{"trace_id", "t1"}}),
                                  {});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(d->streams.size(), 1u);
  EXPECT_EQ(d->streams[0].labels, (Labels{{"host", "h1"}, {"job", "api"}}));
  EXPECT_EQ(d->streams[0].entries[0].ts_ns, 1700000000123456789);
  EXPECT_EQ(d->streams[0].entries[1].ts_ns, 7);
  EXPECT_EQ(d->streams[0].entries[1].metadata[0], (Label{"trace_id", "t1"}));
  EXPECT_EQ(DecodeLokiPushProtobuf("\xff\xff\xff", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeLokiPushProtobuf(ProtoPush("job=api", {{1, "a"}}), {}).status().code(),
            StatusCode::kInvalidArgument);
}

// Golden bytes: docs/format/loki-push.md draws this message byte by byte.
TEST(LokiPush, GoldenProtobufBytes) {
  const std::string golden(
      "\x0a\x1c"                      // streams (field 1, LEN 28)
      "\x0a\x0b{job=\"api\"}"         //   labels (field 1, LEN 11)
      "\x12\x0d"                      //   entries (field 2, LEN 13)
      "\x0a\x04\x08\x02\x10\x03"      //     timestamp {seconds: 2, nanos: 3}
      "\x12\x05hello",                //     line "hello"
      30);
  auto d = DecodeLokiPushProtobuf(golden, {});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(d->streams.size(), 1u);
  EXPECT_EQ(d->streams[0].labels, (Labels{{"job", "api"}}));
  EXPECT_EQ(d->streams[0].entries[0].ts_ns, 2'000'000'003);
  EXPECT_EQ(d->streams[0].entries[0].line, "hello");
  EXPECT_EQ(ProtoPush("{job=\"api\"}", {{2'000'000'003, "hello"}}), golden);
}

// The OTLP convention round trip: what otlp-recv writes, MapOtlpLogs
// (log-ingest) reads back as exactly the pushed stream and metadata.
TEST(LokiPush, OtlpConventionMapsBackToTheSameStream) {
  auto d = DecodeLokiPushJson(R"({"streams":[{"stream":{"job":"api","service_name":"s","level":"warn"},
      "values":[["10","one",{"trace_id":"abc","k.x":"v"}],["20","two"]]},
      {"stream":{"job":"api","service_name":"s","level":"warn"},"values":[["30","three"]]}]})",
                              {});
  ASSERT_TRUE(d.ok());
  ExportLogsServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(LokiPushToOtlpLogs(*d)));
  std::vector<LogPush> pushes = MapOtlpLogs(req, OtlpLogsMapOptions{{"host.name"}, 99});
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].stream, (Labels{{"job", "api"}, {"level", "warn"}, {"service_name", "s"}}));
  ASSERT_EQ(pushes[0].entries.size(), 3u);
  EXPECT_EQ(pushes[0].entries[0].ts, 10);
  EXPECT_EQ(pushes[0].entries[0].line, "one");
  // JSON objects come in key order.
  EXPECT_EQ(pushes[0].entries[0].metadata, (std::vector<Label>{{"k_x", "v"}, {"trace_id", "abc"}}));
  EXPECT_TRUE(pushes[0].entries[1].metadata.empty());
  EXPECT_EQ(pushes[0].entries[2].line, "three");
}

// Bounded random mutations of valid bodies: the decoders answer (OK or
// INVALID_ARGUMENT), never crash, and keep their limits.
TEST(LokiPush, SurvivesRandomMutations) {
  const std::string json = R"({"streams":[{"stream":{"job":"api"},"values":[["1","a",{"k":"v"}],["2","b"]]}]})";
  const std::string proto = ProtoPush(R"({job="api", a="b"})", {{1, "line"}, {2, "two"}}, {{"k", "v"}});
  std::mt19937 rng(42);
  LokiPushLimits limits;
  limits.max_line_bytes = 64;
  for (int i = 0; i < 3000; ++i) {
    for (const std::string* base : {&json, &proto}) {
      std::string s = *base;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits; ++k) {
        const size_t at = rng() % (s.size() + 1);
        switch (rng() % 3) {
          case 0: if (at < s.size()) s[at] = static_cast<char>(rng()); break;
          case 1: s.insert(at, 1, static_cast<char>(rng())); break;
          default: if (at < s.size()) s.erase(at, 1 + rng() % 3); break;
        }
      }
      auto d = base == &json ? DecodeLokiPushJson(s, limits) : DecodeLokiPushProtobuf(s, limits);
      if (!d.ok()) {
        EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
        continue;
      }
      for (const auto& st : d->streams) {
        EXPECT_FALSE(st.labels.empty());
        for (const auto& e : st.entries) EXPECT_LE(e.line.size(), limits.max_line_bytes);
      }
      ExportLogsServiceRequest req;
      EXPECT_TRUE(req.ParseFromString(LokiPushToOtlpLogs(*d)));
    }
  }
}

double Metric(const MetricsRegistry& registry, const std::string& series) {
  std::string text = registry.ExpositionText();
  size_t pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(text.substr(pos + series.size() + 2));
}

class LokiPushHttpTest : public ::testing::Test {
 protected:
  void SetUp() override { signal(SIGPIPE, SIG_IGN); }
  void Start(OtlpReceiverOptions options = {}, std::string spec = "", StreamOutputOptions output_options = {}) {
    auto output = OpenStreamOutput(spec.empty() ? out_path_ : spec, output_options);
    ASSERT_TRUE(output.ok());
    receiver_ = std::make_unique<OtlpReceiver>(options, std::move(*output), registry_);
    OtlpHttpServerOptions server_options;
    server_options.listen = {"127.0.0.1", 0};
    auto server = OtlpHttpServer::Start(server_options, *receiver_, nullptr);
    ASSERT_TRUE(server.ok());
    server_ = std::move(*server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(30, 0);
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (receiver_) (void)receiver_->Shutdown(5s);
  }
  std::vector<ExportLogsServiceRequest> StopAndReadLogs() {
    server_->Stop();
    EXPECT_TRUE(receiver_->Shutdown(10s).ok());
    std::vector<ExportLogsServiceRequest> out;
    auto input = OpenStreamInput(out_path_);
    if (!input.ok()) return out;
    for (int i = 0; i < 1000; ++i) {
      auto next = (*input)->Next();
      if (!next.ok() || !next->has_value()) break;
      EXPECT_EQ((**next).signal, static_cast<uint8_t>(Signal::kLogs));
      out.emplace_back().ParseFromString((**next).payload);
    }
    return out;
  }
  httplib::Result Post(const std::string& body, const char* type, const std::string& encoding = "") {
    httplib::Headers headers;
    if (!encoding.empty()) headers.emplace("Content-Encoding", encoding);
    return client_->Post("/loki/api/v1/push", headers, body, type);
  }
  double Refused(const std::string& reason) {
    return Metric(registry_, "otlp_recv_refused_requests_total{protocol=\"http\",reason=\"" + reason + "\"}");
  }

  test_support::TempDir dir_;
  std::string out_path_ = dir_.path() + "/out.tks";
  MetricsRegistry registry_;
  std::unique_ptr<OtlpReceiver> receiver_;
  std::unique_ptr<OtlpHttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(LokiPushHttpTest, JsonGzipJsonAndSnappyProtobufAre204AndForwardedAsLogs) {
  Start();
  const std::string json = R"({"streams":[{"stream":{"job":"j"},"values":[["1","json"]]}]})";
  auto r1 = Post(json, kJson);
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->status, 204) << r1->body;
  auto r2 = Post(GzipCompress(json), "application/json; charset=utf-8", "gzip");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 204) << r2->body;
  auto r3 = Post(SnappyCompress(ProtoPush("{job=\"p\"}", {{3, "proto"}})), kProtobuf);
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->status, 204) << r3->body;
  auto r4 = Post(SnappyCompress(ProtoPush("{job=\"p\"}", {{4, "snappy header"}})), kProtobuf, "snappy");
  ASSERT_TRUE(r4);
  EXPECT_EQ(r4->status, 204) << r4->body;
  EXPECT_EQ(Metric(registry_, R"(otlp_recv_received_items_total{protocol="http",signal="logs"})"), 4);
  auto logs = StopAndReadLogs();
  ASSERT_EQ(logs.size(), 4u);
  auto pushes = MapOtlpLogs(logs[2], {});
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].stream, (Labels{{"job", "p"}}));
  EXPECT_EQ(pushes[0].entries[0].line, "proto");
}

TEST_F(LokiPushHttpTest, RejectedEntriesAre400WithLokiMessageAndCounted) {
  OtlpReceiverOptions options;
  options.loki.max_line_bytes = 8;
  Start(options);
  auto r = Post(R"({"streams":[{"stream":{"job":"j"},"values":[["1","ok"],["2","far too long"]]},
                  {"stream":{"bad.name":"x"},"values":[["1","a"]]}]})",
                kJson);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body,
            "Max entry size '8' bytes exceeded for stream '{job=\"j\"}' while adding an entry with length '12' bytes "
            "(and 1 more entries)\n");
  EXPECT_EQ(Metric(registry_, R"(otlp_recv_loki_rejected_entries_total{reason="line_too_long"})"), 1);
  EXPECT_EQ(Metric(registry_, R"(otlp_recv_loki_rejected_entries_total{reason="invalid_labels"})"), 1);
  auto logs = StopAndReadLogs();
  ASSERT_EQ(logs.size(), 1u);  // the valid entry is kept, as Loki does
  EXPECT_EQ(MapOtlpLogs(logs[0], {})[0].entries.size(), 1u);
}

TEST_F(LokiPushHttpTest, RefusalsAnswerInPlainText) {
  OtlpReceiverOptions options;
  options.max_request_bytes = 1 << 20;
  options.max_decompressed_bytes = 1 << 20;
  Start(options);
  auto bad = Post("{nope", kJson);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("invalid JSON push body"), std::string::npos) << bad->body;
  auto bad_snappy = Post("not snappy", kProtobuf);
  ASSERT_TRUE(bad_snappy);
  EXPECT_EQ(bad_snappy->status, 400);
  EXPECT_NE(bad_snappy->body.find("invalid snappy body"), std::string::npos) << bad_snappy->body;
  auto bad_proto = Post(SnappyCompress("\xff\xff\xff"), kProtobuf);
  ASSERT_TRUE(bad_proto);
  EXPECT_EQ(bad_proto->status, 400);
  EXPECT_EQ(bad_proto->body, "invalid protobuf push body: cannot parse logproto.PushRequest\n");
  EXPECT_EQ(Refused("bad_data"), 3);
  auto type = Post("x", "text/plain");
  ASSERT_TRUE(type);
  EXPECT_EQ(type->status, 415);
  auto enc = Post("x", kJson, "br");
  ASSERT_TRUE(enc);
  EXPECT_EQ(enc->status, 415);
  auto gzip_proto = Post(GzipCompress("x"), kProtobuf, "gzip");
  ASSERT_TRUE(gzip_proto);
  EXPECT_EQ(gzip_proto->status, 415);
  EXPECT_EQ(Refused("unsupported_media_type") + Refused("unsupported_encoding"), 3);
  // A gzip bomb: 64 MiB of zeros in ~64 KiB, refused at the 1 MiB limit.
  auto bomb = Post(GzipCompress(std::string(64 << 20, '0'), 9), kJson, "gzip");
  ASSERT_TRUE(bomb);
  EXPECT_EQ(bomb->status, 413);
  EXPECT_EQ(bomb->body, "request body decompresses to more than 1048576 bytes\n");
  // A snappy block that claims more than the limit.
  auto snappy_bomb = Post(SnappyCompress(std::string(2 << 20, 'x')), kProtobuf);
  ASSERT_TRUE(snappy_bomb);
  EXPECT_EQ(snappy_bomb->status, 413);
  EXPECT_EQ(Refused("decompressed_too_large"), 2);
}

TEST_F(LokiPushHttpTest, BackpressureIs429WithRetryAfter) {
  OtlpReceiverOptions options;
  options.max_request_bytes = 64 << 10;
  options.max_decompressed_bytes = 64 << 10;
  options.queue_capacity_bytes = 64 << 10;
  options.retry_after_seconds = 3;
  StreamOutputOptions output_options;
  output_options.max_unacked_bytes = 1;
  Start(options, "listen:unix:" + dir_.path() + "/nobody.sock", output_options);
  const std::string body = R"({"streams":[{"stream":{"job":"j"},"values":[["1",")" + std::string(20 << 10, 'x') +
                           R"("]]}]})";
  int status = 0;
  std::string retry_after;
  for (int i = 0; i < 100 && status != 429; ++i) {
    auto res = Post(body, kJson);
    ASSERT_TRUE(res);
    status = res->status;
    retry_after = res->get_header_value("Retry-After");
  }
  EXPECT_EQ(status, 429);
  EXPECT_EQ(retry_after, "3");
  EXPECT_EQ(Refused("queue_full"), 1);
  server_->Stop();
  (void)receiver_->Shutdown(100ms);
}

}  // namespace
}  // namespace telkit
