#include "common/logingest/log_ingest.h"

#include <httplib.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <thread>

#include "common/admin/process_metrics.h"
#include "common/otlp/signal.h"
#include "common/tsdb/metrics_reader.h"
#include "common/base/time_format.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"

namespace telkit {

namespace {

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The refusal reasons the store counts (docs/logstore.md).
constexpr const char* kReasons[] = {"line_too_long", "too_many_labels", "invalid_labels",
                                    "stream_limit",  "rate_limited",    "too_old"};

// The ingestion rate limit as backpressure: the lines are held (a frame is
// not acknowledged, so the writer upstream slows down; stdin is not read)
// until the token bucket covers them; lines are refused as rate_limited only
// when one batch is larger than the whole burst, or when `stop` is set.
// Returns the nanoseconds waited.
uint64_t WaitForRateLimit(LogStore* store, const std::vector<LogPush>& pushes, const std::atomic<bool>* stop) {
  uint64_t bytes = 0;
  for (const LogPush& p : pushes)
    for (const LogEntry& e : p.entries) bytes += LogEntryRawBytes(e);
  uint64_t waited = 0;
  for (int i = 0; i < 1000000 && (stop == nullptr || !stop->load()); ++i) {
    const int64_t wait = store->RateLimitWaitNanos(bytes);
    if (wait == 0) break;
    const int64_t step = std::min<int64_t>(wait, 100'000'000);
    std::this_thread::sleep_for(std::chrono::nanoseconds(step));
    waited += static_cast<uint64_t>(step);
  }
  return waited;
}

}  // namespace

// ---------------------------------------------------------------- server

Result<std::unique_ptr<LogIngestServer>> LogIngestServer::Start(LogIngestConfig config) {
  if (config.data_dir.empty()) return InvalidArgumentError("no data directory");
  std::unique_ptr<LogIngestServer> s(new LogIngestServer());
  ::mkdir(config.data_dir.c_str(), 0755);
  TELKIT_ASSIGN_OR_RETURN(s->lock_, LockStoreDir(config.data_dir, StoreLockInfo{static_cast<int>(::getpid()), ""}));
  s->config_ = config;
  s->registry_ = std::make_unique<MetricsRegistry>();
  RegisterProcessMetrics(*s->registry_, "log-ingest");
  TELKIT_ASSIGN_OR_RETURN(s->store_, LogStore::Open(DefaultFileSystem(), config.data_dir, config.store));
  s->RegisterMetrics();
  if (config.admin) {
    AdminServerOptions ao;
    ao.listen = *config.admin;
    LogIngestServer* self = s.get();
    ao.ready = [self] { return !self->stopping_.load() && self->status().ok(); };
    ao.extra_routes = [self](httplib::Server& http) {
      http.Post("/api/v1/admin/logs/flush", [self](const httplib::Request&, httplib::Response& res) {
        Status st = self->store_->Flush();
        if (!st.ok()) {
          res.status = 500;
          nlohmann::json j = {{"status", "error"}, {"error", st.message()}};
          res.set_content(j.dump() + "\n", "application/json");
          return;
        }
        res.set_content("{\"status\":\"success\"}\n", "application/json");
      });
    };
    TELKIT_ASSIGN_OR_RETURN(s->admin_, AdminServer::Start(ao, *s->registry_));
    TELKIT_RETURN_IF_ERROR(UpdateStoreLock(
        s->lock_.get(), StoreLockInfo{static_cast<int>(::getpid()),
                                      ListenAddress{config.admin->host, s->admin_->port()}.ToString()}));
  }
  for (const std::string& spec : config.inputs) {
    TELKIT_ASSIGN_OR_RETURN(auto in, OpenStreamInput(spec, config.input));
    s->inputs_.push_back(std::move(in));
  }
  s->inputs_open_ = static_cast<int>(s->inputs_.size());
  for (size_t i = 0; i < s->inputs_.size(); ++i)
    s->readers_.emplace_back(&LogIngestServer::ReadLoop, s.get(), s->inputs_[i].get(), config.inputs[i]);
  return s;
}

void LogIngestServer::RegisterMetrics() {
  MetricsRegistry& r = *registry_;
  frames_logs_ = &r.AddCounter("log_ingest_frames_total", "Stream frames read, by kind.", {{"kind", "logs"}});
  frames_other_ = &r.AddCounter("log_ingest_frames_total", "Stream frames read, by kind.", {{"kind", "other"}});
  frames_malformed_ =
      &r.AddCounter("log_ingest_frames_total", "Stream frames read, by kind.", {{"kind", "malformed"}});
  frames_acked_ = &r.AddCounter("log_ingest_frames_acked_total", "Frames acknowledged (durable or counted).");
  records_ = &r.AddCounter("log_ingest_records_total", "OTLP log records received.");
  r.AddCallback("log_ingest_rate_limit_wait_seconds_total",
                "Time frames were held back (not acknowledged) by the ingestion rate limit.", MetricType::kCounter, {},
                [this] { return static_cast<double>(rate_wait_ns_.load()) * 1e-9; });
  LogStore* st = store_.get();
  auto stat = [st](auto field) { return [st, field] { return static_cast<double>(st->stats().*field); }; };
  using S = LogStoreStats;
  r.AddCallback("log_ingest_lines_total", "Lines stored.", MetricType::kCounter, {}, stat(&S::lines_appended));
  r.AddCallback("log_ingest_bytes_total", "Raw bytes of the lines stored.", MetricType::kCounter, {},
                stat(&S::bytes_appended));
  r.AddCallback("log_ingest_duplicates_total", "Exact duplicate lines dropped.", MetricType::kCounter, {},
                stat(&S::duplicates));
  r.AddCallback("log_ingest_invalid_utf8_total", "Lines stored with invalid UTF-8 replaced.", MetricType::kCounter,
                {}, stat(&S::invalid_utf8_replaced));
  for (const char* reason : kReasons) {
    std::string why = reason;
    r.AddCallback("log_ingest_rejected_lines_total", "Lines refused, by reason.", MetricType::kCounter,
                  {{"reason", why}}, [st, why] {
                    auto rej = st->stats().rejected;
                    auto it = rej.find(why);
                    return it == rej.end() ? 0.0 : static_cast<double>(it->second);
                  });
  }
  r.AddCallback("log_ingest_streams_created_total", "Streams created.", MetricType::kCounter, {},
                stat(&S::streams_created));
  r.AddCallback("log_ingest_head_streams", "Streams with an open chunk.", MetricType::kGauge, {},
                stat(&S::head_streams));
  r.AddCallback("log_ingest_head_bytes", "Raw bytes in open chunks.", MetricType::kGauge, {}, stat(&S::head_bytes));
  r.AddCallback("log_ingest_chunks", "Chunks on disk.", MetricType::kGauge, {}, stat(&S::chunks));
  r.AddCallback("log_ingest_chunk_bytes", "Bytes of the chunks on disk.", MetricType::kGauge, {},
                stat(&S::chunk_bytes));
  r.AddCallback("log_ingest_chunks_written_total", "Chunks cut.", MetricType::kCounter, {},
                stat(&S::chunks_written));
  r.AddCallback("log_ingest_retention_deleted_chunks_total", "Chunks deleted by retention.", MetricType::kCounter,
                {}, stat(&S::retention_deleted_chunks));
  r.AddCallback("log_ingest_wal_bytes", "Bytes written to the WAL.", MetricType::kCounter, {}, stat(&S::wal_bytes));
  r.AddCallback("log_ingest_wal_commits_total", "WAL write+fsync rounds.", MetricType::kCounter, {},
                stat(&S::wal_commits));
  r.AddCallback("log_ingest_push_seconds_total", "Time in store pushes (WAL fsync included).", MetricType::kCounter,
                {}, [st] { return static_cast<double>(st->stats().push_nanos) / 1e9; });
  r.AddCallback("log_ingest_maintenance_failures_total", "Background passes that failed.", MetricType::kCounter, {},
                stat(&S::maintenance_failures));
  r.AddCallback("log_ingest_inputs_open", "Stream inputs still reading.", MetricType::kGauge, {},
                [this] { return static_cast<double>(inputs_open_.load()); });
}

Status LogIngestServer::IngestFrame(const Frame& frame) {
  if (frame.signal_enum() != Signal::kLogs) {
    frames_other_->Increment();
    return OkStatus();
  }
  opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest req;
  if (!req.ParseFromString(frame.payload)) {
    frames_malformed_->Increment();
    return OkStatus();
  }
  frames_logs_->Increment();
  OtlpLogsMapOptions o = config_.mapping;
  o.now_ns = frame.time_unix_nano != 0 ? static_cast<int64_t>(frame.time_unix_nano) : NowNanos();
  std::vector<LogPush> pushes = MapOtlpLogs(req, o);
  uint64_t n = 0;
  for (const auto& p : pushes) n += p.entries.size();
  records_->Increment(n);
  if (pushes.empty()) return OkStatus();
  rate_wait_ns_.fetch_add(WaitForRateLimit(store_.get(), pushes, &stopping_));
  auto r = store_->Push(pushes);
  return r.status();
}

void LogIngestServer::ReadLoop(StreamInput* input, std::string spec) {
  for (;;) {
    auto next = input->Next();
    if (!next.ok()) {
      if (next.status().code() != StatusCode::kCancelled)
        Fail(Status(next.status().code(), "input '" + spec + "': " + next.status().message()));
      break;
    }
    if (!next->has_value()) break;
    const Frame& frame = **next;
    Status s = IngestFrame(frame);
    if (!s.ok()) {
      Fail(Status(s.code(), "store: " + s.message()));
      break;
    }
    input->Acknowledge(frame);
    frames_acked_->Increment();
  }
  inputs_open_.fetch_sub(1);
}

void LogIngestServer::Fail(const Status& s) {
  std::lock_guard l(mu_);
  if (failed_.ok()) failed_ = s;
}

Status LogIngestServer::status() const {
  std::lock_guard l(mu_);
  return failed_;
}

Status LogIngestServer::Shutdown() {
  if (shut_down_) return status();
  shut_down_ = true;
  stopping_ = true;
  for (auto& in : inputs_) in->Cancel();
  for (auto& t : readers_) t.join();
  readers_.clear();
  inputs_.clear();
  if (admin_) admin_->Stop();
  Status closed = store_ ? store_->Close() : OkStatus();
  Status s = status();
  return s.ok() ? closed : s;
}

LogIngestServer::~LogIngestServer() { (void)Shutdown(); }

// ---------------------------------------------------------------- plain mode

PlainIngester::PlainIngester(LogStore* store, PlainIngestOptions options)
    : store_(store), options_(std::move(options)) {}

Status PlainIngester::Feed(std::string_view bytes) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(bytes);
      // A line without end is cut at the store's limit plus one (it is
      // refused as line_too_long): memory stays bounded.
      if (partial_.size() > (1u << 20) + 1) {
        AddLine(partial_);
        partial_.clear();
      }
      break;
    }
    if (partial_.empty()) {
      AddLine(bytes.substr(0, nl));
    } else {
      partial_.append(bytes.substr(0, nl));
      AddLine(partial_);
      partial_.clear();
    }
    bytes.remove_prefix(nl + 1);
    if (batch_.size() >= options_.batch_lines) TELKIT_RETURN_IF_ERROR(Flush());
  }
  return OkStatus();
}

