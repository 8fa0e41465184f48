// The Prometheus HTTP API v1 (what Grafana's Prometheus data source and every
// Prometheus client speak) over a telkit Querier and the PromQL engine:
// /api/v1/query, query_range, series, labels, label/NAME/values, metadata,
// query_exemplars, format_query, parse_query, status/*, targets, rules,
// alerts, and /-/healthy, /-/ready. docs/format/prometheus-http-api.md lists
// every endpoint, its parameters and the exact response bytes.
//
// PrometheusApi is the transport-independent core: a request (method, path,
// decoded parameters) in, a response (HTTP status, content type, body) out.
// prometheus_api_server.h puts it on cpp-httplib.
//
// Responses are byte-compatible with Prometheus 2.42: the same JSON field
// order, timestamps as float seconds with millisecond precision, values as
// strings, the same error types, HTTP codes and (where telkit's parser and
// engine produce them) messages:
//   bad_data 400 (bad parameters, parse errors), execution 422 (evaluation
//   errors, limits), timeout / canceled / unavailable 503, internal 500,
//   not_found 404.
//
// Thread-safety: Handle() may be called from many threads at once when the
// backend's functions and the Queriers they return are thread-safe.
#pragma once

#include <cstdint>
#include <cstddef>
#include <functional>
#include <span>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "common/model/series.h"
#include "common/promql/engine.h"

namespace telkit::api {

// One row of /api/v1/status/tsdb's cardinality lists.
struct CardinalityStat {
  std::string name;
  uint64_t value = 0;
};

// What /api/v1/status/tsdb reports (Prometheus' tsdbStatus).
struct TsdbStatus {
  uint64_t num_series = 0;
  int64_t num_label_pairs = 0;
  int64_t chunk_count = 0;
  int64_t min_time_ms = 0;
  int64_t max_time_ms = 0;
  std::vector<CardinalityStat> series_count_by_metric_name;
  std::vector<CardinalityStat> label_value_count_by_label_name;
  std::vector<CardinalityStat> memory_in_bytes_by_label_name;
  std::vector<CardinalityStat> series_count_by_label_value_pair;
};

// Where the API's data comes from. Only `querier` is required.
// One series' exemplars for /api/v1/query_exemplars, sorted by time.
struct SeriesExemplarList {
  Labels labels;
  std::vector<Exemplar> exemplars;
};

struct PrometheusApiBackend {
  // A read view for one request; called once per data request. An
  // UNAVAILABLE error is answered 503 "unavailable" (storage not ready), any
  // other error 500 "internal".
  std::function<Result<std::shared_ptr<Querier>>()> querier;
  // The metadata of metric family `family`, or of every family when empty.
  // Unset: /api/v1/metadata answers an empty object.
  std::function<Result<std::vector<MetricMetadata>>(std::string_view family)> metadata;
  // Exemplars of the series that match, in [mint, maxt]
  // (/api/v1/query_exemplars). Unset: no series has any.
  std::function<Result<std::vector<SeriesExemplarList>>(int64_t mint, int64_t maxt,
                                                        std::span<const LabelMatcher> matchers)>
      exemplars;
  // Head statistics for /api/v1/status/tsdb. Unset: zeros and empty lists.
  std::function<Result<TsdbStatus>()> tsdb_status;
  // Readiness for /-/ready (503 "Service Unavailable" while false). Unset:
  // always ready.
  std::function<bool()> ready;
  // The "data" object of /api/v1/rules ({"groups":[...]}) for `type` ("",
  // "alert" or "record"), and of /api/v1/alerts ({"alerts":[...]}), as JSON
  // text. Unset: no groups, no alerts (tel-query serve --rules-state sets them).
  std::function<Result<std::string>(std::string_view type)> rules;
  std::function<Result<std::string>()> alerts;

