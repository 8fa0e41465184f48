// The tel-rules daemon's core: loads rule files, evaluates every group at
// its interval against the metrics store, writes recording results, ALERTS
// and ALERTS_FOR_STATE as prom-rw frames to the telemetry stream, sends
// notifications, and keeps the state file.
//
// Scheduling: a group is first evaluated on the first Tick() after loading,
// then at every interval after that, at the scheduled time (not the time the
// tick ran). A tick that comes more than one interval late skips the missed
// evaluations and counts them (telrules_group_iterations_missed_total).
//
// Invalid rule files: their valid groups still load; the errors come back
// from Reload(), are counted, and never stop the other groups. A group whose
// rules fail at evaluation keeps running the next time.
//
// Stream writes happen on a writer thread with a bounded queue, so a down
// tsdb-write delays nothing here (frames beyond the queue are dropped and
// counted). Library code: nothing is logged; Reload and Tick return messages.
//
// Thread-safety: Reload, Tick and Stop from one thread (the daemon loop); the
// registry's callbacks are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/admin/metrics_registry.h"
#include "common/base/status.h"
#include "common/promql/engine.h"
#include "common/rules/evaluator.h"
#include "common/rules/notifier.h"

namespace telkit::rules {

struct RulesDaemonOptions {
  std::vector<std::string> rule_globs;        // Prometheus rule files (PromQL)
  std::vector<std::string> logql_rule_globs;  // Loki ruler files (LogQL)
  std::string data_dir;                       // the metrics store (tsdb-write's --data)
  std::string output;                         // stream endpoint; "" = write nothing
  std::string state_file;                     // "" = no persistence
  int64_t default_interval_ms = kDefaultIntervalMs;
  int64_t resend_delay_ms = 60 * 1000;
  std::map<std::string, std::string> external_labels;
  std::string external_url;
  promql::EngineOptions engine;
  NotifierOptions notify;
  size_t max_queued_frames = 10000;
};

struct TickReport {
  int groups_evaluated = 0;
  std::vector<std::string> errors;  // "group 'NAME' (FILE): rule 'X': message"
};

class RulesDaemon {
 public:
  // Starts the notifier and the stream writer, loads the rule files and
  // restores alert state from the state file. INVALID_ARGUMENT for bad
  // notification targets; UNAVAILABLE/INVALID_ARGUMENT for a bad output spec.
  // Rule file problems do not fail: they are in `load_errors`.
  static Result<std::unique_ptr<RulesDaemon>> Start(const RulesDaemonOptions& options, MetricsRegistry& registry,
                                                    std::vector<std::string>* load_errors);
  ~RulesDaemon();

  // Reloads the rule files (SIGHUP). Groups that still exist keep their
  // alerts and schedule. Returns the files' errors.
  std::vector<std::string> Reload();
  // Evaluates the groups that are due at `now_ms`.
  TickReport Tick(int64_t now_ms);
  // Lets a LogQL evaluator run the Loki-ruler groups (none: they fail with UNIMPLEMENTED).
  void SetLogQLEvaluator(std::unique_ptr<ExprEvaluator> e) { logql_ = std::move(e); }
  // Writes the state file, drains the stream and the notifier (up to
  // `timeout_ms` each) and stops the threads.
  void Stop(int64_t timeout_ms);

  size_t num_groups() const { return groups_.size(); }

 private:
  struct Group;
  struct Writer;
  RulesDaemon(const RulesDaemonOptions& options, MetricsRegistry& registry);
  Status WriteState(int64_t now_ms);

  RulesDaemonOptions options_;
  MetricsRegistry& registry_;
  std::vector<std::unique_ptr<Group>> groups_;
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<ExprEvaluator> logql_;
  Counter* file_errors_ = nullptr;
  Counter* samples_written_ = nullptr;
  Counter* restore_failures_ = nullptr;
  Gauge* reload_ok_ = nullptr;
  Gauge* files_loaded_ = nullptr;
  Gauge* alerts_firing_ = nullptr;
  Gauge* alerts_pending_ = nullptr;
};

}  // namespace telkit::rules
