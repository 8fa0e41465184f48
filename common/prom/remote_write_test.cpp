#include "common/prom/remote_write.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "common/prom/remote_write_test_support.h"
#include "prometheus/remote.pb.h"

namespace telkit {
namespace {

using namespace std::string_literals;

using test_support::AddSeries;

TEST(RemoteWriteTest, GoldenBytes) {
  // WriteRequest{timeseries: [{labels: [{__name__, up}], samples: [{1.0, 1000}]}]}
  const std::string golden =
      "\x0a\x1e"                                   // field 1 (timeseries), 30 bytes
      "\x0a\x0e"                                   //   field 1 (labels), 14 bytes
      "\x0a\x08__name__" "\x12\x02up"              //     name, value
      "\x12\x0c"                                   //   field 2 (samples), 12 bytes
      "\x09\x00\x00\x00\x00\x00\x00\xf0\x3f"       //     value 1.0 (fixed64)
      "\x10\xe8\x07"s;                             //     timestamp 1000 (varint)
  TimeSeries ts{Labels{{"__name__", "up"}}, {{1000, 1.0}}, {}};
  EXPECT_EQ(EncodeWriteRequest(std::span(&ts, 1)), golden);
  Result<DecodedWriteRequest> decoded = DecodeWriteRequest(golden);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->series.size(), 1u);
  EXPECT_EQ(decoded->series[0].labels, ts.labels);
  EXPECT_EQ(decoded->series[0].samples, ts.samples);
}

TEST(RemoteWriteTest, RoundTripsSeriesExemplarsAndMetadata) {
  std::vector<TimeSeries> series = {
      {Labels{{"__name__", "http_requests_total"}, {"code", "200"}, {"job", "api"}},
       {{1000, 1}, {2000, 2.5}, {3000, StaleNaN()}},
       {{Labels{{"trace_id", "0af7651916cd43dd8448eb211c80319c"}}, 1, 1500}}},
      {Labels{{"__name__", "temp_celsius"}, {"room", "ünïcode ✓"}}, {{-5, -273.15}}, {}},
  };
  std::vector<MetricMetadata> metadata = {
      {"http_requests_total", MetricFamilyType::kCounter, "Requests.", ""},
      {"temp_celsius", MetricFamilyType::kGauge, "Temperature.", "celsius"},
      {"rpc_duration_seconds", MetricFamilyType::kSummary, "", "seconds"},
      {"latency_seconds", MetricFamilyType::kHistogram, "", ""},
      {"build_info", MetricFamilyType::kInfo, "", ""},
  };
  Result<DecodedWriteRequest> decoded = DecodeWriteRequest(EncodeWriteRequest(series, metadata));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->series.size(), 2u);
  for (size_t i = 0; i < series.size(); ++i) {
    EXPECT_EQ(decoded->series[i].labels, series[i].labels);
    ASSERT_EQ(decoded->series[i].samples.size(), series[i].samples.size());
    for (size_t j = 0; j < series[i].samples.size(); ++j) {
      EXPECT_EQ(decoded->series[i].samples[j].t, series[i].samples[j].t);
      EXPECT_EQ(std::bit_cast<uint64_t>(decoded->series[i].samples[j].v),
                std::bit_cast<uint64_t>(series[i].samples[j].v));  // the stale NaN survives bit for bit
    }
    EXPECT_EQ(decoded->series[i].exemplars, series[i].exemplars);
  }
  EXPECT_EQ(decoded->metadata, metadata);
  EXPECT_EQ(decoded->samples, 4);
  EXPECT_EQ(decoded->exemplars, 1);
  EXPECT_EQ(decoded->rejected.Total(), 0);
}

