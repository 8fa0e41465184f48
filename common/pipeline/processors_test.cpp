// The processors on real OTLP requests (built with the generated classes):
// resource edits, the item filter, consistent trace sampling.
#include "common/pipeline/processors.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace otlp = opentelemetry::proto;
using otlp::collector::logs::v1::ExportLogsServiceRequest;
using otlp::collector::metrics::v1::ExportMetricsServiceRequest;
using otlp::collector::trace::v1::ExportTraceServiceRequest;

template <typename M>
void AddAttr(M* m, const std::string& key, const std::string& value) {
  auto* a = m->add_attributes();
  a->set_key(key);
  a->mutable_value()->set_string_value(value);
}

std::string TraceId(int n) {
  std::string id(16, '\0');
  for (int i = 0; i < 16; ++i) id[i] = static_cast<char>((n * 131 + i * 17 + 7) & 0xFF);
  id[0] = static_cast<char>(n >> 8);  // distinct for every n < 65536
  id[1] = static_cast<char>(n);
  return id;
}

// `traces` traces of `spans_each` spans, spread over two resources.
ExportTraceServiceRequest ManyTraces(int traces, int spans_each) {
  ExportTraceServiceRequest r;
  for (int res = 0; res < 2; ++res) {
    auto* rs = r.add_resource_spans();
    AddAttr(rs->mutable_resource(), "service.name", res == 0 ? "web" : "db");
    auto* ss = rs->add_scope_spans();
    ss->mutable_scope()->set_name("lib");
    for (int t = res; t < traces; t += 2) {
      for (int s = 0; s < spans_each; ++s) {
        auto* span = ss->add_spans();
        span->set_trace_id(TraceId(t));
        span->set_span_id(std::string(7, '\x01') + static_cast<char>(s + 1));
        span->set_name(s == 0 ? "GET /cart" : "SELECT cart");
        span->set_kind(s == 0 ? otlp::trace::v1::Span::SPAN_KIND_SERVER : otlp::trace::v1::Span::SPAN_KIND_CLIENT);
        span->set_start_time_unix_nano(1000000000);
        span->set_end_time_unix_nano(1000000000 + 1000000ull * (s + 1) * 100);
      }
    }
  }
  return r;
}

RequestParts Decompose(Signal signal, const google::protobuf::Message& m) {
  Result<RequestParts> p = DecomposeRequest(signal, std::make_shared<const std::string>(m.SerializeAsString()));
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(*p);
}

template <typename M>
M Reparse(const RequestParts& parts) {
  M m;
  EXPECT_TRUE(m.ParseFromString(EncodeRequest(parts)));
  return m;
}

std::map<std::string, std::string> ResourceAttrs(const otlp::resource::v1::Resource& r) {
  std::map<std::string, std::string> out;
  for (const auto& kv : r.attributes()) out[kv.key()] = kv.value().string_value();
  return out;
}

