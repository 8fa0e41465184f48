// Listening addresses and a runner that serves a configured cpp-httplib
// server on a thread of its own (used by the admin endpoint and by the
// OTLP/HTTP receiver; any daemon's HTTP listener should go through it).
//
// The runner fixes what httplib leaves to chance: the listening socket gets
// SO_REUSEADDR but never SO_REUSEPORT (httplib's default, which would let a
// second daemon bind the same port silently), the listen backlog is raised
// from httplib's compiled-in 5, and Stop() cannot race the server thread's
// start.
// Thread-safety: ParseListenAddress is pure; HttpServerRunner's methods may be
// called from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "common/base/status.h"

namespace httplib {
class Server;
}

namespace telkit {

struct ListenAddress {
  std::string host;  // "0.0.0.0", "127.0.0.1", "::", "localhost", ...
  int port = 0;      // 0: an ephemeral port chosen by the kernel

  // "host:port", with brackets around an IPv6 host.
  std::string ToString() const;
};

// Parses "HOST:PORT", "[IPV6]:PORT" or ":PORT" (all IPv4 interfaces).
// INVALID_ARGUMENT for anything else or a port outside 0..65535.
Result<ListenAddress> ParseListenAddress(std::string_view spec);

class HttpServerRunner {
 public:
  // Binds `server` to `address` and serves it on a new thread.
  // REQUIRES: `server` is fully configured (handlers, timeouts, thread pool)
  // and valid (an httplib::SSLServer loaded its certificate and key).
  // UNAVAILABLE when the address cannot be bound (in use, not local),
  // INTERNAL when the server thread does not start.
  static Result<std::unique_ptr<HttpServerRunner>> Start(std::unique_ptr<httplib::Server> server,
                                                         const ListenAddress& address, int backlog = 1024);

  HttpServerRunner(const HttpServerRunner&) = delete;
  HttpServerRunner& operator=(const HttpServerRunner&) = delete;
  ~HttpServerRunner();  // Stop()

  // The bound port (the chosen one when the address said 0).
  int port() const { return port_; }
  // The address actually listened on.
  ListenAddress address() const { return {host_, port_}; }

  // Closes the listening socket, lets every connection finish its current
  // request (an idle keep-alive connection is closed within its keep-alive
  // timeout), and joins the server thread. Idempotent.
  void Stop();

 private:
  HttpServerRunner() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::string host_;
  int port_ = 0;
};

}  // namespace telkit
