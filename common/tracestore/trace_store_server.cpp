#include "common/tracestore/trace_store_server.h"

#include <chrono>
#include <limits>

#include "common/admin/process_metrics.h"
#include "common/otlp/signal.h"
#include "common/tsdb/metrics_reader.h"

#include <unistd.h>

namespace telkit {

Result<std::unique_ptr<TraceStoreServer>> TraceStoreServer::Start(TraceStoreServerConfig config) {
  if (config.cut_interval_ms <= 0) return InvalidArgumentError("cut interval must be positive");
  if (config.metrics_interval_ms <= 0) return InvalidArgumentError("metrics interval must be positive");
  std::unique_ptr<TraceStoreServer> s(new TraceStoreServer());
  s->config_ = std::move(config);
  if (!s->config_.metrics_out.empty()) {
    TELKIT_ASSIGN_OR_RETURN(s->metrics_out_, OpenStreamOutput(s->config_.metrics_out));
    s->generator_ = std::make_unique<SpanMetricsGenerator>(s->config_.metrics);
    SpanMetricsGenerator* g = s->generator_.get();
    auto clock = s->config_.store.clock;
    s->config_.store.on_span = [g, clock](const SpanRecord& span) {
      g->Consume(span, clock ? clock()
                             : std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
    };
  }
  TELKIT_ASSIGN_OR_RETURN(s->lock_, LockStoreDir(s->config_.data_dir, StoreLockInfo{static_cast<int>(::getpid()), ""}));
  TELKIT_ASSIGN_OR_RETURN(s->store_, TraceStore::Open(DefaultFileSystem(), s->config_.data_dir, s->config_.store));
  s->registry_ = std::make_unique<MetricsRegistry>();
  RegisterProcessMetrics(*s->registry_, "trace-store");
  s->RegisterMetrics();
  if (s->config_.admin) {
    AdminServerOptions ao;
    ao.listen = *s->config_.admin;
    TraceStoreServer* self = s.get();
    ao.ready = [self] { return self->status().ok(); };
    TELKIT_ASSIGN_OR_RETURN(s->admin_, AdminServer::Start(ao, *s->registry_));
    TELKIT_RETURN_IF_ERROR(UpdateStoreLock(
        s->lock_.get(), StoreLockInfo{static_cast<int>(::getpid()),
                                      ListenAddress{s->config_.admin->host, s->admin_->port()}.ToString()}));
  }
  for (const std::string& spec : s->config_.inputs) {
    TELKIT_ASSIGN_OR_RETURN(auto in, OpenStreamInput(spec, s->config_.input));
    s->inputs_.push_back(std::move(in));
  }
  s->inputs_open_ = static_cast<int>(s->inputs_.size());
  for (auto& in : s->inputs_) s->readers_.emplace_back(&TraceStoreServer::ReadLoop, s.get(), in.get());
  s->cutter_ = std::thread(&TraceStoreServer::CutLoop, s.get());
  if (s->generator_) s->metrics_thread_ = std::thread(&TraceStoreServer::MetricsLoop, s.get());
  return s;
}

TraceStoreServer::~TraceStoreServer() { (void)Shutdown(); }

void TraceStoreServer::Fail(const Status& s) {
  std::lock_guard<std::mutex> l(mu_);
  if (status_.ok()) status_ = s;
}

Status TraceStoreServer::status() const {
  std::lock_guard<std::mutex> l(mu_);
  return status_;
}

void TraceStoreServer::ReadLoop(StreamInput* in) {
  for (;;) {
    auto frame = in->Next();
    if (!frame.ok()) {
      if (frame.status().code() != StatusCode::kCancelled) Fail(frame.status().WithContext("input"));
      break;
    }
    if (!frame->has_value()) break;
    const Frame& f = **frame;
    frames_.fetch_add(1, std::memory_order_relaxed);
    if (f.signal_enum() != Signal::kTraces) {
      frames_other_signal_.fetch_add(1, std::memory_order_relaxed);
      in->Acknowledge(f);
      continue;
    }
    Status s = store_->Append(f.payload);
    if (s.code() == StatusCode::kInvalidArgument) {
      frames_invalid_.fetch_add(1, std::memory_order_relaxed);
      in->Acknowledge(f);
      continue;
    }
    if (!s.ok()) {
      Fail(s.WithContext("store"));
      break;
    }
    in->Acknowledge(f);
  }
  inputs_open_.fetch_sub(1);
}

void TraceStoreServer::CutLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    cv_.wait_for(l, std::chrono::milliseconds(config_.cut_interval_ms));
    if (stopping_) break;
    l.unlock();
    auto r = store_->CutIdle();
    if (!r.ok()) cut_failures_.fetch_add(1, std::memory_order_relaxed);
    l.lock();
  }
}

