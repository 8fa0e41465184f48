#include "common/pipeline/prom_rw_output.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "common/admin/metrics_registry.h"
#include "common/otlp/otlp_json.h"
#include "common/pipeline/pipeline_output.h"
#include "common/prom/remote_write.h"
#include "common/recv/otlp_http_server.h"
#include "common/recv/otlp_receiver.h"
#include "common/stream/stream_input.h"
#include "common/stream/stream_output.h"

namespace telkit {
namespace {

TEST(PromRwOutput, ParsesSpecs) {
  OtlpExporterOptions defaults;
  defaults.headers = {{"Authorization", "Bearer x"}};
  auto t = ParseOutputTarget("prom-rw+http://prometheus:9090/api/v1/write", defaults);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->kind, OutputTarget::Kind::kPromRw);
  EXPECT_EQ(t->prom_rw.url, "http://prometheus:9090/api/v1/write");
  EXPECT_EQ(t->prom_rw.headers, defaults.headers);
  t = ParseOutputTarget("prom-rw+https://vm:8428/api/v1/write", defaults);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->prom_rw.url, "https://vm:8428/api/v1/write");
  EXPECT_EQ(ParseOutputTarget("prom-rw+ftp://x/y", defaults).status().message(),
            "output 'prom-rw+ftp://x/y': use prom-rw+http://HOST:PORT/PATH or prom-rw+https://HOST:PORT/PATH");
  EXPECT_FALSE(ParseOutputTarget("prom-rw+http://", defaults).ok());
}

// Against otlp-recv's remote-write endpoint (a real receiver): metrics
// frames arrive translated, prom-rw frames as they were, traces are refused.
TEST(PromRwOutput, TranslatesMetricsAndForwardsPromRw) {
  signal(SIGPIPE, SIG_IGN);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("prom_rw_output_" + std::to_string(getpid()) + ".tks")).string();
  MetricsRegistry registry;
  const std::string metrics_json =
      R"({"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
          "scopeMetrics":[{"metrics":[{"name":"orders","sum":{"aggregationTemporality":1,"isMonotonic":true,
          "dataPoints":[{"timeUnixNano":"1732492800000000000","asInt":"3"}]}}]}]}]})";
  Result<std::string> metrics = OtlpJsonToProtobuf(Signal::kMetrics, metrics_json);
  ASSERT_TRUE(metrics.ok());
  TimeSeries ts{Labels{{"__name__", "forwarded"}}, {{5, 1}}, {}};
  const std::string prom_rw = EncodeWriteRequest(std::span(&ts, 1));
  {
    auto output = OpenStreamOutput(path, {});
    ASSERT_TRUE(output.ok());
    OtlpReceiver receiver({}, std::move(*output), registry);
    OtlpHttpServerOptions server_options;
    server_options.listen = {"127.0.0.1", 0};
    auto server = OtlpHttpServer::Start(server_options, receiver, nullptr);
    ASSERT_TRUE(server.ok());
    auto target =
        ParseOutputTarget("prom-rw+http://127.0.0.1:" + std::to_string((*server)->port()) + "/api/v1/write", {});
    ASSERT_TRUE(target.ok());
    auto sink = OpenOutputSink(*target, 0);
    ASSERT_TRUE(sink.ok());
    for (int i = 0; i < 2; ++i) {  // the same delta twice: the total grows
      Dispatch d;
      d.signal = static_cast<uint8_t>(Signal::kMetrics);
      d.payload = std::make_shared<std::string>(*metrics);
      if (i == 1) {  // one second later
        std::string json = metrics_json;
        json.replace(json.find("1732492800"), 10, "1732492801");
        d.payload = std::make_shared<std::string>(*OtlpJsonToProtobuf(Signal::kMetrics, json));
      }
      d.items = 1;
      SendReport report;
      ASSERT_TRUE((*sink)->Send(d, false, &report).ok());
      EXPECT_FALSE(report.refused_frame);
      EXPECT_GE(report.export_seconds, 0);
    }
    Dispatch forward;
    forward.signal = static_cast<uint8_t>(Signal::kPrometheusRemoteWrite);
    forward.payload = std::make_shared<std::string>(prom_rw);
    SendReport report;
    ASSERT_TRUE((*sink)->Send(forward, false, &report).ok());
    Dispatch traces;
    traces.signal = static_cast<uint8_t>(Signal::kTraces);
    traces.payload = std::make_shared<std::string>("");
    traces.items = 4;
    ASSERT_TRUE((*sink)->Send(traces, false, &report).ok());
    EXPECT_TRUE(report.refused_frame);
    EXPECT_EQ(report.refused.Get(DropReason::kUnsupportedSignal), 4);
    (*server)->Stop();
    ASSERT_TRUE(receiver.Shutdown(std::chrono::seconds(5)).ok());
  }
  auto input = OpenStreamInput(path);
  ASSERT_TRUE(input.ok());
  std::vector<std::string> got;
  for (int i = 0; i < 10; ++i) {
    auto frame = (*input)->Next();
    if (!frame.ok() || !frame->has_value()) break;
    Result<DecodedWriteRequest> decoded = DecodeWriteRequest((*frame)->payload);
    ASSERT_TRUE(decoded.ok());
    for (const TimeSeries& s : decoded->series) {
      got.push_back(s.labels.ToString() + " " + std::to_string(s.samples.at(0).v));
    }
  }
  EXPECT_EQ(got, (std::vector<std::string>{R"(orders_total{job="shop"} 3.000000)",
                                           R"(orders_total{job="shop"} 6.000000)", "forwarded{} 1.000000"}));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace telkit