TEST(ParseResourceAction, FormsAndErrors) {
  auto a = ParseResourceAction("upsert:deployment.environment=production");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->kind, ResourceAction::Kind::kUpsert);
  EXPECT_EQ(a->key, "deployment.environment");
  EXPECT_EQ(a->value, "production");
  a = ParseResourceAction("insert:k=a=b");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->value, "a=b");
  a = ParseResourceAction("delete:host.name");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->kind, ResourceAction::Kind::kDelete);
  for (const char* bad : {"upsert", "add:k=v", "insert:=v", "update:k", "delete:"}) {
    EXPECT_EQ(ParseResourceAction(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ParseResourceAction("add:k=v").status().message(),
            "unknown action 'add' in 'add:k=v' (insert, update, upsert, delete)");
}

TEST(ResourceProcessor, InsertUpdateUpsertDelete) {
  ExportTraceServiceRequest r = ManyTraces(2, 1);
  AddAttr(r.mutable_resource_spans(0)->mutable_resource(), "host.name", "ip-10-0-0-7");
  std::vector<ResourceAction> actions;
  for (const char* spec : {"insert:service.name=ignored", "insert:env=prod", "update:host.name=box",
                           "update:absent=x", "upsert:service.version=1.2", "delete:host.name", "upsert:zone=a"}) {
    actions.push_back(*ParseResourceAction(spec));
  }
  // host.name is updated, then deleted: gone.
  ResourceProcessor p(actions);
  RequestParts parts = Decompose(Signal::kTraces, r);
  EXPECT_TRUE(p.Apply(parts));
  auto got = Reparse<ExportTraceServiceRequest>(parts);
  using Attrs = std::map<std::string, std::string>;
  EXPECT_EQ(ResourceAttrs(got.resource_spans(0).resource()),
            (Attrs{{"service.name", "web"}, {"env", "prod"}, {"service.version", "1.2"}, {"zone", "a"}}));
  EXPECT_EQ(ResourceAttrs(got.resource_spans(1).resource()),
            (Attrs{{"service.name", "db"}, {"env", "prod"}, {"service.version", "1.2"}, {"zone", "a"}}));
  // Items are untouched.
  EXPECT_EQ(got.resource_spans(0).scope_spans(0).spans(0).SerializeAsString(),
            r.resource_spans(0).scope_spans(0).spans(0).SerializeAsString());
  // A second request with the same resources comes from the cache, same result.
  RequestParts again = Decompose(Signal::kTraces, r);
  EXPECT_TRUE(p.Apply(again));
  EXPECT_EQ(EncodeRequest(again), EncodeRequest(parts));
}

TEST(ResourceProcessor, CreatesAResourceWhereThereIsNone) {
  ExportLogsServiceRequest r;
  r.add_resource_logs()->add_scope_logs()->add_log_records()->mutable_body()->set_string_value("x");
  ResourceProcessor p({*ParseResourceAction("insert:host.name=h1"), *ParseResourceAction("update:a=b")});
  RequestParts parts = Decompose(Signal::kLogs, r);
  EXPECT_TRUE(p.Apply(parts));
  auto got = Reparse<ExportLogsServiceRequest>(parts);
  EXPECT_EQ(ResourceAttrs(got.resource_logs(0).resource()), (std::map<std::string, std::string>{{"host.name", "h1"}}));
  ResourceProcessor nothing({*ParseResourceAction("delete:absent")});
  RequestParts unchanged = Decompose(Signal::kLogs, r);
  EXPECT_FALSE(nothing.Apply(unchanged));
}

FilterRules Rules(Signal signal, std::vector<std::string> drop, std::vector<std::string> keep = {}) {
  FilterRules rules;
  for (const auto& t : drop) rules.drop.push_back(*FilterExpr::Parse(signal, t));
  for (const auto& t : keep) rules.keep.push_back(*FilterExpr::Parse(signal, t));
  return rules;
}

TEST(ItemFilter, DropsExactlyTheMatchingSpans) {
  ExportTraceServiceRequest r = ManyTraces(4, 3);  // 12 spans, 4 of them GET /cart
  ItemFilter f(Rules(Signal::kTraces, {"name == \"GET /cart\""}), {}, {});
  RequestParts parts = Decompose(Signal::kTraces, r);
  DropCounts dropped;
  EXPECT_EQ(f.Apply(parts, &dropped), 4);
  EXPECT_EQ(dropped.Get(DropReason::kFilterDrop), 4);
  EXPECT_EQ(parts.ItemCount(), 8);
  auto got = Reparse<ExportTraceServiceRequest>(parts);
  for (const auto& rs : got.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) {
      for (const auto& s : ss.spans()) EXPECT_EQ(s.name(), "SELECT cart");
    }
  }
}

