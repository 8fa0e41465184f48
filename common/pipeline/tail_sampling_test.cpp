// tail_sampling through PipelineCore with explicit times: each policy, the
// decision window, what completes which input frame, the rate limit and the
// bound on held traces.
#include <gtest/gtest.h>

#include "common/pipeline/pipeline_core.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace otlp = opentelemetry::proto;
using otlp::collector::trace::v1::ExportTraceServiceRequest;

struct SpanSpec {
  int trace;              // trace id byte
  int span;               // span id byte
  bool error = false;
  uint64_t start_ms = 0, end_ms = 1;
  std::string route = "/";
};

std::string Payload(const std::vector<SpanSpec>& spans) {
  ExportTraceServiceRequest r;
  auto* rs = r.add_resource_spans();
  auto* a = rs->mutable_resource()->add_attributes();
  a->set_key("service.name");
  a->mutable_value()->set_string_value("shop");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("lib");
  for (const SpanSpec& s : spans) {
    auto* sp = ss->add_spans();
    sp->set_trace_id(std::string(16, static_cast<char>(s.trace)));
    sp->set_span_id(std::string(8, static_cast<char>(s.span)));
    sp->set_name("op");
    sp->set_start_time_unix_nano(1'700'000'000'000'000'000ull + s.start_ms * 1'000'000);
    sp->set_end_time_unix_nano(1'700'000'000'000'000'000ull + s.end_ms * 1'000'000);
    if (s.error) sp->mutable_status()->set_code(otlp::trace::v1::Status::STATUS_CODE_ERROR);
    auto* attr = sp->add_attributes();
    attr->set_key("http.route");
    attr->mutable_value()->set_string_value(s.route);
  }
  return r.SerializeAsString();
}

Frame TracesFrame(const std::vector<SpanSpec>& spans) {
  Frame f;
  f.signal = 1;
  f.payload = Payload(spans);
  f.time_unix_nano = 1000;
  return f;
}

