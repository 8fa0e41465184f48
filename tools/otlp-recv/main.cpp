// otlp-recv: receives OTLP (gRPC :4317, HTTP :4318) and writes the telemetry
// stream. Flags map onto OtlpRecvConfig (common/recv/otlp_recv_server.h);
// this file only adds signals, systemd notification, exit codes and the
// process-wide malloc settings (TuneMallocForReceiver, ReleaseMemoryIfIdle).
//   SIGTERM, SIGINT  drain (finish requests, write what is queued), exit 0
//   SIGHUP           reload the bearer token file and the scrape config
#include <grpc/support/log.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <map>
#include <string>

#include "common/admin/http_server.h"
#include "common/cli/cli.h"
#include "common/daemon/daemon.h"
#include "common/recv/otlp_recv_server.h"

namespace {

constexpr char kTool[] = "otlp-recv";

struct Flags {
  std::string out = "-";
  std::string http_listen = "0.0.0.0:4318";
  std::string grpc_listen = "0.0.0.0:4317";
  std::string admin_listen = "127.0.0.1:8888";
  std::string tls_cert, tls_key, tls_client_ca;
  std::string bearer_token_file;
  std::string scrape_config;
  uint64_t max_request_bytes = 16ull << 20;
  uint64_t max_decompressed_bytes = 64ull << 20;
  int64_t max_items = 100000;
  uint64_t loki_max_line_bytes = 256 << 10;
  size_t loki_max_labels = 15;
  uint64_t queue_bytes = 64ull << 20;
  int retry_after = 2;
  double queue_wait = 0;
  int http_threads = 16;
  int drain_timeout = 20;
};

void Declare(CLI::App& app, Flags& f) {
  app.footer(
      "OUT is '-' (stdout), a file (appended), unix:PATH, listen:unix:PATH,\n"
      "fd:N or systemd[:NAME]. ADDR is HOST:PORT; an empty ADDR disables that\n"
      "listener. SIZE takes K, M, G suffixes (KiB, MiB, GiB). SIGTERM drains\n"
      "and exits; SIGHUP reloads the bearer token and scrape config files.");
  app.add_option("-o,--out", f.out, "Write the telemetry stream to OUT")->option_text("OUT=-");
  app.add_option("--http-listen", f.http_listen, "OTLP/HTTP address")->option_text("ADDR=0.0.0.0:4318");
  app.add_option("--grpc-listen", f.grpc_listen, "OTLP/gRPC address")->option_text("ADDR=0.0.0.0:4317");
  app.add_option("--admin-listen", f.admin_listen, "/healthz /readyz /metrics")->option_text("ADDR=127.0.0.1:8888");
  auto file = [&](const char* name, std::string& value, const char* help) {
    app.add_option(name, value, help)->check(CLI::ExistingFile)->option_text("FILE");
  };
  file("--tls-cert", f.tls_cert, "PEM certificate: TLS on both listeners");
  file("--tls-key", f.tls_key, "PEM private key of --tls-cert");
  file("--tls-client-ca", f.tls_client_ca, "Require client certificates from this CA");
  file("--bearer-token-file", f.bearer_token_file, "Require this bearer token");
  file("--scrape-config", f.scrape_config, "Scrape the targets of this YAML file");
  auto size = [&](const char* name, uint64_t& value, const char* help, const char* text) {
    app.add_option(name, value, help)->transform(CLI::AsSizeValue(false))->option_text(text);
  };
  size("--max-request-bytes", f.max_request_bytes, "Largest request body", "SIZE=16M");
  size("--max-decompressed-bytes", f.max_decompressed_bytes, "Largest decompressed body", "SIZE=64M");
  size("--queue-bytes", f.queue_bytes, "Output queue; full: 503/UNAVAILABLE", "SIZE=64M");
  app.add_option("--queue-wait", f.queue_wait, "Full queue: hold a request up to this long")
      ->transform(CLI::AsNumberWithUnit(std::map<std::string, double>{{"ms", 0.001}, {"s", 1}, {"m", 60}},
                                        CLI::AsNumberWithUnit::CASE_SENSITIVE, "DURATION"))
      ->check(CLI::Range(0.0, 3600.0))
      ->option_text("DURATION=0s");
  app.add_option("--max-items-per-request", f.max_items, "Spans, points or records a request")
      ->check(CLI::PositiveNumber)
      ->option_text("N=100000");
  size("--loki-max-line-bytes", f.loki_max_line_bytes, "Loki push: longest line", "SIZE=256K");
  app.add_option("--loki-max-labels", f.loki_max_labels, "Loki push: labels a stream")
      ->check(CLI::Range(1, 1000))
      ->option_text("N=15");
  app.add_option("--retry-after", f.retry_after, "Seconds clients wait when pushed back")
      ->check(CLI::PositiveNumber)
      ->option_text("SECONDS=2");
  app.add_option("--http-threads", f.http_threads, "HTTP connections served at once")
      ->check(CLI::Range(1, 1024))
      ->option_text("N=16");
  app.add_option("--drain-timeout", f.drain_timeout, "Seconds SIGTERM waits to drain")
      ->check(CLI::NonNegativeNumber)
      ->option_text("SECONDS=20");
}

// Fills `config` from the flags; INVALID_ARGUMENT for a bad address.
telkit::Status BuildConfig(const Flags& f, telkit::OtlpRecvConfig& config) {
  using telkit::ParseListenAddress;
  config.output = f.out;
  config.receiver.max_request_bytes = f.max_request_bytes;
  config.receiver.max_decompressed_bytes = f.max_decompressed_bytes;
  config.receiver.max_items_per_request = f.max_items;
  config.receiver.loki.max_line_bytes = f.loki_max_line_bytes;
  config.receiver.loki.max_labels_per_stream = f.loki_max_labels;
  config.receiver.queue_capacity_bytes = f.queue_bytes;
  config.receiver.retry_after_seconds = f.retry_after;
  config.receiver.queue_wait = std::chrono::milliseconds(static_cast<int64_t>(f.queue_wait * 1000));
  config.bearer_token_file = f.bearer_token_file;
  if (!f.scrape_config.empty()) {
    TELKIT_ASSIGN_OR_RETURN(config.scrape, telkit::LoadScrapeConfig(f.scrape_config));
    config.on_scrape_error = [](const telkit::Status& s) { spdlog::warn("{}", s.message()); };
  }
  const telkit::TlsFiles tls{f.tls_cert, f.tls_key, f.tls_client_ca};
  if (!f.http_listen.empty()) {
    TELKIT_ASSIGN_OR_RETURN(telkit::ListenAddress address, ParseListenAddress(f.http_listen));
    config.http = telkit::OtlpHttpServerOptions{};
    config.http->listen = address;
    config.http->tls = tls;
    config.http->threads = f.http_threads;
  }
  if (!f.grpc_listen.empty()) {
    TELKIT_ASSIGN_OR_RETURN(telkit::ListenAddress address, ParseListenAddress(f.grpc_listen));
    config.grpc = telkit::OtlpGrpcServerOptions{};
    config.grpc->listen = address;
    config.grpc->tls = tls;
  }
  if (!f.admin_listen.empty()) {
    TELKIT_ASSIGN_OR_RETURN(config.admin, ParseListenAddress(f.admin_listen));
  }
  if (!config.http && !config.grpc) return telkit::InvalidArgumentError("both listeners are disabled");
  if (tls.enabled() != !f.tls_key.empty() || (!f.tls_client_ca.empty() && !tls.enabled())) {
    return telkit::InvalidArgumentError("--tls-cert and --tls-key go together (and --tls-client-ca needs them)");
  }
  return telkit::ValidateReceiverOptions(config.receiver);
}

// gRPC's own diagnostics go through spdlog too (stderr, chosen format).
void LogGrpc(gpr_log_func_args* args) {
  switch (args->severity) {
    case GPR_LOG_SEVERITY_ERROR:
      spdlog::error("grpc: {}", args->message);
      break;
    case GPR_LOG_SEVERITY_INFO:
      spdlog::info("grpc: {}", args->message);
      break;
    default:
      spdlog::debug("grpc: {}", args->message);
      break;
  }
}

int Run(const Flags& f) {
  telkit::OtlpRecvConfig config;
  if (telkit::Status s = BuildConfig(f, config); !s.ok()) {
    spdlog::error("{}", s.message());
    return telkit::kExitUsage;
  }
  telkit::TuneMallocForReceiver();  // before any thread starts
  // Signals are taken synchronously below: block them before any thread starts.
  telkit::BlockDaemonSignals();
  gpr_set_log_function(LogGrpc);

  auto server = telkit::OtlpRecvServer::Start(config);
  if (!server.ok()) return telkit::ReportFailure(server.status());
  auto where = [](const std::string& host, int port) { return telkit::ListenAddress{host, port}.ToString(); };
  if (config.http) spdlog::info("OTLP/HTTP on {}", where(config.http->listen.host, (*server)->http_port()));
  if (config.grpc) spdlog::info("OTLP/gRPC on {}", where(config.grpc->listen.host, (*server)->grpc_port()));
  if (config.admin) spdlog::info("admin endpoint on {}", where(config.admin->host, (*server)->admin_port()));
  if (config.scrape) {
    spdlog::info("scraping {} targets of {} jobs from '{}'", (*server)->scrape_targets(), config.scrape->jobs.size(),
                 f.scrape_config);
  }
  spdlog::info("writing the telemetry stream to '{}'", config.output);
  telkit::NotifyDaemonReady("receiving OTLP");

  int exit_code = telkit::kExitOk;
  const int sig = telkit::RunDaemonLoop(
      {.tick = std::chrono::milliseconds(1000),
       .on_reload =
           [&] {
             if (!f.bearer_token_file.empty() || f.scrape_config.empty()) {
               telkit::Status reloaded = (*server)->ReloadBearerToken();
               if (reloaded.ok()) {
                 spdlog::info("SIGHUP: reloaded the bearer token file");
               } else {
                 spdlog::warn("SIGHUP: {}", reloaded.message());
               }
             }
             if (!f.scrape_config.empty()) {
               auto scrape = telkit::LoadScrapeConfig(f.scrape_config);
               telkit::Status reloaded = scrape.ok() ? (*server)->ReloadScrapeConfig(std::move(*scrape)) : scrape.status();
               if (reloaded.ok()) {
                 spdlog::info("SIGHUP: reloaded '{}': {} targets", f.scrape_config, (*server)->scrape_targets());
               } else {
                 spdlog::warn("SIGHUP: scrape config not reloaded (the old one stays): {}", reloaded.message());
               }
             }
           },
       .on_tick =
           [&] {
             if (telkit::Status output = (*server)->OutputStatus(); !output.ok()) {
               spdlog::error("output '{}' failed: {}", config.output, output.message());
               exit_code = telkit::kExitFailure;
               return false;
             }
             if ((*server)->ReleaseMemoryIfIdle()) spdlog::debug("idle: returned freed memory to the system");
             return true;
           }});
  if (sig != 0) spdlog::info("received {}, draining", telkit::DaemonSignalName(sig));
  telkit::NotifyDaemonStopping("draining");
  telkit::Status drained = (*server)->Shutdown(std::chrono::seconds(f.drain_timeout));
  if (!drained.ok() && exit_code == telkit::kExitOk) {
    spdlog::error("{}", drained.message());
    exit_code = telkit::kExitFailure;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  return telkit::RunTool(
      kTool, "Receive OTLP over gRPC and HTTP and write the telemetry stream.", argc, argv,
      [&](CLI::App& app) { Declare(app, flags); }, [&] { return Run(flags); });
}
