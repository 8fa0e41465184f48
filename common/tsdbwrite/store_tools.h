// The offline tools of tsdb-write (docs/tsdb.md):
//   ImportExposition  backfill from OpenMetrics / Prometheus text with
//                     timestamps (`tsdb-write import`, like `promtool tsdb
//                     create-blocks-from openmetrics`)
//   AnalyzeStore      cardinality and size report (`tsdb-write analyze`,
//                     like `promtool tsdb analyze`)
//   FormatSeriesText  raw samples as Prometheus text with ms timestamps
//                     (`tsdb-write query`; importable again)
//
// Thread-compatible: call from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/expfmt/exposition.h"
#include "common/model/series.h"
#include "common/tsdb/metrics_store.h"

namespace telkit {

struct ImportOptions {
  ExpositionFormat format = ExpositionFormat::kOpenMetrics;
  ExpositionErrorPolicy on_error = ExpositionErrorPolicy::kStop;
  // Called after each block of input with (bytes read, total or 0 if unknown).
  std::function<void(uint64_t, uint64_t)> progress;
};

struct ImportResult {
  uint64_t samples_read = 0;
  uint64_t samples_appended = 0;
  uint64_t series_created = 0;
  uint64_t blocks_written = 0;
  std::map<std::string, uint64_t> rejected;  // by reason (store and parser)
  std::vector<ExpositionError> errors;       // refused lines (kSkipLine)
};

// Imports `path` ("-" = stdin) into `store`, then writes everything out as
// blocks (FlushHead). The store must have been opened for this with an
// out-of-order window that covers the data (ImportStoreOptions): samples
// older than the head's newest are accepted, so a file ordered family by
// family (time going back at each new series) is stored whole. Samples
// older than the store's newest block are refused as out_of_bounds (the
// engine cannot yet add blocks below persisted ones).
// Errors: the file's, the parser's (kStop: INVALID_ARGUMENT naming the
// line), the store's.
Result<ImportResult> ImportExposition(MetricsStore* store, const std::string& path, const ImportOptions& options);

// The options to open a store for ImportExposition: no background work, an
// out-of-order window of 100 years.
MetricsStoreOptions ImportStoreOptions();

struct AnalyzeOptions {
  size_t top = 10;  // entries of each top list
};

// A report of the series readable through `querier` (every metric name,
// whole time range), and of the files under `dir`, as text.
Result<std::string> AnalyzeStore(Querier* querier, const std::string& dir, const AnalyzeOptions& options);

// A consistent copy of the store in `dir` at `dest` (which must not exist).
// When a daemon holds `dir`, it is asked over its admin endpoint (address
// from DIR/lock; POST /api/v1/admin/tsdb/snapshot) and its snapshot moved
// from DIR/snapshots/NAME to `dest`; otherwise the store is locked, opened
// (WAL replayed) and snapshotted here. `*via_daemon` says which.
// FAILED_PRECONDITION when `dest` exists or a daemon has no admin endpoint.
Status SnapshotStore(const std::string& dir, const std::string& dest, bool* via_daemon);

// Writes the head of the store in `dir` out as blocks: through the daemon
// (POST /api/v1/admin/tsdb/flush) or, when stopped, here.
Status FlushStore(const std::string& dir, bool* via_daemon);

// `series` as Prometheus text, one sample a line: `name{a="b"} value t_ms`.
std::string FormatSeriesText(const std::vector<SeriesSamples>& series);

// `tsdb-write query`: the samples in [start_ms, end_ms] of the series
// matching `matchers` in the store `dir` (blocks and the live head), as
// FormatSeriesText. The reader's errors as they are.
Result<std::string> QueryStoreText(const std::string& dir, std::span<const LabelMatcher> matchers, int64_t start_ms,
                                   int64_t end_ms);

// Rejections by reason for a log line: "reason n, reason n"; "none" when empty.
std::string FormatRejected(const std::map<std::string, uint64_t>& rejected);

// `tsdb-write query --start/--end`: Unix seconds (with a fraction) or RFC
// 3339 ("Z" or +HH:MM / -HH:MM offset) -> ms. INVALID_ARGUMENT
// "FLAG: 'TEXT' is neither Unix seconds nor RFC 3339" otherwise.
Result<int64_t> ParseFlagTimeMs(const std::string& flag, const std::string& text);

}  // namespace telkit
