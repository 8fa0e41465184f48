// The result of one stack-health run: a list of checks, each with a state
// (Nagios' four), a measured value and a one-line detail, and the three ways
// it is printed (a table, JSON, Prometheus text for node exporter's
// textfile collector). docs/stack-health.md describes the checks and
// docs/format/stack-health-output.md the JSON and Prometheus outputs.
//
// Thread-compatible: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace telkit {

// The exit codes are the states' values (the Nagios plugin convention).
enum class HealthState : int { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };

std::string_view HealthStateName(HealthState s);  // "OK", "WARNING", "CRITICAL", "UNKNOWN"

// The worse of two states: CRITICAL > WARNING > UNKNOWN > OK (a check that
// could not run is worse than a pass but says less than a failing one).
HealthState WorseState(HealthState a, HealthState b);

struct HealthCheck {
  std::string component;  // "otlp-recv", "disk", "canary", "freshness", "tls"
  std::string check;      // "healthz", "dropped", "free", "metrics", ...
  std::string target;     // what was measured: "127.0.0.1:8888", a directory, a file
  HealthState state = HealthState::kOk;
  std::optional<double> value;  // the measurement in `unit`, when there is one
  std::string unit;             // "seconds", "bytes", "ratio", "bytes_per_second", "" (a count)
  std::string detail;           // one line for a person: "ready", "connection refused", ...
};

struct HealthReport {
  int64_t time_ms = 0;  // when the run started (Unix ms)
  std::vector<HealthCheck> checks;

  // The worst state of all checks; OK when there are none.
  HealthState Overall() const;
  void Add(HealthCheck c) { checks.push_back(std::move(c)); }
};

// An aligned table, one check a line, overall state last. With `color`, the
// state column is coloured (ANSI: green, yellow, red, magenta).
std::string RenderTable(const HealthReport& report, bool color);
// One JSON object (docs/format/stack-health-output.md), with a final newline.
std::string RenderJson(const HealthReport& report);
// Prometheus text format 0.0.4 (docs/format/stack-health-output.md).
std::string RenderPrometheus(const HealthReport& report);

// A value for the table and details: 1.5 KiB style for bytes, 2.3s for
// seconds, plain numbers otherwise.
std::string FormatHealthValue(double value, std::string_view unit);

}  // namespace telkit
