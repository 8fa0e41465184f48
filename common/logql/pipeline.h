// LogQL pipelines: the per-line stages of a log query (line filters,
// parsers, label filters, formatters) run over one line and its labels,
// with Loki's semantics (pkg/logql/log): parsed keys that collide with a
// stream label get the suffix `_extracted`; parser and label-filter
// failures set `__error__` (JSONParserErr, LogfmtParserErr,
// LabelFilterErr, SampleExtractionErr, TemplateFormatErr) and
// `__error_details__` and keep the line; only string matchers filter
// lines that carry an error.
//
// LogPipeline is single-threaded state over an immutable stage list; make
// one per thread. LineLabels is a value.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/logql/ast.h"
#include "common/model/labels.h"

namespace telkit::logql {

inline constexpr std::string_view kErrorLabel = "__error__";
inline constexpr std::string_view kErrorDetailsLabel = "__error_details__";

// The labels of one line: stream labels, structured metadata, parsed labels.
// Sorted by name; an empty value is an absent label.
class LineLabels {
 public:
  void Reset(const Labels& stream, std::span<const Label> metadata);
  std::string_view Get(std::string_view name) const;
  bool Has(std::string_view name) const { return !Get(name).empty(); }
  bool IsStreamLabel(std::string_view name) const;
  void Set(std::string_view name, std::string_view value);
  void Del(std::string_view name) { Set(name, ""); }
  bool HasErr() const { return Has(kErrorLabel); }
  // Sets __error__ (and details) unless an error is already set.
  void SetErr(std::string_view err, std::string_view details);
  const std::vector<Label>& labels() const { return labels_; }
  std::vector<Label>& mutable_labels() { return labels_; }
  Labels ToLabels() const;

 private:
  std::vector<Label> labels_;
  const Labels* stream_ = nullptr;
};

// Runs `stages` (owned by the caller, outliving the pipeline) on lines.
class LogPipeline {
 public:
  explicit LogPipeline(std::span<const Stage> stages) : stages_(stages) {}
  // Runs every stage on the line `*line` at `ts_ns` with `*labels`; false
  // when a filter drops it. Rewrites *line (line_format, decolorize,
  // unpack's _entry) and *labels.
  bool Process(int64_t ts_ns, std::string* line, LineLabels* labels);

 private:
  std::span<const Stage> stages_;
  std::string scratch_;
};

// Line filters alone (no labels): what the store's scan can run.
bool LineFilterMatches(const LineFilter& f, std::string_view line);

// The Go-template subset of line_format/label_format: {{.name}}, literals,
// pipes, if/else/end, functions (docs/logql.md lists them), __line__,
// __timestamp__. INVALID_ARGUMENT for what it cannot parse.
Result<std::shared_ptr<const Template>> ParseTemplate(std::string_view text);
// REQUIRES: t from ParseTemplate. Sets *error on a runtime failure (bad
// function argument) and returns what was rendered so far.
std::string RenderTemplate(const Template& t, const LineLabels& labels, std::string_view line, int64_t ts_ns,
                           std::string* error);

// Loki's conversions: Go durations ("1.5s", "1h30m", "250ms"; plus d, w, y)
// to seconds, and humanize byte sizes ("20MB" = 20e6, "1KiB" = 1024).
Result<double> ParseDurationSeconds(std::string_view s);
Result<double> ParseBytes(std::string_view s);
// Duration of a range/offset like "5m", "1h30m", "90s" in ns.
Result<int64_t> ParseRangeDuration(std::string_view s);

// Loki's label-name sanitizer for parsed keys: every character outside
// [a-zA-Z0-9_] becomes '_', and a leading digit gets a '_' prefix.
std::string SanitizeLabelKey(std::string_view key);

}  // namespace telkit::logql
