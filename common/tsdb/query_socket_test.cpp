#include "common/tsdb/query_socket.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <random>
#include <thread>

#include "common/base/crc32c.h"
#include "common/model/memory_store.h"
#include "common/model/merge_querier.h"
#include "common/tsdb/chunk.h"
#include "common/net/unix_socket.h"
#include "common/test_support/temp_dir.h"

namespace telkit {
namespace {

using namespace std::chrono_literals;

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

using test_support::TempDir;

LabelMatcher M(MatchType t, std::string name, std::string value) {
  auto m = LabelMatcher::Make(t, std::move(name), std::move(value));
  EXPECT_TRUE(m.ok()) << m.status().message();
  return *m;
}

bool SameBits(const std::vector<SeriesSamples>& a, const std::vector<SeriesSamples>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].labels != b[i].labels || a[i].samples.size() != b[i].samples.size()) return false;
    for (size_t j = 0; j < a[i].samples.size(); ++j) {
      if (a[i].samples[j].t != b[i].samples[j].t ||
          std::bit_cast<uint64_t>(a[i].samples[j].v) != std::bit_cast<uint64_t>(b[i].samples[j].v)) {
        return false;
      }
    }
  }
  return true;
}

// Random series over a small vocabulary, so that random matchers hit some.
void FillRandom(MemoryStore* store, std::mt19937_64& rng, int num_series) {
  static const char* kJobs[] = {"api", "db", "web", "cache"};
  static const char* kNames[] = {"metric_a", "metric_b", "up", "http_requests_total"};
  for (int i = 0; i < num_series; ++i) {
    Labels l{{"__name__", kNames[rng() % 4]}, {"job", kJobs[rng() % 4]}, {"instance", "host-" + std::to_string(rng() % 6)}};
    if (rng() % 3 == 0) l.Set("zone", rng() % 2 ? "eu" : "us");
    if (rng() % 5 == 0) l.Set("quote", "a\"b\\c\nd");
    std::vector<Sample> samples;
    int64_t t = 1'700'000'000'000 + static_cast<int64_t>(rng() % 100'000);
    int n = static_cast<int>(rng() % 300);
    for (int k = 0; k < n; ++k) {
      double v;
      switch (rng() % 6) {
        case 0: v = static_cast<double>(k); break;
        case 1: v = std::bit_cast<double>(rng()); break;  // any bits, NaN payloads included
        case 2: v = StaleNaN(); break;
        case 3: v = -std::numeric_limits<double>::infinity(); break;
        default: v = static_cast<double>(rng() % 1000) / 100;
      }
      samples.push_back({t, v});
      t += 15'000 + static_cast<int64_t>(rng() % 20) - 10;
    }
    store->Append(l, samples);
  }
}

std::vector<LabelMatcher> RandomMatchers(std::mt19937_64& rng) {
  static const char* kLabels[] = {"__name__", "job", "instance", "zone", "missing"};
  static const char* kValues[] = {"api", "db", "metric_a", "up", "host-1", "eu", "", ".*", "host-[0-3]", "metric_.*|up", "a.*"};
  std::vector<LabelMatcher> out;
  int n = static_cast<int>(rng() % 4);
  for (int i = 0; i < n; ++i) {
    out.push_back(M(static_cast<MatchType>(rng() % 4), kLabels[rng() % 5], kValues[rng() % 11]));
  }
  bool selective = false;
  for (const auto& m : out) selective |= !m.MatchesEmpty();
  if (!selective) out.push_back(M(MatchType::kRegexMatch, "__name__", ".+"));
  return out;
}

// ---- golden bytes (docs/format/tsdb-query-socket.md)

TEST(QuerySocketFormat, GoldenHello) {
  EXPECT_EQ(Hex(EncodeQueryHello()), "89544b51530d0a1a" "0100" "0000");
}

TEST(QuerySocketFormat, GoldenSelectRequest) {
  QueryRequest r;
  r.type = QueryMessageType::kSelect;
  r.mint = 1000;
  r.maxt = 2000;
  r.matchers = {M(MatchType::kEqual, "__name__", "up"), M(MatchType::kRegexMatch, "job", "a.*")};
  std::string payload = EncodeQueryRequest(r);
  EXPECT_EQ(Hex(payload),
            "e803000000000000"        // mint 1000
            "d007000000000000"        // maxt 2000
            "02"                      // 2 matchers
            "00" "085f5f6e616d655f5f" "027570"  // __name__ = "up"
            "02" "036a6f62" "03612e2a");        // job =~ "a.*"
  std::string frame = EncodeQueryFrame(QueryMessageType::kSelect, payload);
  // length 39 | CRC-32C of type byte + payload | type 1
  EXPECT_EQ(Hex(frame.substr(0, 9)), "27000000" "ae24a8bc" "01");
  const char type = 1;
  EXPECT_EQ(Crc32cExtend(Crc32cExtend(0, &type, 1), payload.data(), payload.size()), 0xbca824aeu);
  auto back = DecodeQueryRequest(QueryMessageType::kSelect, payload);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->mint, 1000);
  EXPECT_EQ(back->maxt, 2000);
  ASSERT_EQ(back->matchers.size(), 2u);
  EXPECT_EQ(back->matchers[1].ToString(), "job=~\"a.*\"");
}

