// Golden translation tests: hand-written OTLP/JSON in, Prometheus series out
// (docs/otlp-to-prometheus.md has the same rules with examples).
#include "common/prom/otlp_translate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>

#include "common/otlp/otlp_json.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"

namespace telkit {
namespace {

// ns for 2024-11-25T00:00:00Z + seconds
std::string Ns(int seconds) { return std::to_string((1732492800LL + seconds) * 1000000000LL); }
int64_t Ms(int seconds) { return (1732492800LL + seconds) * 1000; }

std::string Request(const std::string& metrics_json, const std::string& resource_attrs =
                                                         R"([{"key":"service.name","value":{"stringValue":"api"}}])",
                    const std::string& scope = R"({"name":"io.test","version":"1.2"})") {
  return R"({"resourceMetrics":[{"resource":{"attributes":)" + resource_attrs + R"(},"scopeMetrics":[{"scope":)" +
         scope + R"(,"metrics":)" + metrics_json + "}]}]}";
}

std::string ToProto(const std::string& json) {
  Result<std::string> bytes = OtlpJsonToProtobuf(Signal::kMetrics, json);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString() << "\n" << json;
  return bytes.ok() ? *bytes : "";
}

std::string Value(double v) {
  if (IsStaleNaN(v)) return "stale";
  char buf[64];
  snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// "series text" -> "v@t v@t ..." for compact golden comparisons.
std::map<std::string, std::string> Flatten(const TranslatedMetrics& out) {
  std::map<std::string, std::string> m;
  for (const TimeSeries& ts : out.series) {
    std::string s;
    for (const Sample& sample : ts.samples) {
      if (!s.empty()) s += ' ';
      s += Value(sample.v) + "@" + std::to_string(sample.t - Ms(0));
    }
    std::string key = ts.labels.ToString();
    if (key.ends_with("{}")) key.resize(key.size() - 2);  // no labels but the name
    m[key] = s;
  }
  return m;
}

TranslatedMetrics Translate(OtlpTranslator& t, const std::string& json) {
  Result<TranslatedMetrics> out = t.Translate(ToProto(json));
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? std::move(out).value() : TranslatedMetrics{};
}

TEST(OtlpTranslateNames, MetricNamesGetUnitAndTypeSuffixes) {
  struct Case {
    const char* name;
    const char* unit;
    bool monotonic;
    bool gauge;
    const char* want;
  };
  const Case cases[] = {
      {"http.server.duration", "ms", false, false, "http_server_duration_milliseconds"},
      {"system.network.io", "By", true, false, "system_network_io_bytes_total"},
      {"requests", "1", true, false, "requests_total"},
      {"cpu.utilization", "1", false, true, "cpu_utilization_ratio"},
      {"cpu.utilization", "1", false, false, "cpu_utilization"},  // ratio only for gauges
      {"queue.items", "{items}", false, true, "queue_items"},
      {"throughput", "{packets}/s", false, true, "throughput_per_second"},
      {"speed", "m/s", false, true, "speed_meters_per_second"},
      {"2xx.count", "", true, false, "_2xx_count_total"},
      {"foo__bar--baz", "", false, true, "foo_bar_baz"},
      {"requests_total", "", true, false, "requests_total"},
      {"total.requests", "", true, false, "requests_total"},
      {"latency_seconds", "s", false, false, "latency_seconds"},  // unit already in the name
      {"temp", "Cel", false, true, "temp_celsius"},
      {"ns:metric", "", false, true, "ns:metric"},
      {"disk.usage", "KiBy", false, true, "disk_usage_kibibytes"},
      {"x", "custom unit", false, true, "x_custom_unit"},
      {"uptime", "d", true, false, "uptime_days_total"},
      {"events", "1/h", true, false, "events_per_hour_total"},
      {"héllo.wörld", "", false, true, "h_llo_w_rld"},
      {"...", "", false, true, ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(PrometheusMetricName(c.name, c.unit, c.monotonic, c.gauge), c.want) << c.name << " [" << c.unit << "]";
  }
}

TEST(OtlpTranslateNames, LabelNamesAreSanitised) {
  EXPECT_EQ(PrometheusLabelName("http.method"), "http_method");
  EXPECT_EQ(PrometheusLabelName("2xx"), "key_2xx");
  EXPECT_EQ(PrometheusLabelName("_private"), "key_private");
  EXPECT_EQ(PrometheusLabelName("__reserved"), "__reserved");
  EXPECT_EQ(PrometheusLabelName("héllo-wörld"), "h_llo_w_rld");
  EXPECT_EQ(PrometheusLabelName(""), "");
}

TEST(OtlpTranslateNames, FloatsAreFormattedLikePrometheus) {
  EXPECT_EQ(FormatPrometheusFloat(0.005), "0.005");
  EXPECT_EQ(FormatPrometheusFloat(1e6), "1000000");
  EXPECT_EQ(FormatPrometheusFloat(1e-6), "0.000001");
  EXPECT_EQ(FormatPrometheusFloat(1), "1");
  EXPECT_EQ(FormatPrometheusFloat(2.5), "2.5");
  EXPECT_EQ(FormatPrometheusFloat(-1), "-1");
  EXPECT_EQ(FormatPrometheusFloat(INFINITY), "+Inf");
  EXPECT_EQ(FormatPrometheusFloat(-INFINITY), "-Inf");
}

TEST(OtlpTranslate, GaugeWithJobInstanceScopeAndTargetInfo) {
  OtlpTranslator t;
  const std::string json = Request(
      R"([{"name":"memory.usage","unit":"By","description":"Heap in use.","gauge":{"dataPoints":[
           {"attributes":[{"key":"pool","value":{"stringValue":"eden"}}],"timeUnixNano":")" + Ns(10) +
          R"(","asInt":"1024"}]}}])",
      R"([{"key":"service.name","value":{"stringValue":"api"}},
          {"key":"service.namespace","value":{"stringValue":"shop"}},
          {"key":"service.instance.id","value":{"stringValue":"pod-1"}},
          {"key":"host.name","value":{"stringValue":"web-1"}},
          {"key":"k8s.pod.uid","value":{"intValue":"7"}}])");
  TranslatedMetrics out = Translate(t, json);
  EXPECT_EQ(Flatten(out), (std::map<std::string, std::string>{
                              {R"(memory_usage_bytes{instance="pod-1", job="shop/api", otel_scope_name="io.test", )"
                               R"(otel_scope_version="1.2", pool="eden"})",
                               "1024@10000"},
                              {R"(target_info{host_name="web-1", instance="pod-1", job="shop/api", k8s_pod_uid="7"})",
                               "1@10000"},
                          }));
  ASSERT_EQ(out.metadata.size(), 2u);
  EXPECT_EQ(out.metadata[0], (MetricMetadata{"memory_usage_bytes", MetricFamilyType::kGauge, "Heap in use.", "By"}));
  EXPECT_EQ(out.metadata[1], (MetricMetadata{"target_info", MetricFamilyType::kGauge, "Target metadata", ""}));
  EXPECT_EQ(out.data_points, 1);
  EXPECT_EQ(out.rejected.Total(), 0);
}

