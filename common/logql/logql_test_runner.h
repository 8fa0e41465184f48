// Runs LogQL test scripts (tests/testdata/logql/*.test; the language is
// described in tests/testdata/logql/README.md) against a real LogStore in a
// directory and the engine, and reports each eval's outcome.
//
//   load {app="a", level="info"}        streams and their lines
//     1s line text
//     2s @{trace_id="abc"} line with structured metadata
//   clear                                a new, empty store
//   eval logs from 0 to 1m [limit N] [forward|backward] QUERY
//     {stream labels}
//       TIME line                        expected entries, in direction
//   eval [ordered] instant at 1m QUERY
//     {labels} VALUE | scalar VALUE
//   eval range from 0 to 2m step 1m QUERY
//     {labels} V0 V1 _ V3                one value per step, _ = none
//   eval error [instant at T | range ... | logs ...] QUERY
//     substring of the expected error   (optional)
//
// Stateless functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"

namespace telkit::logql {

struct LogqlEvalReport {
  int line = 0;
  std::string query;
  bool passed = false;
  std::string message;  // why it failed
};

struct LogqlScriptReport {
  int passed = 0, failed = 0;
  std::vector<LogqlEvalReport> evals;
};

struct LogqlRunnerOptions {
  // Flush the store after every load, so evals read chunks rather than the
  // in-memory head.
  bool flush_after_load = false;
  // Read through a LogReader (the cross-process reader: index, chunks, WAL
  // replay) instead of the LogStore itself.
  bool use_reader = false;
};

// Runs `text` with stores created under `dir` (an empty, writable
// directory). INVALID_ARGUMENT (with the line) for a malformed script.
Result<LogqlScriptReport> RunLogqlScript(std::string_view text, const std::string& dir,
                                         const LogqlRunnerOptions& options = {});

}  // namespace telkit::logql