void PlainIngester::AddLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return;
  stats_.lines_read++;
  LogEntry e;
  e.ts = NowNanos();
  e.line = std::string(line);
  if (options_.json) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      stats_.bad_json++;
    } else {
      std::vector<std::string> fields;
      if (!options_.time_field.empty()) {
        fields = {options_.time_field};
      } else {
        fields = {"__REALTIME_TIMESTAMP", "timestamp", "time", "ts", "@timestamp"};
      }
      bool found = false;
      for (const std::string& f : fields) {
        auto it = j.find(f);
        if (it == j.end()) continue;
        std::string text = it->is_string() ? it->get<std::string>() : it->dump();
        auto t = ParseLogTime(text);
        if (t.ok()) {
          e.ts = *t;
          found = true;
        }
        break;
      }
      if (!found) stats_.bad_time++;
      if (!options_.message_field.empty()) {
        auto it = j.find(options_.message_field);
        if (it != j.end()) e.line = it->is_string() ? it->get<std::string>() : it->dump();
      }
    }
  }
  batch_.push_back(std::move(e));
}

Status PlainIngester::Flush(bool eof) {
  if (eof && !partial_.empty()) {
    AddLine(partial_);
    partial_.clear();
  }
  if (batch_.empty()) return OkStatus();
  std::vector<LogPush> p = {LogPush{options_.labels, std::move(batch_)}};
  batch_.clear();
  stats_.rate_wait_ns += WaitForRateLimit(store_, p, nullptr);
  TELKIT_ASSIGN_OR_RETURN(LogPushResult r, store_->Push(p));
  stats_.lines_accepted += r.accepted;
  stats_.duplicates += r.duplicates;
  stats_.lines_rejected += r.rejected_total();
  return OkStatus();
}

