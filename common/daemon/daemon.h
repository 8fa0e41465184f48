// The signal and systemd loop every telkit daemon's main runs.
//
//   BlockDaemonSignals();            // before any thread starts
//   ... start the server, log where it listens ...
//   NotifyDaemonReady("storing");    // sd_notify READY=1, STATUS=storing
//   int sig = RunDaemonLoop({.tick = 100ms, .on_reload = ..., .on_tick = ...});
//   ... log why it stops ...
//   NotifyDaemonStopping("draining");
//
// RunDaemonLoop waits for SIGTERM, SIGINT or SIGHUP with sigtimedwait for at
// most `tick` (shortened to half of systemd's watchdog interval when
// WATCHDOG_USEC asks for more often). After every wake-up it sends WATCHDOG=1
// when the watchdog is enabled. SIGHUP calls `on_reload` and waits again;
// SIGTERM or SIGINT ends the loop and is returned; any other wake-up (the
// timeout) calls `on_tick`, and its false ends the loop (returns 0). The
// signals are (re)blocked in the calling thread first. Nothing here logs;
// the tools log once.
#pragma once

#include <chrono>
#include <functional>
#include <string_view>

namespace telkit {

// Ignores SIGPIPE and blocks SIGTERM, SIGINT and SIGHUP in the calling thread
// (threads started afterwards inherit the mask).
void BlockDaemonSignals();

// sd_notify "READY=1\nSTATUS=<status>" (a no-op outside systemd).
void NotifyDaemonReady(std::string_view status);
// sd_notify "STOPPING=1", with "\nSTATUS=<status>" when status is not empty.
void NotifyDaemonStopping(std::string_view status);

struct DaemonLoop {
  std::chrono::milliseconds tick{1000};
  std::function<void()> on_reload;  // SIGHUP; may be empty
  std::function<bool()> on_tick;    // periodic idle work; false stops; may be empty
};

// Returns SIGTERM or SIGINT when a signal ended the loop, 0 when on_tick did.
int RunDaemonLoop(const DaemonLoop& loop);

// "SIGTERM", "SIGINT", "SIGHUP", or "signal" for any other.
std::string_view DaemonSignalName(int sig);

}  // namespace telkit
