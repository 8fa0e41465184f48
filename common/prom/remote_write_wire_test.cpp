#include "common/prom/remote_write_wire.h"

#include <gtest/gtest.h>

#include <random>

#include <fmt/format.h>
#include <string>

#include "common/prom/remote_write.h"
#include "common/prom/remote_write_test_support.h"
#include "prometheus/remote.pb.h"

namespace telkit {
namespace {

using namespace std::string_literals;

using test_support::AddSeries;

std::vector<std::string> Keys(std::string_view bytes) {
  WireSeries scratch;
  std::vector<std::string> keys;
  Status s = ScanWriteRequest(
      bytes, &scratch, [&](const WireSeries& ts) { keys.emplace_back(ts.label_key); }, [](const WireMetadata&) {});
  EXPECT_TRUE(s.ok()) << s.ToString();
  return keys;
}

TEST(RemoteWriteWireTest, GoldenBytesAndLabelKeyIsTheRawLabelFields) {
  const std::string golden =
      "\x0a\x1e"                                   // field 1 (timeseries), 30 bytes
      "\x0a\x0e"                                   //   field 1 (labels), 14 bytes
      "\x0a\x08__name__" "\x12\x02up"              //     name, value
      "\x12\x0c"                                   //   field 2 (samples), 12 bytes
      "\x09\x00\x00\x00\x00\x00\x00\xf0\x3f"       //     value 1.0 (fixed64)
      "\x10\xe8\x07"s;                             //     timestamp 1000 (varint)
  WireSeries scratch;
  int n = 0;
  ASSERT_TRUE(ScanWriteRequest(
                  golden, &scratch,
                  [&](const WireSeries& ts) {
                    ++n;
                    EXPECT_EQ(ts.label_key, "\x0a\x0e\x0a\x08__name__\x12\x02up"s);
                    ASSERT_EQ(ts.labels.size(), 1u);
                    EXPECT_EQ(ts.labels[0].name, "__name__");
                    EXPECT_EQ(ts.labels[0].value, "up");
                    ASSERT_EQ(ts.samples.size(), 1u);
                    EXPECT_EQ(ts.samples[0], (Sample{1000, 1.0}));
                  },
                  [](const WireMetadata&) {})
                  .ok());
  EXPECT_EQ(n, 1);
}

TEST(RemoteWriteWireTest, EqualKeysOnlyForEqualLabelsAlsoWhenInterleaved) {
  prometheus::WriteRequest req;
  AddSeries(req, {{"__name__", "a"}, {"job", "x"}});
  AddSeries(req, {{"__name__", "a"}, {"job", "x"}}, 3);
  AddSeries(req, {{"__name__", "a"}, {"job", "y"}});
  // Labels after a sample (protobuf never writes this; others may): not
  // adjacent, re-encoded into key_buf as adjacent fields.
  const std::string odd =
      "\x0a\x0d\x0a\x08__name__\x12\x01" "a"   // label __name__="a"
      "\x12\x02\x10\x01"                        // sample t=1
      "\x0a\x08\x0a\x03job\x12\x01x"s;         // label job="x"
  std::string bytes = req.SerializeAsString();
  bytes += "\x0a"s + static_cast<char>(odd.size()) + odd;
  std::vector<std::string> keys = Keys(bytes);
  ASSERT_EQ(keys.size(), 4u);
  EXPECT_EQ(keys[0], keys[1]);
  EXPECT_NE(keys[0], keys[2]);
  EXPECT_EQ(keys[0], keys[3]);  // re-encoded as adjacent fields: the same labels, the same key
}

TEST(RemoteWriteWireTest, CheckWireLabelsJudgesAsDecodeWriteRequest) {
  std::vector<std::vector<std::pair<std::string, std::string>>> cases = {
      {{"__name__", "ok"}, {"a", "1"}},
      {{"a", "1"}},
      {{"__name__", "1bad"}},
      {{"__name__", "ok"}, {"a", "1"}, {"a", "2"}},
      {{"__name__", "ok"}, {"a", "1"}, {"a", ""}},  // empty value: absent, no duplicate
      {{"__name__", "ok"}, {"b-c", "1"}},
      {{"__name__", "ok"}, {"b", "\xff"}},
      {{"__name__", "ok"}, {"b", std::string(5000, 'v')}},
      {{"__name__", "ok"}, {std::string(2000, 'n'), "v"}},
  };
  LabelLimits limits;
  for (const auto& c : cases) {
    prometheus::WriteRequest req;
    AddSeries(req, c);
    std::string bytes = req.SerializeAsString();
    Result<DecodedWriteRequest> decoded = DecodeWriteRequest(bytes, limits);
    ASSERT_TRUE(decoded.ok());
    WireSeries scratch;
    bool ok = false;
    PromReject reject{};
    ASSERT_TRUE(ScanWriteRequest(
                    bytes, &scratch,
                    [&](WireSeries& ts) {
                      ok = CheckWireLabels(&ts, limits, &reject);
                    },
                    [](const WireMetadata&) {})
                    .ok());
    EXPECT_EQ(ok, decoded->rejected.Total() == 0) << c[0].second;
    if (!ok) EXPECT_EQ(decoded->rejected.Count(reject), 1) << PromRejectName(reject);
  }
}

TEST(RemoteWriteWireTest, AcceptsExactlyWhatProtobufAcceptsOnMutatedInput) {
  prometheus::WriteRequest req;
  for (int i = 0; i < 5; ++i) {
    auto* ts = AddSeries(req, {{"__name__", "m" + std::to_string(i)}, {"job", "j"}}, 2);
    auto* e = ts->add_exemplars();
    auto* el = e->add_labels();
    el->set_name("trace_id");
    el->set_value("abc");
    e->set_value(1);
    e->set_timestamp(5);
    ts->add_histograms()->set_sum(3);
  }
  auto* md = req.add_metadata();
  md->set_metric_family_name("m0");
  md->set_type(prometheus::MetricMetadata::COUNTER);
  const std::string base = req.SerializeAsString();
  std::mt19937 rng(7);
  int agree = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string bytes = base;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      size_t at = rng() % bytes.size();
      switch (rng() % 3) {
        case 0: bytes[at] = static_cast<char>(rng()); break;
        case 1: bytes.erase(at, 1 + rng() % 3); break;
        default: bytes.resize(at); break;
      }
      if (bytes.empty()) break;
    }
    prometheus::WriteRequest parsed;
    const bool pb_ok = parsed.ParseFromString(bytes);
    Result<DecodedWriteRequest> ours = DecodeWriteRequest(bytes);
    EXPECT_EQ(ours.ok(), pb_ok) << "iteration " << iter;
    if (ours.ok()) {
      std::string hex;
      for (unsigned char c : bytes) hex += fmt::format("{:02x}", c);
      ASSERT_TRUE(pb_ok) << "iteration " << iter << " " << hex;
      int64_t samples = 0;
      for (const auto& ts : parsed.timeseries()) samples += ts.samples_size();
      EXPECT_EQ(ours->samples + ours->rejected_samples, samples);
      ++agree;
    }
  }
  EXPECT_GT(agree, 100);
}