TEST(OtlpTranslate, NoTargetInfoWithOnlyServiceAttributesOrNoScopeName) {
  OtlpTranslator t;
  TranslatedMetrics out = Translate(
      t, Request(R"([{"name":"g","gauge":{"dataPoints":[{"timeUnixNano":")" + Ns(1) + R"(","asDouble":0.5}]}}])",
                 R"([{"key":"service.name","value":{"stringValue":"api"}}])", "{}"));
  EXPECT_EQ(Flatten(out), (std::map<std::string, std::string>{{R"(g{job="api"})", "0.5@1000"}}));
}

TEST(OtlpTranslate, SumsBecomeCountersOrGauges) {
  OtlpTranslator t;
  TranslatedMetrics out = Translate(
      t, Request(R"([
      {"name":"http.requests","description":"Requests.","sum":{"aggregationTemporality":2,"isMonotonic":true,
       "dataPoints":[{"timeUnixNano":")" + Ns(1) + R"(","asInt":"5"},{"timeUnixNano":")" + Ns(2) +
                 R"(","asInt":"7"}]}},
      {"name":"queue.size","sum":{"aggregationTemporality":2,"isMonotonic":false,
       "dataPoints":[{"timeUnixNano":")" + Ns(1) + R"(","asDouble":3}]}}])",
                 "[]", "{}"));
  EXPECT_EQ(Flatten(out), (std::map<std::string, std::string>{{"http_requests_total", "5@1000 7@2000"},
                                                              {"queue_size", "3@1000"}}));
  ASSERT_EQ(out.metadata.size(), 2u);
  EXPECT_EQ(out.metadata[0].family, "http_requests_total");
  EXPECT_EQ(out.metadata[0].type, MetricFamilyType::kCounter);
  EXPECT_EQ(out.metadata[1].type, MetricFamilyType::kGauge);
}

