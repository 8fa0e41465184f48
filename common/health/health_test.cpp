#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <fstream>

#include "common/admin/admin_server.h"
#include "common/health/canary.h"
#include "common/health/health_checks.h"
#include "common/health/health_report.h"
#include "common/test_support/temp_dir.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

using test_support::TempDir;

const HealthCheck* Find(const HealthReport& r, std::string_view component, std::string_view check) {
  for (const auto& c : r.checks)
    if (c.component == component && c.check == check) return &c;
  return nullptr;
}

TEST(HealthReport, WorstStateWins) {
  EXPECT_EQ(WorseState(HealthState::kOk, HealthState::kUnknown), HealthState::kUnknown);
  EXPECT_EQ(WorseState(HealthState::kUnknown, HealthState::kWarning), HealthState::kWarning);
  EXPECT_EQ(WorseState(HealthState::kCritical, HealthState::kWarning), HealthState::kCritical);
  EXPECT_EQ(WorseState(HealthState::kUnknown, HealthState::kCritical), HealthState::kCritical);
  HealthReport r;
  EXPECT_EQ(r.Overall(), HealthState::kOk);
  r.Add({"a", "b", "", HealthState::kUnknown, std::nullopt, "", ""});
  r.Add({"a", "c", "", HealthState::kWarning, std::nullopt, "", ""});
  EXPECT_EQ(r.Overall(), HealthState::kWarning);
}

HealthReport Sample() {
  HealthReport r;
  r.time_ms = 1700000000123;
  r.Add({"otlp-recv", "healthz", "127.0.0.1:8888", HealthState::kOk, std::nullopt, "", "alive"});
  r.Add({"disk", "free", "/data/metrics", HealthState::kWarning, 0.125, "ratio", "1.0 GiB free of 8.0 GiB"});
  r.Add({"canary", "logs", "0123456789abcdef", HealthState::kCritical, std::nullopt, "seconds", "not queryable"});
  return r;
}

// Golden outputs: docs/format/stack-health-output.md shows the same.
TEST(HealthReport, JsonGolden) {
  EXPECT_EQ(RenderJson(Sample()), R"({
  "status": "CRITICAL",
  "exit_code": 2,
  "time_ms": 1700000000123,
  "checks": [
    {
      "component": "otlp-recv",
      "check": "healthz",
      "target": "127.0.0.1:8888",
      "status": "OK",
      "value": null,
      "unit": "",
      "detail": "alive"
    },
    {
      "component": "disk",
      "check": "free",
      "target": "/data/metrics",
      "status": "WARNING",
      "value": 0.125,
      "unit": "ratio",
      "detail": "1.0 GiB free of 8.0 GiB"
    },
    {
      "component": "canary",
      "check": "logs",
      "target": "0123456789abcdef",
      "status": "CRITICAL",
      "value": null,
      "unit": "seconds",
      "detail": "not queryable"
    }
  ]
}
)");
}

TEST(HealthReport, PrometheusGolden) {
  EXPECT_EQ(RenderPrometheus(Sample()),
            "# HELP telkit_stack_health_status Overall state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n"
            "# TYPE telkit_stack_health_status gauge\n"
            "telkit_stack_health_status 2\n"
            "# HELP telkit_stack_health_last_run_timestamp_seconds When the checks ran.\n"
            "# TYPE telkit_stack_health_last_run_timestamp_seconds gauge\n"
            "telkit_stack_health_last_run_timestamp_seconds 1700000000.123\n"
            "# HELP telkit_stack_health_check_status State of one check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n"
            "# TYPE telkit_stack_health_check_status gauge\n"
            "telkit_stack_health_check_status{component=\"otlp-recv\",check=\"healthz\",target=\"127.0.0.1:8888\"} 0\n"
            "telkit_stack_health_check_status{component=\"disk\",check=\"free\",target=\"/data/metrics\"} 1\n"
            "telkit_stack_health_check_status{component=\"canary\",check=\"logs\",target=\"0123456789abcdef\"} 2\n"
            "# HELP telkit_stack_health_check_value What a check measured, in the unit the label names.\n"
            "# TYPE telkit_stack_health_check_value gauge\n"
            "telkit_stack_health_check_value{component=\"disk\",check=\"free\",target=\"/data/metrics\",unit=\"ratio\"} "
            "0.125\n");
}

