// tel-batch: the processing stage of the telemetry stream — memory limiter,
// resource attributes, filter, trace sampling, batching, and routing by
// signal to stream outputs or OTLP endpoints. Flags map onto
// PipelineServerConfig (common/pipeline/pipeline_server.h); this file only
// adds signals, systemd notification and exit codes.
//   SIGTERM, SIGINT  stop reading, flush every batch, drain outputs, exit 0
//   SIGHUP           re-read --config and the processor flags
#include <grpc/support/log.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <string>
#include <vector>

#include "common/cli/cli.h"
#include "common/daemon/daemon.h"
#include "common/pipeline/pipeline_server.h"

namespace {

constexpr char kTool[] = "tel-batch";

struct Flags {
  std::vector<std::string> inputs = {"-"};
  std::vector<std::string> out, traces_out, metrics_out, logs_out;
  telkit::ProcessorSettings p;
  std::vector<std::string> export_headers;
  bool export_gzip = false;
  int export_timeout_ms = 10000;
  std::string export_ca_file;
  std::string on_corrupt = "skip";
  uint64_t max_frame_bytes = 64ull << 20;
  std::string admin_listen = "127.0.0.1:8889";
  int drain_timeout = 20;
  std::string spool_dir;
  uint64_t spool_max_bytes = 1ull << 30;
};

void Declare(CLI::App& app, Flags& f) {
  app.footer(
      "SPEC is '-' (stdin/stdout), a file, unix:PATH, listen:unix:PATH, fd:N,\n"
      "systemd[:NAME]; outputs also otlp+grpc://HOST:PORT, otlp+grpcs://,\n"
      "otlp+http://HOST:PORT[/PATH], otlp+https://; for metrics also remote\n"
      "write prom-rw+http://HOST:PORT/PATH, prom-rw+https://. Without any\n"
      "output flag, everything goes to stdout. Processors, default order:\n"
      "memory_limiter resource filter sampling batch. EXPR: FIELD OP VALUE\n"
      "[&& ...], e.g. 'name =~ GET.* && attr.http.status_code >= 500';\n"
      "see tel-batch(1).\n"
      "SIGTERM flushes and drains; SIGHUP reloads the processor settings.");
  auto many = [&](const char* name, std::vector<std::string>& v, const char* help, const char* text) {
    return app.add_option(name, v, help)->option_text(std::string(text) + " ...");  // repeatable
  };
  many("-i,--in", f.inputs, "Read the stream from SPEC", "SPEC=-");
  many("-o,--out", f.out, "Default output; several: fan-out", "SPEC");
  many("--traces-out", f.traces_out, "Output for traces", "SPEC");
  many("--metrics-out", f.metrics_out, "Output for metrics (and prom-rw)", "SPEC");
  many("--logs-out", f.logs_out, "Output for logs", "SPEC");
  many("--processor", f.p.order, "Processor chain, in order", "NAME")->delimiter(',');
  auto number = [&](const char* name, auto& v, const char* help, const char* text) {
    return app.add_option(name, v, help)->option_text(text);
  };
  number("--memory-soft-mib", f.p.memory_soft_mib, "Stop reading above this", "MIB=384");
  number("--memory-hard-mib", f.p.memory_hard_mib, "Never hold more than this", "MIB=512");
  number("--batch-max-items", f.p.batch.max_items, "Items a batch", "N=8192")->check(CLI::PositiveNumber);
  app.add_option("--batch-max-bytes", f.p.batch.max_bytes, "Bytes a batch")
      ->transform(CLI::AsSizeValue(false))
      ->option_text("SIZE=8M");
  number("--batch-timeout", f.p.batch.timeout_ms, "Longest wait of a batch", "MS=200")
      ->check(CLI::NonNegativeNumber);
  many("--resource-attr", f.p.resource_actions, "insert|update|upsert:K=V, delete:K", "ACTION");
  many("--drop-spans", f.p.drop_spans, "Drop spans matching EXPR", "EXPR");
  many("--keep-spans", f.p.keep_spans, "Keep only spans matching EXPR", "EXPR");
  many("--drop-logs", f.p.drop_logs, "Drop log records matching EXPR", "EXPR");
  many("--keep-logs", f.p.keep_logs, "Keep only log records matching", "EXPR");
  many("--drop-points", f.p.drop_points, "Drop metric data points matching", "EXPR");
  many("--keep-points", f.p.keep_points, "Keep only data points matching", "EXPR");
  number("--sample-percent", f.p.sampling.percent, "Traces kept, by trace id hash", "P=100");
  number("--sample-seed", f.p.sampling.seed, "Hash seed (same in every process)", "N=0");
  app.add_flag("--sample-logs", f.p.sampling.logs, "Logs follow their trace's decision");
  number("--tail-decision-wait", f.p.tail_decision_wait_ms, "tail_sampling: hold traces (10000)", "MS")
      ->check(CLI::NonNegativeNumber);
  number("--tail-max-traces", f.p.tail_max_traces, "tail_sampling: traces held at most", "N=50000")
      ->check(CLI::PositiveNumber);
  number("--tail-latency-ms", f.p.tail_latency_ms, "tail_sampling: keep traces longer than", "MS=0")
      ->check(CLI::NonNegativeNumber);
  many("--tail-keep-spans", f.p.tail_keep_spans, "tail_sampling: keep traces with a span matching", "EXPR");
  number("--tail-rate-per-second", f.p.tail_rate_per_second, "tail_sampling: keep this many others a second",
         "N=0")
      ->check(CLI::NonNegativeNumber);
  many("--export-header", f.export_headers, "Header for otlp+ outputs", "K=V");
  app.add_flag("--export-gzip", f.export_gzip, "Compress what otlp+ outputs send");
  number("--export-timeout-ms", f.export_timeout_ms, "Timeout of one export attempt", "MS=10000")
      ->check(CLI::PositiveNumber);
  app.add_option("--export-ca-file", f.export_ca_file, "Trust this CA for otlp+ TLS")
      ->check(CLI::ExistingFile)
      ->option_text("FILE");
  app.add_option("--on-corrupt", f.on_corrupt, "Corrupt input frames: skip|fail")
      ->check(CLI::IsMember({"skip", "fail"}))
      ->option_text("POLICY=skip");
  app.add_option("--max-frame-bytes", f.max_frame_bytes, "Larger input frames count as corrupt")
      ->transform(CLI::AsSizeValue(false))
      ->option_text("SIZE=64M");
  app.add_option("--admin-listen", f.admin_listen, "/healthz /readyz /metrics; '' disables")
      ->option_text("ADDR=127.0.0.1:8889");
  app.add_option("--spool-dir", f.spool_dir, "Spool socket outputs' unacked frames here")
      ->option_text("DIR");
  app.add_option("--spool-max-bytes", f.spool_max_bytes, "Spool size per output; full = backpressure")
      ->transform(CLI::AsSizeValue(false))
      ->option_text("SIZE=1G");
  number("--drain-timeout", f.drain_timeout, "Seconds SIGTERM waits to drain", "SECONDS=20")
      ->check(CLI::NonNegativeNumber);
}

// Fills `config` from the flags; INVALID_ARGUMENT says which flag is wrong.
telkit::Status BuildConfig(const Flags& f, telkit::PipelineServerConfig& config) {
  telkit::PipelineOptions& o = config.pipeline;
  if (f.max_frame_bytes == 0 || f.max_frame_bytes > telkit::kMaxPayloadLength) {
    return telkit::InvalidArgumentError("--max-frame-bytes must be between 1 and 1G");
  }
  o.max_frame_bytes = static_cast<uint32_t>(f.max_frame_bytes);
  TELKIT_ASSIGN_OR_RETURN(o.processors, telkit::CompileProcessors(f.p, o.max_frame_bytes));
  o.inputs = f.inputs;
  o.out = f.out;
  o.traces_out = f.traces_out;
  o.metrics_out = f.metrics_out;
  o.logs_out = f.logs_out;
  if (o.out.empty() && o.traces_out.empty() && o.metrics_out.empty() && o.logs_out.empty()) o.out = {"-"};
  for (const auto& outs : {o.out, o.traces_out, o.metrics_out, o.logs_out}) {
    for (const std::string& spec : outs) {
      if (spec == "-" && telkit::IsTerminal(1)) {
        return telkit::InvalidArgumentError("refusing to write a binary stream to a terminal (redirect stdout)");
      }
    }
  }
  o.on_corruption = f.on_corrupt == "fail" ? telkit::CorruptionPolicy::kFail : telkit::CorruptionPolicy::kSkip;
  if (o.on_corruption == telkit::CorruptionPolicy::kSkip) {  // with kFail the error says it
    o.on_corruption_report = [](const telkit::Status& s) { spdlog::warn("{}", s.message()); };
  }
  o.exporter.gzip = f.export_gzip;
  o.exporter.timeout_ms = f.export_timeout_ms;
  o.exporter.ca_file = f.export_ca_file;
  TELKIT_ASSIGN_OR_RETURN(o.exporter.headers, telkit::ParseExportHeaders(f.export_headers));
  TELKIT_RETURN_IF_ERROR(telkit::ValidateOutputSpecs(o));
  if (f.spool_max_bytes == 0) return telkit::InvalidArgumentError("--spool-max-bytes must be above 0");
  o.spool.dir = f.spool_dir;
  o.spool.max_bytes = f.spool_max_bytes;
  if (!f.admin_listen.empty()) {
    TELKIT_ASSIGN_OR_RETURN(config.admin, telkit::ParseListenAddress(f.admin_listen));
  }
  return telkit::OkStatus();
}

// SIGHUP: parses the command line (and so --config) again and returns the
// new processor chain. Inputs, outputs and the admin address stay.
telkit::Result<telkit::ProcessorConfig> Reload(int argc, char** argv, uint32_t max_frame_bytes) {
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
  return telkit::CompileProcessors(f.p, max_frame_bytes);
}

void LogGrpc(gpr_log_func_args* args) {
  if (args->severity == GPR_LOG_SEVERITY_ERROR) {
    spdlog::error("grpc: {}", args->message);
  } else {
    spdlog::debug("grpc: {}", args->message);
  }
}

int Run(const Flags& f, int argc, char** argv) {
  telkit::PipelineServerConfig config;
  if (telkit::Status s = BuildConfig(f, config); !s.ok()) {
    spdlog::error("{}", s.message());
    return telkit::kExitUsage;
  }
  telkit::TuneMallocForPipeline();  // before any thread starts
  telkit::BlockDaemonSignals();  // before any thread starts
  gpr_set_log_function(LogGrpc);

  auto server = telkit::PipelineServer::Start(config);
  if (!server.ok()) return telkit::ReportFailure(server.status());
  for (const std::string& in : config.pipeline.inputs) spdlog::info("reading the telemetry stream from '{}'", in);
  const telkit::PipelineOptions& o = config.pipeline;
  for (const auto& [name, outs] : {std::pair{"traces", &o.traces_out}, {"metrics", &o.metrics_out},
                                   {"logs", &o.logs_out}}) {
    if (o.out.empty() && outs->empty()) {
      spdlog::warn("{} have no output (no --{}-out, no --out): dropped, counted", name, name);
    }
  }
  if (!o.spool.dir.empty()) {
    spdlog::info("socket outputs spool unacknowledged frames under '{}' (at most {} bytes each)", o.spool.dir,
                 o.spool.max_bytes);
  }
  if (config.admin) {
    spdlog::info("admin endpoint on {}", telkit::ListenAddress{config.admin->host, (*server)->admin_port()}.ToString());
  }
  telkit::NotifyDaemonReady("processing");

  int exit_code = telkit::kExitOk;
  const int sig = telkit::RunDaemonLoop(
      {.tick = std::chrono::milliseconds(100),
       .on_reload =
           [&] {
             auto reloaded = Reload(argc, argv, config.pipeline.max_frame_bytes);
             if (reloaded.ok()) {
               (*server)->Reconfigure(*reloaded);
               spdlog::info("SIGHUP: reloaded the processor settings");
             } else {
               spdlog::warn("SIGHUP: kept the old settings: {}", reloaded.status().message());
             }
           },
       .on_tick =
           [&] {
             if ((*server)->InputsFinished()) return false;
             if ((*server)->ReleaseMemoryIfIdle()) spdlog::debug("idle: returned freed memory to the system");
             if (telkit::Status s = (*server)->status(); !s.ok()) {
               spdlog::error("{}", s.message());
               exit_code = telkit::kExitFailure;
               return false;
             }
             return true;
           }});
  if (sig != 0) spdlog::info("received {}, draining", telkit::DaemonSignalName(sig));
  telkit::NotifyDaemonStopping("draining");
  telkit::Status drained = (*server)->Shutdown(std::chrono::seconds(f.drain_timeout));
  if (!drained.ok() && exit_code == telkit::kExitOk) exit_code = telkit::ReportFailure(drained);
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  return telkit::RunTool(
      kTool, "Process the telemetry stream: limit, enrich, filter, sample, batch, route.", argc, argv,
      [&](CLI::App& app) { Declare(app, flags); }, [&] { return Run(flags, argc, argv); });
}
