#include "common/health/health_checks.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/expfmt/exposition.h"
#include "common/health/canary.h"
#include "common/health/health_http.h"

namespace telkit {
namespace {

using Json = nlohmann::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool Contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// Two thresholds on a value that is bad when high (`crit`, `warn` 0 = off).
HealthState High(double v, double warn, double crit) {
  if (crit > 0 && v >= crit) return HealthState::kCritical;
  if (warn > 0 && v >= warn) return HealthState::kWarning;
  return HealthState::kOk;
}
// ... and when low.
HealthState Low(double v, double warn, double crit) {
  if (crit > 0 && v <= crit) return HealthState::kCritical;
  if (warn > 0 && v <= warn) return HealthState::kWarning;
  return HealthState::kOk;
}

void Add(HealthReport* report, std::string component, std::string check, std::string target, HealthState state,
         std::optional<double> value, std::string unit, std::string detail) {
  report->Add(HealthCheck{std::move(component), std::move(check), std::move(target), state, value, std::move(unit),
                          std::move(detail)});
}

void CheckOneDaemon(const HealthOptions& o, const HealthTarget& t, const HealthMemory* previous, HealthMemory* next,
                    HealthReport* report) {
  Result<HealthHttpResponse> h = HealthHttpGet(t.address, "/healthz", o.timeout_ms);
  if (!h.ok() || h->status != 200) {
    Add(report, t.name, "healthz", t.address, HealthState::kCritical, std::nullopt, "",
        h.ok() ? fmt::format("HTTP {}", h->status) : std::string(h.status().message()));
    return;
  }
  Add(report, t.name, "healthz", t.address, HealthState::kOk, std::nullopt, "", "alive");
  Result<HealthHttpResponse> r = HealthHttpGet(t.address, "/readyz", o.timeout_ms);
  if (!r.ok()) {
    Add(report, t.name, "readyz", t.address, HealthState::kCritical, std::nullopt, "", std::string(r.status().message()));
  } else if (r->status != 200) {
    std::string body = r->body.substr(0, 120);
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
    Add(report, t.name, "readyz", t.address, HealthState::kWarning, std::nullopt, "",
        fmt::format("not ready: HTTP {} {}", r->status, body));
  } else {
    Add(report, t.name, "readyz", t.address, HealthState::kOk, std::nullopt, "", "ready");
  }
  Result<HealthHttpResponse> m = HealthHttpGet(t.address, "/metrics", o.timeout_ms);
  if (!m.ok() || m->status != 200) {
    Add(report, t.name, "metrics", t.address, HealthState::kUnknown, std::nullopt, "",
        m.ok() ? fmt::format("/metrics: HTTP {}", m->status) : std::string(m.status().message()));
    return;
  }
  Result<std::map<std::string, double>> sums = SumMetricsByName(m->body);
  if (!sums.ok()) {
    Add(report, t.name, "metrics", t.address, HealthState::kUnknown, std::nullopt, "",
        std::string(sums.status().message()));
    return;
  }
  const HealthThresholds& th = o.thresholds;
  DaemonFigures f = FiguresFromMetrics(*sums);
  if (f.dropped) {
    double total = *f.dropped;
    next->dropped[t.name] = total;
    auto prev = previous ? previous->dropped.find(t.name) : std::map<std::string, double>::const_iterator();
    if (previous && prev != previous->dropped.end()) {
      double delta = total >= prev->second ? total - prev->second : total;  // lower: the daemon restarted
      Add(report, t.name, "dropped", t.address, High(delta, th.dropped_warn, th.dropped_crit), delta, "",
          fmt::format("{} items dropped, refused or rejected since the last run ({} in all)",
                      FormatHealthValue(delta, ""), FormatHealthValue(total, "")));
    } else {
      Add(report, t.name, "dropped", t.address, HealthState::kOk, total, "",
          fmt::format("{} items dropped, refused or rejected since start (no earlier run to compare)",
                      FormatHealthValue(total, "")));
    }
  }
  if (f.queue_bytes) {
    if (f.queue_capacity && *f.queue_capacity > 0) {
      double fill = *f.queue_bytes / *f.queue_capacity;
      Add(report, t.name, "queue", t.address, High(fill, th.queue_warn, th.queue_crit), fill, "ratio",
          fmt::format("{} of {} queued", FormatHealthValue(*f.queue_bytes, "bytes"),
                      FormatHealthValue(*f.queue_capacity, "bytes")));
    } else {
      Add(report, t.name, "queue", t.address, HealthState::kOk, *f.queue_bytes, "bytes", "queued or unacknowledged");
    }
  }
  if (f.spool_bytes) {
    HealthState s = High(*f.spool_bytes, th.spool_warn_bytes, 0);
    std::string detail = "spooled to disk";
    if (f.spool_trouble && *f.spool_trouble > 0) {
      s = WorseState(s, HealthState::kWarning);
      detail = "spool full or failing";
    }
    Add(report, t.name, "spool", t.address, s, *f.spool_bytes, "bytes", detail);
  }
  if (f.wal_bytes) {
    Add(report, t.name, "wal", t.address, High(*f.wal_bytes, th.wal_warn_bytes, 0), *f.wal_bytes, "bytes",
        "write-ahead log");
  }
  if (f.memory_bytes) {
    Add(report, t.name, "memory", t.address, High(*f.memory_bytes, th.memory_warn_bytes, th.memory_crit_bytes),
        *f.memory_bytes, "bytes", "resident memory");
  }
}

// Bytes used by the files under `dir` (not following links).
Result<double> DirectoryBytes(const std::string& dir) {
  std::error_code ec;
  double total = 0;
  std::filesystem::recursive_directory_iterator it(dir, std::filesystem::directory_options::skip_permission_denied, ec);
  if (ec) return NotFoundError(fmt::format("'{}': {}", dir, ec.message()));
  for (auto end = std::filesystem::recursive_directory_iterator(); it != end; it.increment(ec)) {
    if (ec) {  // a file removed while walking (compaction): skip it
      ec.clear();
      continue;
    }
    std::error_code e2;
    if (it->is_regular_file(e2)) {
      auto n = it->file_size(e2);
      if (!e2) total += static_cast<double>(n);
    }
  }
  return total;
}

void CheckOneDisk(const HealthOptions& o, const std::string& dir, int64_t now_ms, const HealthMemory* previous,
                  HealthMemory* next, HealthReport* report) {
  struct statvfs vfs {};
  if (statvfs(dir.c_str(), &vfs) != 0) {
    Add(report, "disk", "free", dir, HealthState::kUnknown, std::nullopt, "",
        fmt::format("statvfs: {}", std::strerror(errno)));
    return;
  }
  const HealthThresholds& th = o.thresholds;
  double total = static_cast<double>(vfs.f_blocks) * vfs.f_frsize;
  double avail = static_cast<double>(vfs.f_bavail) * vfs.f_frsize;
  double free_ratio = total > 0 ? avail / total : 0;
  Add(report, "disk", "free", dir, Low(free_ratio, th.disk_free_warn, th.disk_free_crit), free_ratio, "ratio",
      fmt::format("{} free of {}", FormatHealthValue(avail, "bytes"), FormatHealthValue(total, "bytes")));
  Result<double> used = DirectoryBytes(dir);
  if (!used.ok()) {
    Add(report, "disk", "size", dir, HealthState::kUnknown, std::nullopt, "", std::string(used.status().message()));
    return;
  }
  next->dir_bytes[dir] = *used;
  auto prev = previous ? previous->dir_bytes.find(dir) : std::map<std::string, double>::const_iterator();
  if (!previous || prev == previous->dir_bytes.end() || now_ms <= previous->time_ms) {
    Add(report, "disk", "size", dir, HealthState::kOk, *used, "bytes", "no earlier run to measure growth");
    return;
  }
  double seconds = static_cast<double>(now_ms - previous->time_ms) / 1000;
  double rate = (*used - prev->second) / seconds;
  HealthState s = HealthState::kOk;
  std::string detail = fmt::format("growing {} over {}", FormatHealthValue(rate, "bytes_per_second"),
                                   FormatHealthValue(seconds, "seconds"));
  if (rate > 0) {
    double to_full = avail / rate;
    s = Low(to_full, th.disk_full_warn_s, th.disk_full_crit_s);
    detail += fmt::format(", full in {}", FormatHealthValue(to_full, "seconds"));
  }
  Add(report, "disk", "size", dir, HealthState::kOk, *used, "bytes", "bytes under the directory");
  Add(report, "disk", "growth", dir, s, rate, "bytes_per_second", detail);
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

Result<int64_t> Expiry(X509* cert) {
  const ASN1_TIME* not_after = X509_get0_notAfter(cert);
  struct tm tm {};
  if (ASN1_TIME_to_tm(not_after, &tm) != 1) return InvalidArgumentError("unreadable notAfter");
  return static_cast<int64_t>(timegm(&tm));
}

void AddCertCheck(const HealthOptions& o, const std::string& target, const Result<int64_t>& expiry,
                  HealthReport* report) {
  if (!expiry.ok()) {
    Add(report, "tls", "expiry", target, HealthState::kUnknown, std::nullopt, "",
        std::string(expiry.status().message()));
    return;
  }
  double left = static_cast<double>(*expiry) - static_cast<double>(NowMs()) / 1000;
  HealthState s = left <= 0 ? HealthState::kCritical : Low(left, o.thresholds.cert_warn_s, o.thresholds.cert_crit_s);
  char when[32];
  time_t t = static_cast<time_t>(*expiry);
  struct tm tm {};
  gmtime_r(&t, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  Add(report, "tls", "expiry", target, s, left, "seconds",
      left <= 0 ? fmt::format("expired at {}", when) : fmt::format("expires at {}", when));
}

}  // namespace

std::vector<HealthTarget> DefaultHealthTargets() {
  return {{"otlp-recv", "127.0.0.1:8888"},  {"tel-batch", "127.0.0.1:8889"},   {"tsdb-write", "127.0.0.1:8890"},
          {"log-ingest", "127.0.0.1:8891"}, {"trace-store", "127.0.0.1:8892"}, {"tel-query", "127.0.0.1:8893"}};
}

Result<HealthTarget> ParseHealthTarget(const std::string& spec) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    return InvalidArgumentError(fmt::format("target '{}' is not NAME=HOST:PORT", spec));
  }
  std::string addr = spec.substr(eq + 1);
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == addr.size() ||
      addr.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
    return InvalidArgumentError(fmt::format("target '{}' is not NAME=HOST:PORT", spec));
  }
  return HealthTarget{spec.substr(0, eq), addr};
}

