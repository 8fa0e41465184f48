// Tempo's HTTP query API over a trace store directory (what Grafana's Tempo
// data source talks to), transport-free: TempoApi::Handle maps a request to
// a response; tempo_api_server.h serves it over HTTP. Shapes as Tempo 2.x
// returns them (docs/format/tempo-http-api.md):
//
//   GET /api/traces/<id>                 {"batches":[ResourceSpans...]} (OTLP/JSON);
//                                        Accept: application/protobuf -> tempopb.Trace
//                                        (the bytes of an ExportTraceServiceRequest)
//   GET /api/v2/traces/<id>              {"trace":{"resourceSpans":[...]}}; protobuf:
//                                        TraceByIDResponse (field 1: the Trace)
//   GET /api/search                      q (TraceQL) | tags (logfmt), minDuration,
//                                        maxDuration, limit, start, end (Unix s), spss
//                                        -> {"traces":[...],"metrics":{...}}
//   GET /api/search/tags                 {"tagNames":[...]}
//   GET /api/v2/search/tags              {"scopes":[{"name":"span","tags":[...]},...]}
//   GET /api/search/tag/<tag>/values     {"tagValues":["a",...]}
//   GET /api/v2/search/tag/<tag>/values  {"tagValues":[{"type":"string","value":"a"},...]}
//   GET /api/echo, /ready, /api/status/buildinfo
//
// Every request opens a TraceReader on the directory, so traces a running
// trace-store has acknowledged are visible at once. A directory without a
// store yet answers empty results (and 404 for a trace).
//
// Thread-safe: Handle may be called from many threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/base/status.h"

namespace telkit::tempoapi {

struct TempoApiOptions {
  std::string traces_dir;
  size_t max_traces_scanned = 100'000;  // per search
  size_t tag_scan_traces = 5'000;       // traces read for tag names / values
  size_t max_tag_values = 1'000;
  size_t max_limit = 5'000;  // search limit cap
  // Unix nanoseconds (tests replace it).
  std::function<int64_t()> now_ns;
};

struct TempoRequest {
  std::string method = "GET";
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;
  std::string accept;  // the Accept header
};

struct TempoResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class TempoApi {
 public:
  explicit TempoApi(TempoApiOptions options);
  TempoResponse Handle(const TempoRequest& request) const;

 private:
  TempoResponse TraceById(const std::string& hex, bool v2, bool protobuf) const;
  TempoResponse Search(const TempoRequest& r) const;
  TempoResponse TagNames(const TempoRequest& r, bool v2) const;
  TempoResponse TagValues(const TempoRequest& r, const std::string& tag, bool v2) const;

  TempoApiOptions options_;
};

// A trace id from hex of up to 32 digits (left-padded with zeros, as Tempo
// accepts). INVALID_ARGUMENT otherwise.
Result<std::string> ParseTraceIdHex(std::string_view hex);

// Tempo's `tags` parameter (logfmt: k=v k2="v 2") as a TraceQL query
// ("{ .k = \"v\" && ... }", name -> span name); "{}" when empty.
Result<std::string> TagsToTraceql(std::string_view logfmt);

}  // namespace telkit::tempoapi
