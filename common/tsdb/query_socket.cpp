#include "common/tsdb/query_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "common/base/crc32c.h"
#include "common/net/unix_socket.h"
#include "common/tsdb/chunk.h"

namespace telkit {
namespace {

using Clock = std::chrono::steady_clock;

// Bounds that protect a decoder from lengths that promise more than the
// payload holds.
constexpr uint64_t kMaxMatchers = 1024;
constexpr uint64_t kMaxLabelsPerSeries = 1024;

// ---- encoding primitives (little-endian, unsigned LEB128 varints)

void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}
void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutI64(std::string* out, int64_t v) {
  auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}
void PutUvarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void PutString(std::string* out, std::string_view s) {
  PutUvarint(out, s.size());
  out->append(s);
}
void PutLabels(std::string* out, const Labels& labels) {
  PutUvarint(out, labels.size());
  for (const Label& l : labels) {
    PutString(out, l.name);
    PutString(out, l.value);
  }
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint16_t GetU16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | (static_cast<uint8_t>(p[1]) << 8));
}

// Reads a payload front to back; every read checks what is left.
class PayloadReader {
 public:
  explicit PayloadReader(std::string_view p) : p_(p) {}
  bool U8(uint8_t* v) {
    if (p_.empty()) return false;
    *v = static_cast<uint8_t>(p_[0]);
    p_.remove_prefix(1);
    return true;
  }
  bool I64(int64_t* v) {
    if (p_.size() < 8) return false;
    uint64_t u = 0;
    for (int i = 7; i >= 0; --i) u = (u << 8) | static_cast<uint8_t>(p_[i]);
    *v = static_cast<int64_t>(u);
    p_.remove_prefix(8);
    return true;
  }
  bool Uvarint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_.empty()) return false;
      auto b = static_cast<uint8_t>(p_[0]);
      p_.remove_prefix(1);
      if (shift == 63 && b > 1) return false;  // overflows 64 bits
      r |= uint64_t{b & 0x7fu} << shift;
      if (b < 0x80) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  // A count of items that each take at least `min_item_bytes`.
  bool Count(uint64_t* n, uint64_t max, size_t min_item_bytes) {
    return Uvarint(n) && *n <= max && *n <= p_.size() / std::max<size_t>(min_item_bytes, 1);
  }
  bool Bytes(std::string_view* s) {
    uint64_t n;
    if (!Uvarint(&n) || n > p_.size()) return false;
    *s = p_.substr(0, n);
    p_.remove_prefix(n);
    return true;
  }
  bool String(std::string* s) {
    std::string_view v;
    if (!Bytes(&v)) return false;
    s->assign(v);
    return true;
  }
  bool LabelSet(Labels* labels) {
    uint64_t n;
    if (!Count(&n, kMaxLabelsPerSeries, 2)) return false;
    std::vector<Label> ls(n);
    for (Label& l : ls) {
      if (!String(&l.name) || !String(&l.value)) return false;
    }
    auto r = Labels::FromUnsorted(std::move(ls));
    if (!r.ok()) return false;
    *labels = std::move(*r);
    return true;
  }
  bool done() const { return p_.empty(); }

 private:
  std::string_view p_;
};

Status Malformed(std::string_view what) { return InvalidArgumentError("malformed " + std::string(what)); }
Status Corrupt(std::string_view what) { return DataLossError("corrupt " + std::string(what)); }

bool IsRequestType(uint8_t t) { return t >= 0x01 && t <= 0x06; }

// ---- blocking I/O with deadlines

// Waits until `fd` is readable; DEADLINE_EXCEEDED at `deadline`, CANCELLED
// when `cancel_fd` becomes readable first.
Status WaitReadable(int fd, Clock::time_point deadline, int cancel_fd) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Status(StatusCode::kDeadlineExceeded, "timed out waiting for the query socket");
    pollfd p[2] = {{fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    int r = ::poll(p, cancel_fd >= 0 ? 2 : 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll");
    }
    if (cancel_fd >= 0 && (p[1].revents & POLLIN)) return CancelledError("query socket closing");
    if (r > 0) return OkStatus();
  }
}

