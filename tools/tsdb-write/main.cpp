// tsdb-write: the metrics store daemon and its tools (docs/tsdb.md).
//   serve     (default) read the telemetry stream, append metrics to the
//             store in --data, acknowledge once durable; serve the head on
//             DATA/head.sock and the admin endpoint
//   query     print raw samples of a selector (the reader of other processes)
//   import    backfill OpenMetrics / Prometheus text with timestamps
//   analyze   cardinality and size report
//   snapshot  a consistent copy of the store (asks a running daemon)
//   flush     write the head out as blocks (asks a running daemon)
// The logic is in common/tsdbwrite/ and common/tsdb/; this file maps flags,
// signals, systemd notification and exit codes.
//   SIGTERM, SIGINT  stop reading, finish appends, acknowledge, close the store
//   SIGHUP           re-read the flags: log level and remote-write label limits
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "common/base/malloc_tuning.h"
#include "common/cli/cli.h"
#include "common/daemon/daemon.h"
#include "common/promql/parser.h"
#include "common/tsdb/metrics_reader.h"
#include "common/tsdbwrite/store_tools.h"
#include "common/tsdbwrite/tsdb_write_server.h"

namespace {

constexpr char kTool[] = "tsdb-write";

struct Flags {
  std::string command = "serve";
  std::vector<std::string> args;
  std::string data;
  std::vector<std::string> inputs;
  std::string admin_listen = "127.0.0.1:8890";
  std::string retention_time = "15d";
  uint64_t retention_size = 0;
  std::string block_range = "2h";
  std::string ooo_window = "0s";
  size_t max_series = 0;
  size_t max_series_per_metric = 0;
  size_t series_cache = size_t{1} << 20;
  uint64_t append_batch_bytes = uint64_t{4} << 20;
  size_t max_labels = 64;
  size_t max_label_name_bytes = 1024;
  size_t max_label_value_bytes = 4096;
  uint64_t max_frame_bytes = 64ull << 20;
  std::string on_corrupt = "skip";
  std::string format = "openmetrics";
  std::string start, end;
  size_t top = 10;
};

void Declare(CLI::App& app, Flags& f) {
  app.footer(
      "COMMAND: serve (default), query SELECTOR, import FILE|-, analyze,\n"
      "snapshot DEST, flush. SPEC is '-', a file, listen:unix:PATH, fd:N,\n"
      "systemd[:NAME]; default listen:unix:DATA/ingest.sock. The head is\n"
      "served on DATA/head.sock. DURATION: 15d, 2h, 30m, 90s, 500ms.\n"
      "SIGTERM drains and closes the store; SIGHUP reloads label limits.");
  app.add_option("command", f.command, "serve|query|import|analyze|snapshot|flush")
      ->check(CLI::IsMember({"serve", "query", "import", "analyze", "snapshot", "flush"}));
  app.add_option("args", f.args, "The command's arguments");
  app.add_option("-d,--data", f.data, "The store's directory (required)")->option_text("DIR");
  app.add_option("-i,--in", f.inputs, "serve: read the stream from SPEC")->option_text("SPEC ...");
  app.add_option("--admin-listen", f.admin_listen, "/healthz /readyz /metrics; '' disables")
      ->option_text("ADDR=127.0.0.1:8890");
  app.add_option("--retention-time", f.retention_time, "Remove blocks older than this")
      ->option_text("DUR=15d");
  app.add_option("--retention-size", f.retention_size, "Remove oldest blocks above this; 0 off")
      ->transform(CLI::AsSizeValue(false))
      ->option_text("SIZE=0");
  app.add_option("--block-range", f.block_range, "Time range of a block cut from the head")
      ->option_text("DURATION=2h");
  app.add_option("--out-of-order-window", f.ooo_window, "Accept samples this much older")
      ->option_text("DURATION=0s");
  app.add_option("--max-series", f.max_series, "Head series at most; 0 no limit")->option_text("N=0");
  app.add_option("--max-series-per-metric", f.max_series_per_metric, "Series a metric name; 0 no limit")
      ->option_text("N=0");
  app.add_option("--append-batch-bytes", f.append_batch_bytes, "Frames of one append (one fsync) at most")
      ->transform(CLI::AsSizeValue(false))
      ->option_text("SIZE=4M");
  app.add_option("--series-cache", f.series_cache, "Remote-write series known by raw label bytes")
      ->option_text("N=1048576");
  app.add_option("--max-labels", f.max_labels, "Labels a series, __name__ included")
      ->option_text("N=64")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-label-name-bytes", f.max_label_name_bytes, "Bytes of a label name")
      ->option_text("BYTES=1024")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-label-value-bytes", f.max_label_value_bytes, "Bytes of a label value")
      ->option_text("BYTES=4096")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-frame-bytes", f.max_frame_bytes, "Larger input frames count as corrupt")
      ->transform(CLI::AsSizeValue(false))
      ->option_text("SIZE=64M");
  app.add_option("--on-corrupt", f.on_corrupt, "Corrupt input frames: skip|fail")
      ->check(CLI::IsMember({"skip", "fail"}))
      ->option_text("POLICY=skip");
  app.add_option("--format", f.format, "import: openmetrics|prometheus")
      ->check(CLI::IsMember({"openmetrics", "prometheus"}))
      ->option_text("FMT=openmetrics");
  app.add_option("--start", f.start, "query: from (Unix seconds or RFC 3339)")->option_text("TIME");
  app.add_option("--end", f.end, "query: to (Unix seconds or RFC 3339)")->option_text("TIME");
  app.add_option("--top", f.top, "analyze: entries of each list")->option_text("N=10");
}

int Usage(const std::string& message) {
  std::fprintf(stderr, "%s: error: %s (see '%s --help')\n", kTool, message.c_str(), kTool);
  return telkit::kExitUsage;
}

telkit::Result<int64_t> DurationMs(const std::string& flag, const std::string& text) {
  auto d = telkit::promql::ParseDuration(text);
  if (!d.ok()) return telkit::InvalidArgumentError(flag + ": '" + text + "' is not a duration (15d, 2h, 90s)");
  return *d;
}

telkit::Status BuildConfig(const Flags& f, telkit::TsdbWriteConfig& c) {
  c.data_dir = f.data;
  c.inputs = f.inputs;
  TELKIT_ASSIGN_OR_RETURN(c.store.retention_ms, DurationMs("--retention-time", f.retention_time));
  TELKIT_ASSIGN_OR_RETURN(c.store.block_range_ms, DurationMs("--block-range", f.block_range));
  TELKIT_ASSIGN_OR_RETURN(c.store.out_of_order_window_ms, DurationMs("--out-of-order-window", f.ooo_window));
  if (c.store.block_range_ms <= 0) return telkit::InvalidArgumentError("--block-range must be positive");
  c.store.retention_bytes = f.retention_size;
  c.store.max_series = f.max_series;
  c.store.max_series_per_metric = f.max_series_per_metric;
  c.store.label_limits = {f.max_labels, f.max_label_name_bytes, f.max_label_value_bytes};
  c.ingest.limits = c.store.label_limits;
  c.ingest.max_cached_series = f.series_cache;
  if (f.max_frame_bytes == 0 || f.max_frame_bytes > telkit::kMaxPayloadLength) {
    return telkit::InvalidArgumentError("--max-frame-bytes must be between 1 and 1G");
  }
  c.input.max_payload_bytes = static_cast<uint32_t>(f.max_frame_bytes);
  // Frames read ahead of the appender: the append batch is the unit of
  // work, so more read-ahead only adds to the peak RSS.
  if (f.append_batch_bytes == 0) return telkit::InvalidArgumentError("--append-batch-bytes must be positive");
  c.append_batch_bytes = f.append_batch_bytes;
  c.input.max_buffered_bytes = f.append_batch_bytes;
  c.input.on_corruption = f.on_corrupt == "fail" ? telkit::CorruptionPolicy::kFail : telkit::CorruptionPolicy::kSkip;
  if (c.input.on_corruption == telkit::CorruptionPolicy::kSkip) {
    c.input.on_corruption_report = [](const telkit::Status& s) { spdlog::warn("{}", s.message()); };
  }
  if (!f.admin_listen.empty()) {
    TELKIT_ASSIGN_OR_RETURN(c.admin, telkit::ParseListenAddress(f.admin_listen));
  }
  return telkit::OkStatus();
}

// SIGHUP: the flags again (and so --config); nullopt-like error keeps the old.
telkit::Result<Flags> Reparse(int argc, char** argv) {
  CLI::App app;
  Flags f;
  telkit::LogOptions log;
  Declare(app, f);
  telkit::AddCommonFlags(app, kTool, log);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return telkit::InvalidArgumentError(e.what());
  }
  const auto level = spdlog::level::from_str(log.level);
  if (level == spdlog::level::off && log.level != "off") {
    return telkit::InvalidArgumentError("--log-level: unknown level '" + log.level + "'");
  }
  spdlog::set_level(level);
  return f;
}

