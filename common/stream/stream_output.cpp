#include "common/stream/stream_output.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "common/base/fd.h"
#include "common/net/unix_socket.h"
#include "common/stream/endpoint.h"

namespace telkit {
namespace {

uint64_t RandomWriterId() {
  std::random_device rd;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t{rd()} << 32) | rd();
  return id;
}

uint64_t NowUnixNano() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

std::string EncodeHeaderBytes(uint64_t writer_id) {
  std::string out(kStreamHeaderSize, '\0');
  EncodeStreamHeader({kStreamVersion, 0, writer_id}, reinterpret_cast<uint8_t*>(out.data()));
  return out;
}

// Fills in what the caller left to the writer: sequence and time.
void Stamp(Frame& frame, uint64_t& last_sequence) {
  if (frame.sequence == 0) frame.sequence = last_sequence + 1;
  last_sequence = frame.sequence;
  if (frame.time_unix_nano == 0) frame.time_unix_nano = NowUnixNano();
}

// Pipes and files: best effort, a frame is delivered once write(2) returned.
class FdStreamOutput final : public StreamOutput {
 public:
  FdStreamOutput(UniqueFd owned, int fd, uint64_t writer_id) : owned_(std::move(owned)), fd_(fd), writer_id_(writer_id) {}

  Status Write(Frame frame) override {
    if (cancelled_) return CancelledError("output cancelled");
    if (!header_written_) TELKIT_RETURN_IF_ERROR(StartStream(writer_id_));
    Stamp(frame, last_sequence_);
    uint8_t header[kFrameHeaderSize];
    EncodeFrameHeader(frame, header);
    TELKIT_RETURN_IF_ERROR(
        WriteAll2(fd_, std::string_view(reinterpret_cast<char*>(header), kFrameHeaderSize), frame.payload)
            .WithContext("write stream"));
    std::lock_guard lock(mu_);
    ++stats_.frames_written;
    stats_.bytes_written += kFrameHeaderSize + frame.payload.size();
    return OkStatus();
  }

  Status StartStream(uint64_t writer_id) override {
    writer_id_ = writer_id;
    TELKIT_RETURN_IF_ERROR(WriteAll(fd_, EncodeHeaderBytes(writer_id)).WithContext("write stream"));
    header_written_ = true;
    std::lock_guard lock(mu_);
    stats_.bytes_written += kStreamHeaderSize;
    return OkStatus();
  }

  Status Drain(int) override { return OkStatus(); }  // writes are synchronous
  void Cancel() override { cancelled_ = true; }
  StreamOutputStats Stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  UniqueFd owned_;
  int fd_;
  uint64_t writer_id_;
  uint64_t last_sequence_ = 0;
  bool header_written_ = false;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  StreamOutputStats stats_;
};

// Unix sockets, with acknowledgements: frames stay buffered until the peer
// acks them, and are resent in order after a reconnect. One I/O thread owns
// the socket: it connects (or accepts), sends, and reads acks.
class SocketStreamOutput final : public StreamOutput {
 public:
  // Exactly one of `connect_path` (dial) and `listen_fd` (accept) is used.
  SocketStreamOutput(std::string connect_path, UniqueFd owned_listen, int listen_fd,
                     const StreamOutputOptions& options, uint64_t writer_id)
      : connect_path_(std::move(connect_path)),
        owned_listen_(std::move(owned_listen)),
        listen_fd_(listen_fd),
        max_unacked_bytes_(options.max_unacked_bytes),
        writer_id_(writer_id) {
    io_ = std::thread([this] { IoLoop(); });
  }

  ~SocketStreamOutput() override {
    Cancel();
    io_.join();
  }

  Status Write(Frame frame) override {
    Stamp(frame, last_sequence_);
    Pending p{frame.sequence, false, EncodeFrame(frame)};
    std::unique_lock lock(mu_);
    space_cv_.wait(lock, [&] { return cancelled_ || unacked_bytes_ < max_unacked_bytes_; });
    if (cancelled_) return CancelledError("output cancelled");
    unacked_bytes_ += p.bytes.size();
    pending_.push_back(std::move(p));
    ++stats_.frames_written;
    stats_.bytes_written += pending_.back().bytes.size();
    lock.unlock();
    wake_.Notify();
    return OkStatus();
  }

