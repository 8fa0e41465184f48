#include "common/expfmt/exposition.h"

#include <gtest/gtest.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace telkit {
namespace {

namespace fs = std::filesystem;

const fs::path kTestdata = fs::path(TELKIT_SOURCE_DIR) / "tests" / "testdata" / "expfmt";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string FormatValue(double v) {
  if (IsStaleNaN(v)) return "stale";
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

struct Collected {
  std::vector<TimeSeries> series;
  std::vector<MetricMetadata> metadata;
  std::vector<size_t> batch_sizes;
};

ExpositionBatchHandler Collect(Collected* c) {
  return [c](ExpositionBatch& b) {
    c->batch_sizes.push_back(b.num_samples);
    size_t n = 0;
    for (auto& s : b.series) n += s.samples.size();
    EXPECT_EQ(n, b.num_samples);
    for (auto& s : b.series) c->series.push_back(std::move(s));
    for (auto& m : b.metadata) c->metadata.push_back(std::move(m));
    return OkStatus();
  };
}

// A canonical text of what the parser produced, for golden files. Series
// split across batches are joined, so the dump does not depend on batching.
std::string Dump(const Collected& c, const ExpositionParser& p, Status final_status) {
  std::ostringstream out;
  for (const MetricMetadata& m : c.metadata) {
    out << "metadata " << m.family << " " << MetricFamilyTypeName(m.type) << " help=\"" << EscapeHelp(m.help)
        << "\" unit=\"" << m.unit << "\"\n";
  }
  std::vector<TimeSeries> joined;
  for (const TimeSeries& s : c.series) {
    if (joined.empty() || joined.back().labels != s.labels) {
      joined.push_back(s);
      continue;
    }
    auto& j = joined.back();
    j.samples.insert(j.samples.end(), s.samples.begin(), s.samples.end());
    j.exemplars.insert(j.exemplars.end(), s.exemplars.begin(), s.exemplars.end());
  }
  for (const TimeSeries& s : joined) {
    out << "series " << s.labels.ToString() << "\n";
    for (const Sample& x : s.samples) out << "  " << x.t << " " << FormatValue(x.v) << "\n";
    for (const Exemplar& e : s.exemplars) {
      out << "  exemplar " << e.labels.ToString() << " " << FormatValue(e.value) << " " << e.t << "\n";
    }
  }
  for (const ExpositionError& e : p.errors()) {
    out << "error " << ExpositionProblemName(e.problem) << ": " << e.message << "\n";
  }
  const ExpositionStats& st = p.stats();
  out << "stats lines=" << st.lines << " samples=" << st.samples << " exemplars=" << st.exemplars
      << " families=" << st.families << " errors=" << st.errors << "\n";
  out << "status " << (final_status.ok() ? "OK" : final_status.message()) << "\n";
  return out.str();
}

ExpositionFormat FormatOf(const fs::path& p) {
  return p.extension() == ".om" ? ExpositionFormat::kOpenMetrics : ExpositionFormat::kPrometheusText;
}

// Parses `input` fed in pieces of `piece` bytes (0: all at once).
std::string ParseToDump(std::string_view input, ExpositionFormat format, size_t piece, size_t batch,
                        std::vector<size_t>* batch_sizes = nullptr) {
  Collected c;
  ExpositionOptions o;
  o.format = format;
  o.default_timestamp_ms = 1234;
  o.batch_samples = batch;
  ExpositionParser p(o, Collect(&c));
  Status s;
  if (piece == 0) piece = input.size() + 1;
  for (size_t i = 0; i < input.size() && s.ok(); i += piece) s = p.Feed(input.substr(i, piece));
  if (s.ok()) s = p.Finish();
  if (batch_sizes) *batch_sizes = c.batch_sizes;
  return Dump(c, p, s);
}

std::vector<fs::path> GoldenInputs() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kTestdata)) {
    if (e.path().extension() == ".prom" || e.path().extension() == ".om") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ExpositionGolden, MatchesGoldenFiles) {
  auto inputs = GoldenInputs();
  ASSERT_GE(inputs.size(), 5u);
  const bool update = std::getenv("TELKIT_UPDATE_GOLDEN") != nullptr;
  for (const fs::path& in : inputs) {
    SCOPED_TRACE(in.filename().string());
    std::string got = ParseToDump(ReadFile(in), FormatOf(in), 0, 1 << 20);
    fs::path golden = in;
    golden += ".golden";
    if (update) {
      std::ofstream(golden, std::ios::binary) << got;
      continue;
    }
    ASSERT_TRUE(fs::exists(golden)) << "run with TELKIT_UPDATE_GOLDEN=1 to create " << golden;
    EXPECT_EQ(got, ReadFile(golden));
  }
}