  // A backend over one long-lived, thread-safe Querier.
  static PrometheusApiBackend ForQuerier(std::shared_ptr<Querier> querier);
};

struct PrometheusApiOptions {
  // The engine's limits; `timeout` is the default and the maximum query
  // timeout (a request's `timeout` parameter can only shorten it).
  promql::EngineOptions engine;
  // A response body larger than this is not sent: the request is answered
  // 422 "execution" instead (JSON is about 30 bytes a point).
  size_t max_response_bytes = 512u << 20;
  // Compress responses with gzip when the client sends Accept-Encoding: gzip
  // and the body is at least gzip_min_bytes. zlib level 1: a 50 MB range
  // answer compresses ~10x at a fraction of level 6's cost.
  bool gzip = true;
  int gzip_level = 1;
  size_t gzip_min_bytes = 1024;
  // /api/v1/status/flags.
  std::map<std::string, std::string> flags;
  // /api/v1/status/config's "yaml"; empty: a minimal configuration.
  std::string config_yaml;
  // /api/v1/status/runtimeinfo's storageRetention.
  std::string storage_retention = "15d";
  // The clock: "now" for instant queries without `time`. Unset: system clock.
  std::function<int64_t()> now_ms;
};

// A request as the transport decoded it: the path (no query string) and
// every parameter of the query string and of an
// application/x-www-form-urlencoded body, in order (match[] repeats).
struct ApiRequest {
  std::string method = "GET";
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// The version /api/v1/status/buildinfo claims (see prometheus_api.cpp for why).
inline constexpr std::string_view kClaimedPrometheusVersion = "2.42.0";

class PrometheusApi {
 public:
  // REQUIRES: backend.querier is set.
  PrometheusApi(PrometheusApiOptions options, PrometheusApiBackend backend);

  // Answers one request. Never fails: every problem is an error response.
  ApiResponse Handle(const ApiRequest& request) const;

  const PrometheusApiOptions& options() const { return options_; }

 private:
  struct Params;
  ApiResponse Query(const Params& p) const;
  ApiResponse QueryRange(const Params& p) const;
  ApiResponse Series(const Params& p) const;
  ApiResponse LabelNames(const Params& p) const;
  ApiResponse LabelValues(const Params& p, std::string_view name) const;
  // /labels and /label/NAME/values: the sorted union of `fetch` over every
  // match[] set (all series when none), with start, end and limit applied.
  using StringListFetch = std::function<Result<std::vector<std::string>>(Querier&, int64_t, int64_t,
                                                                          std::span<const LabelMatcher>)>;
  ApiResponse UnionOverMatchSets(const Params& p, const StringListFetch& fetch) const;
  ApiResponse Metadata(const Params& p) const;
  ApiResponse QueryExemplars(const Params& p) const;
  ApiResponse FormatQuery(const Params& p) const;
  ApiResponse ParseQuery(const Params& p) const;
  ApiResponse BuildInfo() const;
  ApiResponse RuntimeInfo() const;
  ApiResponse Flags() const;
  ApiResponse Config() const;
  ApiResponse TsdbStatusResponse() const;
  int64_t Now() const;

  PrometheusApiOptions options_;
  PrometheusApiBackend backend_;
  int64_t start_time_ms_;
};

// The body Prometheus answers a query or query_range with:
// {"status":"success","data":{"resultType":...,"result":...}[,"warnings":[...]]}.
// RESOURCE_EXHAUSTED when it would pass `max_bytes`. For tools that print
// API-compatible JSON (tel-query) and benchmarks.
Result<std::string> FormatQueryResponse(const promql::QueryResult& result, const std::vector<std::string>& warnings,
                                        size_t max_bytes = SIZE_MAX);

// Parses an API time parameter as Prometheus does: Unix seconds as a float
// (rounded to milliseconds) or RFC 3339 ("2023-11-14T22:13:20.123Z",
// "...+02:00"). INVALID_ARGUMENT `cannot parse "x" to a valid timestamp`.
Result<int64_t> ParseApiTime(std::string_view text);

// Parses a duration parameter (step, timeout): float seconds or a PromQL
// duration ("15s", "1m30s"), in milliseconds. INVALID_ARGUMENT
// `cannot parse "x" to a valid duration`.
Result<int64_t> ParseApiDuration(std::string_view text);

}  // namespace telkit::api
