// A StreamInput over JSON lines (frame_json.h shapes, or bare OTLP/JSON
// requests, one per line), so every stream tool also accepts JSON.
// Stream-header lines are passed to options.on_stream_header. A line that
// does not parse is INVALID_ARGUMENT naming its line number; with
// CorruptionPolicy::kSkip it is reported and skipped instead.
#pragma once

#include <memory>
#include <string_view>

#include "common/base/status.h"
#include "common/stream/stream_input.h"

namespace telkit {

// `spec` is "-", a file path or fd:N (JSON is read from byte streams only).
Result<std::unique_ptr<StreamInput>> OpenJsonLinesInput(std::string_view spec, const StreamInputOptions& options);

}  // namespace telkit
