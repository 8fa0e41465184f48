// Sends alert notifications: to Alertmanager (API v2, POST /api/v2/alerts),
// to plain JSON webhooks, and to commands that read one notification as JSON
// on stdin. docs/format/rules-notifications.md has the bodies.
//
// Each target has its own queue and sender thread, so a slow or failing
// target never delays another. A failed delivery (connection error, HTTP
// status other than 2xx, command exit status not 0 or over the timeout) is
// retried with exponential backoff (initial_backoff doubling up to
// max_backoff) up to max_attempts, then dropped and counted. A full queue
// drops the oldest batch and counts it. Only http:// URLs are supported.
//
// Thread-safety: Send() and Stats() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/admin/metrics_registry.h"
#include "common/base/status.h"
#include "common/rules/evaluator.h"

namespace telkit::rules {

struct Notification {
  Labels labels;
  std::vector<std::pair<std::string, std::string>> annotations;
  bool resolved = false;
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0;
  std::string generator_url;
  double value = 0;
};

// The notification for an alert AlertsToSend() returned (Prometheus'
// sendAlerts: endsAt = resolved_at for resolved alerts, else valid_until).
Notification ToNotification(const Alert& a, const std::string& generator_url);

// The Alertmanager API v2 body: a JSON array of postableAlert.
nlohmann::json AlertmanagerBody(const std::vector<Notification>& batch);
// One alert of the webhook body and of a command's stdin.
nlohmann::json NotificationJson(const Notification& n);
// The webhook body: {"version":"1","receiver":"tel-rules","status":...,"alerts":[...]}.
nlohmann::json WebhookBody(const std::vector<Notification>& batch);

enum class TargetKind { kAlertmanager, kWebhook, kCommand };

struct NotifierOptions {
  std::vector<std::string> alertmanagers;  // base URLs: http://127.0.0.1:9093
  std::vector<std::string> webhooks;       // full URLs
  std::vector<std::string> commands;       // run with /bin/sh -c
  int max_attempts = 5;
  int64_t initial_backoff_ms = 500;
  int64_t max_backoff_ms = 30000;
  int64_t timeout_ms = 10000;  // per HTTP request or command run
  size_t max_queued_batches = 1000;
};

class Notifier {
 public:
  // INVALID_ARGUMENT for a URL that is not http://HOST[:PORT][/PATH]. Counters
  // telrules_notifications_{sent,failed,dropped}_total{target=...} and
  // telrules_notification_retries_total go into `registry` (may be null).
  static Result<std::unique_ptr<Notifier>> Start(const NotifierOptions& options, MetricsRegistry* registry);
  ~Notifier();  // Stop(0)

  bool empty() const { return targets_.empty(); }
  // Queues `batch` for every target (one batch; a command runs once per alert).
  void Send(const std::vector<Notification>& batch);
  // Waits up to `timeout_ms` for the queues to empty, then stops the threads.
  void Stop(int64_t timeout_ms);

  struct Target;

 private:
  Notifier() = default;
  std::vector<std::unique_ptr<Target>> targets_;
};

// Runs `command` with /bin/sh -c, `input` on its stdin, and waits up to
// `timeout_ms` (then SIGKILL to its process group). OK when it exits 0;
// UNAVAILABLE otherwise.
Status RunNotifyCommand(const std::string& command, const std::string& input, int64_t timeout_ms);

}  // namespace telkit::rules