std::string DeltaSum(int t, int start, int v, const char* extra = "") {
  return Request(R"([{"name":"jobs","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{)" +
                     std::string(extra) + R"("startTimeUnixNano":")" + Ns(start) + R"(","timeUnixNano":")" + Ns(t) +
                     R"(","asInt":")" + std::to_string(v) + R"("}]}}])",
                 "[]", "{}");
}

TEST(OtlpTranslate, DeltaSumsAccumulatePerSeries) {
  OtlpTranslator t;
  EXPECT_EQ(Flatten(Translate(t, DeltaSum(10, 0, 3)))["jobs_total"], "3@10000");
  EXPECT_EQ(Flatten(Translate(t, DeltaSum(20, 10, 4)))["jobs_total"], "7@20000");
  EXPECT_EQ(t.delta_series(), 1u);
  // Not newer than the last point: rejected, the total unchanged.
  TranslatedMetrics old = Translate(t, DeltaSum(20, 10, 100));
  EXPECT_TRUE(old.series.empty());
  EXPECT_EQ(old.rejected.Count(PromReject::kOutOfOrderDelta), 1);
  // A new start time (SDK restart) continues the total.
  EXPECT_EQ(Flatten(Translate(t, DeltaSum(30, 25, 1)))["jobs_total"], "8@30000");
  // NO_RECORDED_VALUE: a stale marker, and the total starts again.
  EXPECT_EQ(Flatten(Translate(t, DeltaSum(40, 30, 0, R"("flags":1,)")))["jobs_total"], "stale@40000");
  EXPECT_EQ(t.delta_series(), 0u);
  EXPECT_EQ(Flatten(Translate(t, DeltaSum(50, 40, 2)))["jobs_total"], "2@50000");
  t.Forget();
  EXPECT_EQ(Flatten(Translate(t, DeltaSum(60, 50, 5)))["jobs_total"], "5@60000");
}

TEST(OtlpTranslate, DeltaStateIsBounded) {
  OtlpTranslateOptions options;
  options.max_delta_series = 1;
  OtlpTranslator t(options);
  Translate(t, DeltaSum(10, 0, 3));
  TranslatedMetrics out = Translate(
      t, Request(R"([{"name":"other","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[
          {"timeUnixNano":")" + Ns(10) + R"(","asInt":"1"}]}}])",
                 "[]", "{}"));
  EXPECT_EQ(out.rejected.Count(PromReject::kDeltaStateFull), 1);
  EXPECT_TRUE(out.series.empty());
}

std::string HistogramJson(int temporality, int t, const std::string& counts, const std::string& extra = "") {
  return Request(R"([{"name":"http.server.duration","unit":"s","histogram":{"aggregationTemporality":)" +
                     std::to_string(temporality) + R"(,"dataPoints":[{"attributes":[{"key":"route","value":{"stringValue":"/"}}],)" +
                     extra + R"("timeUnixNano":")" + Ns(t) + R"(","count":"6","sum":2.5,"explicitBounds":[0.1,1],"bucketCounts":)" +
                     counts + "}]}}]",
                 "[]", "{}");
}

