// tel-cat: the telemetry stream's Swiss army knife. Prints a stream as
// OTLP/JSON lines or a summary, turns JSON lines back into a stream, copies a
// stream between endpoints, and sends it to any OTLP endpoint.
#include <spdlog/spdlog.h>

#include <csignal>
#include <string>
#include <vector>

#include "common/cli/cli.h"
#include "common/otlp/signal.h"
#include "common/transfer/stream_transfer.h"

namespace {

struct Flags {
  std::vector<std::string> inputs;
  bool from_json = false;
  bool summary = false;
  bool exact = false;
  std::string out;
  std::string send;
  std::string protocol = "grpc";
  std::vector<std::string> headers;
  bool gzip = false;
  std::string ca_file;
  bool insecure = false;
  int timeout_ms = 10000;
  std::vector<std::string> signals;
  std::string on_corrupt = "skip";
  uint32_t max_frame_bytes = 64u << 20;
};

void Declare(CLI::App& app, Flags& f) {
  app.footer(
      "INPUT is '-' (stdin, the default), a file, unix:PATH, listen:unix:PATH,\n"
      "fd:N or systemd[:NAME]. Without -o or --send, frames are printed as\n"
      "OTLP/JSON lines.");
  app.add_option("inputs", f.inputs, "Streams to read, in order")->type_name("INPUT");
  app.add_flag("-j,--from-json", f.from_json, "Inputs are JSON lines, not a stream");
  app.add_flag("-s,--summary", f.summary, "Print one summary line per frame");
  app.add_flag("--exact", f.exact, "JSON keeps non-canonical payload bytes");
  app.add_option("-o,--out", f.out, "Write a binary stream to SPEC")->type_name("SPEC");
  app.add_option("--send", f.send, "Export frames to an OTLP endpoint")->type_name("URL");
  app.add_option("--protocol", f.protocol, "grpc|http/protobuf|http/json")
      ->capture_default_str()
      ->check(CLI::IsMember({"grpc", "http/protobuf", "http/json"}));
  app.add_option("-H,--header", f.headers, "Header for --send: K=V (repeatable)")
      ->type_name("K=V")
      ->allow_extra_args(false);  // one value per flag, so inputs after it stay inputs
  app.add_flag("--gzip", f.gzip, "Compress requests sent with --send");
  app.add_option("--ca-file", f.ca_file, "Trust this CA for https endpoints")->check(CLI::ExistingFile);
  app.add_flag("--insecure", f.insecure, "Do not verify the server certificate");
  app.add_option("--timeout-ms", f.timeout_ms, "Per-request timeout of --send")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--signal", f.signals, "Only these: traces,metrics,logs,prom-rw")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::IsMember({"traces", "metrics", "logs", "prom-rw"}));
  app.add_option("--on-corrupt", f.on_corrupt, "Corrupt frames: skip|fail")
      ->capture_default_str()
      ->check(CLI::IsMember({"skip", "fail"}));
  app.add_option("--max-frame-bytes", f.max_frame_bytes, "Larger frames count as corrupt")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

int Run(const Flags& f) {
  std::signal(SIGPIPE, SIG_IGN);
  if (int(!f.out.empty()) + int(!f.send.empty()) + int(f.summary) > 1) {  // one sink at a time
    spdlog::error("--out, --send and --summary exclude each other");
    return telkit::kExitUsage;
  }
  telkit::TransferPlan plan;
  if (!f.inputs.empty()) plan.inputs = f.inputs;
  plan.inputs_are_json = f.from_json;
  plan.exact_json = f.exact;
  for (const auto& s : f.signals) plan.signals.insert(static_cast<uint8_t>(*telkit::ParseSignal(s)));
  plan.input_options.on_corruption =
      f.on_corrupt == "fail" ? telkit::CorruptionPolicy::kFail : telkit::CorruptionPolicy::kSkip;
  plan.input_options.max_payload_bytes = f.max_frame_bytes;
  if (plan.input_options.on_corruption == telkit::CorruptionPolicy::kSkip) {  // with kFail the error says it
    plan.input_options.on_corruption_report = [](const telkit::Status& s) { spdlog::warn("{}", s.message()); };
  }
  if (!f.out.empty()) {
    plan.sink = telkit::TransferSink::kStream;
    plan.out = f.out;
    if (f.out == "-" && telkit::IsTerminal(1)) {
      spdlog::error("refusing to write a binary stream to a terminal (redirect stdout or use -o FILE)");
      return telkit::kExitUsage;
    }
  } else if (!f.send.empty()) {
    plan.sink = telkit::TransferSink::kSend;
    plan.send.endpoint = f.send;
    plan.send.protocol = *telkit::ParseOtlpProtocol(f.protocol);
    plan.send.gzip = f.gzip;
    plan.send.ca_file = f.ca_file;
    plan.send.insecure_skip_verify = f.insecure;
    plan.send.timeout_ms = f.timeout_ms;
    for (const auto& h : f.headers) {
      auto eq = h.find('=');
      if (eq == std::string::npos || eq == 0) {
        spdlog::error("header '{}' is not K=V", h);
        return telkit::kExitUsage;
      }
      plan.send.headers.emplace_back(h.substr(0, eq), h.substr(eq + 1));
    }
  } else if (f.summary) {
    plan.sink = telkit::TransferSink::kSummary;
  }
  telkit::Result<telkit::TransferStats> stats = telkit::RunTransfer(plan);
  if (!stats.ok()) return telkit::ReportFailure(stats.status());
  if (stats->frames_corrupt > 0) spdlog::warn("corrupt frames skipped: {}", stats->frames_corrupt);
  if (stats->rejected_items > 0) spdlog::warn("items rejected by the endpoint: {}", stats->rejected_items);
  spdlog::debug("{} frames, {} payload bytes, {} skipped", stats->frames, stats->bytes, stats->frames_skipped);
  return telkit::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  return telkit::RunTool(
      "tel-cat", "Print, convert, copy and send telemetry streams", argc, argv,
      [&](CLI::App& app) { Declare(app, flags); }, [&] { return Run(flags); });
}
