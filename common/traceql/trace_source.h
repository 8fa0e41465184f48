// Where the TraceQL engine reads traces from: a small interface with the
// shape of TraceReader::ForEachTrace, implemented over TraceReader by ONE
// adapter (trace_reader_source.cpp: forwards to TraceReader::ForEachTrace)
// and over memory (tests).
//
// Thread-compatible: one caller at a time per source.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/tracestore/span_record.h"
#include "common/tracestore/trace_catalogue.h"

namespace telkit {
class TraceReader;
}

namespace telkit::traceql {

class TraceSource {
 public:
  virtual ~TraceSource() = default;
  // Calls `fn` with every whole trace (all its stored spans) that has a span
  // starting in [start_ns, end_ns) and meeting the span conditions of
  // `prefilter` (its start/end/limit are ignored); stops when fn returns
  // false. Order unspecified.
  virtual Status ForEachTrace(int64_t start_ns, int64_t end_ns, const TraceSearchRequest& prefilter,
                              const std::function<bool(std::span<const SpanRecord>)>& fn) = 0;
  // Every stored span of a trace; empty when unknown.
  virtual Result<std::vector<SpanRecord>> TraceById(const std::string& trace_id) = 0;
  // Whether ForEachTrace visits traces latest start first: then a search
  // with a limit stops after `limit` matches.
  virtual bool LatestFirst() const { return false; }
};

// Over a TraceReader (not owned; must outlive the source): its
// ForEachTrace. At most `max_traces` traces are visited per ForEachTrace, in
// the store's order (blocks by id, then live traces), a bound on the work of
// one query rather than a window of the latest traces.
std::unique_ptr<TraceSource> NewTraceReaderSource(TraceReader* reader, size_t max_traces = 100'000);

// Over traces in memory (tests, tools): each element one trace's spans.
class MemoryTraceSource : public TraceSource {
 public:
  explicit MemoryTraceSource(std::vector<std::vector<SpanRecord>> traces) : traces_(std::move(traces)) {}
  Status ForEachTrace(int64_t start_ns, int64_t end_ns, const TraceSearchRequest& prefilter,
                      const std::function<bool(std::span<const SpanRecord>)>& fn) override;
  Result<std::vector<SpanRecord>> TraceById(const std::string& trace_id) override;

 private:
  std::vector<std::vector<SpanRecord>> traces_;
};

}  // namespace telkit::traceql
