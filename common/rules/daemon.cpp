#include "common/rules/daemon.h"

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/fs/file_system.h"
#include "common/model/memory_store.h"
#include "common/net/url.h"
#include "common/prom/remote_write.h"
#include "common/rules/state_file.h"
#include "common/stream/stream_output.h"
#include "common/tsdb/metrics_reader.h"

namespace telkit::rules {

struct RulesDaemon::Group {
  std::unique_ptr<GroupEvaluator> eval;
  int64_t next_ms = 0;  // 0: due at the next tick
  Counter* evaluations = nullptr;
  Counter* failures = nullptr;
  Counter* missed = nullptr;
  std::shared_ptr<std::atomic<double>> last_duration = std::make_shared<std::atomic<double>>(0);
};

// Writes frames to the stream output on its own thread.
struct RulesDaemon::Writer {
  std::unique_ptr<StreamOutput> out;
  size_t max_frames = 10000;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;
  bool stopping = false;
  bool busy = false;
  std::thread thread;
  Counter* dropped = nullptr;
  Counter* errors = nullptr;

  void Push(std::string payload) {
    std::lock_guard<std::mutex> lock(mu);
    if (queue.size() >= max_frames) {
      queue.pop_front();
      dropped->Increment();
    }
    queue.push_back(std::move(payload));
    cv.notify_all();
  }
  void Run() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping
      std::string p = std::move(queue.front());
      queue.pop_front();
      busy = true;
      lock.unlock();
      Frame f;
      f.signal = static_cast<uint8_t>(Signal::kPrometheusRemoteWrite);
      f.payload = std::move(p);
      Status st = out->Write(std::move(f));
      lock.lock();
      busy = false;
      if (!st.ok()) {
        errors->Increment();
        if (st.code() == StatusCode::kCancelled) {
          queue.clear();
          return;
        }
      }
      cv.notify_all();
    }
  }
  void Stop(int64_t timeout_ms) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return queue.empty() && !busy; });
    }
    (void)out->Drain(static_cast<int>(timeout_ms));
    out->Cancel();
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
      cv.notify_all();
    }
    if (thread.joinable()) thread.join();
  }
};

RulesDaemon::RulesDaemon(const RulesDaemonOptions& options, MetricsRegistry& registry)
    : options_(options), registry_(registry) {
  file_errors_ = &registry.AddCounter("telrules_rule_file_errors_total", "Errors found in rule files when loading");
  samples_written_ = &registry.AddCounter("telrules_samples_written_total", "Samples queued for the stream output");
  restore_failures_ =
      &registry.AddCounter("telrules_state_restore_failures_total", "State files that could not be read at start");
  reload_ok_ =
      &registry.AddGauge("telrules_config_last_reload_successful", "1 when every rule file loaded without errors");
  files_loaded_ = &registry.AddGauge("telrules_rule_files", "Rule files loaded");
  alerts_firing_ = &registry.AddGauge("telrules_alerts", "Active alerts by state", {{"state", "firing"}});
  alerts_pending_ = &registry.AddGauge("telrules_alerts", "Active alerts by state", {{"state", "pending"}});
}

RulesDaemon::~RulesDaemon() {
  if (writer_) writer_->Stop(0);
  if (notifier_) notifier_->Stop(0);
}

Result<std::unique_ptr<RulesDaemon>> RulesDaemon::Start(const RulesDaemonOptions& options, MetricsRegistry& registry,
                                                        std::vector<std::string>* load_errors) {
  std::unique_ptr<RulesDaemon> d(new RulesDaemon(options, registry));
  TELKIT_ASSIGN_OR_RETURN(d->notifier_, Notifier::Start(options.notify, &registry));
  if (!options.output.empty()) {
    auto w = std::make_unique<Writer>();
    TELKIT_ASSIGN_OR_RETURN(w->out, OpenStreamOutput(options.output));
    w->max_frames = options.max_queued_frames;
    w->dropped =
        &registry.AddCounter("telrules_frames_dropped_total", "Frames dropped because the output queue was full");
    w->errors = &registry.AddCounter("telrules_frame_write_errors_total", "Frames the stream output failed to write");
    Writer* raw = w.get();
    w->thread = std::thread([raw] { raw->Run(); });
    d->writer_ = std::move(w);
  }
  *load_errors = d->Reload();
  if (!options.state_file.empty()) {
    (void)DefaultFileSystem()->CreateDir(DirName(options.state_file));  // may exist already
    auto st = ReadRulesStateFile(options.state_file);
    if (st.ok()) {
      for (auto& g : d->groups_) RestoreGroupState(*g->eval, *st);
    } else if (st.status().code() != StatusCode::kNotFound) {
      d->restore_failures_->Increment();
      load_errors->push_back("state file not restored: " + st.status().message());
    }
  }
  return d;
}

