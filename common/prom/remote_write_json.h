// The JSON form of a prometheus.WriteRequest (what `tel-cat --format json`
// shows for prom-rw frames, and reads back): the protobuf JSON mapping of
// Prometheus' prompb messages —
//
//   {"timeseries":[{"labels":[{"name":"__name__","value":"up"}],
//                   "samples":[{"value":1,"timestamp":"1000"}],
//                   "exemplars":[{"labels":[...],"value":1,"timestamp":"900"}]}],
//    "metadata":[{"type":"GAUGE","metricFamilyName":"up","help":"...","unit":""}]}
//
// int64 timestamps are strings (numbers are accepted on input), doubles are
// numbers or "NaN" / "Infinity" / "-Infinity", the metadata type is the enum
// name (its number when it has no name: proto3 enums are open; names or
// numbers on input). Native histograms are not shown. Label text
// that is not UTF-8 is shown with U+FFFD; a stale marker shows as "NaN". Where
// that loses something, the JSON re-encodes to other bytes (frame_json's
// exact mode then keeps the original bytes beside it).
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace telkit {

// INVALID_ARGUMENT when `bytes` is not a WriteRequest.
Result<std::string> WriteRequestToJson(std::string_view bytes);

// The WriteRequest bytes (canonical protobuf) of the JSON form above.
// INVALID_ARGUMENT naming the offending key for anything else.
Result<std::string> WriteRequestFromJson(const nlohmann::json& object);

}  // namespace telkit
