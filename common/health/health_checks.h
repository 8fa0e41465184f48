// What stack-health checks, and how: every daemon's admin endpoint
// (/healthz, /readyz, /metrics), free disk and growth of the data
// directories, freshness of each store, TLS certificate expiry, and (with
// `canary`) an end-to-end canary through OTLP (common/health/canary.h).
// docs/stack-health.md lists each check, its value and its thresholds.
//
// Between runs, counters (items dropped) and directory sizes are kept in a
// small JSON state file, so a run can report what changed since the last
// one (docs/format/stack-health-output.md, "State file"). With --watch the
// previous iteration plays that part in memory.
//
// Thread-compatible: RunHealthChecks runs the checks one after another from
// the calling thread; every network wait is bounded by `timeout_ms`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/health/health_report.h"

namespace telkit {

// A daemon's admin endpoint.
struct HealthTarget {
  std::string name;     // "otlp-recv"
  std::string address;  // "127.0.0.1:8888"
};

// The six daemons on their default admin ports.
std::vector<HealthTarget> DefaultHealthTargets();
// "NAME=HOST:PORT". INVALID_ARGUMENT otherwise.
Result<HealthTarget> ParseHealthTarget(const std::string& spec);

// How stores are read for freshness and the canary: through the query APIs
// (Prometheus, Loki, Tempo), directly from the store directories under
// `data_dir`, or the API first and the store when the API does not answer
// (connection refused, 404: not served yet).
enum class QueryMethod { kAuto, kApi, kStore };
Result<QueryMethod> ParseQueryMethod(const std::string& s);  // "auto", "api", "store"

// Thresholds. A value of 0 switches that threshold off unless said otherwise.
struct HealthThresholds {
  double disk_free_warn = 0.15;      // free fraction of the file system under a data directory
  double disk_free_crit = 0.05;
  double disk_full_warn_s = 86400;   // time until full at the measured growth rate
  double disk_full_crit_s = 3600;
  double dropped_warn = 1;           // items dropped/refused/rejected since the last run
  double dropped_crit = 0;
  double queue_warn = 0.8;           // queue fill (bytes / capacity) where a capacity is exposed
  double queue_crit = 0.95;
  double spool_warn_bytes = 0;       // bytes spooled to disk (tel-batch)
  double wal_warn_bytes = 0;         // WAL size of a store
  double memory_warn_bytes = 0;      // resident memory of a daemon
  double memory_crit_bytes = 0;
  double stale_warn_s = 0;           // age of the newest sample / log line / span
  double stale_crit_s = 0;
  double cert_warn_s = 21 * 86400;   // time until a certificate expires
  double cert_crit_s = 7 * 86400;
  double canary_warn_s = 5;          // canary latency; a timeout is CRITICAL
};

struct HealthOptions {
  std::vector<HealthTarget> targets = DefaultHealthTargets();
  std::string data_dir;                  // the stack's data root (metrics/, logs/, traces/); "" = none
  std::vector<std::string> disk_paths;   // more directories to check for disk
  std::vector<std::string> tls_cert_files;  // PEM certificates to check
  std::vector<std::string> tls_connect;     // HOST:PORT listeners to connect to with TLS
  std::string state_file;                // "" = no state between runs
  QueryMethod method = QueryMethod::kAuto;
  std::string prometheus_url = "http://127.0.0.1:9090";
  std::string loki_url = "http://127.0.0.1:3100";
  std::string tempo_url = "http://127.0.0.1:3200";
  std::string otlp_url = "http://127.0.0.1:4318";
  bool freshness = true;                 // check store freshness
  bool canary = false;
  double canary_timeout_s = 10;
  double freshness_window_s = 3600;      // how far back freshness looks for data
  int timeout_ms = 2000;                 // each HTTP request
  HealthThresholds thresholds;
};

// What a run remembers for the next: counter totals per daemon and
// directory sizes, with the time they were taken.
struct HealthMemory {
  int64_t time_ms = 0;
  std::map<std::string, double> dropped;     // daemon name -> dropped items total
  std::map<std::string, double> dir_bytes;   // directory -> bytes used
};

// Reads / writes the state file (JSON). A missing file reads as empty; a
// damaged one gives DATA_LOSS (the caller starts afresh).
Result<HealthMemory> LoadHealthMemory(const std::string& path);
Status SaveHealthMemory(const std::string& path, const HealthMemory& memory);

// Each check appends its results to `report`; none fails: what cannot be
// measured is an UNKNOWN (or, for a daemon that does not answer, CRITICAL)
// check with the reason in its detail. `previous` is the last run's memory
// (may be null); `next` receives this run's.
void CheckDaemons(const HealthOptions& options, const HealthMemory* previous, HealthMemory* next,
                  HealthReport* report);
void CheckDisks(const HealthOptions& options, const HealthMemory* previous, HealthMemory* next,
                HealthReport* report);
void CheckFreshness(const HealthOptions& options, HealthReport* report);
void CheckCertificates(const HealthOptions& options, HealthReport* report);

// All of the above (and the canary when options.canary), in that order.
HealthReport RunHealthChecks(const HealthOptions& options, const HealthMemory* previous, HealthMemory* next);

// Parsed /metrics: the sum of each metric name's series. INVALID_ARGUMENT
// when the body is not the text format.
Result<std::map<std::string, double>> SumMetricsByName(std::string_view exposition);

// The daemon figures stack-health reads from those sums (absent = nullopt).
struct DaemonFigures {
  std::optional<double> dropped;         // *_{dropped,refused,rejected,discarded}*_total
  std::optional<double> queue_bytes;     // *_queue_bytes + *_unacked_bytes
  std::optional<double> queue_capacity;  // *_queue_capacity_bytes
  std::optional<double> spool_bytes;     // *_spool_disk_bytes, else *_spool_bytes
  std::optional<double> spool_trouble;   // *_spool_full + *_spool_failing
  std::optional<double> wal_bytes;       // *_wal_bytes
  std::optional<double> memory_bytes;    // process_resident_memory_bytes
};
DaemonFigures FiguresFromMetrics(const std::map<std::string, double>& sums);

// The certificate expiry (Unix seconds) of the first certificate in a PEM
// file, or of the one a TLS listener presents.
Result<int64_t> CertificateFileExpiry(const std::string& path);
Result<int64_t> CertificateEndpointExpiry(const std::string& host_port, int timeout_ms);

}  // namespace telkit

namespace telkit {

// One run as the command does it: the state file (when options.state_file)
// is read before and written after; without a state file, `memory` carries
// the previous run (--watch) and receives this one. A damaged or unwritable
// state file is reported as an UNKNOWN "state" check, not an error.
HealthReport RunHealthOnce(const HealthOptions& options, HealthMemory* memory);

// Writes `text` to `path` atomically (a temporary file in the same
// directory, then rename), as node exporter's textfile collector wants.
Status WriteFileAtomically(const std::string& path, const std::string& text);

}  // namespace telkit