TEST(QuerySocketFormat, GoldenSelectResult) {
  std::vector<SeriesSamples> series = {{Labels{{"__name__", "up"}}, {{1000, 1}, {16000, 1}, {31000, 1}}}};
  auto payload = EncodeSelectResult(series);
  ASSERT_TRUE(payload.ok());
  // 1 series | 1 label | "__name__" "up" | 1 chunk | chunk bytes (tsdb-chunks.md)
  EXPECT_EQ(Hex(*payload).substr(0, 2 + 2 + 18 + 6 + 2), "01" "01" "085f5f6e616d655f5f" "027570" "01");
  EXPECT_EQ(Hex(*payload), "0101085f5f6e616d655f5f02757001" + Hex(std::string_view(*payload).substr(15)));
  auto chunk = EncodeChunk(series[0].samples, ChunkChoice::kAppender);
  ASSERT_TRUE(chunk.ok());
  EXPECT_EQ(payload->substr(15), std::string(1, static_cast<char>(chunk->size())) + *chunk);
  auto back = DecodeSelectResult(*payload);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(SameBits(*back, series));
}

TEST(QuerySocketFormat, GoldenErrorAndLists) {
  EXPECT_EQ(Hex(EncodeErrorResult(InvalidArgumentError("bad"))), "03" "03626164");
  std::vector<std::string> names = {"a", "job"};
  EXPECT_EQ(Hex(EncodeStringList(names)), "02" "0161" "036a6f62");
  std::vector<MetricMetadata> md = {{"up", MetricFamilyType::kGauge, "Up.", ""}};
  EXPECT_EQ(Hex(EncodeMetadataResult(md)), "01" "027570" "02" "0355702e" "00");
  Status s = DecodeErrorResult(EncodeErrorResult(NotFoundError("x")));
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
}

TEST(QuerySocketFormat, GoldenExemplarsResult) {
  std::vector<SeriesExemplars> ex = {{Labels{{"__name__", "rpc_total"}}, {{Labels{{"trace_id", "ab"}}, 1.5, 1000}}}};
  // 1 series | labels | 1 exemplar | labels {trace_id="ab"} | value 1.5 (f64 bits, LE) | t 1000
  EXPECT_EQ(Hex(EncodeExemplarsResult(ex)),
            "01" "01" "085f5f6e616d655f5f" "097270635f746f74616c" "01"
            "01" "0874726163655f6964" "026162" "000000000000f83f" "e803000000000000");
  auto back = DecodeExemplarsResult(EncodeExemplarsResult(ex));
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].exemplars, ex[0].exemplars);
}

TEST(QuerySocketFormat, DecodersRejectGarbage) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng() % (i % 2 ? 256 : 4));
    for (uint8_t t = 0; t < 8; ++t) (void)DecodeQueryRequest(static_cast<QueryMessageType>(t), junk);
    (void)DecodeSelectResult(junk);
    (void)DecodeStringList(junk);
    (void)DecodeSeriesResult(junk);
    (void)DecodeMetadataResult(junk);
    (void)DecodeExemplarsResult(junk);
    (void)DecodeErrorResult(junk);
  }
  // A count that promises more than the payload holds is refused up front.
  EXPECT_FALSE(DecodeStringList("\xff\xff\xff\xff\x0f").ok());
  EXPECT_EQ(DecodeQueryRequest(QueryMessageType::kSelect, "short").status().code(), StatusCode::kInvalidArgument);
}

