// wal_bench: durable append throughput of the write-ahead log
// (common/tsdb/wal.h) on a real file system, by number of appending threads:
// records/s, MB/s, records per commit (group commit at work), fsyncs, and
// the CPU spent per record. Every Append waits for its fsync.
//
// Usage: wal_bench DIR [RECORD_BYTES (default 4096)] [SECONDS_PER_CASE (default 2)]
// DIR must not hold a WAL you care about: the bench writes DIR/wal-bench
// and removes it. Prints a table; asserts nothing.
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "common/fs/file_system.h"
#include "common/tsdb/wal.h"

namespace {

double Seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void RemoveAll(telkit::FileSystem* fs, const std::string& dir) {
  auto names = fs->ListDir(dir);
  if (!names.ok()) return;
  for (const auto& n : *names) (void)fs->RemoveFile(telkit::JoinPath(dir, n));
  (void)fs->RemoveDir(dir);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: wal_bench DIR [RECORD_BYTES] [SECONDS_PER_CASE]\n");
    return 2;
  }
  telkit::FileSystem* fs = telkit::DefaultFileSystem();
  std::string dir = telkit::JoinPath(argv[1], "wal-bench");
  size_t record_bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 4096;
  double seconds = argc > 3 ? std::strtod(argv[3], nullptr) : 2.0;
  std::string record(record_bytes, 'r');
  std::printf("wal_bench: %zu-byte records into '%s', %.1f s per case, fsync on every commit\n\n", record_bytes,
              dir.c_str(), seconds);
  std::printf("%8s %12s %9s %12s %10s %14s\n", "threads", "records/s", "MB/s", "recs/commit", "fsyncs/s",
              "CPU us/record");
  for (int threads : {1, 2, 4, 8, 16, 32}) {
    RemoveAll(fs, dir);
    auto w = telkit::WalWriter::Open(fs, dir);
    if (!w.ok()) {
      std::fprintf(stderr, "wal_bench: %s\n", w.status().ToString().c_str());
      return 1;
    }
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> errors{0};
    double wall0 = Seconds(CLOCK_MONOTONIC), cpu0 = Seconds(CLOCK_PROCESS_CPUTIME_ID);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        while (!stop.load(std::memory_order_relaxed)) {
          if (!(*w)->Append(record).ok()) ++errors;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : pool) th.join();
    double wall = Seconds(CLOCK_MONOTONIC) - wall0, cpu = Seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    telkit::WalStats st = (*w)->stats();
    double recs = static_cast<double>(st.records);
    std::printf("%8d %12.0f %9.1f %12.1f %10.0f %14.1f%s\n", threads, recs / wall,
                recs * static_cast<double>(record_bytes) / wall / 1e6, recs / static_cast<double>(st.commits),
                static_cast<double>(st.syncs) / wall, cpu / recs * 1e6, errors ? "  (errors!)" : "");
    w->reset();
  }
  RemoveAll(fs, dir);
  return 0;
}
