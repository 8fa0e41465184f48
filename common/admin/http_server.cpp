#include "common/admin/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>

namespace telkit {

std::string ListenAddress::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<ListenAddress> ParseListenAddress(std::string_view spec) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("invalid listen address '" + std::string(spec) + "': " + std::string(why));
  };
  ListenAddress address;
  std::string_view port_text;
  if (spec.starts_with('[')) {
    size_t close = spec.find(']');
    if (close == std::string_view::npos || close + 1 >= spec.size() || spec[close + 1] != ':') {
      return bad("expected [IPV6]:PORT");
    }
    address.host = std::string(spec.substr(1, close - 1));
    port_text = spec.substr(close + 2);
  } else {
    size_t colon = spec.rfind(':');
    if (colon == std::string_view::npos) return bad("expected HOST:PORT");
    address.host = std::string(spec.substr(0, colon));
    if (address.host.find(':') != std::string::npos) return bad("put an IPv6 address in brackets: [::1]:PORT");
    port_text = spec.substr(colon + 1);
  }
  if (address.host.empty()) address.host = "0.0.0.0";
  int port = -1;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port < 0 ||
      port > 65535) {
    return bad("port must be a number from 0 to 65535");
  }
  address.port = port;
  return address;
}

Result<std::unique_ptr<HttpServerRunner>> HttpServerRunner::Start(std::unique_ptr<httplib::Server> server,
                                                                  const ListenAddress& address, int backlog) {
  // Remember the listening socket to raise its backlog after httplib's
  // listen(fd, 5); listen(2) on a listening socket just updates the backlog.
  auto listen_fd = std::make_shared<int>(-1);
  server->set_socket_options([listen_fd](int fd) {
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    *listen_fd = fd;
  });
  errno = 0;
  int port = address.port;
  bool bound = false;
  if (address.port == 0) {
    port = server->bind_to_any_port(address.host);
    bound = port > 0;
  } else {
    bound = server->bind_to_port(address.host, address.port);
  }
  if (!bound) {
    int err = errno;
    std::string message = "cannot listen on '" + address.ToString() + "'";
    if (err != 0) message += std::string(": ") + std::strerror(err);
    return UnavailableError(std::move(message));
  }
  if (*listen_fd >= 0) ::listen(*listen_fd, backlog);

  std::unique_ptr<HttpServerRunner> runner(new HttpServerRunner());
  runner->host_ = address.host;
  runner->port_ = port;
  runner->server_ = std::move(server);
  httplib::Server* raw = runner->server_.get();
  std::atomic<bool>* done = &runner->done_;
  runner->thread_ = std::thread([raw, done] {
    raw->listen_after_bind();
    done->store(true);
  });
  // stop() is a no-op until the thread has entered its accept loop: wait for
  // that, so that Stop() right after Start() cannot hang.
  for (int i = 0; i < 5000 && !raw->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!raw->is_running()) {
    // The thread may still be about to start serving; it will see the
    // closed socket once stop() works. Leave it to the destructor.
    return InternalError("http server on '" + address.ToString() + "' did not start");
  }
  return runner;
}

void HttpServerRunner::Stop() {
  if (!thread_.joinable()) return;
  // stop() does nothing before the thread has entered its accept loop
  // (is_running), and must be called only once after (httplib asserts the
  // socket is still open): wait for the first, then call it once. Bounded;
  // the thread normally ends as soon as in-progress requests are done.
  bool stopped = false;
  for (int i = 0; i < 60000 && !done_.load(); ++i) {
    if (!stopped && server_->is_running()) {
      server_->stop();
      stopped = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  thread_.join();
}

HttpServerRunner::~HttpServerRunner() { Stop(); }

}  // namespace telkit
