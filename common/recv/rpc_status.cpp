#include "common/recv/rpc_status.h"

#include <cstdint>

#include "common/otlp/otlp_json.h"

namespace telkit {
namespace {

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutVarintField(int field, uint64_t v, std::string* out) {
  PutVarint(static_cast<uint64_t>(field) << 3 | 0, out);
  PutVarint(v, out);
}

void PutBytesField(int field, std::string_view bytes, std::string* out) {
  PutVarint(static_cast<uint64_t>(field) << 3 | 2, out);
  PutVarint(bytes.size(), out);
  out->append(bytes);
}

}  // namespace

std::string EncodeRpcStatus(StatusCode code, std::string_view message, int retry_after_seconds) {
  std::string out;
  if (code != StatusCode::kOk) PutVarintField(1, static_cast<uint64_t>(code), &out);
  if (!message.empty()) PutBytesField(2, message, &out);
  if (retry_after_seconds > 0) {
    std::string duration;
    PutVarintField(1, static_cast<uint64_t>(retry_after_seconds), &duration);
    std::string retry_info;
    PutBytesField(1, duration, &retry_info);
    std::string any;
    PutBytesField(1, kRetryInfoTypeUrl, &any);
    PutBytesField(2, retry_info, &any);
    PutBytesField(3, any, &out);
  }
  return out;
}

std::string EncodeRpcStatusJson(StatusCode code, std::string_view message, int retry_after_seconds) {
  std::string out = "{\"code\":" + std::to_string(static_cast<int>(code)) + ",\"message\":";
  AppendJsonString(message, &out);
  if (retry_after_seconds > 0) {
    out += ",\"details\":[{\"@type\":\"";
    out += kRetryInfoTypeUrl;
    out += "\",\"retryDelay\":\"" + std::to_string(retry_after_seconds) + "s\"}]";
  }
  out += '}';
  return out;
}

}  // namespace telkit
