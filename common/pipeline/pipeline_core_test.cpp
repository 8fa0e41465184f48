// PipelineCore without threads: batching triggers, pass-through, routing
// decisions, what completes which input frame. Times are given explicitly.
#include "common/pipeline/pipeline_core.h"

#include <gtest/gtest.h>

#include <set>

#include "common/otlp/signal.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace otlp = opentelemetry::proto;
using otlp::collector::trace::v1::ExportTraceServiceRequest;

std::string TracesPayload(const std::string& service, int spans, const std::string& name = "op") {
  ExportTraceServiceRequest r;
  auto* rs = r.add_resource_spans();
  auto* a = rs->mutable_resource()->add_attributes();
  a->set_key("service.name");
  a->mutable_value()->set_string_value(service);
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("lib");
  for (int i = 0; i < spans; ++i) {
    auto* s = ss->add_spans();
    s->set_trace_id(std::string(16, static_cast<char>(i + 1)));
    s->set_span_id(std::string(8, static_cast<char>(i + 1)));
    s->set_name(name);
  }
  return r.SerializeAsString();
}

Frame MakeFrame(uint8_t signal, std::string payload, uint64_t time = 1000) {
  Frame f;
  f.signal = signal;
  f.payload = std::move(payload);
  f.time_unix_nano = time;
  return f;
}

ProcessorConfig Config(std::vector<std::string> order, BatchLimits limits = {}) {
  ProcessorSettings s;
  s.order = std::move(order);
  s.batch = limits;
  Result<ProcessorConfig> c = CompileProcessors(s, 1 << 20);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

constexpr std::array<bool, kSignalSlots> kAllRouted = {true, true, true, true, true};
const PipelineClock::time_point kT0{};

int64_t SpansIn(const Dispatch& d) {
  ExportTraceServiceRequest r;
  EXPECT_TRUE(r.ParseFromString(*d.payload));
  int64_t n = 0;
  for (const auto& rs : r.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) n += ss.spans_size();
  }
  return n;
}

class PipelineCoreTest : public ::testing::Test {
 protected:
  MetricsRegistry registry_;
  PipelineMetrics metrics_{registry_};
  std::vector<Dispatch> out_;
};

