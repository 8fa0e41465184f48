// Reading the stores for stack-health: the newest item of each signal
// (freshness) and whether the canary's items are queryable yet, through the
// query APIs (Prometheus :9090, Loki :3100, Tempo :3200) or the store
// directories (MetricsReader, LogReader, TraceReader), and the end-to-end
// canary itself: one uniquely tagged span, gauge point and log record sent
// as OTLP/HTTP protobuf, then polled until each is queryable.
//
// The canary's items (docs/stack-health.md, "Canary"):
//   resource   service.name = "stack-health"
//   span       name "stack-health canary", attribute canary.id = ID,
//              a random trace id and span id
//   metric     gauge "stack_health.canary" (Prometheus: stack_health_canary),
//              point attribute canary_id = ID, value = send time (Unix s)
//   log        body "stack-health canary ID", attribute canary.id = ID
// ID is 16 random hex digits.
//
// Thread-compatible.
#pragma once

#include <cstdint>
#include <string>

#include "common/base/status.h"
#include "common/health/health_checks.h"

namespace telkit {

enum class ProbeSignal { kMetrics, kLogs, kTraces };
std::string_view ProbeSignalName(ProbeSignal s);  // "metrics", "logs", "traces"

// What a probe found, and how it read it ("api" or "store").
template <typename T>
struct Probed {
  T value{};
  std::string method;
};

// The time (Unix ns) of the newest item of `signal` in the last
// options.freshness_window_s. NOT_FOUND when there is none; UNAVAILABLE when
// neither the API nor (with a data dir) the store could be read.
Result<Probed<int64_t>> NewestItemNs(const HealthOptions& options, ProbeSignal signal, int64_t now_ns);

struct CanaryIds {
  std::string id;        // 16 hex digits
  std::string trace_id;  // 16 bytes
  std::string span_id;   // 8 bytes
};
CanaryIds NewCanaryIds();
std::string HexId(const std::string& bytes);

// The three OTLP requests (serialized Export*ServiceRequest) of a canary
// sent at `now_ns`.
std::string CanaryTracesRequest(const CanaryIds& ids, int64_t now_ns);
std::string CanaryMetricsRequest(const CanaryIds& ids, int64_t now_ns);
std::string CanaryLogsRequest(const CanaryIds& ids, int64_t now_ns);

// Whether the canary's item of `signal` is queryable now.
Result<Probed<bool>> CanaryVisible(const HealthOptions& options, ProbeSignal signal, const CanaryIds& ids,
                                   int64_t sent_ns);

// Sends a canary and polls (every 100 ms, up to options.canary_timeout_s)
// until each signal is queryable; adds one check per signal to `report`:
// the latency in seconds, WARNING over thresholds.canary_warn_s, CRITICAL on
// a failed send or a timeout.
void RunCanary(const HealthOptions& options, HealthReport* report);

}  // namespace telkit
