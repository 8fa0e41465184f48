// log_bench CORPUS DIR: the log store on a corpus from gen_corpus.py.
// Prints: ingest lines/s and CPU s per GiB (WAL fsync on, chunks cut and
// compressed), bytes on disk per raw byte, the substring-filter scan in GiB/s
// per core (decompress + memmem over blocks), and zstd levels vs zlib -6 on
// the same raw blocks (ratio, compress and decompress MB/s per core).
// A program that prints figures; run by bench/logs/run.sh, never asserted.
#include <sys/resource.h>
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/logstore/log_chunk.h"
#include "common/logstore/log_store.h"

using namespace telkit;

namespace {

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}
double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
uint64_t DirBytes(const std::string& d) {
  uint64_t n = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(d))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: log_bench CORPUS DIR [NEEDLE] [ZSTD_LEVEL]\n");
    return 2;
  }
  std::string corpus = argv[1], dir = argv[2];
  std::string needle = argc > 3 ? argv[3] : "IllegalStateException";
  int level = argc > 4 ? std::atoi(argv[4]) : ChunkOptions{}.zstd_level;
  std::filesystem::remove_all(dir);

  LogStoreOptions o;
  o.background = false;
  o.retention_ns = 0;
  o.chunk.zstd_level = level;
  o.limits.max_streams = 0;
  if (const char* e = std::getenv("LOG_BENCH_BLOCK_KIB")) o.chunk.block_bytes = std::strtoul(e, nullptr, 10) << 10;
  if (const char* e = std::getenv("LOG_BENCH_CHUNK_KIB")) o.chunk_target_bytes = std::strtoul(e, nullptr, 10) << 10;
  auto store = LogStore::Open(DefaultFileSystem(), dir, o);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  std::ifstream in(corpus);
  std::string line;
  std::vector<LogPush> batch(3);
  const char* kinds[] = {"access", "app", "trace"};
  for (int k = 0; k < 3; ++k) batch[k].stream = Labels{{"job", kinds[k]}};
  uint64_t lines = 0, raw = 0, in_batch = 0;
  int64_t ts = 1700000000'000000000;
  double t0 = Now(), c0 = CpuSeconds();
  auto flush = [&] {
    auto r = (*store)->Push(batch);
    if (!r.ok()) {
      std::fprintf(stderr, "push: %s\n", r.status().ToString().c_str());
      std::exit(1);
    }
    for (auto& p : batch) p.entries.clear();
    in_batch = 0;
  };
  while (std::getline(in, line)) {
    size_t tab = line.find('\t');
    int k = line.compare(0, tab, "access") == 0 ? 0 : line.compare(0, tab, "app") == 0 ? 1 : 2;
    raw += line.size() - tab;  // the line without its kind prefix, with the newline
    ts += 500'000;
    batch[k].entries.push_back(LogEntry{ts, line.substr(tab + 1), {}});
    ++lines;
    if (++in_batch == 4096) flush();
  }
  if (in_batch) flush();
  if (!(*store)->Close().ok()) return 1;
  double wall = Now() - t0, cpu = CpuSeconds() - c0;
  store->reset();  // closes the index too (SQLite checkpoints its WAL file away)
  uint64_t disk = DirBytes(dir);
  double gib = raw / double(1ull << 30);
  std::printf("corpus: %llu lines, %.1f MiB raw\n", (unsigned long long)lines, raw / 1048576.0);
  std::printf("ingest: %.0f lines/s (wall %.1f s), %.1f CPU s per GiB, zstd level %d\n", lines / wall, wall, cpu / gib,
              level);
  std::printf("disk: %.1f MiB, %.4f bytes per raw byte (chunks %.1f MiB)\n", disk / 1048576.0, double(disk) / raw,
              DirBytes(dir + "/chunks") / 1048576.0);

  // The filter scan: every chunk, every block decompressed, memmem.
  std::vector<std::string> files;
  for (auto& e : std::filesystem::directory_iterator(dir + "/chunks")) files.push_back(e.path());
  std::vector<std::string> chunks;
  for (auto& f : files) {
    std::ifstream c(f, std::ios::binary);
    chunks.emplace_back(std::istreambuf_iterator<char>(c), std::istreambuf_iterator<char>());
  }
  std::string buf;
  std::vector<uint32_t> hits;
  std::vector<std::string> needles = {needle};
  uint64_t matched = 0, scanned = 0;
  std::vector<std::string> raw_blocks;
  c0 = CpuSeconds();
  for (auto& c : chunks) {
    auto p = ParseChunk(c);
    if (!p.ok()) return 1;
    for (auto& b : p->blocks) {
      auto v = BlockView::Decode(c, p->compression, b, &buf);
      if (!v.ok()) return 1;
      MatchLines(*v, needles, &hits);
      matched += hits.size();
      scanned += v->text().size();
    }
  }
  double scan_cpu = CpuSeconds() - c0;
  std::printf("scan |= \"%s\": %llu lines, %.2f GiB/s per core of line text (decompress + memmem)\n", needle.c_str(),
              (unsigned long long)matched, scanned / double(1ull << 30) / scan_cpu);
  // Through the read API (materializes the hits).
  auto reader = LogReader::Open(DefaultFileSystem(), dir);
  LogQuery q;
  q.matchers = {LabelMatcher::Make(MatchType::kRegexMatch, "job", ".+").value()};
  q.contains = needles;
  q.limit = 0;
  c0 = CpuSeconds();
  auto r = (*reader)->Select(q);
  double sel_cpu = CpuSeconds() - c0;
  uint64_t n = 0;
  for (auto& s : *r) n += s.entries.size();
  std::printf("Select |= \"%s\": %llu lines, %.2f GiB/s per core\n", needle.c_str(), (unsigned long long)n,
              gib / sel_cpu);
  // One line for run.sh's table.
  std::printf("RESULT lines=%llu raw=%llu lines_per_s=%.0f cpu_s_per_gib=%.2f disk_per_raw=%.4f scan_gib_s=%.3f "
              "select_gib_s=%.3f matched=%llu\n",
              (unsigned long long)lines, (unsigned long long)raw, lines / wall, cpu / gib, double(disk) / raw,
              scanned / double(1ull << 30) / scan_cpu, gib / sel_cpu, (unsigned long long)matched);
  if (std::getenv("LOG_BENCH_CODECS") == nullptr) return 0;  // the per-codec table below takes minutes

  // Codecs on the same raw blocks (the first 64 MiB of them).
  for (auto& c : chunks) {
    auto p = ParseChunk(c);
    for (auto& b : p->blocks) {
      if (raw_blocks.size() * (256 << 10) > (64u << 20)) break;
      auto v = BlockView::Decode(c, p->compression, b, &buf);
      raw_blocks.push_back(buf);
    }
  }
  uint64_t rb = 0;
  for (auto& b : raw_blocks) rb += b.size();
  std::printf("\ncodec on %zu raw blocks (%.1f MiB):\n", raw_blocks.size(), rb / 1048576.0);
  std::string out, back;
  for (int lv : {1, 3, 6, 9, 19}) {
    uint64_t cb = 0;
    double a = CpuSeconds();
    std::vector<std::string> comp;
    for (auto& b : raw_blocks) {
      out.resize(ZSTD_compressBound(b.size()));
      size_t k = ZSTD_compress(out.data(), out.size(), b.data(), b.size(), lv);
      comp.emplace_back(out.data(), k);
      cb += k;
    }
    double ct = CpuSeconds() - a;
    a = CpuSeconds();
    for (size_t i = 0; i < comp.size(); ++i) {
      back.resize(raw_blocks[i].size());
      ZSTD_decompress(back.data(), back.size(), comp[i].data(), comp[i].size());
    }
    double dt = CpuSeconds() - a;
    std::printf("  zstd -%-2d ratio %5.2f  compress %6.0f MB/s  decompress %6.0f MB/s\n", lv, double(rb) / cb,
                rb / 1e6 / ct, rb / 1e6 / dt);
  }
  for (int lv : {1, 6, 9}) {
    uint64_t cb = 0;
    double a = CpuSeconds();
    std::vector<std::string> comp;
    for (auto& b : raw_blocks) {
      uLongf k = compressBound(b.size());
      out.resize(k);
      compress2(reinterpret_cast<Bytef*>(out.data()), &k, reinterpret_cast<const Bytef*>(b.data()), b.size(), lv);
      comp.emplace_back(out.data(), k);
      cb += k;
    }
    double ct = CpuSeconds() - a;
    a = CpuSeconds();
    for (size_t i = 0; i < comp.size(); ++i) {
      uLongf k = raw_blocks[i].size();
      back.resize(k);
      uncompress(reinterpret_cast<Bytef*>(back.data()), &k, reinterpret_cast<const Bytef*>(comp[i].data()),
                 comp[i].size());
    }
    double dt = CpuSeconds() - a;
    std::printf("  zlib -%-2d ratio %5.2f  compress %6.0f MB/s  decompress %6.0f MB/s\n", lv, double(rb) / cb,
                rb / 1e6 / ct, rb / 1e6 / dt);
  }
  return 0;
}