TEST(ItemFilter, KeepRulesAndResourceConditionsAndEmptiedContainers) {
  ExportTraceServiceRequest r = ManyTraces(4, 3);
  // Keep only the spans of service web slower than 150 ms: the db resource goes entirely.
  ItemFilter f(Rules(Signal::kTraces, {}, {"resource.service.name == web && duration_ms > 150"}), {}, {});
  RequestParts parts = Decompose(Signal::kTraces, r);
  DropCounts dropped;
  EXPECT_EQ(f.Apply(parts, &dropped), 8);
  EXPECT_EQ(dropped.Get(DropReason::kFilterKeep), 8);
  auto got = Reparse<ExportTraceServiceRequest>(parts);
  ASSERT_EQ(got.resource_spans_size(), 1);
  EXPECT_EQ(got.resource_spans(0).resource().attributes(0).value().string_value(), "web");
  EXPECT_EQ(got.resource_spans(0).scope_spans(0).spans_size(), 4);
  // Everything dropped: nothing is left at all.
  ItemFilter all(Rules(Signal::kTraces, {"name =~ .*"}), {}, {});
  RequestParts gone = Decompose(Signal::kTraces, r);
  EXPECT_EQ(all.Apply(gone, &dropped), 12);
  EXPECT_TRUE(gone.resources.empty());
}

TEST(ItemFilter, LogRecords) {
  ExportLogsServiceRequest r;
  auto* scope = r.add_resource_logs()->add_scope_logs();
  for (int sev : {1, 5, 9, 13, 17, 21}) {
    auto* log = scope->add_log_records();
    log->set_severity_number(static_cast<otlp::logs::v1::SeverityNumber>(sev));
    log->mutable_body()->set_string_value("message " + std::to_string(sev));
  }
  ItemFilter f({}, {}, Rules(Signal::kLogs, {"severity < info", "body == \"message 13\""}));
  RequestParts parts = Decompose(Signal::kLogs, r);
  DropCounts dropped;
  EXPECT_EQ(f.Apply(parts, &dropped), 3);
  auto got = Reparse<ExportLogsServiceRequest>(parts);
  std::vector<int> severities;
  for (const auto& l : got.resource_logs(0).scope_logs(0).log_records()) severities.push_back(l.severity_number());
  EXPECT_EQ(severities, (std::vector<int>{9, 17, 21}));
}