TEST_F(PipelineCoreTest, BatchesUpToMaxItemsAndCompletesEveryFrameOnce) {
  PipelineCore core(Config({"batch"}, {.max_items = 10, .max_bytes = 1 << 20, .timeout_ms = 200}), kAllRouted,
                    metrics_);
  for (uint64_t id = 1; id <= 7; ++id) {  // 7 frames of 3 spans: 3 + 3 + 3 = 9, then the 4th would make 12
    core.Add(MakeFrame(1, TracesPayload("svc", 3), 2000 - id), id, 100, kT0, &out_);
  }
  ASSERT_EQ(out_.size(), 2u);  // closed when the 4th and the 7th frame would not fit
  EXPECT_EQ(out_[0].items, 9);
  EXPECT_EQ(SpansIn(out_[0]), 9);
  EXPECT_EQ(out_[0].ack_ids, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(out_[0].held_bytes, 300u);
  EXPECT_EQ(out_[0].time_unix_nano, 1997u);  // the earliest receive time
  EXPECT_EQ(out_[1].ack_ids, (std::vector<uint64_t>{4, 5, 6}));
  EXPECT_EQ(core.batched_items(), 3);
  core.FlushAll(&out_);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_EQ(out_[2].ack_ids, (std::vector<uint64_t>{7}));
  EXPECT_EQ(metrics_.batches(1, BatchTrigger::kItems).Value(), 2u);
  EXPECT_EQ(metrics_.batches(1, BatchTrigger::kFlush).Value(), 1u);
  EXPECT_EQ(metrics_.batch_items(1).Value(), 21u);
  EXPECT_EQ(metrics_.received_items(1).Value(), 21u);
  // Merged: one resource, one scope.
  ExportTraceServiceRequest r;
  ASSERT_TRUE(r.ParseFromString(*out_[0].payload));
  EXPECT_EQ(r.resource_spans_size(), 1);
}

TEST_F(PipelineCoreTest, TimeoutBytesAndOversizeFrames) {
  PipelineCore core(Config({"batch"}, {.max_items = 100, .max_bytes = 2000, .timeout_ms = 200}), kAllRouted,
                    metrics_);
  core.Add(MakeFrame(1, TracesPayload("a", 2)), 1, 1, kT0, &out_);
  EXPECT_TRUE(out_.empty());
  ASSERT_TRUE(core.NextDeadline().has_value());
  EXPECT_EQ(*core.NextDeadline(), kT0 + std::chrono::milliseconds(200));
  core.FlushExpired(kT0 + std::chrono::milliseconds(199), &out_);
  EXPECT_TRUE(out_.empty());
  core.FlushExpired(kT0 + std::chrono::milliseconds(200), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_FALSE(core.NextDeadline().has_value());
  EXPECT_EQ(metrics_.batches(1, BatchTrigger::kTimeout).Value(), 1u);

  // A frame bigger than max_bytes goes alone, unsplit.
  out_.clear();
  core.Add(MakeFrame(1, TracesPayload("a", 1)), 2, 1, kT0, &out_);
  core.Add(MakeFrame(1, TracesPayload("a", 60)), 3, 1, kT0, &out_);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].ack_ids, (std::vector<uint64_t>{2}));
  EXPECT_EQ(out_[1].ack_ids, (std::vector<uint64_t>{3}));
  EXPECT_EQ(out_[1].items, 60);
  EXPECT_EQ(metrics_.batches(1, BatchTrigger::kBytes).Value(), 2u);
}

TEST_F(PipelineCoreTest, OtherSignalsPassThroughAndUnroutedOnesComplete) {
  std::array<bool, kSignalSlots> routed = {true, false, true, true, true};  // no metrics output
  PipelineCore core(Config({"batch"}), routed, metrics_);
  core.Add(MakeFrame(4, "remote write bytes", 5), 1, 10, kT0, &out_);
  core.Add(MakeFrame(77, "future signal", 6), 2, 10, kT0, &out_);
  core.Add(MakeFrame(2, ""), 3, 10, kT0, &out_);  // an empty metrics request, unrouted
  core.Add(MakeFrame(1, "\x0a\x05", 7), 4, 10, kT0, &out_);  // malformed traces
  ASSERT_EQ(out_.size(), 4u);
  EXPECT_TRUE(out_[0].deliver);
  EXPECT_EQ(*out_[0].payload, "remote write bytes");
  EXPECT_EQ(out_[0].time_unix_nano, 5u);
  EXPECT_TRUE(out_[1].deliver);
  EXPECT_EQ(out_[1].signal, 77);
  EXPECT_FALSE(out_[2].deliver);
  EXPECT_EQ(out_[2].ack_ids, (std::vector<uint64_t>{3}));
  EXPECT_FALSE(out_[3].deliver);
  EXPECT_EQ(metrics_.dropped_frames(2, DropReason::kNoRoute).Value(), 1u);
  EXPECT_EQ(metrics_.dropped_frames(1, DropReason::kMalformed).Value(), 1u);
}

