// A streaming parser for the two text formats a /metrics endpoint or a
// backfill file speaks:
//   * the Prometheus text exposition format 0.0.4
//     (https://prometheus.io/docs/instrumenting/exposition_formats/),
//     timestamps in integer milliseconds;
//   * OpenMetrics 1.0 text (https://openmetrics.io), timestamps in seconds
//     with a fraction, exemplars, `# UNIT`, `# EOF`.
// It turns them into what writers hand a store: TimeSeries (labels with
// __name__, samples, exemplars) and MetricMetadata, in bounded batches, so a
// file of any size streams through in constant memory (what `tsdb-write
// import` backfills, like `promtool tsdb create-blocks-from openmetrics`).
//
// Samples of one series on consecutive lines become one TimeSeries; a series
// that appears again later starts another TimeSeries (a writer appends them
// in order). The metric family of a sample is the one its # TYPE line
// declared when the name is the family's name or the family's name plus a
// suffix its type allows (counter: _total _created; histogram: _bucket
// _count _sum _created; gaugehistogram: _bucket _gcount _gsum; summary:
// _count _sum _created; info: _info); otherwise it starts an untyped family.
// Metadata carries the family name as the # TYPE line writes it.
//
// Errors name the line: `line 12: invalid metric name '1x'`. With
// kSkipLine (the default of a scrape-tolerant reader) a bad line is counted,
// remembered (up to max_errors_kept) and skipped; with kStop the first one
// ends the parse. Nothing crashes or grows without bound on any input: lines
// are limited to max_line_bytes.
//
// Thread-compatible: one parser is fed by one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"
#include "common/model/series.h"

namespace telkit {

enum class ExpositionFormat { kPrometheusText, kOpenMetrics };
std::string_view ExpositionFormatName(ExpositionFormat f);  // "prometheus", "openmetrics"
// application/openmetrics-text[...] is OpenMetrics; anything else (text/plain,
// empty) is the Prometheus text format.
ExpositionFormat ExpositionFormatFromContentType(std::string_view content_type);

// Why a line was refused; stable names for counters (the "reason" label).
enum class ExpositionProblem : uint8_t {
  kSyntax,             // a line that is none of comment, metadata, sample
  kInvalidMetricName,
  kInvalidLabelName,
  kInvalidLabelValue,  // not UTF-8
  kDuplicateLabel,
  kLabelLimit,         // LabelLimits exceeded (count, name or value length)
  kInvalidValue,
  kInvalidTimestamp,
  kInvalidExemplar,
  kMetadata,           // bad or repeated HELP/TYPE/UNIT, unknown type
  kFamilyOrder,        // OpenMetrics: a family interleaved or a sample outside its family
  kMissingLabel,       // a histogram bucket without le, a summary quantile without quantile
  kLineTooLong,
  kEof,                // OpenMetrics: no # EOF, or content after it
  kCount,              // number of problems, not a problem
};
std::string_view ExpositionProblemName(ExpositionProblem p);

struct ExpositionError {
  uint64_t line = 0;  // 1-based
  ExpositionProblem problem = ExpositionProblem::kSyntax;
  std::string message;  // "line 12: invalid metric name '1x'"
};

enum class ExpositionErrorPolicy { kSkipLine, kStop };

struct ExpositionOptions {
  ExpositionFormat format = ExpositionFormat::kPrometheusText;
  ExpositionErrorPolicy on_error = ExpositionErrorPolicy::kSkipLine;
  // A batch is handed over once it holds this many samples (and at the end).
  size_t batch_samples = 10000;
  // The timestamp of samples that carry none (a scrape's time), ms.
  int64_t default_timestamp_ms = 0;
  size_t max_line_bytes = 1 << 20;
  // Rewrites the `le` label of histogram samples and the `quantile` label of
  // summary samples in OpenMetrics' float form (FormatOpenMetricsFloat:
  // le="1" becomes le="1.0"), as Prometheus' parsers do, so the same bucket
  // is one series whichever client library wrote it.
  bool normalize_float_labels = true;
  size_t max_errors_kept = 100;
  LabelLimits limits;
};

// What the parser hands over: series in file order, and the metadata of the
// families that appeared since the last batch (each family once).
struct ExpositionBatch {
  std::vector<TimeSeries> series;
  std::vector<MetricMetadata> metadata;
  size_t num_samples = 0;
};

struct ExpositionStats {
  uint64_t lines = 0;
  uint64_t samples = 0;
  uint64_t exemplars = 0;
  uint64_t families = 0;  // distinct metadata families
  uint64_t batches = 0;
  uint64_t errors = 0;    // lines refused
  std::array<uint64_t, static_cast<size_t>(ExpositionProblem::kCount)> errors_by_problem{};
};

// Receives each batch; a non-OK status ends the parse with that status.
using ExpositionBatchHandler = std::function<Status(ExpositionBatch& batch)>;

class ExpositionParser {
 public:
  // REQUIRES: options.batch_samples > 0.
  ExpositionParser(ExpositionOptions options, ExpositionBatchHandler handler);