Result<QueryMethod> ParseQueryMethod(const std::string& s) {
  if (s == "auto") return QueryMethod::kAuto;
  if (s == "api") return QueryMethod::kApi;
  if (s == "store") return QueryMethod::kStore;
  return InvalidArgumentError(fmt::format("query method '{}' is not auto, api or store", s));
}

Result<HealthMemory> LoadHealthMemory(const std::string& path) {
  std::ifstream in(path);
  if (!in) return HealthMemory{};
  std::stringstream ss;
  ss << in.rdbuf();
  Json j = Json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1) {
    return DataLossError(fmt::format("state file '{}' is not a stack-health state (version 1)", path));
  }
  HealthMemory m;
  try {
    m.time_ms = j.at("time_ms").get<int64_t>();
    for (auto& [k, v] : j.at("dropped").items()) m.dropped[k] = v.get<double>();
    for (auto& [k, v] : j.at("dir_bytes").items()) m.dir_bytes[k] = v.get<double>();
  } catch (const std::exception& e) {
    return DataLossError(fmt::format("state file '{}': {}", path, e.what()));
  }
  return m;
}

Status SaveHealthMemory(const std::string& path, const HealthMemory& m) {
  Json j;
  j["version"] = 1;
  j["time_ms"] = m.time_ms;
  j["dropped"] = m.dropped;
  j["dir_bytes"] = m.dir_bytes;
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return UnavailableError(fmt::format("cannot write state file '{}': {}", tmp, std::strerror(errno)));
    out << j.dump() << "\n";
    if (!out.flush()) return UnavailableError(fmt::format("cannot write state file '{}'", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return UnavailableError(fmt::format("cannot rename '{}' to '{}': {}", tmp, path, ec.message()));
  return OkStatus();
}

Result<std::map<std::string, double>> SumMetricsByName(std::string_view exposition) {
  std::map<std::string, double> sums;
  ExpositionOptions opts;
  ExpositionParser parser(opts, [&](ExpositionBatch& batch) {
    for (const TimeSeries& ts : batch.series) {
      for (const Sample& s : ts.samples) {
        if (std::isnan(s.v)) continue;
        sums[std::string(ts.labels.MetricName())] += s.v;
      }
    }
    return OkStatus();
  });
  TELKIT_RETURN_IF_ERROR(parser.Feed(exposition));
  TELKIT_RETURN_IF_ERROR(parser.Finish());
  if (sums.empty() && parser.stats().errors > 0) {
    return InvalidArgumentError(fmt::format("/metrics is not the Prometheus text format ({} bad lines)",
                                            parser.stats().errors));
  }
  return sums;
}

DaemonFigures FiguresFromMetrics(const std::map<std::string, double>& sums) {
  DaemonFigures f;
  auto add = [](std::optional<double>& to, double v) { to = to.value_or(0) + v; };
  std::optional<double> spool_disk, spool_mem;
  for (const auto& [name, v] : sums) {
    if (EndsWith(name, "_total") && (Contains(name, "dropped") || Contains(name, "refused") ||
                                     Contains(name, "rejected") || Contains(name, "discarded"))) {
      // Bytes discarded count the same loss twice (items and bytes): items only.
      if (!Contains(name, "_bytes_")) add(f.dropped, v);
    } else if (EndsWith(name, "_queue_capacity_bytes")) {
      add(f.queue_capacity, v);
    } else if (EndsWith(name, "_queue_bytes") || EndsWith(name, "_unacked_bytes")) {
      add(f.queue_bytes, v);
    } else if (EndsWith(name, "_spool_disk_bytes")) {
      add(spool_disk, v);
    } else if (EndsWith(name, "_spool_bytes")) {
      add(spool_mem, v);
    } else if (EndsWith(name, "_spool_full") || EndsWith(name, "_spool_failing")) {
      add(f.spool_trouble, v);
    } else if (EndsWith(name, "_wal_bytes")) {
      add(f.wal_bytes, v);
    } else if (name == "process_resident_memory_bytes") {
      f.memory_bytes = v;
    }
  }
  f.spool_bytes = spool_disk ? spool_disk : spool_mem;
  return f;
}

Result<int64_t> CertificateFileExpiry(const std::string& path) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "r"), &BIO_free);
  if (!bio) return NotFoundError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
                                                   &X509_free);
  if (!cert) return InvalidArgumentError(fmt::format("'{}' holds no PEM certificate: {}", path, OpenSslError()));
  return Expiry(cert.get());
}

