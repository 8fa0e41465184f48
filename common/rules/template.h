// Prometheus' alert and recording-rule templating: the subset of Go's
// text/template that rule labels and annotations use, with Prometheus'
// functions (template/template.go in prometheus/prometheus).
//
// Language: text with actions in {{ }} ({{- and -}} trim the whitespace
// beside them); comments {{/* */}}; pipelines of commands joined by `|`
// (the previous result becomes the last argument); operands are `.`, field
// chains (.Labels.job, $labels.job), variables ($x, $), string ("..", `..`),
// number, bool and nil literals, function calls and parenthesised pipelines;
// `{{$x := pipeline}}`, `{{$x = pipeline}}`; if / else if / else / end;
// range (with `$i, $e :=`) / else / end; with / else / end.
//
// As Prometheus does, every template starts with
//   {{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}
//   {{$externalURL := .ExternalURL}}{{$value := .Value}}
// and a missing map key is the empty string (missingkey=zero).
//
// Functions: humanize, humanize1024, humanizeDuration, humanizePercentage,
// humanizeTimestamp, printf, title, toUpper, toLower, reReplaceAll, match,
// query, first, value, label, strvalue, sortByLabel, args, stripPort,
// stripDomain, safeHtml, toTime, parseDuration, externalURL, pathPrefix,
// and Go's builtins and, or, not, len, index, eq, ne, lt, le, gt, ge, print,
// println.
//
// Thread-safety: a parsed Template is immutable; Execute may run from
// several threads when the query callback is thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"

namespace telkit::rules {

// A template value: Go's nil, bool, float64, string, map[string]... and slice.
struct TValue {
  enum class Kind { kNil, kBool, kNumber, kString, kMap, kList };
  Kind kind = Kind::kNil;
  bool b = false;
  double n = 0;
  std::string s;
  std::shared_ptr<std::map<std::string, TValue>> map;
  std::shared_ptr<std::vector<TValue>> list;

  static TValue Bool(bool v);
  static TValue Number(double v);
  static TValue String(std::string v);
  static TValue Map(std::map<std::string, TValue> m);
  static TValue StringMap(const std::map<std::string, std::string>& m);
  static TValue List(std::vector<TValue> l);
  // A query result element: {Labels: map, Value: number}.
  static TValue QuerySample(const std::map<std::string, std::string>& labels, double value);
  bool Truth() const;
};

// One query result element for the `query` function.
struct TemplateSample {
  std::map<std::string, std::string> labels;
  double value = 0;
};
// Evaluates a PromQL (or other) query at the rule's evaluation time.
using TemplateQueryFunc = std::function<Result<std::vector<TemplateSample>>(const std::string& query)>;

struct TemplateData {
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> external_labels;
  std::string external_url;
  double value = 0;
  TemplateQueryFunc query;  // unset: `query` fails
};

struct TemplateNode;

class Template {
 public:
  // INVALID_ARGUMENT naming the offset ("template: 1:12: ...") for a syntax
  // error, an unknown function or an undefined variable.
  static Result<Template> Parse(std::string_view text);
  // Executes with `data`. INVALID_ARGUMENT for an error while executing
  // (wrong argument type, failing query, bad regexp).
  Result<std::string> Execute(const TemplateData& data) const;

 private:
  std::shared_ptr<const TemplateNode> root_;
};

// Parses and executes in one go (what rule evaluation does).
Result<std::string> ExpandTemplate(std::string_view text, const TemplateData& data);

// Go's fmt %v / strconv 'g' shortest form of a float64 (1e+06, 0.5, NaN, +Inf).
std::string GoFormatFloat(double v);
// The humanize* functions, exposed for tests.
std::string Humanize(double v);
std::string Humanize1024(double v);
std::string HumanizeDuration(double v);
std::string HumanizePercentage(double v);
std::string HumanizeTimestamp(double v);

}  // namespace telkit::rules
