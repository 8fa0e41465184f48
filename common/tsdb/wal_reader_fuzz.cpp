// libFuzzer target for the WAL reader: the input, split at the first 0xFF
// 0x00 0xFF 0x00 marker, becomes one or two segment files (after a valid
// header, so the fragments are what gets fuzzed, unless the input starts
// with 'H': then the header bytes are fuzzed too). Both corruption policies
// must terminate without a crash, return no more record bytes than the
// input holds, and kStop must not return a record kSkip does not.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs/fault_injecting_file_system.h"
#include "common/tsdb/wal.h"

namespace {

std::vector<std::string> ReadAll(telkit::FileSystem* fs, telkit::WalCorruptionPolicy policy, size_t limit) {
  std::vector<std::string> out;
  telkit::WalReaderOptions o;
  o.on_corruption = policy;
  o.max_record_bytes = 1 << 20;
  auto reader = telkit::WalReader::Open(fs, "/wal", o);
  if (!reader.ok()) return out;
  size_t bytes = 0;
  for (;;) {
    auto r = (*reader)->Next();
    if (!r.ok() || !r->has_value()) break;
    bytes += (*r)->size();
    if (bytes > limit) std::abort();
    out.emplace_back(**r);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  bool raw_header = !in.empty() && in[0] == 'H';
  if (raw_header) in.remove_prefix(1);
  std::vector<std::string_view> parts;
  size_t cut = in.find(std::string_view("\xff\x00\xff\x00", 4));
  if (cut == std::string_view::npos) {
    parts = {in};
  } else {
    parts = {in.substr(0, cut), in.substr(cut + 4)};
  }
  telkit::FaultInjectingFileSystem fs;
  if (!fs.CreateDir("/wal").ok()) return 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string file;
    if (!raw_header) {
      uint8_t h[telkit::kWalSegmentHeaderSize];
      telkit::EncodeWalSegmentHeader(static_cast<uint32_t>(i + 1), h);
      file.assign(reinterpret_cast<char*>(h), sizeof h);
    }
    file.append(parts[i]);
    if (!telkit::WriteFileDurably(&fs, "/wal/" + telkit::WalSegmentName(static_cast<uint32_t>(i + 1)), file).ok()) {
      return 0;
    }
  }
  auto stopped = ReadAll(&fs, telkit::WalCorruptionPolicy::kStop, size);
  auto skipped = ReadAll(&fs, telkit::WalCorruptionPolicy::kSkip, size);
  // kStop returns a prefix of what kSkip returns.
  if (stopped.size() > skipped.size()) std::abort();
  for (size_t i = 0; i < stopped.size(); ++i) {
    if (stopped[i] != skipped[i]) std::abort();
  }
  return 0;
}
