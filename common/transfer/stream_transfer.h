// What tel-cat does, as a library: read frames from one or more inputs
// (binary streams or JSON lines) and hand each to one sink: JSON lines, a
// human summary, a stream output (copy), or an OTLP endpoint (send). A frame
// is acknowledged to its input only once the sink has taken it (written, or
// accepted by the endpoint), so forwarding from a socket loses nothing.
// Thread-compatible: one RunTransfer at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/export/otlp_exporter.h"
#include "common/stream/stream_input.h"
#include "common/stream/stream_output.h"

namespace telkit {

enum class TransferSink {
  kJsonLines,  // frame_json.h lines on stdout
  kSummary,    // one line per frame, totals at the end, on stdout
  kStream,     // a stream written to `out`
  kSend,       // OTLP export to `send`
};

struct TransferPlan {
  std::vector<std::string> inputs = {"-"};  // read one after the other
  bool inputs_are_json = false;
  TransferSink sink = TransferSink::kJsonLines;
  bool exact_json = false;                  // kJsonLines: keep non-canonical bytes
  std::string out = "-";                    // kStream
  OtlpExporterOptions send;                 // kSend
  std::set<uint8_t> signals;                // only these; empty = all
  StreamInputOptions input_options;         // corruption policy and reports
  int stdout_fd = 1;
};

struct TransferStats {
  uint64_t frames = 0;          // frames handed to the sink
  uint64_t frames_skipped = 0;  // filtered out, or not sendable over OTLP
  uint64_t bytes = 0;           // payload bytes handed to the sink
  uint64_t rejected_items = 0;  // kSend: partial-success rejections
  uint64_t frames_corrupt = 0;  // reported by the inputs
};

// Runs the plan to the end of every input. A closed stdout (EPIPE, as after
// `| head`) ends it without error. Errors: those of opening inputs and
// outputs, DATA_LOSS with CorruptionPolicy::kFail, the exporter's after its
// retries, INVALID_ARGUMENT for a bad plan.
Result<TransferStats> RunTransfer(const TransferPlan& plan);

}  // namespace telkit
