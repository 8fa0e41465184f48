// The Loki push body: streams by index labels, lines, ns timestamps and
// structured metadata, as Loki's own OTLP ingestion maps log records.
#include "common/pipeline/loki_sink.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"

namespace telkit {
namespace {

namespace otlp = opentelemetry::proto;

void Attr(google::protobuf::RepeatedPtrField<otlp::common::v1::KeyValue>* attrs, const std::string& k,
          const std::string& v) {
  auto* a = attrs->Add();
  a->set_key(k);
  a->mutable_value()->set_string_value(v);
}

TEST(LokiPushBody, GroupsRecordsIntoStreamsByIndexLabelsAndKeepsTheRestAsMetadata) {
  otlp::collector::logs::v1::ExportLogsServiceRequest r;
  auto* rl = r.add_resource_logs();
  Attr(rl->mutable_resource()->mutable_attributes(), "service.name", "shop");
  Attr(rl->mutable_resource()->mutable_attributes(), "k8s.pod.name", "shop-1");
  Attr(rl->mutable_resource()->mutable_attributes(), "host.name", "box");
  auto* sl = rl->add_scope_logs();
  sl->mutable_scope()->set_name("lib");
  sl->mutable_scope()->set_version("1.2");
  auto* a = sl->add_log_records();
  a->set_time_unix_nano(1700000000000000001ull);
  a->set_severity_number(otlp::logs::v1::SEVERITY_NUMBER_ERROR);
  a->set_severity_text("ERROR");
  a->mutable_body()->set_string_value("checkout failed");
  a->set_trace_id(std::string(16, '\x01'));
  Attr(a->mutable_attributes(), "http.route", "/cart");
  auto* b = sl->add_log_records();
  b->set_observed_time_unix_nano(1700000000000000002ull);  // no time: the observed time
  auto* kv = b->mutable_body()->mutable_kvlist_value()->add_values();
  kv->set_key("n");
  kv->mutable_value()->set_int_value(3);
  auto* other = r.add_resource_logs();  // no service.name
  other->add_scope_logs()->add_log_records()->mutable_body()->set_string_value("x");

  int64_t records = 0;
  auto body = LokiPushBody(r.SerializeAsString(), &records);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(records, 3);
  EXPECT_EQ(nlohmann::json::parse(*body), nlohmann::json::parse(R"({"streams":[
    {"stream":{"k8s_pod_name":"shop-1","service_name":"shop"},
     "values":[
       ["1700000000000000001","checkout failed",{"host_name":"box","http_route":"/cart","scope_name":"lib",
        "scope_version":"1.2","severity_number":"17","severity_text":"ERROR",
        "trace_id":"01010101010101010101010101010101"}],
       ["1700000000000000002","{\"n\":3}",{"host_name":"box","scope_name":"lib","scope_version":"1.2"}]]},
    {"stream":{"service_name":"unknown_service"},"values":[["0","x"]]}]})"));
}

TEST(LokiSink, SpecsAreChecked) {
  EXPECT_TRUE(IsLokiSpec("loki+http://127.0.0.1:3100"));
  EXPECT_TRUE(OpenLokiSink("loki+http://127.0.0.1:3100", {}).ok());
  EXPECT_TRUE(OpenLokiSink("loki+https://loki:3100/prefix/", {}).ok());
  EXPECT_EQ(OpenLokiSink("loki+ftp://x:1", {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenLokiSink("loki+http://", {}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace telkit