// ---- over a real socket

class QuerySocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(42);
    FillRandom(&store_, rng, 60);
    path_ = dir_.path() + "/head.sock";
  }
  std::unique_ptr<QuerySocketServer> StartServer(QuerySocketServerOptions o = {}) {
    auto s = QuerySocketServer::Start(path_, &store_, std::move(o));
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(*s) : nullptr;
  }
  // A raw connection that has exchanged hellos.
  UniqueFd RawConnect() {
    auto fd = ConnectUnix(path_);
    EXPECT_TRUE(fd.ok());
    std::string hello = EncodeQueryHello();
    EXPECT_TRUE(WriteAll(fd->get(), hello).ok());
    EXPECT_EQ(ReadN(fd->get(), kQueryHelloSize), hello);
    return std::move(*fd);
  }
  static std::string ReadN(int fd, size_t n) {
    std::string out;
    char buf[4096];
    while (out.size() < n) {
      auto r = ReadSome(fd, buf, std::min(sizeof buf, n - out.size()));
      if (!r.ok() || *r == 0) break;
      out.append(buf, *r);
    }
    return out;
  }
  // Reads one response frame: its type and payload ("" type 0 at EOF).
  static std::pair<uint8_t, std::string> ReadFrame(int fd) {
    std::string h = ReadN(fd, kQueryFrameHeaderSize);
    if (h.size() < kQueryFrameHeaderSize) return {0, ""};
    uint32_t len = static_cast<uint8_t>(h[0]) | static_cast<uint8_t>(h[1]) << 8 | static_cast<uint8_t>(h[2]) << 16 |
                   static_cast<uint32_t>(static_cast<uint8_t>(h[3])) << 24;
    return {static_cast<uint8_t>(h[8]), ReadN(fd, len)};
  }
  static bool AtEof(int fd) {
    char c;
    auto r = ReadSome(fd, &c, 1);
    return !r.ok() || *r == 0;
  }

  TempDir dir_;
  MemoryStore store_;
  std::string path_;
};

TEST_F(QuerySocketTest, ResultsEqualDirectQueriesForRandomMatchers) {
  auto server = StartServer();
  QuerySocketClient client(path_);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 150; ++i) {
    auto matchers = RandomMatchers(rng);
    int64_t mint = 1'700'000'000'000 + static_cast<int64_t>(rng() % 3'000'000) - 100'000;
    int64_t maxt = mint + static_cast<int64_t>(rng() % 5'000'000);
    if (i % 10 == 0) maxt = mint - 1;  // empty range
    std::string what;
    for (const auto& m : matchers) what += m.ToString() + " ";
    SCOPED_TRACE(what + std::to_string(mint) + ".." + std::to_string(maxt));

    auto want = store_.Select(mint, maxt, matchers);
    auto got = client.Select(mint, maxt, matchers);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_TRUE(SameBits(*got, *want));

    auto series = client.Series(mint, maxt, matchers);
    ASSERT_TRUE(series.ok());
    ASSERT_EQ(series->size(), want->size());
    for (size_t k = 0; k < want->size(); ++k) EXPECT_EQ((*series)[k], (*want)[k].labels);

    auto all = i % 3 == 0 ? std::span<const LabelMatcher>() : std::span<const LabelMatcher>(matchers);
    auto names = client.LabelNames(mint, maxt, all);
    ASSERT_TRUE(names.ok());
    EXPECT_EQ(*names, *store_.LabelNames(mint, maxt, all));
    for (std::string label : {"job", "instance", "missing", "__name__"}) {
      auto values = client.LabelValues(label, mint, maxt, all);
      ASSERT_TRUE(values.ok());
      EXPECT_EQ(*values, *store_.LabelValues(label, mint, maxt, all));
    }
  }
  EXPECT_EQ(server->stats().bad_requests, 0u);
  EXPECT_EQ(server->stats().connections, 1u);  // one pooled connection served every call
}

TEST_F(QuerySocketTest, LongSeriesSpanSeveralChunks) {
  Labels l{{"__name__", "long"}};
  std::vector<Sample> samples;
  for (int i = 0; i < 150'000; ++i) samples.push_back({int64_t{i} * 1000, static_cast<double>(i % 7)});
  store_.Append(l, samples);
  auto server = StartServer();
  QuerySocketClient client(path_);
  std::vector<LabelMatcher> m = {M(MatchType::kEqual, "__name__", "long")};
  auto got = client.Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].samples, samples);
}

