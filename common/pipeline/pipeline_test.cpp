// The whole pipeline with real components: stream files, Unix sockets and
// a FIFO. Routing and fan-out, acknowledgement only after the outputs took
// the frames, the memory limiter's backpressure, corrupt input.
#include "common/pipeline/pipeline.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "common/stream/stream_input.h"
#include "common/stream/stream_output.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace otlp = opentelemetry::proto;
using otlp::collector::logs::v1::ExportLogsServiceRequest;
using otlp::collector::metrics::v1::ExportMetricsServiceRequest;
using otlp::collector::trace::v1::ExportTraceServiceRequest;

std::string Traces(int spans, const std::string& name = "op", int first_trace = 0) {
  ExportTraceServiceRequest r;
  auto* ss = r.add_resource_spans()->add_scope_spans();
  for (int i = 0; i < spans; ++i) {
    auto* s = ss->add_spans();
    s->set_trace_id(std::string(15, '\x01') + static_cast<char>(first_trace + i + 1));
    s->set_span_id(std::string(8, '\x02'));
    s->set_name(name);
  }
  return r.SerializeAsString();
}

std::string Metrics(int points) {
  ExportMetricsServiceRequest r;
  auto* m = r.add_resource_metrics()->add_scope_metrics()->add_metrics();
  m->set_name("requests");
  for (int i = 0; i < points; ++i) m->mutable_gauge()->add_data_points()->set_as_int(i);
  return r.SerializeAsString();
}

std::string Logs(int records) {
  ExportLogsServiceRequest r;
  auto* sl = r.add_resource_logs()->add_scope_logs();
  for (int i = 0; i < records; ++i) sl->add_log_records()->mutable_body()->set_string_value("line");
  return r.SerializeAsString();
}