TEST(OtlpTranslate, ExplicitHistogramBecomesCumulativeBuckets) {
  OtlpTranslator t;
  const std::string exemplar =
      R"("exemplars":[{"timeUnixNano":")" + Ns(9) +
      R"(","asDouble":0.5,"traceId":"0AF7651916CD43DD8448EB211C80319C","spanId":"B7AD6B7169203331",
          "filteredAttributes":[{"key":"user.id","value":{"stringValue":"u1"}}]}],)";
  TranslatedMetrics out = Translate(t, HistogramJson(2, 10, R"(["1","2","3"])", exemplar));
  EXPECT_EQ(Flatten(out), (std::map<std::string, std::string>{
                              {R"(http_server_duration_seconds_bucket{le="0.1", route="/"})", "1@10000"},
                              {R"(http_server_duration_seconds_bucket{le="1", route="/"})", "3@10000"},
                              {R"(http_server_duration_seconds_bucket{le="+Inf", route="/"})", "6@10000"},
                              {R"(http_server_duration_seconds_count{route="/"})", "6@10000"},
                              {R"(http_server_duration_seconds_sum{route="/"})", "2.5@10000"},
                          }));
  EXPECT_EQ(out.metadata.at(0), (MetricMetadata{"http_server_duration_seconds", MetricFamilyType::kHistogram, "", "s"}));
  // The exemplar (0.5) sits on the first bucket that holds it: le="1".
  int with_exemplars = 0;
  for (const TimeSeries& ts : out.series) {
    if (ts.exemplars.empty()) continue;
    ++with_exemplars;
    EXPECT_EQ(ts.labels.Get("le"), "1");
    EXPECT_EQ(ts.exemplars[0].labels.ToString(),
              R"({span_id="b7ad6b7169203331", trace_id="0af7651916cd43dd8448eb211c80319c", user_id="u1"})");
    EXPECT_EQ(ts.exemplars[0].value, 0.5);
    EXPECT_EQ(ts.exemplars[0].t, Ms(9));
  }
  EXPECT_EQ(with_exemplars, 1);
  EXPECT_EQ(out.exemplars, 1);
}

TEST(OtlpTranslate, DeltaHistogramsAccumulateAndBadLayoutsAreRejected) {
  OtlpTranslator t;
  Translate(t, HistogramJson(1, 10, R"(["1","2","3"])"));
  TranslatedMetrics out = Translate(t, HistogramJson(1, 20, R"(["1","2","3"])"));
  auto flat = Flatten(out);
  EXPECT_EQ(flat[R"(http_server_duration_seconds_bucket{le="1", route="/"})"], "6@20000");
  EXPECT_EQ(flat[R"(http_server_duration_seconds_bucket{le="+Inf", route="/"})"], "12@20000");
  EXPECT_EQ(flat[R"(http_server_duration_seconds_sum{route="/"})"], "5@20000");
  out = Translate(t, HistogramJson(2, 30, R"(["1","2"])"));  // 2 counts for 2 bounds
  EXPECT_TRUE(out.series.empty());
  EXPECT_EQ(out.rejected.Count(PromReject::kInvalidDataPoint), 1);
  EXPECT_NE(out.rejected.first_message.find("2 bucket counts for 2 bounds"), std::string::npos);
  // Stale: every series of the point gets the stale marker.
  out = Translate(t, HistogramJson(2, 40, R"(["1","2","3"])", R"("flags":1,)"));
  for (const TimeSeries& ts : out.series) EXPECT_TRUE(IsStaleNaN(ts.samples.at(0).v)) << ts.labels.ToString();
  EXPECT_EQ(out.series.size(), 5u);
}

TEST(OtlpTranslate, ExponentialHistogramBecomesClassicBuckets) {
  OtlpTranslator t;
  // scale 0: bucket i holds (2^i, 2^(i+1)]; negative bucket 0 holds [-2, -1).
  TranslatedMetrics out = Translate(
      t, Request(R"([{"name":"size","unit":"By","exponentialHistogram":{"aggregationTemporality":2,"dataPoints":[
          {"timeUnixNano":")" + Ns(1) + R"(","count":"8","sum":9,"scale":0,"zeroCount":"1",
           "positive":{"offset":0,"bucketCounts":["1","0","3"]},"negative":{"offset":0,"bucketCounts":["2"]}}]}}])",
                 "[]", "{}"));
  EXPECT_EQ(Flatten(out), (std::map<std::string, std::string>{
                              {R"(size_bytes_bucket{le="-1"})", "2@1000"},
                              {R"(size_bytes_bucket{le="0"})", "3@1000"},
                              {R"(size_bytes_bucket{le="2"})", "4@1000"},
                              {R"(size_bytes_bucket{le="8"})", "7@1000"},
                              {R"(size_bytes_bucket{le="+Inf"})", "8@1000"},
                              {R"(size_bytes_count)", "8@1000"},
                              {R"(size_bytes_sum)", "9@1000"},
                          }));
  // scale 1: base sqrt(2); bucket 1 holds (sqrt2, 2].
  out = Translate(t, Request(R"([{"name":"lat","exponentialHistogram":{"aggregationTemporality":2,"dataPoints":[
          {"timeUnixNano":")" + Ns(1) + R"(","count":"1","scale":1,"positive":{"offset":1,"bucketCounts":["1"]}}]}}])",
                             "[]", "{}"));
  EXPECT_EQ(Flatten(out)[R"(lat_bucket{le="2"})"], "1@1000");
  EXPECT_EQ(Flatten(out).count("lat_sum"), 0u);  // no sum given
  out = Translate(t, Request(R"([{"name":"lat","exponentialHistogram":{"aggregationTemporality":2,"dataPoints":[
          {"timeUnixNano":")" + Ns(1) + R"(","count":"1","scale":99}]}}])",
                             "[]", "{}"));
  EXPECT_EQ(out.rejected.Count(PromReject::kInvalidDataPoint), 1);
}

