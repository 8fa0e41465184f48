// libFuzzer target for the query socket's payload decoders (what a server
// reads from any local process, and a client from a server). Any bytes as
// each request type and each response: decoding must end without a crash;
// a request that decodes must re-encode to bytes that decode to the same
// request (a fixed point after one round), and a Select result that decodes must re-encode and decode to
// the same series.
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/tsdb/query_socket.h"

namespace {
void Check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (uint8_t t = 1; t <= 6; ++t) {
    auto r = telkit::DecodeQueryRequest(static_cast<telkit::QueryMessageType>(t), bytes);
    if (!r.ok()) continue;
    std::string once = telkit::EncodeQueryRequest(*r);
    auto again = telkit::DecodeQueryRequest(static_cast<telkit::QueryMessageType>(t), once);
    Check(again.ok() && telkit::EncodeQueryRequest(*again) == once);
  }
  auto sel = telkit::DecodeSelectResult(bytes);
  if (sel.ok()) {
    auto again = telkit::EncodeSelectResult(*sel);
    Check(again.ok());
    auto back = telkit::DecodeSelectResult(*again);
    Check(back.ok() && back->size() == sel->size());
    for (size_t i = 0; i < sel->size(); ++i) {
      Check((*back)[i].labels == (*sel)[i].labels && (*back)[i].samples.size() == (*sel)[i].samples.size());
      for (size_t j = 0; j < (*sel)[i].samples.size(); ++j) {
        Check((*back)[i].samples[j].t == (*sel)[i].samples[j].t &&
              std::bit_cast<uint64_t>((*back)[i].samples[j].v) == std::bit_cast<uint64_t>((*sel)[i].samples[j].v));
      }
    }
  }
  (void)telkit::DecodeStringList(bytes);
  (void)telkit::DecodeSeriesResult(bytes);
  (void)telkit::DecodeMetadataResult(bytes);
  (void)telkit::DecodeExemplarsResult(bytes);
  (void)telkit::DecodeErrorResult(bytes);
  return 0;
}
