// The command-line contract every telkit command shares (STYLE.md rule 12):
// --help and --version on stdout with exit 0; usage errors as one line on
// stderr ("NAME: error: what (see 'NAME --help')") and exit 2; --config FILE with the long flags as keys; --log-level
// and --log-format for diagnostics, which go to stderr only (stdout carries
// data). Exit codes: 0 success, 1 runtime failure, 2 usage error.
// Thread-compatible: used from main() only.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace telkit {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct LogOptions {
  std::string level = "info";   // trace, debug, info, warn, error, critical, off
  std::string format = "text";  // text | json
};

// Declares the shared flags on `app`: --version, --config, --log-level, --log-format.
void AddCommonFlags(CLI::App& app, std::string_view tool_name, LogOptions& log);

// Points spdlog's default logger at stderr with the chosen level and format.
// INVALID_ARGUMENT for an unknown level or format.
Status SetUpLogging(std::string_view tool_name, const LogOptions& log);

// The whole life of a command: builds the app, lets `declare` add its flags,
// parses argv (help/version -> exit 0, usage error -> exit 2 with
// "NAME: message" on stderr), sets up logging, then returns `run()`'s exit
// code. Exceptions escaping `run` are logged and give exit 1.
int RunTool(std::string_view tool_name, std::string_view description, int argc, char** argv,
            const std::function<void(CLI::App&)>& declare, const std::function<int()>& run);

// Logs a failed Status as "NAME: message" through spdlog and returns kExitFailure.
int ReportFailure(const Status& status);

// True when file descriptor `fd` is a terminal (for colour and progress).
bool IsTerminal(int fd);

}  // namespace telkit
