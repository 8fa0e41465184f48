#include "common/tsdb/metrics_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/model/merge_querier.h"
#include "common/net/unix_socket.h"
#include "common/tsdb/metrics_store.h"

namespace telkit {
namespace {

Status Errno(const std::string& what) {
  const int e = errno;
  std::string msg = what + ": " + std::strerror(e);
  if (e == ENOENT) return NotFoundError(msg);
  if (e == EACCES || e == EPERM) return PermissionDeniedError(msg);
  return InternalError(msg);
}

std::string LockText(const StoreLockInfo& info) {
  return "pid " + std::to_string(info.pid) + "\nadmin " + info.admin + "\n";
}

StoreLockInfo ParseLockText(std::string_view text) {
  StoreLockInfo info;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.starts_with("pid ")) info.pid = std::atoi(std::string(line.substr(4)).c_str());
    if (line.starts_with("admin ")) info.admin = std::string(line.substr(6));
  }
  return info;
}

}  // namespace

Result<UniqueFd> LockStoreDir(const std::string& dir, const StoreLockInfo& info) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Errno("create '" + dir + "'");
  const std::string path = JoinPath(dir, kStoreLockFile);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return Errno("open '" + path + "'");
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return Errno("lock '" + path + "'");
    bool held = false;
    auto holder = ReadStoreLock(dir, &held);
    const int pid = holder.ok() ? holder->pid : 0;
    return FailedPreconditionError("the store '" + dir + "' is in use by another process (pid " +
                                   std::to_string(pid) + ", " + path + ")");
  }
  TELKIT_RETURN_IF_ERROR(UpdateStoreLock(fd.get(), info));
  return fd;
}

Status UpdateStoreLock(int lock_fd, const StoreLockInfo& info) {
  const std::string text = LockText(info);
  if (::ftruncate(lock_fd, 0) != 0) return Errno("truncate the lock file");
  if (::pwrite(lock_fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    return Errno("write the lock file");
  }
  return OkStatus();
}

Result<StoreLockInfo> ReadStoreLock(const std::string& dir, bool* held) {
  const std::string path = JoinPath(dir, kStoreLockFile);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Errno("open '" + path + "'");
  char buf[512];
  const ssize_t n = ::pread(fd.get(), buf, sizeof buf, 0);
  if (n < 0) return Errno("read '" + path + "'");
  if (held != nullptr) {
    // A shared lock succeeds exactly when nobody holds the exclusive one.
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) {
      ::flock(fd.get(), LOCK_UN);
      *held = false;
    } else {
      *held = true;
    }
  }
  return ParseLockText(std::string_view(buf, static_cast<size_t>(n)));
}

MetricsReader::~MetricsReader() {
  if (mode_ == Mode::kStoppedStore && store_) (void)static_cast<MetricsStore*>(store_.get())->Close();
}

Result<std::vector<SeriesSamples>> MetricsReader::Select(int64_t mint, int64_t maxt,
                                                         std::span<const LabelMatcher> matchers) {
  return q_->Select(mint, maxt, matchers);
}
Result<std::vector<std::string>> MetricsReader::LabelNames(int64_t mint, int64_t maxt,
                                                           std::span<const LabelMatcher> matchers) {
  return q_->LabelNames(mint, maxt, matchers);
}
Result<std::vector<std::string>> MetricsReader::LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                                            std::span<const LabelMatcher> matchers) {
  return q_->LabelValues(name, mint, maxt, matchers);
}
Result<std::vector<MetricMetadata>> MetricsReader::Metadata(std::string_view family) {
  return q_->Metadata(family);
}

StoreState ObserveStore(const std::string& dir) {
  StoreState st;
  struct stat sb;
  auto add = [&](const std::string& path) {
    if (::stat(path.c_str(), &sb) != 0) {
      st.files.insert(st.files.end(), {-1, -1, -1});
      return;
    }
    st.files.push_back(static_cast<int64_t>(sb.st_ino));
    st.files.push_back(static_cast<int64_t>(sb.st_size));
    st.files.push_back(static_cast<int64_t>(sb.st_mtim.tv_sec) * 1'000'000'000 + sb.st_mtim.tv_nsec);
  };
  if (::stat(JoinPath(dir, kHeadSocketFile).c_str(), &sb) == 0) {
    st.socket = true;
    st.socket_ino = static_cast<uint64_t>(sb.st_ino);
  }
  (void)ReadStoreLock(dir, &st.lock_held);
  add(JoinPath(dir, "index.db"));
  add(JoinPath(dir, "index.db-wal"));
  const std::string wal = JoinPath(dir, "wal");
  add(wal);
  // The newest segment: appends to it change neither the directory nor index.db.
  std::string newest;
  if (DIR* d = ::opendir(wal.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n.size() == 8 && n.find_first_not_of("0123456789") == std::string_view::npos && n > newest) {
        newest = std::string(n);
      }
    }
    ::closedir(d);
  }
  if (!newest.empty()) add(JoinPath(wal, newest));
  return st;
}

Result<std::vector<SeriesExemplars>> MetricsReader::Exemplars(int64_t mint, int64_t maxt,
                                                              std::span<const LabelMatcher> matchers) {
  if (mode_ == Mode::kDaemon) return static_cast<QuerySocketClient*>(head_.get())->Exemplars(mint, maxt, matchers);
  return static_cast<MetricsStore*>(store_.get())->SeriesExemplarLists(mint, maxt, matchers);
}

Result<std::unique_ptr<MetricsReader>> OpenMetricsReader(FileSystem* fs, const std::string& dir,
                                                         QuerySocketClientOptions client) {
  struct stat st;
  if (::stat(JoinPath(dir, "index.db").c_str(), &st) != 0) {
    return NotFoundError("no metrics store in '" + dir + "' (no index.db)");
  }
  std::unique_ptr<MetricsReader> r(new MetricsReader());
  const std::string sock = JoinPath(dir, kHeadSocketFile);
  if (ConnectUnix(sock).ok()) {
    r->mode_ = MetricsReader::Mode::kDaemon;
    TELKIT_ASSIGN_OR_RETURN(auto blocks, BlockQuerier::Open(fs, dir));
    r->blocks_ = std::move(blocks);
    r->head_ = std::make_unique<QuerySocketClient>(sock, client);
    // Head first: asked first, and its samples win at equal timestamps.
    r->merged_ = std::make_unique<MergeQuerier>(std::vector<Querier*>{r->head_.get(), r->blocks_.get()});
    r->q_ = r->merged_.get();
    return r;
  }
  auto lock = LockStoreDir(dir, StoreLockInfo{static_cast<int>(::getpid()), ""});
  if (!lock.ok()) {
    if (lock.status().code() != StatusCode::kFailedPrecondition) return lock.status();
    return UnavailableError(lock.status().message() + " and serves no head on '" + sock +
                            "' (starting, or an import): retry");
  }
  r->mode_ = MetricsReader::Mode::kStoppedStore;
  r->lock_ = std::move(*lock);
  MetricsStoreOptions o;
  o.background = false;
  o.read_only = true;
  TELKIT_ASSIGN_OR_RETURN(auto store, MetricsStore::Open(fs, dir, o));
  r->store_ = std::move(store);
  r->q_ = r->store_.get();
  return r;
}

}  // namespace telkit
