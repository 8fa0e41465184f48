#include "common/health/health_report.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "common/admin/metrics_registry.h"
#include "common/model/labels.h"

namespace telkit {

std::string_view HealthStateName(HealthState s) {
  switch (s) {
    case HealthState::kOk: return "OK";
    case HealthState::kWarning: return "WARNING";
    case HealthState::kCritical: return "CRITICAL";
    case HealthState::kUnknown: return "UNKNOWN";
  }
  return "UNKNOWN";
}

namespace {
int Severity(HealthState s) {
  switch (s) {
    case HealthState::kOk: return 0;
    case HealthState::kUnknown: return 1;
    case HealthState::kWarning: return 2;
    case HealthState::kCritical: return 3;
  }
  return 1;
}

std::string_view Color(HealthState s) {
  switch (s) {
    case HealthState::kOk: return "\033[32m";
    case HealthState::kWarning: return "\033[33m";
    case HealthState::kCritical: return "\033[1;31m";
    case HealthState::kUnknown: return "\033[35m";
  }
  return "";
}
}  // namespace

HealthState WorseState(HealthState a, HealthState b) { return Severity(a) >= Severity(b) ? a : b; }

HealthState HealthReport::Overall() const {
  HealthState s = HealthState::kOk;
  for (const auto& c : checks) s = WorseState(s, c.state);
  return s;
}

std::string FormatHealthValue(double value, std::string_view unit) {
  if (std::isnan(value)) return "NaN";
  if (unit == "bytes" || unit == "bytes_per_second") {
    static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = std::fabs(value);
    size_t i = 0;
    while (v >= 1024 && i + 1 < std::size(kUnits)) v /= 1024, ++i;
    std::string s = i == 0 ? fmt::format("{:.0f} B", value) : fmt::format("{:.1f} {}", value < 0 ? -v : v, kUnits[i]);
    return unit == "bytes" ? s : s + "/s";
  }
  if (unit == "seconds") {
    double v = std::fabs(value);
    if (v < 1) return fmt::format("{:.0f}ms", value * 1000);
    if (v < 120) return fmt::format("{:.2f}s", value);
    if (v < 7200) return fmt::format("{:.1f}m", value / 60);
    if (v < 172800) return fmt::format("{:.1f}h", value / 3600);
    return fmt::format("{:.1f}d", value / 86400);
  }
  if (unit == "ratio") return fmt::format("{:.1f}%", value * 100);
  if (value == std::floor(value) && std::fabs(value) < 1e15) return fmt::format("{:.0f}", value);
  return fmt::format("{:.3g}", value);
}

std::string RenderTable(const HealthReport& report, bool color) {
  std::vector<std::array<std::string, 5>> rows;
  rows.push_back({"STATE", "COMPONENT", "CHECK", "VALUE", "DETAIL"});
  for (const auto& c : report.checks) {
    std::string detail = c.detail;
    if (!c.target.empty()) detail = detail.empty() ? c.target : detail + " (" + c.target + ")";
    rows.push_back({std::string(HealthStateName(c.state)), c.component, c.check,
                    c.value ? FormatHealthValue(*c.value, c.unit) : "-", detail});
  }
  std::array<size_t, 4> width{};
  for (const auto& r : rows)
    for (size_t i = 0; i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  std::string out;
  for (size_t n = 0; n < rows.size(); ++n) {
    const auto& r = rows[n];
    std::string state = fmt::format("{:<{}}", r[0], width[0]);
    if (color && n > 0) state = fmt::format("{}{}\033[0m", Color(report.checks[n - 1].state), state);
    out += fmt::format("{}  {:<{}}  {:<{}}  {:>{}}  {}", state, r[1], width[1], r[2], width[2], r[3], width[3], r[4]);
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += '\n';
  }
  HealthState overall = report.Overall();
  size_t bad = std::count_if(report.checks.begin(), report.checks.end(),
                             [](const HealthCheck& c) { return c.state != HealthState::kOk; });
  std::string name(HealthStateName(overall));
  if (color) name = fmt::format("{}{}\033[0m", Color(overall), name);
  out += fmt::format("stack-health: {}: {} checks, {} not OK\n", name, report.checks.size(), bad);
  return out;
}

std::string RenderJson(const HealthReport& report) {
  nlohmann::ordered_json j;
  j["status"] = HealthStateName(report.Overall());
  j["exit_code"] = static_cast<int>(report.Overall());
  j["time_ms"] = report.time_ms;
  j["checks"] = nlohmann::ordered_json::array();
  for (const auto& c : report.checks) {
    nlohmann::ordered_json o;
    o["component"] = c.component;
    o["check"] = c.check;
    o["target"] = c.target;
    o["status"] = HealthStateName(c.state);
    if (c.value && std::isfinite(*c.value)) {
      o["value"] = *c.value;
    } else {
      o["value"] = nullptr;
    }
    o["unit"] = c.unit;
    o["detail"] = c.detail;
    j["checks"].push_back(std::move(o));
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string RenderPrometheus(const HealthReport& report) {
  auto labels = [](const HealthCheck& c, bool with_unit) {
    std::string s = fmt::format(R"(component="{}",check="{}",target="{}")", EscapeLabelValue(c.component),
                                EscapeLabelValue(c.check), EscapeLabelValue(c.target));
    if (with_unit) s += fmt::format(R"(,unit="{}")", EscapeLabelValue(c.unit));
    return s;
  };
  std::string out;
  out += "# HELP telkit_stack_health_status Overall state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n";
  out += "# TYPE telkit_stack_health_status gauge\n";
  out += fmt::format("telkit_stack_health_status {}\n", static_cast<int>(report.Overall()));
  out += "# HELP telkit_stack_health_last_run_timestamp_seconds When the checks ran.\n";
  out += "# TYPE telkit_stack_health_last_run_timestamp_seconds gauge\n";
  out += fmt::format("telkit_stack_health_last_run_timestamp_seconds {}\n",
                     FormatSampleValue(static_cast<double>(report.time_ms) / 1000));
  out += "# HELP telkit_stack_health_check_status State of one check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n";
  out += "# TYPE telkit_stack_health_check_status gauge\n";
  for (const auto& c : report.checks)
    out += fmt::format("telkit_stack_health_check_status{{{}}} {}\n", labels(c, false), static_cast<int>(c.state));
  out += "# HELP telkit_stack_health_check_value What a check measured, in the unit the label names.\n";
  out += "# TYPE telkit_stack_health_check_value gauge\n";
  for (const auto& c : report.checks) {
    if (!c.value) continue;
    out += fmt::format("telkit_stack_health_check_value{{{}}} {}\n", labels(c, true), FormatSampleValue(*c.value));
  }
  return out;
}

}  // namespace telkit
