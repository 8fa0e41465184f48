// Prometheus remote write 1.0 at the wire level: walks the protobuf bytes of
// a WriteRequest (docs/format/prom-remote-write.md) without building protobuf
// objects or Labels. The hot path of remote write: otlp-recv validates a
// request with it and forwards the bytes as received; tsdb-write appends
// from it, finding known series by the raw bytes of their labels.
//
// The scan accepts what protobuf's parser accepts: unknown fields of any
// wire type are skipped, a known field with another wire type is an unknown
// field, the last occurrence of a scalar wins; truncated or malformed bytes
// fail the whole request.
//
// Thread-safety: a WireSeries is scratch of one thread; functions are pure.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"
#include "common/model/series.h"
#include "common/prom/reject.h"

namespace telkit {

struct WireLabel {
  std::string_view name;
  std::string_view value;
};

// One TimeSeries as its bytes show it. Views point into the scanned bytes
// (or into `key_buf`); valid until the next series is scanned.
struct WireSeries {
  std::string_view message;  // the TimeSeries message itself
  // The encoded label fields of the series, in order: equal bytes mean equal
  // labels (the identity caches key on). A view into the request when the
  // fields are adjacent (as every sender writes them), else into key_buf.
  std::string_view label_key;
  std::vector<WireLabel> labels;             // in wire order, empty values kept
  std::vector<Sample> samples;               // in wire order
  std::vector<std::string_view> exemplars;   // Exemplar messages, not decoded
  int64_t histograms = 0;                    // native histogram samples (not stored)
  std::string key_buf;
  std::vector<WireLabel> sort_buf;           // scratch of CheckWireLabels
};

struct WireMetadata {
  int type = 0;  // prometheus.MetricMetadata.MetricType
  std::string_view family, help, unit;
};

// Parses one TimeSeries message into *out (cleared first). False when the
// bytes are not a TimeSeries.
bool ParseWireSeries(std::string_view message, WireSeries* out);
bool ParseWireMetadata(std::string_view message, WireMetadata* out);

// Walks a WriteRequest: on_series(WireSeries&) for every TimeSeries,
// on_metadata(const WireMetadata&) for every metadata entry, in order.
// INVALID_ARGUMENT when `bytes` is not a WriteRequest (callbacks may have
// run for the series before the damage).
template <class OnSeries, class OnMetadata>
Status ScanWriteRequest(std::string_view bytes, WireSeries* scratch, OnSeries&& on_series, OnMetadata&& on_metadata);

// The first problem of a series' labels as DecodeWriteRequest judges them
// (labels with empty values do not count, as Labels drops them): a repeated
// name, then CheckSeriesLabels' rules and `limits`. Returns false and sets
// *reject when there is one. Uses series->sort_buf.
bool CheckWireLabels(WireSeries* series, const LabelLimits& limits, PromReject* reject);

// The labels as a Labels (sorted, empty values dropped).
// INVALID_ARGUMENT for a repeated name.
Result<Labels> WireLabelsToLabels(std::span<const WireLabel> labels);

// Decodes one Exemplar message. False when the bytes are not an Exemplar or
// its labels are invalid (repeated, bad names, not UTF-8, over `limits`).
bool DecodeWireExemplar(std::string_view message, const LabelLimits& limits, Exemplar* out);

MetricFamilyType FamilyTypeFromProm(int type);

// ---- implementation

namespace wire_internal {
// Reads a varint at *p (< end); false on truncation / overflow.
inline bool ReadVarint(const uint8_t** p, const uint8_t* end, uint64_t* v) {
  if (*p < end && **p < 0x80) [[likely]] {
    *v = *(*p)++;
    return true;
  }
  uint64_t result = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (*p == end) return false;
    const uint64_t b = *(*p)++;
    if (shift == 63 && b > 1) return false;
    result |= (b & 0x7F) << shift;
    if (b < 0x80) {
      *v = result;
      return true;
    }
  }
  return false;
}
// Skips a field's value of `wire_type` (after its tag); false when malformed.
bool SkipValue(const uint8_t** p, const uint8_t* end, uint32_t number, uint32_t wire_type, int depth = 0);
}  // namespace wire_internal

template <class OnSeries, class OnMetadata>
Status ScanWriteRequest(std::string_view bytes, WireSeries* scratch, OnSeries&& on_series, OnMetadata&& on_metadata) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint8_t* end = p + bytes.size();
  auto bad = [] { return InvalidArgumentError("malformed remote-write request: not a prometheus.WriteRequest protobuf"); };
  WireMetadata md;
  while (p < end) {
    uint64_t tag;
    if (!wire_internal::ReadVarint(&p, end, &tag) || tag > 0xFFFFFFFFu || (tag >> 3) == 0) return bad();
    const uint32_t number = static_cast<uint32_t>(tag >> 3), type = static_cast<uint32_t>(tag & 7);
    if (type == 2 && (number == 1 || number == 3)) {
      uint64_t len;
      if (!wire_internal::ReadVarint(&p, end, &len) || len > static_cast<uint64_t>(end - p)) return bad();
      std::string_view msg(reinterpret_cast<const char*>(p), len);
      p += len;
      if (number == 1) {
        if (!ParseWireSeries(msg, scratch)) return bad();
        scratch->message = msg;
        on_series(*scratch);
      } else {
        if (!ParseWireMetadata(msg, &md)) return bad();
        on_metadata(static_cast<const WireMetadata&>(md));
      }
    } else if (!wire_internal::SkipValue(&p, end, number, type)) {
      return bad();
    }
  }
  return OkStatus();
}

}  // namespace telkit
