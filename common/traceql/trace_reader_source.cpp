// The ONE adapter between the TraceQL engine and today's TraceReader: a wide
// Search for the traces in the window, then TraceById per trace. When
// TraceReader::ForEachTrace lands, this file becomes a forwarding call.
#include <unordered_set>

#include "common/tracestore/trace_reader.h"
#include "common/traceql/trace_source.h"

namespace telkit::traceql {
namespace {

class TraceReaderSource : public TraceSource {
 public:
  TraceReaderSource(TraceReader* reader, size_t max_traces) : reader_(reader), max_traces_(max_traces) {}

  Status ForEachTrace(int64_t start_ns, int64_t end_ns, const TraceSearchRequest& prefilter,
                      const std::function<bool(std::span<const SpanRecord>)>& fn) override {
    TraceSearchRequest req = prefilter;
    req.start_ns = start_ns;
    req.end_ns = end_ns;
    // Pages of growing size (Search has no offset: a page repeats the ones
    // before it, skipped here), so a caller that stops early does not pay
    // for summarising the whole window.
    std::unordered_set<std::string> seen;
    for (size_t page = std::min<size_t>(256, max_traces_);; page = std::min(page * 8, max_traces_)) {
      req.limit = page;
      TELKIT_ASSIGN_OR_RETURN(std::vector<TraceSummary> found, reader_->Search(req));
      for (const TraceSummary& s : found) {
        if (!seen.insert(s.trace_id).second) continue;
        TELKIT_ASSIGN_OR_RETURN(std::vector<SpanRecord> spans, reader_->TraceById(s.trace_id));
        if (spans.empty()) continue;  // removed by retention meanwhile
        if (!fn(spans)) return OkStatus();
      }
      if (found.size() < page || page >= max_traces_) return OkStatus();
    }
  }

  Result<std::vector<SpanRecord>> TraceById(const std::string& trace_id) override {
    return reader_->TraceById(trace_id);
  }
  // TraceReader::Search answers latest start first.
  bool LatestFirst() const override { return true; }

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