TEST(HealthReport, TableAlignsAndColours) {
  std::string plain = RenderTable(Sample(), false);
  EXPECT_EQ(plain,
            "STATE     COMPONENT  CHECK    VALUE  DETAIL\n"
            "OK        otlp-recv  healthz      -  alive (127.0.0.1:8888)\n"
            "WARNING   disk       free     12.5%  1.0 GiB free of 8.0 GiB (/data/metrics)\n"
            "CRITICAL  canary     logs         -  not queryable (0123456789abcdef)\n"
            "stack-health: CRITICAL: 3 checks, 2 not OK\n");
  std::string coloured = RenderTable(Sample(), true);
  EXPECT_NE(coloured.find("\033[33mWARNING \033[0m"), std::string::npos) << coloured;
  EXPECT_NE(coloured.find("\033[1;31mCRITICAL\033[0m"), std::string::npos);
}

TEST(HealthReport, FormatsValues) {
  EXPECT_EQ(FormatHealthValue(1536, "bytes"), "1.5 KiB");
  EXPECT_EQ(FormatHealthValue(100, "bytes"), "100 B");
  EXPECT_EQ(FormatHealthValue(2048, "bytes_per_second"), "2.0 KiB/s");
  EXPECT_EQ(FormatHealthValue(0.25, "seconds"), "250ms");
  EXPECT_EQ(FormatHealthValue(3 * 86400, "seconds"), "3.0d");
  EXPECT_EQ(FormatHealthValue(42, ""), "42");
}

TEST(HealthChecks, ParsesTargetsAndMethods) {
  auto t = ParseHealthTarget("otlp-recv=127.0.0.1:8888");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->name, "otlp-recv");
  EXPECT_EQ(t->address, "127.0.0.1:8888");
  EXPECT_TRUE(ParseHealthTarget("[::1]:8888").ok() == false);
  EXPECT_TRUE(ParseHealthTarget("x=[::1]:8888").ok());
  for (const char* bad : {"", "=a:1", "x=", "x=host", "x=host:", "x=host:12a"})
    EXPECT_FALSE(ParseHealthTarget(bad).ok()) << bad;
  EXPECT_EQ(*ParseQueryMethod("store"), QueryMethod::kStore);
  EXPECT_FALSE(ParseQueryMethod("sql").ok());
  EXPECT_EQ(DefaultHealthTargets().size(), 6u);
}

TEST(HealthChecks, FiguresFromDaemonMetrics) {
  auto sums = SumMetricsByName(
      "# TYPE otlp_recv_refused_requests_total counter\n"
      "otlp_recv_refused_requests_total{protocol=\"http\"} 2\n"
      "otlp_recv_refused_requests_total{protocol=\"grpc\"} 3\n"
      "otlp_recv_rejected_items_total 1\n"
      "tel_batch_spool_discarded_bytes_total 999\n"
      "otlp_recv_queue_bytes 256\n"
      "otlp_recv_queue_capacity_bytes 1024\n"
      "otlp_recv_output_unacked_bytes 256\n"
      "tel_batch_spool_bytes 10\n"
      "tel_batch_spool_disk_bytes 4096\n"
      "tel_batch_spool_full 1\n"
      "tsdb_write_wal_bytes 7\n"
      "process_resident_memory_bytes 1e6\n");
  ASSERT_TRUE(sums.ok()) << sums.status().message();
  DaemonFigures f = FiguresFromMetrics(*sums);
  EXPECT_EQ(f.dropped, 6);
  EXPECT_EQ(f.queue_bytes, 512);
  EXPECT_EQ(f.queue_capacity, 1024);
  EXPECT_EQ(f.spool_bytes, 4096);
  EXPECT_EQ(f.spool_trouble, 1);
  EXPECT_EQ(f.wal_bytes, 7);
  EXPECT_EQ(f.memory_bytes, 1e6);
  EXPECT_FALSE(SumMetricsByName("<html>not metrics</html>\n").ok());
}

