#include "common/pipeline/spool_sink.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "common/base/crc32c.h"
#include "common/base/fd.h"
#include "common/net/unix_socket.h"
#include "common/pipeline/spool.h"
#include "common/stream/endpoint.h"

namespace telkit {
namespace {

std::string StreamHeaderBytes(uint64_t writer_id) {
  std::string out(kStreamHeaderSize, '\0');
  EncodeStreamHeader({kStreamVersion, 0, writer_id}, reinterpret_cast<uint8_t*>(out.data()));
  return out;
}

class SpoolSink final : public OutputSink {
 public:
  // Exactly one of `connect_path` (dial) and `listen_fd` (accept) is used.
  SpoolSink(std::unique_ptr<Spool> spool, std::string connect_path, UniqueFd owned_listen, int listen_fd)
      : spool_(std::move(spool)),
        connect_path_(std::move(connect_path)),
        owned_listen_(std::move(owned_listen)),
        listen_fd_(listen_fd) {
    io_ = std::thread([this] { IoLoop(); });
  }

  ~SpoolSink() override {
    Cancel();
    io_.join();
  }

  Status Send(const Dispatch& d, bool, SendReport*) override {
    const uint64_t size = kFrameHeaderSize + d.payload->size();
    int pause_ms = 100;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        if (!spool_->HasRoom(size)) {
          full_ = true;
          space_cv_.wait(lock, [&] { return cancelled_ || spool_->HasRoom(size); });
          full_ = false;
        }
        if (cancelled_) return CancelledError("output cancelled");
      }
      Result<uint64_t> r = spool_->Append(d.signal, d.time_unix_nano, *d.payload);
      if (r.ok()) {
        failing_ = false;
        wake_.Notify();
        return OkStatus();
      }
      failing_ = true;  // counted by the spool; the metric shows it
      std::unique_lock lock(mu_);
      space_cv_.wait_for(lock, std::chrono::milliseconds(pause_ms), [&] { return cancelled_; });
      pause_ms = std::min(pause_ms * 2, 5000);
    }
  }

  Status Drain(int timeout_ms) override {
    std::unique_lock lock(mu_);
    bool done = space_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                   [&] { return cancelled_ || spool_->begin() == spool_->end(); });
    const uint64_t left = spool_->end() - spool_->begin();
    if (!done || left > 0) {
      return Status(StatusCode::kDeadlineExceeded,
                    std::to_string(left) + " spooled frames were not acknowledged by the stream peer in time "
                                           "(they stay in the spool)");
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

  // In memory: at most the frame being sent; the rest waits on disk.
  uint64_t unacked_bytes() const override { return 0; }
  bool connected() const override { return connected_.load(); }

  void RegisterMetrics(MetricsRegistry& r, const MetricLabels& labels) override {
    auto gauge = [&](std::string_view name, std::string_view help, std::function<double()> fn) {
      r.AddCallback(name, help, MetricType::kGauge, labels, std::move(fn));
    };
    Spool* s = spool_.get();
    gauge("tel_batch_spool_frames", "Frames in the output's spool, not yet acknowledged by its peer",
          [s] { return static_cast<double>(s->Stats().frames); });
    gauge("tel_batch_spool_bytes", "Bytes of the frames in the output's spool",
          [s] { return static_cast<double>(s->Stats().bytes); });
    gauge("tel_batch_spool_disk_bytes", "Size of the output's spool segment files",
          [s] { return static_cast<double>(s->Stats().disk_bytes); });
    gauge("tel_batch_spool_full", "1 while the spool is at --spool-max-bytes (backpressure)",
          [this] { return full_.load() ? 1.0 : 0.0; });
    gauge("tel_batch_spool_failing", "1 while writes to the spool fail (the output retries)",
          [this] { return failing_.load() ? 1.0 : 0.0; });
    r.AddCallback("tel_batch_spool_write_errors_total", "Spool appends that failed (ENOSPC, I/O errors)",
                  MetricType::kCounter, labels, [s] { return static_cast<double>(s->Stats().write_errors); });
    r.AddCallback("tel_batch_spool_recovered_frames_total", "Frames found in the spool at start and resent",
                  MetricType::kCounter, labels, [s] { return static_cast<double>(s->Stats().recovered_frames); });
    r.AddCallback("tel_batch_spool_discarded_bytes_total", "Torn or corrupt bytes cut off spool segments at start",
                  MetricType::kCounter, labels, [s] { return static_cast<double>(s->Stats().discarded_bytes); });
  }

 private:
  bool Sleep(int ms) {
    pollfd p{wake_.fd(), POLLIN, 0};
    ::poll(&p, 1, ms);
    wake_.Consume();
    std::lock_guard lock(mu_);
    return !cancelled_;
  }

  bool Cancelled() {
    std::lock_guard lock(mu_);
    return cancelled_;
  }

  Result<UniqueFd> Establish() {
    if (listen_fd_ >= 0) return AcceptConnection(listen_fd_, wake_.fd());
    return ConnectUnix(connect_path_);
  }

  void IoLoop() {
    int backoff_ms = 50;
    while (!Cancelled()) {
      Result<UniqueFd> conn = Establish();
      if (!conn.ok()) {
        if (!Sleep(backoff_ms)) return;
        backoff_ms = std::min(backoff_ms * 2, 2000);
        continue;
      }
      backoff_ms = 50;
      connected_ = true;
      const bool read_failed = !Serve(conn->get());
      connected_ = false;
      if (read_failed && !Sleep(1000)) return;  // a spool read error: pause before trying again
    }
  }

  // Sends every unacknowledged spooled frame from the oldest, then new ones
  // as they come, and applies acks, until the connection fails (true) or a
  // spooled frame cannot be read (false).
  bool Serve(int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    uint64_t next = spool_->begin();
    uint64_t stream_writer = 0;  // writer id of the stream header sent last
    std::string out;
    size_t out_pos = 0;
    std::string acks;
    for (;;) {
      bool want_out = out_pos < out.size();
      if (!want_out) {
        if (Cancelled()) return true;
        next = std::max(next, spool_->begin());
        if (next < spool_->end()) {
          Result<SpoolRecord> rec = spool_->Read(next);
          if (!rec.ok()) return false;
          out.clear();
          if (rec->writer_id != stream_writer) {
            out = StreamHeaderBytes(rec->writer_id);
            stream_writer = rec->writer_id;
          }
          out += rec->bytes;
          out_pos = 0;
          ++next;
          want_out = true;
        }
      }
      pollfd p[2] = {{fd, static_cast<short>(POLLIN | (want_out ? POLLOUT : 0)), 0}, {wake_.fd(), POLLIN, 0}};
      if (::poll(p, 2, 1000) < 0 && errno != EINTR) return true;
      if (p[1].revents & POLLIN) wake_.Consume();
      if (p[0].revents & (POLLERR | POLLNVAL)) return true;
      if (p[0].revents & (POLLIN | POLLHUP)) {
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;  // peer gone
        if (n > 0) {
          acks.append(buf, static_cast<size_t>(n));
          if (!ConsumeAcks(acks, next)) return true;
        }
      }
      if (want_out && (p[0].revents & POLLOUT)) {
        ssize_t n = ::send(fd, out.data() + out_pos, out.size() - out_pos, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) return true;
        if (n > 0) out_pos += static_cast<size_t>(n);
      }
    }
  }

  // Applies every complete ack; false when one is corrupt. An ack names the
  // sequence of a frame sent on this connection: it and every frame before
  // it are acknowledged (acks come in frame order).
  bool ConsumeAcks(std::string& acks, uint64_t next) {
    size_t used = 0;
    bool acked = false;
    while (acks.size() - used >= kAckSize) {
      Result<uint64_t> seq = DecodeAck(reinterpret_cast<const uint8_t*>(acks.data() + used));
      if (!seq.ok()) return false;
      used += kAckSize;
      for (uint64_t i = spool_->begin(); i < next; ++i) {
        if (spool_->SequenceAt(i) == *seq) {
          spool_->AckThrough(i + 1);
          acked = true;
          break;
        }
      }
    }
    acks.erase(0, used);
    if (acked) {
      std::lock_guard lock(mu_);
      space_cv_.notify_all();
    }
    return true;
  }

  std::unique_ptr<Spool> spool_;
  const std::string connect_path_;
  UniqueFd owned_listen_;
  const int listen_fd_;
  Notifier wake_;
  std::thread io_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> full_{false};
  std::atomic<bool> failing_{false};

  std::mutex mu_;
  std::condition_variable space_cv_;  // frames acknowledged, or cancelled
  bool cancelled_ = false;
};

}  // namespace

