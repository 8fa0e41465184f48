// The log store's WAL record (docs/format/logstore-wal.md): one Push call's
// accepted lines with its sequence number. Records are stored in the
// generic WAL of common/tsdb/wal.h.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/logstore/log_store.h"

namespace telkit {

inline constexpr uint8_t kLogWalPushRecord = 1;

struct LogWalRecord {
  uint64_t seq = 0;
  std::vector<LogPush> pushes;
};

void EncodeLogWalRecord(uint64_t seq, std::span<const LogPush> pushes, std::string* out);
// DATA_LOSS when malformed.
Result<LogWalRecord> DecodeLogWalRecord(std::string_view record);

}  // namespace telkit