// A real admin endpoint (common/admin) on an ephemeral port.
TEST(HealthChecks, DaemonUpNotReadyAndDown) {
  MetricsRegistry registry;
  registry.AddCounter("test_dropped_items_total", "dropped").Increment(5);
  registry.AddGauge("test_queue_bytes", "queue").Set(900);
  registry.AddGauge("test_queue_capacity_bytes", "capacity").Set(1000);
  registry.AddGauge("test_wal_bytes", "wal").Set(4096);
  std::atomic<bool> ready{true};
  AdminServerOptions ao;
  ao.ready = [&] { return ready.load(); };
  auto server = AdminServer::Start(ao, registry);
  ASSERT_TRUE(server.ok());
  HealthOptions o;
  o.targets = {{"test", "127.0.0.1:" + std::to_string((*server)->port())}};
  HealthMemory first, second;
  HealthReport r;
  CheckDaemons(o, nullptr, &first, &r);
  ASSERT_NE(Find(r, "test", "healthz"), nullptr);
  EXPECT_EQ(Find(r, "test", "healthz")->state, HealthState::kOk);
  EXPECT_EQ(Find(r, "test", "readyz")->state, HealthState::kOk);
  EXPECT_EQ(Find(r, "test", "dropped")->state, HealthState::kOk);  // no earlier run
  EXPECT_EQ(Find(r, "test", "dropped")->value, 5);
  EXPECT_EQ(Find(r, "test", "queue")->state, HealthState::kWarning);  // 90% >= 80%
  EXPECT_DOUBLE_EQ(*Find(r, "test", "queue")->value, 0.9);
  EXPECT_EQ(Find(r, "test", "wal")->value, 4096);
  EXPECT_EQ(first.dropped["test"], 5);

  registry.AddCounter("test_dropped_items_total", "dropped").Increment(2);
  ready = false;
  first.time_ms = 1;
  HealthReport r2;
  CheckDaemons(o, &first, &second, &r2);
  EXPECT_EQ(Find(r2, "test", "readyz")->state, HealthState::kWarning);
  EXPECT_EQ(Find(r2, "test", "dropped")->state, HealthState::kWarning);
  EXPECT_EQ(Find(r2, "test", "dropped")->value, 2);

  (*server)->Stop();
  HealthReport r3;
  CheckDaemons(o, nullptr, &second, &r3);
  ASSERT_EQ(r3.checks.size(), 1u);
  EXPECT_EQ(r3.checks[0].state, HealthState::kCritical);
  EXPECT_NE(r3.checks[0].detail.find("GET /healthz"), std::string::npos) << r3.checks[0].detail;
}

TEST(HealthChecks, StateFileRoundTripAndDamage) {
  TempDir dir;
  std::string path = dir.path() + "/state.json";
  auto empty = LoadHealthMemory(path);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->time_ms, 0);
  HealthMemory m;
  m.time_ms = 123;
  m.dropped["otlp-recv"] = 4;
  m.dir_bytes["/x"] = 1e9;
  ASSERT_TRUE(SaveHealthMemory(path, m).ok());
  auto back = LoadHealthMemory(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->time_ms, 123);
  EXPECT_EQ(back->dropped["otlp-recv"], 4);
  EXPECT_EQ(back->dir_bytes["/x"], 1e9);
  std::ofstream(path) << "{\"version\": 1, \"time_ms\": \"x\"";
  EXPECT_EQ(LoadHealthMemory(path).status().code(), StatusCode::kDataLoss);
  // The command reports it and starts afresh.
  HealthOptions o;
  o.targets.clear();
  o.freshness = false;
  o.state_file = path;
  HealthMemory mem;
  HealthReport r = RunHealthOnce(o, &mem);
  ASSERT_NE(Find(r, "stack-health", "state"), nullptr);
  EXPECT_EQ(Find(r, "stack-health", "state")->state, HealthState::kUnknown);
  EXPECT_TRUE(LoadHealthMemory(path).ok());
}

TEST(HealthChecks, DiskFreeSizeAndGrowth) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/metrics");
  std::ofstream(dir.path() + "/metrics/a") << std::string(10000, 'x');
  HealthOptions o;
  o.data_dir = dir.path();
  HealthMemory next;
  HealthReport r;
  CheckDisks(o, nullptr, &next, &r);
  ASSERT_NE(Find(r, "disk", "free"), nullptr);
  EXPECT_EQ(Find(r, "disk", "free")->target, dir.path() + "/metrics");
  EXPECT_EQ(Find(r, "disk", "size")->value, 10000);
  EXPECT_EQ(Find(r, "disk", "growth"), nullptr);
  // An earlier run 10 s ago saw 0 bytes: 1000 B/s.
  HealthMemory prev;
  prev.time_ms = next.time_ms == 0 ? 0 : next.time_ms;
  prev.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch()).count() - 10000;
  prev.dir_bytes[dir.path() + "/metrics"] = 0;
  o.thresholds.disk_full_warn_s = 1e18;  // any growth warns
  HealthReport r2;
  CheckDisks(o, &prev, &next, &r2);
  ASSERT_NE(Find(r2, "disk", "growth"), nullptr);
  EXPECT_NEAR(*Find(r2, "disk", "growth")->value, 1000, 50);
  EXPECT_EQ(Find(r2, "disk", "growth")->state, HealthState::kWarning);
  EXPECT_NE(Find(r2, "disk", "growth")->detail.find("full in"), std::string::npos);
}

