// The head query socket: how readers in other processes (tel-query, the
// Prometheus API) read what only the tsdb-write daemon holds in memory, the
// way Loki and Tempo ingesters answer their queriers. The server serves any
// Querier on a Unix stream socket; the client is itself a Querier that asks
// such a server. The wire format is docs/format/tsdb-query-socket.md; change
// both together (golden bytes in query_socket_test.cpp pin it).
//
//   connection = hello(client) hello(server) { request response }*
//   frame      = length:u32 | crc:u32 | type:u8 | payload
//
// Samples travel as chunks (EncodeChunk, docs/format/tsdb-chunks.md), not as
// raw pairs: a 15 s-regular counter costs a few bits a sample.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/base/fd.h"
#include "common/base/status.h"
#include "common/model/series.h"

namespace telkit {

// ---- format constants (docs/format/tsdb-query-socket.md)
inline constexpr std::string_view kQuerySocketMagic = "\x89TKQS\r\n\x1a";  // 8 bytes
inline constexpr uint16_t kQuerySocketVersion = 1;
inline constexpr size_t kQueryHelloSize = 12;   // magic, version:u16, flags:u16
inline constexpr size_t kQueryFrameHeaderSize = 9;  // length:u32, crc:u32, type:u8

enum class QueryMessageType : uint8_t {
  kSelect = 0x01,
  kLabelNames = 0x02,
  kLabelValues = 0x03,
  kSeries = 0x04,
  kMetadata = 0x05,
  kExemplars = 0x06,
  // A response has the request's type with the high bit set.
  kSelectResult = 0x81,
  kLabelNamesResult = 0x82,
  kLabelValuesResult = 0x83,
  kSeriesResult = 0x84,
  kMetadataResult = 0x85,
  kExemplarsResult = 0x86,
  kError = 0xff,
};

// The request and response payloads, exposed for tests, the fuzzer and the
// golden bytes. Decoders are strict and bounded: any malformed payload gives
// INVALID_ARGUMENT (requests) or DATA_LOSS (responses), never a crash.
struct QueryRequest {
  QueryMessageType type = QueryMessageType::kSelect;
  int64_t mint = 0;
  int64_t maxt = 0;
  std::vector<LabelMatcher> matchers;
  std::string name;    // kLabelValues: the label; kMetadata: the metric family ("" = all)
  uint64_t limit = 0;  // kMetadata: at most this many families (0 = no limit)
};
std::string EncodeQueryRequest(const QueryRequest& request);
Result<QueryRequest> DecodeQueryRequest(QueryMessageType type, std::string_view payload);

// One frame, header included.
std::string EncodeQueryFrame(QueryMessageType type, std::string_view payload);
std::string EncodeQueryHello(uint16_t version = kQuerySocketVersion);

// Response payloads.
Result<std::string> EncodeSelectResult(std::span<const SeriesSamples> series);
Result<std::vector<SeriesSamples>> DecodeSelectResult(std::string_view payload);
std::string EncodeStringList(std::span<const std::string> strings);
Result<std::vector<std::string>> DecodeStringList(std::string_view payload);
std::string EncodeSeriesResult(std::span<const Labels> series);
Result<std::vector<Labels>> DecodeSeriesResult(std::string_view payload);
std::string EncodeMetadataResult(std::span<const MetricMetadata> metadata);
// One series' exemplars (/api/v1/query_exemplars), sorted by time.
struct SeriesExemplars {
  Labels labels;
  std::vector<Exemplar> exemplars;
};
std::string EncodeExemplarsResult(std::span<const SeriesExemplars> series);
Result<std::vector<SeriesExemplars>> DecodeExemplarsResult(std::string_view payload);
Result<std::vector<MetricMetadata>> DecodeMetadataResult(std::string_view payload);
std::string EncodeErrorResult(const Status& status);
Status DecodeErrorResult(std::string_view payload);

// What the server reads its metric metadata from (the head's TYPE/HELP/UNIT
// per family). Called on a connection thread: must be thread-safe.
using MetadataSource = std::function<std::vector<MetricMetadata>()>;
// What the server reads exemplars from: those of the series that match, in
// [mint, maxt], series sorted by labels. Called on a connection thread: must
// be thread-safe.
using ExemplarSource = std::function<Result<std::vector<SeriesExemplars>>(
    int64_t mint, int64_t maxt, std::span<const LabelMatcher> matchers)>;

struct QuerySocketServerOptions {
  size_t max_request_bytes = 1 << 20;     // one request frame's payload
  size_t max_response_bytes = 64 << 20;   // one response frame's payload; beyond: RESOURCE_EXHAUSTED
  size_t max_connections = 64;            // beyond: the connection gets an error and is closed
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};  // between requests
  std::chrono::milliseconds io_timeout{std::chrono::seconds(10)};   // within a frame, and each write
  MetadataSource metadata;                // optional; without it kMetadata asks querier->Metadata("")
  ExemplarSource exemplars;               // optional; without it kExemplars answers an empty list
};