// ---------------------------------------------------------------- query helpers

Result<int64_t> ParseLogTime(std::string_view t) {
  auto bad = [&] { return InvalidArgumentError("bad time '" + std::string(t) + "'"); };
  if (t.empty()) return bad();
  bool numeric = std::all_of(t.begin(), t.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.' || c == '-'; });
  if (numeric) {
    size_t dot = t.find('.');
    std::string ip(t.substr(0, dot));
    if (ip.empty() || ip == "-") return bad();
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(ip.c_str(), &end, 10);
    if (errno != 0 || *end != '\0') return bad();
    double frac = 0;
    if (dot != std::string_view::npos) {
      std::string fs = "0" + std::string(t.substr(dot));
      frac = std::strtod(fs.c_str(), &end);
      if (*end != '\0') return bad();
    }
    long long a = v < 0 ? -v : v;
    int64_t scale = a < 100'000'000'000LL ? 1'000'000'000 : a < 100'000'000'000'000LL ? 1'000'000 : a < 100'000'000'000'000'000LL ? 1000 : 1;
    if (scale > 1 && std::llabs(v) > INT64_MAX / scale) return bad();
    return static_cast<int64_t>(v) * scale + static_cast<int64_t>(std::llround(frac * static_cast<double>(scale)));
  }
  // RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  std::string s(t);
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed == 0)
    return bad();
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t ns = 0;
  size_t i = static_cast<size_t>(consumed);
  if (i < s.size() && s[i] == '.') {
    int64_t mult = 100'000'000;
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ns += (s[i] - '0') * mult;
      mult /= 10;
      ++i;
    }
  }
  int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int hh, mm;
    if (std::sscanf(s.c_str() + i + 1, "%2d:%2d", &hh, &mm) != 2) return bad();
    offset = (hh * 3600 + mm * 60) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return bad();
  }
  if (i != s.size()) return bad();
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset;
  return secs * 1'000'000'000 + ns;
}

