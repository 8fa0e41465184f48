#include "common/recv/otlp_receiver.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "common/codec/gzip.h"
#include "common/codec/snappy.h"
#include "common/otlp/export_messages.h"
#include "common/otlp/item_filter.h"
#include "common/otlp/otlp_json.h"
#include "common/otlp/wire_scan.h"
#include "common/base/utf8.h"
#include "common/prom/remote_write.h"
#include "common/prom/remote_write_wire.h"

namespace telkit {
namespace {

constexpr std::array<Signal, 4> kSignals = {Signal::kTraces, Signal::kMetrics, Signal::kLogs,
                                            Signal::kPrometheusRemoteWrite};

uint64_t NowUnixNano() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace

std::string_view TransportName(Transport transport) { return transport == Transport::kGrpc ? "grpc" : "http"; }

std::string_view RefuseReasonName(RefuseReason reason) {
  switch (reason) {
    case RefuseReason::kTooLarge:
      return "too_large";
    case RefuseReason::kDecompressedTooLarge:
      return "decompressed_too_large";
    case RefuseReason::kTooManyItems:
      return "too_many_items";
    case RefuseReason::kBadData:
      return "bad_data";
    case RefuseReason::kUnsupportedMediaType:
      return "unsupported_media_type";
    case RefuseReason::kUnsupportedEncoding:
      return "unsupported_encoding";
    case RefuseReason::kNotFound:
      return "not_found";
    case RefuseReason::kMethodNotAllowed:
      return "method_not_allowed";
    case RefuseReason::kUnauthenticated:
      return "unauthenticated";
    case RefuseReason::kQueueFull:
      return "queue_full";
    case RefuseReason::kDraining:
      return "draining";
    case RefuseReason::kOutputFailed:
      return "output_failed";
    case RefuseReason::kAborted:
      return "aborted";
    case RefuseReason::kBadHttp:
      return "bad_http";
  }
  return "unknown";
}

int HttpStatusFor(RefuseReason reason) {
  switch (reason) {
    case RefuseReason::kTooLarge:
    case RefuseReason::kDecompressedTooLarge:
    case RefuseReason::kTooManyItems:
      return 413;
    case RefuseReason::kBadData:
    case RefuseReason::kAborted:
    case RefuseReason::kBadHttp:
      return 400;
    case RefuseReason::kUnsupportedMediaType:
    case RefuseReason::kUnsupportedEncoding:
      return 415;
    case RefuseReason::kNotFound:
      return 404;
    case RefuseReason::kMethodNotAllowed:
      return 405;
    case RefuseReason::kUnauthenticated:
      return 401;
    case RefuseReason::kQueueFull:
    case RefuseReason::kDraining:
    case RefuseReason::kOutputFailed:
      return 503;
  }
  return 500;
}

StatusCode StatusCodeFor(RefuseReason reason) {
  switch (reason) {
    case RefuseReason::kTooLarge:
    case RefuseReason::kDecompressedTooLarge:
    case RefuseReason::kTooManyItems:
      return StatusCode::kResourceExhausted;
    case RefuseReason::kBadData:
    case RefuseReason::kUnsupportedMediaType:
    case RefuseReason::kUnsupportedEncoding:
    case RefuseReason::kBadHttp:
      return StatusCode::kInvalidArgument;
    case RefuseReason::kNotFound:
    case RefuseReason::kMethodNotAllowed:
      return StatusCode::kUnimplemented;
    case RefuseReason::kUnauthenticated:
      return StatusCode::kUnauthenticated;
    case RefuseReason::kQueueFull:
    case RefuseReason::kDraining:
    case RefuseReason::kOutputFailed:
      return StatusCode::kUnavailable;
    case RefuseReason::kAborted:
      return StatusCode::kCancelled;
  }
  return StatusCode::kInternal;
}

Status ValidateReceiverOptions(const OtlpReceiverOptions& o) {
  if (o.max_request_bytes == 0) return InvalidArgumentError("max request bytes must be positive");
  if (o.max_decompressed_bytes < o.max_request_bytes) {
    return InvalidArgumentError(fmt::format("max decompressed bytes ({}) must be at least max request bytes ({})",
                                            o.max_decompressed_bytes, o.max_request_bytes));
  }
  if (o.queue_capacity_bytes < o.max_decompressed_bytes) {
    return InvalidArgumentError(fmt::format("queue capacity ({} bytes) must be at least max decompressed bytes ({})",
                                            o.queue_capacity_bytes, o.max_decompressed_bytes));
  }
  if (o.max_items_per_request <= 0) return InvalidArgumentError("max items per request must be positive");
  if (o.retry_after_seconds <= 0) return InvalidArgumentError("retry-after seconds must be positive");
  if (o.queue_wait.count() < 0) return InvalidArgumentError("queue wait must not be negative");
  return OkStatus();
}

// Every series is created up front: the hot path touches atomics only, and
// /metrics shows zeros instead of missing series.
struct OtlpReceiver::Counters {
  Counter* accepted_requests[4][kTransportCount];
  Counter* received_items[4][kTransportCount];
  Counter* rejected_items[4][kTransportCount];
  Counter* prom_rw_rejected_series[kPromRejectCount];
  Counter* prom_rw_dropped_histograms;
  Counter* loki_rejected_entries[kLokiRejectCount];
  Counter* loki_invalid_utf8;
  Counter* refused[kTransportCount][kRefuseReasonCount];
  Counter* bytes_in[kTransportCount];
  Gauge* in_flight[kTransportCount];
  Gauge* queue_frames;
  Gauge* queue_bytes;
  Counter* frames_written;
  Counter* bytes_written;
  Counter* frames_dropped;
  Counter* output_errors;
};

OtlpReceiver::OtlpReceiver(const OtlpReceiverOptions& options, std::unique_ptr<StreamOutput> output,
                           MetricsRegistry& registry)
    : options_(options), output_(std::move(output)), counters_(std::make_unique<Counters>()) {
  Counters& c = *counters_;
  for (int t = 0; t < kTransportCount; ++t) {
    std::string protocol(TransportName(static_cast<Transport>(t)));
    for (int s = 0; s < static_cast<int>(kSignals.size()); ++s) {
      MetricLabels labels = {{"signal", std::string(SignalName(kSignals[s]))}, {"protocol", protocol}};
      c.accepted_requests[s][t] = &registry.AddCounter("otlp_recv_accepted_requests_total",
                                                       "Export requests accepted (fully or partially).", labels);
      c.received_items[s][t] = &registry.AddCounter(
          "otlp_recv_received_items_total",
          "Items (spans, metric data points, log records) accepted and queued for the output.", labels);
      c.rejected_items[s][t] =
          &registry.AddCounter("otlp_recv_rejected_items_total",
                               "Invalid items removed from accepted requests (OTLP partial success).", labels);
    }
    for (int r = 0; r < kRefuseReasonCount; ++r) {
      c.refused[t][r] = &registry.AddCounter(
          "otlp_recv_refused_requests_total", "Requests refused as a whole, by reason.",
          {{"protocol", protocol}, {"reason", std::string(RefuseReasonName(static_cast<RefuseReason>(r)))}});
    }
    c.bytes_in[t] =
        &registry.AddCounter("otlp_recv_received_bytes_total", "Request body bytes received, before decompression.",
                             {{"protocol", protocol}});
    c.in_flight[t] = &registry.AddGauge("otlp_recv_in_flight_requests", "Requests being received or processed.",
                                        {{"protocol", protocol}});
  }
  for (int r = 0; r < kPromRejectCount; ++r) {
    c.prom_rw_rejected_series[r] = &registry.AddCounter(
        "otlp_recv_prom_rw_rejected_series_total",
        "Remote-write series dropped from accepted requests (their samples count as rejected items), by reason.",
        {{"reason", std::string(PromRejectName(static_cast<PromReject>(r)))}});
  }
  c.prom_rw_dropped_histograms = &registry.AddCounter(
      "otlp_recv_prom_rw_native_histograms_total",
      "Native histogram samples in accepted remote-write requests (not stored by telkit yet; forwarded "
      "as received unless bad series had to be removed).");
  for (int r = 0; r < kLokiRejectCount; ++r) {
    c.loki_rejected_entries[r] = &registry.AddCounter(
        "otlp_recv_loki_rejected_entries_total",
        "Loki push entries dropped from accepted requests (answered 400 with the first reason), by reason.",
        {{"reason", std::string(LokiRejectName(static_cast<LokiReject>(r)))}});
  }
  c.loki_invalid_utf8 = &registry.AddCounter(
      "otlp_recv_loki_invalid_utf8_total",
      "Invalid UTF-8 sequences in Loki push labels, lines and structured metadata, replaced by U+FFFD.");
  c.queue_frames = &registry.AddGauge("otlp_recv_queue_frames", "Frames waiting for the output.");
  c.queue_bytes = &registry.AddGauge("otlp_recv_queue_bytes",
                                     "Payload bytes waiting for the output, the frame being written included.");
  registry.AddGauge("otlp_recv_queue_capacity_bytes", "Queue capacity; requests are refused (503) beyond it.")
      .Set(static_cast<double>(options_.queue_capacity_bytes));
  c.frames_written = &registry.AddCounter("otlp_recv_written_frames_total", "Frames written to the output.");
  c.bytes_written =
      &registry.AddCounter("otlp_recv_written_bytes_total", "Payload bytes of the frames written to the output.");
  c.frames_dropped =
      &registry.AddCounter("otlp_recv_dropped_frames_total",
                           "Accepted frames that never reached the output (output failure, shutdown timeout).");
  c.output_errors = &registry.AddCounter("otlp_recv_output_errors_total", "Failed writes to the output.");
  // Stats() is safe from any thread; the output outlives the registry's use.
  registry.AddCallback("otlp_recv_output_unacked_bytes",
                       "Bytes written to a socket output and not yet acknowledged by the next stage.",
                       MetricType::kGauge, {},
                       [out = output_.get()] { return static_cast<double>(out->Stats().unacked_bytes); });

  writer_ = std::thread([this] { WriterLoop(); });
}

OtlpReceiver::~OtlpReceiver() {
  if (!shut_down_.load()) (void)Shutdown(std::chrono::milliseconds(0));
}

int OtlpReceiver::SignalIndex(Signal signal) const {
  switch (signal) {
    case Signal::kTraces:
      return 0;
    case Signal::kMetrics:
      return 1;
    case Signal::kLogs:
      return 2;
    case Signal::kPrometheusRemoteWrite:
      return 3;
    default:
      return -1;
  }
}

void OtlpReceiver::CountRefusal(Transport transport, RefuseReason reason) {
  counters_->refused[static_cast<int>(transport)][static_cast<int>(reason)]->Increment();
}

ExportOutcome OtlpReceiver::Refuse(const ExportRequest& request, RefuseReason reason, std::string message) {
  CountRefusal(request.transport, reason);
  ExportOutcome outcome;
  outcome.status = Status(StatusCodeFor(reason), std::move(message));
  outcome.reason = reason;
  if (outcome.status.code() == StatusCode::kUnavailable) outcome.retry_after_seconds = options_.retry_after_seconds;
  return outcome;
}

ExportOutcome OtlpReceiver::Export(ExportRequest request) {
  const int transport = static_cast<int>(request.transport);
  counters_->bytes_in[transport]->Increment(request.body.size());
  const int signal_index = SignalIndex(request.signal);
  if (signal_index < 0) {
    return Refuse(request, RefuseReason::kNotFound,
                  fmt::format("signal '{}' is not an OTLP signal", SignalName(request.signal)));
  }
  if (draining_.load()) return Refuse(request, RefuseReason::kDraining, "receiver is shutting down, retry later");
  if (request.body.size() > options_.max_request_bytes) {
    return Refuse(request, RefuseReason::kTooLarge,
                  fmt::format("request body of {} bytes exceeds the limit of {} bytes", request.body.size(),
                              options_.max_request_bytes));
  }
  if (request.signal == Signal::kPrometheusRemoteWrite) return ExportRemoteWrite(std::move(request));
  if (request.encoding == ContentEncoding::kSnappy) {
    return Refuse(request, RefuseReason::kUnsupportedEncoding, "snappy is for Prometheus remote write only");
  }

  // The bytes that become the frame's payload: the body itself whenever it
  // can be forwarded as received.
  std::string bytes;
  if (request.encoding == ContentEncoding::kIdentity) {
    bytes = std::move(request.body);
  } else {
    const bool gzip = request.encoding == ContentEncoding::kGzip;
    Result<std::string> inflated = gzip ? GzipDecompress(request.body, options_.max_decompressed_bytes)
                                        : ZlibDeflateDecompress(request.body, options_.max_decompressed_bytes);
    if (!inflated.ok()) {
      if (inflated.status().code() == StatusCode::kResourceExhausted) {
        return Refuse(request, RefuseReason::kDecompressedTooLarge,
                      fmt::format("request body decompresses to more than {} bytes", options_.max_decompressed_bytes));
      }
      return Refuse(request, RefuseReason::kBadData,
                    fmt::format("invalid {} body: {}", gzip ? "gzip" : "deflate", inflated.status().message()));
    }
    bytes = std::move(inflated).value();
    request.body = std::string();  // free the compressed copy early
  }

  if (request.format == PayloadFormat::kJson) {
    if (bytes.size() > options_.max_decompressed_bytes) {
      return Refuse(request, RefuseReason::kDecompressedTooLarge,
                    fmt::format("JSON body of {} bytes exceeds the limit of {} bytes", bytes.size(),
                                options_.max_decompressed_bytes));
    }
    Result<std::string> converted = OtlpJsonToProtobuf(request.signal, bytes);
    if (!converted.ok()) {
      return Refuse(
          request, RefuseReason::kBadData,
          fmt::format("invalid OTLP/JSON {} request: {}", SignalName(request.signal), converted.status().message()));
    }
    bytes = std::move(converted).value();
  }

  ScanOptions scan_options;
  scan_options.check_utf8 = options_.check_utf8;
  Result<ScanReport> report = ScanExportRequest(request.signal, bytes, scan_options);
  if (!report.ok()) {
    return Refuse(
        request,
        report.status().code() == StatusCode::kResourceExhausted ? RefuseReason::kTooLarge : RefuseReason::kBadData,
        fmt::format("invalid {} request: {}", SignalName(request.signal), report.status().message()));
  }
  if (report->items > options_.max_items_per_request) {
    return Refuse(request, RefuseReason::kTooManyItems,
                  fmt::format("request holds {} {}, more than the limit of {}", report->items, ItemNoun(request.signal),
                              options_.max_items_per_request));
  }

  ExportOutcome outcome;
  outcome.accepted_items = report->items;
  if (report->invalid_items > 0) {
    Result<FilteredRequest> filtered = RemoveInvalidItems(request.signal, bytes);
    if (!filtered.ok()) {
      return Refuse(request, RefuseReason::kBadData,
                    fmt::format("invalid {} request: {}", SignalName(request.signal), filtered.status().message()));
    }
    outcome.rejected_items = filtered->removed;
    outcome.accepted_items = report->items - filtered->removed;
    outcome.rejected_message = fmt::format("{} invalid {} rejected; the first: {}", filtered->removed,
                                           ItemNoun(request.signal), report->first_invalid_reason);
    bytes = std::move(filtered->bytes);
  }

  // A request without (valid) items has nothing to store: answered, not forwarded.
  return Enqueue(request, std::move(bytes), std::move(outcome), /*forward_empty=*/false);
}

ExportOutcome OtlpReceiver::ExportRemoteWrite(ExportRequest request) {
  std::string bytes;
  if (request.encoding == ContentEncoding::kSnappy) {
    Result<std::string> inflated = SnappyDecompress(request.body, options_.max_decompressed_bytes);
    if (!inflated.ok()) {
      if (inflated.status().code() == StatusCode::kResourceExhausted) {
        return Refuse(request, RefuseReason::kDecompressedTooLarge,
                      fmt::format("request body decompresses to more than {} bytes", options_.max_decompressed_bytes));
      }
      return Refuse(request, RefuseReason::kBadData, "invalid snappy body: " + inflated.status().message());
    }
    bytes = std::move(inflated).value();
    request.body = std::string();
  } else if (request.encoding == ContentEncoding::kIdentity) {
    bytes = std::move(request.body);
  } else {
    return Refuse(request, RefuseReason::kUnsupportedEncoding, "remote write bodies must be snappy-compressed");
  }
  if (request.format != PayloadFormat::kProtobuf) {
    return Refuse(request, RefuseReason::kUnsupportedMediaType, "remote write bodies must be protobuf");
  }
  // The hot path: a wire-level scan that checks every series as
  // DecodeWriteRequest would and forwards the bytes as received. Only a
  // request with something to leave out is decoded and re-encoded.
  int64_t samples = 0;
  int64_t histograms = 0;
  bool clean = true;
  bool has_metadata = false;
  {
    WireSeries scratch;
    const LabelLimits limits;
    Status scanned = ScanWriteRequest(
        bytes, &scratch,
        [&](WireSeries& ts) {
          samples += static_cast<int64_t>(ts.samples.size());
          histograms += ts.histograms;
          PromReject reject;
          if (clean && (ts.samples.empty() || !CheckWireLabels(&ts, limits, &reject))) clean = false;
        },
        [&](const WireMetadata& m) {
          has_metadata = true;
          if (m.family.empty() || !IsValidUtf8(m.family) || !IsValidUtf8(m.help) || !IsValidUtf8(m.unit)) {
            clean = false;
          }
        });
    if (!scanned.ok()) return Refuse(request, RefuseReason::kBadData, scanned.message());
  }
  if (samples > options_.max_items_per_request) {
    return Refuse(request, RefuseReason::kTooManyItems,
                  fmt::format("request holds {} samples, more than the limit of {}", samples,
                              options_.max_items_per_request));
  }
  if (clean) {
    ExportOutcome outcome;
    outcome.accepted_items = samples;
    // Metadata-only requests (Prometheus sends metadata on its own) are kept.
    outcome = Enqueue(request, std::move(bytes), std::move(outcome), /*forward_empty=*/has_metadata);
    if (outcome.status.ok()) counters_->prom_rw_dropped_histograms->Increment(static_cast<uint64_t>(histograms));
    return outcome;
  }
  Result<DecodedWriteRequest> decoded = DecodeWriteRequest(bytes);
  if (!decoded.ok()) return Refuse(request, RefuseReason::kBadData, decoded.status().message());
  ExportOutcome outcome;
  outcome.accepted_items = decoded->samples;
  if (decoded->rejected.Total() > 0) {
    // Forward only what a store can take: re-encode without the bad series.
    outcome.rejected_items = decoded->rejected_samples;
    outcome.rejected_message = fmt::format("{} series rejected; the first: {}", decoded->rejected.Total(),
                                           decoded->rejected.first_message);
    bytes = EncodeWriteRequest(decoded->series, decoded->metadata);
  }
  // Metadata-only requests (Prometheus sends metadata on its own) are kept.
  outcome = Enqueue(request, std::move(bytes), std::move(outcome), /*forward_empty=*/!decoded->metadata.empty());
  if (outcome.status.ok()) {  // a refused request is retried: count it then
    Counters& c = *counters_;
    for (int r = 0; r < kPromRejectCount; ++r) {
      if (decoded->rejected.by_reason[r] > 0) {
        c.prom_rw_rejected_series[r]->Increment(static_cast<uint64_t>(decoded->rejected.by_reason[r]));
      }
    }
    c.prom_rw_dropped_histograms->Increment(static_cast<uint64_t>(decoded->dropped_native_histograms));
  }
  return outcome;
}

ExportOutcome OtlpReceiver::ExportLokiPush(ExportRequest request) {
  request.signal = Signal::kLogs;
  counters_->bytes_in[static_cast<int>(request.transport)]->Increment(request.body.size());
  if (draining_.load()) return Refuse(request, RefuseReason::kDraining, "receiver is shutting down, retry later");
  if (request.body.size() > options_.max_request_bytes) {
    return Refuse(request, RefuseReason::kTooLarge,
                  fmt::format("request body of {} bytes exceeds the limit of {} bytes", request.body.size(),
                              options_.max_request_bytes));
  }
  const bool json = request.format == PayloadFormat::kJson;
  std::string bytes;
  if (request.encoding == ContentEncoding::kIdentity && json) {
    bytes = std::move(request.body);
  } else {
    Result<std::string> inflated = InvalidArgumentError("");
    std::string_view what;
    if (!json && (request.encoding == ContentEncoding::kSnappy || request.encoding == ContentEncoding::kIdentity)) {
      what = "snappy";
      inflated = SnappyDecompress(request.body, options_.max_decompressed_bytes);
    } else if (json && request.encoding == ContentEncoding::kGzip) {
      what = "gzip";
      inflated = GzipDecompress(request.body, options_.max_decompressed_bytes);
    } else if (json && request.encoding == ContentEncoding::kDeflate) {
      what = "deflate";
      inflated = ZlibDeflateDecompress(request.body, options_.max_decompressed_bytes);
    } else {
      return Refuse(request, RefuseReason::kUnsupportedEncoding,
                    json ? "JSON push bodies take Content-Encoding gzip, deflate or none"
                         : "protobuf push bodies are snappy-compressed; Content-Encoding must be snappy or none");
    }
    if (!inflated.ok()) {
      if (inflated.status().code() == StatusCode::kResourceExhausted) {
        return Refuse(request, RefuseReason::kDecompressedTooLarge,
                      fmt::format("request body decompresses to more than {} bytes", options_.max_decompressed_bytes));
      }
      return Refuse(request, RefuseReason::kBadData,
                    fmt::format("invalid {} body: {}", what, inflated.status().message()));
    }
    bytes = std::move(inflated).value();
    request.body = std::string();
  }
  if (bytes.size() > options_.max_decompressed_bytes) {
    return Refuse(request, RefuseReason::kDecompressedTooLarge,
                  fmt::format("push body of {} bytes exceeds the limit of {} bytes", bytes.size(),
                              options_.max_decompressed_bytes));
  }
  Result<DecodedLokiPush> decoded =
      json ? DecodeLokiPushJson(bytes, options_.loki) : DecodeLokiPushProtobuf(bytes, options_.loki);
  if (!decoded.ok()) return Refuse(request, RefuseReason::kBadData, decoded.status().message());
  const int64_t entries = decoded->entries + decoded->rejected_entries;
  if (entries > options_.max_items_per_request) {
    return Refuse(request, RefuseReason::kTooManyItems,
                  fmt::format("request holds {} entries, more than the limit of {}", entries,
                              options_.max_items_per_request));
  }
  ExportOutcome outcome;
  outcome.accepted_items = decoded->entries;
  outcome.rejected_items = decoded->rejected_entries;
  outcome.rejected_message = decoded->first_error;
  std::string payload = decoded->entries > 0 ? LokiPushToOtlpLogs(*decoded) : std::string();
  outcome = Enqueue(request, std::move(payload), std::move(outcome), /*forward_empty=*/false);
  if (outcome.status.ok()) {  // a refused request is retried: count it then
    Counters& c = *counters_;
    for (int r = 0; r < kLokiRejectCount; ++r) {
      if (decoded->rejected_by_reason[r] > 0) {
        c.loki_rejected_entries[r]->Increment(static_cast<uint64_t>(decoded->rejected_by_reason[r]));
      }
    }
    c.loki_invalid_utf8->Increment(static_cast<uint64_t>(decoded->invalid_utf8));
  }
  return outcome;
}

ExportOutcome OtlpReceiver::Enqueue(const ExportRequest& request, std::string bytes, ExportOutcome outcome,
                                   bool forward_empty) {
  const int transport = static_cast<int>(request.transport);
  const int signal_index = SignalIndex(request.signal);
  if (outcome.accepted_items > 0 || forward_empty) {
    Frame frame;
    frame.signal = static_cast<uint8_t>(request.signal);
    frame.time_unix_nano = NowUnixNano();
    frame.payload = std::move(bytes);
    const uint64_t size = frame.payload.size();
    std::unique_lock lock(queue_mu_);
    if (output_failed_.load()) {
      std::string why = output_status_.message();
      lock.unlock();
      return Refuse(request, RefuseReason::kOutputFailed, "output stream failed (" + why + "), retry later");
    }
    if (closed_) {
      lock.unlock();
      return Refuse(request, RefuseReason::kDraining, "receiver is shutting down, retry later");
    }
    if (queue_bytes_ > 0 && queue_bytes_ + size > options_.queue_capacity_bytes &&
        options_.queue_wait.count() > 0) {
      // Hold the request until the writer makes room, the wait runs out, the
      // receiver drains or the output fails.
      space_cv_.wait_for(lock, options_.queue_wait, [&] {
        return queue_bytes_ == 0 || queue_bytes_ + size <= options_.queue_capacity_bytes || closed_ ||
               draining_.load() || output_failed_.load();
      });
      if (output_failed_.load()) {
        std::string why = output_status_.message();
        lock.unlock();
        return Refuse(request, RefuseReason::kOutputFailed, "output stream failed (" + why + "), retry later");
      }
      if (closed_) {
        lock.unlock();
        return Refuse(request, RefuseReason::kDraining, "receiver is shutting down, retry later");
      }
    }
    if (queue_bytes_ > 0 && queue_bytes_ + size > options_.queue_capacity_bytes) {
      uint64_t queued = queue_bytes_;
      lock.unlock();
      return Refuse(
          request, RefuseReason::kQueueFull,
          fmt::format("output queue is full ({} of {} bytes), retry later", queued, options_.queue_capacity_bytes));
    }
    queue_.push_back(std::move(frame));
    queue_bytes_ += size;
    counters_->queue_frames->Set(static_cast<double>(queue_.size()));
    counters_->queue_bytes->Set(static_cast<double>(queue_bytes_));
    lock.unlock();
    queue_cv_.notify_one();
  }

  counters_->accepted_requests[signal_index][transport]->Increment();
  counters_->received_items[signal_index][transport]->Increment(static_cast<uint64_t>(outcome.accepted_items));
  counters_->rejected_items[signal_index][transport]->Increment(static_cast<uint64_t>(outcome.rejected_items));
  return outcome;
}

void OtlpReceiver::WriterLoop() {
  std::unique_lock lock(queue_mu_);
  for (;;) {
    queue_cv_.wait(lock, [&] { return !queue_.empty() || closed_; });
    if (queue_.empty()) break;  // closed and everything written
    Frame frame = std::move(queue_.front());
    queue_.pop_front();
    const uint64_t size = frame.payload.size();
    lock.unlock();
    Status status = output_->Write(std::move(frame));
    lock.lock();
    queue_bytes_ -= size;
    if (!status.ok()) {
      output_status_ = status;
      output_failed_.store(true);
      counters_->output_errors->Increment();
      counters_->frames_dropped->Increment(1 + queue_.size());
      queue_.clear();
      queue_bytes_ = 0;
    } else {
      counters_->frames_written->Increment();
      counters_->bytes_written->Increment(size);
    }
    counters_->queue_frames->Set(static_cast<double>(queue_.size()));
    counters_->queue_bytes->Set(static_cast<double>(queue_bytes_));
    space_cv_.notify_all();
    if (!status.ok()) break;
  }
  writer_done_ = true;
  writer_cv_.notify_all();
}

OtlpReceiver::InFlight OtlpReceiver::TrackRequest(Transport transport) {
  requests_seen_.fetch_add(1, std::memory_order_relaxed);
  counters_->in_flight[static_cast<int>(transport)]->Add(1);
  std::lock_guard lock(in_flight_mu_);
  ++in_flight_;
  return InFlight(this, transport);
}

OtlpReceiver::InFlight::~InFlight() {
  if (receiver_ == nullptr) return;
  receiver_->counters_->in_flight[static_cast<int>(transport_)]->Add(-1);
  std::lock_guard lock(receiver_->in_flight_mu_);
  if (--receiver_->in_flight_ == 0) receiver_->in_flight_cv_.notify_all();
}

bool OtlpReceiver::Idle() const {
  {
    std::lock_guard lock(in_flight_mu_);
    if (in_flight_ != 0) return false;
  }
  std::lock_guard lock(queue_mu_);
  return queue_bytes_ == 0;
}

bool OtlpReceiver::Ready() const { return !draining_.load() && !output_failed_.load(); }

Status OtlpReceiver::OutputStatus() const {
  std::lock_guard lock(queue_mu_);
  return output_status_;
}

void OtlpReceiver::StartDrain() {
  draining_.store(true);
  std::lock_guard lock(queue_mu_);
  space_cv_.notify_all();  // requests waiting for room are refused now
}

Status OtlpReceiver::Shutdown(std::chrono::milliseconds timeout) {
  if (shut_down_.exchange(true)) return OkStatus();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  StartDrain();
  {
    std::unique_lock lock(in_flight_mu_);
    in_flight_cv_.wait_until(lock, deadline, [&] { return in_flight_ == 0; });
  }
  bool timed_out = false;
  uint64_t left = 0;
  {
    std::unique_lock lock(queue_mu_);
    closed_ = true;
    queue_cv_.notify_all();
    space_cv_.notify_all();
    if (!writer_cv_.wait_until(lock, deadline, [&] { return writer_done_; })) {
      timed_out = true;
      left = queue_.size();
    }
  }
  // Unblocks a Write() waiting for a socket peer; the writer then drops the
  // rest (counted) and ends.
  if (timed_out) output_->Cancel();
  writer_.join();
  if (timed_out) {
    return Status(StatusCode::kDeadlineExceeded,
                  fmt::format("shutdown timed out after {} ms with {} frames still queued; they were dropped",
                              timeout.count(), left));
  }
  {
    std::lock_guard lock(queue_mu_);
    if (!output_status_.ok()) return output_status_.WithContext("output");
  }
  const auto remaining =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  Status drained = output_->Drain(static_cast<int>(std::max<int64_t>(0, remaining.count())));
  if (!drained.ok()) return drained.WithContext("drain output");
  return OkStatus();
}

}  // namespace telkit
