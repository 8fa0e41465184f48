// libFuzzer target for the JSON-lines parser: any line either fails cleanly
// or gives a frame whose exact JSON form parses back to the same frame.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>

#include "common/stream/frame_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto parsed = telkit::ParseJsonLine(line);
  if (!parsed.ok()) return 0;
  if (auto* frame = std::get_if<telkit::Frame>(&*parsed)) {
    auto again = telkit::ParseJsonLine(telkit::FrameToJsonLine(*frame, {.exact = true}));
    if (!again.ok()) std::abort();
    const auto& back = std::get<telkit::Frame>(*again);
    if (back.payload != frame->payload || back.signal != frame->signal || back.sequence != frame->sequence) {
      std::abort();
    }
  }
  return 0;
}
