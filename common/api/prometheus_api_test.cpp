// The Prometheus HTTP API over a real loopback server and a real HTTP client
// (cpp-httplib), with data in a MemoryStore: exact response bytes for every
// endpoint and every error class, gzip, the response bound, and the requests
// Grafana's Prometheus data source makes.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/api/json_writer.h"
#include "common/api/prometheus_api.h"
#include "common/api/prometheus_api_server.h"
#include "common/codec/gzip.h"
#include "common/model/memory_store.h"

namespace telkit::api {
namespace {

constexpr int64_t kT0 = 1700000000000;  // 2023-11-14T22:13:20Z

Labels L(std::initializer_list<Label> l) { return Labels(l); }

std::shared_ptr<MemoryStore> TestData() {
  auto store = std::make_shared<MemoryStore>();
  for (int i = 0; i <= 40; ++i) {
    int64_t t = kT0 + i * 15000;
    store->Append(L({{"__name__", "up"}, {"instance", "localhost:9090"}, {"job", "prometheus"}}), t, 1);
    store->Append(L({{"__name__", "http_requests_total"}, {"code", "200"}, {"job", "api"}}), t, 10.0 * i);
    store->Append(L({{"__name__", "http_requests_total"}, {"code", "500"}, {"job", "api"}}), t, 1.0 * i);
  }
  store->Append(L({{"__name__", "weird"}, {"label", "a<b>&\"c\"\n\xff"}}), kT0, 1.5);
  return store;
}

std::vector<MetricMetadata> TestMetadata(std::string_view family) {
  std::vector<MetricMetadata> all = {
      {"http_requests_total", MetricFamilyType::kCounter, "Requests served.", ""},
      {"up", MetricFamilyType::kGauge, "Whether the target is up.", ""},
      {"up", MetricFamilyType::kGauge, "Whether the target is up.", ""},  // duplicate: listed once
  };
  std::vector<MetricMetadata> out;
  for (auto& m : all) {
    if (family.empty() || m.family == family) out.push_back(m);
  }
  return out;
}

class PrometheusApiTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Start(PrometheusApiServerOptions options = {}, PrometheusApiBackend backend = {}) {
    server_.reset();
    options.listen = {"127.0.0.1", 0};
    options.threads = 2;
    options.api.now_ms = [] { return kT0 + 300000; };
    options.api.flags = {{"storage.tsdb.retention.time", "15d"}, {"web.listen-address", ":9090"}};
    if (!backend.querier) {
      backend = PrometheusApiBackend::ForQuerier(TestData());
      backend.metadata = [](std::string_view f) -> Result<std::vector<MetricMetadata>> { return TestMetadata(f); };
    }
    auto s = StartPrometheusApi(options, std::move(backend));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(30, 0);
  }

  httplib::Result Get(const std::string& path, const httplib::Headers& headers = {}) {
    return client_->Get(path, headers);
  }
  httplib::Result PostForm(const std::string& path, const std::string& body) {
    return client_->Post(path, body, "application/x-www-form-urlencoded");
  }
  // The body of a GET, asserting the status.
  std::string Body(const std::string& path, int status = 200) {
    auto r = Get(path);
    if (!r) return "no response: " + httplib::to_string(r.error());
    EXPECT_EQ(r->status, status) << path << " -> " << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << path;
    return r->body;
  }

  std::unique_ptr<PrometheusApiServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

// --- /api/v1/query ---

TEST_F(PrometheusApiTest, InstantVector) {
  EXPECT_EQ(Body("/api/v1/query?query=up&time=1700000300"),
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up",)"
            R"("instance":"localhost:9090","job":"prometheus"},"value":[1700000300,"1"]}]}})");
}

TEST_F(PrometheusApiTest, InstantTimeDefaultsToNowAndKeepsMilliseconds) {
  EXPECT_EQ(Body("/api/v1/query?query=up"),
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up",)"
            R"("instance":"localhost:9090","job":"prometheus"},"value":[1700000300,"1"]}]}})");
  EXPECT_EQ(Body("/api/v1/query?query=vector(0.25)&time=1700000300.12"),
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},)"
            R"("value":[1700000300.120,"0.25"]}]}})");
  EXPECT_EQ(Body("/api/v1/query?query=vector(1)&time=2023-11-14T22:18:20.5%2B00:00"),
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},)"
            R"("value":[1700000300.500,"1"]}]}})");
}