int Serve(const Flags& f, int argc, char** argv) {
  if (!f.args.empty()) return Usage("serve takes no arguments (inputs are --in SPEC)");
  telkit::TsdbWriteConfig config;
  if (telkit::Status s = BuildConfig(f, config); !s.ok()) return Usage(s.message());
  // Frames of up to a few MiB are decoded and freed per append: keep them
  // on the heap (threshold 32 MiB) and share 2 arenas.
  telkit::TuneMalloc(32u << 20, 32u << 20, 2);
  telkit::BlockDaemonSignals();  // before any thread starts

  auto server = telkit::TsdbWriteServer::Start(config);
  if (!server.ok()) return telkit::ReportFailure(server.status());
  const telkit::MetricsStoreStats st = (*server)->store()->stats();
  spdlog::info("store '{}' open: {} head series, {} blocks, {} WAL samples replayed", config.data_dir,
               st.head_series, st.blocks, st.replayed_samples);
  for (const std::string& in : (config.inputs.empty() ? std::vector<std::string>{telkit::DefaultIngestInput(f.data)}
                                                       : config.inputs)) {
    spdlog::info("reading the telemetry stream from '{}'", in);
  }
  spdlog::info("head served on '{}'", telkit::JoinPath(config.data_dir, telkit::kHeadSocketFile));
  if (config.admin) {
    spdlog::info("admin endpoint on {}", telkit::ListenAddress{config.admin->host, (*server)->admin_port()}.ToString());
  }
  telkit::NotifyDaemonReady("storing");

  int exit_code = telkit::kExitOk;
  const int sig = telkit::RunDaemonLoop(
      {.tick = std::chrono::milliseconds(100),
       .on_reload =
           [&] {
             auto reloaded = Reparse(argc, argv);
             if (reloaded.ok()) {
               (*server)->ingester()->SetLimits(
                   {reloaded->max_labels, reloaded->max_label_name_bytes, reloaded->max_label_value_bytes});
               spdlog::info(
                   "SIGHUP: reloaded the log level and the remote-write label limits (store options need a restart)");
             } else {
               spdlog::warn("SIGHUP: kept the old settings: {}", reloaded.status().message());
             }
           },
       .on_tick = [&] { return !(*server)->InputsFinished() && (*server)->status().ok(); }});
  if (sig != 0) spdlog::info("received {}, stopping", telkit::DaemonSignalName(sig));
  telkit::NotifyDaemonStopping("closing the store");
  telkit::Status closed = (*server)->Shutdown();
  const telkit::MetricsStoreStats end = (*server)->store()->stats();
  spdlog::info("closed: {} samples appended, {} series created; rejected: {}", end.samples_appended,
               end.series_created, telkit::FormatRejected((*server)->ingester()->rejected()));
  if (!closed.ok()) exit_code = telkit::ReportFailure(closed);
  return exit_code;
}