TEST(RemoteWriteWireTest, ExemplarsAndMetadataDecode) {
  prometheus::WriteRequest req;
  auto* ts = AddSeries(req, {{"__name__", "m"}});
  auto* e = ts->add_exemplars();
  auto* el = e->add_labels();
  el->set_name("trace_id");
  el->set_value("0af7651916cd43dd8448eb211c80319c");
  e->set_value(2.5);
  e->set_timestamp(1234);
  auto* md = req.add_metadata();
  md->set_metric_family_name("m");
  md->set_type(prometheus::MetricMetadata::SUMMARY);
  md->set_help("h");
  md->set_unit("seconds");
  WireSeries scratch;
  Exemplar got;
  WireMetadata gotmd;
  ASSERT_TRUE(ScanWriteRequest(
                  req.SerializeAsString(), &scratch,
                  [&](const WireSeries& s) {
                    ASSERT_EQ(s.exemplars.size(), 1u);
                    EXPECT_TRUE(DecodeWireExemplar(s.exemplars[0], LabelLimits{}, &got));
                  },
                  [&](const WireMetadata& m) { gotmd = m; })
                  .ok());
  EXPECT_EQ(got, (Exemplar{Labels{{"trace_id", "0af7651916cd43dd8448eb211c80319c"}}, 2.5, 1234}));
  EXPECT_EQ(gotmd.family, "m");
  EXPECT_EQ(FamilyTypeFromProm(gotmd.type), MetricFamilyType::kSummary);
  EXPECT_EQ(gotmd.unit, "seconds");
}

}  // namespace
}  // namespace telkit