TEST_F(PrometheusApiTest, InstantScalarStringAndSpecialValues) {
  EXPECT_EQ(Body("/api/v1/query?query=1%2B1&time=1700000300"),
            R"({"status":"success","data":{"resultType":"scalar","result":[1700000300,"2"]}})");
  EXPECT_EQ(Body("/api/v1/query?query=%22hello%22&time=1700000300"),
            R"({"status":"success","data":{"resultType":"string","result":[1700000300,"hello"]}})");
  EXPECT_EQ(Body("/api/v1/query?query=1/0&time=1700000300"),
            R"({"status":"success","data":{"resultType":"scalar","result":[1700000300,"+Inf"]}})");
  EXPECT_EQ(Body("/api/v1/query?query=-1/0&time=1700000300"),
            R"({"status":"success","data":{"resultType":"scalar","result":[1700000300,"-Inf"]}})");
  EXPECT_EQ(Body("/api/v1/query?query=0/0&time=1700000300"),
            R"({"status":"success","data":{"resultType":"scalar","result":[1700000300,"NaN"]}})");
  EXPECT_EQ(Body("/api/v1/query?query=1e21%2B0.5&time=1700000300"),
            R"({"status":"success","data":{"resultType":"scalar","result":[1700000300,"1000000000000000000000"]}})");
}

TEST_F(PrometheusApiTest, InstantMatrix) {
  EXPECT_EQ(Body("/api/v1/query?query=http_requests_total%7Bcode%3D%22500%22%7D%5B30s%5D&time=1700000300"),
            R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":)"
            R"("http_requests_total","code":"500","job":"api"},"values":[[1700000270,"18"],)"
            R"([1700000285,"19"],[1700000300,"20"]]}]}})");
}

TEST_F(PrometheusApiTest, EscapesLabelValuesAsGo) {
  EXPECT_EQ(Body("/api/v1/query?query=weird&time=1700000000"),
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"weird",)"
            R"("label":"a\u003cb\u003e\u0026\"c\"\n\ufffd"},"value":[1700000000,"1.5"]}]}})");
}

TEST_F(PrometheusApiTest, QueryLimitTruncatesWithWarning) {
  EXPECT_EQ(Body("/api/v1/query?query=http_requests_total&time=1700000300&limit=1"),
            R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":)"
            R"("http_requests_total","code":"200","job":"api"},"value":[1700000300,"200"]}]},)"
            R"("warnings":["results truncated due to limit"]})");
}

TEST_F(PrometheusApiTest, QueryByPostForm) {
  auto r = PostForm("/api/v1/query", "query=sum+by+(job)+(http_requests_total)&time=1700000300");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"api"},)"
                     R"("value":[1700000300,"220"]}]}})");
  // Body values come before the query string's, as Go's FormValue.
  r = client_->Post("/api/v1/query?query=up&time=1", "query=vector(7)&time=1700000300",
                    "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},)"
                     R"("value":[1700000300,"7"]}]}})");
}

// --- /api/v1/query_range ---

TEST_F(PrometheusApiTest, RangeQuery) {
  EXPECT_EQ(Body("/api/v1/query_range?query=up&start=1700000000&end=1700000060&step=30"),
            R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up",)"
            R"("instance":"localhost:9090","job":"prometheus"},"values":[[1700000000,"1"],[1700000030,"1"],)"
            R"([1700000060,"1"]]}]}})");
  // The step as a duration, times as RFC 3339, by POST.
  auto r = PostForm("/api/v1/query_range",
                    "query=rate(http_requests_total%5B1m%5D)&start=2023-11-14T22:14:20Z&end=2023-11-14T22:14:50Z"
                    "&step=15s");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body,
            R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"code":"200","job":"api"},)"
            R"("values":[[1700000060,"0.6666666666666666"],[1700000075,"0.6666666666666666"],)"
            R"([1700000090,"0.6666666666666666"]]},{"metric":{"code":"500","job":"api"},"values":[[1700000060,)"
            R"("0.06666666666666667"],[1700000075,"0.06666666666666667"],[1700000090,"0.06666666666666667"]]}]}})");
}

TEST_F(PrometheusApiTest, RangeQueryScalarAndEmpty) {
  EXPECT_EQ(Body("/api/v1/query_range?query=time()&start=1700000000&end=1700000001&step=0.5"),
            R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[)"
            R"([1700000000,"1700000000"],[1700000000.500,"1700000000.5"],[1700000001,"1700000001"]]}]}})");
  EXPECT_EQ(Body("/api/v1/query_range?query=nothing&start=1700000000&end=1700000060&step=30"),
            R"({"status":"success","data":{"resultType":"matrix","result":[]}})");
}

TEST_F(PrometheusApiTest, RangeQueryResolutionLimit) {
  // 11,000 intervals are allowed (11,001 points), one more is not.
  EXPECT_TRUE(Body("/api/v1/query_range?query=vector(1)&start=0&end=11000&step=1")
                  .starts_with(R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},)"
                               R"("values":[[0,"1"],[1,"1"],)"));
  EXPECT_EQ(Body("/api/v1/query_range?query=vector(1)&start=0&end=11001&step=1", 400),
            R"({"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points )"
            R"j(per timeseries. Try decreasing the query resolution (?step=XX)"})j");
}