// Reads exactly n bytes. *got says how many arrived (for telling a clean end
// of stream from a truncated frame); UNAVAILABLE at end of stream.
Status ReadFull(int fd, char* buf, size_t n, Clock::time_point deadline, int cancel_fd, size_t* got) {
  *got = 0;
  while (*got < n) {
    TELKIT_RETURN_IF_ERROR(WaitReadable(fd, deadline, cancel_fd));
    ssize_t r = ::recv(fd, buf + *got, n - *got, 0);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return UnavailableError("query socket connection reset");
      return ErrnoError("read from query socket");
    }
    if (r == 0) return UnavailableError("query socket connection closed");
    *got += static_cast<size_t>(r);
  }
  return OkStatus();
}

// Writes everything, without SIGPIPE; DEADLINE_EXCEEDED at `deadline`.
Status SendAll(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    ssize_t r = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r >= 0) {
      data.remove_prefix(static_cast<size_t>(r));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Status(StatusCode::kDeadlineExceeded, "timed out writing to the query socket");
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
      continue;
    }
    if (errno == EPIPE || errno == ECONNRESET) return UnavailableError("query socket connection closed");
    return ErrnoError("write to query socket");
  }
  return OkStatus();
}

struct FrameHeader {
  uint32_t length = 0;
  uint32_t crc = 0;
  uint8_t type = 0;
};

FrameHeader ParseFrameHeader(const char* h) {
  return {GetU32(h), GetU32(h + 4), static_cast<uint8_t>(h[8])};
}

uint32_t FrameCrc(uint8_t type, std::string_view payload) {
  const char t = static_cast<char>(type);
  return Crc32cExtend(Crc32cExtend(0, &t, 1), payload.data(), payload.size());
}

// Checks a hello; UNIMPLEMENTED for another version or flags, DATA_LOSS
// (or INVALID_ARGUMENT on the server) for anything else.
Status CheckHello(std::string_view h, StatusCode bad_magic_code) {
  if (h.substr(0, 8) != kQuerySocketMagic) return Status(bad_magic_code, "not a telkit query socket (bad magic)");
  uint16_t version = GetU16(h.data() + 8);
  uint16_t flags = GetU16(h.data() + 10);
  if (version != kQuerySocketVersion) {
    return UnimplementedError("query socket protocol version " + std::to_string(version) + " (this side speaks " +
                              std::to_string(kQuerySocketVersion) + ")");
  }
  if (flags != 0) return UnimplementedError("query socket hello with unknown flags " + std::to_string(flags));
  return OkStatus();
}

}  // namespace

// ---- payloads

std::string EncodeQueryHello(uint16_t version) {
  std::string out(kQuerySocketMagic);
  PutU16(&out, version);
  PutU16(&out, 0);
  return out;
}

std::string EncodeQueryFrame(QueryMessageType type, std::string_view payload) {
  std::string out;
  out.reserve(kQueryFrameHeaderSize + payload.size());
  PutU32(&out, static_cast<uint32_t>(payload.size()));
  PutU32(&out, FrameCrc(static_cast<uint8_t>(type), payload));
  out.push_back(static_cast<char>(type));
  out.append(payload);
  return out;
}

std::string EncodeQueryRequest(const QueryRequest& r) {
  std::string out;
  if (r.type == QueryMessageType::kMetadata) {
    PutString(&out, r.name);
    PutUvarint(&out, r.limit);
    return out;
  }
  if (r.type == QueryMessageType::kLabelValues) PutString(&out, r.name);
  PutI64(&out, r.mint);
  PutI64(&out, r.maxt);
  PutUvarint(&out, r.matchers.size());
  for (const LabelMatcher& m : r.matchers) {
    out.push_back(static_cast<char>(m.type()));
    PutString(&out, m.name());
    PutString(&out, m.value());
  }
  return out;
}

