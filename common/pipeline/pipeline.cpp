#include "common/pipeline/pipeline.h"

#include "common/pipeline/loki_sink.h"

#include <fcntl.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>

namespace telkit {
namespace {

// routes_ index of a signal: traces, metrics (and prom-rw), logs, default.
int RouteIndex(uint8_t signal) {
  switch (SignalSlot(signal)) {
    case 0: return 0;
    case 1: case 3: return 1;
    case 2: return 2;
    default: return 3;
  }
}

// A listening input buffers this much across its connections before its
// connection readers stop (plus one frame each); the budget bounds the rest.
constexpr uint64_t kListenBufferBytes = 8ull << 20;
// Readers hand at most this much (plus one frame each) to the pipeline
// thread ahead of what it processed: reading further ahead only costs memory
// and cache.
constexpr uint64_t kQueueBytes = 8ull << 20;

// This process's resident set (/proc/self/statm), read at most every 10 ms;
// 0 when it cannot be read.
uint64_t ResidentBytes() {
  static std::atomic<int64_t> last_ns{-1};
  static std::atomic<uint64_t> cached{0};
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  const int64_t last = last_ns.load(std::memory_order_relaxed);
  if (last >= 0 && now - last < 10'000'000) return cached.load(std::memory_order_relaxed);
  uint64_t bytes = 0;
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[128];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n > 0) {
      buf[n] = '\0';
      char* end = nullptr;
      std::strtoull(buf, &end, 10);                         // total program size
      const unsigned long long pages = std::strtoull(end, nullptr, 10);  // resident
      bytes = pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    }
  }
  cached.store(bytes, std::memory_order_relaxed);
  last_ns.store(now, std::memory_order_relaxed);
  return bytes;
}

void ReleaseFreeMemory() {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

}  // namespace

Pipeline::Pipeline(const PipelineOptions& options, MetricsRegistry& registry)
    : options_(options),
      metrics_(std::make_unique<PipelineMetrics>(registry)),
      budget_(options.processors.memory_soft_bytes, options.processors.memory_hard_bytes),
      acks_([this](size_t input, uint64_t origin, uint64_t sequence) {
        Frame f;
        f.origin = origin;
        f.sequence = sequence;
        inputs_[input]->Acknowledge(f);
      }) {}

Result<std::unique_ptr<Pipeline>> Pipeline::Start(const PipelineOptions& options, MetricsRegistry& registry) {
  if (options.out.empty() && options.traces_out.empty() && options.metrics_out.empty() && options.logs_out.empty()) {
    return InvalidArgumentError("no output: give --out or a per-signal output");
  }
  if (options.inputs.empty()) return InvalidArgumentError("no input");
  std::unique_ptr<Pipeline> p(new Pipeline(options, registry));
  TELKIT_RETURN_IF_ERROR(p->Open());
  p->RegisterMetrics();
  p->readers_running_ = p->inputs_.size();  // before the pipeline thread looks at it
  p->pipeline_thread_ = std::thread([raw = p.get()] { raw->PipelineLoop(); });
  for (size_t i = 0; i < p->inputs_.size(); ++i) {
    p->readers_.emplace_back([raw = p.get(), i] { raw->ReadLoop(i); });
  }
  return p;
}