TEST(ExpositionGolden, AnySplitAndBatchSizeGiveTheSameResult) {
  for (const fs::path& in : GoldenInputs()) {
    SCOPED_TRACE(in.filename().string());
    std::string input = ReadFile(in);
    std::string whole = ParseToDump(input, FormatOf(in), 0, 1 << 20);
    for (size_t piece : {1, 2, 7, 64}) {
      for (size_t batch : {1, 3, 1000}) {
        std::vector<size_t> sizes;
        EXPECT_EQ(ParseToDump(input, FormatOf(in), piece, batch, &sizes), whole) << piece << " " << batch;
        for (size_t n : sizes) EXPECT_LE(n, batch);
      }
    }
  }
}

TEST(Exposition, StopPolicyEndsAtTheFirstErrorWithItsLine) {
  Collected c;
  ExpositionOptions o;
  o.on_error = ExpositionErrorPolicy::kStop;
  ExpositionParser p(o, Collect(&c));
  Status s = p.Feed("ok 1\nok 2\n# TYPE x gauge\n9bad 1\nok 3\n");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "line 4: invalid metric name '9bad'");
  EXPECT_FALSE(p.Feed("ok 4\n").ok());  // stays failed
  EXPECT_FALSE(p.Finish().ok());
  EXPECT_TRUE(c.series.empty());  // the batch before the error was not handed over
}

TEST(Exposition, InvalidNamesReportedPerLine) {
  Collected c;
  ExpositionParser p({}, Collect(&c));
  ASSERT_TRUE(p.Feed("a 1\nb{0x=\"1\"} 1\nc:d 1\n3e 1\ne{f=\"1\",f=\"2\"} 1\n").ok());
  ASSERT_TRUE(p.Finish().ok());
  ASSERT_EQ(p.errors().size(), 3u);
  EXPECT_EQ(p.errors()[0].line, 2u);
  EXPECT_EQ(p.errors()[0].problem, ExpositionProblem::kInvalidLabelName);
  EXPECT_EQ(p.errors()[1].line, 4u);
  EXPECT_EQ(p.errors()[2].line, 5u);
  EXPECT_EQ(p.errors()[2].problem, ExpositionProblem::kDuplicateLabel);
  EXPECT_EQ(p.stats().samples, 2u);
  EXPECT_EQ(p.stats().errors_by_problem[static_cast<size_t>(ExpositionProblem::kInvalidLabelName)], 1u);
}

TEST(Exposition, LabelLimits) {
  Collected c;
  ExpositionOptions o;
  o.limits.max_value_bytes = 4;
  ExpositionParser p(o, Collect(&c));
  ASSERT_TRUE(p.Feed("a{x=\"1234\"} 1\na{x=\"12345\"} 1\n").ok());
  ASSERT_TRUE(p.Finish().ok());
  EXPECT_EQ(p.stats().samples, 1u);
  ASSERT_EQ(p.errors().size(), 1u);
  EXPECT_EQ(p.errors()[0].problem, ExpositionProblem::kLabelLimit);
}

TEST(Exposition, LongLinesAreSkippedNotBuffered) {
  Collected c;
  ExpositionOptions o;
  o.max_line_bytes = 100;
  ExpositionParser p(o, Collect(&c));
  ASSERT_TRUE(p.Feed("a 1\nlong{x=\"").ok());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(p.Feed(std::string(1000, 'x')).ok());
  ASSERT_TRUE(p.Feed("\"} 1\nb 2\n").ok());
  ASSERT_TRUE(p.Finish().ok());
  EXPECT_EQ(p.stats().samples, 2u);
  ASSERT_EQ(p.errors().size(), 1u);
  EXPECT_EQ(p.errors()[0].line, 2u);
  EXPECT_EQ(p.errors()[0].problem, ExpositionProblem::kLineTooLong);
  EXPECT_EQ(c.series.back().labels.MetricName(), "b");
}

TEST(Exposition, HandlerErrorStopsTheParse) {
  ExpositionOptions o;
  o.batch_samples = 2;
  int calls = 0;
  ExpositionParser p(o, [&](ExpositionBatch&) {
    ++calls;
    return UnavailableError("disk full");
  });
  Status s = p.Feed("a 1\na 2\na 3\n");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(p.Finish().ok());
}