Result<QueryRequest> DecodeQueryRequest(QueryMessageType type, std::string_view payload) {
  QueryRequest r;
  r.type = type;
  PayloadReader in(payload);
  if (!IsRequestType(static_cast<uint8_t>(type))) {
    return UnimplementedError("unknown request type " + std::to_string(static_cast<int>(type)));
  }
  if (type == QueryMessageType::kMetadata) {
    if (!in.String(&r.name) || !in.Uvarint(&r.limit) || !in.done()) return Malformed("metadata request");
    return r;
  }
  if (type == QueryMessageType::kLabelValues && !in.String(&r.name)) return Malformed("label values request");
  uint64_t n;
  if (!in.I64(&r.mint) || !in.I64(&r.maxt) || !in.Count(&n, kMaxMatchers, 3)) return Malformed("request");
  for (uint64_t i = 0; i < n; ++i) {
    uint8_t t;
    std::string name, value;
    if (!in.U8(&t) || !in.String(&name) || !in.String(&value)) return Malformed("matcher");
    if (t > static_cast<uint8_t>(MatchType::kRegexNoMatch)) {
      return InvalidArgumentError("unknown matcher type " + std::to_string(t));
    }
    TELKIT_ASSIGN_OR_RETURN(LabelMatcher m, LabelMatcher::Make(static_cast<MatchType>(t), name, value));
    r.matchers.push_back(std::move(m));
  }
  if (!in.done()) return Malformed("request (trailing bytes)");
  return r;
}

Result<std::string> EncodeSelectResult(std::span<const SeriesSamples> series) {
  std::string out;
  PutUvarint(&out, series.size());
  for (const SeriesSamples& s : series) {
    PutLabels(&out, s.labels);
    size_t chunks = (s.samples.size() + kMaxChunkSamples - 1) / kMaxChunkSamples;
    PutUvarint(&out, chunks);
    for (size_t i = 0; i < s.samples.size(); i += kMaxChunkSamples) {
      size_t n = std::min<size_t>(kMaxChunkSamples, s.samples.size() - i);
      TELKIT_ASSIGN_OR_RETURN(std::string chunk, EncodeChunk(std::span(s.samples).subspan(i, n), ChunkChoice::kAppender));
      PutString(&out, chunk);
    }
  }
  return out;
}

Result<std::vector<SeriesSamples>> DecodeSelectResult(std::string_view payload) {
  PayloadReader in(payload);
  uint64_t n;
  if (!in.Count(&n, UINT64_MAX, 2)) return Corrupt("select result");
  std::vector<SeriesSamples> out(n);
  for (SeriesSamples& s : out) {
    uint64_t chunks;
    if (!in.LabelSet(&s.labels) || !in.Count(&chunks, UINT64_MAX, 1)) return Corrupt("select result series");
    for (uint64_t c = 0; c < chunks; ++c) {
      std::string_view chunk;
      if (!in.Bytes(&chunk)) return Corrupt("select result chunk");
      auto samples = DecodeChunk(chunk);
      if (!samples.ok()) return DataLossError("select result of " + s.labels.ToString() + ": " + samples.status().message());
      s.samples.insert(s.samples.end(), samples->begin(), samples->end());
    }
  }
  if (!in.done()) return Corrupt("select result (trailing bytes)");
  return out;
}

std::string EncodeStringList(std::span<const std::string> strings) {
  std::string out;
  PutUvarint(&out, strings.size());
  for (const std::string& s : strings) PutString(&out, s);
  return out;
}

Result<std::vector<std::string>> DecodeStringList(std::string_view payload) {
  PayloadReader in(payload);
  uint64_t n;
  if (!in.Count(&n, UINT64_MAX, 1)) return Corrupt("string list");
  std::vector<std::string> out(n);
  for (std::string& s : out) {
    if (!in.String(&s)) return Corrupt("string list");
  }
  if (!in.done()) return Corrupt("string list (trailing bytes)");
  return out;
}

std::string EncodeSeriesResult(std::span<const Labels> series) {
  std::string out;
  PutUvarint(&out, series.size());
  for (const Labels& l : series) PutLabels(&out, l);
  return out;
}

Result<std::vector<Labels>> DecodeSeriesResult(std::string_view payload) {
  PayloadReader in(payload);
  uint64_t n;
  if (!in.Count(&n, UINT64_MAX, 1)) return Corrupt("series result");
  std::vector<Labels> out(n);
  for (Labels& l : out) {
    if (!in.LabelSet(&l)) return Corrupt("series result");
  }
  if (!in.done()) return Corrupt("series result (trailing bytes)");
  return out;
}

std::string EncodeMetadataResult(std::span<const MetricMetadata> metadata) {
  std::string out;
  PutUvarint(&out, metadata.size());
  for (const MetricMetadata& m : metadata) {
    PutString(&out, m.family);
    out.push_back(static_cast<char>(m.type));
    PutString(&out, m.help);
    PutString(&out, m.unit);
  }
  return out;
}