bool CanSpool(const OutputTarget& target) {
  if (target.kind != OutputTarget::Kind::kStream) return false;
  Result<Endpoint> e = ParseEndpoint(target.spec);
  if (!e.ok()) return false;
  return e->kind == Endpoint::Kind::kUnixConnect || e->kind == Endpoint::Kind::kUnixListen ||
         e->kind == Endpoint::Kind::kSystemd;
}

std::string SpoolDirFor(const std::string& dir, const std::string& spec) {
  std::string name;
  for (char c : spec) {
    if (name.size() == 64) break;
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    name += ok ? c : '_';
  }
  char hash[16];
  std::snprintf(hash, sizeof hash, "-%08x", Crc32c(spec));
  return JoinPath(dir, name + hash);
}

Result<std::unique_ptr<OutputSink>> OpenSpoolSink(const OutputTarget& target, const SpoolSettings& settings) {
  FileSystem* fs = settings.fs ? settings.fs : DefaultFileSystem();
  TELKIT_ASSIGN_OR_RETURN(Endpoint e, ParseEndpoint(target.spec));
  TELKIT_RETURN_IF_ERROR(fs->CreateDir(settings.dir).WithContext("--spool-dir"));
  SpoolOptions options;
  options.max_bytes = settings.max_bytes;
  options.segment_bytes = settings.segment_bytes;
  TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<Spool> spool, Spool::Open(fs, SpoolDirFor(settings.dir, target.spec), options));
  switch (e.kind) {
    case Endpoint::Kind::kUnixConnect:
      return std::unique_ptr<OutputSink>(new SpoolSink(std::move(spool), e.path, UniqueFd(), -1));
    case Endpoint::Kind::kUnixListen: {
      TELKIT_ASSIGN_OR_RETURN(UniqueFd fd, ListenUnix(e.path));
      const int raw = fd.get();
      return std::unique_ptr<OutputSink>(new SpoolSink(std::move(spool), "", std::move(fd), raw));
    }
    case Endpoint::Kind::kSystemd: {
      TELKIT_ASSIGN_OR_RETURN(int fd, SystemdSocket(e.path));
      if (!IsListeningSocket(fd)) {
        return InvalidArgumentError("output '" + target.spec + "': --spool-dir needs a listening systemd socket");
      }
      return std::unique_ptr<OutputSink>(new SpoolSink(std::move(spool), "", UniqueFd(), fd));
    }
    default:
      return InvalidArgumentError("output '" + target.spec + "' cannot spool (unix:, listen:unix:, systemd: only)");
  }
}

}  // namespace telkit
