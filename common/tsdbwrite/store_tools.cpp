#include "common/tsdbwrite/store_tools.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <set>
#include <unordered_map>

#include "common/admin/http_server.h"
#include "common/admin/metrics_registry.h"
#include "common/tsdb/metrics_reader.h"

namespace telkit {

MetricsStoreOptions ImportStoreOptions() {
  MetricsStoreOptions o;
  o.background = false;
  o.out_of_order_window_ms = int64_t{100} * 365 * 24 * 3600 * 1000;
  o.backfill = true;  // data older than the newest block: blocks of its own, merged when they overlap
  return o;
}

Result<ImportResult> ImportExposition(MetricsStore* store, const std::string& path, const ImportOptions& options) {
  ImportResult result;
  const MetricsStoreStats before = store->stats();
  ExpositionOptions eo;
  eo.format = options.format;
  eo.on_error = options.on_error;
  Status append_error;
  ExpositionParser parser(eo, [&](ExpositionBatch& batch) -> Status {
    auto r = store->Append(batch.series, batch.metadata);
    if (!r.ok()) return r.status();
    result.samples_read += batch.num_samples;
    for (const auto& [reason, n] : r->rejected) {
      if (reason != "duplicate") result.rejected[reason] += n;
    }
    return OkStatus();
  });
  int fd = 0;
  uint64_t total = 0;
  if (path != "-") {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int e = errno;
      Status s = ErrnoError("open '" + path + "'", e);
      return s;
    }
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) total = static_cast<uint64_t>(st.st_size);
  }
  std::string buf(1 << 20, '\0');
  uint64_t done = 0;
  Status s;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      s = ErrnoError("read '" + path + "'");
      break;
    }
    if (n == 0) {
      s = parser.Finish();
      break;
    }
    done += static_cast<uint64_t>(n);
    s = parser.Feed(std::string_view(buf.data(), static_cast<size_t>(n)));
    if (!s.ok()) break;
    if (options.progress) options.progress(done, total);
  }
  if (fd > 0) ::close(fd);
  if (!s.ok()) return s;
  const ExpositionStats& ps = parser.stats();
  for (size_t i = 0; i < ps.errors_by_problem.size(); ++i) {
    if (ps.errors_by_problem[i] > 0) {
      result.rejected["line_" + std::string(ExpositionProblemName(static_cast<ExpositionProblem>(i)))] +=
          ps.errors_by_problem[i];
    }
  }
  result.errors = parser.errors();
  TELKIT_RETURN_IF_ERROR(store->FlushHead());
  TELKIT_RETURN_IF_ERROR(store->Compact());  // merges the new blocks into those they overlap
  const MetricsStoreStats after = store->stats();
  result.samples_appended = after.samples_appended - before.samples_appended;
  result.series_created = after.series_created - before.series_created;
  result.blocks_written = after.blocks_written - before.blocks_written;
  return result;
}

namespace {

std::string FormatLabels(const Labels& labels) {
  std::string out(labels.MetricName());
  bool any = false;
  for (const Label& l : labels) {
    if (l.name == kMetricNameLabel) continue;
    out += any ? ',' : '{';
    any = true;
    out += l.name;
    out += "=\"";
    out += EscapeLabelValue(l.value);
    out += '"';
  }
  if (any) out += '}';
  return out;
}

uint64_t BytesUnder(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return std::filesystem::file_size(path, ec);
  uint64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (it->is_regular_file(e2)) total += it->file_size(e2);
  }
  return total;
}

template <typename Map>
std::vector<std::pair<std::string, uint64_t>> Top(const Map& m, size_t n) {
  std::vector<std::pair<std::string, uint64_t>> v;
  for (const auto& [k, c] : m) v.emplace_back(k, static_cast<uint64_t>(c));
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (v.size() > n) v.resize(n);
  return v;
}

}  // namespace

std::string FormatSeriesText(const std::vector<SeriesSamples>& series) {
  std::string out;
  for (const SeriesSamples& s : series) {
    const std::string name = FormatLabels(s.labels);
    for (const Sample& x : s.samples) {
      out += name;
      out += ' ';
      out += FormatSampleValue(x.v);
      out += ' ';
      out += std::to_string(x.t);
      out += '\n';
    }
  }
  return out;
}