// --- errors, one test per class ---

TEST_F(PrometheusApiTest, BadParametersAre400) {
  EXPECT_EQ(Body("/api/v1/query?query=up&time=yesterday", 400),
            R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"time\": Invalid time value )"
            R"(for 'time': cannot parse \"yesterday\" to a valid timestamp"})");
  EXPECT_EQ(Body("/api/v1/query?query=sum(", 400),
            R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: )"
            R"(unexpected end of input"})");
  EXPECT_EQ(Body("/api/v1/query?query=up&timeout=soon", 400),
            R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"timeout\": cannot parse )"
            R"(\"soon\" to a valid duration"})");
  EXPECT_EQ(Body("/api/v1/query_range?query=up&end=1&step=1", 400),
            R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"start\": cannot parse \"\" )"
            R"(to a valid timestamp"})");
  EXPECT_EQ(Body("/api/v1/query_range?query=up&start=2&end=1&step=1", 400),
            R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"end\": end timestamp must )"
            R"(not be before start time"})");
  EXPECT_EQ(Body("/api/v1/query_range?query=up&start=1&end=2&step=0", 400),
            R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": zero or negative )"
            R"(query resolution step widths are not accepted. Try a positive integer"})");
  EXPECT_EQ(Body("/api/v1/query_range?query=up&start=1&end=2&step=x", 400),
            R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"step\": cannot parse \"x\" )"
            R"(to a valid duration"})");
  EXPECT_EQ(Body("/api/v1/query_range?query=up%5B5m%5D&start=1&end=2&step=1", 400),
            R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": invalid expression )"
            R"(type \"range vector\" for range query, must be Scalar or instant Vector"})");
  EXPECT_EQ(Body("/api/v1/query?query=up&limit=-1", 400),
            R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"limit\": limit must be )"
            R"(non-negative"})");
  auto r = client_->Post("/api/v1/query", "{\"query\":\"up\"}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body, R"({"status":"error","errorType":"bad_data","error":"unsupported Content-Type )"
                     R"(\"application/json\" of the request body: use application/x-www-form-urlencoded"})");
  r = Get("/api/v1/query?query=%zz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}

TEST_F(PrometheusApiTest, ExecutionErrorsAre422) {
  auto r = Get("/api/v1/query?query=http_requests_total%2Bon(job)+http_requests_total&time=1700000300");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422);
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["status"], "error");
  EXPECT_EQ(j["errorType"], "execution");
  EXPECT_NE(j["error"].get<std::string>().find("many-to-many matching not allowed"), std::string::npos) << r->body;
}

TEST_F(PrometheusApiTest, TimeoutIs503) {
  PrometheusApiServerOptions options;
  options.api.engine.timeout = std::chrono::milliseconds(0);
  Start(options);
  // The engine looks at the clock every 256 steps of a node.
  auto r = Get("/api/v1/query_range?query=sum(rate(http_requests_total%5B1m%5D))&start=1700000000&end=1700011000"
               "&step=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body,
            R"({"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"})");
}

TEST_F(PrometheusApiTest, TimeoutParameterShortensTheQuery) {
  auto r = Get("/api/v1/query_range?query=sum(rate(http_requests_total%5B1m%5D))&start=1700000000&end=1700011000"
               "&step=1&timeout=0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body,
            R"({"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"})");
}

TEST_F(PrometheusApiTest, ConcurrentClients) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", server_->port());
      for (int i = 0; i < 25; ++i) {
        auto r = (t % 2 == 0) ? c.Get("/api/v1/query_range?query=rate(http_requests_total%5B1m%5D)"
                                      "&start=1700000000&end=1700000600&step=15")
                              : c.Get("/api/v1/series?match[]=up");
        if (r && r->status == 200) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_GE(server_->counters().requests.load(), 100u);
}

TEST_F(PrometheusApiTest, SelfMetrics) {
  Body("/api/v1/query?query=up");
  Body("/api/v1/query?query=up&time=x", 400);
  MetricsRegistry registry;
  server_->RegisterMetrics(registry);
  std::string text = registry.ExpositionText();
  EXPECT_NE(text.find("tel_query_api_requests_total 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tel_query_api_error_responses_total{class=\"4xx\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tel_query_api_error_responses_total{class=\"5xx\"} 0\n"), std::string::npos) << text;
}

