// The transport-independent core of otlp-recv: what happens to one OTLP
// export request, whichever front end (OTLP/HTTP, OTLP/gRPC) received it.
// Loki pushes (POST /loki/api/v1/push) become OTLP logs frames:
//
//   body --limits--> snappy (protobuf) or gzip/deflate (JSON), bounded
//        --> DecodeLokiPush* (judge every stream and entry, repair UTF-8)
//        --> LokiPushToOtlpLogs --> the same queue, as one logs frame
//
// Prometheus remote write 1.0 (signal prom-rw, from POST /api/v1/write) takes
// the same path with its own validation:
//
//   body --limits--> snappy (bounded) --> DecodeWriteRequest (parse, judge
//        every series) --> bad series? re-encode without them
//        --> the same queue, as one prom-rw frame (uncompressed WriteRequest)
//
//   body --limits--> decompress (gzip, deflate) --> JSON to protobuf
//        --> ScanExportRequest (validate, count items; never materialised)
//        --> invalid items? RemoveInvalidItems (OTLP partial success)
//        --> bounded in-memory queue --> one writer thread --> StreamOutput
//
// A request with no valid item (an empty request, or one whose items were
// all invalid) is answered but not forwarded: there is nothing to store.
//
// The queue has a capacity in bytes. When it is full the request is refused
// with a retryable outcome (UNAVAILABLE: HTTP 503 with Retry-After, gRPC
// UNAVAILABLE) instead of blocking the front end's thread: backpressure
// reaches the OTLP client, and nothing accepted is dropped silently. While
// draining (Shutdown) new requests are refused the same way.
//
// Every outcome is counted in the MetricsRegistry (otlp_recv_* metrics, see
// the constructor). Front ends report the refusals they decide themselves
// (unknown path, wrong content type, bad token, aborted read) with
// CountRefusal so that all refusals land in one counter.
//
// Thread-safety: Export, CountRefusal, TrackRequest, Ready and the
// accessors are safe from any number of threads; Shutdown from one thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/admin/metrics_registry.h"
#include "common/base/status.h"
#include "common/otlp/signal.h"
#include "common/recv/loki_push.h"
#include "common/stream/format.h"
#include "common/stream/stream_output.h"

namespace telkit {

// Which front end received a request ("protocol" label: grpc, http).
enum class Transport : uint8_t { kGrpc = 0, kHttp = 1 };
inline constexpr int kTransportCount = 2;
std::string_view TransportName(Transport transport);

enum class PayloadFormat : uint8_t { kProtobuf, kJson };
enum class ContentEncoding : uint8_t { kIdentity, kGzip, kDeflate, kSnappy };  // snappy: remote write only

// Why a request was refused as a whole ("reason" label). The HTTP status and
// gRPC code of each are in HttpStatusFor / the Status code of the outcome.
enum class RefuseReason : uint8_t {
  kTooLarge,              // body over max_request_bytes                 413  RESOURCE_EXHAUSTED
  kDecompressedTooLarge,  // inflated body over max_decompressed_bytes   413  RESOURCE_EXHAUSTED
  kTooManyItems,          // more items than max_items_per_request       413  RESOURCE_EXHAUSTED
  kBadData,               // malformed protobuf, JSON or compression     400  INVALID_ARGUMENT
  kUnsupportedMediaType,  // Content-Type not protobuf or JSON           415  -
  kUnsupportedEncoding,   // Content-Encoding not identity/gzip/deflate  415  -
  kNotFound,              // unknown path or gRPC method                 404  UNIMPLEMENTED
  kMethodNotAllowed,      // not a POST                                  405  -
  kUnauthenticated,       // missing or wrong bearer token               401  UNAUTHENTICATED
  kQueueFull,             // the output queue has no room (retryable)    503  UNAVAILABLE
  kDraining,              // shutting down (retryable)                   503  UNAVAILABLE
  kOutputFailed,          // the output stream broke (retryable)         503  UNAVAILABLE
  kAborted,               // the client went away or sent a broken body  400  CANCELLED
  kBadHttp,               // malformed HTTP (request line, headers)      400  -
};
inline constexpr int kRefuseReasonCount = 14;
// "too_large", "decompressed_too_large", "too_many_items", "bad_data",
// "unsupported_media_type", "unsupported_encoding", "not_found",
// "method_not_allowed", "unauthenticated", "queue_full", "draining",
// "output_failed", "aborted", "bad_http".
std::string_view RefuseReasonName(RefuseReason reason);
// The OTLP/HTTP status code for a refusal.
int HttpStatusFor(RefuseReason reason);
// The Status code a refusal carries (the gRPC status of the OTLP/gRPC answer).
StatusCode StatusCodeFor(RefuseReason reason);

struct OtlpReceiverOptions {
  // Request body as received (compressed, JSON or protobuf).
  uint64_t max_request_bytes = 16ull << 20;
  // Body after decompression (the gzip-bomb limit); also bounds JSON text.
  uint64_t max_decompressed_bytes = 64ull << 20;
  // Spans, metric data points or log records in one request.
  int64_t max_items_per_request = 100000;
  // Frames (payload bytes) waiting for the output before requests are refused.
  uint64_t queue_capacity_bytes = 64ull << 20;
  // How long a request waits for room in a full queue before it is refused
  // (synchronous backpressure, for clients that do not retry a 503). Zero:
  // refuse at once. A drain or a failed output ends the wait early.
  std::chrono::milliseconds queue_wait{0};
  // Retry-After (HTTP) and RetryInfo (gRPC) on retryable refusals.
  int retry_after_seconds = 2;
  // Refuse string fields that are not valid UTF-8 (protobuf's own rule).
  bool check_utf8 = true;
  // Per-stream and per-entry limits of the Loki push API.
  LokiPushLimits loki;
};

// Checks that the limits are positive and consistent
// (max_request_bytes <= max_decompressed_bytes <= queue_capacity_bytes).
// INVALID_ARGUMENT naming the offending option otherwise.
Status ValidateReceiverOptions(const OtlpReceiverOptions& options);

struct ExportRequest {
  Signal signal = Signal::kTraces;
  Transport transport = Transport::kHttp;
  PayloadFormat format = PayloadFormat::kProtobuf;
  ContentEncoding encoding = ContentEncoding::kIdentity;
  std::string body;  // moved into the frame when it can be forwarded as is
};

struct ExportOutcome {
  // OK when the request was accepted (maybe partially). Otherwise the code
  // for the client (StatusCodeFor(reason)) and a message for it.
  Status status;
  RefuseReason reason = RefuseReason::kBadData;  // meaningful when !status.ok()
  int64_t accepted_items = 0;
  // OTLP partial success: items dropped as invalid, and why.
  int64_t rejected_items = 0;
  std::string rejected_message;
  // > 0 on retryable refusals: when the client should try again.
  int retry_after_seconds = 0;
};

class OtlpReceiver {
 public:
  // Starts the writer thread that moves queued frames into `output`.
  // REQUIRES: ValidateReceiverOptions(options).ok(); `registry` outlives the
  // receiver.
  OtlpReceiver(const OtlpReceiverOptions& options, std::unique_ptr<StreamOutput> output, MetricsRegistry& registry);
  OtlpReceiver(const OtlpReceiver&) = delete;
  OtlpReceiver& operator=(const OtlpReceiver&) = delete;
  // Shutdown() with no time to wait, if it was not called.
  ~OtlpReceiver();