TEST_F(QuerySocketTest, Metadata) {
  QuerySocketServerOptions o;
  o.metadata = [] {
    return std::vector<MetricMetadata>{{"up", MetricFamilyType::kGauge, "Whether the target is up.", ""},
                                       {"http_requests", MetricFamilyType::kCounter, "Requests.", ""},
                                       {"latency_seconds", MetricFamilyType::kHistogram, "Latency.", "seconds"}};
  };
  auto server = StartServer(o);
  QuerySocketClient client(path_);
  auto all = client.Metadata();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].family, "http_requests");  // sorted by family
  EXPECT_EQ((*all)[1].unit, "seconds");
  auto one = client.Metadata("up");
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].type, MetricFamilyType::kGauge);
  EXPECT_EQ(client.Metadata("", 2)->size(), 2u);
}

TEST_F(QuerySocketTest, Exemplars) {
  std::vector<SeriesExemplars> all = {
      {Labels{{"__name__", "rpc_total"}, {"job", "api"}}, {{Labels{{"trace_id", "a1"}}, 1, 1000}, {Labels{{"trace_id", "a2"}}, 2, 5000}}},
      {Labels{{"__name__", "rpc_total"}, {"job", "db"}}, {{Labels{{"trace_id", "b1"}}, 3, 2000}}},
  };
  QuerySocketServerOptions o;
  o.exemplars = [&](int64_t mint, int64_t maxt, std::span<const LabelMatcher> m) -> Result<std::vector<SeriesExemplars>> {
    std::vector<SeriesExemplars> out;
    for (const auto& s : all) {
      if (!MatchesAll(s.labels, m)) continue;
      SeriesExemplars kept{s.labels, {}};
      for (const auto& e : s.exemplars) {
        if (e.t >= mint && e.t <= maxt) kept.exemplars.push_back(e);
      }
      if (!kept.exemplars.empty()) out.push_back(std::move(kept));
    }
    return out;
  };
  auto server = StartServer(o);
  QuerySocketClient client(path_);
  std::vector<LabelMatcher> m = {M(MatchType::kEqual, "__name__", "rpc_total")};
  auto got = client.Exemplars(0, 3000, m);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].exemplars.size(), 1u);
  EXPECT_EQ((*got)[1].exemplars[0].labels.Get("trace_id"), "b1");
  std::vector<LabelMatcher> empty = {M(MatchType::kEqual, "x", "")};
  EXPECT_EQ(client.Exemplars(0, 1, empty).status().code(), StatusCode::kInvalidArgument);

  server->Stop();
  auto plain = StartServer();  // no exemplar source: an empty answer
  auto none = client.Exemplars(0, 3000, m);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(QuerySocketTest, ConcurrentClients) {
  auto server = StartServer();
  QuerySocketClient shared(path_);
  std::vector<LabelMatcher> m = {M(MatchType::kRegexMatch, "__name__", "metric_.*")};
  auto want = store_.Select(INT64_MIN, INT64_MAX, m);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      QuerySocketClient own(path_);
      QuerySocketClient& c = t % 2 ? shared : own;
      for (int i = 0; i < 40; ++i) {
        auto got = c.Select(INT64_MIN, INT64_MAX, m);
        if (!got.ok() || !SameBits(*got, *want)) failures.fetch_add(1);
        // Writes go on while readers read.
        store_.Append(Labels{{"__name__", "other"}, {"t", std::to_string(t)}}, i, 1.0);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(server->stats().requests, 8u * 40);
  EXPECT_LE(server->stats().connections, 8u * 4);  // pooled: a few per client
}

TEST_F(QuerySocketTest, ServerStoppedAndRestarted) {
  std::vector<LabelMatcher> m = {M(MatchType::kEqual, "__name__", "up")};
  QuerySocketClient client(path_, {.timeout = 2s});
  {
    auto server = StartServer();
    ASSERT_TRUE(client.Select(0, INT64_MAX, m).ok());
  }
  auto down = client.Select(0, INT64_MAX, m);
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable) << down.status().message();
  auto server = StartServer();
  auto up = client.Select(0, INT64_MAX, m);
  ASSERT_TRUE(up.ok()) << up.status().message();
  EXPECT_TRUE(SameBits(*up, *store_.Select(0, INT64_MAX, m)));
}