TEST_F(PrometheusApiTest, RequestBodyBound) {
  PrometheusApiServerOptions options;
  options.max_request_bytes = 1024;
  Start(options);
  auto r = PostForm("/api/v1/query", "query=" + std::string(4096, '1'));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  r = PostForm("/api/v1/query", "query=1&time=1700000300");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(PrometheusApiTest, StorageErrorsAre503And500) {
  PrometheusApiBackend unavailable;
  unavailable.querier = []() -> Result<std::shared_ptr<Querier>> { return UnavailableError("head not loaded yet"); };
  unavailable.ready = [] { return false; };
  Start({}, unavailable);
  EXPECT_EQ(Body("/api/v1/query?query=up", 503),
            R"({"status":"error","errorType":"unavailable","error":"head not loaded yet"})");
  auto r = Get("/-/ready");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "Service Unavailable");

  PrometheusApiBackend broken;
  broken.querier = []() -> Result<std::shared_ptr<Querier>> {
    return Status(StatusCode::kDataLoss, "block 01H: checksum mismatch");
  };
  Start({}, broken);
  EXPECT_EQ(Body("/api/v1/labels", 500),
            R"({"status":"error","errorType":"internal","error":"block 01H: checksum mismatch"})");
}

TEST_F(PrometheusApiTest, EmptyQueryIsBadData) {
  EXPECT_EQ(Body("/api/v1/query?time=1", 400),
            R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:1: parse error: )"
            R"(no expression found in input"})");
}

TEST_F(PrometheusApiTest, Cors) {
  auto r = Get("/api/v1/labels", {{"Origin", "http://grafana.local:3000"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "http://grafana.local:3000");
  EXPECT_EQ(r->get_header_value("Access-Control-Expose-Headers"), "Date");
  r = client_->Options("/api/v1/query", {{"Origin", "http://grafana.local:3000"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Methods"), "GET, POST, OPTIONS");
  r = Get("/api/v1/labels");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
}

TEST_F(PrometheusApiTest, UnknownPathsAndMethods) {
  auto r = Get("/api/v1/nope");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = client_->Post("/api/v1/status/buildinfo", "", "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
}

// --- series, labels, metadata ---

TEST_F(PrometheusApiTest, Series) {
  EXPECT_EQ(Body("/api/v1/series?match[]=up&match[]=%7Bcode%3D%22500%22%7D"),
            R"({"status":"success","data":[{"__name__":"http_requests_total","code":"500","job":"api"},)"
            R"({"__name__":"up","instance":"localhost:9090","job":"prometheus"}]})");
  // Outside the time range: nothing.
  EXPECT_EQ(Body("/api/v1/series?match[]=up&start=1600000000&end=1600000100"), R"({"status":"success","data":[]})");
  EXPECT_EQ(Body("/api/v1/series?match[]=http_requests_total&limit=1"),
            R"({"status":"success","data":[{"__name__":"http_requests_total","code":"200","job":"api"}],)"
            R"("warnings":["results truncated due to limit"]})");
  EXPECT_EQ(Body("/api/v1/series", 400),
            R"({"status":"error","errorType":"bad_data","error":"no match[] parameter provided"})");
  auto r = Get("/api/v1/series?match[]=%7Bjob%3D~%22.*%22%7D");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find(R"("error":"invalid parameter \"match[]\": )"), std::string::npos) << r->body;
}

TEST_F(PrometheusApiTest, Labels) {
  EXPECT_EQ(Body("/api/v1/labels"), R"({"status":"success","data":["__name__","code","instance","job","label"]})");
  EXPECT_EQ(Body("/api/v1/labels?match[]=up"), R"({"status":"success","data":["__name__","instance","job"]})");
  auto r = PostForm("/api/v1/labels", "match%5B%5D=http_requests_total&start=1700000000&end=1700000600");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, R"({"status":"success","data":["__name__","code","job"]})");
}

TEST_F(PrometheusApiTest, LabelValues) {
  EXPECT_EQ(Body("/api/v1/label/__name__/values"),
            R"({"status":"success","data":["http_requests_total","up","weird"]})");
  EXPECT_EQ(Body("/api/v1/label/job/values?match[]=up"), R"({"status":"success","data":["prometheus"]})");
  EXPECT_EQ(Body("/api/v1/label/nope/values"), R"({"status":"success","data":[]})");
  EXPECT_EQ(Body("/api/v1/label/1bad/values", 400),
            R"({"status":"error","errorType":"bad_data","error":"invalid label name: \"1bad\""})");
}

TEST_F(PrometheusApiTest, Metadata) {
  EXPECT_EQ(Body("/api/v1/metadata"),
            R"({"status":"success","data":{"http_requests_total":[{"type":"counter","help":"Requests served.",)"
            R"("unit":""}],"up":[{"type":"gauge","help":"Whether the target is up.","unit":""}]}})");
  EXPECT_EQ(Body("/api/v1/metadata?metric=up"),
            R"({"status":"success","data":{"up":[{"type":"gauge","help":"Whether the target is up.","unit":""}]}})");
  EXPECT_EQ(Body("/api/v1/metadata?limit=1"),
            R"({"status":"success","data":{"http_requests_total":[{"type":"counter","help":"Requests served.",)"
            R"("unit":""}]}})");
  EXPECT_EQ(Body("/api/v1/metadata?limit=x", 400),
            R"({"status":"error","errorType":"bad_data","error":"limit must be a number"})");
}

TEST_F(PrometheusApiTest, ExemplarsFormatAndParseQuery) {
  EXPECT_EQ(Body("/api/v1/query_exemplars?query=up&start=1700000000&end=1700000600"),
            R"({"status":"success","data":[]})");
  EXPECT_EQ(Body("/api/v1/format_query?query=sum(rate(foo%5B5m%5D))by(job)"),
            R"j({"status":"success","data":"sum by (job) (rate(foo[5m]))"})j");
  EXPECT_TRUE(Body("/api/v1/format_query?query=foo%7B", 400)
                  .starts_with(R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:)"));
  EXPECT_EQ(Body("/api/v1/parse_query?query=rate(foo%5B5m%5D)"),
            R"j({"status":"success","data":{"type":"vector","expr":"rate(foo[5m])"}})j");
}

// --- status endpoints and the rest ---

TEST_F(PrometheusApiTest, StatusEndpoints) {
  EXPECT_EQ(Body("/api/v1/status/buildinfo"),
            R"({"status":"success","data":{"version":"2.42.0","revision":"telkit-)" TELKIT_VERSION
            R"(","branch":"telkit","buildUser":"telkit","buildDate":"","goVersion":"c++20"}})");
  EXPECT_EQ(Body("/api/v1/status/flags"),
            R"({"status":"success","data":{"storage.tsdb.retention.time":"15d","web.listen-address":":9090"}})");
  EXPECT_EQ(Body("/api/v1/status/config"),
            R"({"status":"success","data":{"yaml":"global:\n  scrape_interval: 1m\n  scrape_timeout: 10s\n)"
            R"(  evaluation_interval: 1m\n"}})");
  EXPECT_EQ(Body("/api/v1/status/tsdb"),
            R"({"status":"success","data":{"headStats":{"numSeries":0,"numLabelPairs":0,"chunkCount":0,)"
            R"("minTime":0,"maxTime":0},"seriesCountByMetricName":[],"labelValueCountByLabelName":[],)"
            R"("memoryInBytesByLabelName":[],"seriesCountByLabelValuePair":[]}})");
  auto info = nlohmann::json::parse(Body("/api/v1/status/runtimeinfo"));
  EXPECT_EQ(info["status"], "success");
  for (const char* key : {"startTime", "CWD", "reloadConfigSuccess", "lastConfigTime", "corruptionCount",
                          "goroutineCount", "GOMAXPROCS", "GOGC", "GODEBUG", "storageRetention"}) {
    EXPECT_TRUE(info["data"].contains(key)) << key;
  }
  EXPECT_EQ(info["data"]["storageRetention"], "15d");
  EXPECT_EQ(Body("/api/v1/targets"), R"({"status":"success","data":{"activeTargets":[],"droppedTargets":[]}})");
  EXPECT_EQ(Body("/api/v1/rules"), R"({"status":"success","data":{"groups":[]}})");
  EXPECT_EQ(Body("/api/v1/rules?type=bogus", 400),
            R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"type\": not supported value )"
            R"(\"bogus\""})");
  EXPECT_EQ(Body("/api/v1/alerts"), R"({"status":"success","data":{"alerts":[]}})");
}