int Query(const Flags& f) {
  if (f.args.size() != 1) return Usage("query takes one SELECTOR, e.g. 'up{job=\"node\"}'");
  auto matchers = telkit::promql::ParseMetricSelector(f.args[0]);
  if (!matchers.ok()) return Usage("selector: " + matchers.status().message());
  int64_t start = INT64_MIN, end = INT64_MAX;
  if (!f.start.empty()) {
    auto t = telkit::ParseFlagTimeMs("--start", f.start);
    if (!t.ok()) return Usage(t.status().message());
    start = *t;
  }
  if (!f.end.empty()) {
    auto t = telkit::ParseFlagTimeMs("--end", f.end);
    if (!t.ok()) return Usage(t.status().message());
    end = *t;
  }
  auto text = telkit::QueryStoreText(f.data, *matchers, start, end);
  if (!text.ok()) return telkit::ReportFailure(text.status());
  std::fwrite(text->data(), 1, text->size(), stdout);
  return std::fflush(stdout) == 0 ? telkit::kExitOk : telkit::kExitFailure;
}

int Import(const Flags& f) {
  if (f.args.size() != 1) return Usage("import takes one FILE (or - for stdin)");
  auto lock = telkit::LockStoreDir(f.data, {static_cast<int>(::getpid()), ""});
  if (!lock.ok()) {
    return telkit::ReportFailure(telkit::Status(lock.status().code(), lock.status().message() +
                                                                          ": stop the daemon before importing"));
  }
  auto store = telkit::MetricsStore::Open(telkit::DefaultFileSystem(), f.data, telkit::ImportStoreOptions());
  if (!store.ok()) return telkit::ReportFailure(store.status());
  telkit::ImportOptions o;
  o.format = f.format == "prometheus" ? telkit::ExpositionFormat::kPrometheusText : telkit::ExpositionFormat::kOpenMetrics;
  const bool tty = telkit::IsTerminal(2);
  if (tty) {
    o.progress = [](uint64_t done, uint64_t total) {
      if (total > 0) {
        std::fprintf(stderr, "\rimport: %3d%% (%.1f of %.1f MiB)", static_cast<int>(done * 100 / total),
                     static_cast<double>(done) / 1048576, static_cast<double>(total) / 1048576);
      } else {
        std::fprintf(stderr, "\rimport: %.1f MiB", static_cast<double>(done) / 1048576);
      }
    };
  }
  auto result = telkit::ImportExposition(store->get(), f.args[0], o);
  if (tty) std::fprintf(stderr, "\n");
  telkit::Status closed = (*store)->Close();
  if (!result.ok()) return telkit::ReportFailure(result.status());
  if (!closed.ok()) return telkit::ReportFailure(closed);
  uint64_t rejected_total = 0;
  for (const auto& [reason, n] : result->rejected) rejected_total += n;
  spdlog::info("imported {} samples ({} new series) into {} blocks; rejected: {}", result->samples_appended,
               result->series_created, result->blocks_written, telkit::FormatRejected(result->rejected));
  return rejected_total == 0 ? telkit::kExitOk : telkit::kExitFailure;
}