TEST(Exposition, Values) {
  double v;
  EXPECT_TRUE(ParseExpositionValue("1.5", &v) && v == 1.5);
  EXPECT_TRUE(ParseExpositionValue("-0", &v) && std::signbit(v));
  EXPECT_TRUE(ParseExpositionValue("+Inf", &v) && std::isinf(v) && v > 0);
  EXPECT_TRUE(ParseExpositionValue("-inf", &v) && std::isinf(v) && v < 0);
  EXPECT_TRUE(ParseExpositionValue("Inf", &v) && std::isinf(v));
  EXPECT_TRUE(ParseExpositionValue("NaN", &v) && std::isnan(v) && !IsStaleNaN(v));
  EXPECT_TRUE(ParseExpositionValue("1e3", &v) && v == 1000);
  EXPECT_TRUE(ParseExpositionValue("+3", &v) && v == 3);
  EXPECT_TRUE(ParseExpositionValue("0x1p3", &v) && v == 8);
  EXPECT_TRUE(ParseExpositionValue("-0x10", &v) && v == -16);
  EXPECT_TRUE(ParseExpositionValue("4374535.06", &v) && v == 4374535.06);
  for (std::string_view bad : {"", "+", "+-1", "1,5", "1e400", " 1", "1 ", "nan(1)", "0x", "0xinf", "--1", "1.2.3"}) {
    EXPECT_FALSE(ParseExpositionValue(bad, &v)) << bad;
  }
}

