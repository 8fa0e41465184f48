// chunk_bench: bytes per sample and encode/decode cost of the chunk
// encodings (common/tsdb/chunk.h) on the series of the metrics-ingest
// workload, against Prometheus' XOR chunk (prom_xor.h) on the same data.
//
// Input: the series that ../shared/bench/metrics-ingest/gen.py generates,
// dumped by bench/tsdb/export_series.py:
//     /usr/bin/python3 bench/tsdb/export_series.py --out /tmp/series.bin
//     chunk_bench /tmp/series.bin [SAMPLES_PER_CHUNK...]
// Without a file it uses a built-in imitation of that workload (same kinds
// of series, 15 s scrapes +- 5 ms jitter), so the program runs anywhere.
// SAMPLES_PER_CHUNK defaults to 120 240 480.
//
// Columns (bytes of chunk data per sample; container overhead such as a
// chunk file's length and CRC is not included):
//   prom-xor   Prometheus' XOR chunk
//   delta/xor  telkit's timestamp coding with Gorilla XOR values
//   appender   what ChunkAppender produces (the head's choice, one pass)
//   smallest   EncodeChunk(kSmallest): decimal or XOR, whichever is smaller
//   ts / val   the appender's timestamp and value columns separately
//   shared-ts  the appender's chunks if a block stored each distinct
//              timestamp column once (series scraped together share it)
// Prints tables; asserts nothing except that every chunk decodes bit-exact.
#include <time.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "bench/tsdb/prom_xor.h"
#include "common/tsdb/chunk.h"