std::string EncodeExemplarsResult(std::span<const SeriesExemplars> series) {
  std::string out;
  PutUvarint(&out, series.size());
  for (const SeriesExemplars& s : series) {
    PutLabels(&out, s.labels);
    PutUvarint(&out, s.exemplars.size());
    for (const Exemplar& e : s.exemplars) {
      PutLabels(&out, e.labels);
      PutI64(&out, std::bit_cast<int64_t>(e.value));
      PutI64(&out, e.t);
    }
  }
  return out;
}

Result<std::vector<SeriesExemplars>> DecodeExemplarsResult(std::string_view payload) {
  PayloadReader in(payload);
  uint64_t n;
  if (!in.Count(&n, UINT64_MAX, 2)) return Corrupt("exemplars result");
  std::vector<SeriesExemplars> out(n);
  for (SeriesExemplars& s : out) {
    uint64_t k;
    if (!in.LabelSet(&s.labels) || !in.Count(&k, UINT64_MAX, 17)) return Corrupt("exemplars result series");
    s.exemplars.resize(k);
    for (Exemplar& e : s.exemplars) {
      int64_t bits;
      if (!in.LabelSet(&e.labels) || !in.I64(&bits) || !in.I64(&e.t)) return Corrupt("exemplars result exemplar");
      e.value = std::bit_cast<double>(bits);
    }
  }
  if (!in.done()) return Corrupt("exemplars result (trailing bytes)");
  return out;
}

Result<std::vector<MetricMetadata>> DecodeMetadataResult(std::string_view payload) {
  PayloadReader in(payload);
  uint64_t n;
  if (!in.Count(&n, UINT64_MAX, 4)) return Corrupt("metadata result");
  std::vector<MetricMetadata> out(n);
  for (MetricMetadata& m : out) {
    uint8_t t;
    if (!in.String(&m.family) || !in.U8(&t) || !in.String(&m.help) || !in.String(&m.unit)) {
      return Corrupt("metadata result");
    }
    if (t > static_cast<uint8_t>(MetricFamilyType::kStateSet)) t = 0;  // a newer type: unknown
    m.type = static_cast<MetricFamilyType>(t);
  }
  if (!in.done()) return Corrupt("metadata result (trailing bytes)");
  return out;
}

std::string EncodeErrorResult(const Status& status) {
  std::string out;
  out.push_back(static_cast<char>(status.code()));
  PutString(&out, status.message());
  return out;
}

Status DecodeErrorResult(std::string_view payload) {
  PayloadReader in(payload);
  uint8_t code;
  std::string message;
  if (!in.U8(&code) || !in.String(&message) || !in.done()) return Corrupt("error response");
  if (code == 0 || code > static_cast<uint8_t>(StatusCode::kUnauthenticated)) code = static_cast<uint8_t>(StatusCode::kUnknown);
  return Status(static_cast<StatusCode>(code), "query socket server: " + message);
}

// ---- server

struct QuerySocketServer::Connection {
  UniqueFd fd;
  std::thread thread;
  std::atomic<bool> done{false};
};

QuerySocketServer::QuerySocketServer(UniqueFd listen_fd, std::string path, Querier* querier,
                                     QuerySocketServerOptions options)
    : listen_fd_(std::move(listen_fd)), path_(std::move(path)), querier_(querier), options_(std::move(options)) {}

Result<std::unique_ptr<QuerySocketServer>> QuerySocketServer::Start(const std::string& path, Querier* querier,
                                                                    QuerySocketServerOptions options) {
  TELKIT_ASSIGN_OR_RETURN(UniqueFd fd, ListenUnix(path));
  std::unique_ptr<QuerySocketServer> s(new QuerySocketServer(std::move(fd), path, querier, std::move(options)));
  s->accept_thread_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  return s;
}

Result<std::unique_ptr<QuerySocketServer>> QuerySocketServer::StartOnFd(UniqueFd listen_fd, Querier* querier,
                                                                        QuerySocketServerOptions options) {
  if (!IsListeningSocket(listen_fd.get())) return InvalidArgumentError("query socket: not a listening socket");
  std::unique_ptr<QuerySocketServer> s(new QuerySocketServer(std::move(listen_fd), "", querier, std::move(options)));
  s->accept_thread_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  return s;
}

