#include "common/recv/otlp_receiver.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/codec/gzip.h"
#include "common/recv/bearer_token.h"
#include "common/recv/recv_testing.h"
#include "common/recv/rpc_status.h"
#include "common/stream/stream_input.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

using testing::SampleRequest;
using testing::SampleRequestJson;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "recv_test_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::string path_;
};

std::vector<Frame> ReadFrames(const std::string& path) {
  std::vector<Frame> frames;
  auto input = OpenStreamInput(path);
  EXPECT_TRUE(input.ok()) << input.status().ToString();
  if (!input.ok()) return frames;
  for (int i = 0; i < 100000; ++i) {
    auto next = (*input)->Next();
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    if (!next.ok() || !next->has_value()) break;
    frames.push_back(std::move(**next));
  }
  return frames;
}

// The value of one series in the exposition text; -1 when absent.
double Metric(const MetricsRegistry& registry, const std::string& series) {
  std::string text = registry.ExpositionText();
  size_t pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(text.substr(pos + series.size() + 2));
}

class ReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override { signal(SIGPIPE, SIG_IGN); }

  void Open(OtlpReceiverOptions options = {}) {
    auto output = OpenStreamOutput(out_path_);
    ASSERT_TRUE(output.ok()) << output.status().ToString();
    receiver_ = std::make_unique<OtlpReceiver>(options, std::move(*output), registry_);
  }

  ExportOutcome Send(std::string body, Signal signal = Signal::kTraces, PayloadFormat format = PayloadFormat::kProtobuf,
                     ContentEncoding encoding = ContentEncoding::kIdentity) {
    ExportRequest request;
    request.signal = signal;
    request.transport = Transport::kHttp;
    request.format = format;
    request.encoding = encoding;
    request.body = std::move(body);
    return receiver_->Export(std::move(request));
  }

  std::vector<Frame> ShutdownAndRead() {
    EXPECT_TRUE(receiver_->Shutdown(10s).ok());
    return ReadFrames(out_path_);
  }

  TempDir dir_;
  std::string out_path_ = dir_.File("out.tks");
  MetricsRegistry registry_;
  std::unique_ptr<OtlpReceiver> receiver_;
};

TEST_F(ReceiverTest, ForwardsValidProtobufUnchanged) {
  Open();
  std::string body = SampleRequest(Signal::kTraces, 5);
  ExportOutcome outcome = Send(body);
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.ToString();
  EXPECT_EQ(outcome.accepted_items, 5);
  EXPECT_EQ(outcome.rejected_items, 0);
  std::vector<Frame> frames = ShutdownAndRead();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].signal, static_cast<uint8_t>(Signal::kTraces));
  EXPECT_EQ(frames[0].payload, body);
  EXPECT_GT(frames[0].time_unix_nano, 0u);
  EXPECT_EQ(Metric(registry_, "otlp_recv_received_items_total{protocol=\"http\",signal=\"traces\"}"), 5);
  EXPECT_EQ(Metric(registry_, "otlp_recv_accepted_requests_total{protocol=\"http\",signal=\"traces\"}"), 1);
  EXPECT_EQ(Metric(registry_, "otlp_recv_received_bytes_total{protocol=\"http\"}"), body.size());
  EXPECT_EQ(Metric(registry_, "otlp_recv_written_frames_total"), 1);
}

TEST_F(ReceiverTest, AllSignals) {
  Open();
  for (Signal signal : {Signal::kTraces, Signal::kMetrics, Signal::kLogs}) {
    ExportOutcome outcome = Send(SampleRequest(signal, 3), signal);
    EXPECT_TRUE(outcome.status.ok()) << SignalName(signal) << ": " << outcome.status.ToString();
    EXPECT_EQ(outcome.accepted_items, 3);
  }
  std::vector<Frame> frames = ShutdownAndRead();
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[2].signal, static_cast<uint8_t>(Signal::kLogs));
}

