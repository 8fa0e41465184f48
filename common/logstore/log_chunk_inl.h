// Template implementation for log_chunk.h.
#pragma once

#include <cstring>

namespace telkit {

template <typename Fn>
void ForEachLineContaining(const BlockView& block, std::string_view needle, Fn&& fn) {
  if (needle.empty()) {
    for (size_t i = 0; i < block.size(); ++i)
      if (!fn(i)) return;
    return;
  }
  std::string_view text = block.text();
  size_t pos = 0;
  while (pos + needle.size() <= text.size()) {
    const void* hit = memmem(text.data() + pos, text.size() - pos, needle.data(), needle.size());
    if (hit == nullptr) return;
    uint32_t at = static_cast<uint32_t>(static_cast<const char*>(hit) - text.data());
    size_t i = block.LineAt(at);
    if (at + needle.size() <= block.line_end(i)) {
      if (!fn(i)) return;
      pos = block.line_end(i);  // next line
    } else {
      pos = at + 1;  // the hit spans two lines: not a match
    }
  }
}

}  // namespace telkit