Status Pipeline::Open() {
  std::map<std::string, OutputWorker*> by_spec;
  auto add_route = [&](int route, const std::vector<std::string>& specs) -> Status {
    for (const std::string& spec : specs) {
      OutputWorker*& worker = by_spec[spec];
      if (worker == nullptr) {
        Result<OutputTarget> target = ParseOutputTarget(spec, options_.exporter);
        if (!target.ok()) return target.status();
        Result<std::unique_ptr<OutputSink>> sink =
            IsLokiSpec(spec)                                    ? OpenLokiSink(spec, options_.exporter)
            : !options_.spool.dir.empty() && CanSpool(*target) ? OpenSpoolSink(*target, options_.spool)
                                                                : OpenOutputSink(*target, options_.processors.memory_hard_bytes);
        if (!sink.ok()) return sink.status().WithContext("output '" + spec + "'");
        workers_.push_back(std::make_unique<OutputWorker>(
            spec, std::move(*sink), *metrics_, [this](const std::shared_ptr<Delivery>& d) { Taken(d); }));
        worker = workers_.back().get();
      }
      std::vector<OutputWorker*>& r = routes_[route];
      if (std::find(r.begin(), r.end(), worker) == r.end()) r.push_back(worker);
    }
    return OkStatus();
  };
  TELKIT_RETURN_IF_ERROR(add_route(0, options_.traces_out.empty() ? options_.out : options_.traces_out));
  TELKIT_RETURN_IF_ERROR(add_route(1, options_.metrics_out.empty() ? options_.out : options_.metrics_out));
  TELKIT_RETURN_IF_ERROR(add_route(2, options_.logs_out.empty() ? options_.out : options_.logs_out));
  TELKIT_RETURN_IF_ERROR(add_route(3, options_.out));
  budget_.SetExternal([this] {
    uint64_t n = 0;
    for (const auto& w : workers_) n += w->sink().unacked_bytes();
    return n;
  });
  budget_.SetResident(ResidentBytes, ReleaseFreeMemory, ResidentBytes());

  std::array<bool, kSignalSlots> routed{};
  for (int slot = 0; slot < kSignalSlots; ++slot) {
    static constexpr uint8_t kSlotSignal[kSignalSlots] = {1, 2, 3, 4, 0};
    routed[slot] = !routes_[RouteIndex(kSlotSignal[slot])].empty();
  }
  core_ = std::make_unique<PipelineCore>(options_.processors, routed, *metrics_);

  StreamInputOptions in;
  in.on_corruption = options_.on_corruption;
  in.max_payload_bytes = options_.max_frame_bytes;
  in.on_corruption_report = options_.on_corruption_report;
  in.max_buffered_bytes = kListenBufferBytes;
  for (const std::string& spec : options_.inputs) {
    Result<std::unique_ptr<StreamInput>> input = OpenStreamInput(spec, in);
    if (!input.ok()) return input.status().WithContext("input '" + spec + "'");
    inputs_.push_back(std::move(*input));
  }
  return OkStatus();
}

void Pipeline::RegisterMetrics() {
  MetricsRegistry& r = metrics_->registry();
  auto gauge = [&](std::string_view name, std::string_view help, const MetricLabels& labels,
                   std::function<double()> fn) {
    r.AddCallback(name, help, MetricType::kGauge, labels, std::move(fn));
  };
  auto counter = [&](std::string_view name, std::string_view help, std::function<double()> fn) {
    r.AddCallback(name, help, MetricType::kCounter, {}, std::move(fn));
  };
  gauge("tel_batch_queue_frames", "Frames read and waiting for the processors", {}, [this] {
    std::lock_guard lock(mu_);
    return static_cast<double>(queue_.size());
  });
  gauge("tel_batch_queue_bytes", "Payload bytes read and waiting for the processors", {}, [this] {
    std::lock_guard lock(mu_);
    return static_cast<double>(queue_bytes_);
  });
  gauge("tel_batch_batched_items", "Items waiting in open batches", {},
        [this] { return static_cast<double>(core_->batched_items()); });
  gauge("tel_batch_tail_held_traces", "Traces tail_sampling holds until their decision", {},
        [this] { return static_cast<double>(core_->tail_held_traces()); });
  gauge("tel_batch_tail_held_spans", "Spans tail_sampling holds until their trace's decision", {},
        [this] { return static_cast<double>(core_->tail_held_spans()); });
  gauge("tel_batch_memory_bytes",
        "Bytes held: queued, batched, waiting for outputs, and in socket outputs' resend buffers", {},
        [this] { return static_cast<double>(budget_.in_use()); });
  gauge("tel_batch_memory_limit_bytes", "The memory limiter's limits (0: none)", {{"limit", "soft"}},
        [this] { return static_cast<double>(budget_.soft_limit()); });
  gauge("tel_batch_memory_limit_bytes", "The memory limiter's limits (0: none)", {{"limit", "hard"}},
        [this] { return static_cast<double>(budget_.hard_limit()); });
  gauge("tel_batch_inputs_paused", "Inputs waiting for the memory limiter now", {},
        [this] { return static_cast<double>(budget_.waiting()); });
  counter("tel_batch_input_pauses_total", "Times an input had to wait for the memory limiter",
          [this] { return static_cast<double>(budget_.pauses()); });
  counter("tel_batch_input_resident_pauses_total",
          "Times an input waited because the process's resident memory was over the soft limit",
          [this] { return static_cast<double>(budget_.resident_pauses()); });
  gauge("tel_batch_unacknowledged_input_frames", "Input frames read and not yet delivered or dropped", {},
        [this] { return static_cast<double>(acks_.pending()); });
  auto input_sum = [this](uint64_t StreamInputStats::*field) {
    return [this, field] {
      uint64_t n = 0;
      for (const auto& in : inputs_) n += in->Stats().*field;
      return static_cast<double>(n);
    };
  };
  counter("tel_batch_corrupt_frames_total", "Corrupt input frames skipped",
          input_sum(&StreamInputStats::frames_corrupt));
  counter("tel_batch_skipped_bytes_total", "Input bytes skipped to resynchronise after corruption",
          input_sum(&StreamInputStats::bytes_skipped));
  counter("tel_batch_input_connections_total", "Upstream connections accepted",
          input_sum(&StreamInputStats::connections_accepted));
  gauge("tel_batch_input_connections", "Upstream connections open", {},
        input_sum(&StreamInputStats::connections_open));
}

