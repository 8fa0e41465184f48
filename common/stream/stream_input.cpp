#include "common/stream/stream_input.h"

#include <fcntl.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "common/base/fd.h"
#include "common/net/unix_socket.h"
#include "common/stream/endpoint.h"
#include "common/stream/frame_reader.h"

namespace telkit {
namespace {

Status SendAck(int fd, uint64_t sequence) {
  uint8_t ack[kAckSize];
  EncodeAck(sequence, ack);
  return WriteAll(fd, std::string_view(reinterpret_cast<char*>(ack), kAckSize));
}

// A pipe, file or one connected socket: frames in order from one reader.
class SingleStreamInput final : public StreamInput {
 public:
  SingleStreamInput(UniqueFd owned, int fd, const StreamInputOptions& options)
      : owned_(std::move(owned)), fd_(fd), is_socket_(IsSocket(fd)), reader_(fd, options, cancel_.fd(), 1) {}

  Result<std::optional<Frame>> Next() override {
    auto r = reader_.Next();
    std::lock_guard lock(mu_);
    stats_ = reader_.stats();
    return r;
  }

  void Acknowledge(const Frame& frame) override {
    if (!is_socket_) return;
    std::lock_guard lock(ack_mu_);
    (void)SendAck(fd_, frame.sequence);  // a writer that went away will resend; nothing to do here
  }

  void Cancel() override { cancel_.Notify(); }

  StreamInputStats Stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  UniqueFd owned_;
  int fd_;
  bool is_socket_;
  Notifier cancel_;
  FrameReader reader_;
  std::mutex ack_mu_;
  mutable std::mutex mu_;
  StreamInputStats stats_;
};

// Accepts any number of writers; one thread per connection decodes frames
// into a shared queue bounded by bytes (a full queue stops the readers, so
// backpressure reaches the writers through their sockets).
class ListenStreamInput final : public StreamInput {
 public:
  ListenStreamInput(UniqueFd owned, int listen_fd, const StreamInputOptions& options)
      : owned_(std::move(owned)), listen_fd_(listen_fd), options_(options) {
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~ListenStreamInput() override {
    Cancel();
    acceptor_.join();
    std::list<std::thread> readers;
    {
      std::lock_guard lock(mu_);
      readers.swap(readers_);
    }
    for (auto& t : readers) t.join();
  }

  Result<std::optional<Frame>> Next() override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return cancelled_ || !queue_.empty() || !fatal_.ok(); });
    if (!fatal_.ok()) return fatal_;
    if (queue_.empty()) return CancelledError("input cancelled");
    Frame f = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= f.payload.size();
    space_cv_.notify_all();
    return std::optional<Frame>(std::move(f));
  }

  void Acknowledge(const Frame& frame) override {
    std::shared_ptr<Connection> c;
    {
      std::lock_guard lock(mu_);
      auto it = connections_.find(frame.origin);
      if (it == connections_.end()) return;
      c = it->second;
    }
    std::lock_guard lock(c->ack_mu);
    (void)SendAck(c->fd.get(), frame.sequence);
  }

  void Cancel() override {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    cancel_.Notify();
    cv_.notify_all();
    space_cv_.notify_all();
  }

  StreamInputStats Stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  struct Connection {
    UniqueFd fd;
    std::mutex ack_mu;
  };

  void AcceptLoop() {
    for (uint64_t next_origin = 1;; ++next_origin) {
      Result<UniqueFd> fd = AcceptConnection(listen_fd_, cancel_.fd());
      if (!fd.ok()) {
        if (fd.status().code() != StatusCode::kCancelled) {
          std::lock_guard lock(mu_);
          fatal_ = fd.status().WithContext("accept stream connection");
          cv_.notify_all();
        }
        return;
      }
      auto conn = std::make_shared<Connection>();
      conn->fd = std::move(*fd);
      std::lock_guard lock(mu_);
      connections_[next_origin] = conn;
      ++stats_.connections_accepted;
      ++stats_.connections_open;
      readers_.emplace_back([this, conn, next_origin] { ReadLoop(conn, next_origin); });
    }
  }