TEST(Exposition, FormatOpenMetricsFloatIsGosShortestG) {
  // Expected strings: Go's strconv.FormatFloat(f, 'g', -1, 64) plus ".0".
  std::vector<std::pair<double, std::string>> cases = {
      {1, "1.0"},          {0, "0.0"},          {-1, "-1.0"},         {0.05, "0.05"},      {0.1, "0.1"},
      {2.5, "2.5"},        {10, "10.0"},        {100000, "100000.0"}, {1e6, "1e+06"},      {1234567, "1.234567e+06"},
      {1e-5, "1e-05"},     {0.0001, "0.0001"},  {0.00012, "0.00012"}, {1.5e10, "1.5e+10"}, {-0.005, "-0.005"},
      {1e100, "1e+100"},   {5e-324, "5e-324"},  {0.3, "0.3"},         {123456, "123456.0"}, {-2e-7, "-2e-07"},
  };
  for (const auto& [v, want] : cases) EXPECT_EQ(FormatOpenMetricsFloat(v), want) << v;
  EXPECT_EQ(FormatOpenMetricsFloat(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatOpenMetricsFloat(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatOpenMetricsFloat(std::nan("")), "NaN");
}

TEST(Exposition, LeAndQuantileNormalised) {
  for (bool normalize : {true, false}) {
    Collected c;
    ExpositionOptions o;
    o.normalize_float_labels = normalize;
    ExpositionParser p(o, Collect(&c));
    ASSERT_TRUE(p.Feed("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+inf\"} 1\n"
                       "# TYPE s summary\ns{quantile=\"0\"} 1\n# TYPE g gauge\ng{le=\"1\"} 1\n").ok());
    ASSERT_TRUE(p.Finish().ok());
    ASSERT_EQ(c.series.size(), 4u);
    EXPECT_EQ(c.series[0].labels.Get("le"), normalize ? "1.0" : "1");
    EXPECT_EQ(c.series[1].labels.Get("le"), normalize ? "+Inf" : "+inf");
    EXPECT_EQ(c.series[2].labels.Get("quantile"), normalize ? "0.0" : "0");
    EXPECT_EQ(c.series[3].labels.Get("le"), "1");  // not a histogram
  }
}

TEST(Exposition, OpenMetricsTimestampsAreExactMilliseconds) {
  Collected c;
  ExpositionOptions o;
  o.format = ExpositionFormat::kOpenMetrics;
  ExpositionParser p(o, Collect(&c));
  ASSERT_TRUE(p.Feed("a 1 1795564803.197\na 1 1795564803.1989\na 1 -1.5\na 1 1.5e9\na 1 0.001\na 1 7\n# EOF\n").ok());
  ASSERT_TRUE(p.Finish().ok());
  ASSERT_EQ(c.series.size(), 1u);
  std::vector<int64_t> ts;
  for (const Sample& s : c.series[0].samples) ts.push_back(s.t);
  EXPECT_EQ(ts, (std::vector<int64_t>{1795564803197, 1795564803198, -1500, 1500000000000, 1, 7000}));
}

TEST(Exposition, ContentTypes) {
  EXPECT_EQ(ExpositionFormatFromContentType("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(ExpositionFormatFromContentType("text/plain; version=0.0.4"), ExpositionFormat::kPrometheusText);
  EXPECT_EQ(ExpositionFormatFromContentType(""), ExpositionFormat::kPrometheusText);
  EXPECT_EQ(ExpositionFormatName(ExpositionFormat::kOpenMetrics), "openmetrics");
}

TEST(Exposition, MissingFile) {
  Status s = ParseExpositionFile("/nonexistent/x.om", {}, [](ExpositionBatch&) { return OkStatus(); });
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
}

// Everything gen.py writes (what `tsdb-write import` backfills) parses, sample
// for sample: totals from its manifest, raw points from its spot file.
class GeneratedDataset : public ::testing::TestWithParam<ExpositionFormat> {};

TEST_P(GeneratedDataset, EverySampleParses) {
  const fs::path gen = fs::path(TELKIT_SOURCE_DIR) / ".." / "shared" / "bench" / "metrics-ingest" / "gen.py";
  if (!fs::exists(gen)) GTEST_SKIP() << "../shared/bench/metrics-ingest/gen.py is absent";
  if (std::system("/usr/bin/python3 -c 'import snappy, google.protobuf' 2>/dev/null") != 0) {
    GTEST_SKIP() << "gen.py needs Debian's python3-snappy and python3-protobuf (scripts/setup.sh)";
  }
  const bool om = GetParam() == ExpositionFormat::kOpenMetrics;
  fs::path dir = fs::temp_directory_path() / ("expfmt-gen-" + std::to_string(::getpid()) + (om ? "-om" : "-prom"));
  fs::remove_all(dir);
  std::string cmd = "/usr/bin/python3 '" + gen.string() + "' --out '" + dir.string() +
                    "' --hosts 2 --duration 600 --start 1795564800 --text-format " + (om ? "openmetrics" : "prometheus") +
                    " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto manifest = nlohmann::json::parse(ReadFile(dir / "manifest.json"));
  auto spot = nlohmann::json::parse(ReadFile(dir / "spot.json"));

  ExpositionOptions o;
  o.format = GetParam();
  o.on_error = ExpositionErrorPolicy::kStop;
  o.batch_samples = 5000;
  std::map<Labels, std::vector<Sample>> series;
  std::set<std::string> families;
  size_t batches = 0;
  ExpositionStats stats;
  auto start = std::chrono::steady_clock::now();
  Status s = ParseExpositionFile((dir / (om ? "dataset.om.txt" : "dataset.prom.txt")).string(), o,
                                 [&](ExpositionBatch& b) {
                                   ++batches;
                                   EXPECT_LE(b.num_samples, 5000u);
                                   for (auto& ts : b.series) {
                                     auto& v = series[ts.labels];
                                     v.insert(v.end(), ts.samples.begin(), ts.samples.end());
                                   }
                                   for (auto& m : b.metadata) families.insert(m.family);
                                   return OkStatus();
                                 },
                                 &stats);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(s.ok()) << s.message();
  std::printf("parsed %llu samples in %.3f s: %.0f samples/s\n", static_cast<unsigned long long>(stats.samples), secs,
              static_cast<double>(stats.samples) / secs);
  EXPECT_EQ(stats.samples, manifest["samples"].get<uint64_t>());
  EXPECT_EQ(series.size(), manifest["series"].get<size_t>());
  EXPECT_EQ(families.size(), manifest["families"].get<size_t>());
  EXPECT_GE(batches, 4u);
  for (const auto& [labels, samples] : series) {
    EXPECT_TRUE(std::is_sorted(samples.begin(), samples.end(), [](auto& a, auto& b) { return a.t < b.t; }));
    EXPECT_GE(samples.front().t, manifest["min_ts"].get<int64_t>());
    EXPECT_LE(samples.back().t, manifest["max_ts"].get<int64_t>());
  }
  size_t points = 0;
  for (const auto& sp : spot) {
    std::vector<Label> ls;
    for (auto& [k, v] : sp["labels"].items()) ls.push_back({k, v.get<std::string>()});
    auto labels = Labels::FromUnsorted(ls);
    ASSERT_TRUE(labels.ok());
    auto it = series.find(*labels);
    ASSERT_NE(it, series.end()) << labels->ToString();
    ASSERT_EQ(it->second.size(), sp["points"].size()) << labels->ToString();
    for (size_t i = 0; i < it->second.size(); ++i) {
      EXPECT_EQ(it->second[i].t, sp["points"][i][0].get<int64_t>());
      EXPECT_EQ(std::bit_cast<uint64_t>(it->second[i].v), std::bit_cast<uint64_t>(sp["points"][i][1].get<double>()))
          << labels->ToString() << " point " << i;
      ++points;
    }
  }
  EXPECT_GT(points, 100u);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(BothFormats, GeneratedDataset,
                         ::testing::Values(ExpositionFormat::kOpenMetrics, ExpositionFormat::kPrometheusText),
                         [](const auto& info) { return std::string(ExpositionFormatName(info.param)); });

}  // namespace
}  // namespace telkit