std::vector<std::string> RulesDaemon::Reload() {
  std::vector<std::string> errors;
  std::vector<std::unique_ptr<Group>> fresh;
  int files = 0;
  auto load = [&](const std::vector<std::string>& globs, QueryLanguage lang) {
    for (const auto& pattern : globs) {
      auto names = ExpandRuleGlob(pattern);
      if (!names.ok()) {
        errors.push_back(names.status().message());
        continue;
      }
      for (const auto& path : *names) {
        ParseRuleFileOptions po;
        po.language = lang;
        if (lang == QueryLanguage::kLogQL && logql_) {
          ExprEvaluator* e = logql_.get();
          po.check_expr = [e](std::string_view x) { return e->Check(x); };
        }
        auto f = LoadRuleFile(path, po);
        if (!f.ok()) {
          errors.push_back(f.status().message());
          continue;
        }
        ++files;
        for (const auto& e : f->errors) errors.push_back(e.ToString(path));
        for (auto& g : f->groups) {
          auto grp = std::make_unique<Group>();
          grp->eval = std::make_unique<GroupEvaluator>(std::move(g), options_.default_interval_ms);
          fresh.push_back(std::move(grp));
        }
      }
    }
  };
  load(options_.rule_globs, QueryLanguage::kPromQL);
  load(options_.logql_rule_globs, QueryLanguage::kLogQL);
  // Carry state over from the groups that still exist.
  for (auto& g : fresh) {
    for (auto& old : groups_) {
      if (old->eval->key() != g->eval->key()) continue;
      g->next_ms = old->eval->interval_ms() == g->eval->interval_ms() ? old->next_ms : 0;
      const auto& orules = old->eval->group().rules;
      for (size_t i = 0; i < orules.size(); ++i)
        if (orules[i].kind == RuleKind::kAlert)
          g->eval->RestoreFrom(orules[i].name, old->eval->rule_status()[i].alerts,
                               old->eval->rule_status()[i].last_eval_ms);
      g->eval->set_last_eval(old->eval->last_eval_ms(), old->eval->last_eval_seconds());
    }
    MetricLabels l = {{"rule_group", g->eval->key()}};
    g->evaluations = &registry_.AddCounter("telrules_group_evaluations_total", "Evaluations of a rule group", l);
    g->failures =
        &registry_.AddCounter("telrules_group_evaluation_failures_total", "Rule evaluations that failed, by group", l);
    g->missed = &registry_.AddCounter("telrules_group_iterations_missed_total",
                                      "Scheduled group evaluations skipped because the previous ran late", l);
    auto dur = g->last_duration;
    registry_.AddCallback("telrules_group_last_duration_seconds", "How long the last evaluation of a group took",
                          MetricType::kGauge, l, [dur] { return dur->load(); });
    double interval_s = static_cast<double>(g->eval->interval_ms()) / 1000.0;
    registry_.AddCallback("telrules_group_interval_seconds", "A rule group's evaluation interval", MetricType::kGauge,
                          l, [interval_s] { return interval_s; });
  }
  groups_ = std::move(fresh);
  file_errors_->Increment(errors.size());
  reload_ok_->Set(errors.empty() ? 1 : 0);
  files_loaded_->Set(files);
  return errors;
}

