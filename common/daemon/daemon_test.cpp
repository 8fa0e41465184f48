#include "common/daemon/daemon.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <string>

namespace telkit {
namespace {

using std::chrono::milliseconds;

TEST(DaemonLoop, TicksReloadsOnSighupAndStopsOnSigterm) {
  BlockDaemonSignals();
  int ticks = 0, reloads = 0;
  int sig = RunDaemonLoop({.tick = milliseconds(5),
                           .on_reload = [&] { ++reloads; },
                           .on_tick =
                               [&] {
                                 ++ticks;
                                 if (ticks == 2) kill(getpid(), SIGHUP);
                                 if (ticks == 4) kill(getpid(), SIGTERM);
                                 return ticks < 100;  // bound
                               }});
  EXPECT_EQ(sig, SIGTERM);
  EXPECT_EQ(reloads, 1);
  EXPECT_EQ(ticks, 4);
  EXPECT_EQ(DaemonSignalName(sig), "SIGTERM");
}

TEST(DaemonLoop, OnTickFalseEndsTheLoopWithZero) {
  BlockDaemonSignals();
  int ticks = 0;
  EXPECT_EQ(RunDaemonLoop({.tick = milliseconds(1), .on_reload = {}, .on_tick = [&] { return ++ticks < 3; }}), 0);
  EXPECT_EQ(ticks, 3);
}

TEST(DaemonLoop, NotifiesSystemdReadyWatchdogStopping) {
  BlockDaemonSignals();
  std::string path = "/tmp/daemon_test." + std::to_string(getpid()) + ".sock";
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  unlink(path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  setenv("NOTIFY_SOCKET", path.c_str(), 1);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  setenv("WATCHDOG_USEC", "20000", 1);  // wake every 10 ms although tick is 10 s
  NotifyDaemonReady("testing");
  int ticks = 0;
  EXPECT_EQ(RunDaemonLoop({.tick = milliseconds(10000), .on_reload = {}, .on_tick = [&] { return ++ticks < 2; }}), 0);
  NotifyDaemonStopping("draining");
  NotifyDaemonStopping("");
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_PID");
  unsetenv("WATCHDOG_USEC");
  std::string got;
  char buf[256];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) got += std::string(buf, n) + "|";
  close(fd);
  unlink(path.c_str());
  EXPECT_EQ(got, "READY=1\nSTATUS=testing|WATCHDOG=1|WATCHDOG=1|STOPPING=1\nSTATUS=draining|STOPPING=1|");
}

}  // namespace
}  // namespace telkit