QuerySocketServer::~QuerySocketServer() { Stop(); }

void QuerySocketServer::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stop_.Notify();
  if (accept_thread_.joinable()) accept_thread_.join();
  Reap(true);
  listen_fd_.reset();
  if (!path_.empty()) ::unlink(path_.c_str());
}

QuerySocketServer::Stats QuerySocketServer::stats() const {
  Stats s;
  s.connections = counters_.connections.load();
  s.active_connections = counters_.active.load();
  s.rejected_connections = counters_.rejected.load();
  s.requests = counters_.requests.load();
  s.bad_requests = counters_.bad.load();
  s.oversized_requests = counters_.oversized_req.load();
  s.oversized_responses = counters_.oversized_resp.load();
  s.query_errors = counters_.query_errors.load();
  return s;
}

void QuerySocketServer::Reap(bool all) {
  std::list<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (all || (*it)->done.load()) {
        finished.push_back(std::move(*it));
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) {
    if (c->thread.joinable()) c->thread.join();
  }
}

void QuerySocketServer::AcceptLoop() {
  for (;;) {
    auto fd = AcceptConnection(listen_fd_.get(), stop_.fd());
    if (!fd.ok()) {
      if (fd.status().code() == StatusCode::kCancelled) return;
      // EMFILE and the like: back off instead of spinning.
      pollfd p{stop_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) return;
      continue;
    }
    Reap(false);
    counters_.connections.fetch_add(1);
    std::lock_guard lock(mu_);
    if (connections_.size() >= options_.max_connections) {
      counters_.rejected.fetch_add(1);
      // Best effort: the client reads the hello, then this error.
      std::string reply = EncodeQueryHello() +
                          EncodeQueryFrame(QueryMessageType::kError,
                                           EncodeErrorResult(ResourceExhaustedError(
                                               "too many query socket connections (" +
                                               std::to_string(options_.max_connections) + ")")));
      [[maybe_unused]] ssize_t n = ::send(fd->get(), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->fd = std::move(*fd);
    Connection* raw = c.get();
    connections_.push_back(std::move(c));
    raw->thread = std::thread([this, raw] { Serve(raw); });
  }
}

void QuerySocketServer::Serve(Connection* c) {
  counters_.active.fetch_add(1);
  const int fd = c->fd.get();
  const int cancel = stop_.fd();
  auto io_deadline = [&] { return Clock::now() + options_.io_timeout; };
  auto finish = [&] {
    ::shutdown(fd, SHUT_RDWR);
    counters_.active.fetch_sub(1);
    c->done.store(true);
  };

  char hello[kQueryHelloSize];
  size_t got = 0;
  if (!ReadFull(fd, hello, sizeof hello, io_deadline(), cancel, &got).ok()) {
    if (got > 0) counters_.bad.fetch_add(1);
    return finish();
  }
  // The server's hello goes out whatever the client sent, so a client of
  // another version learns which one this server speaks.
  Status hello_ok = CheckHello(std::string_view(hello, sizeof hello), StatusCode::kInvalidArgument);
  std::string reply = EncodeQueryHello();
  if (!hello_ok.ok()) {
    counters_.bad.fetch_add(1);
    reply += EncodeQueryFrame(QueryMessageType::kError, EncodeErrorResult(hello_ok));
    (void)SendAll(fd, reply, io_deadline());
    return finish();
  }
  if (!SendAll(fd, reply, io_deadline()).ok()) return finish();

  std::string payload;
  for (;;) {
    // Between requests a connection may idle; within a frame it may not.
    if (!WaitReadable(fd, Clock::now() + options_.idle_timeout, cancel).ok()) return finish();
    char h[kQueryFrameHeaderSize];
    if (!ReadFull(fd, h, sizeof h, io_deadline(), cancel, &got).ok()) {
      if (got > 0) counters_.bad.fetch_add(1);
      return finish();
    }
    FrameHeader header = ParseFrameHeader(h);
    if (header.length > options_.max_request_bytes) {
      counters_.oversized_req.fetch_add(1);
      counters_.requests.fetch_add(1);
      // The frame is not read, so the stream cannot be resynchronised: answer and close.
      (void)SendAll(fd,
                    EncodeQueryFrame(QueryMessageType::kError,
                                     EncodeErrorResult(ResourceExhaustedError(
                                         "request of " + std::to_string(header.length) + " bytes exceeds the limit of " +
                                         std::to_string(options_.max_request_bytes)))),
                    io_deadline());
      return finish();
    }
    payload.resize(header.length);
    if (!ReadFull(fd, payload.data(), payload.size(), io_deadline(), cancel, &got).ok()) {
      counters_.bad.fetch_add(1);
      return finish();
    }
    if (FrameCrc(header.type, payload) != header.crc) {
      counters_.bad.fetch_add(1);
      counters_.requests.fetch_add(1);
      (void)SendAll(fd,
                    EncodeQueryFrame(QueryMessageType::kError,
                                     EncodeErrorResult(DataLossError("request frame checksum mismatch"))),
                    io_deadline());
      return finish();
    }
    if (!Answer(fd, static_cast<QueryMessageType>(header.type), payload)) return finish();
  }
}

bool QuerySocketServer::Answer(int fd, QueryMessageType type, std::string_view payload) {
  counters_.requests.fetch_add(1);
  auto send_error = [&](const Status& s) {
    return SendAll(fd, EncodeQueryFrame(QueryMessageType::kError, EncodeErrorResult(s)),
                   Clock::now() + options_.io_timeout)
        .ok();
  };
  auto request = DecodeQueryRequest(type, payload);
  if (!request.ok()) {
    counters_.bad.fetch_add(1);
    return send_error(request.status());
  }
  const QueryRequest& r = *request;
  if (r.type == QueryMessageType::kSelect || r.type == QueryMessageType::kSeries ||
      r.type == QueryMessageType::kExemplars) {
    bool selective = std::any_of(r.matchers.begin(), r.matchers.end(),
                                 [](const LabelMatcher& m) { return !m.MatchesEmpty(); });
    if (!selective) {
      counters_.bad.fetch_add(1);
      return send_error(InvalidArgumentError("a selector needs at least one matcher that does not match the empty string"));
    }
  }

  Result<std::string> body = InternalError("unanswered");
  auto querier_error = [&](const Status& s) {
    counters_.query_errors.fetch_add(1);
    return s;
  };
  switch (r.type) {
    case QueryMessageType::kSelect: {
      auto series = querier_->Select(r.mint, r.maxt, r.matchers);
      body = series.ok() ? EncodeSelectResult(*series) : Result<std::string>(querier_error(series.status()));
      break;
    }
    case QueryMessageType::kSeries: {
      auto series = querier_->Select(r.mint, r.maxt, r.matchers);
      if (!series.ok()) {
        body = querier_error(series.status());
        break;
      }
      std::vector<Labels> labels;
      labels.reserve(series->size());
      for (SeriesSamples& s : *series) labels.push_back(std::move(s.labels));
      body = EncodeSeriesResult(labels);
      break;
    }
    case QueryMessageType::kLabelNames: {
      auto names = querier_->LabelNames(r.mint, r.maxt, r.matchers);
      body = names.ok() ? EncodeStringList(*names) : Result<std::string>(querier_error(names.status()));
      break;
    }
    case QueryMessageType::kLabelValues: {
      auto values = querier_->LabelValues(r.name, r.mint, r.maxt, r.matchers);
      body = values.ok() ? EncodeStringList(*values) : Result<std::string>(querier_error(values.status()));
      break;
    }
    case QueryMessageType::kMetadata: {
      std::vector<MetricMetadata> all, out;
      if (options_.metadata) {
        all = options_.metadata();
      } else {
        auto md = querier_->Metadata("");
        if (!md.ok()) return send_error(querier_error(md.status()));
        all = std::move(*md);
      }
      std::sort(all.begin(), all.end(), [](const MetricMetadata& a, const MetricMetadata& b) { return a.family < b.family; });
      for (MetricMetadata& m : all) {
        if (!r.name.empty() && m.family != r.name) continue;
        if (r.limit != 0 && out.size() >= r.limit) break;
        out.push_back(std::move(m));
      }
      body = EncodeMetadataResult(out);
      break;
    }
    case QueryMessageType::kExemplars: {
      if (!options_.exemplars) {
        body = EncodeExemplarsResult({});
        break;
      }
      auto ex = options_.exemplars(r.mint, r.maxt, r.matchers);
      body = ex.ok() ? EncodeExemplarsResult(*ex) : Result<std::string>(querier_error(ex.status()));
      break;
    }
    default:
      body = UnimplementedError("unknown request type");
  }
  if (!body.ok()) return send_error(body.status());
  if (body->size() > options_.max_response_bytes) {
    counters_.oversized_resp.fetch_add(1);
    return send_error(ResourceExhaustedError("response of " + std::to_string(body->size()) +
                                             " bytes exceeds the limit of " +
                                             std::to_string(options_.max_response_bytes) + "; narrow the query"));
  }
  auto result_type = static_cast<QueryMessageType>(static_cast<uint8_t>(r.type) | 0x80);
  return SendAll(fd, EncodeQueryFrame(result_type, *body), Clock::now() + options_.io_timeout).ok();
}

// ---- client

QuerySocketClient::QuerySocketClient(std::string path, QuerySocketClientOptions options)
    : path_(std::move(path)), options_(options) {}

namespace {

// A non-blocking connect that waits out a full listen backlog (EAGAIN on a
// Unix socket) until `deadline`, where a blocking connect would hang.
Result<UniqueFd> ConnectWithDeadline(const std::string& path, Clock::time_point deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgumentError("query socket path '" + path + "' is empty or too long");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return ErrnoError("socket");
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      if (Clock::now() >= deadline) {
        return Status(StatusCode::kDeadlineExceeded, "connect to '" + path + "': listen backlog full");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    return UnavailableError("connect to '" + path + "': " + std::strerror(errno == ENOENT ? ECONNREFUSED : errno));
  }
}

}  // namespace

Result<UniqueFd> QuerySocketClient::Connect(Clock::time_point deadline) {
  auto fd = ConnectWithDeadline(path_, deadline);
  if (!fd.ok()) return Status(fd.status().code(), "query socket '" + path_ + "': " + fd.status().message());
  char hello[kQueryHelloSize];
  size_t got;
  TELKIT_RETURN_IF_ERROR(SendAll(fd->get(), EncodeQueryHello(), deadline));
  Status s = ReadFull(fd->get(), hello, sizeof hello, deadline, -1, &got);
  if (!s.ok()) return Status(s.code(), "query socket '" + path_ + "' hello: " + s.message());
  Status ok = CheckHello(std::string_view(hello, sizeof hello), StatusCode::kDataLoss);
  if (!ok.ok()) return Status(ok.code(), "query socket '" + path_ + "': " + ok.message());
  return std::move(*fd);
}

Result<std::string> QuerySocketClient::CallOn(int fd, std::string_view frame, QueryMessageType want,
                                              Clock::time_point deadline, bool* sent_nothing, bool* reusable) {
  *sent_nothing = true;
  *reusable = false;
  TELKIT_RETURN_IF_ERROR(SendAll(fd, frame, deadline));
  char h[kQueryFrameHeaderSize];
  size_t got = 0;
  Status s = ReadFull(fd, h, sizeof h, deadline, -1, &got);
  if (!s.ok()) {
    // Nothing came back on a connection the server had closed before it
    // read the request: safe to retry (every request is a read).
    *sent_nothing = got == 0 && s.code() == StatusCode::kUnavailable;
    return s;
  }
  *sent_nothing = false;
  FrameHeader header = ParseFrameHeader(h);
  if (header.length > options_.max_response_bytes) {
    return ResourceExhaustedError("query socket response of " + std::to_string(header.length) +
                                  " bytes exceeds the limit of " + std::to_string(options_.max_response_bytes));
  }
  std::string payload(header.length, '\0');
  TELKIT_RETURN_IF_ERROR(ReadFull(fd, payload.data(), payload.size(), deadline, -1, &got));
  if (FrameCrc(header.type, payload) != header.crc) return DataLossError("query socket response checksum mismatch");
  if (header.type == static_cast<uint8_t>(QueryMessageType::kError)) {
    Status err = DecodeErrorResult(payload);
    // The server closes the connection after these (the framing is lost).
    *reusable = err.code() != StatusCode::kResourceExhausted && err.code() != StatusCode::kDataLoss &&
                err.code() != StatusCode::kUnimplemented;
    return err;
  }
  if (header.type != static_cast<uint8_t>(want)) {
    return DataLossError("query socket response of type " + std::to_string(header.type) + ", expected " +
                         std::to_string(static_cast<int>(want)));
  }
  *reusable = true;
  return payload;
}

Result<std::string> QuerySocketClient::Call(const QueryRequest& request) {
  const Clock::time_point deadline = Clock::now() + options_.timeout;
  const std::string frame = EncodeQueryFrame(request.type, EncodeQueryRequest(request));
  const auto want = static_cast<QueryMessageType>(static_cast<uint8_t>(request.type) | 0x80);
  for (int attempt = 0;; ++attempt) {
    UniqueFd fd;
    bool pooled = false;
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        fd = std::move(idle_.back());
        idle_.pop_back();
        pooled = true;
      }
    }
    if (!fd.valid()) {
      TELKIT_ASSIGN_OR_RETURN(fd, Connect(deadline));
    }
    bool sent_nothing = false, reusable = false;
    auto r = CallOn(fd.get(), frame, want, deadline, &sent_nothing, &reusable);
    if (reusable) {
      std::lock_guard lock(mu_);
      if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(fd));
    }
    if (r.ok() || reusable) return r;
    // A pooled connection may be one the server closed (restart, idle
    // timeout): one retry on a new connection.
    if (pooled && attempt == 0 && (sent_nothing || r.status().code() == StatusCode::kUnavailable)) continue;
    if (r.status().code() == StatusCode::kUnavailable) {
      return UnavailableError("query socket '" + path_ + "': " + r.status().message());
    }
    return r;
  }
}