Result<int64_t> CertificateEndpointExpiry(const std::string& host_port, int timeout_ms) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free);
  if (!ctx) return InternalError("SSL_CTX_new: " + OpenSslError());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);  // expiry is read, trust is not judged
  std::unique_ptr<BIO, decltype(&BIO_free_all)> bio(BIO_new_ssl_connect(ctx.get()), &BIO_free_all);
  if (!bio) return InternalError("BIO_new_ssl_connect: " + OpenSslError());
  BIO_set_conn_hostname(bio.get(), host_port.c_str());
  SSL* ssl = nullptr;
  BIO_get_ssl(bio.get(), &ssl);
  std::string host = host_port.substr(0, host_port.rfind(':'));
  if (ssl) SSL_set_tlsext_host_name(ssl, host.c_str());
  BIO_set_nbio(bio.get(), 1);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (BIO_do_handshake(bio.get()) == 1) break;
    if (!BIO_should_retry(bio.get())) {
      return UnavailableError(fmt::format("TLS connect '{}': {}", host_port, OpenSslError()));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return UnavailableError(fmt::format("TLS connect '{}': timed out", host_port));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl), &X509_free);
  if (!cert) return UnavailableError(fmt::format("TLS connect '{}': no certificate", host_port));
  return Expiry(cert.get());
}

