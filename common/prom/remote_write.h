// Prometheus remote write 1.0 (prometheus.WriteRequest, uncompressed
// protobuf; common/proto/prometheus/*.proto, docs/format/prom-remote-write.md)
// to and from the metrics model (common/model/series.h).
//
// Decoding keeps what it can: a series that breaks the naming rules or the
// LabelLimits (CheckSeriesLabels), repeats a label name or has no float
// sample is left out and counted by reason; the rest of the request is kept.
// Only bytes that are not a WriteRequest fail as a whole.
//
// Native histograms (TimeSeries.histograms) are not stored by telkit yet:
// they are counted and dropped; a series with nothing but native histograms
// is rejected as no_samples.
//
// Thread-safety: stateless functions; safe to call concurrently.
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

struct DecodedWriteRequest {
  std::vector<TimeSeries> series;  // in request order; labels sorted
  std::vector<MetricMetadata> metadata;
  RejectCounts rejected;  // series and metadata entries left out, by reason
  int64_t samples = 0;    // float samples of the kept series
  int64_t rejected_samples = 0;  // float samples of the rejected series
  int64_t exemplars = 0;  // exemplars of the kept series
  int64_t dropped_exemplars = 0;         // exemplars with invalid labels
  int64_t dropped_native_histograms = 0;
};

// Decodes an uncompressed WriteRequest.
// Samples keep the order they arrived in (remote-write senders send them in
// time order; the store judges order). Exemplar labels must be valid label
// names with UTF-8 values, else the exemplar is dropped (counted).
// Metadata entries need a non-empty UTF-8 family name, UTF-8 help and unit.
// REQUIRES: nothing; any bytes may be passed.
// INVALID_ARGUMENT when `bytes` is not a protobuf WriteRequest.
Result<DecodedWriteRequest> DecodeWriteRequest(std::string_view bytes, const LabelLimits& limits = {});

// Encodes series and metadata as a WriteRequest (uncompressed). Labels,
// samples and exemplars are written as given; nothing is validated.
std::string EncodeWriteRequest(std::span<const TimeSeries> series, std::span<const MetricMetadata> metadata = {});

}  // namespace telkit