Result<std::vector<SeriesSamples>> QuerySocketClient::Select(int64_t mint, int64_t maxt,
                                                             std::span<const LabelMatcher> matchers) {
  QueryRequest r{QueryMessageType::kSelect, mint, maxt, {matchers.begin(), matchers.end()}, {}, 0};
  TELKIT_ASSIGN_OR_RETURN(std::string payload, Call(r));
  return DecodeSelectResult(payload);
}

Result<std::vector<std::string>> QuerySocketClient::LabelNames(int64_t mint, int64_t maxt,
                                                               std::span<const LabelMatcher> matchers) {
  QueryRequest r{QueryMessageType::kLabelNames, mint, maxt, {matchers.begin(), matchers.end()}, {}, 0};
  TELKIT_ASSIGN_OR_RETURN(std::string payload, Call(r));
  return DecodeStringList(payload);
}

Result<std::vector<std::string>> QuerySocketClient::LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                                                std::span<const LabelMatcher> matchers) {
  QueryRequest r{QueryMessageType::kLabelValues, mint, maxt, {matchers.begin(), matchers.end()}, std::string(name), 0};
  TELKIT_ASSIGN_OR_RETURN(std::string payload, Call(r));
  return DecodeStringList(payload);
}

Result<std::vector<Labels>> QuerySocketClient::Series(int64_t mint, int64_t maxt,
                                                      std::span<const LabelMatcher> matchers) {
  QueryRequest r{QueryMessageType::kSeries, mint, maxt, {matchers.begin(), matchers.end()}, {}, 0};
  TELKIT_ASSIGN_OR_RETURN(std::string payload, Call(r));
  return DecodeSeriesResult(payload);
}

Result<std::vector<SeriesExemplars>> QuerySocketClient::Exemplars(int64_t mint, int64_t maxt,
                                                                  std::span<const LabelMatcher> matchers) {
  QueryRequest r{QueryMessageType::kExemplars, mint, maxt, {matchers.begin(), matchers.end()}, {}, 0};
  TELKIT_ASSIGN_OR_RETURN(std::string payload, Call(r));
  return DecodeExemplarsResult(payload);
}

Result<std::vector<MetricMetadata>> QuerySocketClient::Metadata(std::string_view metric, uint64_t limit) {
  QueryRequest r{QueryMessageType::kMetadata, 0, 0, {}, std::string(metric), limit};
  TELKIT_ASSIGN_OR_RETURN(std::string payload, Call(r));
  return DecodeMetadataResult(payload);
}

}  // namespace telkit
