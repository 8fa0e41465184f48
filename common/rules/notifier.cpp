#include "common/rules/notifier.h"

#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "common/rules/state_file.h"

namespace telkit::rules {

using nlohmann::json;

Notification ToNotification(const Alert& a, const std::string& generator_url) {
  Notification n;
  n.labels = a.labels;
  n.annotations = a.annotations;
  n.resolved = a.state == AlertState::kInactive;
  n.starts_at_ms = a.active_at_ms;
  n.ends_at_ms = n.resolved ? a.resolved_at_ms : a.valid_until_ms;
  n.generator_url = generator_url;
  n.value = a.value;
  return n;
}

namespace {

json Obj(const Labels& l) {
  json o = json::object();
  for (const auto& x : l) o[x.name] = x.value;
  return o;
}
json Obj(const std::vector<std::pair<std::string, std::string>>& p) {
  json o = json::object();
  for (const auto& [k, v] : p) o[k] = v;
  return o;
}

}  // namespace

json AlertmanagerBody(const std::vector<Notification>& batch) {
  json arr = json::array();
  for (const auto& n : batch) {
    json a;
    a["labels"] = Obj(n.labels);
    a["annotations"] = Obj(n.annotations);
    a["startsAt"] = FormatRfc3339Ms(n.starts_at_ms);
    if (n.ends_at_ms) a["endsAt"] = FormatRfc3339Ms(n.ends_at_ms);
    a["generatorURL"] = n.generator_url;
    arr.push_back(std::move(a));
  }
  return arr;
}

json NotificationJson(const Notification& n) {
  json a;
  a["status"] = n.resolved ? "resolved" : "firing";
  a["labels"] = Obj(n.labels);
  a["annotations"] = Obj(n.annotations);
  a["startsAt"] = FormatRfc3339Ms(n.starts_at_ms);
  a["endsAt"] = n.ends_at_ms ? FormatRfc3339Ms(n.ends_at_ms) : "0001-01-01T00:00:00Z";
  a["generatorURL"] = n.generator_url;
  a["value"] = promql::FormatValue(n.value);
  return a;
}

json WebhookBody(const std::vector<Notification>& batch) {
  json b;
  b["version"] = "1";
  b["receiver"] = "tel-rules";
  bool firing = false;
  json alerts = json::array();
  for (const auto& n : batch) {
    firing |= !n.resolved;
    alerts.push_back(NotificationJson(n));
  }
  b["status"] = firing ? "firing" : "resolved";
  b["alerts"] = std::move(alerts);
  return b;
}

Status RunNotifyCommand(const std::string& command, const std::string& input, int64_t timeout_ms) {
  int in[2];
  if (pipe2(in, O_CLOEXEC) != 0) return ErrnoError("pipe");
  pid_t pid = fork();
  if (pid < 0) {
    close(in[0]);
    close(in[1]);
    return ErrnoError("fork");
  }
  if (pid == 0) {
    setpgid(0, 0);  // its own process group: a timeout kills the command's children too
    dup2(in[0], 0);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1);  // stdout of tel-rules is not the command's
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  const char* p = input.data();
  size_t left = input.size();
  while (left > 0) {
    ssize_t w = write(in[1], p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;  // the command did not read it all; its exit status decides
    p += w;
    left -= static_cast<size_t>(w);
  }
  close(in[1]);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return ErrnoError("waitpid");
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      return UnavailableError("notify command '" + command + "' timed out");
    }
    usleep(5000);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return OkStatus();
  if (WIFEXITED(status))
    return UnavailableError("notify command '" + command + "' exited with status " +
                            std::to_string(WEXITSTATUS(status)));
  return UnavailableError("notify command '" + command + "' killed by signal " + std::to_string(WTERMSIG(status)));
}

struct Notifier::Target {
  TargetKind kind;
  std::string name;  // URL or command
  std::string host_port, path;
  const NotifierOptions* opts = nullptr;
  NotifierOptions options;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::vector<Notification>> queue;
  bool stopping = false;
  bool busy = false;
  std::thread thread;
  Counter* sent = nullptr;
  Counter* failed = nullptr;
  Counter* dropped = nullptr;
  Counter* retries = nullptr;