Frame MakeFrame(uint8_t signal, std::string payload) {
  Frame f;
  f.signal = signal;
  f.payload = std::move(payload);
  return f;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path("/tmp") / ("telkit-pipeline-test-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  void WriteStream(const std::string& path, std::vector<Frame> frames) {
    auto out = OpenStreamOutput(path);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    for (Frame& f : frames) ASSERT_TRUE((*out)->Write(std::move(f)).ok());
  }

  // Items per signal in a stream file (unknown signals: frames).
  std::map<uint8_t, int64_t> ReadItems(const std::string& path, int64_t* frames = nullptr) {
    std::map<uint8_t, int64_t> items;
    auto in = OpenStreamInput(path);
    EXPECT_TRUE(in.ok()) << in.status().ToString();
    if (!in.ok()) return items;
    for (;;) {
      auto f = (*in)->Next();
      EXPECT_TRUE(f.ok());
      if (!f.ok() || !f->has_value()) break;
      if (frames) ++*frames;
      const Frame& frame = **f;
      int64_t n = 1;
      if (frame.signal == 1) {
        ExportTraceServiceRequest r;
        EXPECT_TRUE(r.ParseFromString(frame.payload));
        n = 0;
        for (const auto& rs : r.resource_spans()) {
          for (const auto& ss : rs.scope_spans()) n += ss.spans_size();
        }
      } else if (frame.signal == 2) {
        ExportMetricsServiceRequest r;
        EXPECT_TRUE(r.ParseFromString(frame.payload));
        n = r.resource_metrics(0).scope_metrics(0).metrics(0).gauge().data_points_size();
      } else if (frame.signal == 3) {
        ExportLogsServiceRequest r;
        EXPECT_TRUE(r.ParseFromString(frame.payload));
        n = 0;
        for (const auto& rl : r.resource_logs()) {
          for (const auto& sl : rl.scope_logs()) n += sl.log_records_size();
        }
      }
      items[frame.signal] += n;
    }
    return items;
  }

  static ProcessorConfig Processors(std::vector<std::string> order, uint64_t soft_mib = 384,
                                    uint64_t hard_mib = 512) {
    ProcessorSettings s;
    s.order = std::move(order);
    s.memory_soft_mib = soft_mib;
    s.memory_hard_mib = hard_mib;
    s.batch.timeout_ms = 20;
    return *CompileProcessors(s, 1 << 20);
  }

  // Waits (bounded) until the pipeline read all its inputs, then stops it.
  static Status RunToEnd(Pipeline& p) {
    for (int i = 0; i < 3000 && !p.InputsFinished(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_TRUE(p.InputsFinished());
    return p.Shutdown(std::chrono::seconds(30));
  }

  std::filesystem::path dir_;
  MetricsRegistry registry_;
};

TEST_F(PipelineTest, RoutesBySignalAndFansOut) {
  WriteStream(Path("in1"), [] {
    std::vector<Frame> v;
    v.push_back(MakeFrame(1, Traces(3)));
    v.push_back(MakeFrame(2, Metrics(4)));
    v.push_back(MakeFrame(3, Logs(5)));
    v.push_back(MakeFrame(99, "from the future"));
    v.push_back(MakeFrame(1, Traces(2)));
    return v;
  }());
  WriteStream(Path("in2"), [] {
    std::vector<Frame> v;
    v.push_back(MakeFrame(3, Logs(1)));
    v.push_back(MakeFrame(4, "remote write"));
    return v;
  }());
  PipelineOptions o;
  o.inputs = {Path("in1"), Path("in2")};
  o.traces_out = {Path("traces-a"), Path("traces-b")};
  o.logs_out = {Path("logs")};
  o.out = {Path("rest")};
  o.processors = Processors({"memory_limiter", "batch"});
  auto p = Pipeline::Start(o, registry_);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(RunToEnd(**p).ok());

  using Items = std::map<uint8_t, int64_t>;
  int64_t frames = 0;
  EXPECT_EQ(ReadItems(Path("traces-a"), &frames), (Items{{1, 5}}));
  EXPECT_EQ(frames, 1);  // the two traces frames were batched into one
  EXPECT_EQ(ReadItems(Path("traces-b")), (Items{{1, 5}}));
  EXPECT_EQ(ReadItems(Path("logs")), (Items{{3, 6}}));
  EXPECT_EQ(ReadItems(Path("rest")), (Items{{2, 4}, {4, 1}, {99, 1}}));  // metrics, prom-rw, unknown
  EXPECT_EQ((*p)->metrics().received_items(1).Value(), 5u);
  EXPECT_EQ((*p)->memory_in_use(), 0u);
}

TEST_F(PipelineTest, NoOutputForASignalDropsItCounted) {
  WriteStream(Path("in"), [] {
    std::vector<Frame> v;
    v.push_back(MakeFrame(1, Traces(3)));
    v.push_back(MakeFrame(3, Logs(2)));
    return v;
  }());
  PipelineOptions o;
  o.inputs = {Path("in")};
  o.traces_out = {Path("traces")};
  o.processors = Processors({"batch"});
  auto p = Pipeline::Start(o, registry_);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(RunToEnd(**p).ok());
  EXPECT_EQ(ReadItems(Path("traces")), (std::map<uint8_t, int64_t>{{1, 3}}));
  EXPECT_EQ((*p)->metrics().dropped_items(3, DropReason::kNoRoute).Value(), 2u);
}

TEST_F(PipelineTest, CorruptInputFramesAreSkippedAndCounted) {
  WriteStream(Path("in"), [] {
    std::vector<Frame> v;
    for (int i = 0; i < 3; ++i) v.push_back(MakeFrame(1, Traces(2, "span" + std::to_string(i))));
    return v;
  }());
  {  // damage the payload of the second frame
    std::fstream f(Path("in"), std::ios::in | std::ios::out | std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const size_t second = bytes.find("span1");
    ASSERT_NE(second, std::string::npos);
    f.seekp(static_cast<std::streamoff>(second));
    f.put('X');
  }
  std::atomic<int> reports{0};
  PipelineOptions o;
  o.inputs = {Path("in")};
  o.out = {Path("out")};
  o.processors = Processors({"batch"});
  o.on_corruption_report = [&](const Status&) { ++reports; };
  auto p = Pipeline::Start(o, registry_);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(RunToEnd(**p).ok());
  EXPECT_EQ(ReadItems(Path("out")), (std::map<uint8_t, int64_t>{{1, 4}}));
  EXPECT_EQ(reports.load(), 1);
  EXPECT_NE(registry_.ExpositionText().find("tel_batch_corrupt_frames_total 1\n"), std::string::npos);

  // With CorruptionPolicy::kFail the pipeline fails with DATA_LOSS.
  MetricsRegistry registry;
  o.on_corruption = CorruptionPolicy::kFail;
  o.out = {Path("out2")};
  auto failing = Pipeline::Start(o, registry);
  ASSERT_TRUE(failing.ok());
  Status s = RunToEnd(**failing);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
}

TEST_F(PipelineTest, SocketInputIsAcknowledgedOnlyOnceTheOutputTookTheFrames) {
  // The output is a FIFO nobody reads yet: writes block once its buffer is full.
  const std::string fifo = Path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // lets the pipeline open it for writing
  ASSERT_GE(reader, 0);
  PipelineOptions o;
  o.inputs = {"listen:unix:" + Path("in.sock")};
  o.out = {fifo};
  o.processors = Processors({"batch"});
  auto p = Pipeline::Start(o, registry_);
  ASSERT_TRUE(p.ok()) << p.status().ToString();

  auto upstream = OpenStreamOutput("unix:" + Path("in.sock"));
  ASSERT_TRUE(upstream.ok());
  const std::string big_name(2000, 'n');
  for (int i = 0; i < 100; ++i) ASSERT_TRUE((*upstream)->Write(MakeFrame(1, Traces(20, big_name, i * 20))).ok());
  // 4 MB of spans cannot pass a 64 KiB pipe buffer: not everything is acknowledged.
  EXPECT_EQ((*upstream)->Drain(300).code(), StatusCode::kDeadlineExceeded);
  EXPECT_GT((*upstream)->Stats().unacked_bytes, 0u);

  // Read the FIFO: everything flows, and every frame gets acknowledged.
  ::fcntl(reader, F_SETFL, 0);
  std::string received;
  std::thread drain([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(reader, buf, sizeof buf)) > 0) received.append(buf, static_cast<size_t>(n));
  });
  EXPECT_TRUE((*upstream)->Drain(30000).ok());
  EXPECT_EQ((*upstream)->Stats().frames_acked, 100u);
  upstream->reset();
  ASSERT_TRUE((*p)->Shutdown(std::chrono::seconds(30)).ok());
  p->reset();  // closes the FIFO's write end: the reader sees EOF
  drain.join();
  ::close(reader);
  std::ofstream(Path("copy"), std::ios::binary) << received;
  EXPECT_EQ(ReadItems(Path("copy")), (std::map<uint8_t, int64_t>{{1, 2000}}));
}

TEST_F(PipelineTest, MemoryLimiterStopsReadingAndNeverHoldsMoreThanTheHardLimit) {
  const std::string fifo = Path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  ProcessorSettings s;
  s.order = {"memory_limiter", "batch"};
  s.batch.timeout_ms = 1;
  ProcessorConfig c = *CompileProcessors(s, 1 << 20);
  c.memory_soft_bytes = 256 << 10;  // tests may go below a MiB
  c.memory_hard_bytes = 512 << 10;
  PipelineOptions o;
  o.inputs = {"listen:unix:" + Path("in.sock")};
  o.out = {fifo};
  o.processors = c;
  o.max_frame_bytes = 256 << 10;
  auto p = Pipeline::Start(o, registry_);
  ASSERT_TRUE(p.ok()) << p.status().ToString();

  auto upstream = OpenStreamOutput("unix:" + Path("in.sock"));
  ASSERT_TRUE(upstream.ok());
  const std::string big_name(5000, 'n');
  for (int i = 0; i < 400; ++i) ASSERT_TRUE((*upstream)->Write(MakeFrame(1, Traces(10, big_name, i * 10))).ok());
  // 20 MB against a 512 KiB hard limit: the readers end up waiting.
  bool paused = false;
  for (int i = 0; i < 3000 && !paused; ++i) {
    paused = registry_.ExpositionText().find("tel_batch_inputs_paused 1\n") != std::string::npos;
    if (!paused) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(paused);
  for (int i = 0; i < 20; ++i) {
    EXPECT_LE((*p)->memory_in_use(), 512u << 10);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::fcntl(reader, F_SETFL, 0);
  std::string received;
  std::thread drain([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(reader, buf, sizeof buf)) > 0) received.append(buf, static_cast<size_t>(n));
  });
  EXPECT_TRUE((*upstream)->Drain(60000).ok());
  upstream->reset();
  ASSERT_TRUE((*p)->Shutdown(std::chrono::seconds(30)).ok());
  EXPECT_EQ((*p)->memory_in_use(), 0u);
  p->reset();
  drain.join();
  ::close(reader);
  std::ofstream(Path("copy"), std::ios::binary) << received;
  EXPECT_EQ(ReadItems(Path("copy")), (std::map<uint8_t, int64_t>{{1, 4000}}));
}

TEST_F(PipelineTest, SocketOutputToARestartingDownstreamLosesNothing) {
  PipelineOptions o;
  o.inputs = {Path("in")};
  o.out = {"unix:" + Path("down.sock")};
  o.processors = Processors({"resource", "batch"});
  WriteStream(Path("in"), [] {
    std::vector<Frame> v;
    for (int i = 0; i < 10; ++i) v.push_back(MakeFrame(3, Logs(3)));
    return v;
  }());
  auto down = OpenStreamInput("listen:unix:" + Path("down.sock"));
  ASSERT_TRUE(down.ok());
  auto p = Pipeline::Start(o, registry_);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  // The first downstream reads one frame and dies without acknowledging it.
  auto first = (*down)->Next();
  ASSERT_TRUE(first.ok() && first->has_value());
  down->reset();
  auto again = OpenStreamInput("listen:unix:" + Path("down.sock"));
  ASSERT_TRUE(again.ok());
  int64_t logs = 0;
  std::thread reader([&] {
    while (logs < 30) {
      auto f = (*again)->Next();
      if (!f.ok() || !f->has_value()) return;
      ExportLogsServiceRequest r;
      ASSERT_TRUE(r.ParseFromString((**f).payload));
      for (const auto& rl : r.resource_logs()) {
        for (const auto& sl : rl.scope_logs()) logs += sl.log_records_size();
      }
      (*again)->Acknowledge(**f);
    }
  });
  EXPECT_TRUE(RunToEnd(**p).ok());  // waits for the downstream's acks
  reader.join();
  EXPECT_EQ(logs, 30);
}

TEST_F(PipelineTest, BadOutputsAndInputsFailToStart) {
  PipelineOptions o;
  o.inputs = {Path("missing")};
  o.out = {Path("out")};
  auto p = Pipeline::Start(o, registry_);
  EXPECT_EQ(p.status().code(), StatusCode::kNotFound);
  EXPECT_NE(p.status().message().find("input '" + Path("missing") + "'"), std::string::npos);
  o.inputs = {"-"};
  o.out = {"otlp+ftp://host:1"};
  EXPECT_EQ(Pipeline::Start(o, registry_).status().message(),
            "output 'otlp+ftp://host:1': unknown scheme 'otlp+ftp' (otlp+grpc, otlp+grpcs, otlp+http, otlp+https)");
  o.out = {};
  EXPECT_EQ(Pipeline::Start(o, registry_).status().code(), StatusCode::kInvalidArgument);
}

TEST(ParseOutputTarget, OtlpForms) {
  OtlpExporterOptions defaults;
  defaults.gzip = true;
  auto t = ParseOutputTarget("otlp+grpc://collector:4317", defaults);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->kind, OutputTarget::Kind::kOtlp);
  EXPECT_EQ(t->exporter.endpoint, "http://collector:4317");
  EXPECT_EQ(t->exporter.protocol, OtlpProtocol::kGrpc);
  EXPECT_TRUE(t->exporter.gzip);
  t = ParseOutputTarget("otlp+https://collector:4318/prefix", defaults);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->exporter.endpoint, "https://collector:4318/prefix");
  EXPECT_EQ(t->exporter.protocol, OtlpProtocol::kHttpProtobuf);
  t = ParseOutputTarget("unix:/run/x.sock", defaults);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->kind, OutputTarget::Kind::kStream);
  EXPECT_FALSE(ParseOutputTarget("otlp+grpc://", defaults).ok());
  EXPECT_FALSE(ParseOutputTarget("otlp+grpc:host", defaults).ok());
}

TEST(ParseExportHeaders, KeyEqualsValue) {
  auto h = ParseExportHeaders({"authorization=Bearer a=b", "x-empty="});
  ASSERT_TRUE(h.ok()) << h.status().message();
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0], (std::pair<std::string, std::string>{"authorization", "Bearer a=b"}));
  EXPECT_EQ((*h)[1], (std::pair<std::string, std::string>{"x-empty", ""}));
  EXPECT_EQ(ParseExportHeaders({"novalue"}).status().message(), "--export-header 'novalue' is not K=V");
  EXPECT_EQ(ParseExportHeaders({"=v"}).status().code(), StatusCode::kInvalidArgument);
}

TEST(ValidateOutputSpecs, EveryRouteIsChecked) {
  PipelineOptions o;
  o.out = {"-"};
  EXPECT_TRUE(ValidateOutputSpecs(o).ok());
  o.logs_out = {"otlp+grpc:host"};
  EXPECT_FALSE(ValidateOutputSpecs(o).ok());
}

}  // namespace
}  // namespace telkit
