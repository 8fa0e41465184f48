// log-ingest: the log store daemon. Reads OTLP logs frames of the telemetry
// stream (--in, acknowledged once durable) or plain text / JSON lines from
// stdin or files with fixed --labels, into the log store in --data; and
// `log-ingest query` prints lines of a store (the stopgap reader until
// LogQL). The logic is in common/logingest and common/logstore; this file
// adds flags, signals, systemd notification and exit codes.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "common/cli/cli.h"
#include "common/daemon/daemon.h"
#include "common/logingest/log_ingest.h"

namespace {

constexpr const char* kTool = "log-ingest";

struct Flags {
  std::string data;
  std::vector<std::string> inputs;
  std::string labels;
  bool json = false;
  std::string time_field;
  std::string message_field;
  std::vector<std::string> files;
  std::string admin = "127.0.0.1:8891";
  std::string admin_deprecated;  // --admin, the old spelling of --admin-listen
  std::vector<std::string> index_attributes;
  std::string retention = "7d";
  uint64_t retention_bytes = 0;
  size_t max_line_bytes = 256 << 10;
  size_t max_streams = 100000;
  double rate_limit = 0;
  size_t chunk_bytes = 1 << 20;
  int zstd_level = 1;
  // query
  CLI::App* query = nullptr;
  std::string selector;
  std::vector<std::string> contains;
  std::string start, end;
  size_t limit = 100;
  bool backward = false;
  std::string format = "text";
};

void Declare(CLI::App& app, Flags& f) {
  app.require_subcommand(0, 1);
  app.add_option("--data", f.data, "The log store directory")->type_name("DIR");
  app.add_option("--in", f.inputs, "Stream input of OTLP logs frames (repeatable)")->type_name("SPEC");
  app.add_option("--labels", f.labels, "Plain mode: labels of every line, a=b,c=d")->type_name("LIST");
  app.add_flag("--json", f.json, "Plain mode: lines are JSON objects");
  app.add_option("--time-field", f.time_field, "Plain JSON: timestamp field (default: auto)")->type_name("NAME");
  app.add_option("--message-field", f.message_field, "Plain JSON: field stored as the line")->type_name("NAME");
  app.add_option("--admin-listen", f.admin, "Admin endpoint HOST:PORT, or 'none'")->capture_default_str();
  // Deprecated spelling, kept working but not shown in --help.
  app.add_option("--admin", f.admin_deprecated, "Deprecated: --admin-listen")->group("");
  app.add_option("--index-attribute", f.index_attributes, "OTLP resource attribute to index (repeatable)")
      ->type_name("NAME")
      ->delimiter(',');
  app.add_option("--retention", f.retention, "Delete lines older than this (0: keep)")->capture_default_str();
  app.add_option("--retention-bytes", f.retention_bytes, "Delete oldest chunks over this size (0: off)")
      ->capture_default_str();
  app.add_option("--max-line-bytes", f.max_line_bytes, "Refuse longer lines")->capture_default_str();
  app.add_option("--max-streams", f.max_streams, "Refuse new streams beyond this (0: off)")->capture_default_str();
  app.add_option("--rate-limit", f.rate_limit, "Ingest at most bytes/s; waits beyond (0: off)")->capture_default_str();
  app.add_option("--chunk-bytes", f.chunk_bytes, "Raw bytes that cut a chunk")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--zstd-level", f.zstd_level, "Chunk compression level, 1-22")->capture_default_str();
  app.add_option("files", f.files, "Plain mode: files to read (default: stdin)")->type_name("FILE");
  app.footer(
      "Daemon: log-ingest --data DIR --in SPEC...   Plain: ... | log-ingest --data DIR\n"
      "--labels job=app [--json]. Run 'log-ingest query --help' to read a store.");
  CLI::App* q = app.add_subcommand("query", "Print lines of a store: log-ingest query --help");
  f.query = q;
  q->add_option("--data", f.data, "The log store directory")->type_name("DIR");
  q->add_option("selector", f.selector, "Stream selector")->required()->type_name("SELECTOR");
  q->add_option("--contains", f.contains, "Only lines containing TEXT (repeatable)")->type_name("TEXT");
  q->add_option("--start", f.start, "From this time (Unix time or RFC 3339)")->type_name("T");
  q->add_option("--end", f.end, "Up to this time, exclusive")->type_name("T");
  q->add_option("--limit", f.limit, "At most this many lines (0: all)")->capture_default_str();
  q->add_flag("--backward", f.backward, "Newest first");
  q->add_option("--format", f.format, "Output: text|jsonl")->capture_default_str()->check(
      CLI::IsMember({"text", "jsonl"}));
}

int Usage(const std::string& message) {
  std::cerr << kTool << ": error: " << message << " (see 'log-ingest --help')\n";
  return telkit::kExitUsage;
}

int RunQuery(const Flags& f) {
  auto matchers = telkit::ParseLogSelector(f.selector);
  if (!matchers.ok()) return Usage(matchers.status().message());
  telkit::LogQuery q;
  q.matchers = *matchers;
  q.contains = f.contains;
  q.limit = f.limit;
  q.backward = f.backward;
  if (!f.start.empty()) {
    auto t = telkit::ParseLogTime(f.start);
    if (!t.ok()) return Usage("--start: " + t.status().message());
    q.start_ns = *t;
  }
  if (!f.end.empty()) {
    auto t = telkit::ParseLogTime(f.end);
    if (!t.ok()) return Usage("--end: " + t.status().message());
    q.end_ns = *t;
  }
  auto reader = telkit::LogReader::Open(telkit::DefaultFileSystem(), f.data);
  if (!reader.ok()) return telkit::ReportFailure(reader.status());
  auto r = (*reader)->Select(q);
  if (!r.ok()) return telkit::ReportFailure(r.status());
  std::cout << telkit::FormatLogQueryResult(*r, f.backward, f.format == "jsonl");
  std::cout.flush();
  return std::cout ? telkit::kExitOk : telkit::kExitFailure;
}

int Run(Flags& f) {
  if (f.query->parsed()) {
    if (f.data.empty()) return Usage("--data is required");
    return RunQuery(f);
  }
  if (f.data.empty()) return Usage("--data is required");
  telkit::LogIngestConfig config;
  config.data_dir = f.data;
  config.inputs = f.inputs;
  config.mapping.index_attributes = f.index_attributes;
  if (!f.admin_deprecated.empty()) {
    spdlog::warn("--admin is deprecated; use --admin-listen");
    f.admin = f.admin_deprecated;
  }
  if (f.admin != "none" && !f.admin.empty()) {
    auto a = telkit::ParseListenAddress(f.admin);
    if (!a.ok()) return Usage("--admin-listen: " + a.status().message());
    config.admin = *a;
  }
  if (f.retention == "0") {
    config.store.retention_ns = 0;
  } else {
    auto d = telkit::ParseLogDuration(f.retention);
    if (!d.ok()) return Usage("--retention: " + d.status().message());
    config.store.retention_ns = *d;
  }
  config.store.retention_bytes = f.retention_bytes;
  config.store.limits.max_line_bytes = f.max_line_bytes;
  config.store.limits.max_streams = f.max_streams;
  config.store.limits.rate_bytes_per_sec = f.rate_limit;
  config.store.chunk_target_bytes = f.chunk_bytes;
  if (f.zstd_level < 1 || f.zstd_level > 22) return Usage("--zstd-level: must be 1 to 22");
  config.store.chunk.zstd_level = f.zstd_level;
  const bool plain = f.inputs.empty();
  telkit::PlainIngestOptions po;
  if (plain) {
    if (f.labels.empty()) return Usage("plain mode needs --labels (or give --in for the daemon)");
    auto labels = telkit::ParseLabelsFlag(f.labels);
    if (!labels.ok()) return Usage(labels.status().message());
    po.labels = *labels;
    po.json = f.json;
    po.time_field = f.time_field;
    po.message_field = f.message_field;
  } else if (!f.files.empty() || !f.labels.empty() || f.json) {
    return Usage("--in excludes FILEs, --labels and --json");
  }

  std::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = telkit::LogIngestServer::Start(config);
  if (!server.ok()) return telkit::ReportFailure(server.status());
  if (config.admin) spdlog::info("admin endpoint on {}:{}", config.admin->host, (*server)->admin_port());
  telkit::NotifyDaemonReady("ingesting logs");
  int exit_code = telkit::kExitOk;
  std::atomic<bool> stop{false}, finished{false};
  if (plain) {
    // A signal thread turns SIGTERM/SIGINT into `stop`; the reader drains.
    std::thread sig([&] {
      int got = 0;
      while (sigwait(&signals, &got) == 0) {
        if (finished) return;
        if (got == SIGTERM || got == SIGINT) {
          spdlog::info("received {}, draining", got == SIGTERM ? "SIGTERM" : "SIGINT");
          stop = true;
          return;
        }
      }
    });
    telkit::PlainIngester in((*server)->store(), po);
    std::vector<std::string> files = f.files.empty() ? std::vector<std::string>{"-"} : f.files;
    for (const std::string& file : files) {
      int fd = file == "-" ? 0 : open(file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        spdlog::error("open '{}': {}", file, std::strerror(errno));
        exit_code = telkit::kExitFailure;
        break;
      }
      telkit::Status s = telkit::ReadPlainStream(fd, &in, stop);
      if (fd != 0) close(fd);
      if (!s.ok()) {
        spdlog::error("{}", s.message());
        exit_code = telkit::kExitFailure;
        break;
      }
      if (stop) break;
    }
    const auto& st = in.stats();
    spdlog::info("{} lines read, {} stored, {} refused, {} duplicates, {} not JSON, {} without a time", st.lines_read,
                 st.lines_accepted, st.lines_rejected, st.duplicates, st.bad_json, st.bad_time);
    finished = true;
    if (!stop) pthread_kill(sig.native_handle(), SIGTERM);
    sig.join();
  } else {
    // SIGHUP cuts the open chunks (ExecReload); the loop (which blocks
    // SIGHUP now) also notices failed or finished inputs.
    const int sig = telkit::RunDaemonLoop({.tick = std::chrono::milliseconds(200),
                                           .on_reload =
                                               [&] {
                                                 telkit::Status flushed = (*server)->store()->Flush();
                                                 if (flushed.ok()) {
                                                   spdlog::info("SIGHUP: cut the open chunks");
                                                 } else {
                                                   spdlog::warn("SIGHUP: {}", flushed.message());
                                                 }
                                               },
                                           .on_tick =
                                               [&] {
                                                 if (telkit::Status s = (*server)->status(); !s.ok()) {
                                                   spdlog::error("{}", s.message());
                                                   exit_code = telkit::kExitFailure;
                                                   return false;
                                                 }
                                                 return !(*server)->InputsFinished();
                                               }});
    if (sig != 0) spdlog::info("received {}, draining", telkit::DaemonSignalName(sig));
  }
  telkit::NotifyDaemonStopping("draining");
  telkit::Status closed = (*server)->Shutdown();
  if (!closed.ok() && exit_code == telkit::kExitOk) {
    spdlog::error("{}", closed.message());
    exit_code = telkit::kExitFailure;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  return telkit::RunTool(
      kTool, "Store logs: OTLP logs frames or plain lines into the log store; query it.", argc, argv,
      [&](CLI::App& app) { Declare(app, flags); }, [&] { return Run(flags); });
}