// The server in another process, killed with SIGKILL (its socket file stays
// behind, stale) and started again; the client's pooled connection is dead.
TEST_F(QuerySocketTest, ServerProcessKilledAndRestarted) {
  auto spawn = [&]() -> pid_t {
    int ready[2];
    if (pipe(ready) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
      close(ready[0]);
      auto s = QuerySocketServer::Start(path_, &store_);
      char ok = s.ok() ? 1 : 0;
      [[maybe_unused]] ssize_t n = write(ready[1], &ok, 1);
      for (;;) pause();
    }
    close(ready[1]);
    char ok = 0;
    [[maybe_unused]] ssize_t n = read(ready[0], &ok, 1);
    close(ready[0]);
    return ok ? pid : -1;
  };
  std::vector<LabelMatcher> m = {M(MatchType::kRegexMatch, "job", "api|db")};
  auto want = store_.Select(0, INT64_MAX, m);
  QuerySocketClient client(path_, {.timeout = 2s});

  pid_t first = spawn();
  ASSERT_GT(first, 0);
  auto a = client.Select(0, INT64_MAX, m);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_TRUE(SameBits(*a, *want));
  kill(first, SIGKILL);
  waitpid(first, nullptr, 0);
  EXPECT_TRUE(std::filesystem::exists(path_));  // stale socket file
  EXPECT_EQ(client.Select(0, INT64_MAX, m).status().code(), StatusCode::kUnavailable);

  pid_t second = spawn();
  ASSERT_GT(second, 0);
  auto b = client.Select(0, INT64_MAX, m);
  EXPECT_TRUE(b.ok()) << b.status().message();
  if (b.ok()) {
    EXPECT_TRUE(SameBits(*b, *want));
  }
  kill(second, SIGKILL);
  waitpid(second, nullptr, 0);
}