TEST_F(PrometheusApiTest, ExemplarsFromBackendInPrometheusShape) {
  PrometheusApiBackend backend = PrometheusApiBackend::ForQuerier(TestData());
  std::vector<std::string> asked;
  backend.exemplars = [&asked](int64_t mint, int64_t maxt,
                               std::span<const LabelMatcher> matchers) -> Result<std::vector<SeriesExemplarList>> {
    std::string m;
    for (const LabelMatcher& x : matchers) m += x.ToString();
    asked.push_back(std::to_string(mint) + " " + std::to_string(maxt) + " " + m);
    if (m.find("other") != std::string::npos) return std::vector<SeriesExemplarList>{};
    return std::vector<SeriesExemplarList>{
        {Labels{{"__name__", "rq_total"}, {"job", "a"}},
         {{Labels{{"trace_id", "abc"}}, 1.5, kT0 + 500}, {Labels{{"trace_id", "def"}}, 2, kT0 + 1000}}},
        {Labels{{"__name__", "rq_total"}, {"job", "b"}}, {}}};
  };
  Start({}, backend);
  EXPECT_EQ(Body("/api/v1/query_exemplars?query=sum(rate(rq_total%5B5m%5D))%2Bother&start=1700000000&end=1700000600"),
            R"({"status":"success","data":[{"seriesLabels":{"__name__":"rq_total","job":"a"},"exemplars":[)"
            R"({"labels":{"trace_id":"abc"},"value":"1.5","timestamp":1700000000.500},)"
            R"({"labels":{"trace_id":"def"},"value":"2","timestamp":1700000001}]}]})");
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0], "1700000000000 1700000600000 __name__=\"rq_total\"");
}

