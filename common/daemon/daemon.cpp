#include "common/daemon/daemon.h"

#include <pthread.h>
#include <systemd/sd-daemon.h>

#include <csignal>
#include <cstdint>
#include <ctime>
#include <string>

namespace telkit {
namespace {

sigset_t DaemonSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  return signals;
}

}  // namespace

void BlockDaemonSignals() {
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t signals = DaemonSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

void NotifyDaemonReady(std::string_view status) {
  sd_notify(0, ("READY=1\nSTATUS=" + std::string(status)).c_str());
}

void NotifyDaemonStopping(std::string_view status) {
  sd_notify(0, status.empty() ? "STOPPING=1" : ("STOPPING=1\nSTATUS=" + std::string(status)).c_str());
}

int RunDaemonLoop(const DaemonLoop& loop) {
  sigset_t signals = DaemonSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  uint64_t wait_usec = static_cast<uint64_t>(loop.tick.count()) * 1000;
  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  if (watchdog && watchdog_usec / 2 < wait_usec) wait_usec = watchdog_usec / 2;
  const timespec wait{static_cast<time_t>(wait_usec / 1000000), static_cast<long>(wait_usec % 1000000 * 1000)};
  for (;;) {
    const int sig = sigtimedwait(&signals, nullptr, &wait);
    if (watchdog) sd_notify(0, "WATCHDOG=1");
    if (sig == SIGHUP) {
      if (loop.on_reload) loop.on_reload();
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) return sig;
    if (loop.on_tick && !loop.on_tick()) return 0;
  }
}

std::string_view DaemonSignalName(int sig) {
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "signal";
  }
}

}  // namespace telkit