Result<std::string> AnalyzeStore(Querier* querier, const std::string& dir, const AnalyzeOptions& options) {
  TELKIT_ASSIGN_OR_RETURN(std::vector<std::string> names, querier->LabelValues(kMetricNameLabel, INT64_MIN, INT64_MAX, {}));
  uint64_t series = 0, samples = 0;
  int64_t mint = INT64_MAX, maxt = INT64_MIN;
  std::map<std::string, uint64_t> series_by_metric;
  std::map<std::string, std::set<std::string>> values_by_name;
  std::map<std::string, uint64_t> series_by_pair;
  std::map<std::string, uint64_t> series_by_label_name;
  for (const std::string& name : names) {
    auto m = LabelMatcher::Make(MatchType::kEqual, std::string(kMetricNameLabel), name);
    if (!m.ok()) return m.status();
    std::vector<LabelMatcher> matchers = {*m};
    TELKIT_ASSIGN_OR_RETURN(auto got, querier->Select(INT64_MIN, INT64_MAX, matchers));
    series_by_metric[name] = got.size();
    for (const SeriesSamples& s : got) {
      ++series;
      samples += s.samples.size();
      if (!s.samples.empty()) {
        mint = std::min(mint, s.samples.front().t);
        maxt = std::max(maxt, s.samples.back().t);
      }
      for (const Label& l : s.labels) {
        if (l.name == kMetricNameLabel) continue;
        values_by_name[l.name].insert(l.value);
        ++series_by_label_name[l.name];
        ++series_by_pair[l.name + "=" + l.value];
      }
    }
  }
  std::map<std::string, uint64_t> cardinality;
  for (const auto& [k, v] : values_by_name) cardinality[k] = v.size();

  std::string out;
  auto line = [&](const std::string& s) { out += s + "\n"; };
  line("Series: " + std::to_string(series));
  line("Samples: " + std::to_string(samples));
  line("Metric names: " + std::to_string(names.size()));
  line("Label names: " + std::to_string(values_by_name.size()));
  line("Label pairs: " + std::to_string(series_by_pair.size()));
  if (series > 0) {
    line("Time range (ms): " + std::to_string(mint) + " .. " + std::to_string(maxt));
    char b[64];
    std::snprintf(b, sizeof b, "%.1f", static_cast<double>(samples) / static_cast<double>(series));
    line(std::string("Samples per series: ") + b);
  }
  const uint64_t blocks_bytes = BytesUnder(dir + "/blocks");
  const uint64_t wal_bytes = BytesUnder(dir + "/wal");
  const uint64_t index_bytes = BytesUnder(dir + "/index.db") + BytesUnder(dir + "/index.db-wal");
  size_t blocks = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir + "/blocks", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (it->is_directory()) ++blocks;
  }
  line("Blocks: " + std::to_string(blocks));
  line("Bytes: blocks " + std::to_string(blocks_bytes) + ", wal " + std::to_string(wal_bytes) + ", index " +
       std::to_string(index_bytes));
  if (samples > 0) {
    char b[64];
    std::snprintf(b, sizeof b, "%.3f", static_cast<double>(blocks_bytes + wal_bytes) / static_cast<double>(samples));
    line(std::string("Bytes per sample (blocks + wal): ") + b);
  }
  auto section = [&](const std::string& title, const std::vector<std::pair<std::string, uint64_t>>& v) {
    line("");
    line(title);
    for (const auto& [k, n] : v) line(std::to_string(n) + " " + k);
  };
  section("Highest cardinality metric names (series):", Top(series_by_metric, options.top));
  section("Highest cardinality labels (distinct values):", Top(cardinality, options.top));
  section("Most common label names (series):", Top(series_by_label_name, options.top));
  section("Most common label pairs (series):", Top(series_by_pair, options.top));
  return out;
}

namespace {

// POSTs `path` to the admin endpoint of the daemon holding `dir`; the body.
// NOT_FOUND when no daemon holds it.
Result<std::string> PostToDaemon(const std::string& dir, const std::string& path) {
  bool held = false;
  auto info = ReadStoreLock(dir, &held);
  if (!info.ok() || !held) return NotFoundError("no daemon holds '" + dir + "'");
  if (info->admin.empty()) {
    return FailedPreconditionError("the daemon holding '" + dir + "' (pid " + std::to_string(info->pid) +
                                   ") has no admin endpoint");
  }
  TELKIT_ASSIGN_OR_RETURN(ListenAddress addr, ParseListenAddress(info->admin));
  std::string host = addr.host == "0.0.0.0" || addr.host.empty() ? "127.0.0.1" : addr.host;
  if (host == "::") host = "::1";
  httplib::Client client(host, addr.port);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(600, 0);
  auto res = client.Post(path.c_str());
  if (!res) {
    return UnavailableError("POST http://" + info->admin + path + ": " + httplib::to_string(res.error()));
  }
  if (res->status != 200) {
    return InternalError("POST http://" + info->admin + path + ": HTTP " + std::to_string(res->status) + ": " +
                         res->body);
  }
  return res->body;
}

}  // namespace