TEST_F(PrometheusApiTest, TsdbStatusFromBackend) {
  PrometheusApiBackend backend = PrometheusApiBackend::ForQuerier(TestData());
  backend.tsdb_status = []() -> Result<TsdbStatus> {
    TsdbStatus s;
    s.num_series = 3;
    s.num_label_pairs = 7;
    s.chunk_count = 3;
    s.min_time_ms = kT0;
    s.max_time_ms = kT0 + 600000;
    s.series_count_by_metric_name = {{"http_requests_total", 2}, {"up", 1}};
    return s;
  };
  Start({}, backend);
  EXPECT_EQ(Body("/api/v1/status/tsdb"),
            R"({"status":"success","data":{"headStats":{"numSeries":3,"numLabelPairs":7,"chunkCount":3,)"
            R"("minTime":1700000000000,"maxTime":1700000600000},"seriesCountByMetricName":[{"name":)"
            R"("http_requests_total","value":2},{"name":"up","value":1}],"labelValueCountByLabelName":[],)"
            R"("memoryInBytesByLabelName":[],"seriesCountByLabelValuePair":[]}})");
}

TEST_F(PrometheusApiTest, HealthyAndReady) {
  auto r = Get("/-/healthy");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "Prometheus Server is Healthy.\n");
  r = Get("/-/ready");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "Prometheus Server is Ready.\n");
}

// --- gzip and the response bound ---

TEST_F(PrometheusApiTest, GzipWhenAccepted) {
  std::string path = "/api/v1/query_range?query=http_requests_total&start=1700000000&end=1700000600&step=15";
  client_->set_decompress(false);
  auto plain = Get(path);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->get_header_value("Content-Encoding"), "");
  auto gz = Get(path, {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(gz);
  EXPECT_EQ(gz->status, 200);
  EXPECT_EQ(gz->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(gz->get_header_value("Content-Type"), "application/json");
  EXPECT_LT(gz->body.size(), plain->body.size());
  auto inflated = GzipDecompress(gz->body, 1 << 20);
  ASSERT_TRUE(inflated.ok());
  EXPECT_EQ(*inflated, plain->body);
  // Brotli is never used (httplib would pick it); gzip;q=0 refuses gzip.
  for (const char* ae : {"br", "gzip;q=0", "identity"}) {
    auto r = Get(path, {{"Accept-Encoding", ae}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->get_header_value("Content-Encoding"), "") << ae;
    EXPECT_EQ(r->body, plain->body) << ae;
  }
  auto both = Get(path, {{"Accept-Encoding", "gzip, deflate, br"}});
  ASSERT_TRUE(both);
  EXPECT_EQ(both->get_header_value("Content-Encoding"), "gzip");
  // Small answers are not worth compressing.
  auto small = Get("/api/v1/query?query=1", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(small);
  EXPECT_EQ(small->get_header_value("Content-Encoding"), "");
  EXPECT_GE(server_->counters().gzip_responses.load(), 2u);
}

TEST_F(PrometheusApiTest, ResponseSizeBound) {
  PrometheusApiServerOptions options;
  options.api.max_response_bytes = 200;
  Start(options);
  EXPECT_EQ(Body("/api/v1/query_range?query=http_requests_total&start=1700000000&end=1700000600&step=15", 422),
            R"({"status":"error","errorType":"execution","error":"response exceeds the limit of 200 bytes; )"
            R"(narrow the query or the time range"})");
  EXPECT_EQ(Body("/api/v1/series?match[]=%7B__name__%3D~%22.%2B%22%7D", 422),
            R"({"status":"error","errorType":"execution","error":"response exceeds the limit of 200 bytes; )"
            R"(narrow the query or the time range"})");
  Body("/api/v1/query?query=up");  // small answers still go out
  Body("/api/v1/label/__name__/values");
  EXPECT_GE(server_->counters().client_errors.load(), 1u);
}

// --- what Grafana sends ---

