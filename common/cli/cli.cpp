#include "common/cli/cli.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>

namespace telkit {
namespace {

// One JSON object per line on stderr: {"time":..,"level":..,"logger":..,"msg":..}.
class JsonStderrSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    auto t = std::chrono::system_clock::to_time_t(msg.time);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[40];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    nlohmann::json j = {{"time", ts},
                        {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                                              spdlog::level::to_string_view(msg.level).size())},
                        {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
                        {"msg", std::string(msg.payload.data(), msg.payload.size())}};
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

}  // namespace

void AddCommonFlags(CLI::App& app, std::string_view tool_name, LogOptions& log) {
  app.set_version_flag("--version", std::string(tool_name) + " " TELKIT_VERSION, "Print the version and exit");
  app.set_config("--config", "", "Read options from FILE (keys = long flags)")->type_name("FILE");
  app.add_option("--log-level", log.level, "Diagnostics from this level on")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--log-format", log.format, "Diagnostics format: text|json")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
}

Status SetUpLogging(std::string_view tool_name, const LogOptions& log) {
  auto level = spdlog::level::from_str(log.level);
  if (level == spdlog::level::off && log.level != "off") {
    return InvalidArgumentError("unknown log level '" + log.level + "'");
  }
  std::shared_ptr<spdlog::logger> logger;
  std::string name(tool_name);
  if (log.format == "json") {
    logger = std::make_shared<spdlog::logger>(name, std::make_shared<JsonStderrSink>());
  } else if (log.format == "text") {
    logger = spdlog::stderr_color_mt(name + "-stderr");
    logger->set_pattern(name + ": %^%l%$: %v");
  } else {
    return InvalidArgumentError("unknown log format '" + log.format + "'");
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  return OkStatus();
}

int ReportFailure(const Status& status) {
  spdlog::error("{}", status.message());
  return kExitFailure;
}

bool IsTerminal(int fd) { return ::isatty(fd) == 1; }

int RunTool(std::string_view tool_name, std::string_view description, int argc, char** argv,
            const std::function<void(CLI::App&)>& declare, const std::function<int()>& run) {
  CLI::App app{std::string(description), std::string(tool_name)};
  app.get_formatter()->column_width(32);
  LogOptions log;
  declare(app);
  AddCommonFlags(app, tool_name, log);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help, --version
      app.exit(e, std::cout, std::cerr);
      return kExitOk;
    }
    std::string message = e.what();
    if (!message.empty()) message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
    std::cerr << tool_name << ": error: " << message << " (see '" << tool_name << " --help')\n";
    return kExitUsage;
  }
  if (Status s = SetUpLogging(tool_name, log); !s.ok()) {
    std::cerr << tool_name << ": error: " << s.message() << "\n";
    return kExitUsage;
  }
  try {
    return run();
  } catch (const std::exception& e) {
    spdlog::critical("unexpected error: {}", e.what());
    return kExitFailure;
  }
}

}  // namespace telkit