  const OtlpReceiverOptions& options() const { return options_; }

  // Validates, converts and queues one request; never blocks on the output.
  ExportOutcome Export(ExportRequest request);

  // The same for a Loki push body (request.signal is ignored: logs).
  // request.format: kJson, or kProtobuf (a snappy block); request.encoding:
  // identity, gzip or deflate for JSON, identity or snappy for protobuf.
  // Accepted with rejected_items > 0 when some entries were dropped
  // (rejected_message: the first reason, in Loki's words).
  ExportOutcome ExportLokiPush(ExportRequest request);

  // Counts a refusal a front end decided without calling Export.
  void CountRefusal(Transport transport, RefuseReason reason);

  // Marks a request in flight for its lifetime (in-flight gauge; Shutdown
  // waits for these). Front ends hold one from the first byte of a request
  // to the last byte of the answer.
  class InFlight {
   public:
    InFlight(InFlight&& other) noexcept : receiver_(other.receiver_), transport_(other.transport_) {
      other.receiver_ = nullptr;
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    ~InFlight();

   private:
    friend class OtlpReceiver;
    InFlight(OtlpReceiver* receiver, Transport transport) : receiver_(receiver), transport_(transport) {}
    OtlpReceiver* receiver_;
    Transport transport_;
  };
  InFlight TrackRequest(Transport transport);

  // Requests seen so far: every TrackRequest call. With Idle(), tells a
  // caller polling now and then whether anything happened in between.
  uint64_t RequestsSeen() const { return requests_seen_.load(std::memory_order_relaxed); }
  // No request in flight and no frame queued or being written.
  bool Idle() const;

  // Ready to accept: not draining and the output works (for /readyz).
  bool Ready() const;
  bool Draining() const { return draining_.load(); }
  // The error that stopped the output; OK while it works.
  Status OutputStatus() const;

  // From now on new requests are refused with kDraining (retryable).
  void StartDrain();

  // Graceful stop: StartDrain(); wait for requests in flight; let the
  // writer write every queued frame; Drain() the output. Gives up after
  // `timeout` (then cancels the output: DEADLINE_EXCEEDED, saying how many
  // frames were dropped). Returns the output's error if it had failed.
  // Idempotent: later calls return OK at once.
  Status Shutdown(std::chrono::milliseconds timeout);

 private:
  struct Counters;

  ExportOutcome Refuse(const ExportRequest& request, RefuseReason reason, std::string message);
  ExportOutcome ExportRemoteWrite(ExportRequest request);
  // Queues `bytes` as one frame of `request.signal` when outcome.accepted_items
  // > 0 or `forward_empty`, and counts the outcome.
  ExportOutcome Enqueue(const ExportRequest& request, std::string bytes, ExportOutcome outcome, bool forward_empty);
  void WriterLoop();
  int SignalIndex(Signal signal) const;

  const OtlpReceiverOptions options_;
  std::unique_ptr<StreamOutput> output_;
  std::unique_ptr<Counters> counters_;

  std::atomic<bool> draining_{false};
  std::atomic<bool> shut_down_{false};

  std::atomic<uint64_t> requests_seen_{0};

  mutable std::mutex in_flight_mu_;
  std::condition_variable in_flight_cv_;
  int64_t in_flight_ = 0;

  mutable std::mutex queue_mu_;
  std::condition_variable queue_cv_;   // writer waits for frames
  std::condition_variable writer_cv_;  // Shutdown waits for the writer
  std::condition_variable space_cv_;   // Enqueue waits for room (queue_wait)
  std::deque<Frame> queue_;
  uint64_t queue_bytes_ = 0;
  bool closed_ = false;  // no more frames will be queued
  bool writer_done_ = false;
  Status output_status_;  // first write error
  std::atomic<bool> output_failed_{false};
  std::thread writer_;
};

}  // namespace telkit