// The requests Grafana's Prometheus data source (10.x/11.x, HTTP method POST,
// the default) makes: "Save & test" runs an instant query of 1+1 and reads
// buildinfo to pick features; a dashboard panel runs query_range with a step
// aligned to the interval; the query builder lists metric names, label names
// and values (with match[]), series and metadata; Explore asks for exemplars.
TEST_F(PrometheusApiTest, GrafanaDataSourceRequests) {
  auto post = [&](const std::string& path, const std::string& body) {
    httplib::Headers h = {{"Accept-Encoding", "gzip"}, {"User-Agent", "Grafana/11.1.0"}};
    auto r = client_->Post(path, h, body, "application/x-www-form-urlencoded");
    EXPECT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path << " " << body << " -> " << r->body;
    return nlohmann::json::parse(r->body);
  };
  auto get = [&](const std::string& path) {
    auto r = client_->Get(path, {{"Accept-Encoding", "gzip"}, {"User-Agent", "Grafana/11.1.0"}});
    EXPECT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path << " -> " << r->body;
    return nlohmann::json::parse(r->body);
  };
  // Save & test.
  auto health = post("/api/v1/query", "query=1%2B1&time=1700000300");
  EXPECT_EQ(health["data"]["resultType"], "scalar");
  EXPECT_EQ(health["data"]["result"][1], "2");
  auto build = get("/api/v1/status/buildinfo");
  EXPECT_EQ(build["data"]["version"], "2.42.0");
  // A time-series panel: rate over $__rate_interval, step 15s.
  auto panel = post("/api/v1/query_range",
                    "query=sum+by+(code)+(rate(http_requests_total%7Bjob%3D%22api%22%7D%5B1m%5D))"
                    "&start=1700000100&end=1700000400&step=15");
  EXPECT_EQ(panel["data"]["resultType"], "matrix");
  ASSERT_EQ(panel["data"]["result"].size(), 2u);
  EXPECT_EQ(panel["data"]["result"][0]["metric"]["code"], "200");
  EXPECT_EQ(panel["data"]["result"][0]["values"].size(), 21u);
  EXPECT_EQ(panel["data"]["result"][0]["values"][0][0], 1700000100);
  // A stat panel: instant query.
  auto stat = post("/api/v1/query", "query=up%7Bjob%3D%22prometheus%22%7D&time=1700000400");
  EXPECT_EQ(stat["data"]["result"][0]["value"][1], "1");
  // The query builder and the metrics browser.
  auto names = get("/api/v1/label/__name__/values?start=1700000000&end=1700000600&limit=40000");
  EXPECT_EQ(names["data"], nlohmann::json({"http_requests_total", "up", "weird"}));
  auto labels = post("/api/v1/labels", "start=1700000000&end=1700000600");
  EXPECT_EQ(labels["data"][0], "__name__");
  auto keys = get("/api/v1/labels?match%5B%5D=http_requests_total&start=1700000000&end=1700000600");
  EXPECT_EQ(keys["data"], nlohmann::json({"__name__", "code", "job"}));
  auto values = get(
      "/api/v1/label/code/values?match%5B%5D=http_requests_total%7Bjob%3D%22api%22%7D"
      "&start=1700000000&end=1700000600");
  EXPECT_EQ(values["data"], nlohmann::json({"200", "500"}));
  auto series = get("/api/v1/series?match%5B%5D=http_requests_total&start=1700000000&end=1700000600");
  EXPECT_EQ(series["data"].size(), 2u);
  auto meta = get("/api/v1/metadata");
  EXPECT_EQ(meta["data"]["http_requests_total"][0]["type"], "counter");
  auto one = get("/api/v1/metadata?metric=up&limit=1");
  EXPECT_EQ(one["data"].size(), 1u);
  // Explore with exemplars on.
  auto ex = post("/api/v1/query_exemplars", "query=http_requests_total&start=1700000000&end=1700000600");
  EXPECT_TRUE(ex["data"].is_array());
}

// Random parameters never crash or hang the handler, and every answer is
// valid JSON with a status (bounded: 3,000 requests, in process).
TEST(PrometheusApiRobustness, RandomParameters) {
  auto backend = PrometheusApiBackend::ForQuerier(TestData());
  PrometheusApi api({}, backend);
  const std::vector<std::string> paths = {"/api/v1/query", "/api/v1/query_range", "/api/v1/series",
                                          "/api/v1/labels", "/api/v1/label/job/values", "/api/v1/metadata",
                                          "/api/v1/format_query", "/api/v1/query_exemplars"};
  const std::vector<std::string> names = {"query", "time", "start", "end", "step", "timeout", "limit", "match[]"};
  const std::vector<std::string> pieces = {"up", "1700000000", "-1", "1e308", "NaN", "Inf", "0x1p3", "15s", "1m30",
                                           "2023-11-14T22:13:20Z", "2023-13-40T99:99:99Z", "{", "}", "(", "[5m]",
                                           "rate(", "sum by (job)", "\"", "\xff", "%", "=~", "\\", "", " ", "0"};
  uint64_t seed = 42;
  auto next = [&] {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>(seed >> 33);
  };
  std::map<int, int> statuses;
  for (int i = 0; i < 3000; ++i) {
    ApiRequest req;
    req.path = paths[next() % paths.size()];
    int n = static_cast<int>(next() % 5);
    for (int k = 0; k < n; ++k) {
      std::string value;
      int parts = static_cast<int>(next() % 4);
      for (int j = 0; j < parts; ++j) value += pieces[next() % pieces.size()];
      req.params.emplace_back(names[next() % names.size()], value);
    }
    ApiResponse r = api.Handle(req);
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << req.path << " -> " << r.body;
    ASSERT_TRUE(j.contains("status")) << r.body;
    ASSERT_TRUE(r.status == 200 || r.status == 400 || r.status == 422) << r.status << " " << r.body;
    ++statuses[r.status];
  }
  EXPECT_GT(statuses[200], 300);
  EXPECT_GT(statuses[400], 300);
}