TEST(OtlpTranslate, SummaryBecomesQuantilesSumAndCount) {
  OtlpTranslator t;
  TranslatedMetrics out = Translate(
      t, Request(R"([{"name":"rpc.latency","unit":"ms","summary":{"dataPoints":[{"timeUnixNano":")" + Ns(5) +
                     R"(","count":"10","sum":123.5,"quantileValues":[{"quantile":0.5,"value":10},{"quantile":0.99,"value":40}]}]}}])",
                 "[]", "{}"));
  EXPECT_EQ(Flatten(out), (std::map<std::string, std::string>{
                              {R"(rpc_latency_milliseconds{quantile="0.5"})", "10@5000"},
                              {R"(rpc_latency_milliseconds{quantile="0.99"})", "40@5000"},
                              {"rpc_latency_milliseconds_sum", "123.5@5000"},
                              {"rpc_latency_milliseconds_count", "10@5000"},
                          }));
  EXPECT_EQ(out.metadata.at(0).type, MetricFamilyType::kSummary);
}

TEST(OtlpTranslate, CollidingAttributeNamesAreJoined) {
  OtlpTranslator t;
  TranslatedMetrics out = Translate(
      t, Request(R"([{"name":"g","gauge":{"dataPoints":[{"timeUnixNano":")" + Ns(1) + R"(","asDouble":1,
          "attributes":[{"key":"a_b","value":{"stringValue":"2"}},{"key":"a.b","value":{"stringValue":"1"}},
                        {"key":"ok","value":{"boolValue":true}},{"key":"d","value":{"doubleValue":0.25}},
                        {"key":"arr","value":{"arrayValue":{"values":[{"intValue":"1"},{"stringValue":"x"}]}}}]}]}}])",
                 "[]", "{}"));
  EXPECT_EQ(Flatten(out), (std::map<std::string, std::string>{
                              {R"(g{a_b="1;2", arr="[1,\"x\"]", d="0.25", ok="true"})", "1@1000"}}));
}

TEST(OtlpTranslate, SumExemplarsStayOnTheirSeriesAndLongOnesKeepOnlyTheIds) {
  OtlpTranslator t;
  const std::string long_value(130, 'x');
  TranslatedMetrics out = Translate(
      t, Request(R"([{"name":"hits","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[
          {"timeUnixNano":")" + Ns(2) + R"(","asInt":"9","exemplars":[
            {"timeUnixNano":")" + Ns(1) + R"(","asInt":"1","spanId":"0000000000000000",
             "traceId":"0AF7651916CD43DD8448EB211C80319C",
             "filteredAttributes":[{"key":"note","value":{"stringValue":")" + long_value + R"("}}]},
            {"timeUnixNano":")" + Ns(1) + R"(","asDouble":2.5,
             "filteredAttributes":[{"key":"http.route","value":{"stringValue":"/a"}}]}]}]}}])",
                 "[]", "{}"));
  ASSERT_EQ(out.series.size(), 1u);
  const TimeSeries& ts = out.series[0];
  EXPECT_EQ(ts.labels.MetricName(), "hits_total");
  ASSERT_EQ(ts.exemplars.size(), 2u);
  // Over 128 characters of labels: only the ids are kept; an all-zero span id is left out.
  EXPECT_EQ(ts.exemplars[0].labels.ToString(), R"({trace_id="0af7651916cd43dd8448eb211c80319c"})");
  EXPECT_EQ(ts.exemplars[0].value, 1);
  EXPECT_EQ(ts.exemplars[1].labels.ToString(), R"({http_route="/a"})");
  EXPECT_EQ(ts.exemplars[1].value, 2.5);
  EXPECT_EQ(ts.exemplars[1].t, Ms(1));
}