void CheckDaemons(const HealthOptions& o, const HealthMemory* previous, HealthMemory* next, HealthReport* report) {
  for (const HealthTarget& t : o.targets) CheckOneDaemon(o, t, previous, next, report);
}

void CheckDisks(const HealthOptions& o, const HealthMemory* previous, HealthMemory* next, HealthReport* report) {
  std::vector<std::string> dirs;
  if (!o.data_dir.empty()) {
    for (const char* sub : {"metrics", "logs", "traces"}) {
      std::string d = o.data_dir + "/" + sub;
      std::error_code ec;
      if (std::filesystem::is_directory(d, ec)) dirs.push_back(d);
    }
    if (dirs.empty()) dirs.push_back(o.data_dir);
  }
  for (const auto& d : o.disk_paths) dirs.push_back(d);
  int64_t now = NowMs();
  for (const auto& d : dirs) CheckOneDisk(o, d, now, previous, next, report);
}

void CheckFreshness(const HealthOptions& o, HealthReport* report) {
  int64_t now_ns = NowMs() * 1'000'000;
  const HealthThresholds& th = o.thresholds;
  for (ProbeSignal s : {ProbeSignal::kMetrics, ProbeSignal::kLogs, ProbeSignal::kTraces}) {
    std::string name(ProbeSignalName(s));
    Result<Probed<int64_t>> newest = NewestItemNs(o, s, now_ns);
    if (newest.ok()) {
      double age = std::max(0.0, static_cast<double>(now_ns - newest->value) / 1e9);
      Add(report, "freshness", name, newest->method, High(age, th.stale_warn_s, th.stale_crit_s), age, "seconds",
          fmt::format("newest {} {} ago", s == ProbeSignal::kMetrics ? "sample" : s == ProbeSignal::kLogs ? "log line" : "span",
                      FormatHealthValue(age, "seconds")));
    } else if (newest.status().code() == StatusCode::kNotFound) {
      HealthState st = th.stale_crit_s > 0 ? HealthState::kCritical
                       : th.stale_warn_s > 0 ? HealthState::kWarning
                                             : HealthState::kOk;
      Add(report, "freshness", name, "", st, std::nullopt, "seconds", std::string(newest.status().message()));
    } else {
      Add(report, "freshness", name, "", HealthState::kUnknown, std::nullopt, "seconds",
          std::string(newest.status().message()));
    }
  }
}

