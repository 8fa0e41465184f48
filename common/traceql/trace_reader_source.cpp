// The ONE adapter between the TraceQL engine and TraceReader: a forwarding
// call to TraceReader::ForEachTrace (the fast scan: blocks ruled out by time
// range or dictionary are not read, only matching traces' frames are
// decompressed), with the prefilter the engine derives, capped at
// `max_traces` traces visited.
#include "common/tracestore/trace_reader.h"
#include "common/traceql/trace_source.h"

namespace telkit::traceql {
namespace {

class TraceReaderSource : public TraceSource {
 public:
  TraceReaderSource(TraceReader* reader, size_t max_traces) : reader_(reader), max_traces_(max_traces) {}

  Status ForEachTrace(int64_t start_ns, int64_t end_ns, const TraceSearchRequest& prefilter,
                      const std::function<bool(std::span<const SpanRecord>)>& fn) override {
    size_t visited = 0;
    return reader_->ForEachTrace(start_ns, end_ns, prefilter, [&](std::span<const SpanRecord> spans) {
      if (spans.empty()) return true;
      if (!fn(spans)) return false;
      return ++visited < max_traces_;
    });
  }

  Result<std::vector<SpanRecord>> TraceById(const std::string& trace_id) override {
    return reader_->TraceById(trace_id);
  }
  // TraceReader::ForEachTrace visits blocks by id, then live traces: not
  // latest first, so the engine sorts what it found (LatestFirst() false).

 private:
  TraceReader* const reader_;
  const size_t max_traces_;
};

}  // namespace

std::unique_ptr<TraceSource> NewTraceReaderSource(TraceReader* reader, size_t max_traces) {
  return std::make_unique<TraceReaderSource>(reader, max_traces);
}

Status MemoryTraceSource::ForEachTrace(int64_t start_ns, int64_t end_ns, const TraceSearchRequest& prefilter,
                                       const std::function<bool(std::span<const SpanRecord>)>& fn) {
  TraceSearchRequest req = prefilter;
  req.start_ns = start_ns;
  req.end_ns = end_ns;
  for (const std::vector<SpanRecord>& t : traces_) {
    bool hit = false;
    for (const SpanRecord& s : t) {
      if (SpanMatches(req, s)) {
        hit = true;
        break;
      }
    }
    if (hit && !fn(t)) break;
  }
  return OkStatus();
}

Result<std::vector<SpanRecord>> MemoryTraceSource::TraceById(const std::string& trace_id) {
  for (const std::vector<SpanRecord>& t : traces_) {
    if (!t.empty() && t.front().trace_id == trace_id) return t;
  }
  return std::vector<SpanRecord>{};
}

}  // namespace telkit::traceql