TEST(RemoteWriteTest, RejectsBadSeriesOneByOneAndKeepsTheRest) {
  prometheus::WriteRequest req;
  AddSeries(req, {{"__name__", "good"}, {"a", "1"}});
  AddSeries(req, {{"a", "1"}});                                     // missing_metric_name
  AddSeries(req, {{"__name__", "1bad"}});                           // invalid_metric_name
  AddSeries(req, {{"__name__", "m"}, {"bad-name", "x"}});           // invalid_label_name
  AddSeries(req, {{"__name__", "m"}, {"a", "\xff\xfe"}});           // invalid_utf8
  AddSeries(req, {{"__name__", "m"}, {"a", "1"}, {"a", "2"}});      // duplicate_label_name
  AddSeries(req, {{"__name__", "m"}, {"a", std::string(5000, 'x')}});  // label_value_too_long
  AddSeries(req, {{"__name__", "m"}, {std::string(2000, 'n'), "x"}});  // label_name_too_long
  AddSeries(req, {{"__name__", "m"}}, 0);                              // no_samples
  {
    std::vector<std::pair<std::string, std::string>> many = {{"__name__", "m"}};
    for (int i = 0; i < 70; ++i) many.push_back({"l" + std::to_string(i), "v"});
    AddSeries(req, many);  // too_many_labels
  }
  auto* with_histogram = AddSeries(req, {{"__name__", "native"}}, 0);
  with_histogram->add_histograms()->set_count_int(3);  // only a native histogram: no_samples
  auto* bad_exemplar = AddSeries(req, {{"__name__", "good2"}});
  auto* e = bad_exemplar->add_exemplars();
  e->add_labels()->set_name("bad name");
  e->mutable_labels(0)->set_value("x");
  req.add_metadata();  // no family name: invalid_metadata
  auto* md = req.add_metadata();
  md->set_metric_family_name("good");
  md->set_type(prometheus::MetricMetadata::GAUGEHISTOGRAM);

  Result<DecodedWriteRequest> decoded = DecodeWriteRequest(req.SerializeAsString());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->series.size(), 2u);
  EXPECT_EQ(decoded->series[0].labels.MetricName(), "good");
  EXPECT_EQ(decoded->series[1].labels.MetricName(), "good2");
  EXPECT_TRUE(decoded->series[1].exemplars.empty());
  EXPECT_EQ(decoded->dropped_exemplars, 1);
  EXPECT_EQ(decoded->dropped_native_histograms, 1);
  EXPECT_EQ(decoded->samples, 2);
  EXPECT_EQ(decoded->rejected_samples, 8);  // the 8 bad-label series have 1 sample each
  const RejectCounts& r = decoded->rejected;
  EXPECT_EQ(r.Count(PromReject::kMissingMetricName), 1);
  EXPECT_EQ(r.Count(PromReject::kInvalidMetricName), 1);
  EXPECT_EQ(r.Count(PromReject::kInvalidLabelName), 1);
  EXPECT_EQ(r.Count(PromReject::kInvalidUtf8), 1);
  EXPECT_EQ(r.Count(PromReject::kDuplicateLabelName), 1);
  EXPECT_EQ(r.Count(PromReject::kLabelValueTooLong), 1);
  EXPECT_EQ(r.Count(PromReject::kLabelNameTooLong), 1);
  EXPECT_EQ(r.Count(PromReject::kNoSamples), 2);
  EXPECT_EQ(r.Count(PromReject::kTooManyLabels), 1);
  EXPECT_EQ(r.Count(PromReject::kInvalidMetadata), 1);
  EXPECT_EQ(r.Total(), 11);
  EXPECT_NE(r.first_message.find("missing_metric_name"), std::string::npos) << r.first_message;
  ASSERT_EQ(decoded->metadata.size(), 1u);
  EXPECT_EQ(decoded->metadata[0].type, MetricFamilyType::kGaugeHistogram);
}

TEST(RemoteWriteTest, LabelsAreSortedAndEmptyValuesDropped) {
  prometheus::WriteRequest req;
  AddSeries(req, {{"z", "1"}, {"__name__", "m"}, {"empty", ""}, {"a", "2"}});
  Result<DecodedWriteRequest> decoded = DecodeWriteRequest(req.SerializeAsString());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->series[0].labels.ToString(), "m{a=\"2\", z=\"1\"}");
}

TEST(RemoteWriteTest, MalformedBytesAreInvalidArgument) {
  for (const std::string& bad : {"\x0a\x05\x0a"s, "\xff\xff\xff"s, "\x0a\x02\x0a\x05"s}) {
    Result<DecodedWriteRequest> decoded = DecodeWriteRequest(bad);
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(DecodeWriteRequest("").ok());  // an empty request is valid and empty
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string in(1 + rng() % 64, '\0');
    for (char& c : in) c = static_cast<char>(rng());
    (void)DecodeWriteRequest(in);  // never crashes
  }
}

}  // namespace
}  // namespace telkit