// Serves a Querier on a Unix socket, one thread per connection (bounded by
// max_connections). A malformed, oversized or corrupt request gets an error
// response (and a counter); the connection is closed only when the framing is
// lost (bad hello, bad length or checksum). Thread-safe.
class QuerySocketServer {
 public:
  struct Stats {
    uint64_t connections = 0;          // accepted, total
    uint64_t active_connections = 0;   // now
    uint64_t rejected_connections = 0; // over max_connections
    uint64_t requests = 0;             // answered, errors included
    uint64_t bad_requests = 0;         // bad hello, framing, checksum, payload, unknown type
    uint64_t oversized_requests = 0;   // over max_request_bytes
    uint64_t oversized_responses = 0;  // over max_response_bytes
    uint64_t query_errors = 0;         // the Querier returned an error
  };

  // Listens at `path` (replacing a stale socket file) and starts serving.
  // REQUIRES: `querier` is thread-safe and outlives the server.
  static Result<std::unique_ptr<QuerySocketServer>> Start(const std::string& path, Querier* querier,
                                                          QuerySocketServerOptions options = {});
  // Serves on an already listening socket (systemd socket activation).
  static Result<std::unique_ptr<QuerySocketServer>> StartOnFd(UniqueFd listen_fd, Querier* querier,
                                                              QuerySocketServerOptions options = {});
  ~QuerySocketServer();  // Stop()

  // Stops accepting, ends every connection (an in-flight request finishes
  // first) and joins the threads. Removes the socket file when Start made
  // it. Idempotent.
  void Stop();
  Stats stats() const;

 private:
  struct Connection;
  QuerySocketServer(UniqueFd listen_fd, std::string path, Querier* querier, QuerySocketServerOptions options);
  void AcceptLoop();
  void Serve(Connection* c);
  // Answers one request frame; false when the connection must close.
  bool Answer(int fd, QueryMessageType type, std::string_view payload);
  void Reap(bool all);

  UniqueFd listen_fd_;
  std::string path_;
  Querier* querier_;
  QuerySocketServerOptions options_;
  Notifier stop_;
  std::thread accept_thread_;
  std::mutex mu_;
  std::list<std::unique_ptr<Connection>> connections_;  // guarded by mu_
  bool stopped_ = false;                                // guarded by mu_
  struct Counters {
    std::atomic<uint64_t> connections{0}, active{0}, rejected{0}, requests{0}, bad{0}, oversized_req{0},
        oversized_resp{0}, query_errors{0};
  } counters_;
};

struct QuerySocketClientOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};  // per call, connect to last byte
  size_t max_response_bytes = 256 << 20;
  size_t max_idle_connections = 4;  // kept open for the next calls
};

// A Querier that asks a QuerySocketServer. Connections are pooled; a call
// that fails on a pooled connection (server restarted, idle connection
// closed) is retried once on a new one, so a server restart is survived.
// Errors: UNAVAILABLE when nobody listens, DEADLINE_EXCEEDED on timeout,
// DATA_LOSS for a corrupt response, UNIMPLEMENTED for another protocol
// version, and the server's own error codes. Thread-safe.
class QuerySocketClient : public Querier {
 public:
  explicit QuerySocketClient(std::string path, QuerySocketClientOptions options = {});

  Result<std::vector<SeriesSamples>> Select(int64_t mint, int64_t maxt,
                                            std::span<const LabelMatcher> matchers) override;
  Result<std::vector<std::string>> LabelNames(int64_t mint, int64_t maxt,
                                              std::span<const LabelMatcher> matchers) override;
  Result<std::vector<std::string>> LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                               std::span<const LabelMatcher> matchers) override;
  // The label sets of the series Select would return (/api/v1/series).
  Result<std::vector<Labels>> Series(int64_t mint, int64_t maxt, std::span<const LabelMatcher> matchers);
  // Metric metadata (/api/v1/metadata): of `metric` only, or all when empty;
  // at most `limit` families when nonzero.
  Result<std::vector<MetricMetadata>> Metadata(std::string_view metric, uint64_t limit);
  // Querier::Metadata: Metadata(family, 0).
  Result<std::vector<MetricMetadata>> Metadata(std::string_view family = {}) override { return Metadata(family, 0); }
  // Exemplars of the matching series in [mint, maxt] (/api/v1/query_exemplars).
  Result<std::vector<SeriesExemplars>> Exemplars(int64_t mint, int64_t maxt, std::span<const LabelMatcher> matchers);

 private:
  // Sends one request and returns the response payload (type checked).
  Result<std::string> Call(const QueryRequest& request);
  Result<std::string> CallOn(int fd, std::string_view frame, QueryMessageType want,
                             std::chrono::steady_clock::time_point deadline, bool* sent_nothing, bool* reusable);
  Result<UniqueFd> Connect(std::chrono::steady_clock::time_point deadline);

  std::string path_;
  QuerySocketClientOptions options_;
  std::mutex mu_;
  std::vector<UniqueFd> idle_;  // guarded by mu_
};

}  // namespace telkit
