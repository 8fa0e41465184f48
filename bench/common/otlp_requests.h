// Realistic OTLP export requests for benchmarks, shaped like real SDK output:
//   traces   512 HTTP server spans, ~10 attributes of mixed types each, an
//            exception event on every 4th, trace/span/parent ids, status
//   metrics  512 data points: 64 metrics of 8 points cycling gauge, sum,
//            histogram (with an exemplar), exponential histogram, summary
//   logs     512 records with a body, 4 attributes, and trace context on
//            every other one
// all under one resource (service.name=checkout, 5 attributes) and scope.
//
// `variant` changes ids, timestamps, values and some attribute strings so
// that requests built with different variants differ throughout (nothing
// can be cached between them); variant 0 always gives the same bytes, which
// bench/micro/wire_scan_bench measures.
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>

#include "common/otlp/signal.h"

namespace telkit {

inline constexpr int kBenchItemsPerRequest = 512;

// Serialized Export{Trace,Metrics,Logs}ServiceRequest with
// kBenchItemsPerRequest items.
std::string MakeBenchTraceRequest(uint64_t variant);
std::string MakeBenchMetricsRequest(uint64_t variant);
std::string MakeBenchLogsRequest(uint64_t variant);

// One of the three above by signal. REQUIRES: signal is kTraces, kMetrics
// or kLogs (anything else gives an empty string).
std::string MakeBenchRequest(Signal signal, uint64_t variant);

}  // namespace telkit
