#include "common/admin/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace telkit {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Fields of /proc/self/stat after the command name (which may hold spaces and
// parentheses, so parsing starts after the last ')'). fields[0] is field 3
// (state) of proc(5).
std::vector<std::string> ReadStatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  size_t close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  std::string field;
  while (rest >> field) fields.push_back(field);
  return fields;
}

// proc(5) numbers fields from 1; the vector starts at field 3.
double StatField(const std::vector<std::string>& fields, size_t number) {
  if (number < 3 || number - 3 >= fields.size()) return kNaN;
  try {
    return std::stod(fields[number - 3]);
  } catch (const std::exception&) {
    return kNaN;
  }
}

double StatmPages(int index) {
  std::ifstream in("/proc/self/statm");
  double value = kNaN;
  for (int i = 0; i <= index; ++i) {
    if (!(in >> value)) return kNaN;
  }
  return value * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double CpuSeconds() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return kNaN;
  auto seconds = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return kNaN;
  double count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the descriptor opendir itself holds
}

double MaxFds() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return kNaN;
  return limit.rlim_cur == RLIM_INFINITY ? std::numeric_limits<double>::infinity()
                                         : static_cast<double>(limit.rlim_cur);
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return kNaN;
}

double StartTimeSeconds() {
  // Field 22: start time in clock ticks after boot.
  double ticks = StatField(ReadStatFields(), 22);
  return BootTimeSeconds() + ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

void RegisterProcessMetrics(MetricsRegistry& registry, std::string_view tool_name) {
  registry.AddCallback("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                       MetricType::kCounter, {}, CpuSeconds);
  registry.AddCallback("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::kGauge, {},
                       [] { return StatmPages(1); });
  registry.AddCallback("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::kGauge, {},
                       [] { return StatmPages(0); });
  registry.AddCallback("process_open_fds", "Number of open file descriptors.", MetricType::kGauge, {}, OpenFds);
  registry.AddCallback("process_max_fds", "Maximum number of open file descriptors.", MetricType::kGauge, {}, MaxFds);
  registry.AddCallback("process_threads", "Number of OS threads in the process.", MetricType::kGauge, {},
                       [] { return StatField(ReadStatFields(), 20); });
  // The start time does not change: compute it once.
  const double start_time = StartTimeSeconds();
  registry.AddCallback("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                       MetricType::kGauge, {}, [start_time] { return start_time; });
  registry
      .AddGauge("telkit_build_info", "Which telkit command and version runs; always 1.",
                {{"tool", std::string(tool_name)}, {"version", TELKIT_VERSION}})
      .Set(1);
}

}  // namespace telkit