TEST_F(QuerySocketTest, GarbageRequestsGetErrorsNotCrashes) {
  QuerySocketServerOptions o;
  o.max_request_bytes = 4096;
  auto server = StartServer(o);

  {  // bad magic: the server's hello, an error, then EOF
    auto fd = ConnectUnix(path_);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(WriteAll(fd->get(), "GET / HTTP/1.1\r\n\r\n").ok());
    EXPECT_EQ(ReadN(fd->get(), kQueryHelloSize), EncodeQueryHello());
    auto [type, payload] = ReadFrame(fd->get());
    EXPECT_EQ(type, 0xff);
    EXPECT_EQ(DecodeErrorResult(payload).code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(AtEof(fd->get()));
  }
  {  // another version
    auto fd = ConnectUnix(path_);
    ASSERT_TRUE(WriteAll(fd->get(), EncodeQueryHello(9)).ok());
    EXPECT_EQ(ReadN(fd->get(), kQueryHelloSize), EncodeQueryHello());
    auto [type, payload] = ReadFrame(fd->get());
    EXPECT_EQ(DecodeErrorResult(payload).code(), StatusCode::kUnimplemented);
  }
  {  // unknown type and malformed payloads: an error each, connection stays usable
    UniqueFd fd = RawConnect();
    ASSERT_TRUE(WriteAll(fd.get(), EncodeQueryFrame(static_cast<QueryMessageType>(0x42), "x")).ok());
    auto [t1, p1] = ReadFrame(fd.get());
    EXPECT_EQ(t1, 0xff);
    EXPECT_EQ(DecodeErrorResult(p1).code(), StatusCode::kUnimplemented);
    ASSERT_TRUE(WriteAll(fd.get(), EncodeQueryFrame(QueryMessageType::kSelect, "\x01\x02")).ok());
    auto [t2, p2] = ReadFrame(fd.get());
    EXPECT_EQ(DecodeErrorResult(p2).code(), StatusCode::kInvalidArgument);
    QueryRequest bad_regex;
    bad_regex.matchers = {M(MatchType::kEqual, "a", "b")};
    std::string payload = EncodeQueryRequest(bad_regex);
    payload[17] = 2;          // =~
    payload.back() = '(';     // value "(" : not a regex
    ASSERT_TRUE(WriteAll(fd.get(), EncodeQueryFrame(QueryMessageType::kSelect, payload)).ok());
    auto [t3, p3] = ReadFrame(fd.get());
    EXPECT_EQ(DecodeErrorResult(p3).code(), StatusCode::kInvalidArgument);
    QueryRequest empty_selector;  // no matcher excluding the empty string
    empty_selector.matchers = {M(MatchType::kEqual, "a", "")};
    ASSERT_TRUE(WriteAll(fd.get(), EncodeQueryFrame(QueryMessageType::kSelect, EncodeQueryRequest(empty_selector))).ok());
    auto [t4, p4] = ReadFrame(fd.get());
    EXPECT_EQ(DecodeErrorResult(p4).code(), StatusCode::kInvalidArgument);
    QueryRequest good;
    good.type = QueryMessageType::kLabelNames;
    good.maxt = INT64_MAX;
    ASSERT_TRUE(WriteAll(fd.get(), EncodeQueryFrame(QueryMessageType::kLabelNames, EncodeQueryRequest(good))).ok());
    auto [t5, p5] = ReadFrame(fd.get());
    EXPECT_EQ(t5, 0x82);
    EXPECT_TRUE(DecodeStringList(p5).ok());
  }
  {  // checksum mismatch: DATA_LOSS, then closed
    UniqueFd fd = RawConnect();
    std::string frame = EncodeQueryFrame(QueryMessageType::kLabelNames, std::string(17, '\0'));
    frame[5] ^= 1;
    ASSERT_TRUE(WriteAll(fd.get(), frame).ok());
    auto [type, payload] = ReadFrame(fd.get());
    EXPECT_EQ(DecodeErrorResult(payload).code(), StatusCode::kDataLoss);
    EXPECT_TRUE(AtEof(fd.get()));
  }
  {  // oversized: RESOURCE_EXHAUSTED before the payload is read, then closed
    UniqueFd fd = RawConnect();
    ASSERT_TRUE(WriteAll(fd.get(), std::string("\xff\xff\xff\x7f" "abcd" "\x01", 9)).ok());
    auto [type, payload] = ReadFrame(fd.get());
    EXPECT_EQ(DecodeErrorResult(payload).code(), StatusCode::kResourceExhausted);
    EXPECT_TRUE(AtEof(fd.get()));
  }
  // Random bytes after a good hello, bounded.
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100; ++i) {
    UniqueFd fd = RawConnect();
    std::string junk(rng() % 200, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    (void)WriteAll(fd.get(), junk);
    ::shutdown(fd.get(), SHUT_WR);
    while (!AtEof(fd.get())) {
    }
  }
  auto stats = server->stats();
  EXPECT_GE(stats.bad_requests, 8u);
  EXPECT_GE(stats.oversized_requests, 1u);  // random lengths are mostly oversized too
  // Still serving.
  QuerySocketClient client(path_);
  std::vector<LabelMatcher> m = {M(MatchType::kEqual, "__name__", "up")};
  EXPECT_TRUE(client.Select(0, INT64_MAX, m).ok());
  // The server refuses a selector that matches the empty string; the
  // client reports it.
  std::vector<LabelMatcher> empty = {M(MatchType::kNotEqual, "job", "x")};
  EXPECT_EQ(client.Select(0, INT64_MAX, empty).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(client.Select(0, INT64_MAX, m).ok());  // and the connection stays usable
}

TEST_F(QuerySocketTest, OversizedResponses) {
  QuerySocketServerOptions o;
  o.max_response_bytes = 1000;
  auto server = StartServer(o);
  QuerySocketClient client(path_);
  std::vector<LabelMatcher> all = {M(MatchType::kRegexMatch, "__name__", ".+")};
  auto r = client.Select(INT64_MIN, INT64_MAX, all);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("narrow the query"), std::string::npos);
  EXPECT_EQ(server->stats().oversized_responses, 1u);
  EXPECT_TRUE(client.LabelNames(INT64_MIN, INT64_MAX, {}).ok());

  QuerySocketClient small(path_, {.max_response_bytes = 10});
  EXPECT_EQ(small.LabelNames(INT64_MIN, INT64_MAX, {}).status().code(), StatusCode::kResourceExhausted);
}

// A Querier that takes its time.
class SlowQuerier : public Querier {
 public:
  explicit SlowQuerier(Querier* q) : q_(q) {}
  Result<std::vector<SeriesSamples>> Select(int64_t a, int64_t b, std::span<const LabelMatcher> m) override {
    std::this_thread::sleep_for(300ms);
    return q_->Select(a, b, m);
  }
  Result<std::vector<std::string>> LabelNames(int64_t a, int64_t b, std::span<const LabelMatcher> m) override {
    return UnavailableError("head is closing");
  }
  Result<std::vector<std::string>> LabelValues(std::string_view n, int64_t a, int64_t b,
                                               std::span<const LabelMatcher> m) override {
    return q_->LabelValues(n, a, b, m);
  }

 private:
  Querier* q_;
};

TEST_F(QuerySocketTest, TimeoutsAndQuerierErrors) {
  SlowQuerier slow(&store_);
  auto server = QuerySocketServer::Start(path_, &slow);
  ASSERT_TRUE(server.ok());
  QuerySocketClient client(path_, {.timeout = 100ms});
  std::vector<LabelMatcher> m = {M(MatchType::kEqual, "__name__", "up")};
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(client.Select(0, INT64_MAX, m).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 280ms);
  auto names = client.LabelNames(0, 1, {});
  EXPECT_EQ(names.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(names.status().message().find("head is closing"), std::string::npos);
  EXPECT_EQ((*server)->stats().query_errors, 1u);
}

// A process that listens but never accepts or answers (hung, or its
// backlog full): calls end at their deadline instead of hanging.
TEST_F(QuerySocketTest, UnresponsiveServerTimesOut) {
  auto listener = ListenUnix(path_, 0);
  ASSERT_TRUE(listener.ok());
  std::vector<UniqueFd> fill;  // fills the backlog, so a blocking connect would hang
  for (int i = 0; i < 4; ++i) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) fill.push_back(std::move(fd));
  }
  QuerySocketClient client(path_, {.timeout = 150ms});
  for (int i = 0; i < 2; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto r = client.LabelNames(0, 1, {});
    EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  }
}