TEST_F(ReceiverTest, ConvertsJsonToProtobuf) {
  Open();
  ExportOutcome outcome = Send(SampleRequestJson(Signal::kTraces, 4), Signal::kTraces, PayloadFormat::kJson);
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.ToString();
  EXPECT_EQ(outcome.accepted_items, 4);
  std::vector<Frame> frames = ShutdownAndRead();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, SampleRequest(Signal::kTraces, 4));
}

TEST_F(ReceiverTest, DecompressesGzip) {
  Open();
  std::string body = SampleRequest(Signal::kLogs, 7);
  ExportOutcome outcome = Send(GzipCompress(body), Signal::kLogs, PayloadFormat::kProtobuf, ContentEncoding::kGzip);
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.ToString();
  std::vector<Frame> frames = ShutdownAndRead();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, body);
}

TEST_F(ReceiverTest, RefusesGzipBomb) {
  OtlpReceiverOptions options;
  options.max_request_bytes = 1 << 20;
  options.max_decompressed_bytes = 2 << 20;
  Open(options);
  std::string bomb = GzipCompress(std::string(64 << 20, '\0'), 9);
  ASSERT_LT(bomb.size(), options.max_request_bytes);
  ExportOutcome outcome = Send(bomb, Signal::kTraces, PayloadFormat::kProtobuf, ContentEncoding::kGzip);
  EXPECT_EQ(outcome.status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(outcome.reason, RefuseReason::kDecompressedTooLarge);
  EXPECT_EQ(HttpStatusFor(outcome.reason), 413);
  EXPECT_EQ(Metric(registry_, "otlp_recv_refused_requests_total{protocol=\"http\",reason=\"decompressed_too_large\"}"),
            1);
}

TEST_F(ReceiverTest, RefusesCorruptGzip) {
  Open();
  std::string gz = GzipCompress(SampleRequest(Signal::kTraces, 2));
  gz[gz.size() / 2] ^= 0x55;
  ExportOutcome outcome = Send(gz, Signal::kTraces, PayloadFormat::kProtobuf, ContentEncoding::kGzip);
  EXPECT_EQ(outcome.status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(outcome.reason, RefuseReason::kBadData);
  EXPECT_NE(outcome.status.message().find("invalid gzip body"), std::string::npos) << outcome.status.message();
}

TEST_F(ReceiverTest, RefusesTruncatedProtobuf) {
  Open();
  std::string body = SampleRequest(Signal::kTraces, 3);
  ExportOutcome outcome = Send(body.substr(0, body.size() - 7));
  EXPECT_EQ(outcome.status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(outcome.reason, RefuseReason::kBadData);
  EXPECT_EQ(HttpStatusFor(outcome.reason), 400);
  EXPECT_NE(outcome.status.message().find("malformed protobuf"), std::string::npos) << outcome.status.message();
  EXPECT_EQ(Metric(registry_, "otlp_recv_refused_requests_total{protocol=\"http\",reason=\"bad_data\"}"), 1);
  EXPECT_TRUE(ShutdownAndRead().empty());
}

TEST_F(ReceiverTest, RefusesInvalidJson) {
  Open();
  ExportOutcome outcome = Send("{\"resourceSpans\": [", Signal::kTraces, PayloadFormat::kJson);
  EXPECT_EQ(outcome.status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(outcome.reason, RefuseReason::kBadData);
  EXPECT_NE(outcome.status.message().find("invalid OTLP/JSON traces request"), std::string::npos);
}

TEST_F(ReceiverTest, RefusesBodyOverLimit) {
  OtlpReceiverOptions options;
  options.max_request_bytes = 1000;
  Open(options);
  ExportOutcome outcome = Send(SampleRequest(Signal::kTraces, 1, 0, 2000));
  EXPECT_EQ(outcome.status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(outcome.reason, RefuseReason::kTooLarge);
  EXPECT_NE(outcome.status.message().find("exceeds the limit of 1000 bytes"), std::string::npos);
}

TEST_F(ReceiverTest, RefusesTooManyItems) {
  OtlpReceiverOptions options;
  options.max_items_per_request = 10;
  Open(options);
  EXPECT_TRUE(Send(SampleRequest(Signal::kTraces, 10)).status.ok());
  ExportOutcome outcome = Send(SampleRequest(Signal::kTraces, 11));
  EXPECT_EQ(outcome.status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(outcome.reason, RefuseReason::kTooManyItems);
  EXPECT_EQ(outcome.status.message(), "request holds 11 spans, more than the limit of 10");
}

TEST_F(ReceiverTest, PartialSuccessDropsInvalidItems) {
  Open();
  ExportOutcome outcome = Send(SampleRequest(Signal::kTraces, 3, 2));
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.ToString();
  EXPECT_EQ(outcome.accepted_items, 3);
  EXPECT_EQ(outcome.rejected_items, 2);
  EXPECT_NE(outcome.rejected_message.find("2 invalid spans rejected"), std::string::npos) << outcome.rejected_message;
  std::vector<Frame> frames = ShutdownAndRead();
  ASSERT_EQ(frames.size(), 1u);
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest forwarded;
  ASSERT_TRUE(forwarded.ParseFromString(frames[0].payload));
  ASSERT_EQ(forwarded.resource_spans(0).scope_spans(0).spans_size(), 3);
  EXPECT_EQ(Metric(registry_, "otlp_recv_rejected_items_total{protocol=\"http\",signal=\"traces\"}"), 2);
  EXPECT_EQ(Metric(registry_, "otlp_recv_received_items_total{protocol=\"http\",signal=\"traces\"}"), 3);
}

TEST_F(ReceiverTest, RequestWithoutValidItemsIsAnsweredButNotForwarded) {
  Open();
  ExportOutcome all_invalid = Send(SampleRequest(Signal::kMetrics, 0, 4), Signal::kMetrics);
  ASSERT_TRUE(all_invalid.status.ok());
  EXPECT_EQ(all_invalid.rejected_items, 4);
  ExportOutcome empty = Send("", Signal::kLogs);
  ASSERT_TRUE(empty.status.ok());
  EXPECT_EQ(empty.accepted_items, 0);
  EXPECT_TRUE(ShutdownAndRead().empty());
}

TEST_F(ReceiverTest, FullQueueRefusesWithRetryableStatus) {
  // An output socket with no peer: Write() blocks, so frames stay queued.
  StreamOutputOptions output_options;
  output_options.max_unacked_bytes = 1;  // the second frame already blocks
  auto output = OpenStreamOutput("listen:unix:" + dir_.File("nobody.sock"), output_options);
  ASSERT_TRUE(output.ok()) << output.status().ToString();
  OtlpReceiverOptions options;
  options.max_request_bytes = 64 << 10;
  options.max_decompressed_bytes = 64 << 10;
  options.queue_capacity_bytes = 64 << 10;
  options.retry_after_seconds = 3;
  receiver_ = std::make_unique<OtlpReceiver>(options, std::move(*output), registry_);
  const std::string body = SampleRequest(Signal::kTraces, 1, 0, 10 << 10);
  ExportOutcome outcome;
  int accepted = 0;
  for (int i = 0; i < 100; ++i) {
    outcome = Send(body);
    if (!outcome.status.ok()) break;
    ++accepted;
  }
  EXPECT_GE(accepted, 5);
  EXPECT_LE(accepted, 8);
  EXPECT_EQ(outcome.status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(outcome.reason, RefuseReason::kQueueFull);
  EXPECT_EQ(HttpStatusFor(outcome.reason), 503);
  EXPECT_EQ(outcome.retry_after_seconds, 3);
  EXPECT_EQ(Metric(registry_, "otlp_recv_refused_requests_total{protocol=\"http\",reason=\"queue_full\"}"), 1);
  EXPECT_GT(Metric(registry_, "otlp_recv_queue_bytes"), 0);
  EXPECT_FALSE(receiver_->Idle());  // frames queued
  // Nobody ever reads: shutdown gives up at its deadline and says so.
  Status shutdown = receiver_->Shutdown(200ms);
  EXPECT_EQ(shutdown.code(), StatusCode::kDeadlineExceeded) << shutdown.ToString();
  EXPECT_GT(Metric(registry_, "otlp_recv_dropped_frames_total"), 0);
}

// --queue-wait: a request that finds the queue full waits for room.
class QueueWaitTest : public ReceiverTest {
 protected:
  // An output socket whose peer is not there yet: frames stay queued.
  void OpenWithWait(std::chrono::milliseconds wait) {
    StreamOutputOptions output_options;
    output_options.max_unacked_bytes = 1;
    auto output = OpenStreamOutput("listen:unix:" + dir_.File("late.sock"), output_options);
    ASSERT_TRUE(output.ok()) << output.status().ToString();
    OtlpReceiverOptions options;
    options.max_request_bytes = 64 << 10;
    options.max_decompressed_bytes = 64 << 10;
    options.queue_capacity_bytes = 64 << 10;
    options.queue_wait = wait;
    receiver_ = std::make_unique<OtlpReceiver>(options, std::move(*output), registry_);
  }
};

TEST_F(QueueWaitTest, RefusesWithQueueFullWhenTheWaitRunsOut) {
  OpenWithWait(150ms);
  const std::string body = SampleRequest(Signal::kTraces, 1, 0, 10 << 10);
  for (int i = 0; i < 100 && Metric(registry_, "otlp_recv_queue_bytes") + 2 * body.size() <= (64 << 10); ++i) {
    ASSERT_TRUE(Send(body).status.ok());
  }
  // Fill up to the brim: the refusing Send is the one that waited.
  ExportOutcome outcome;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    start = std::chrono::steady_clock::now();
    outcome = Send(body);
    if (!outcome.status.ok()) break;
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(outcome.reason, RefuseReason::kQueueFull);
  EXPECT_EQ(HttpStatusFor(outcome.reason), 503);
  EXPECT_GE(waited, 140ms);
  EXPECT_LT(waited, 5s);
  EXPECT_EQ(Metric(registry_, "otlp_recv_refused_requests_total{protocol=\"http\",reason=\"queue_full\"}"), 1);
  EXPECT_EQ(receiver_->Shutdown(100ms).code(), StatusCode::kDeadlineExceeded);
}

TEST_F(QueueWaitTest, HoldsTheRequestUntilTheOutputMakesRoom) {
  OpenWithWait(10s);
  const std::string body = SampleRequest(Signal::kTraces, 1, 0, 10 << 10);
  // Fill the queue below the point where a Send would wait.
  for (int i = 0; i < 100 && Metric(registry_, "otlp_recv_queue_bytes") + 2 * body.size() <= (64 << 10); ++i) {
    ASSERT_TRUE(Send(body).status.ok());
  }
  // The peer arrives after 200 ms and reads (acknowledging) everything.
  std::atomic<int> read{0};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    std::this_thread::sleep_for(200ms);
    auto input = OpenStreamInput("unix:" + dir_.File("late.sock"));
    ASSERT_TRUE(input.ok()) << input.status().ToString();
    // Reads until told to stop (the writer keeps the connection open).
    std::thread canceller([&] {
      while (!stop.load()) std::this_thread::sleep_for(10ms);
      (*input)->Cancel();
    });
    for (int i = 0; i < 1000; ++i) {
      auto next = (*input)->Next();
      if (!next.ok() || !next->has_value()) break;
      (*input)->Acknowledge(**next);
      ++read;
    }
    canceller.join();
  });
  const auto start = std::chrono::steady_clock::now();
  int sent_after = 0;
  for (int i = 0; i < 3; ++i) {
    ExportOutcome outcome = Send(body);  // the first of these waits for the reader
    ASSERT_TRUE(outcome.status.ok()) << outcome.status.ToString();
    ++sent_after;
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_EQ(Metric(registry_, "otlp_recv_refused_requests_total{protocol=\"http\",reason=\"queue_full\"}"), 0);
  EXPECT_TRUE(receiver_->Shutdown(5s).ok());
  stop = true;
  reader.join();
  EXPECT_GE(read.load(), sent_after);
}

TEST_F(QueueWaitTest, DrainEndsTheWaitAtOnce) {
  OpenWithWait(30s);
  const std::string body = SampleRequest(Signal::kTraces, 1, 0, 10 << 10);
  for (int i = 0; i < 100 && Metric(registry_, "otlp_recv_queue_bytes") + 2 * body.size() <= (64 << 10); ++i) {
    ASSERT_TRUE(Send(body).status.ok());
  }
  std::thread drainer([&] {
    std::this_thread::sleep_for(100ms);
    receiver_->StartDrain();
  });
  const auto start = std::chrono::steady_clock::now();
  ExportOutcome outcome;
  for (int i = 0; i < 3; ++i) {
    outcome = Send(body);
    if (!outcome.status.ok()) break;
  }
  drainer.join();
  EXPECT_EQ(outcome.status.code(), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(receiver_->Shutdown(100ms).code(), StatusCode::kDeadlineExceeded);
}

TEST(ReceiverOptionsTest, NegativeQueueWaitIsInvalid) {
  OtlpReceiverOptions options;
  options.queue_wait = std::chrono::milliseconds(-1);
  EXPECT_EQ(ValidateReceiverOptions(options).code(), StatusCode::kInvalidArgument);
}

TEST_F(ReceiverTest, DrainingRefusesNewRequests) {
  Open();
  EXPECT_TRUE(receiver_->Ready());
  receiver_->StartDrain();
  EXPECT_FALSE(receiver_->Ready());
  ExportOutcome outcome = Send(SampleRequest(Signal::kTraces, 1));
  EXPECT_EQ(outcome.status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(outcome.reason, RefuseReason::kDraining);
  EXPECT_GT(outcome.retry_after_seconds, 0);
}

TEST_F(ReceiverTest, ShutdownWritesEverythingQueuedAndWaitsForRequestsInFlight) {
  Open();
  std::optional<OtlpReceiver::InFlight> in_flight(receiver_->TrackRequest(Transport::kGrpc));
  EXPECT_EQ(Metric(registry_, "otlp_recv_in_flight_requests{protocol=\"grpc\"}"), 1);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(Send(SampleRequest(Signal::kTraces, 2)).status.ok());
  std::thread finisher([&] {
    std::this_thread::sleep_for(50ms);
    in_flight.reset();
  });
  EXPECT_TRUE(receiver_->Shutdown(30s).ok());
  finisher.join();
  EXPECT_EQ(Metric(registry_, "otlp_recv_in_flight_requests{protocol=\"grpc\"}"), 0);
  EXPECT_EQ(ReadFrames(out_path_).size(), 200u);
  EXPECT_TRUE(receiver_->Shutdown(1s).ok());  // idempotent
}

TEST_F(ReceiverTest, IdleWhenNothingIsInFlightQueuedOrBeingWritten) {
  Open();
  EXPECT_TRUE(receiver_->Idle());
  EXPECT_EQ(receiver_->RequestsSeen(), 0u);
  {
    OtlpReceiver::InFlight in_flight = receiver_->TrackRequest(Transport::kHttp);
    EXPECT_FALSE(receiver_->Idle());
    EXPECT_EQ(receiver_->RequestsSeen(), 1u);
    ASSERT_TRUE(Send(SampleRequest(Signal::kTraces, 2)).status.ok());
  }
  // The writer thread empties the queue on its own.
  for (int i = 0; i < 1000 && !receiver_->Idle(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(receiver_->Idle());
  EXPECT_EQ(receiver_->RequestsSeen(), 1u);
  EXPECT_EQ(ShutdownAndRead().size(), 1u);
}

TEST_F(ReceiverTest, BrokenOutputMakesRequestsRetryable) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);  // nobody will ever read: writes fail with EPIPE
  auto output = OpenStreamOutput("fd:" + std::to_string(fds[1]));
  ASSERT_TRUE(output.ok());
  receiver_ = std::make_unique<OtlpReceiver>(OtlpReceiverOptions{}, std::move(*output), registry_);
  EXPECT_TRUE(Send(SampleRequest(Signal::kTraces, 1)).status.ok());
  for (int i = 0; i < 10000 && receiver_->OutputStatus().ok(); ++i) std::this_thread::sleep_for(1ms);
  EXPECT_FALSE(receiver_->OutputStatus().ok());
  EXPECT_FALSE(receiver_->Ready());
  ExportOutcome outcome = Send(SampleRequest(Signal::kTraces, 1));
  EXPECT_EQ(outcome.status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(outcome.reason, RefuseReason::kOutputFailed);
  EXPECT_EQ(Metric(registry_, "otlp_recv_output_errors_total"), 1);
  EXPECT_FALSE(receiver_->Shutdown(1s).ok());
  close(fds[1]);
}

TEST(ReceiverOptions, Validation) {
  EXPECT_TRUE(ValidateReceiverOptions({}).ok());
  OtlpReceiverOptions o;
  o.max_decompressed_bytes = o.max_request_bytes - 1;
  EXPECT_EQ(ValidateReceiverOptions(o).code(), StatusCode::kInvalidArgument);
  o = {};
  o.queue_capacity_bytes = o.max_decompressed_bytes - 1;
  EXPECT_EQ(ValidateReceiverOptions(o).code(), StatusCode::kInvalidArgument);
  o = {};
  o.max_items_per_request = 0;
  EXPECT_EQ(ValidateReceiverOptions(o).code(), StatusCode::kInvalidArgument);
}

TEST(RpcStatus, EncodesProtobufAndJson) {
  EXPECT_EQ(EncodeRpcStatus(StatusCode::kInvalidArgument, "bad"), std::string("\x08\x03\x12\x03"
                                                                              "bad"));
  std::string retry = EncodeRpcStatus(StatusCode::kUnavailable, "", 2);
  // code 14, then details { type_url, value = RetryInfo { retry_delay { seconds: 2 } } }
  EXPECT_EQ(retry.substr(0, 2), std::string("\x08\x0e"));
  EXPECT_NE(retry.find(kRetryInfoTypeUrl), std::string::npos);
  EXPECT_EQ(retry.substr(retry.size() - 4), std::string("\x0a\x02\x08\x02", 4));
  EXPECT_EQ(EncodeRpcStatusJson(StatusCode::kInvalidArgument, "say \"hi\""), R"({"code":3,"message":"say \"hi\""})");
  EXPECT_EQ(
      EncodeRpcStatusJson(StatusCode::kUnavailable, "full", 2),
      R"({"code":14,"message":"full","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2s"}]})");
}

TEST(BearerToken, ChecksAndReloads) {
  TempDir dir;
  std::string path = dir.File("token");
  std::ofstream(path) << "  s3cret-token \n";
  auto check = BearerTokenCheck::FromFile(path);
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  EXPECT_TRUE((*check)->enabled());
  EXPECT_TRUE((*check)->Check("Bearer s3cret-token"));
  EXPECT_TRUE((*check)->Check("bearer s3cret-token"));
  EXPECT_FALSE((*check)->Check("Bearer s3cret-tokeN"));
  EXPECT_FALSE((*check)->Check("Basic s3cret-token"));
  EXPECT_FALSE((*check)->Check(""));
  std::ofstream(path) << "rotated\n";
  EXPECT_TRUE((*check)->Reload().ok());
  EXPECT_TRUE((*check)->Check("Bearer rotated"));
  std::ofstream(path) << "\n";
  EXPECT_EQ((*check)->Reload().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*check)->Check("Bearer rotated"));  // kept
  EXPECT_EQ(BearerTokenCheck::FromFile(dir.File("missing")).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(BearerTokenCheck().Check(""));
}

}  // namespace
}  // namespace telkit