namespace {
int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Status TraceStoreServer::WriteMetrics(bool final) {
  int64_t now = NowNanos();
  // At exit nothing more can pair: every pending half becomes what it can.
  generator_->Expire(final ? std::numeric_limits<int64_t>::max() : now);
  Frame f;
  f.signal = static_cast<uint8_t>(Signal::kMetrics);
  f.payload = generator_->Collect(now);
  Status s = metrics_out_->Write(std::move(f));
  if (s.ok()) {
    metrics_frames_.fetch_add(1, std::memory_order_relaxed);
  } else {
    metrics_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  return s;
}

void TraceStoreServer::MetricsLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    cv_.wait_for(l, std::chrono::milliseconds(config_.metrics_interval_ms));
    if (stopping_) break;
    l.unlock();
    (void)WriteMetrics(false);  // counted; the next interval writes the cumulative values again
    l.lock();
  }
}

Status TraceStoreServer::Shutdown() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (shut_down_) return status_;
    shut_down_ = true;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& in : inputs_) in->Cancel();
  for (auto& t : readers_) t.join();
  if (cutter_.joinable()) cutter_.join();
  if (metrics_thread_.joinable()) metrics_thread_.join();
  if (!store_) return status();  // Start failed before the store opened
  if (generator_) {
    // The last values, and wait (bounded) for them to be delivered.
    Status m = WriteMetrics(true);
    if (m.ok()) m = metrics_out_->Drain(5000);
    if (!m.ok()) Fail(m.WithContext("metrics output"));
  }
  if (config_.cut_on_shutdown) {
    auto r = store_->CutAll();
    if (!r.ok()) Fail(r.status().WithContext("cut on shutdown"));
  }
  Status closed = store_->Close();
  if (!closed.ok()) Fail(closed);
  if (admin_) admin_->Stop();
  return status();
}

void TraceStoreServer::RegisterMetrics() {
  TraceStore* st = store_.get();
  MetricsRegistry& r = *registry_;
  auto stat = [st](auto field) { return [st, field] { return static_cast<double>(st->stats().*field); }; };
  using S = TraceStoreStats;
  auto counter = [&](const char* name, const char* help, auto field) {
    r.AddCallback(name, help, MetricType::kCounter, {}, stat(field));
  };
  auto gauge = [&](const char* name, const char* help, auto field) {
    r.AddCallback(name, help, MetricType::kGauge, {}, stat(field));
  };
  counter("trace_store_requests_total", "Trace requests appended.", &S::requests);
  counter("trace_store_requests_invalid_total", "Payloads that are not an ExportTraceServiceRequest.",
          &S::requests_invalid);
  counter("trace_store_spans_received_total", "Spans received.", &S::spans_received);
  counter("trace_store_spans_stored_total", "Spans accepted into live traces.", &S::spans_stored);
  counter("trace_store_spans_duplicate_total", "Spans dropped as duplicates (same trace and span id).",
          &S::spans_duplicate);
  counter("trace_store_spans_invalid_total", "Spans with a bad trace or span id.", &S::spans_invalid);
  counter("trace_store_spans_refused_trace_spans_total", "Spans refused: trace over its span limit.",
          &S::spans_refused_trace_spans);
  counter("trace_store_spans_refused_trace_bytes_total", "Spans refused: trace over its byte limit.",
          &S::spans_refused_trace_bytes);
  counter("trace_store_attributes_truncated_total", "String attribute values cut to the size limit.",
          &S::attributes_truncated);
  gauge("trace_store_live_traces", "Traces not yet cut to a block.", &S::live_traces);
  gauge("trace_store_live_spans", "Spans of live traces.", &S::live_spans);
  counter("trace_store_traces_cut_total", "Traces written to blocks.", &S::traces_cut);
  counter("trace_store_blocks_written_total", "Blocks written.", &S::blocks_written);
  counter("trace_store_blocks_removed_total", "Blocks removed by retention.", &S::blocks_removed);
  gauge("trace_store_blocks", "Blocks on disk.", &S::blocks);
  gauge("trace_store_block_bytes", "Bytes of the blocks on disk.", &S::block_bytes);
  counter("trace_store_cut_errors_total", "Block cuts that failed (retried).", &S::cut_errors);
  r.AddCallback("trace_store_wal_syncs_total", "WAL fsyncs (concurrent appends share one).", MetricType::kCounter, {},
                [st] { return static_cast<double>(st->stats().wal.commits); });
  r.AddCallback("trace_store_frames_total", "Stream frames read.", MetricType::kCounter, {},
                [this] { return static_cast<double>(frames_.load()); });
  r.AddCallback("trace_store_frames_other_signal_total", "Frames of another signal, skipped.",
                MetricType::kCounter, {}, [this] { return static_cast<double>(frames_other_signal_.load()); });
  r.AddCallback("trace_store_frames_invalid_total", "Traces frames whose payload does not parse, skipped.",
                MetricType::kCounter, {}, [this] { return static_cast<double>(frames_invalid_.load()); });
  r.AddCallback("trace_store_metrics_frames_total", "Span metrics frames written.", MetricType::kCounter, {},
                [this] { return static_cast<double>(metrics_frames_.load()); });
  r.AddCallback("trace_store_metrics_write_errors_total", "Span metrics frames that failed to write.",
                MetricType::kCounter, {}, [this] { return static_cast<double>(metrics_errors_.load()); });
  r.AddCallback("trace_store_inputs_open", "Stream inputs still reading.", MetricType::kGauge, {},
                [this] { return static_cast<double>(inputs_open_.load()); });
}

}  // namespace telkit
