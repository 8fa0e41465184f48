// Rule files: Prometheus' format (rulefmt) and the Loki ruler's, which is the
// same YAML with LogQL expressions.
//
//   groups:
//     - name: NAME                 unique in the file
//       interval: 1m               default: the evaluator's (1m)
//       limit: 0                   max series a rule may produce; 0: none
//       query_offset: 0s           evaluate at t - offset
//       labels: {k: v}             (3.x) added to every rule that does not set k
//       rules:
//         - record: NAME | alert: NAME
//           expr: EXPR
//           for: 5m                alerts only
//           keep_firing_for: 0s    alerts only
//           labels: {k: v}         templates
//           annotations: {k: v}    alerts only; templates
//
// Unknown keys are errors, as Prometheus' strict YAML decoding makes them.
// Every error carries the file's line and column. A group with an error is
// left out and the others of the file still load (RuleFile::errors says why).
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/status.h"

namespace telkit::rules {

enum class RuleKind { kRecord, kAlert };
enum class QueryLanguage { kPromQL, kLogQL };

struct Rule {
  RuleKind kind = RuleKind::kRecord;
  std::string name;  // record: metric name; alert: alertname
  std::string expr;
  int64_t for_ms = 0;
  int64_t keep_firing_for_ms = 0;
  std::vector<std::pair<std::string, std::string>> labels;       // in file order
  std::vector<std::pair<std::string, std::string>> annotations;  // in file order
  int line = 0;                                                  // of the record/alert key
};

struct RuleGroup {
  std::string file;
  std::string name;
  int64_t interval_ms = 0;  // 0: the evaluator's default
  int64_t limit = 0;
  int64_t query_offset_ms = 0;
  QueryLanguage language = QueryLanguage::kPromQL;
  std::vector<Rule> rules;
  int line = 0;
};

// One problem in a file: "FILE:LINE:COL: message".
struct RuleFileError {
  int line = 0;
  int column = 0;
  std::string message;
  std::string ToString(std::string_view file) const;
};

struct RuleFile {
  std::string path;
  std::vector<RuleGroup> groups;  // the valid ones, in file order
  std::vector<RuleFileError> errors;
};

// Checks an expression's syntax: OK or INVALID_ARGUMENT with the parser's message.
using ExprChecker = std::function<Status(std::string_view expr)>;

struct ParseRuleFileOptions {
  QueryLanguage language = QueryLanguage::kPromQL;
  // Checks each expr; unset: PromQL's parser for kPromQL, no check for kLogQL.
  ExprChecker check_expr;
};

// Parses `text` (the contents of `path`). INVALID_ARGUMENT with the position
// when the text is not YAML at all or has no `groups` list; problems inside
// groups land in RuleFile::errors.
Result<RuleFile> ParseRuleFile(std::string_view text, std::string_view path, const ParseRuleFileOptions& options = {});

// Reads and parses the file. NOT_FOUND / PERMISSION_DENIED from reading.
Result<RuleFile> LoadRuleFile(const std::string& path, const ParseRuleFileOptions& options = {});

// The files a glob pattern names, sorted (a pattern without wildcards names
// itself, existing or not). INVALID_ARGUMENT for a bad pattern.
Result<std::vector<std::string>> ExpandRuleGlob(const std::string& pattern);

// Prometheus' duration syntax (model.ParseDuration): 1m, 1h30m, 2d, 1w, 0.
Result<int64_t> ParseRuleDuration(std::string_view text);
// Formats ms as Prometheus does (model.Duration.String()): "1h30m", "0s".
std::string FormatRuleDuration(int64_t ms);

}  // namespace telkit::rules