// A self-signed certificate valid for `days`.
void WriteCert(const std::string& path, long days) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -86400);
  X509_gmtime_adj(X509_getm_notAfter(x), days * 86400);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("telkit"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, key, EVP_sha256());
  FILE* f = fopen(path.c_str(), "w");
  PEM_write_X509(f, x);
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
}

TEST(HealthChecks, CertificateExpiry) {
  TempDir dir;
  WriteCert(dir.path() + "/long.pem", 365);
  WriteCert(dir.path() + "/soon.pem", 10);
  WriteCert(dir.path() + "/sooner.pem", 3);
  WriteCert(dir.path() + "/expired.pem", -1);
  std::ofstream(dir.path() + "/junk.pem") << "not a certificate";
  HealthOptions o;
  for (const char* n : {"long", "soon", "sooner", "expired", "junk", "missing"})
    o.tls_cert_files.push_back(dir.path() + "/" + n + ".pem");
  HealthReport r;
  CheckCertificates(o, &r);
  ASSERT_EQ(r.checks.size(), 6u);
  EXPECT_EQ(r.checks[0].state, HealthState::kOk);
  EXPECT_NEAR(*r.checks[0].value / 86400, 365, 0.1);
  EXPECT_EQ(r.checks[1].state, HealthState::kWarning);
  EXPECT_EQ(r.checks[2].state, HealthState::kCritical);
  EXPECT_EQ(r.checks[3].state, HealthState::kCritical);
  EXPECT_NE(r.checks[3].detail.find("expired"), std::string::npos);
  EXPECT_EQ(r.checks[4].state, HealthState::kUnknown);
  EXPECT_EQ(r.checks[5].state, HealthState::kUnknown);
  // Nothing listens: the connect check is UNKNOWN with the reason.
  o.tls_cert_files.clear();
  o.tls_connect = {"127.0.0.1:1"};
  o.timeout_ms = 500;
  HealthReport r2;
  CheckCertificates(o, &r2);
  ASSERT_EQ(r2.checks.size(), 1u);
  EXPECT_EQ(r2.checks[0].state, HealthState::kUnknown);
}

TEST(Canary, RequestsCarryTheIds) {
  CanaryIds ids = NewCanaryIds();
  EXPECT_EQ(ids.id.size(), 16u);
  EXPECT_EQ(ids.trace_id.size(), 16u);
  EXPECT_EQ(ids.span_id.size(), 8u);
  EXPECT_NE(NewCanaryIds().id, ids.id);
  int64_t now = 1700000000000000000;
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest t;
  ASSERT_TRUE(t.ParseFromString(CanaryTracesRequest(ids, now)));
  const auto& span = t.resource_spans(0).scope_spans(0).spans(0);
  EXPECT_EQ(span.trace_id(), ids.trace_id);
  EXPECT_EQ(span.attributes(0).value().string_value(), ids.id);
  EXPECT_EQ(t.resource_spans(0).resource().attributes(0).value().string_value(), "stack-health");
  opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest m;
  ASSERT_TRUE(m.ParseFromString(CanaryMetricsRequest(ids, now)));
  const auto& metric = m.resource_metrics(0).scope_metrics(0).metrics(0);
  EXPECT_EQ(metric.name(), "stack_health.canary");
  EXPECT_EQ(metric.gauge().data_points(0).attributes(0).key(), "canary_id");
  EXPECT_EQ(metric.gauge().data_points(0).attributes(0).value().string_value(), ids.id);
  opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest l;
  ASSERT_TRUE(l.ParseFromString(CanaryLogsRequest(ids, now)));
  EXPECT_EQ(l.resource_logs(0).scope_logs(0).log_records(0).body().string_value(), "stack-health canary " + ids.id);
}

TEST(Canary, NothingListeningIsCriticalPerSignal) {
  HealthOptions o;
  o.otlp_url = "http://127.0.0.1:1";
  o.timeout_ms = 300;
  HealthReport r;
  RunCanary(o, &r);
  ASSERT_EQ(r.checks.size(), 3u);
  for (const auto& c : r.checks) EXPECT_EQ(c.state, HealthState::kCritical) << c.check;
  EXPECT_EQ(r.checks[0].check, "traces");
  EXPECT_EQ(r.checks[1].check, "metrics");
  EXPECT_EQ(r.checks[2].check, "logs");
}

}  // namespace
}  // namespace telkit