Pipeline::~Pipeline() { (void)Shutdown(std::chrono::milliseconds(0)); }

void Pipeline::ReadLoop(size_t index) {
  StreamInput& input = *inputs_[index];
  for (;;) {
    Result<std::optional<Frame>> r = input.Next();
    if (!r.ok()) {
      if (r.status().code() != StatusCode::kCancelled) {
        Fail(r.status().WithContext("input '" + options_.inputs[index] + "'"));
      }
      break;
    }
    if (!r->has_value()) break;
    Frame frame = std::move(**r);
    frames_read_.fetch_add(1);
    const uint64_t n = frame.payload.size();
    if (!budget_.Acquire(n)) budget_.ForceAcquire(n);  // stopping: what was read is still processed
    const uint64_t id = acks_.Begin(index, frame.origin, frame.sequence);
    {
      std::unique_lock lock(mu_);
      space_cv_.wait(lock, [&] { return queue_bytes_ < kQueueBytes || stopping_; });
      queue_bytes_ += n;
      queue_.push_back({std::move(frame), id, n});
    }
    cv_.notify_one();
  }
  {
    std::lock_guard lock(mu_);
    --readers_running_;
  }
  cv_.notify_all();
}

void Pipeline::PipelineLoop() {
  std::vector<telkit::Dispatch> out;
  for (;;) {
    std::optional<Queued> item;
    std::optional<ProcessorConfig> config;
    bool finished = false;
    {
      std::unique_lock lock(mu_);
      auto ready = [&] { return !queue_.empty() || readers_running_ == 0 || pending_config_.has_value(); };
      if (std::optional<PipelineClock::time_point> deadline = core_->NextDeadline()) {
        cv_.wait_until(lock, *deadline, ready);
      } else {
        cv_.wait(lock, ready);
      }
      if (pending_config_) {
        config = std::move(pending_config_);
        pending_config_.reset();
      }
      if (!queue_.empty()) {
        item = std::move(queue_.front());
        queue_.pop_front();
        queue_bytes_ -= item->held_bytes;
        space_cv_.notify_all();
      } else if (readers_running_ == 0) {
        finished = true;
      }
    }
    if (config) {
      core_->Reconfigure(*config, &out);
      budget_.SetLimits(config->memory_soft_bytes, config->memory_hard_bytes);
    }
    const PipelineClock::time_point now = PipelineClock::now();
    if (item) core_->Add(std::move(item->frame), item->ack_id, item->held_bytes, now, &out);
    core_->FlushExpired(now, &out);
    if (finished) core_->FlushAll(&out);
    for (telkit::Dispatch& d : out) Dispatch(std::move(d));
    out.clear();
    if (finished) break;
  }
  for (const auto& w : workers_) w->Close();
  pipeline_done_.store(true);
}

