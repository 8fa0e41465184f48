// The Tempo HTTP API with real HTTP requests (cpp-httplib) against a real
// store directory written by TraceStore, including the requests Grafana's
// Tempo data source sends.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <chrono>

#include "common/fs/file_system.h"
#include "common/otlp/otlp_json.h"
#include "common/tempoapi/tempo_api_server.h"
#include "common/test_support/temp_dir.h"
#include "common/tracestore/trace_store.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit::tempoapi {
namespace {

namespace pb = opentelemetry::proto;
using nlohmann::json;
using test_support::TempDir;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Id(int trace, size_t n) {
  std::string id(n, '\0');
  id[n - 1] = static_cast<char>(trace);
  id[0] = '\x0a';
  return id;
}

void Attr(google::protobuf::RepeatedPtrField<pb::common::v1::KeyValue>* a, const std::string& k, const std::string& v) {
  auto* kv = a->Add();
  kv->set_key(k);
  kv->mutable_value()->set_string_value(v);
}
void IntAttr(google::protobuf::RepeatedPtrField<pb::common::v1::KeyValue>* a, const std::string& k, int64_t v) {
  auto* kv = a->Add();
  kv->set_key(k);
  kv->mutable_value()->set_int_value(v);
}

// Trace 1: web GET /orders (server) -> db SELECT (client, error, event,
// link to trace 2). Trace 2: worker "tick" alone.
std::string Request(int64_t base) {
  pb::collector::trace::v1::ExportTraceServiceRequest req;
  auto* web = req.add_resource_spans();
  Attr(web->mutable_resource()->mutable_attributes(), "service.name", "web");
  auto* ss = web->add_scope_spans();
  ss->mutable_scope()->set_name("web-lib");
  auto* root = ss->add_spans();
  root->set_trace_id(Id(1, 16));
  root->set_span_id(Id(1, 8));
  root->set_name("GET /orders");
  root->set_kind(pb::trace::v1::Span::SPAN_KIND_SERVER);
  root->set_start_time_unix_nano(base);
  root->set_end_time_unix_nano(base + 250'000'000);
  IntAttr(root->mutable_attributes(), "http.status_code", 500);
  Attr(root->mutable_attributes(), "http.method", "GET");
  auto* db = ss->add_spans();
  db->set_trace_id(Id(1, 16));
  db->set_span_id(Id(2, 8));
  db->set_parent_span_id(Id(1, 8));
  db->set_name("SELECT orders");
  db->set_kind(pb::trace::v1::Span::SPAN_KIND_CLIENT);
  db->set_start_time_unix_nano(base + 10'000'000);
  db->set_end_time_unix_nano(base + 200'000'000);
  db->mutable_status()->set_code(pb::trace::v1::Status::STATUS_CODE_ERROR);
  db->mutable_status()->set_message("deadlock");
  Attr(db->mutable_attributes(), "db.system", "postgresql");
  auto* ev = db->add_events();
  ev->set_name("exception");
  ev->set_time_unix_nano(base + 150'000'000);
  Attr(ev->mutable_attributes(), "exception.type", "DeadlockError");
  auto* link = db->add_links();
  link->set_trace_id(Id(2, 16));
  link->set_span_id(Id(3, 8));
  auto* worker = req.add_resource_spans();
  Attr(worker->mutable_resource()->mutable_attributes(), "service.name", "worker");
  auto* tick = worker->add_scope_spans()->add_spans();
  tick->set_trace_id(Id(2, 16));
  tick->set_span_id(Id(3, 8));
  tick->set_name("tick");
  tick->set_kind(pb::trace::v1::Span::SPAN_KIND_INTERNAL);
  tick->set_start_time_unix_nano(base + 1'000'000'000);
  tick->set_end_time_unix_nano(base + 1'005'000'000);
  return req.SerializeAsString();
}

class TempoApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path() + "/traces";
    base_ = NowNs() - 60'000'000'000;
    auto store = TraceStore::Open(DefaultFileSystem(), dir_);
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->Append(Request(base_)).ok());
    ASSERT_TRUE((*store)->CutAll().ok());
    ASSERT_TRUE((*store)->Close().ok());
    TempoApiServerOptions o;
    o.listen = {"127.0.0.1", 0};
    o.api.traces_dir = dir_;
    auto server = StartTempoApi(o);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(*server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }

  json GetJson(const std::string& path, int want_status = 200) {
    auto res = client_->Get(path);
    EXPECT_TRUE(res) << path;
    if (!res) return {};
    EXPECT_EQ(res->status, want_status) << path << ": " << res->body;
    if (res->status != 200) return json(res->body);
    return json::parse(res->body);
  }

  std::string Hex(int trace) { return HexId(Id(trace, 16)); }

  TempDir tmp_;
  std::string dir_;
  int64_t base_ = 0;
  std::unique_ptr<TempoApiServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(TempoApiTest, TraceByIdJsonAndProtobuf) {
  json t = GetJson("/api/traces/" + Hex(1));
  ASSERT_TRUE(t.contains("batches"));
  size_t spans = 0;
  for (const auto& b : t["batches"]) {
    for (const auto& s : b["scopeSpans"]) spans += s["spans"].size();
  }
  EXPECT_EQ(spans, 2u);
  EXPECT_EQ(t["batches"][0]["resource"]["attributes"][0]["value"]["stringValue"], "web");

  // Protobuf: the bytes of a tempopb.Trace (= ExportTraceServiceRequest).
  auto res = client_->Get("/api/traces/" + Hex(1), {{"Accept", "application/protobuf"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/protobuf");
  pb::collector::trace::v1::ExportTraceServiceRequest back;
  ASSERT_TRUE(back.ParseFromString(res->body));
  const auto& db = back.resource_spans(0).scope_spans(0).spans(1);
  EXPECT_EQ(db.name(), "SELECT orders");
  EXPECT_EQ(db.events(0).name(), "exception");
  EXPECT_EQ(db.links(0).trace_id(), Id(2, 16));
  EXPECT_EQ(db.status().message(), "deadlock");
  EXPECT_EQ(db.parent_span_id(), Id(1, 8));

  // v2 wraps it: {"trace": ...} and TraceByIDResponse field 1.
  json v2 = GetJson("/api/v2/traces/" + Hex(2));
  ASSERT_TRUE(v2["trace"].contains("resourceSpans"));
  EXPECT_EQ(v2["trace"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"], "tick");
  res = client_->Get("/api/v2/traces/" + Hex(2), {{"Accept", "application/protobuf"}});
  ASSERT_TRUE(res);
  ASSERT_GT(res->body.size(), 2u);
  EXPECT_EQ(res->body[0], '\x0a');

  // Short ids are left-padded; unknown ids 404; bad ids 400.
  std::string short_id = Hex(2);
  short_id.erase(0, short_id.find_first_not_of('0'));
  EXPECT_EQ(GetJson("/api/traces/" + short_id)["batches"].size(), 1u);
  EXPECT_EQ(GetJson("/api/traces/" + HexId(Id(9, 16)), 404), json("trace not found"));
  GetJson("/api/traces/xyz", 400);
  GetJson("/api/traces/" + std::string(33, 'a'), 400);
}

TEST_F(TempoApiTest, SearchWithTraceql) {
  json r = GetJson("/api/search?q=" + httplib::detail::encode_query_param("{ status = error && span.db.system = \"postgresql\" }"));
  ASSERT_EQ(r["traces"].size(), 1u);
  const json& t = r["traces"][0];
  EXPECT_EQ(t["traceID"], Hex(1));
  EXPECT_EQ(t["rootServiceName"], "web");
  EXPECT_EQ(t["rootTraceName"], "GET /orders");
  EXPECT_EQ(t["durationMs"], 250);
  EXPECT_EQ(t["startTimeUnixNano"], std::to_string(base_));
  ASSERT_EQ(t["spanSets"].size(), 1u);
  EXPECT_EQ(t["spanSet"]["matched"], 1);
  const json& span = t["spanSet"]["spans"][0];
  EXPECT_EQ(span["spanID"], HexId(Id(2, 8)));
  EXPECT_EQ(span["durationNanos"], "190000000");
  json attrs = span["attributes"];
  EXPECT_NE(std::find(attrs.begin(), attrs.end(), json{{"key", "status"}, {"value", {{"stringValue", "error"}}}}),
            attrs.end());
  EXPECT_NE(std::find(attrs.begin(), attrs.end(),
                      json{{"key", "db.system"}, {"value", {{"stringValue", "postgresql"}}}}),
            attrs.end());
  // The store narrows by status and db.system first: one trace read.
  EXPECT_EQ(r["metrics"]["inspectedTraces"], 1);

  // Pipelines: by() and count() land in the spanset's attributes.
  r = GetJson("/api/search?q=" + httplib::detail::encode_query_param("{ } | by(resource.service.name) | count() > 1"));
  ASSERT_EQ(r["traces"].size(), 1u);
  EXPECT_EQ(r["traces"][0]["spanSet"]["attributes"][0]["key"], "by(resource.service.name)");
  EXPECT_EQ(r["traces"][0]["spanSet"]["attributes"][1],
            (json{{"key", "count()"}, {"value", {{"intValue", "2"}}}}));

  // limit, spss, minDuration, start/end, tags.
  EXPECT_EQ(GetJson("/api/search?limit=1")["traces"].size(), 1u);
  EXPECT_EQ(GetJson("/api/search?limit=1")["traces"][0]["traceID"], Hex(2));  // latest first
  EXPECT_EQ(GetJson("/api/search?q=%7B%7D&spss=1")["traces"][1]["spanSet"]["spans"].size(), 1u);
  EXPECT_EQ(GetJson("/api/search?q=%7B%7D&spss=1")["traces"][1]["spanSet"]["matched"], 2);
  r = GetJson("/api/search?minDuration=100ms");
  ASSERT_EQ(r["traces"].size(), 1u);
  EXPECT_EQ(r["traces"][0]["traceID"], Hex(1));
  EXPECT_EQ(GetJson("/api/search?maxDuration=10ms")["traces"][0]["traceID"], Hex(2));
  const int64_t s = base_ / 1'000'000'000;
  EXPECT_EQ(GetJson("/api/search?start=" + std::to_string(s + 1) + "&end=" + std::to_string(s + 100))["traces"].size(),
            1u);
  EXPECT_EQ(GetJson("/api/search?start=" + std::to_string(s - 100) + "&end=" + std::to_string(s - 10))["traces"].size(),
            0u);
  r = GetJson("/api/search?tags=" + httplib::detail::encode_query_param("service.name=worker"));
  ASSERT_EQ(r["traces"].size(), 1u);
  EXPECT_EQ(r["traces"][0]["rootServiceName"], "worker");
  r = GetJson("/api/search?tags=" + httplib::detail::encode_query_param("http.method=GET name=\"GET /orders\""));
  EXPECT_EQ(r["traces"].size(), 1u);

  // Bad input: 400 with the parser's message.
  auto res = client_->Get("/api/search?q=" + httplib::detail::encode_query_param("{ .a = }"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(res->body, "parse error at line 1, col 8: syntax error: unexpected '}'");
  GetJson("/api/search?limit=x", 400);
  GetJson("/api/search?minDuration=fast", 400);
  GetJson("/api/search?start=10&end=5", 400);
  GetJson("/api/nope", 404);
  EXPECT_GE(server_->counters().client_errors.load(), 5u);
}

TEST_F(TempoApiTest, TagsAndValues) {
  json v1 = GetJson("/api/search/tags");
  for (const char* want : {"service.name", "http.method", "http.status_code", "db.system"}) {
    EXPECT_NE(std::find(v1["tagNames"].begin(), v1["tagNames"].end(), want), v1["tagNames"].end()) << want;
  }
  json v2 = GetJson("/api/v2/search/tags");
  std::map<std::string, json> scopes;
  for (const auto& s : v2["scopes"]) scopes[s["name"]] = s["tags"];
  EXPECT_EQ(scopes["resource"], json({"service.name"}));
  EXPECT_EQ(scopes["span"], json({"db.system", "http.method", "http.status_code"}));
  EXPECT_EQ(scopes["event"], json({"exception.type"}));
  EXPECT_TRUE(scopes.contains("intrinsic"));
  EXPECT_EQ(GetJson("/api/v2/search/tags?scope=span")["scopes"].size(), 1u);

  EXPECT_EQ(GetJson("/api/search/tag/service.name/values")["tagValues"], json({"web", "worker"}));
  EXPECT_EQ(GetJson("/api/v2/search/tag/resource.service.name/values")["tagValues"],
            json::parse(R"([{"type":"string","value":"web"},{"type":"string","value":"worker"}])"));
  EXPECT_EQ(GetJson("/api/v2/search/tag/span.http.status_code/values")["tagValues"],
            json::parse(R"([{"type":"int","value":"500"}])"));
  EXPECT_EQ(GetJson("/api/v2/search/tag/status/values")["tagValues"],
            json::parse(R"([{"type":"keyword","value":"error"},{"type":"keyword","value":"unset"}])"));
  EXPECT_EQ(GetJson("/api/v2/search/tag/name/values")["tagValues"].size(), 3u);
  // q scopes the values to the spans the query matches; an unfinished q is ignored.
  EXPECT_EQ(GetJson("/api/v2/search/tag/name/values?q=" +
                    httplib::detail::encode_query_param("{ resource.service.name = \"worker\" }"))["tagValues"],
            json::parse(R"([{"type":"string","value":"tick"}])"));
  EXPECT_EQ(GetJson("/api/v2/search/tag/name/values?q=%7B%20.a%20%3D")["tagValues"].size(), 3u);
  GetJson("/api/v2/search/tag/%7B/values", 400);
}

// The requests Grafana's Tempo data source sends (health check, query
// editor autocomplete, search, trace view), in its order and with its
// parameters and headers.
TEST_F(TempoApiTest, GrafanaDataSourceReplay) {
  const std::string start = std::to_string(base_ / 1'000'000'000 - 3600);
  const std::string end = std::to_string(base_ / 1'000'000'000 + 3600);
  auto res = client_->Get("/api/echo");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "echo");
  EXPECT_EQ(GetJson("/api/status/buildinfo")["version"], TELKIT_VERSION);
  json tags = GetJson("/api/v2/search/tags?scope=all&start=" + start + "&end=" + end);
  EXPECT_GE(tags["scopes"].size(), 3u);
  json values = GetJson("/api/v2/search/tag/resource.service.name/values?start=" + start + "&end=" + end +
                        "&q=" + httplib::detail::encode_query_param("{}"));
  EXPECT_EQ(values["tagValues"].size(), 2u);
  json search = GetJson("/api/search?q=" +
                        httplib::detail::encode_query_param("{resource.service.name=\"web\" && kind=server}") +
                        "&limit=20&spss=3&start=" + start + "&end=" + end);
  ASSERT_EQ(search["traces"].size(), 1u);
  const std::string id = search["traces"][0]["traceID"];
  res = client_->Get("/api/v2/traces/" + id + "?start=" + start + "&end=" + end,
                     {{"Accept", "application/protobuf"}, {"Origin", "http://grafana:3000"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Access-Control-Allow-Origin"), "http://grafana:3000");
  res = client_->Get("/ready");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "ready");
}

TEST(TempoApiNoStore, EmptyAnswers) {
  TempDir tmp;
  TempoApiOptions o;
  o.traces_dir = tmp.path() + "/none";
  TempoApi api(o);
  EXPECT_EQ(api.Handle({"GET", "/api/search", {}, ""}).body,
            R"({"metrics":{"completedJobs":1,"inspectedBytes":"0","inspectedTraces":0,"totalJobs":1},"traces":[]})");
  EXPECT_EQ(api.Handle({"GET", "/api/traces/01", {}, ""}).status, 404);
  EXPECT_EQ(*TagsToTraceql("service.name=api  name=\"GET /\" status.code=error"),
            "{ .service.name = \"api\" && name = \"GET /\" && status = error }");
}

}  // namespace
}  // namespace telkit::tempoapi
