// The TraceQL parser: text to a Query (ast.h), following Tempo's grammar
// (pkg/traceql/expr.y and lexer.go). Errors are INVALID_ARGUMENT with the
// position, as Tempo words them:
//   parse error at line 1, col 12: syntax error: unexpected '}'
//
// Supported: spanset filters over intrinsics (duration, name, status,
// statusMessage, kind, childCount, parent, rootName, rootServiceName,
// traceDuration and the scoped span:/trace:/event:/link:/instrumentation:
// forms), attributes (.x, span.x, resource.x, parent.x, event.x, link.x,
// instrumentation.x, quoted names span."a b"), statics (strings in "" or ``,
// integers, floats, Go durations, true/false, nil, status and kind names),
// all field operators, spanset operators (&& || > >> < << ~ and the !
// negations), pipelines with count/avg/min/max/sum filters, by(), select()
// and coalesce(). Not supported: metrics queries (rate(), ...) and scalar
// pipelines compared with each other: INVALID_ARGUMENT.
//
// Thread-safe: a pure function.
#pragma once

#include <memory>
#include <string_view>

#include "common/base/status.h"
#include "common/traceql/ast.h"

namespace telkit::traceql {

Result<std::unique_ptr<Query>> Parse(std::string_view text);

// Parses a Go duration ("1h30m", "1.5s", "300ms", "10us", "5ns").
Result<int64_t> ParseGoDuration(std::string_view text);

}  // namespace telkit::traceql
