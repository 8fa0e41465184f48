// Tail sampling (processor tail_sampling): spans are held per trace for a
// decision window that starts with the trace's first span, then the whole
// trace is kept when any policy matches, in this order:
//   error      a span has status ERROR;
//   latency    the trace lasts longer than latency_ms (latest span end minus
//              earliest span start; 0 turns the policy off);
//   condition  a span matches one of the filter expressions (filter_expr.h);
//   rate       the rest, up to rate_per_second traces a second (a token
//              bucket holding at most one second's worth; 0 keeps no rest).
// Everything else is dropped (DropReason::kTailSampling). Spans arriving
// after their trace was decided start a new window: a late span is decided
// on its own.
//
// The input frames that carried a trace's spans are held too, counted
// against the memory limit, and complete (are acknowledged) once every trace
// they carried was decided and what was kept of it was handed on. At most
// max_traces are held: a new trace beyond that decides the oldest one early.
// Times are explicit (PipelineClock::time_point), for tests.
// Thread-compatible: the pipeline thread owns it; the gauges (held_*) may be
// read from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/pipeline/filter_expr.h"
#include "common/pipeline/processors.h"
#include "common/pipeline/request_parts.h"

namespace telkit {

struct TailSamplingSettings {
  int decision_wait_ms = 10000;
  int64_t max_traces = 50000;
  int64_t latency_ms = 0;              // 0: no latency policy
  std::vector<FilterExpr> conditions;  // spans; any match keeps the trace
  double rate_per_second = 0;          // 0: the rest is dropped
};

// Why a trace was kept (tel_batch_tail_decisions_total{decision}).
enum class TailDecision : uint8_t { kError, kLatency, kCondition, kRate, kDropped };
inline constexpr int kTailDecisionCount = 5;
std::string_view TailDecisionName(TailDecision d);  // "error" ... "dropped"

// What a round of decisions hands on.
struct TailOutput {
  RequestParts kept;               // the spans of kept traces (empty: none)
  int64_t kept_spans = 0;
  std::vector<uint64_t> ack_ids;   // input frames now complete
  uint64_t held_bytes = 0;         // their held bytes
  uint64_t time_unix_nano = 0;     // earliest receive time of the completed frames (0: none)
  // A completed frame had spans kept in an earlier round: its completion
  // must travel behind them (a barrier) even when nothing is kept now.
  bool barrier = false;
  DropCounts dropped;
  std::array<int64_t, kTailDecisionCount> decisions{};
  bool empty() const { return kept_spans == 0 && ack_ids.empty(); }
};

class TailSampler {
 public:
  using Clock = std::chrono::steady_clock;
  explicit TailSampler(TailSamplingSettings settings);

  // Holds the spans of `parts` (a traces request with at least one span) of
  // the input frame `ack_id`. Early decisions (max_traces) go to *out.
  void Add(RequestParts&& parts, uint64_t ack_id, uint64_t held_bytes, uint64_t time_unix_nano,
           Clock::time_point now, TailOutput* out);
  // Decides every trace whose window ended at or before `now`.
  void Decide(Clock::time_point now, TailOutput* out);
  // Decides every held trace now (shutdown, reconfiguration).
  void DecideAll(Clock::time_point now, TailOutput* out);
  // When the oldest held trace's window ends.
  std::optional<Clock::time_point> NextDeadline() const;

  int64_t held_traces() const { return held_traces_.load(std::memory_order_relaxed); }
  int64_t held_spans() const { return held_spans_.load(std::memory_order_relaxed); }

 private:
  struct Span {
    std::string_view resource_header, scope_header, bytes;
    uint64_t frame;  // key in frames_: its payload holds the bytes
  };
  struct Trace {
    Clock::time_point deadline;
    std::vector<Span> spans;
    std::vector<uint64_t> frames;  // frame keys, each once
    bool error = false, matched = false;
    uint64_t min_start = UINT64_MAX, max_end = 0;
  };
  struct HeldFrame {
    uint64_t ack_id = 0, held_bytes = 0, time_unix_nano = 0;
    int pending = 0;  // traces not yet decided
    bool any_kept = false;
    std::vector<std::shared_ptr<const std::string>> storage;
  };

  void DecideOne(const std::string& trace_id, Clock::time_point now, TailOutput* out);
  TailDecision Judge(const Trace& t, Clock::time_point now);
  void Finish(TailOutput* out);

  const TailSamplingSettings settings_;
  std::unordered_map<std::string, Trace> traces_;
  std::deque<std::pair<Clock::time_point, std::string>> order_;  // first span's arrival + wait
  std::unordered_map<uint64_t, HeldFrame> frames_;
  uint64_t next_frame_ = 1;
  std::unique_ptr<RequestMerger> merger_;  // kept spans of the current round
  double tokens_ = 0;
  std::optional<Clock::time_point> refilled_;
  std::atomic<int64_t> held_traces_{0}, held_spans_{0};
};

}  // namespace telkit