TEST_F(QuerySocketTest, ConnectionLimitAndIdleTimeout) {
  QuerySocketServerOptions o;
  o.max_connections = 2;
  o.idle_timeout = 200ms;
  auto server = StartServer(o);
  UniqueFd a = RawConnect();
  UniqueFd b = RawConnect();
  {
    auto fd = ConnectUnix(path_);
    ASSERT_TRUE(fd.ok());
    EXPECT_EQ(ReadN(fd->get(), kQueryHelloSize), EncodeQueryHello());
    auto [type, payload] = ReadFrame(fd->get());
    EXPECT_EQ(DecodeErrorResult(payload).code(), StatusCode::kResourceExhausted);
  }
  EXPECT_EQ(server->stats().rejected_connections, 1u);
  // Idle connections are closed after idle_timeout, which frees the slots.
  EXPECT_TRUE(AtEof(a.get()));
  EXPECT_TRUE(AtEof(b.get()));
  QuerySocketClient client(path_);
  EXPECT_TRUE(client.LabelNames(0, INT64_MAX, {}).ok());
}

TEST_F(QuerySocketTest, StopEndsIdleConnectionsPromptly) {
  auto server = StartServer();
  UniqueFd a = RawConnect();
  UniqueFd b = RawConnect();
  auto start = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_TRUE(AtEof(a.get()));
  EXPECT_FALSE(std::filesystem::exists(path_));
  server->Stop();  // idempotent
}

// What tel-query will do: blocks read in-process, the head over the socket.
TEST_F(QuerySocketTest, MergedWithBlocksAsAReaderWould) {
  auto server = StartServer();  // store_ is the head
  MemoryStore block;
  std::mt19937_64 rng(9);
  FillRandom(&block, rng, 40);
  QuerySocketClient head(path_);
  MergeQuerier reader({&head, &block});
  MergeQuerier direct({&store_, &block});
  std::vector<LabelMatcher> m = {M(MatchType::kRegexMatch, "job", "api|web")};
  auto got = reader.Select(INT64_MIN, INT64_MAX, m);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(SameBits(*got, *direct.Select(INT64_MIN, INT64_MAX, m)));
  EXPECT_EQ(*reader.LabelValues("instance", INT64_MIN, INT64_MAX, {}),
            *direct.LabelValues("instance", INT64_MIN, INT64_MAX, {}));
}

}  // namespace
}  // namespace telkit