TEST(ItemFilter, MetricDataPoints) {
  ExportMetricsServiceRequest r;
  auto* scope = r.add_resource_metrics()->add_scope_metrics();
  auto* requests = scope->add_metrics();
  requests->set_name("requests");
  requests->mutable_sum()->set_is_monotonic(true);
  requests->mutable_sum()->set_aggregation_temporality(otlp::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
  for (const char* route : {"/cart", "/health", "/pay"}) {
    auto* p = requests->mutable_sum()->add_data_points();
    p->set_as_int(10);
    AddAttr(p, "route", route);
  }
  auto* health = scope->add_metrics();
  health->set_name("health.checks");
  auto* hp = health->mutable_gauge()->add_data_points();
  hp->set_as_double(1);
  AddAttr(hp, "route", "/health");
  auto* hist = scope->add_metrics();
  hist->set_name("latency");
  AddAttr(hist->mutable_histogram()->add_data_points(), "route", "/cart");

  ItemFilter f({}, Rules(Signal::kMetrics, {"attr.route == /health"}), {});
  RequestParts parts = Decompose(Signal::kMetrics, r);
  EXPECT_EQ(parts.ItemCount(), 5);
  DropCounts dropped;
  EXPECT_EQ(f.Apply(parts, &dropped), 2);
  EXPECT_EQ(parts.ItemCount(), 3);
  auto got = Reparse<ExportMetricsServiceRequest>(parts);
  const auto& metrics = got.resource_metrics(0).scope_metrics(0).metrics();
  ASSERT_EQ(metrics.size(), 2);  // health.checks lost its only point and is gone
  EXPECT_EQ(metrics[0].name(), "requests");
  EXPECT_TRUE(metrics[0].sum().is_monotonic());
  EXPECT_EQ(metrics[0].sum().aggregation_temporality(), otlp::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
  ASSERT_EQ(metrics[0].sum().data_points_size(), 2);
  EXPECT_EQ(metrics[0].sum().data_points(1).attributes(0).value().string_value(), "/pay");
  EXPECT_EQ(metrics[1].name(), "latency");
}

TEST(TraceIdHash, IsFnv1aOverSeedThenTraceId) {
  const std::string id("\x5b\x8e\xff\xf7\x98\x03\x81\x03\xd2\x69\xb6\x33\x81\x3f\xc6\x0c", 16);
  EXPECT_EQ(TraceIdHash(id, 0), 0x245dd6dfu);
  EXPECT_EQ(TraceIdHash(id, 42), 0xc932f7ddu);
  // Bucket 0x16df = 5855: kept from 35.74 % (5855.6 -> 5855 is not < 5855) up.
  EXPECT_TRUE(TraceSampler(36, 0, false).Keep(id));
  EXPECT_FALSE(TraceSampler(35, 0, false).Keep(id));
}

std::set<std::string> KeptTraceIds(const RequestParts& parts) {
  std::set<std::string> ids;
  auto got = Reparse<ExportTraceServiceRequest>(parts);
  std::map<std::string, int> spans;
  for (const auto& rs : got.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) {
      for (const auto& s : ss.spans()) ++spans[s.trace_id()];
    }
  }
  for (const auto& [id, n] : spans) {
    EXPECT_EQ(n, 3) << "a trace lost some of its spans";
    ids.insert(id);
  }
  return ids;
}

TEST(TraceSampler, ZeroHundredAndFiftyPercentKeepWholeTraces) {
  ExportTraceServiceRequest r = ManyTraces(400, 3);
  DropCounts dropped;
  RequestParts all = Decompose(Signal::kTraces, r);
  TraceSampler hundred(100, 0, false);
  EXPECT_FALSE(hundred.enabled());
  EXPECT_EQ(hundred.Apply(all, &dropped), 0);
  EXPECT_EQ(all.ItemCount(), 1200);

  RequestParts none = Decompose(Signal::kTraces, r);
  EXPECT_EQ(TraceSampler(0, 0, false).Apply(none, &dropped), 1200);
  EXPECT_TRUE(none.resources.empty());

  RequestParts half = Decompose(Signal::kTraces, r);
  TraceSampler fifty(50, 7, false);
  const int64_t removed = fifty.Apply(half, &dropped);
  std::set<std::string> kept = KeptTraceIds(half);
  EXPECT_EQ(static_cast<int64_t>(kept.size()) * 3 + removed, 1200);
  EXPECT_GT(kept.size(), 150u);  // 400 traces at 50 %: far from both ends
  EXPECT_LT(kept.size(), 250u);
  // The same decision in another process (another sampler with the same seed),
  // on the spans in another order (split into other requests).
  for (const std::string& id : kept) EXPECT_TRUE(fifty.Keep(id));
  RequestParts again = Decompose(Signal::kTraces, ManyTraces(400, 3));
  TraceSampler(50, 7, false).Apply(again, &dropped);
  EXPECT_EQ(KeptTraceIds(again), kept);
  EXPECT_EQ(dropped.Get(DropReason::kSampling), 1200 + 2 * removed);
}

TEST(TraceSampler, LogsFollowTheirTraceWhenAsked) {
  ExportLogsServiceRequest r;
  auto* scope = r.add_resource_logs()->add_scope_logs();
  for (int t = 0; t < 100; ++t) scope->add_log_records()->set_trace_id(TraceId(t));
  scope->add_log_records()->mutable_body()->set_string_value("no trace");
  TraceSampler sampler(50, 3, true);
  RequestParts parts = Decompose(Signal::kLogs, r);
  DropCounts dropped;
  const int64_t removed = sampler.Apply(parts, &dropped);
  auto got = Reparse<ExportLogsServiceRequest>(parts);
  int kept_with_trace = 0;
  bool untraced_kept = false;
  for (const auto& l : got.resource_logs(0).scope_logs(0).log_records()) {
    if (l.trace_id().empty()) {
      untraced_kept = true;
    } else {
      EXPECT_TRUE(sampler.Keep(l.trace_id()));
      ++kept_with_trace;
    }
  }
  EXPECT_TRUE(untraced_kept);
  EXPECT_EQ(kept_with_trace + removed, 100);
  RequestParts untouched = Decompose(Signal::kLogs, r);
  EXPECT_EQ(TraceSampler(50, 3, false).Apply(untouched, &dropped), 0);
}

}  // namespace
}  // namespace telkit