ProcessorConfig TailConfig(std::function<void(ProcessorSettings&)> edit, bool batch = false) {
  ProcessorSettings s;
  s.order = batch ? std::vector<std::string>{"tail_sampling", "batch"} : std::vector<std::string>{"tail_sampling"};
  s.tail_decision_wait_ms = 1000;
  edit(s);
  Result<ProcessorConfig> c = CompileProcessors(s, 1 << 20);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

// Span id bytes of every span in the delivered dispatches.
std::set<int> SpanIds(const std::vector<Dispatch>& ds) {
  std::set<int> ids;
  for (const Dispatch& d : ds) {
    if (!d.deliver || d.payload->empty()) continue;
    ExportTraceServiceRequest r;
    EXPECT_TRUE(r.ParseFromString(*d.payload));
    for (const auto& rs : r.resource_spans())
      for (const auto& ss : rs.scope_spans())
        for (const auto& s : ss.spans()) ids.insert(static_cast<unsigned char>(s.span_id()[0]));
  }
  return ids;
}

std::vector<uint64_t> Acks(const std::vector<Dispatch>& ds) {
  std::vector<uint64_t> out;
  for (const Dispatch& d : ds) out.insert(out.end(), d.ack_ids.begin(), d.ack_ids.end());
  return out;
}

constexpr std::array<bool, kSignalSlots> kAllRouted = {true, true, true, true, true};
const PipelineClock::time_point kT0{};
using std::chrono::milliseconds;

class TailSamplingTest : public ::testing::Test {
 protected:
  double Metric(const std::string& series) {
    const std::string text = registry_.ExpositionText();
    const size_t at = text.find("\n" + series + " ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
  }
  MetricsRegistry registry_;
  PipelineMetrics metrics_{registry_};
};

TEST_F(TailSamplingTest, HoldsTracesForTheWindowThenKeepsErrorsLatencyAndConditions) {
  PipelineCore core(TailConfig([](ProcessorSettings& s) {
                      s.tail_latency_ms = 500;
                      s.tail_keep_spans = {"attr.http.route == /checkout"};
                    }),
                    kAllRouted, metrics_);
  std::vector<Dispatch> out;
  core.Add(TracesFrame({{1, 11}, {1, 12, true},                 // trace 1: an error
                        {2, 21, false, 0, 900},                 // trace 2: slow
                        {3, 31, false, 0, 5, "/checkout"},      // trace 3: the condition
                        {4, 41}, {4, 42}}),                     // trace 4: nothing
           7, 100, kT0, &out);
  EXPECT_TRUE(out.empty());  // held: not even acknowledged
  EXPECT_EQ(core.tail_held_traces(), 4);
  EXPECT_EQ(core.tail_held_spans(), 6);
  EXPECT_EQ(*core.NextDeadline(), kT0 + milliseconds(1000));
  core.FlushExpired(kT0 + milliseconds(999), &out);
  EXPECT_TRUE(out.empty());
  core.FlushExpired(kT0 + milliseconds(1000), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].deliver);
  EXPECT_EQ(out[0].items, 4);
  EXPECT_EQ(out[0].ack_ids, std::vector<uint64_t>{7});
  EXPECT_EQ(out[0].held_bytes, 100u);
  EXPECT_EQ(SpanIds(out), (std::set<int>{11, 12, 21, 31}));
  EXPECT_EQ(core.tail_held_traces(), 0);
  EXPECT_FALSE(core.NextDeadline());
  EXPECT_EQ(Metric("tel_batch_tail_decisions_total{decision=\"error\"}"), 1);
  EXPECT_EQ(Metric("tel_batch_tail_decisions_total{decision=\"latency\"}"), 1);
  EXPECT_EQ(Metric("tel_batch_tail_decisions_total{decision=\"condition\"}"), 1);
  EXPECT_EQ(Metric("tel_batch_tail_decisions_total{decision=\"dropped\"}"), 1);
  EXPECT_EQ(Metric("tel_batch_dropped_items_total{reason=\"tail_sampling\",signal=\"traces\"}"), 2);
}

TEST_F(TailSamplingTest, ATraceSpreadOverFramesIsDecidedOnceAndEachFrameCompletesAfterItsLastTrace) {
  PipelineCore core(TailConfig([](ProcessorSettings&) {}), kAllRouted, metrics_);
  std::vector<Dispatch> out;
  core.Add(TracesFrame({{1, 11, true}, {2, 21}}), 1, 10, kT0, &out);
  core.Add(TracesFrame({{2, 22}, {1, 13}}), 2, 20, kT0 + milliseconds(600), &out);  // trace 1 gets a late span
  EXPECT_TRUE(out.empty());
  core.FlushExpired(kT0 + milliseconds(1000), &out);  // traces 1 and 2 (both started at 0)
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(SpanIds(out), (std::set<int>{11, 13}));  // the whole error trace, from both frames
  EXPECT_EQ(Acks(out), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(out[0].held_bytes, 30u);
}

TEST_F(TailSamplingTest, AFrameWhoseLastTraceIsDroppedCompletesBehindItsKeptSpans) {
  PipelineCore core(TailConfig([](ProcessorSettings&) {}), kAllRouted, metrics_);
  std::vector<Dispatch> out;
  core.Add(TracesFrame({{1, 11, true}}), 1, 10, kT0, &out);
  core.Add(TracesFrame({{1, 12}, {2, 21}}), 2, 10, kT0 + milliseconds(500), &out);  // trace 2 starts later
  core.FlushExpired(kT0 + milliseconds(1000), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(SpanIds(out), (std::set<int>{11, 12}));
  EXPECT_EQ(Acks(out), std::vector<uint64_t>{1});  // frame 2 still carries trace 2
  out.clear();
  core.FlushExpired(kT0 + milliseconds(1500), &out);  // trace 2: dropped
  ASSERT_EQ(out.size(), 1u);
  // Frame 2's span 12 left in the first dispatch: its completion is a barrier
  // (an empty delivery) that the outputs take only after that dispatch.
  EXPECT_TRUE(out[0].deliver);
  EXPECT_EQ(out[0].items, 0);
  EXPECT_TRUE(out[0].payload->empty());
  EXPECT_EQ(out[0].ack_ids, std::vector<uint64_t>{2});
}

TEST_F(TailSamplingTest, TheRestIsKeptUpToTheRateAndTheHeldTracesAreBounded) {
  PipelineCore core(TailConfig([](ProcessorSettings& s) {
                      s.tail_rate_per_second = 2;
                      s.tail_max_traces = 3;
                    }),
                    kAllRouted, metrics_);
  std::vector<Dispatch> out;
  core.Add(TracesFrame({{1, 11}, {2, 21}, {3, 31}}), 1, 10, kT0, &out);
  EXPECT_TRUE(out.empty());
  core.Add(TracesFrame({{4, 41}}), 2, 10, kT0 + milliseconds(100), &out);  // a 4th: trace 1 is decided early
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(SpanIds(out), std::set<int>{11});  // by the rate (2 tokens to start with)
  EXPECT_EQ(core.tail_held_traces(), 3);
  out.clear();
  core.FlushExpired(kT0 + milliseconds(1000), &out);  // traces 2 and 3: 1 + 0.9 s * 2, capped at 2 tokens
  EXPECT_EQ(SpanIds(out), (std::set<int>{21, 31}));
  EXPECT_EQ(Acks(out), std::vector<uint64_t>{1});
  out.clear();
  core.FlushExpired(kT0 + milliseconds(1100), &out);  // trace 4: 0.1 s refilled 0.2 token: dropped
  EXPECT_TRUE(SpanIds(out).empty());
  EXPECT_EQ(Acks(out), std::vector<uint64_t>{2});
  EXPECT_EQ(Metric("tel_batch_tail_decisions_total{decision=\"rate\"}"), 3);
  EXPECT_EQ(Metric("tel_batch_tail_decisions_total{decision=\"dropped\"}"), 1);
}

TEST_F(TailSamplingTest, KeptSpansJoinTheBatchAndFlushAllDecidesEverything) {
  PipelineCore core(TailConfig([](ProcessorSettings&) {}, /*batch=*/true), kAllRouted, metrics_);
  std::vector<Dispatch> out;
  core.Add(TracesFrame({{1, 11, true}, {2, 21}}), 1, 10, kT0, &out);
  core.Add(TracesFrame({{3, 31, true}}), 2, 10, kT0 + milliseconds(900), &out);
  core.FlushExpired(kT0 + milliseconds(1000), &out);  // trace 1 kept into the batch, trace 2 dropped
  EXPECT_TRUE(out.empty());                           // the batch waits for its timeout (200 ms)
  core.FlushAll(&out);                                // trace 3 decided too, one batch
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(SpanIds(out), (std::set<int>{11, 31}));
  EXPECT_EQ(Acks(out), (std::vector<uint64_t>{1, 2}));
}

TEST(TailSamplingConfig, MustComeRightBeforeBatchAndChecksItsSettings) {
  ProcessorSettings s;
  s.order = {"tail_sampling", "filter", "batch"};
  EXPECT_EQ(CompileProcessors(s, 1 << 20).status().code(), StatusCode::kInvalidArgument);
  s.order = {"filter", "tail_sampling", "batch"};
  EXPECT_TRUE(CompileProcessors(s, 1 << 20).ok());
  s.tail_keep_spans = {"attr.x = 1"};
  auto bad = CompileProcessors(s, 1 << 20);
  EXPECT_NE(bad.status().message().find("--tail-keep-spans"), std::string::npos) << bad.status().ToString();
}

}  // namespace
}  // namespace telkit
