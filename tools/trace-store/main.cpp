// trace-store: the trace store daemon (common/tracestore/trace_store_server.h)
// and its stopgap readers until TraceQL exists:
//   trace-store --data DIR --in SPEC...      store traces frames (daemon)
//   trace-store get --data DIR TRACE_ID      one trace as OTLP/JSON
//   trace-store search --data DIR [...]      matching traces, JSON lines
// Daemon signals: SIGTERM, SIGINT drain (finish the frame in hand, close the
// store) and exit 0; SIGHUP cuts idle traces to a block now. It also exits once every input has ended (files, pipes).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/cli/cli.h"
#include "common/daemon/daemon.h"
#include "common/otlp/otlp_json.h"
#include "common/promql/parser.h"
#include "common/tracestore/trace_reader.h"
#include "common/tracestore/trace_store_server.h"

namespace {

constexpr char kTool[] = "trace-store";

struct Flags {
  std::string data = "data/traces";
  std::vector<std::string> in;
  std::string admin_listen = "127.0.0.1:8892";
  std::string idle = "10s";
  std::string retention = "48h";
  uint64_t max_bytes = 0;
  uint32_t max_spans_per_trace = 100000;
  uint64_t max_trace_bytes = 50ull << 20;
  uint64_t max_attribute_bytes = 4096;
  bool cut_on_exit = false;
  std::string metrics_out;
  std::string metrics_interval = "15s";
  // get
  std::string trace_id;
  // search
  std::string service, name, min_duration, max_duration;
  std::vector<std::string> tags;
  double start = 0, end = 0;
  size_t limit = 20;
  CLI::App* get = nullptr;
  CLI::App* search = nullptr;
};

void Declare(CLI::App& app, Flags& f) {
  app.footer(
      "SPEC is a stream input: '-' (stdin), a file, unix:PATH, listen:unix:PATH,\n"
      "fd:N or systemd[:NAME]. DURATION is like 10s, 5m, 48h. SIZE takes K, M, G.\n"
      "Subcommands 'get' and 'search' read DIR while the daemon runs (or not).\n"
      "SIGTERM drains and exits.");
  app.add_option("--data", f.data, "Store directory")->option_text("DIR=data/traces");
  app.add_option("-i,--in", f.in, "Read traces frames from SPEC (repeatable)")->option_text("SPEC");
  app.add_option("--admin-listen", f.admin_listen, "/healthz /readyz /metrics; '' disables")
      ->option_text("ADDR=127.0.0.1:8892");
  app.add_option("--idle", f.idle, "Cut a trace after this long without spans")
      ->option_text("DURATION=10s");
  app.add_option("--retention", f.retention, "Remove blocks older than this")->option_text("DURATION=48h");
  app.add_option("--max-bytes", f.max_bytes, "Keep blocks under this size (0: no bound)")
      ->transform(CLI::AsSizeValue(false))
      ->option_text("SIZE=0");
  app.add_option("--max-spans-per-trace", f.max_spans_per_trace, "Refuse spans beyond this many per trace")
      ->option_text("N=100000");
  app.add_option("--max-trace-bytes", f.max_trace_bytes, "Refuse spans beyond this many bytes per trace")
      ->transform(CLI::AsSizeValue(false))
      ->option_text("SIZE=50M");
  app.add_option("--max-attribute-bytes", f.max_attribute_bytes, "Cut longer string attribute values (4K)")
      ->transform(CLI::AsSizeValue(false))
      ->option_text("SIZE");
  app.add_option("--metrics-out", f.metrics_out, "Write span metrics and service graphs to SPEC")
      ->option_text("SPEC");
  app.add_option("--metrics-interval", f.metrics_interval, "How often --metrics-out gets a frame")
      ->option_text("DURATION=15s");
  app.add_flag("--cut-on-exit", f.cut_on_exit, "Write every live trace to a block before exiting");

  f.get = app.add_subcommand("get", "Print one trace as OTLP/JSON");
  f.get->add_option("--data", f.data, "Store directory")->option_text("DIR=data/traces");
  f.get->add_option("trace_id", f.trace_id, "32 hex digits")->required();

  f.search = app.add_subcommand("search", "Print matching traces (JSON lines)");
  f.search->add_option("--data", f.data, "Store directory")->option_text("DIR=data/traces");
  f.search->add_option("--service", f.service, "A span of this service")->option_text("NAME");
  f.search->add_option("--name", f.name, "A span of this name")->option_text("NAME");
  f.search->add_option("--min-duration", f.min_duration, "A span at least this long")->option_text("DURATION");
  f.search->add_option("--max-duration", f.max_duration, "A span at most this long")->option_text("DURATION");
  f.search->add_option("--tag", f.tags, "KEY=VALUE of an indexed attribute (repeatable)")->option_text("KEY=VALUE");
  f.search->add_option("--start", f.start, "Spans starting at or after (Unix seconds)")->option_text("SECONDS");
  f.search->add_option("--end", f.end, "Spans starting before (Unix seconds)")->option_text("SECONDS");
  f.search->add_option("--limit", f.limit, "At most this many traces")->check(CLI::PositiveNumber)->option_text("N=20");
}

telkit::Result<int64_t> DurationNanos(const std::string& text, const char* flag) {
  auto ms = telkit::promql::ParseDuration(text);
  if (!ms.ok()) return telkit::InvalidArgumentError(std::string(flag) + ": " + ms.status().message());
  return *ms * 1'000'000;
}

int Get(const Flags& f) {
  auto id = telkit::ParseHexId(f.trace_id);
  if (!id.ok() || id->size() != 16) {
    spdlog::error("trace id must be 32 hex digits: '{}'", f.trace_id);
    return telkit::kExitUsage;
  }
  auto reader = telkit::TraceReader::Open(f.data);
  if (!reader.ok()) return telkit::ReportFailure(reader.status());
  auto spans = (*reader)->TraceById(*id);
  if (!spans.ok()) return telkit::ReportFailure(spans.status());
  if (spans->empty()) {
    spdlog::error("trace {} not found", f.trace_id);
    return telkit::kExitFailure;
  }
  auto req = telkit::SpansToTraceRequest(*spans);
  if (!req.ok()) return telkit::ReportFailure(req.status());
  auto json = telkit::ProtobufToOtlpJson(telkit::Signal::kTraces, *req);
  if (!json.ok()) return telkit::ReportFailure(json.status());
  std::printf("%s\n", json->c_str());
  return telkit::kExitOk;
}

int Search(const Flags& f) {
  telkit::TraceSearchRequest req;
  req.service = f.service;
  req.name = f.name;
  req.limit = f.limit;
  if (f.start > 0) req.start_ns = static_cast<int64_t>(f.start * 1e9);
  if (f.end > 0) req.end_ns = static_cast<int64_t>(f.end * 1e9);
  for (const auto& [text, out, flag] :
       {std::tuple{f.min_duration, &req.min_duration_ns, "--min-duration"},
        std::tuple{f.max_duration, &req.max_duration_ns, "--max-duration"}}) {
    if (text.empty()) continue;
    auto d = DurationNanos(text, flag);
    if (!d.ok()) {
      spdlog::error("{}", d.status().message());
      return telkit::kExitUsage;
    }
    *out = static_cast<uint64_t>(*d);
  }
  for (const std::string& t : f.tags) {
    auto eq = t.find('=');
    if (eq == std::string::npos) {
      spdlog::error("--tag wants KEY=VALUE: '{}'", t);
      return telkit::kExitUsage;
    }
    req.attributes.emplace_back(t.substr(0, eq), t.substr(eq + 1));
  }
  auto reader = telkit::TraceReader::Open(f.data);
  if (!reader.ok()) return telkit::ReportFailure(reader.status());
  auto found = (*reader)->Search(req);
  if (!found.ok()) return telkit::ReportFailure(found.status());
  for (const telkit::TraceSummary& t : *found) {
    nlohmann::json j = {{"traceID", telkit::HexId(t.trace_id)},
                        {"rootServiceName", t.root_service},
                        {"rootTraceName", t.root_name},
                        {"startTimeUnixNano", std::to_string(t.start_ns)},
                        {"durationMs", static_cast<double>(t.end_ns - t.start_ns) / 1e6},
                        {"spans", t.spans},
                        {"matched", t.matched}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return telkit::kExitOk;
}

int Serve(const Flags& f) {
  telkit::TraceStoreServerConfig config;
  config.data_dir = f.data;
  config.inputs = f.in;
  if (config.inputs.empty()) {
    spdlog::error("--in is required (or use 'get' or 'search')");
    return telkit::kExitUsage;
  }
  auto idle = DurationNanos(f.idle, "--idle");
  auto retention = DurationNanos(f.retention, "--retention");
  if (!idle.ok() || !retention.ok() || *retention <= 0) {
    spdlog::error("{}", !idle.ok() ? idle.status().message()
                        : !retention.ok() ? retention.status().message()
                                          : "--retention must be positive");
    return telkit::kExitUsage;
  }
  config.store.idle_ns = *idle;
  config.store.retention_ns = *retention;
  config.store.max_block_bytes = f.max_bytes;
  config.store.max_spans_per_trace = f.max_spans_per_trace;
  config.store.max_trace_bytes = f.max_trace_bytes;
  config.store.span_limits.max_attribute_bytes = f.max_attribute_bytes;
  config.cut_on_shutdown = f.cut_on_exit;
  config.metrics_out = f.metrics_out;
  auto metrics_interval = DurationNanos(f.metrics_interval, "--metrics-interval");
  if (!metrics_interval.ok() || *metrics_interval <= 0) {
    spdlog::error("--metrics-interval: a positive duration, not '{}'", f.metrics_interval);
    return telkit::kExitUsage;
  }
  config.metrics_interval_ms = *metrics_interval / 1'000'000;
  config.cut_interval_ms = std::clamp<int64_t>(*idle / 2'000'000, 100, 1000);
  if (!f.admin_listen.empty()) {
    auto a = telkit::ParseListenAddress(f.admin_listen);
    if (!a.ok()) {
      spdlog::error("--admin-listen: {}", a.status().message());
      return telkit::kExitUsage;
    }
    config.admin = *a;
  }
  telkit::BlockDaemonSignals();
  auto server = telkit::TraceStoreServer::Start(config);
  if (!server.ok()) return telkit::ReportFailure(server.status());
  if (config.admin) spdlog::info("admin endpoint on port {}", (*server)->admin_port());
  spdlog::info("storing traces in '{}'", f.data);
  telkit::NotifyDaemonReady("storing traces");
  int exit_code = telkit::kExitOk;
  const int sig = telkit::RunDaemonLoop({.tick = std::chrono::milliseconds(200),
                                         .on_reload =
                                             [&] {
                                               auto cut = (*server)->store()->CutIdle();
                                               if (cut.ok()) {
                                                 spdlog::info("SIGHUP: cut {} idle traces", *cut);
                                               } else {
                                                 spdlog::warn("SIGHUP: {}", cut.status().message());
                                               }
                                             },
                                         .on_tick =
                                             [&] {
                                               if (!(*server)->status().ok()) {
                                                 spdlog::error("{}", (*server)->status().message());
                                                 exit_code = telkit::kExitFailure;
                                                 return false;
                                               }
                                               if ((*server)->inputs_done()) {
                                                 spdlog::info("every input ended");
                                                 return false;
                                               }
                                               return true;
                                             }});
  if (sig != 0) spdlog::info("received {}, draining", telkit::DaemonSignalName(sig));
  telkit::NotifyDaemonStopping("draining");
  telkit::Status s = (*server)->Shutdown();
  if (!s.ok() && exit_code == telkit::kExitOk) {
    spdlog::error("{}", s.message());
    exit_code = telkit::kExitFailure;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  return telkit::RunTool(
      kTool, "Store traces (a Tempo-style trace store) and read them back.", argc, argv,
      [&](CLI::App& app) { Declare(app, flags); },
      [&] {
        if (flags.get->parsed()) return Get(flags);
        if (flags.search->parsed()) return Search(flags);
        return Serve(flags);
      });
}
