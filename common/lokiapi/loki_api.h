// Loki's HTTP API over a log store reader and the LogQL engine, transport
// independent (loki_api_server.h serves it): /loki/api/v1/query,
// /query_range, /labels, /label/NAME/values, /series, /index/stats,
// /status/buildinfo, /ready, and the polling core of /tail. JSON shapes and
// errors as Loki 3 answers them (plain-text error bodies with 400 for bad
// requests and queries, 500 for storage failures); documented byte by byte
// in docs/format/loki-http-api.md.
//
// Thread-safe: Handle may run on many threads (the querier must be
// thread-safe: LogReader and LogStore are).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "common/logql/ast.h"
#include "common/logql/engine.h"
#include "common/logstore/log_store.h"

namespace telkit::lokiapi {

using Params = std::vector<std::pair<std::string, std::string>>;

struct LokiRequest {
  std::string method = "GET";
  std::string path;
  Params params;  // query string and form body, body first
};

struct LokiResponse {
  int status = 200;
  std::string content_type = "application/json; charset=UTF-8";
  std::string body;
};

struct LokiApiOptions {
  logql::EngineOptions engine;
  size_t max_entries_limit = 5000;    // Loki's max_entries_limit_per_query
  std::string version = TELKIT_VERSION;
  std::function<int64_t()> now_ns;    // the clock (default: system clock)
};

// Loki's time parameters: an integer of up to 10 digits is Unix seconds,
// longer Unix nanoseconds; with a '.' fractional seconds; else RFC 3339.
Result<int64_t> ParseLokiTime(std::string_view text);
// A step or duration: "15s", "1m30s" or (fractional) seconds. In ns.
Result<int64_t> ParseLokiDuration(std::string_view text);

class LokiApi {
 public:
  LokiApi(LokiApiOptions options, std::shared_ptr<LogQuerier> querier);

  LokiResponse Handle(const LokiRequest& request) const;

  // /tail: the query and where it starts.
  struct Tail {
    std::shared_ptr<const logql::Expr> expr;
    size_t limit = 100;
    int64_t cursor_ns = 0;                              // lines at or after this are new
    std::set<std::pair<std::string, std::string>> at_cursor;  // (labels, line) sent at cursor_ns
    bool started = false;
  };
  // INVALID_ARGUMENT for a bad query (or a metric query) or parameter.
  Result<Tail> StartTail(const Params& params) const;
  // The next tail message ({"streams":[...],"dropped_entries":null}) with
  // the lines after the cursor, or "" when there is nothing new.
  Result<std::string> PollTail(Tail* tail) const;

  const LokiApiOptions& options() const { return options_; }

 private:
  int64_t Now() const;
  LokiResponse Query(const Params& p, bool range) const;
  LokiResponse Labels(const Params& p, const std::string* name) const;
  LokiResponse Series(const Params& p) const;
  LokiResponse IndexStats(const Params& p) const;

  LokiApiOptions options_;
  std::shared_ptr<LogQuerier> querier_;
};

}  // namespace telkit::lokiapi
