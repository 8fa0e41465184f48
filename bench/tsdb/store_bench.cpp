// store_bench: the metrics store end to end on the metrics-ingest workload
// — appends (durable, WAL fsynced), FlushHead, bytes on disk — and the
// figures the store is held to: CPU s per 1M samples ingested, bytes per
// sample on disk, peak RSS.
//
//     /usr/bin/python3 bench/tsdb/export_series.py --out /tmp/series.bin
//     store_bench [--batch N] [--no-verify] [--keep] [--replay] /tmp/series.bin [DIR]
//
// The series file (10,000 series x 480 scrapes of gen.py) is first turned
// into a time-major file in a child process, so that neither the dataset
// nor the conversion counts in this process's peak RSS; the parent then
// streams it: at each scrape step every series gets its next sample, sent
// in Append calls of --batch samples (default 2000, a remote-write request).
// Labels are built once (decoding requests is not the store's cost).
// --replay closes and reopens the store before the flush (Open replays the
// WAL). Afterwards it checks every sample reads back bit-exact (unless
// --no-verify). Bounded: one pass over the file.
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/tsdb/metrics_store.h"

namespace telkit::bench {
namespace {

double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}
long PeakRssKiB() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// metric{a="b",c="d"} -> Labels.
bool ParseName(const std::string& s, Labels* out) {
  size_t brace = s.find('{');
  std::vector<Label> labels;
  labels.push_back({"__name__", s.substr(0, brace)});
  if (brace != std::string::npos) {
    size_t i = brace + 1;
    while (i < s.size() && s[i] != '}') {
      size_t eq = s.find('=', i);
      if (eq == std::string::npos || eq + 1 >= s.size() || s[eq + 1] != '"') return false;
      std::string name = s.substr(i, eq - i), value;
      size_t j = eq + 2;
      for (; j < s.size() && s[j] != '"'; ++j) {
        if (s[j] == '\\' && j + 1 < s.size()) {
          ++j;
          value += s[j] == 'n' ? '\n' : s[j];
        } else {
          value += s[j];
        }
      }
      labels.push_back({name, value});
      i = j + 1;
      if (i < s.size() && s[i] == ',') ++i;
    }
  }
  auto l = Labels::FromUnsorted(std::move(labels));
  if (!l.ok()) return false;
  *out = std::move(l).value();
  return true;
}

struct Header {
  std::vector<Labels> labels;
  uint32_t steps = 0;
};

// Reads the series file; writes `tm` = steps x series x (i64 t, f64 v).
bool Convert(const char* path, const std::string& tm, Header* h, bool write_data) {
  FILE* f = std::fopen(path, "rb");
  if (!f) return false;
  char magic[8];
  uint32_t version = 0, count = 0;
  bool ok = std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, "TKSERIES", 8) == 0 &&
            std::fread(&version, 4, 1, f) == 1 && version == 1 && std::fread(&count, 4, 1, f) == 1;
  std::vector<std::vector<int64_t>> ts;
  std::vector<std::vector<double>> vs;
  for (uint32_t i = 0; ok && i < count; ++i) {
    uint8_t kind;
    uint16_t len;
    uint32_t n;
    ok = std::fread(&kind, 1, 1, f) == 1 && std::fread(&len, 2, 1, f) == 1;
    std::string name(len, '\0');
    ok = ok && std::fread(name.data(), 1, len, f) == len && std::fread(&n, 4, 1, f) == 1;
    if (!ok) break;
    Labels l;
    if (!ParseName(name, &l)) {
      std::fprintf(stderr, "store_bench: cannot parse series name '%s'\n", name.c_str());
      return false;
    }
    h->labels.push_back(std::move(l));
    if (i == 0) h->steps = n;
    if (n != h->steps) {
      std::fprintf(stderr, "store_bench: series have different sample counts\n");
      return false;
    }
    std::vector<int64_t> t(n);
    std::vector<double> v(n);
    ok = std::fread(t.data(), 8, n, f) == n && std::fread(v.data(), 8, n, f) == n;
    if (write_data) {
      ts.push_back(std::move(t));
      vs.push_back(std::move(v));
    }
  }
  std::fclose(f);
  if (!ok || !write_data) return ok;
  FILE* out = std::fopen(tm.c_str(), "wb");
  if (!out) return false;
  for (uint32_t k = 0; k < h->steps; ++k) {
    for (size_t s = 0; s < ts.size(); ++s) {
      std::fwrite(&ts[s][k], 8, 1, out);
      std::fwrite(&vs[s][k], 8, 1, out);
    }
  }
  return std::fclose(out) == 0;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t n = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

int Main(int argc, char** argv) {
  size_t batch = 2000;
  bool verify = true, keep = false, replay = false;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--batch" && i + 1 < argc) {
      batch = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--no-verify") {
      verify = false;
    } else if (a == "--keep") {
      keep = true;
    } else if (a == "--replay") {
      replay = true;
    } else {
      args.push_back(a);
    }
  }
  if (args.empty() || batch == 0) {
    std::fprintf(stderr, "usage: store_bench [--batch N] [--no-verify] [--keep] [--replay] SERIES_FILE [DIR]\n");
    return 2;
  }
  std::string dir = args.size() > 1 ? args[1] : "/tmp/store_bench." + std::to_string(getpid());
  std::string tm = dir + ".tm";
  std::filesystem::remove_all(dir);
  pid_t pid = fork();
  if (pid == 0) {
    Header h;
    _exit(Convert(args[0].c_str(), tm, &h, true) ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  Header h;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !Convert(args[0].c_str(), tm, &h, false)) {
    std::fprintf(stderr, "store_bench: cannot read '%s'\n", args[0].c_str());
    return 1;
  }
  const size_t n_series = h.labels.size();
  std::vector<TimeSeries> series(n_series);
  for (size_t i = 0; i < n_series; ++i) {
    series[i].labels = h.labels[i];
    series[i].samples.resize(1);
  }
  h.labels.clear();
  h.labels.shrink_to_fit();

  auto store = MetricsStore::Open(DefaultFileSystem(), dir, MetricsStoreOptions{});
  if (!store.ok()) {
    std::fprintf(stderr, "store_bench: %s\n", store.status().ToString().c_str());
    return 1;
  }
  FILE* in = std::fopen(tm.c_str(), "rb");
  std::vector<char> row(n_series * 16);
  double cpu0 = CpuSeconds(), tcpu_append = 0;
  auto wall0 = std::chrono::steady_clock::now();
  uint64_t appended = 0, rejected = 0;
  for (uint32_t k = 0; k < h.steps; ++k) {
    if (std::fread(row.data(), 16, n_series, in) != n_series) {
      std::fprintf(stderr, "store_bench: short read\n");
      return 1;
    }
    for (size_t s = 0; s < n_series; ++s) {
      int64_t t;
      double v;
      std::memcpy(&t, &row[s * 16], 8);
      std::memcpy(&v, &row[s * 16 + 8], 8);
      series[s].samples[0] = Sample{t, v};
    }
    for (size_t b = 0; b < n_series; b += batch) {
      std::span<const TimeSeries> part(series.data() + b, std::min(batch, n_series - b));
      double t0 = ThreadCpuSeconds();
      auto r = (*store)->Append(part);
      tcpu_append += ThreadCpuSeconds() - t0;
      if (!r.ok()) {
        std::fprintf(stderr, "store_bench: %s\n", r.status().ToString().c_str());
        return 1;
      }
      appended += r->samples_appended;
      rejected += r->rejected_total();
    }
  }
  std::fclose(in);
  double ingest_cpu = CpuSeconds() - cpu0;
  double ingest_wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  MetricsStoreStats st = (*store)->stats();
  double replay_cpu = -1, replay_wall = 0;
  if (replay) {
    // Close and reopen: Open replays the whole WAL into the head.
    (void)(*store)->Close();
    store->reset();
    double c0 = CpuSeconds();
    auto w0 = std::chrono::steady_clock::now();
    store = MetricsStore::Open(DefaultFileSystem(), dir, MetricsStoreOptions{});
    if (!store.ok()) {
      std::fprintf(stderr, "store_bench: reopen: %s\n", store.status().ToString().c_str());
      return 1;
    }
    replay_cpu = CpuSeconds() - c0;
    replay_wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  }
  double cpu1 = CpuSeconds();
  auto wall1 = std::chrono::steady_clock::now();
  Status fs = (*store)->FlushHead();
  if (!fs.ok()) {
    std::fprintf(stderr, "store_bench: flush: %s\n", fs.ToString().c_str());
    return 1;
  }
  double flush_cpu = CpuSeconds() - cpu1;
  double flush_wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall1).count();
  long rss = PeakRssKiB();
  MetricsStoreStats st2 = (*store)->stats();
  uint64_t chunk_bytes = 0;
  for (auto& e : std::filesystem::directory_iterator(dir + "/blocks")) {
    chunk_bytes += std::filesystem::file_size(e.path() / "chunks");
  }
  uint64_t blocks_bytes = DirBytes(dir + "/blocks");
  (void)(*store)->Close();  // checkpoints the SQLite WAL into index.db on close
  store->reset();
  uint64_t index_bytes = 0;
  for (const char* f : {"index.db", "index.db-wal", "index.db-shm"}) {
    std::error_code ec;
    auto n = std::filesystem::file_size(dir + "/" + f, ec);
    if (!ec) index_bytes += n;
  }
  uint64_t wal_bytes = DirBytes(dir + "/wal");
  double m = appended / 1e6;
  std::printf("series %zu, samples appended %" PRIu64 ", rejected %" PRIu64 ", Append calls %" PRIu64
              " of %zu samples\n",
              n_series, appended, rejected, st.append_calls, batch);
  std::printf("ingest: %.2f s wall, %.2f CPU s (%.3f CPU s per 1M samples; in Append: %.3f), %.0f samples/s\n",
              ingest_wall, ingest_cpu, ingest_cpu / m, tcpu_append / m, appended / ingest_wall);
  std::printf("  WAL: %" PRIu64 " bytes written (%.2f bytes/sample), %" PRIu64 " commits, mean Append %.2f ms, max %.2f ms\n",
              st.wal_bytes, double(st.wal_bytes) / appended, st.wal_commits,
              st.append_nanos / 1e6 / std::max<uint64_t>(1, st.append_calls), st.max_append_nanos / 1e6);
  std::printf("  head before flush: %" PRIu64 " series, %" PRIu64 " chunks, %.2f bytes/sample of chunk data; blocks cut while ingesting: %" PRIu64 "\n",
              st.head_series, st.head_chunks, double(st.head_chunk_bytes) / std::max<uint64_t>(1, appended - 0),
              st.blocks_written);
  if (replay_cpu >= 0) {
    std::printf("replay (Open after Close, whole WAL): %.2f s wall, %.2f CPU s (%.3f CPU s per 1M samples)\n",
                replay_wall, replay_cpu, replay_cpu / m);
  }
  std::printf("FlushHead: %.2f s wall, %.2f CPU s; blocks %" PRIu64 "\n", flush_wall, flush_cpu, st2.blocks);
  std::printf("disk: chunks files %" PRIu64 " (%.3f bytes/sample), blocks dir %" PRIu64 ", index.db %" PRIu64
              ", total %.3f bytes/sample (WAL left: %" PRIu64 " bytes)\n",
              chunk_bytes, double(chunk_bytes) / appended, blocks_bytes, index_bytes,
              double(blocks_bytes + index_bytes) / appended, wal_bytes);
  std::printf("peak RSS: %.1f MiB\n", rss / 1024.0);

  int bad = 0;
  if (verify) {
    auto again = MetricsStore::Open(DefaultFileSystem(), dir, MetricsStoreOptions{});
    if (!again.ok()) {
      std::fprintf(stderr, "store_bench: reopen: %s\n", again.status().ToString().c_str());
      return 1;
    }
    // Re-read the series file one series at a time and compare.
    FILE* f = std::fopen(args[0].c_str(), "rb");
    std::fseek(f, 16, SEEK_SET);
    for (size_t i = 0; i < n_series; ++i) {
      uint8_t kind;
      uint16_t len;
      uint32_t n;
      (void)!std::fread(&kind, 1, 1, f);
      (void)!std::fread(&len, 2, 1, f);
      std::fseek(f, len, SEEK_CUR);
      (void)!std::fread(&n, 4, 1, f);
      std::vector<int64_t> t(n);
      std::vector<double> v(n);
      (void)!std::fread(t.data(), 8, n, f);
      (void)!std::fread(v.data(), 8, n, f);
      std::vector<LabelMatcher> ms;
      for (const Label& l : series[i].labels) ms.push_back(LabelMatcher::Make(MatchType::kEqual, l.name, l.value).value());
      auto r = (*again)->Select(INT64_MIN, INT64_MAX, ms);
      bool same = r.ok() && r->size() == 1 && (*r)[0].samples.size() == n;
      for (uint32_t k = 0; same && k < n; ++k) {
        same = (*r)[0].samples[k].t == t[k] &&
               std::bit_cast<uint64_t>((*r)[0].samples[k].v) == std::bit_cast<uint64_t>(v[k]);
      }
      if (!same) ++bad;
    }
    std::fclose(f);
    std::printf("verify: %zu series read back, %d differ\n", n_series, bad);
  }
  std::filesystem::remove(tm);
  if (!keep) std::filesystem::remove_all(dir);
  return bad == 0 ? 0 : 1;
}

}  // namespace
}  // namespace telkit::bench

int main(int argc, char** argv) { return telkit::bench::Main(argc, argv); }