  Status StartStream(uint64_t writer_id) override {
    std::lock_guard lock(mu_);
    writer_id_ = writer_id;
    pending_.push_back({0, true, EncodeHeaderBytes(writer_id)});
    wake_.Notify();
    return OkStatus();
  }

  Status Drain(int timeout_ms) override {
    std::unique_lock lock(mu_);
    bool done = space_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                   [&] { return cancelled_ || pending_.empty(); });
    if (!done || !pending_.empty()) {
      return Status(StatusCode::kDeadlineExceeded,
                    std::to_string(pending_.size()) + " frames were not acknowledged by the stream peer in time");
    }
    return OkStatus();
  }

  void Cancel() override {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    wake_.Notify();
    space_cv_.notify_all();
  }

  StreamOutputStats Stats() const override {
    std::lock_guard lock(mu_);
    StreamOutputStats s = stats_;
    s.unacked_bytes = unacked_bytes_;
    return s;
  }

 private:
  struct Pending {
    uint64_t sequence;
    bool is_header;  // a StartStream() header, not a frame
    std::string bytes;
  };

  // Waits up to `ms` or until woken; returns false once cancelled.
  bool Sleep(int ms) {
    pollfd p{wake_.fd(), POLLIN, 0};
    ::poll(&p, 1, ms);
    wake_.Consume();
    std::lock_guard lock(mu_);
    return !cancelled_;
  }

  Result<UniqueFd> Establish() {
    if (listen_fd_ >= 0) return AcceptConnection(listen_fd_, wake_.fd());
    return ConnectUnix(connect_path_);
  }

  void IoLoop() {
    int backoff_ms = 50;
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (cancelled_) return;
      }
      Result<UniqueFd> conn = Establish();
      if (!conn.ok()) {
        if (!Sleep(backoff_ms)) return;
        backoff_ms = std::min(backoff_ms * 2, 2000);
        continue;
      }
      backoff_ms = 50;
      {
        std::lock_guard lock(mu_);
        stats_.connected = true;
        ++stats_.reconnects;
      }
      Serve(conn->get());
      std::lock_guard lock(mu_);
      stats_.connected = false;
    }
  }

  // Sends everything unacked from the start, then new frames, and reads acks,
  // until the connection fails or the output is cancelled.
  void Serve(int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    std::string out;  // bytes being sent
    size_t out_pos = 0;
    size_t next_index;  // index into pending_ of the next element to send
    {
      std::lock_guard lock(mu_);
      out = EncodeHeaderBytes(writer_id_);
      next_index = (!pending_.empty() && pending_.front().is_header) ? 1 : 0;
    }
    std::string acks;
    for (;;) {
      bool want_out = out_pos < out.size();
      if (!want_out) {
        std::lock_guard lock(mu_);
        if (cancelled_) return;
        if (next_index < pending_.size()) {
          out = pending_[next_index++].bytes;
          out_pos = 0;
          want_out = true;
        }
      }
      pollfd p[2] = {{fd, static_cast<short>(POLLIN | (want_out ? POLLOUT : 0)), 0}, {wake_.fd(), POLLIN, 0}};
      if (::poll(p, 2, 1000) < 0 && errno != EINTR) return;
      if (p[1].revents & POLLIN) wake_.Consume();
      if (p[0].revents & (POLLERR | POLLNVAL)) return;
      if (p[0].revents & (POLLIN | POLLHUP)) {
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return;  // peer gone
        if (n > 0) {
          acks.append(buf, static_cast<size_t>(n));
          if (!ConsumeAcks(acks, next_index)) return;
        }
      }
      if (want_out && (p[0].revents & POLLOUT)) {
        ssize_t n = ::send(fd, out.data() + out_pos, out.size() - out_pos, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) return;
        if (n > 0) out_pos += static_cast<size_t>(n);
      }
    }
  }

  // Applies every complete ack in `acks`; false when one is corrupt.
  bool ConsumeAcks(std::string& acks, size_t& next_index) {
    size_t used = 0;
    while (acks.size() - used >= kAckSize) {
      Result<uint64_t> seq = DecodeAck(reinterpret_cast<const uint8_t*>(acks.data() + used));
      if (!seq.ok()) return false;
      used += kAckSize;
      std::lock_guard lock(mu_);
      // Pop through the acknowledged frame (acks arrive in frame order).
      auto it = std::find_if(pending_.begin(), pending_.begin() + static_cast<long>(next_index),
                             [&](const Pending& p) { return !p.is_header && p.sequence == *seq; });
      if (it == pending_.begin() + static_cast<long>(next_index)) continue;  // stale ack
      size_t count = static_cast<size_t>(it - pending_.begin()) + 1;
      for (size_t i = 0; i < count; ++i) {
        unacked_bytes_ -= pending_.front().is_header ? 0 : pending_.front().bytes.size();
        if (!pending_.front().is_header) ++stats_.frames_acked;
        pending_.pop_front();
      }
      next_index -= count;
      space_cv_.notify_all();
    }
    acks.erase(0, used);
    return true;
  }

  const std::string connect_path_;
  UniqueFd owned_listen_;
  const int listen_fd_;
  const uint64_t max_unacked_bytes_;
  uint64_t last_sequence_ = 0;  // Write() caller's thread only
  Notifier wake_;
  std::thread io_;

  mutable std::mutex mu_;
  std::condition_variable space_cv_;  // unacked bytes went down, or cancelled
  uint64_t writer_id_;
  std::deque<Pending> pending_;
  uint64_t unacked_bytes_ = 0;
  bool cancelled_ = false;
  StreamOutputStats stats_;
};