TEST(OtlpTranslate, DeltaUpDownCounterAccumulatesAsAGauge) {
  OtlpTranslator t;
  auto point = [](int at, int v) {
    return Request(R"([{"name":"queue.depth","sum":{"aggregationTemporality":1,"isMonotonic":false,"dataPoints":[
        {"timeUnixNano":")" + Ns(at) + R"(","asInt":")" + std::to_string(v) + R"("}]}}])",
                   "[]", "{}");
  };
  EXPECT_EQ(Flatten(Translate(t, point(1, 5)))["queue_depth"], "5@1000");
  TranslatedMetrics out = Translate(t, point(2, -2));
  EXPECT_EQ(Flatten(out)["queue_depth"], "3@2000");
  EXPECT_EQ(out.metadata.at(0).type, MetricFamilyType::kGauge);
}

TEST(OtlpTranslate, StaleMarkerForNoRecordedValue) {
  OtlpTranslator t;
  TranslatedMetrics out = Translate(
      t, Request(R"([{"name":"g","gauge":{"dataPoints":[{"timeUnixNano":")" + Ns(1) + R"(","flags":1}]}}])", "[]",
                 "{}"));
  ASSERT_EQ(out.series.size(), 1u);
  EXPECT_TRUE(IsStaleNaN(out.series[0].samples[0].v));
}

TEST(OtlpTranslate, BadItemsAreRejectedOneByOne) {
  OtlpTranslateOptions options;
  options.limits.max_labels = 3;
  OtlpTranslator t(options);
  TranslatedMetrics out = Translate(
      t, Request(R"([
        {"name":"","gauge":{"dataPoints":[{"timeUnixNano":")" + Ns(1) + R"(","asDouble":1}]}},
        {"name":"...","gauge":{"dataPoints":[{"timeUnixNano":")" + Ns(1) + R"(","asDouble":1}]}},
        {"name":"nodata"},
        {"name":"wide","gauge":{"dataPoints":[
          {"timeUnixNano":")" + Ns(1) + R"(","asDouble":1,"attributes":[
            {"key":"a","value":{"stringValue":"1"}},{"key":"b","value":{"stringValue":"1"}},
            {"key":"c","value":{"stringValue":"1"}}]},
          {"timeUnixNano":")" + Ns(1) + R"(","asDouble":2,"attributes":[{"key":"a","value":{"stringValue":"2"}}]}]}}])",
                 "[]", "{}"));
  EXPECT_EQ(out.rejected.Count(PromReject::kMissingMetricName), 1);
  EXPECT_EQ(out.rejected.Count(PromReject::kInvalidMetricName), 1);
  EXPECT_EQ(out.rejected.Count(PromReject::kNoData), 1);
  EXPECT_EQ(out.rejected.Count(PromReject::kTooManyLabels), 1);
  EXPECT_EQ(Flatten(out), (std::map<std::string, std::string>{{R"(wide{a="2"})", "2@1000"}}));
}

TEST(OtlpTranslate, InvalidUtf8IsAMalformedRequestAndNothingIsLogged) {
  opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest req;
  auto* metric = req.add_resource_metrics()->add_scope_metrics()->add_metrics();
  metric->set_name("g");
  auto* p = metric->mutable_gauge()->add_data_points();
  p->set_time_unix_nano(1000000000);
  p->set_as_double(1);
  auto* kv = p->add_attributes();
  kv->set_key("k");
  kv->mutable_value()->set_string_value("\xff\xfe");  // the setter does not check UTF-8
  std::string bytes;
  ASSERT_TRUE(req.SerializePartialToString(&bytes));
  OtlpTranslator t;
  ::testing::internal::CaptureStderr();
  Result<TranslatedMetrics> out = t.Translate(bytes);
  const std::string logged = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("UTF-8"), std::string::npos) << out.status().message();
  EXPECT_EQ(logged, "");  // protobuf's parser would have logged the bad string
}

TEST(OtlpTranslate, MalformedAndRandomInputNeverCrashes) {
  OtlpTranslator t;
  EXPECT_EQ(t.Translate("\x0a\x05\x0a").status().code(), StatusCode::kInvalidArgument);
  std::mt19937_64 rng(11);
  const std::string seed = ToProto(HistogramJson(1, 10, R"(["1","2","3"])"));
  for (int i = 0; i < 3000; ++i) {
    std::string in = seed;
    for (int k = 0; k < 3; ++k) in[rng() % in.size()] = static_cast<char>(rng());
    (void)t.Translate(in);
  }
}

}  // namespace
}  // namespace telkit