void CheckCertificates(const HealthOptions& o, HealthReport* report) {
  for (const auto& f : o.tls_cert_files) AddCertCheck(o, f, CertificateFileExpiry(f), report);
  for (const auto& e : o.tls_connect) AddCertCheck(o, e, CertificateEndpointExpiry(e, o.timeout_ms), report);
}

HealthReport RunHealthChecks(const HealthOptions& o, const HealthMemory* previous, HealthMemory* next) {
  HealthReport report;
  report.time_ms = NowMs();
  next->time_ms = report.time_ms;
  CheckDaemons(o, previous, next, &report);
  CheckDisks(o, previous, next, &report);
  if (o.freshness) CheckFreshness(o, &report);
  CheckCertificates(o, &report);
  if (o.canary) RunCanary(o, &report);
  return report;
}

}  // namespace telkit

namespace telkit {

HealthReport RunHealthOnce(const HealthOptions& o, HealthMemory* memory) {
  HealthMemory previous = *memory;
  std::optional<HealthCheck> state_problem;
  if (!o.state_file.empty()) {
    Result<HealthMemory> loaded = LoadHealthMemory(o.state_file);
    if (loaded.ok()) {
      previous = *loaded;
    } else {
      previous = HealthMemory{};
      state_problem = HealthCheck{"stack-health", "state", o.state_file, HealthState::kUnknown, std::nullopt, "",
                                  std::string(loaded.status().message()) + " (starting afresh)"};
    }
  }
  HealthMemory next;
  HealthReport report = RunHealthChecks(o, previous.time_ms > 0 ? &previous : nullptr, &next);
  if (!o.state_file.empty()) {
    Status s = SaveHealthMemory(o.state_file, next);
    if (!s.ok()) {
      state_problem = HealthCheck{"stack-health", "state", o.state_file, HealthState::kUnknown, std::nullopt, "",
                                  std::string(s.message())};
    }
  }
  if (state_problem) report.Add(std::move(*state_problem));
  *memory = std::move(next);
  return report;
}

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    if (!out) return UnavailableError(fmt::format("cannot write '{}': {}", tmp, std::strerror(errno)));
    out << text;
    if (!out.flush()) return UnavailableError(fmt::format("cannot write '{}': {}", tmp, std::strerror(errno)));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return UnavailableError(fmt::format("cannot rename '{}' to '{}': {}", tmp, path, ec.message()));
  }
  return OkStatus();
}

}  // namespace telkit