std::string FormatLogTime(int64_t ns) { return FormatUtcNanos(ns, "%Y-%m-%dT%H:%M:%S", 9, false) + "Z"; }

Result<std::vector<LabelMatcher>> ParseLogSelector(std::string_view text) {
  size_t i = 0;
  auto err = [&](const std::string& what) {
    return InvalidArgumentError("selector: " + what + " at position " + std::to_string(i + 1));
  };
  auto skip = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  };
  skip();
  if (i >= text.size() || text[i] != '{') return err("expected '{'");
  ++i;
  std::vector<LabelMatcher> out;
  skip();
  if (i < text.size() && text[i] == '}') {
    ++i;
  } else {
    for (;;) {
      skip();
      size_t start = i;
      while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_')) ++i;
      std::string name(text.substr(start, i - start));
      if (name.empty() || !IsValidLabelName(name)) return err("expected a label name");
      skip();
      MatchType type;
      if (text.substr(i, 2) == "=~") type = MatchType::kRegexMatch, i += 2;
      else if (text.substr(i, 2) == "!~") type = MatchType::kRegexNoMatch, i += 2;
      else if (text.substr(i, 2) == "!=") type = MatchType::kNotEqual, i += 2;
      else if (text.substr(i, 1) == "=") type = MatchType::kEqual, i += 1;
      else return err("expected =, !=, =~ or !~");
      skip();
      if (i >= text.size() || (text[i] != '"' && text[i] != '`')) return err("expected a quoted value");
      char q = text[i++];
      std::string value;
      while (i < text.size() && text[i] != q) {
        if (q == '"' && text[i] == '\\' && i + 1 < text.size()) {
          char c = text[++i];
          value.push_back(c == 'n' ? '\n' : c == 't' ? '\t' : c);
        } else {
          value.push_back(text[i]);
        }
        ++i;
      }
      if (i >= text.size()) return err("unterminated value");
      ++i;
      TELKIT_ASSIGN_OR_RETURN(LabelMatcher m, LabelMatcher::Make(type, name, value));
      out.push_back(std::move(m));
      skip();
      if (i < text.size() && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < text.size() && text[i] == '}') {
        ++i;
        break;
      }
      return err("expected ',' or '}'");
    }
  }
  skip();
  if (i != text.size()) return err("unexpected text after the selector");
  bool any = std::any_of(out.begin(), out.end(), [](const LabelMatcher& m) { return !m.MatchesEmpty(); });
  if (!any) return InvalidArgumentError("selector: needs at least one matcher that does not match the empty string");
  return out;
}