TickReport RulesDaemon::Tick(int64_t now_ms) {
  TickReport report;
  std::vector<Group*> due;
  for (auto& g : groups_) {
    if (g->next_ms == 0) g->next_ms = now_ms;
    if (g->next_ms <= now_ms) due.push_back(g.get());
  }
  if (due.empty()) return report;

  std::unique_ptr<MetricsReader> reader;
  Status open_status;
  if (!options_.data_dir.empty()) {
    auto r = OpenMetricsReader(DefaultFileSystem(), options_.data_dir);
    if (r.ok())
      reader = std::move(*r);
    else
      open_status = r.status().WithContext("open metrics store '" + options_.data_dir + "'");
  }
  // Without --data the expressions see an empty store (constant rules still work).
  MemoryStore empty;
  Querier* querier = options_.data_dir.empty() ? static_cast<Querier*>(&empty) : reader.get();
  PromQLEvaluator promql(querier, options_.engine);
  GroupEvalOptions eo{options_.external_labels, options_.external_url};

  for (Group* g : due) {
    int64_t interval = g->eval->interval_ms();
    int64_t t = g->next_ms;
    int64_t late = (now_ms - t) / interval;
    if (late > 0) {
      g->missed->Increment(static_cast<uint64_t>(late));
      t += late * interval;
    }
    g->next_ms = t + interval;
    std::string where = "group '" + g->eval->group().name + "' (" + g->eval->group().file + ")";
    auto start = std::chrono::steady_clock::now();
    GroupEvalResult r;
    const bool logql = g->eval->group().language == QueryLanguage::kLogQL;
    if (!logql && !querier) {
      g->evaluations->Increment();
      g->failures->Increment(g->eval->group().rules.size());
      report.errors.push_back(where + ": " + open_status.message());
      continue;
    }
    if (logql && !logql_) {
      g->evaluations->Increment();
      g->failures->Increment(g->eval->group().rules.size());
      report.errors.push_back(where + ": LogQL rules need a LogQL evaluator, which this build does not have");
      continue;
    }
    r = g->eval->Evaluate(logql ? *logql_ : static_cast<ExprEvaluator&>(promql), t, eo);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    g->last_duration->store(secs);
    g->eval->set_last_eval(t, secs);
    g->evaluations->Increment();
    ++report.groups_evaluated;
    if (r.failed_rules > 0) g->failures->Increment(static_cast<uint64_t>(r.failed_rules));
    for (const auto& e : r.errors) report.errors.push_back(where + ": " + e);
    if (writer_ && !r.series.empty()) {
      size_t n = 0;
      for (const auto& s : r.series) n += s.samples.size();
      samples_written_->Increment(n);
      writer_->Push(EncodeWriteRequest(r.series));
    }
    if (!notifier_->empty()) {
      std::vector<Notification> batch;
      for (const Alert& a : AlertsToSend(*g->eval, t, options_.resend_delay_ms)) {
        std::string url = options_.external_url + "/graph?g0.expr=";
        for (const auto& rule : g->eval->group().rules)
          if (rule.kind == RuleKind::kAlert && rule.name == a.labels.Get("alertname")) url += UrlEncode(rule.expr);
        url += "&g0.tab=1";
        Notification n = ToNotification(a, url);
        // As Prometheus' notifier: external labels the alert does not set.
        for (const auto& [k, v] : options_.external_labels)
          if (!n.labels.Has(k)) n.labels.Set(k, v);
        batch.push_back(std::move(n));
      }
      notifier_->Send(batch);
    }
  }
  int firing = 0, pending = 0;
  for (auto& g : groups_)
    for (const auto& rs : g->eval->rule_status())
      for (const auto& [l, a] : rs.alerts) {
        firing += a.state == AlertState::kFiring;
        pending += a.state == AlertState::kPending;
      }
  alerts_firing_->Set(firing);
  alerts_pending_->Set(pending);
  if (!options_.state_file.empty()) {
    Status st = WriteState(now_ms);
    if (!st.ok()) report.errors.push_back("write state file: " + st.message());
  }
  return report;
}

Status RulesDaemon::WriteState(int64_t now_ms) {
  std::vector<const GroupEvaluator*> gs;
  for (auto& g : groups_) gs.push_back(g->eval.get());
  return WriteFileDurably(DefaultFileSystem(), options_.state_file, EncodeRulesState(gs, now_ms));
}

void RulesDaemon::Stop(int64_t timeout_ms) {
  if (writer_) writer_->Stop(timeout_ms);
  if (notifier_) notifier_->Stop(timeout_ms);
}

}  // namespace telkit::rules