namespace telkit::bench {
namespace {

const char* const kKindNames[] = {"counter", "gauge", "histogram", "summary", "unknown"};

struct Series {
  int kind = 0;  // index into kKindNames
  std::string name;
  std::vector<Sample> samples;
};

bool LoadSeries(const char* path, std::vector<Series>* out) {
  FILE* f = std::fopen(path, "rb");
  if (f == nullptr) return false;
  char magic[8];
  uint32_t version = 0, count = 0;
  bool ok = std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, "TKSERIES", 8) == 0 &&
            std::fread(&version, 4, 1, f) == 1 && version == 1 && std::fread(&count, 4, 1, f) == 1;
  for (uint32_t i = 0; ok && i < count; ++i) {
    Series s;
    uint8_t kind = 0;
    uint16_t name_length = 0;
    uint32_t n = 0;
    ok = std::fread(&kind, 1, 1, f) == 1 && std::fread(&name_length, 2, 1, f) == 1;
    s.kind = std::min<int>(kind, 4);
    s.name.resize(name_length);
    ok = ok && std::fread(s.name.data(), 1, name_length, f) == name_length && std::fread(&n, 4, 1, f) == 1;
    std::vector<int64_t> t(n);
    std::vector<double> v(n);
    ok = ok && std::fread(t.data(), 8, n, f) == n && std::fread(v.data(), 8, n, f) == n;
    for (uint32_t k = 0; k < n; ++k) s.samples.push_back({t[k], v[k]});
    out->push_back(std::move(s));
  }
  std::fclose(f);
  return ok;
}

// A small imitation of gen.py: per host 2 scrape targets, counters with
// Poisson-like increments and 15% noise, decimal counters (cpu seconds),
// page-quantised random walks, 2-decimal load averages, constants,
// log-normal durations, cumulative histogram buckets.
std::vector<Series> SyntheticSeries(int hosts) {
  std::vector<Series> out;
  std::mt19937_64 rng(1);
  std::normal_distribution<double> gauss(0, 1);
  const int k = 480;
  for (int h = 0; h < hosts; ++h) {
    std::vector<int64_t> ts[2];
    for (auto& t : ts) {
      int64_t phase = 1700000000000 + static_cast<int64_t>(rng() % 15000);
      for (int i = 0; i < k; ++i) t.push_back(phase + i * 15000 + static_cast<int64_t>(rng() % 11) - 5);
    }
    auto add = [&](int kind, const char* name, int target, auto&& value) {
      Series s{kind, name, {}};
      for (int i = 0; i < k; ++i) s.samples.push_back({ts[target][static_cast<size_t>(i)], value(i)});
      out.push_back(std::move(s));
    };
    for (int c = 0; c < 40; ++c) {  // integer counters of many rates
      double rate = std::pow(10.0, static_cast<double>(c % 7)), n = rate * 1e5;
      add(0, "counter", 0, [&](int) { return n += std::max(0.0, std::round(rate * 15 * (1 + 0.15 * gauss(rng)))); });
    }
    for (int c = 0; c < 32; ++c) {  // cpu seconds: ticks / 100
      double ticks = 1e7;
      add(0, "cpu_seconds", 0, [&](int) { return std::round(ticks += 1500 * (0.5 + 0.1 * gauss(rng))) / 100; });
    }
    for (int c = 0; c < 15; ++c) {  // memory: multiples of 1024
      double x = 4e9;
      add(1, "memory", 0, [&](int) { return std::floor((x += 3e7 * gauss(rng)) / 1024) * 1024; });
    }
    for (int c = 0; c < 3; ++c) {
      double x = 1;
      add(1, "load", 0, [&](int) { return std::round((x = std::max(0.0, x + 0.1 * gauss(rng))) * 100) / 100; });
    }
    for (int c = 0; c < 40; ++c) add(1, "constant", 0, [&](int) { return static_cast<double>(c); });
    for (int c = 0; c < 18; ++c) {
      add(1, "duration", 0, [&](int) { return 0.003 * std::exp(0.3 * gauss(rng)); });
    }
    for (int c = 0; c < 30; ++c) {
      double x = 0;
      add(1, "small_gauge", 0, [&](int) { return x = std::max(0.0, std::round(x + gauss(rng))); });
    }
    double buckets[11] = {0};
    for (int b = 0; b < 11; ++b) {
      add(2, "bucket", 1, [&](int) { return buckets[b] += std::round(std::max(0.0, 4.0 * (b + 1) + 2 * gauss(rng))); });
    }
    double sum = 0;
    add(2, "histogram_sum", 1, [&](int) { return sum += 0.05 * std::exp(gauss(rng)); });
  }
  return out;
}

const char* ValueClass(const Series& s) {
  bool constant = true, integer = true, decimal = true;
  for (const Sample& x : s.samples) {
    if (std::bit_cast<uint64_t>(x.v) != std::bit_cast<uint64_t>(s.samples[0].v)) constant = false;
    int d = MinDecimalDigits(x.v);
    if (d != 0) integer = false;
    if (d < 0 || d > 3) decimal = false;
  }
  return constant ? "constant" : integer ? "integer" : decimal ? "decimal<=3" : "float";
}

// CPU time of this process: other work on a shared machine does not count.
double Now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Sizes {
  double samples = 0, chunks = 0, prom = 0, delta_xor = 0, appender = 0, smallest = 0, ts = 0, val = 0, shared = 0;
  void Add(const Sizes& o) {
    samples += o.samples;
    chunks += o.chunks;
    prom += o.prom;
    delta_xor += o.delta_xor;
    appender += o.appender;
    smallest += o.smallest;
    ts += o.ts;
    val += o.val;
    shared += o.shared;
  }
};

void PrintHeader(const char* first) {
  std::printf("%-12s %9s | %8s %9s %8s %8s | %6s %6s | %9s\n", first, "samples", "prom-xor", "delta/xor", "appender",
              "smallest", "ts", "val", "shared-ts");
}
void PrintRow(const std::string& name, const Sizes& s) {
  auto b = [&](double x) { return x / s.samples; };
  std::printf("%-12s %9.0f | %8.3f %9.3f %8.3f %8.3f | %6.3f %6.3f | %9.3f\n", name.c_str(), s.samples, b(s.prom),
              b(s.delta_xor), b(s.appender), b(s.smallest), b(s.ts), b(s.val), b(s.shared));
}

// The timestamp column: after the encoding byte and the two uvarints
// (sample count, column length).
std::string_view TimestampColumn(const std::string& chunk) {
  size_t i = 1;
  while (static_cast<uint8_t>(chunk[i]) & 0x80) ++i;
  ++i;
  uint64_t len = 0;
  for (int shift = 0;; shift += 7, ++i) {
    len |= static_cast<uint64_t>(static_cast<uint8_t>(chunk[i]) & 0x7F) << shift;
    if ((static_cast<uint8_t>(chunk[i]) & 0x80) == 0) break;
  }
  return std::string_view(chunk).substr(i + 1, len);
}

int Run(const std::vector<Series>& series, size_t per_chunk, bool timing) {
  std::map<std::string, Sizes> by_kind, by_class;
  std::map<std::string, uint64_t> chosen;
  std::unordered_set<std::string> ts_columns;
  Sizes total;
  uint64_t mismatches = 0;
  std::vector<std::string> ours, proms;
  for (const Series& s : series) {
    const char* cls = ValueClass(s);
    Sizes sz;
    for (size_t a = 0; a < s.samples.size(); a += per_chunk) {
      std::span<const Sample> part(s.samples.data() + a, std::min(per_chunk, s.samples.size() - a));
      ChunkAppender app;
      for (const Sample& x : part) (void)app.Append(x.t, x.v);
      std::string chunk = app.Bytes();
      std::string prom = PromXorEncode(part);
      std::string smallest = *EncodeChunk(part, ChunkChoice::kSmallest);
      std::string dx = *EncodeChunkWith(part, TimestampEncoding::kDelta, ValueEncoding::kXor);
      std::string_view ts_column = TimestampColumn(chunk);
      uint64_t ts_len = ts_column.size();
      ChunkInfo info = app.info();
      chosen[std::string(TimestampEncodingName(info.timestamps)) + "/" + std::string(ValueEncodingName(info.values))]++;
      // Series scraped together have byte-identical timestamp columns.
      std::string ts_key = std::to_string(part.size()) + ":" + std::string(ts_column);
      bool first_use = ts_columns.insert(ts_key).second;
      sz.samples += static_cast<double>(part.size());
      sz.chunks += 1;
      sz.prom += static_cast<double>(prom.size());
      sz.delta_xor += static_cast<double>(dx.size());
      sz.appender += static_cast<double>(chunk.size());
      sz.smallest += static_cast<double>(smallest.size());
      sz.ts += static_cast<double>(ts_len);
      sz.val += static_cast<double>(chunk.size() - ts_len);
      sz.shared += static_cast<double>(chunk.size() - (first_use ? 0 : ts_len));
      // bit-exact check of every encoding
      for (const std::string* c : {&chunk, &smallest, &dx}) {
        auto back = DecodeChunk(*c);
        if (!back.ok() || back->size() != part.size()) {
          ++mismatches;
          continue;
        }
        for (size_t i = 0; i < part.size(); ++i) {
          if ((*back)[i].t != part[i].t ||
              std::bit_cast<uint64_t>((*back)[i].v) != std::bit_cast<uint64_t>(part[i].v)) {
            ++mismatches;
          }
        }
      }
      size_t k = 0;
      bool ok = PromXorDecode(prom, [&](int64_t t, double v) {
        if (k >= part.size() || t != part[k].t || std::bit_cast<uint64_t>(v) != std::bit_cast<uint64_t>(part[k].v)) {
          ++mismatches;
        }
        ++k;
      });
      if (!ok || k != part.size()) ++mismatches;
      if (timing) {
        ours.push_back(std::move(chunk));
        proms.push_back(std::move(prom));
      }
    }
    by_kind[kKindNames[s.kind]].Add(sz);
    by_class[cls].Add(sz);
    total.Add(sz);
  }
  std::printf("\n== %zu samples per chunk: %.0f chunks, %.1f samples per chunk on average\n", per_chunk, total.chunks,
              total.samples / total.chunks);
  std::printf("\nbytes per sample by series type\n");
  PrintHeader("type");
  for (const auto& [name, s] : by_kind) PrintRow(name, s);
  PrintRow("all", total);
  std::printf("\nbytes per sample by value class\n");
  PrintHeader("values");
  for (const auto& [name, s] : by_class) PrintRow(name, s);
  std::printf("\nencodings the appender chose (chunks):");
  for (const auto& [name, n] : chosen) std::printf("  %s %lu", name.c_str(), static_cast<unsigned long>(n));
  std::printf("\nbit-exact check: %lu mismatches\n", static_cast<unsigned long>(mismatches));

  if (timing) {
    // Encode and decode every chunk of the data set; best of 3 runs.
    auto best_of = [](auto&& fn) {
      double best = 1e30;
      for (int r = 0; r < 3; ++r) {
        double start = Now();
        fn();
        best = std::min(best, Now() - start);
      }
      return best;
    };
    uint64_t sink = 0;
    double enc = best_of([&] {
      for (const Series& s : series) {
        for (size_t a = 0; a < s.samples.size(); a += per_chunk) {
          ChunkAppender app;
          size_t b = std::min(s.samples.size(), a + per_chunk);
          for (size_t i = a; i < b; ++i) (void)app.Append(s.samples[i].t, s.samples[i].v);
          sink += app.size_bytes();
        }
      }
    });
    double enc_prom = best_of([&] {
      for (const Series& s : series) {
        for (size_t a = 0; a < s.samples.size(); a += per_chunk) {
          sink += PromXorEncode(std::span(s.samples.data() + a, std::min(per_chunk, s.samples.size() - a))).size();
        }
      }
    });
    double dec = best_of([&] {
      for (const std::string& c : ours) {
        auto it = ChunkIterator::Open(c);
        while (it->Next()) sink += static_cast<uint64_t>(it->t()) ^ std::bit_cast<uint64_t>(it->v());
      }
    });
    double dec_prom = best_of([&] {
      for (const std::string& c : proms) {
        PromXorDecode(c, [&](int64_t t, double v) { sink += static_cast<uint64_t>(t) ^ std::bit_cast<uint64_t>(v); });
      }
    });
    double ns = 1e9 / total.samples;
    std::printf(
        "\nspeed (CPU ns per sample, best of 3): appender encode %.1f, decode %.1f; "
        "prom-xor encode %.1f, decode %.1f   [sink %lu]\n",
        enc * ns, dec * ns, enc_prom * ns, dec_prom * ns, static_cast<unsigned long>(sink & 0xF));
  }
  return mismatches == 0 ? 0 : 1;
}

}  // namespace
}  // namespace telkit::bench

int main(int argc, char** argv) {
  using namespace telkit::bench;
  std::vector<Series> series;
  std::vector<size_t> sizes;
  const char* file = nullptr;
  for (int i = 1; i < argc; ++i) {
    char* end = nullptr;
    unsigned long n = std::strtoul(argv[i], &end, 10);
    if (*end == '\0' && n > 0) {
      sizes.push_back(n);
    } else {
      file = argv[i];
    }
  }
  if (sizes.empty()) sizes = {120, 240, 480};
  if (file != nullptr) {
    if (!LoadSeries(file, &series)) {
      std::fprintf(stderr, "chunk_bench: cannot read series file '%s'\n", file);
      return 1;
    }
    std::printf("chunk_bench: %zu series from '%s'\n", series.size(), file);
  } else {
    series = SyntheticSeries(50);
    std::printf("chunk_bench: %zu series of the built-in imitation workload (no series file given)\n", series.size());
  }
  int rc = 0;
  for (size_t i = 0; i < sizes.size(); ++i) rc |= Run(series, sizes[i], /*timing=*/i == 0);
  return rc;
}
