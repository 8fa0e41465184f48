// LogQL syntax tree (Loki's pkg/logql/syntax, the subset telkit implements:
// docs/logql.md). Built by ParseExpr (parser.h); evaluated by the engine
// (engine.h). Pipeline stages are compiled at parse time (regexes,
// templates), so a parsed tree is ready to run and immutable afterwards.
//
// Values; a tree may be shared read-only between threads (stages keep no
// per-line state in the tree: LogPipeline in pipeline.h does).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/model/matcher.h"

namespace re2 {
class RE2;
}

namespace telkit::logql {

// ---- pipeline stages -------------------------------------------------------

enum class LineFilterOp { kContains, kNotContains, kRegex, kNotRegex };  // |= != |~ !~

// `|= "a" or "b"`: the line passes when any value matches (for != and !~:
// when none does).
struct LineFilter {
  LineFilterOp op = LineFilterOp::kContains;
  std::vector<std::string> values;
  std::vector<std::shared_ptr<const re2::RE2>> regexes;  // for |~ !~, one per value
};

enum class CmpOp { kEq, kNe, kGt, kGe, kLt, kLe };

// One label predicate, or an and/or of two.
struct LabelFilter {
  enum class Kind { kMatcher, kNumber, kDuration, kBytes, kAnd, kOr };
  Kind kind = Kind::kMatcher;
  std::optional<LabelMatcher> matcher;  // kMatcher (=, !=, =~, !~ on the string)
  std::string name;                     // kNumber, kDuration, kBytes
  CmpOp op = CmpOp::kEq;
  double value = 0;  // number, seconds, or bytes
  std::unique_ptr<LabelFilter> left, right;  // kAnd, kOr
  std::string ToString() const;
};

// A parsed Go-template subset (pipeline.cpp).
struct Template;

struct JsonParam {
  std::string label;
  std::vector<std::string> path;  // keys; "[N]" elements are kept as "[N]"
};

struct LabelFormatItem {
  std::string dst;
  bool rename = false;  // dst=src
  std::string src;
  std::shared_ptr<const Template> tmpl;  // dst="{{...}}"
};

struct Stage {
  enum class Kind {
    kLineFilter, kJson, kLogfmt, kRegexp, kPattern, kUnpack, kLabelFilter,
    kLineFormat, kLabelFormat, kDrop, kKeep, kDecolorize
  };
  Kind kind = Kind::kLineFilter;
  LineFilter line_filter;
  std::vector<JsonParam> json_params;                // kJson, kLogfmt (path of one key)
  bool logfmt_strict = false, logfmt_keep_empty = false;
  std::shared_ptr<const re2::RE2> regexp;            // kRegexp
  std::vector<std::string> pattern_literals;         // kPattern: literal before capture i (size = captures + 1)
  std::vector<std::string> pattern_names;            // kPattern: "" for <_>
  std::shared_ptr<const LabelFilter> label_filter;   // kLabelFilter
  std::shared_ptr<const Template> tmpl;              // kLineFormat
  std::vector<LabelFormatItem> label_format;         // kLabelFormat
  std::vector<std::string> names;                    // kDrop / kKeep: plain names
  std::vector<LabelMatcher> name_matchers;           // kDrop / kKeep: name="v" items
  std::string text;                                  // source text, for String()
};

struct LogSelector {
  std::vector<LabelMatcher> matchers;
  std::vector<Stage> stages;
  std::string String() const;
};

// ---- metric expressions ----------------------------------------------------

enum class UnwrapConv { kNone, kDuration, kBytes };

struct Unwrap {
  std::string label;
  UnwrapConv conv = UnwrapConv::kNone;
  std::vector<Stage> post_filters;  // label filters after unwrap
};

enum class RangeOp {
  kCount, kRate, kBytes, kBytesRate, kAbsent, kSum, kAvg, kMin, kMax, kStddev, kStdvar,
  kQuantile, kFirst, kLast, kRateCounter
};

struct Grouping {
  bool present = false;
  bool without = false;
  std::vector<std::string> labels;
};

enum class AggOp { kSum, kAvg, kMin, kMax, kCount, kStddev, kStdvar, kTopk, kBottomk, kSort, kSortDesc };

enum class BinOp { kAdd, kSub, kMul, kDiv, kMod, kPow, kEq, kNe, kGt, kGe, kLt, kLe, kAnd, kOr, kUnless };

struct Expr {
  enum class Kind { kLog, kRange, kVectorAgg, kBinary, kNumber, kVector };
  Kind kind = Kind::kNumber;
  // kLog, kRange
  LogSelector selector;
  // kRange
  RangeOp range_op = RangeOp::kCount;
  int64_t range_ns = 0, offset_ns = 0;
  std::optional<Unwrap> unwrap;
  double param = 0;  // quantile_over_time's phi, topk's k
  Grouping grouping;  // kRange (optional), kVectorAgg
  // kVectorAgg
  AggOp agg_op = AggOp::kSum;
  // kBinary
  BinOp bin_op = BinOp::kAdd;
  bool return_bool = false;
  bool on = false;                    // on(...) rather than ignoring(...)
  bool has_matching = false;          // on/ignoring given
  std::vector<std::string> matching;  // labels of on/ignoring
  enum class Card { kOneToOne, kManyToOne, kOneToMany } card = Card::kOneToOne;
  std::vector<std::string> include;   // group_left/right labels
  // kNumber, kVector
  double number = 0;
  std::unique_ptr<Expr> lhs, rhs;  // kBinary: both; kVectorAgg: lhs
  bool IsLog() const { return kind == Kind::kLog; }
};

}  // namespace telkit::logql