TEST_F(PipelineCoreTest, WithoutBatchUnchangedPayloadsGoOutByteForByte) {
  PipelineCore core(Config({"resource", "filter", "sampling"}), kAllRouted, metrics_);
  const std::string payload = TracesPayload("svc", 4);
  core.Add(MakeFrame(1, payload), 1, 1, kT0, &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(*out_[0].payload, payload);
}

TEST_F(PipelineCoreTest, FilteredAwayFramesCompleteAtOnce) {
  ProcessorSettings s;
  s.drop_spans = {"name == noise"};
  Result<ProcessorConfig> c = CompileProcessors(s, 1 << 20);
  ASSERT_TRUE(c.ok());
  PipelineCore core(*c, kAllRouted, metrics_);
  core.Add(MakeFrame(1, TracesPayload("svc", 3, "noise")), 1, 1, kT0, &out_);
  core.Add(MakeFrame(1, TracesPayload("svc", 2, "signal")), 2, 1, kT0, &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_FALSE(out_[0].deliver);
  EXPECT_EQ(out_[0].ack_ids, (std::vector<uint64_t>{1}));
  core.FlushAll(&out_);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].items, 2);
  EXPECT_EQ(metrics_.dropped_items(1, DropReason::kFilterDrop).Value(), 3u);
}

TEST_F(PipelineCoreTest, ProcessorsAfterBatchRunOnTheMergedBatch) {
  ProcessorSettings s;
  s.order = {"batch", "filter"};
  s.drop_spans = {"name == noise"};
  Result<ProcessorConfig> c = CompileProcessors(s, 1 << 20);
  ASSERT_TRUE(c.ok());
  PipelineCore core(*c, kAllRouted, metrics_);
  core.Add(MakeFrame(1, TracesPayload("svc", 3, "noise")), 1, 1, kT0, &out_);
  core.Add(MakeFrame(1, TracesPayload("svc", 2, "signal")), 2, 1, kT0, &out_);
  EXPECT_TRUE(out_.empty());  // the noise waits in the batch
  core.FlushAll(&out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].items, 2);
  EXPECT_EQ(out_[0].ack_ids, (std::vector<uint64_t>{1, 2}));
}

TEST_F(PipelineCoreTest, ReconfigureFlushesFirst) {
  PipelineCore core(Config({"batch"}), kAllRouted, metrics_);
  core.Add(MakeFrame(1, TracesPayload("svc", 3)), 1, 1, kT0, &out_);
  EXPECT_TRUE(out_.empty());
  core.Reconfigure(Config({"resource"}), &out_);
  ASSERT_EQ(out_.size(), 1u);
  core.Add(MakeFrame(1, TracesPayload("svc", 3)), 2, 1, kT0, &out_);
  EXPECT_EQ(out_.size(), 2u);  // no batching any more
}

TEST(CompileProcessors, ChecksTheChainAndTheLimits) {
  auto error = [](ProcessorSettings s) { return CompileProcessors(s, 64u << 20).status().message(); };
  ProcessorSettings s;
  s.order = {"batch", "memory_limiter"};
  EXPECT_EQ(error(s), "--processor 'memory_limiter' must come first: it decides what is read at all");
  s.order = {"batch", "batch"};
  EXPECT_EQ(error(s), "--processor 'batch' is given twice");
  s.order = {"sample"};
  EXPECT_EQ(error(s), "unknown processor 'sample' (memory_limiter resource filter sampling tail_sampling batch)");
  s = {};
  s.memory_soft_mib = 600;
  EXPECT_EQ(error(s), "--memory-soft-mib 600 is above --memory-hard-mib 512");
  s = {};
  s.memory_soft_mib = s.memory_hard_mib = 32;
  EXPECT_EQ(error(s), "--memory-hard-mib 32 cannot hold one frame of --max-frame-bytes 67108864");
  s = {};
  s.drop_spans = {"name = x"};
  EXPECT_EQ(error(s), "--drop-spans 'name = x': column 6: expected an operator (== != =~ !~ < <= > >=) after 'name'");
  s = {};
  s.resource_actions = {"add:k=v"};
  EXPECT_EQ(error(s), "--resource-attr: unknown action 'add' in 'add:k=v' (insert, update, upsert, delete)");
  s = {};
  s.sampling.percent = 101;
  EXPECT_EQ(error(s), "--sample-percent must be between 0 and 100");
  EXPECT_TRUE(CompileProcessors(ProcessorSettings{}, 64u << 20).ok());
}

}  // namespace
}  // namespace telkit