std::string FormatLogQueryResult(const std::vector<LogStreamResult>& result, bool backward, bool jsonl) {
  struct Item {
    int64_t ts;
    const Labels* stream;
    const LogEntry* e;
  };
  std::vector<Item> all;
  for (const auto& s : result)
    for (const auto& e : s.entries) all.push_back({e.ts, &s.stream, &e});
  std::stable_sort(all.begin(), all.end(),
                   [&](const Item& a, const Item& b) { return backward ? a.ts > b.ts : a.ts < b.ts; });
  std::string out;
  for (const Item& it : all) {
    if (jsonl) {
      nlohmann::json j;
      j["ts"] = FormatLogTime(it.ts);
      nlohmann::json st = nlohmann::json::object();
      for (const Label& l : *it.stream) st[l.name] = l.value;
      j["stream"] = st;
      j["line"] = it.e->line;
      nlohmann::json md = nlohmann::json::object();
      for (const Label& l : it.e->metadata) md[l.name] = l.value;
      j["metadata"] = md;
      out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      out += FormatLogTime(it.ts) + " " + it.stream->ToString() + " " + it.e->line;
    }
    out += '\n';
  }
  return out;
}

}  // namespace telkit

namespace telkit {

Result<int64_t> ParseLogDuration(std::string_view text) {
  if (text.empty()) return InvalidArgumentError("bad duration ''");
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0 || i + 1 != text.size()) return InvalidArgumentError("bad duration '" + std::string(text) + "'");
  int64_t n = std::strtoll(std::string(text.substr(0, i)).c_str(), nullptr, 10);
  int64_t unit;
  switch (text[i]) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return InvalidArgumentError("bad duration '" + std::string(text) + "': unit must be s, m, h, d or w");
  }
  if (n > INT64_MAX / 1'000'000'000 / unit) return InvalidArgumentError("duration too long");
  return n * unit * 1'000'000'000;
}

Status ReadPlainStream(int fd, PlainIngester* in, const std::atomic<bool>& stop) {
  std::vector<char> buf(1 << 16);
  while (!stop.load()) {
    pollfd p{fd, POLLIN, 0};
    int rc = poll(&p, 1, 200);
    if (rc < 0 && errno != EINTR) return ErrnoError("poll");
    if (rc <= 0) {
      TELKIT_RETURN_IF_ERROR(in->Flush());
      continue;
    }
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoError("read");
    }
    if (n == 0) break;
    TELKIT_RETURN_IF_ERROR(in->Feed(std::string_view(buf.data(), static_cast<size_t>(n))));
    TELKIT_RETURN_IF_ERROR(in->Flush());
  }
  return in->Flush(true);
}

Result<Labels> ParseLabelsFlag(const std::string& text) {
  std::vector<Label> ls;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string kv = text.substr(pos, comma - pos);
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return InvalidArgumentError("--labels: '" + kv + "' is not name=value");
    if (!IsValidUserLabelName(kv.substr(0, eq))) {
      return InvalidArgumentError("--labels: invalid label name '" + kv.substr(0, eq) + "'");
    }
    ls.push_back(Label{kv.substr(0, eq), kv.substr(eq + 1)});
    pos = comma + 1;
  }
  auto labels = Labels::FromUnsorted(std::move(ls));
  if (!labels.ok() || labels->empty()) return InvalidArgumentError("--labels: need distinct names with values");
  return *labels;
}

}  // namespace telkit
