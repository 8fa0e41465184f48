// Acknowledgements leave in frame order per connection, whatever order the
// frames finish in; the memory budget holds readers back and lets them go.
#include "common/pipeline/ack_tracker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <tuple>
#include <vector>

#include "common/pipeline/memory_budget.h"

namespace telkit {
namespace {

using Ack = std::tuple<size_t, uint64_t, uint64_t>;  // input, origin, sequence

TEST(AckTracker, AcknowledgesTheLongestFinishedPrefixPerConnection) {
  std::vector<Ack> acks;
  AckTracker t([&](size_t input, uint64_t origin, uint64_t seq) { acks.emplace_back(input, origin, seq); });
  const uint64_t a1 = t.Begin(0, 1, 10);
  const uint64_t a2 = t.Begin(0, 1, 11);
  const uint64_t b1 = t.Begin(0, 2, 5);  // another connection of the same input
  const uint64_t a3 = t.Begin(0, 1, 12);
  const uint64_t c1 = t.Begin(1, 1, 7);  // another input, same origin number
  EXPECT_EQ(t.pending(), 5u);
  t.Done(a2);  // a1 still open: nothing to say
  EXPECT_TRUE(acks.empty());
  t.Done(a1);  // a1 and a2 together: one cumulative ack for 11
  EXPECT_EQ(acks, (std::vector<Ack>{{0, 1, 11}}));
  t.Done(c1);
  t.Done(b1);
  t.Done(a3);
  EXPECT_EQ(acks, (std::vector<Ack>{{0, 1, 11}, {1, 1, 7}, {0, 2, 5}, {0, 1, 12}}));
  EXPECT_EQ(t.pending(), 0u);
  t.Done(a3);  // unknown or finished ids are ignored
  EXPECT_EQ(acks.size(), 4u);
}

TEST(MemoryBudget, ReadersWaitAboveTheSoftLimitAndNeverPassTheHardOne) {
  MemoryBudget b(100, 150);
  EXPECT_TRUE(b.Acquire(60));
  EXPECT_TRUE(b.Acquire(30));   // 90: below soft, 90 + 30 <= 150
  EXPECT_TRUE(b.Acquire(50));   // 140 <= 150
  EXPECT_EQ(b.held(), 140u);
  std::atomic<bool> got{false};
  std::thread reader([&] { got = b.Acquire(10); });  // 140 >= soft: waits
  while (b.waiting() == 0) std::this_thread::yield();
  EXPECT_FALSE(got.load());
  b.Release(100);  // 40 in use: room again
  reader.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(b.held(), 50u);
  EXPECT_EQ(b.pauses(), 1u);

  // The external bytes (socket resend buffers) count too.
  std::atomic<uint64_t> external{200};
  b.SetExternal([&] { return external.load(); });
  std::thread blocked([&] { got = b.Acquire(1); });
  while (b.waiting() == 0) std::this_thread::yield();
  external = 0;  // the peer acknowledged: noticed without a Release
  blocked.join();
  EXPECT_TRUE(got.load());

  // Cancel releases the waiters without taking anything.
  EXPECT_TRUE(b.Acquire(90));  // 141: above the soft limit
  std::thread cancelled([&] { got = b.Acquire(10); });
  while (b.waiting() == 0) std::this_thread::yield();
  b.Cancel();
  cancelled.join();
  EXPECT_FALSE(got.load());
  EXPECT_FALSE(b.Acquire(1));

  MemoryBudget unlimited(0, 0);
  EXPECT_TRUE(unlimited.Acquire(1ull << 40));
}

TEST(MemoryBudget, AResidentSetOverTheSoftLimitHoldsReadersWhileAnythingIsInUse) {
  MemoryBudget b(100, 150);
  std::atomic<uint64_t> resident{500};  // far more than the data counted
  std::atomic<int> trims{0};
  b.SetResident([&] { return resident.load(); }, [&] { ++trims; }, 50);
  EXPECT_TRUE(b.Acquire(10));  // nothing in use: nothing to wait for
  EXPECT_EQ(trims.load(), 0);
  std::atomic<bool> got{false};
  std::thread reader([&] { got = b.Acquire(10); });
  while (b.waiting() == 0) std::this_thread::yield();
  EXPECT_GE(trims.load(), 1);  // it asked malloc for memory back first
  EXPECT_FALSE(got.load());
  b.Release(10);  // in use 0: goes ahead even though the resident set is high
  reader.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(b.resident_pauses(), 1u);

  std::thread second([&] { got = b.Acquire(10); });
  while (b.waiting() == 0) std::this_thread::yield();
  resident = 50;  // memory went back: noticed without a Release
  second.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(b.held(), 20u);

  // A trim that brings the resident set down lets the reader through at once.
  resident = 500;
  b.SetResident([&] { return resident.load(); }, [&] { resident = 60; }, 50);
  EXPECT_TRUE(b.Acquire(10));
  EXPECT_EQ(b.resident_pauses(), 2u);  // unchanged: it did not wait

  // A soft limit under twice the resident set at start: the data alone counts.
  MemoryBudget small(100, 150);
  small.SetResident([] { return uint64_t{500}; }, [] {}, 60);
  EXPECT_TRUE(small.Acquire(10));
  EXPECT_TRUE(small.Acquire(10));
  EXPECT_EQ(small.resident_pauses(), 0u);
}

}  // namespace
}  // namespace telkit
