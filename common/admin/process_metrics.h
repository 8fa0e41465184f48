// The standard process_* metrics of a Prometheus client (memory, CPU, file
// descriptors, threads, start time), read from /proc at exposition time, and
// the telkit_build_info series that says which command and version runs.
// Thread-safety: the registered callbacks are thread-safe.
#pragma once

#include <string_view>

#include "common/admin/metrics_registry.h"

namespace telkit {

// Registers on `registry`:
//   process_cpu_seconds_total         user + system CPU time (counter)
//   process_resident_memory_bytes     resident set size
//   process_virtual_memory_bytes      virtual memory size
//   process_open_fds                  open file descriptors
//   process_max_fds                   the RLIMIT_NOFILE soft limit
//   process_threads                   threads of the process
//   process_start_time_seconds        start time, seconds since the Unix epoch
//   telkit_build_info{tool,version}   always 1
// A value that cannot be read (no /proc) is reported as NaN.
void RegisterProcessMetrics(MetricsRegistry& registry, std::string_view tool_name);

}  // namespace telkit