Status SnapshotStore(const std::string& dir, const std::string& dest, bool* via_daemon) {
  *via_daemon = false;
  std::error_code ec;
  if (std::filesystem::exists(dest, ec)) return FailedPreconditionError("'" + dest + "' exists");
  auto body = PostToDaemon(dir, "/api/v1/admin/tsdb/snapshot");
  if (body.ok()) {
    *via_daemon = true;
    const std::string key = "\"name\":\"";
    const size_t at = body->find(key);
    if (at == std::string::npos) return InternalError("unexpected snapshot answer: " + *body);
    const size_t end = body->find('"', at + key.size());
    const std::string name = body->substr(at + key.size(), end - at - key.size());
    const std::string from = JoinPath(JoinPath(dir, "snapshots"), name);
    std::filesystem::rename(from, dest, ec);
    if (ec) {  // another file system: copy, then remove the daemon's copy
      ec.clear();
      std::filesystem::copy(from, dest, std::filesystem::copy_options::recursive, ec);
      if (ec) return InternalError("copy '" + from + "' to '" + dest + "': " + ec.message());
      std::filesystem::remove_all(from, ec);
    }
    return OkStatus();
  }
  if (body.status().code() != StatusCode::kNotFound) return body.status();
  TELKIT_ASSIGN_OR_RETURN(UniqueFd lock, LockStoreDir(dir, StoreLockInfo{static_cast<int>(::getpid()), ""}));
  MetricsStoreOptions o;
  o.background = false;
  TELKIT_ASSIGN_OR_RETURN(auto store, MetricsStore::Open(DefaultFileSystem(), dir, o));
  Status s = store->Snapshot(dest);
  Status c = store->Close();
  return s.ok() ? c : s;
}

Status FlushStore(const std::string& dir, bool* via_daemon) {
  *via_daemon = false;
  auto body = PostToDaemon(dir, "/api/v1/admin/tsdb/flush");
  if (body.ok()) {
    *via_daemon = true;
    return OkStatus();
  }
  if (body.status().code() != StatusCode::kNotFound) return body.status();
  TELKIT_ASSIGN_OR_RETURN(UniqueFd lock, LockStoreDir(dir, StoreLockInfo{static_cast<int>(::getpid()), ""}));
  MetricsStoreOptions o;
  o.background = false;
  TELKIT_ASSIGN_OR_RETURN(auto store, MetricsStore::Open(DefaultFileSystem(), dir, o));
  Status s = store->FlushHead();
  Status c = store->Close();
  return s.ok() ? c : s;
}

Result<int64_t> ParseFlagTimeMs(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  const double secs = std::strtod(text.c_str(), &end);
  if (!text.empty() && end == text.c_str() + text.size() && std::isfinite(secs)) {
    return static_cast<int64_t>(std::llround(secs * 1000));
  }
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest != nullptr) {
    int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
    if (*rest == '.') {
      int64_t frac = 0, scale = 100;
      for (++rest; *rest >= '0' && *rest <= '9'; ++rest, scale /= 10) frac += (*rest - '0') * scale;
      ms += frac;
    }
    int sign = 0, hh = 0, mm = 0;
    if (*rest == 'Z' && rest[1] == '\0') return ms;
    if ((*rest == '+' || *rest == '-') && std::sscanf(rest + 1, "%2d:%2d", &hh, &mm) == 2) {
      sign = *rest == '+' ? 1 : -1;
      return ms - sign * (int64_t{hh} * 3600 + mm * 60) * 1000;
    }
  }
  return InvalidArgumentError(flag + ": '" + text + "' is neither Unix seconds nor RFC 3339");
}

Result<std::string> QueryStoreText(const std::string& dir, std::span<const LabelMatcher> matchers, int64_t start_ms,
                                   int64_t end_ms) {
  TELKIT_ASSIGN_OR_RETURN(auto reader, OpenMetricsReader(DefaultFileSystem(), dir));
  TELKIT_ASSIGN_OR_RETURN(auto series, reader->Select(start_ms, end_ms, matchers));
  return FormatSeriesText(series);
}

std::string FormatRejected(const std::map<std::string, uint64_t>& rejected) {
  std::string out;
  for (const auto& [reason, n] : rejected) out += (out.empty() ? "" : ", ") + reason + " " + std::to_string(n);
  return out.empty() ? "none" : out;
}

}  // namespace telkit