void Pipeline::Dispatch(telkit::Dispatch d) {
  const std::vector<OutputWorker*>& route = routes_[RouteIndex(d.signal)];
  if (!d.deliver || route.empty()) {
    Complete(d);
    return;
  }
  auto delivery = std::make_shared<Delivery>(std::move(d), static_cast<int>(route.size()));
  for (OutputWorker* w : route) w->Push(delivery);
}

void Pipeline::Taken(const std::shared_ptr<Delivery>& delivery) {
  if (delivery->remaining.fetch_sub(1) == 1) Complete(delivery->dispatch);
}

void Pipeline::Complete(const telkit::Dispatch& d) {
  budget_.Release(d.held_bytes);
  for (uint64_t id : d.ack_ids) acks_.Done(id);
}

void Pipeline::Fail(const Status& s) {
  std::lock_guard lock(mu_);
  if (status_.ok()) status_ = s;
}

Status Pipeline::status() const {
  {
    std::lock_guard lock(mu_);
    if (!status_.ok()) return status_;
  }
  for (const auto& w : workers_) {
    Status s = w->status();
    if (!s.ok()) return s;
  }
  return OkStatus();
}

bool Pipeline::Ready() const { return !draining_.load() && status().ok(); }

void Pipeline::Reconfigure(const ProcessorConfig& config) {
  {
    std::lock_guard lock(mu_);
    pending_config_ = config;
  }
  cv_.notify_all();
}

Status Pipeline::Shutdown(std::chrono::milliseconds timeout) {
  if (shut_down_) return status();
  shut_down_ = true;
  draining_.store(true);
  const PipelineClock::time_point deadline = PipelineClock::now() + timeout;
  for (const auto& in : inputs_) in->Cancel();
  budget_.Cancel();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;  // readers hand over what they hold without waiting
  }
  space_cv_.notify_all();
  for (std::thread& t : readers_) t.join();
  if (pipeline_thread_.joinable()) {
    pipeline_thread_.join();
  } else {
    for (const auto& w : workers_) w->Close();  // Start failed before the thread ran
  }
  size_t left = 0;
  for (const auto& w : workers_) {
    if (!w->WaitIdle(deadline)) left += w->queued();
  }
  Status drained;
  if (left > 0) {
    drained = Status(StatusCode::kDeadlineExceeded,
                     std::to_string(left) + " payloads were not taken by the outputs in time");
  } else {
    for (const auto& w : workers_) {
      const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - PipelineClock::now());
      Status s = w->sink().Drain(static_cast<int>(std::max<int64_t>(0, remaining.count())));
      if (!s.ok() && drained.ok()) drained = s.WithContext("output '" + w->name() + "'");
    }
  }
  for (const auto& w : workers_) w->Cancel();
  for (const auto& w : workers_) w->Join();
  Status s = status();
  return s.ok() ? drained : s;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseExportHeaders(const std::vector<std::string>& items) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const std::string& h : items) {
    const size_t eq = h.find('=');
    if (eq == std::string::npos || eq == 0) return InvalidArgumentError("--export-header '" + h + "' is not K=V");
    headers.emplace_back(h.substr(0, eq), h.substr(eq + 1));
  }
  return headers;
}

Status ValidateOutputSpecs(const PipelineOptions& o) {
  for (const auto& outs : {o.out, o.traces_out, o.metrics_out, o.logs_out}) {
    for (const std::string& spec : outs) {
      TELKIT_RETURN_IF_ERROR(ParseOutputTarget(spec, o.exporter).status());
      if (IsLokiSpec(spec)) TELKIT_RETURN_IF_ERROR(OpenLokiSink(spec, o.exporter).status());
    }
  }
  return OkStatus();
}

}  // namespace telkit