int Analyze(const Flags& f) {
  if (!f.args.empty()) return Usage("analyze takes no arguments");
  auto reader = telkit::OpenMetricsReader(telkit::DefaultFileSystem(), f.data);
  if (!reader.ok()) return telkit::ReportFailure(reader.status());
  auto report = telkit::AnalyzeStore(reader->get(), f.data, {f.top});
  if (!report.ok()) return telkit::ReportFailure(report.status());
  std::fwrite(report->data(), 1, report->size(), stdout);
  return telkit::kExitOk;
}

int Snapshot(const Flags& f) {
  if (f.args.size() != 1) return Usage("snapshot takes one DEST directory (which must not exist)");
  bool via_daemon = false;
  telkit::Status s = telkit::SnapshotStore(f.data, f.args[0], &via_daemon);
  if (!s.ok()) return telkit::ReportFailure(s);
  spdlog::info("snapshot of '{}' in '{}' ({})", f.data, f.args[0], via_daemon ? "by the running daemon" : "stopped store");
  return telkit::kExitOk;
}

int Flush(const Flags& f) {
  if (!f.args.empty()) return Usage("flush takes no arguments");
  bool via_daemon = false;
  telkit::Status s = telkit::FlushStore(f.data, &via_daemon);
  if (!s.ok()) return telkit::ReportFailure(s);
  spdlog::info("head of '{}' written out as blocks ({})", f.data, via_daemon ? "by the running daemon" : "stopped store");
  return telkit::kExitOk;
}

int Run(const Flags& f, int argc, char** argv) {
  if (f.data.empty()) return Usage("--data DIR is required");
  if (f.command == "serve") return Serve(f, argc, argv);
  if (f.command == "query") return Query(f);
  if (f.command == "import") return Import(f);
  if (f.command == "analyze") return Analyze(f);
  if (f.command == "snapshot") return Snapshot(f);
  return Flush(f);
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  return telkit::RunTool(
      kTool, "Store metrics from the telemetry stream; query, import, analyze them.", argc, argv,
      [&](CLI::App& app) { Declare(app, flags); }, [&] { return Run(flags, argc, argv); });
}