// --- units: parameter parsing and JSON details ---

TEST(PrometheusApiUnit, ParseApiTime) {
  EXPECT_EQ(*ParseApiTime("1700000000"), kT0);
  EXPECT_EQ(*ParseApiTime("1700000000.1234"), kT0 + 123);
  EXPECT_EQ(*ParseApiTime("-1.5"), -1500);
  EXPECT_EQ(*ParseApiTime("2023-11-14T22:13:20Z"), kT0);
  EXPECT_EQ(*ParseApiTime("2023-11-14T23:13:20.999999+01:00"), kT0 + 999);
  EXPECT_EQ(*ParseApiTime("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseApiTime("292277025-08-18T07:12:54.999999999Z"), 9223309901258974999LL);
  EXPECT_FALSE(ParseApiTime("").ok());
  EXPECT_FALSE(ParseApiTime(" 1").ok());
  EXPECT_FALSE(ParseApiTime("2023-02-29T00:00:00Z").ok());
  EXPECT_FALSE(ParseApiTime("2023-11-14 22:13:20Z").ok());
  EXPECT_EQ(ParseApiTime("x").status().message(), "cannot parse \"x\" to a valid timestamp");
}

TEST(PrometheusApiUnit, ParseApiDuration) {
  EXPECT_EQ(*ParseApiDuration("15"), 15000);
  EXPECT_EQ(*ParseApiDuration("0.25"), 250);
  EXPECT_EQ(*ParseApiDuration("1m30s"), 90000);
  EXPECT_EQ(*ParseApiDuration("100ms"), 100);
  EXPECT_FALSE(ParseApiDuration("1e300").ok());
  EXPECT_FALSE(ParseApiDuration("15 s").ok());
}

TEST(PrometheusApiUnit, FormAndAcceptEncoding) {
  auto f = ParseFormUrlEncoded("match%5B%5D=a&match[]=b+c&&x&y=%3D");
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 4u);
  EXPECT_EQ((*f)[0], (std::pair<std::string, std::string>{"match[]", "a"}));
  EXPECT_EQ((*f)[1], (std::pair<std::string, std::string>{"match[]", "b c"}));
  EXPECT_EQ((*f)[2], (std::pair<std::string, std::string>{"x", ""}));
  EXPECT_EQ((*f)[3], (std::pair<std::string, std::string>{"y", "="}));
  EXPECT_FALSE(ParseFormUrlEncoded("a=%4").ok());
  EXPECT_FALSE(ParseFormUrlEncoded("a=%g0").ok());
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("deflate, GZIP;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0, *"));
  EXPECT_FALSE(AcceptsGzip("br, deflate"));
  EXPECT_FALSE(AcceptsGzip(""));
}

TEST(PrometheusApiUnit, JsonWriterMatchesGo) {
  JsonWriter w;
  w.String("\x01\t\u2028ok\xe2\x82");
  EXPECT_EQ(w.Take(), R"("\u0001\t\u2028ok\ufffd\ufffd")");
  for (auto [ms, text] : std::vector<std::pair<int64_t, std::string>>{
           {0, "0"}, {1, "0.001"}, {-1, "-0.001"}, {-1500, "-1.500"}, {1700000000010, "1700000000.010"}}) {
    JsonWriter t;
    t.Timestamp(ms);
    EXPECT_EQ(t.Take(), text) << ms;
  }
  for (auto [v, text] : std::vector<std::pair<double, std::string>>{
           {1e-7, "1e-7"}, {1e21, "1e+21"}, {0.5, "0.5"}, {123456789.0, "123456789"}, {-0.0, "-0"}}) {
    JsonWriter t;
    t.Double(v);
    EXPECT_EQ(t.Take(), text) << v;
  }
  JsonWriter s;
  s.SampleValue(1e-7);
  EXPECT_EQ(s.Take(), R"("0.0000001")");
  EXPECT_EQ(FormatRfc3339(kT0 + 120), "2023-11-14T22:13:20.12Z");
  EXPECT_EQ(FormatRfc3339(-1000), "1969-12-31T23:59:59Z");
}

}  // namespace
}  // namespace telkit::api
