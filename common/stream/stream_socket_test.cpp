// The stream over real Unix sockets: acknowledgements, resending after the
// reader restarts, many writers into one listening input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

#include "common/stream/stream_input.h"
#include "common/stream/stream_output.h"

namespace telkit {
namespace {

std::string SocketPath(const char* name) {
  return "/tmp/telkit-test-" + std::to_string(::getpid()) + "-" + name + ".sock";
}

Frame Payload(std::string p) {
  Frame f;
  f.signal = 1;
  f.payload = std::move(p);
  return f;
}

TEST(StreamSocket, FramesAreAcknowledgedAndDrainCompletes) {
  std::string path = SocketPath("ack");
  auto in = OpenStreamInput("listen:unix:" + path);
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  auto out = OpenStreamOutput("unix:" + path);
  ASSERT_TRUE(out.ok());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE((*out)->Write(Payload("frame" + std::to_string(i))).ok());
  EXPECT_EQ((*out)->Drain(200).code(), StatusCode::kDeadlineExceeded);  // nothing acknowledged yet
  for (int i = 0; i < 50; ++i) {
    auto f = (*in)->Next();
    ASSERT_TRUE(f.ok() && f->has_value());
    EXPECT_EQ((*f)->payload, "frame" + std::to_string(i));
    (*in)->Acknowledge(**f);
  }
  EXPECT_TRUE((*out)->Drain(5000).ok());
  EXPECT_EQ((*out)->Stats().frames_acked, 50u);
  EXPECT_EQ((*out)->Stats().unacked_bytes, 0u);
  ::unlink(path.c_str());
}

TEST(StreamSocket, UnacknowledgedFramesAreResentToTheNextReader) {
  std::string path = SocketPath("resend");
  auto out = OpenStreamOutput("unix:" + path);  // nobody listens yet: frames wait
  ASSERT_TRUE(out.ok());
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE((*out)->Write(Payload(std::to_string(i))).ok());
  {
    auto in = OpenStreamInput("listen:unix:" + path);
    ASSERT_TRUE(in.ok());
    for (int i = 1; i <= 10; ++i) {
      auto f = (*in)->Next();
      ASSERT_TRUE(f.ok() && f->has_value());
      if (i <= 4) (*in)->Acknowledge(**f);  // "durable" only up to frame 4, then the reader dies
    }
    ASSERT_TRUE((*out)->Drain(50).code() == StatusCode::kDeadlineExceeded);
  }
  auto in = OpenStreamInput("listen:unix:" + path);  // the restarted reader
  ASSERT_TRUE(in.ok());
  std::vector<std::string> got;
  for (int i = 5; i <= 10; ++i) {
    auto f = (*in)->Next();
    ASSERT_TRUE(f.ok() && f->has_value());
    got.push_back((*f)->payload);
    EXPECT_EQ((*f)->sequence, static_cast<uint64_t>(i));
    (*in)->Acknowledge(**f);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"5", "6", "7", "8", "9", "10"}));
  EXPECT_TRUE((*out)->Drain(5000).ok());
  ::unlink(path.c_str());
}

TEST(StreamSocket, ManyWritersIntoOneListeningInput) {
  std::string path = SocketPath("many");
  auto in = OpenStreamInput("listen:unix:" + path);
  ASSERT_TRUE(in.ok());
  constexpr int kWriters = 8, kFrames = 100;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto out = OpenStreamOutput("unix:" + path);
      ASSERT_TRUE(out.ok());
      for (int i = 0; i < kFrames; ++i) ASSERT_TRUE((*out)->Write(Payload(std::to_string(w * 1000 + i))).ok());
      EXPECT_TRUE((*out)->Drain(10000).ok());
    });
  }
  std::set<std::string> seen;
  std::map<uint64_t, uint64_t> last_seq_by_origin;
  for (int n = 0; n < kWriters * kFrames; ++n) {
    auto f = (*in)->Next();
    ASSERT_TRUE(f.ok() && f->has_value());
    EXPECT_GT((*f)->sequence, last_seq_by_origin[(*f)->origin]);  // per-connection order kept
    last_seq_by_origin[(*f)->origin] = (*f)->sequence;
    seen.insert((*f)->payload);
    (*in)->Acknowledge(**f);
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(seen.size(), static_cast<size_t>(kWriters * kFrames));
  EXPECT_EQ((*in)->Stats().connections_accepted, static_cast<uint64_t>(kWriters));
  ::unlink(path.c_str());
}

TEST(StreamSocket, ListeningOutputAndConnectingInput) {
  std::string path = SocketPath("tap");
  auto out = OpenStreamOutput("listen:unix:" + path);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_TRUE((*out)->Write(Payload("hello")).ok());
  auto in = OpenStreamInput("unix:" + path);
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  auto f = (*in)->Next();
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_EQ((*f)->payload, "hello");
  (*in)->Acknowledge(**f);
  EXPECT_TRUE((*out)->Drain(5000).ok());
  ::unlink(path.c_str());
}

TEST(StreamSocket, CancelUnblocksNext) {
  std::string path = SocketPath("cancel");
  auto in = OpenStreamInput("listen:unix:" + path);
  ASSERT_TRUE(in.ok());
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    (*in)->Cancel();
  });
  auto f = (*in)->Next();
  t.join();
  EXPECT_EQ(f.status().code(), StatusCode::kCancelled);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace telkit
