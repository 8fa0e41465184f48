#include "common/logstore/otlp_logs.h"

#include <gtest/gtest.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"

namespace telkit {
namespace {

using opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest;

std::string Meta(const LogEntry& e, std::string_view name) {
  for (const Label& l : e.metadata)
    if (l.name == name) return l.value;
  return "<absent>";
}

TEST(OtlpLogs, MapsLikeLokiNativeOtlp) {
  ExportLogsServiceRequest req;
  auto* rl = req.add_resource_logs();
  auto* a = rl->mutable_resource()->add_attributes();
  a->set_key("service.name");
  a->mutable_value()->set_string_value("checkout");
  a = rl->mutable_resource()->add_attributes();
  a->set_key("deployment.environment");
  a->mutable_value()->set_string_value("prod");
  a = rl->mutable_resource()->add_attributes();
  a->set_key("k8s.pod.name");
  a->mutable_value()->set_string_value("pod-1");
  a = rl->mutable_resource()->add_attributes();
  a->set_key("host.name");
  a->mutable_value()->set_string_value("h1");
  auto* sl = rl->add_scope_logs();
  sl->mutable_scope()->set_name("my.lib");
  sl->mutable_scope()->set_version("1.2");
  auto* r = sl->add_log_records();
  r->set_time_unix_nano(1700000000000000001ULL);
  r->set_severity_number(opentelemetry::proto::logs::v1::SEVERITY_NUMBER_ERROR2);
  r->set_severity_text("ERROR");
  r->mutable_body()->set_string_value("payment failed");
  r->set_trace_id(std::string("\x0a\xf7\x65\x19\x16\xcd\x43\xdd\x84\x48\xeb\x21\x1c\x80\x31\x9c", 16));
  r->set_span_id(std::string("\xb7\xad\x6b\x71\x69\x20\x33\x31", 8));
  a = r->add_attributes();
  a->set_key("http.status_code");
  a->mutable_value()->set_int_value(502);
  auto* r2 = sl->add_log_records();
  r2->set_observed_time_unix_nano(5);
  r2->set_severity_text("Warning");
  auto* kv = r2->mutable_body()->mutable_kvlist_value()->add_values();
  kv->set_key("msg");
  kv->mutable_value()->set_string_value("hi");
  auto* r3 = req.add_resource_logs()->add_scope_logs()->add_log_records();
  r3->mutable_body()->set_int_value(42);

  OtlpLogsMapOptions o;
  o.index_attributes = {"k8s.pod.name"};
  o.now_ns = 77;
  auto pushes = MapOtlpLogs(req, o);
  ASSERT_EQ(pushes.size(), 3u);
  EXPECT_EQ(pushes[0].stream.ToString(),
            "{deployment_environment=\"prod\", k8s_pod_name=\"pod-1\", level=\"error\", service_name=\"checkout\"}");
  const LogEntry& e = pushes[0].entries[0];
  EXPECT_EQ(e.ts, 1700000000000000001);
  EXPECT_EQ(e.line, "payment failed");
  EXPECT_EQ(Meta(e, "trace_id"), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(Meta(e, "span_id"), "b7ad6b7169203331");
  EXPECT_EQ(Meta(e, "http_status_code"), "502");
  EXPECT_EQ(Meta(e, "scope_name"), "my.lib");
  EXPECT_EQ(Meta(e, "scope_version"), "1.2");
  EXPECT_EQ(Meta(e, "host_name"), "h1");  // not an index attribute: metadata
  EXPECT_EQ(Meta(e, "severity_text"), "ERROR");
  EXPECT_EQ(Meta(e, "severity_number"), "18");
  EXPECT_EQ(pushes[1].stream.Get("level"), "warn");
  EXPECT_EQ(pushes[1].entries[0].ts, 5);
  EXPECT_EQ(pushes[1].entries[0].line, "{\"msg\":\"hi\"}");
  EXPECT_EQ(Meta(pushes[1].entries[0], "trace_id"), "<absent>");
  EXPECT_EQ(pushes[2].stream.ToString(), "{level=\"unknown\", service_name=\"unknown_service\"}");
  EXPECT_EQ(pushes[2].entries[0].line, "42");
  EXPECT_EQ(pushes[2].entries[0].ts, 77);
}

TEST(OtlpLogs, SeverityAndNames) {
  EXPECT_EQ(SeverityLevel(1, ""), "trace");
  EXPECT_EQ(SeverityLevel(9, "whatever"), "info");
  EXPECT_EQ(SeverityLevel(24, ""), "fatal");
  EXPECT_EQ(SeverityLevel(0, "CRITICAL"), "fatal");
  EXPECT_EQ(SeverityLevel(0, "err"), "error");
  EXPECT_EQ(SeverityLevel(0, ""), "unknown");
  EXPECT_EQ(OtlpAttributeName("k8s.namespace.name"), "k8s_namespace_name");
  EXPECT_EQ(OtlpAttributeName("1x-y"), "_1x_y");
}

}  // namespace
}  // namespace telkit