Result<std::unique_ptr<StreamOutput>> FromFd(UniqueFd owned, int fd, const StreamOutputOptions& options,
                                             uint64_t writer_id) {
  if (IsListeningSocket(fd)) {
    return std::unique_ptr<StreamOutput>(new SocketStreamOutput("", std::move(owned), fd, options, writer_id));
  }
  return std::unique_ptr<StreamOutput>(new FdStreamOutput(std::move(owned), fd, writer_id));
}

}  // namespace

Result<std::unique_ptr<StreamOutput>> OpenStreamOutput(std::string_view spec, const StreamOutputOptions& options) {
  TELKIT_ASSIGN_OR_RETURN(Endpoint e, ParseEndpoint(spec));
  uint64_t writer_id = options.writer_id ? options.writer_id : RandomWriterId();
  switch (e.kind) {
    case Endpoint::Kind::kStdio: return FromFd(UniqueFd(), 1, options, writer_id);
    case Endpoint::Kind::kFd: return FromFd(UniqueFd(), e.fd, options, writer_id);
    case Endpoint::Kind::kFile: {
      UniqueFd fd(::open(e.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
      if (!fd.valid()) return ErrnoError("open '" + e.path + "'");
      int raw = fd.get();
      return FromFd(std::move(fd), raw, options, writer_id);
    }
    case Endpoint::Kind::kUnixConnect:
      return std::unique_ptr<StreamOutput>(new SocketStreamOutput(e.path, UniqueFd(), -1, options, writer_id));
    case Endpoint::Kind::kUnixListen: {
      TELKIT_ASSIGN_OR_RETURN(UniqueFd fd, ListenUnix(e.path));
      int raw = fd.get();
      return std::unique_ptr<StreamOutput>(new SocketStreamOutput("", std::move(fd), raw, options, writer_id));
    }
    case Endpoint::Kind::kSystemd: {
      TELKIT_ASSIGN_OR_RETURN(int fd, SystemdSocket(e.path));
      return FromFd(UniqueFd(), fd, options, writer_id);
    }
  }
  return InternalError("unhandled endpoint kind");
}

}  // namespace telkit
