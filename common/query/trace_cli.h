// tel-query's terminal side for traces: the waterfall of `tel-query trace`,
// the trace's log lines from the log store, the match table of
// `tel-query traceql`, and the service graph of `tel-query services`
// (from the span-metrics / service-graph series trace-store writes, through
// the PromQL engine).
//
// Thread-safe: pure functions (the readers are opened per call).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/model/series.h"
#include "common/traceql/engine.h"

namespace telkit {
class Querier;
}

namespace telkit::query {

struct WaterfallOptions {
  int width = 100;          // terminal columns
  bool color = false;       // ANSI colours: one per service, errors red
  bool attributes = false;  // span attributes, events and links under each span
};

// The trace as a tree (children under their parent by start time; spans
// whose parent is not stored start a tree of their own), one line per span:
// indented name, service, kind, an error mark (!), duration, and a bar on a
// time axis from the trace's start to its end scaled to the width.
std::string FormatWaterfall(const traceql::TraceView& trace, const WaterfallOptions& options);

struct TraceLogLine {
  int64_t ts_ns = 0;
  std::string stream;  // {labels}
  std::string line;
  std::string span_id;  // hex; "" when the line has none
};

// The lines of the log store in `logs_dir` whose structured metadata
// trace_id is `trace_hex`, with a timestamp in [start_ns, end_ns), oldest
// first, at most `limit`. NOT_FOUND when there is no store.
Result<std::vector<TraceLogLine>> TraceLogLines(const std::string& logs_dir, const std::string& trace_hex,
                                                int64_t start_ns, int64_t end_ns, size_t limit = 1000);
std::string FormatTraceLogLines(const std::vector<TraceLogLine>& lines, bool color);

// `tel-query trace`: the trace `trace_hex` (32 hex digits) from the trace
// store in `traces_dir` as a waterfall, followed (unless `logs_dir` is "") by
// its log lines from a minute before its start to a minute after its end.
// INVALID_ARGUMENT for a bad id, NOT_FOUND when the trace is not stored; the
// stores' errors with their path as context.
Result<std::string> RenderTrace(const std::string& traces_dir, const std::string& trace_hex,
                                const std::string& logs_dir, const WaterfallOptions& options);

// `tel-query traceql` output: a table (TRACE ID, ROOT SERVICE, ROOT NAME,
// START (UTC, RFC 3339), DURATION, SPANS matched/total) or Tempo's search
// JSON (one document).
std::string FormatTraceqlTable(const traceql::SearchResult& result);
std::string FormatTraceqlJson(const traceql::SearchResult& result);

// The `tel-query traceql` flags that shape the search.
struct TraceqlSearchFlags {
  std::string since;       // a PromQL duration back from now ("" = none)
  std::string start, end;  // ParseCliTime forms ("" = unbounded)
  size_t limit = 20, spans_per_spanset = 3;
};

// The search options at `now_ms`. INVALID_ARGUMENT (a usage error) when
// --since is combined with --start or --end, or a duration or time does not
// parse.
Result<traceql::SearchOptions> TraceqlSearchOptions(const TraceqlSearchFlags& flags, int64_t now_ms);

struct ServiceEdge {
  std::string client, server;
  double rate = 0;         // requests per second over the window
  double error_ratio = 0;  // failed / requests (0 when no requests)
  double p50_s = 0, p95_s = 0;  // server-side latency quantiles, NaN when unknown
};

// The service graph at `t_ms` over the last `window` (a PromQL duration:
// "5m"), from traces_service_graph_request_total, ..._failed_total and
// ..._server_seconds_bucket. Sorted by client, server.
Result<std::vector<ServiceEdge>> ServiceGraph(Querier& querier, int64_t t_ms, const std::string& window);
// CLIENT → SERVER, RATE/s, ERRORS %, P50, P95; "no service graph data" when empty.
std::string FormatServiceGraph(const std::vector<ServiceEdge>& edges);

// `tel-query services`: the evaluation time in ms (`at`, a ParseCliTime form,
// "" = now_ms) after checking that `window` is a positive duration.
// INVALID_ARGUMENT (a usage error) otherwise.
Result<int64_t> ServicesTime(const std::string& at, const std::string& window, int64_t now_ms);

}  // namespace telkit::query
