// Loki's push API body (POST /loki/api/v1/push), decoded, judged and turned
// into an OTLP logs request that log-ingest stores under exactly the pushed
// labels (docs/logs-mapping.md, "Loki push"; the wire formats in
// docs/format/loki-push.md).
//
//   JSON      {"streams":[{"stream":{"job":"x"},
//                          "values":[["<unix ns>","line"],
//                                    ["<unix ns>","line",{"trace_id":"..."}]]}]}
//   protobuf  logproto.PushRequest (common/proto/loki/push.proto), the
//             caller has removed the snappy block compression
//
// Malformed bodies (bad JSON or protobuf, a bad timestamp, a value of the
// wrong type) fail as a whole: INVALID_ARGUMENT with a message for the
// client. Otherwise each stream and entry is judged as Loki's distributor
// does: a stream with bad labels loses all its entries, an over-long line is
// dropped alone; the rest is kept. Invalid UTF-8 in labels, lines and
// structured metadata is replaced by U+FFFD and counted, never refused.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"
#include "common/otlp/loki_stream.h"

namespace telkit {

// Loki's defaults (limits_config).
struct LokiPushLimits {
  size_t max_line_bytes = 256 << 10;       // max_line_size
  size_t max_labels_per_stream = 15;       // max_label_names_per_series
  size_t max_label_name_bytes = 1024;      // max_label_name_length
  size_t max_label_value_bytes = 2048;     // max_label_value_length
};

// Why entries were dropped ("reason" label of
// otlp_recv_loki_rejected_entries_total).
enum class LokiReject : uint8_t {
  kMissingLabels,   // the stream has no label (or only empty values)
  kInvalidLabels,   // unparsable label text, bad or reserved name, duplicate name
  kTooManyLabels,   // more than max_labels_per_stream
  kLabelTooLong,    // a name or value over its limit
  kLineTooLong,     // a line over max_line_bytes
};
inline constexpr int kLokiRejectCount = 5;
// "missing_labels", "invalid_labels", "too_many_labels", "label_too_long",
// "line_too_long".
std::string_view LokiRejectName(LokiReject reason);

struct LokiEntry {
  int64_t ts_ns = 0;
  std::string line;
  std::vector<Label> metadata;  // structured metadata, in push order
};

struct LokiStream {
  Labels labels;
  std::vector<LokiEntry> entries;
};

struct DecodedLokiPush {
  std::vector<LokiStream> streams;  // the kept entries, streams in push order
  int64_t entries = 0;              // kept entries
  int64_t rejected_entries = 0;
  std::array<int64_t, kLokiRejectCount> rejected_by_reason{};
  std::string first_error;          // Loki-style message of the first rejection
  int64_t invalid_utf8 = 0;         // invalid UTF-8 sequences replaced by U+FFFD
};

// REQUIRES: nothing; any bytes may be passed. INVALID_ARGUMENT when malformed.
Result<DecodedLokiPush> DecodeLokiPushJson(std::string_view body, const LokiPushLimits& limits);
Result<DecodedLokiPush> DecodeLokiPushProtobuf(std::string_view body, const LokiPushLimits& limits);

// Prometheus label-set text as Loki's clients send it: {a="b", c="d"}, with
// the escapes \\ \" \n \t \r in values. Names are not checked here.
// INVALID_ARGUMENT with the byte offset on a syntax error.
Result<std::vector<Label>> ParseLokiLabels(std::string_view text);

// The kept entries as an ExportLogsServiceRequest (protobuf): one
// ResourceLogs a stream with the labels and kLokiStreamAttribute as resource
// attributes; one LogRecord an entry with time_unix_nano, a string body and
// the structured metadata as string attributes.
std::string LokiPushToOtlpLogs(const DecodedLokiPush& push);

}  // namespace telkit