  void ReadLoop(const std::shared_ptr<Connection>& conn, uint64_t origin) {
    FrameReader reader(conn->fd.get(), options_, cancel_.fd(), origin);
    StreamInputStats before{};
    for (;;) {
      Result<std::optional<Frame>> f = reader.Next();
      std::unique_lock lock(mu_);
      AddStats(reader.stats(), before);
      before = reader.stats();
      if (!f.ok() || !f->has_value()) break;  // end, corruption with kFail, or cancelled: drop this writer
      space_cv_.wait(lock, [&] { return cancelled_ || queued_bytes_ < options_.max_buffered_bytes; });
      if (cancelled_) break;
      queued_bytes_ += (*f)->payload.size();
      queue_.push_back(std::move(**f));
      cv_.notify_one();
    }
    std::lock_guard lock(mu_);
    --stats_.connections_open;
    // Keep the connection in connections_ so late acks still reach a writer
    // that half-closed; it is dropped when the input is destroyed.
  }

  void AddStats(const StreamInputStats& now, const StreamInputStats& before) {
    stats_.frames_read += now.frames_read - before.frames_read;
    stats_.bytes_read += now.bytes_read - before.bytes_read;
    stats_.frames_corrupt += now.frames_corrupt - before.frames_corrupt;
    stats_.bytes_skipped += now.bytes_skipped - before.bytes_skipped;
  }

  UniqueFd owned_;
  int listen_fd_;
  StreamInputOptions options_;
  Notifier cancel_;
  std::thread acceptor_;

  mutable std::mutex mu_;
  std::condition_variable cv_;        // frames queued, or cancelled
  std::condition_variable space_cv_;  // queue has room, or cancelled
  std::deque<Frame> queue_;
  uint64_t queued_bytes_ = 0;
  bool cancelled_ = false;
  Status fatal_;
  std::map<uint64_t, std::shared_ptr<Connection>> connections_;
  std::list<std::thread> readers_;
  StreamInputStats stats_;
};

Result<std::unique_ptr<StreamInput>> FromFd(UniqueFd owned, int fd, const StreamInputOptions& options) {
  if (IsListeningSocket(fd)) return std::unique_ptr<StreamInput>(new ListenStreamInput(std::move(owned), fd, options));
  return std::unique_ptr<StreamInput>(new SingleStreamInput(std::move(owned), fd, options));
}

}  // namespace

Result<std::unique_ptr<StreamInput>> OpenStreamInput(std::string_view spec, const StreamInputOptions& options) {
  TELKIT_ASSIGN_OR_RETURN(Endpoint e, ParseEndpoint(spec));
  switch (e.kind) {
    case Endpoint::Kind::kStdio: return FromFd(UniqueFd(), 0, options);
    case Endpoint::Kind::kFd: return FromFd(UniqueFd(), e.fd, options);
    case Endpoint::Kind::kFile: {
      UniqueFd fd(::open(e.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoError("open '" + e.path + "'");
      int raw = fd.get();
      return FromFd(std::move(fd), raw, options);
    }
    case Endpoint::Kind::kUnixConnect: {
      TELKIT_ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(e.path));
      int raw = fd.get();
      return FromFd(std::move(fd), raw, options);
    }
    case Endpoint::Kind::kUnixListen: {
      TELKIT_ASSIGN_OR_RETURN(UniqueFd fd, ListenUnix(e.path));
      int raw = fd.get();
      return FromFd(std::move(fd), raw, options);
    }
    case Endpoint::Kind::kSystemd: {
      TELKIT_ASSIGN_OR_RETURN(int fd, SystemdSocket(e.path));
      return FromFd(UniqueFd(), fd, options);
    }
  }
  return InternalError("unhandled endpoint kind");
}

}  // namespace telkit