  // Parses `bytes`, the next part of the input, split anywhere. Returns the
  // first error under kStop (INVALID_ARGUMENT with the line number), or the
  // handler's error; once it has failed, the parser stays failed.
  Status Feed(std::string_view bytes);
  // Ends the input: parses a last line without a newline, checks # EOF
  // (OpenMetrics) and hands over the last batch.
  Status Finish();

  const ExpositionStats& stats() const { return stats_; }
  // The first max_errors_kept refused lines.
  const std::vector<ExpositionError>& errors() const { return errors_; }

 private:
  struct Family {
    std::string name;
    MetricFamilyType type = MetricFamilyType::kUnknown;
    bool has_type = false, has_help = false, has_unit = false;
    bool has_samples = false;
    std::string help, unit;
    bool emitted = false;
  };

  Status ParseLine(std::string_view line);
  Status ParseComment(std::string_view line);
  Status ParseSample(std::string_view line);
  // Records a problem with the current line; OK under kSkipLine.
  Status Problem(ExpositionProblem p, std::string what);
  // Finishes the current family and starts `name`; a family seen before is an
  // error in OpenMetrics.
  Status StartFamily(std::string_view name);
  void EmitFamilyMetadata();
  // Whether sample name `name` belongs to the current family; sets *suffix.
  bool InFamily(std::string_view name, std::string_view* suffix) const;
  Status Flush();

  ExpositionOptions options_;
  ExpositionBatchHandler handler_;
  Status failed_;
  std::string pending_;  // an incomplete line carried to the next Feed
  bool skipping_long_line_ = false;
  uint64_t line_no_ = 0;
  bool eof_seen_ = false;
  bool finished_ = false;

  Family family_;
  bool in_family_ = false;
  std::unordered_set<std::string> families_seen_;  // OpenMetrics ordering check
  ExpositionBatch batch_;
  // The series text ("name{labels}") of the last sample, and whether it
  // belongs to the last TimeSeries of the batch: consecutive samples of one
  // series skip label parsing.
  std::string last_series_text_;
  bool last_series_open_ = false;
  // Within the current series: the last timestamp, for OpenMetrics' order check.
  ExpositionStats stats_;
  std::vector<ExpositionError> errors_;
};

// Parses a whole file ("-" for stdin) in blocks, into `handler`.
// NOT_FOUND / PERMISSION_DENIED for the file, else as Feed/Finish.
Status ParseExpositionFile(const std::string& path, const ExpositionOptions& options,
                           const ExpositionBatchHandler& handler, ExpositionStats* stats = nullptr,
                           std::vector<ExpositionError>* errors = nullptr);

// A float as OpenMetrics writes it and Prometheus normalises `le` and
// `quantile` label values: Go's shortest 'g' form ("0.05", "1e-05",
// "1.5e+06"), with ".0" appended when that has neither '.' nor 'e' ("1.0",
// "100000.0"); "NaN", "+Inf", "-Inf".
std::string FormatOpenMetricsFloat(double v);

// Parses a value as both formats write it: a decimal or exponent float,
// NaN, +Inf, -Inf, Inf (case-insensitive). False for anything else.
bool ParseExpositionValue(std::string_view s, double* v);

}  // namespace telkit