  Status Deliver(const std::vector<Notification>& batch) {
    if (kind == TargetKind::kCommand) {
      for (const auto& n : batch)
        TELKIT_RETURN_IF_ERROR(RunNotifyCommand(name, NotificationJson(n).dump() + "\n", options.timeout_ms));
      return OkStatus();
    }
    httplib::Client c(host_port);
    auto secs = options.timeout_ms / 1000, usecs = (options.timeout_ms % 1000) * 1000;
    c.set_connection_timeout(secs, usecs);
    c.set_read_timeout(secs, usecs);
    c.set_write_timeout(secs, usecs);
    std::string body = kind == TargetKind::kAlertmanager ? AlertmanagerBody(batch).dump() : WebhookBody(batch).dump();
    auto res = c.Post(path.c_str(), body, "application/json");
    if (!res) return UnavailableError("POST " + name + ": " + httplib::to_string(res.error()));
    if (res->status / 100 != 2)
      return UnavailableError("POST " + name + ": HTTP " + std::to_string(res->status) + ": " +
                              res->body.substr(0, 200));
    return OkStatus();
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (stopping) {  // Stop() waited for the queue already: what is left is given up
        for (const auto& b : queue)
          if (failed) failed->Increment(b.size());
        queue.clear();
        return;
      }
      std::vector<Notification> batch = std::move(queue.front());
      queue.pop_front();
      busy = true;
      int64_t backoff = options.initial_backoff_ms;
      bool ok = false;
      for (int attempt = 1; attempt <= options.max_attempts; ++attempt) {
        lock.unlock();
        Status st = Deliver(batch);
        lock.lock();
        if (st.ok()) {
          ok = true;
          break;
        }
        if (attempt == options.max_attempts || stopping) break;
        if (retries) retries->Increment();
        cv.wait_for(lock, std::chrono::milliseconds(backoff), [&] { return stopping; });
        backoff = std::min(backoff * 2, options.max_backoff_ms);
      }
      busy = false;
      if (ok) {
        if (sent) sent->Increment(batch.size());
      } else if (failed)
        failed->Increment(batch.size());
      cv.notify_all();
    }
  }
};

Result<std::unique_ptr<Notifier>> Notifier::Start(const NotifierOptions& options, MetricsRegistry* registry) {
  std::unique_ptr<Notifier> n(new Notifier());
  auto add = [&](TargetKind kind, const std::string& spec) -> Status {
    auto t = std::make_unique<Target>();
    t->kind = kind;
    t->name = spec;
    t->options = options;
    if (kind != TargetKind::kCommand) {
      if (spec.rfind("http://", 0) != 0)
        return InvalidArgumentError("notification URL '" + spec + "' is not http://HOST:PORT[/PATH]");
      size_t slash = spec.find('/', 7);
      t->host_port = spec.substr(0, slash);
      std::string path = slash == std::string::npos ? "" : spec.substr(slash);
      if (kind == TargetKind::kAlertmanager) {
        while (!path.empty() && path.back() == '/') path.pop_back();
        path += "/api/v2/alerts";
      } else if (path.empty()) {
        path = "/";
      }
      t->path = path;
    }
    if (registry) {
      const char* k = kind == TargetKind::kAlertmanager ? "alertmanager"
                      : kind == TargetKind::kWebhook    ? "webhook"
                                                        : "command";
      MetricLabels l = {{"kind", k}, {"target", spec}};
      t->sent =
          &registry->AddCounter("telrules_notifications_sent_total", "Alerts delivered to a notification target", l);
      t->failed =
          &registry->AddCounter("telrules_notifications_failed_total", "Alerts given up on after all retries", l);
      t->dropped =
          &registry->AddCounter("telrules_notifications_dropped_total", "Alerts dropped because the queue was full", l);
      t->retries = &registry->AddCounter("telrules_notification_retries_total", "Delivery attempts retried", l);
    }
    n->targets_.push_back(std::move(t));
    return OkStatus();
  };
  for (const auto& u : options.alertmanagers) TELKIT_RETURN_IF_ERROR(add(TargetKind::kAlertmanager, u));
  for (const auto& u : options.webhooks) TELKIT_RETURN_IF_ERROR(add(TargetKind::kWebhook, u));
  for (const auto& c : options.commands) TELKIT_RETURN_IF_ERROR(add(TargetKind::kCommand, c));
  for (auto& t : n->targets_) {
    Target* raw = t.get();
    t->thread = std::thread([raw] { raw->Run(); });
  }
  return n;
}

void Notifier::Send(const std::vector<Notification>& batch) {
  if (batch.empty()) return;
  for (auto& t : targets_) {
    std::lock_guard<std::mutex> lock(t->mu);
    if (t->queue.size() >= t->options.max_queued_batches) {
      if (t->dropped) t->dropped->Increment(t->queue.front().size());
      t->queue.pop_front();
    }
    t->queue.push_back(batch);
    t->cv.notify_all();
  }
}

void Notifier::Stop(int64_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (auto& t : targets_) {
    std::unique_lock<std::mutex> lock(t->mu);
    t->cv.wait_until(lock, deadline, [&] { return t->queue.empty() && !t->busy; });
    t->stopping = true;
    t->cv.notify_all();
  }
  for (auto& t : targets_)
    if (t->thread.joinable()) t->thread.join();
}

Notifier::~Notifier() { Stop(0); }

}  // namespace telkit::rules
