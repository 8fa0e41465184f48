#include "common/fs/fault_injecting_file_system.h"

#include <algorithm>
#include <cerrno>
#include <random>
#include <set>
#include <vector>

namespace telkit {

struct FaultInjectingFileSystem::Node {
  bool is_dir = false;
  // Files: the bytes, of which data[0, synced) are durable.
  std::string data;
  uint64_t synced = 0;
  // Directories: entries now, and as of the last SyncDir().
  std::map<std::string, std::shared_ptr<Node>, std::less<>> entries;
  std::map<std::string, std::shared_ptr<Node>, std::less<>> durable;
};

namespace {

using Node = FaultInjectingFileSystem::Node;

std::string Quoted(std::string_view path) { return "'" + std::string(path) + "'"; }

Status PathError(std::string_view what, std::string_view path, int err) {
  return ErrnoError(std::string(what) + " " + Quoted(path), err);
}

Status CrashedError() { return UnavailableError("simulated crash: the file system is down"); }

// Splits "a//b/./c/" into {"a", "b", "c"}. Leading '/' is ignored: every
// path is relative to the in-memory root.
Result<std::vector<std::string>> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (part == "..") return InvalidArgumentError("path " + Quoted(path) + ": '..' is not supported");
    if (!part.empty() && part != ".") parts.emplace_back(part);
    i = j + 1;
  }
  return parts;
}

bool IsWithin(const std::vector<std::string>& inner, const std::vector<std::string>& outer) {
  return inner.size() > outer.size() && std::equal(outer.begin(), outer.end(), inner.begin());
}

}  // namespace

std::string_view FsOpName(FsOp op) {
  switch (op) {
    case FsOp::kNewWritableFile:
      return "new-writable-file";
    case FsOp::kNewAppendableFile:
      return "new-appendable-file";
    case FsOp::kNewReadableFile:
      return "new-readable-file";
    case FsOp::kAppend:
      return "append";
    case FsOp::kSync:
      return "sync";
    case FsOp::kClose:
      return "close";
    case FsOp::kRead:
      return "read";
    case FsOp::kCreateDir:
      return "create-dir";
    case FsOp::kRemoveDir:
      return "remove-dir";
    case FsOp::kSyncDir:
      return "sync-dir";
    case FsOp::kListDir:
      return "list-dir";
    case FsOp::kRemoveFile:
      return "remove-file";
    case FsOp::kRename:
      return "rename";
    case FsOp::kTruncate:
      return "truncate";
    case FsOp::kSyncFile:
      return "sync-file";
    case FsOp::kStat:
      return "stat";
  }
  return "unknown";
}

// ---- handles

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultInjectingFileSystem* fs, std::shared_ptr<Node> node, std::string path, uint64_t generation)
      : fs_(fs), node_(std::move(node)), path_(std::move(path)), generation_(generation) {}

  Status Append(std::string_view data) override {
    std::unique_lock<std::mutex> lock;
    TELKIT_RETURN_IF_ERROR(fs_->Enter(FsOp::kAppend, path_, /*mutating=*/true, lock, generation_));
    if (closed_) return FailedPreconditionError("append to " + Quoted(path_) + ": file is closed");
    size_t n = data.size();
    bool full = false;
    if (fs_->space_left_) {
      if (n > *fs_->space_left_) {
        n = static_cast<size_t>(*fs_->space_left_);
        full = true;
      }
      *fs_->space_left_ -= n;
    }
    node_->data.append(data.substr(0, n));
    if (full) return PathError("write", path_, ENOSPC);
    return OkStatus();
  }

  Status Sync() override {
    std::unique_lock<std::mutex> lock;
    TELKIT_RETURN_IF_ERROR(fs_->Enter(FsOp::kSync, path_, /*mutating=*/true, lock, generation_));
    if (closed_) return FailedPreconditionError("sync " + Quoted(path_) + ": file is closed");
    node_->synced = node_->data.size();
    ++fs_->syncs_;
    return OkStatus();
  }

  Status Close() override {
    if (closed_) return OkStatus();
    closed_ = true;
    std::unique_lock<std::mutex> lock;
    return fs_->Enter(FsOp::kClose, path_, /*mutating=*/false, lock, generation_);
  }

  uint64_t size() const override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    return node_->data.size();
  }

 private:
  FaultInjectingFileSystem* fs_;
  std::shared_ptr<Node> node_;
  std::string path_;
  uint64_t generation_;
  bool closed_ = false;
};

class FaultReadableFile final : public ReadableFile {
 public:
  FaultReadableFile(FaultInjectingFileSystem* fs, std::shared_ptr<Node> node, std::string path, uint64_t generation)
      : fs_(fs), node_(std::move(node)), path_(std::move(path)), generation_(generation) {}

  Result<size_t> ReadAt(uint64_t offset, std::span<char> out) const override {
    std::unique_lock<std::mutex> lock;
    TELKIT_RETURN_IF_ERROR(fs_->Enter(FsOp::kRead, path_, /*mutating=*/false, lock, generation_));
    const std::string& d = node_->data;
    if (offset >= d.size()) return size_t{0};
    size_t n = std::min<uint64_t>(out.size(), d.size() - offset);
    std::copy_n(d.data() + offset, n, out.data());
    return n;
  }

  Result<uint64_t> Size() const override {
    std::unique_lock<std::mutex> lock;
    TELKIT_RETURN_IF_ERROR(fs_->Enter(FsOp::kStat, path_, /*mutating=*/false, lock, generation_));
    return static_cast<uint64_t>(node_->data.size());
  }

 private:
  FaultInjectingFileSystem* fs_;
  std::shared_ptr<Node> node_;
  std::string path_;
  uint64_t generation_;
};

// ---- the file system

FaultInjectingFileSystem::FaultInjectingFileSystem() : root_(std::make_shared<Node>()) { root_->is_dir = true; }

FaultInjectingFileSystem::~FaultInjectingFileSystem() = default;

Status FaultInjectingFileSystem::Enter(FsOp op, std::string_view path, bool mutating,
                                       std::unique_lock<std::mutex>& lock, std::optional<uint64_t> handle_generation) {
  FaultHook hook;
  {
    std::lock_guard<std::mutex> hook_lock(hook_mu_);
    hook = hook_;
  }
  if (hook) {
    Status s = hook(op, path);
    if (!s.ok()) return s;
  }
  lock = std::unique_lock<std::mutex>(mu_);
  if (down_) return CrashedError();
  if (handle_generation && *handle_generation != generation_) {
    return UnavailableError("simulated crash: " + Quoted(path) + " was opened before the crash");
  }
  if (mutating) {
    ++ops_;
    if (crash_at_op_ && *crash_at_op_ == ops_) {
      crash_at_op_.reset();
      CrashLocked(crash_mode_, crash_seed_);
      return CrashedError();
    }
  }
  return OkStatus();
}

void FaultInjectingFileSystem::CrashLocked(CrashMode mode, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::set<const Node*> seen;
  // Directories first (which entries survive), then each surviving file once.
  std::function<void(Node&)> revert = [&](Node& dir) {
    bool keep_new = mode == CrashMode::kTornUnsynced && dir.entries != dir.durable && (rng() & 1) != 0;
    if (keep_new) {
      dir.durable = dir.entries;
    } else {
      dir.entries = dir.durable;
    }
    for (auto& [name, child] : dir.entries) {
      if (!seen.insert(child.get()).second) continue;
      if (child->is_dir) {
        revert(*child);
        continue;
      }
      std::string& d = child->data;
      uint64_t unsynced = d.size() - child->synced;
      switch (mode) {
        case CrashMode::kDropUnsynced:
          d.resize(child->synced);
          break;
        case CrashMode::kTornUnsynced:
          d.resize(child->synced + (unsynced == 0 ? 0 : rng() % (unsynced + 1)));
          break;
        case CrashMode::kZeroUnsynced:
          std::fill(d.begin() + static_cast<ptrdiff_t>(child->synced), d.end(), '\0');
          break;
      }
      child->synced = d.size();
    }
  };
  revert(*root_);
  ++generation_;
  down_ = true;
}

void FaultInjectingFileSystem::SimulateCrash(CrashMode mode, uint64_t seed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (down_) return;
  CrashLocked(mode, seed);
}

void FaultInjectingFileSystem::Restart() {
  std::lock_guard<std::mutex> lock(mu_);
  down_ = false;
  crash_at_op_.reset();
}

void FaultInjectingFileSystem::CrashAtOp(uint64_t n, CrashMode mode, uint64_t seed) {
  std::lock_guard<std::mutex> lock(mu_);
  crash_at_op_ = ops_ + std::max<uint64_t>(n, 1);
  crash_mode_ = mode;
  crash_seed_ = seed;
}

bool FaultInjectingFileSystem::down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return down_;
}

uint64_t FaultInjectingFileSystem::mutating_ops() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_;
}

void FaultInjectingFileSystem::SetSpaceLimit(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  space_left_ = bytes;
}

void FaultInjectingFileSystem::ClearSpaceLimit() {
  std::lock_guard<std::mutex> lock(mu_);
  space_left_.reset();
}

void FaultInjectingFileSystem::SetFaultHook(FaultHook hook) {
  std::lock_guard<std::mutex> lock(hook_mu_);
  hook_ = std::move(hook);
}

uint64_t FaultInjectingFileSystem::sync_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return syncs_;
}

uint64_t FaultInjectingFileSystem::dir_sync_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dir_syncs_;
}

Result<std::shared_ptr<Node>> FaultInjectingFileSystem::LookupLocked(std::string_view path) const {
  TELKIT_ASSIGN_OR_RETURN(auto parts, SplitPath(path));
  std::shared_ptr<Node> node = root_;
  for (const auto& part : parts) {
    if (!node->is_dir) return PathError("open", path, ENOTDIR);
    auto it = node->entries.find(part);
    if (it == node->entries.end()) return PathError("open", path, ENOENT);
    node = it->second;
  }
  return node;
}

Result<std::pair<std::shared_ptr<Node>, std::string>> FaultInjectingFileSystem::ParentLocked(
    std::string_view path) const {
  TELKIT_ASSIGN_OR_RETURN(auto parts, SplitPath(path));
  if (parts.empty()) return InvalidArgumentError("path " + Quoted(path) + " names the root");
  std::shared_ptr<Node> node = root_;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto it = node->entries.find(parts[i]);
    if (it == node->entries.end()) return PathError("open", path, ENOENT);
    node = it->second;
    if (!node->is_dir) return PathError("open", path, ENOTDIR);
  }
  return std::make_pair(node, parts.back());
}

Result<std::unique_ptr<WritableFile>> FaultInjectingFileSystem::OpenWritable(std::string_view path, bool truncate) {
  std::unique_lock<std::mutex> lock;
  TELKIT_RETURN_IF_ERROR(Enter(truncate ? FsOp::kNewWritableFile : FsOp::kNewAppendableFile, path, true, lock));
  TELKIT_ASSIGN_OR_RETURN(auto parent, ParentLocked(path));
  auto& [dir, name] = parent;
  auto it = dir->entries.find(name);
  std::shared_ptr<Node> node;
  if (it != dir->entries.end()) {
    node = it->second;
    if (node->is_dir) return PathError("open", path, EISDIR);
    if (truncate) {
      node->data.clear();
      node->synced = 0;
    }
  } else {
    node = std::make_shared<Node>();
    dir->entries.emplace(name, node);
  }
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, node, std::string(path), generation_));
}

Result<std::unique_ptr<WritableFile>> FaultInjectingFileSystem::NewWritableFile(std::string_view path) {
  return OpenWritable(path, /*truncate=*/true);
}

Result<std::unique_ptr<WritableFile>> FaultInjectingFileSystem::NewAppendableFile(std::string_view path) {
  return OpenWritable(path, /*truncate=*/false);
}

Result<std::unique_ptr<ReadableFile>> FaultInjectingFileSystem::NewReadableFile(std::string_view path) {
  std::unique_lock<std::mutex> lock;
  TELKIT_RETURN_IF_ERROR(Enter(FsOp::kNewReadableFile, path, false, lock));
  TELKIT_ASSIGN_OR_RETURN(auto node, LookupLocked(path));
  if (node->is_dir) return PathError("open", path, EISDIR);
  return std::unique_ptr<ReadableFile>(new FaultReadableFile(this, node, std::string(path), generation_));
}

Status FaultInjectingFileSystem::CreateDir(std::string_view path) {
  std::unique_lock<std::mutex> lock;
  TELKIT_RETURN_IF_ERROR(Enter(FsOp::kCreateDir, path, true, lock));
  auto parent = ParentLocked(path);
  if (!parent.ok()) return PathError("create directory", path, ENOENT);
  auto& [dir, name] = *parent;
  auto it = dir->entries.find(name);
  if (it != dir->entries.end()) {
    return it->second->is_dir ? OkStatus() : PathError("create directory", path, EEXIST);
  }
  auto node = std::make_shared<Node>();
  node->is_dir = true;
  dir->entries.emplace(name, std::move(node));
  return OkStatus();
}

Status FaultInjectingFileSystem::RemoveDir(std::string_view path) {
  std::unique_lock<std::mutex> lock;
  TELKIT_RETURN_IF_ERROR(Enter(FsOp::kRemoveDir, path, true, lock));
  auto parent = ParentLocked(path);
  if (!parent.ok()) return PathError("remove directory", path, ENOENT);
  auto& [dir, name] = *parent;
  auto it = dir->entries.find(name);
  if (it == dir->entries.end()) return PathError("remove directory", path, ENOENT);
  if (!it->second->is_dir) return PathError("remove directory", path, ENOTDIR);
  if (!it->second->entries.empty()) return PathError("remove directory", path, ENOTEMPTY);
  dir->entries.erase(it);
  return OkStatus();
}

Status FaultInjectingFileSystem::SyncDir(std::string_view path) {
  std::unique_lock<std::mutex> lock;
  TELKIT_RETURN_IF_ERROR(Enter(FsOp::kSyncDir, path, true, lock));
  auto node = LookupLocked(path);
  if (!node.ok()) return PathError("open directory", path, ENOENT);
  if (!(*node)->is_dir) return PathError("open directory", path, ENOTDIR);
  (*node)->durable = (*node)->entries;
  ++dir_syncs_;
  return OkStatus();
}

Result<std::vector<std::string>> FaultInjectingFileSystem::ListDir(std::string_view path) {
  std::unique_lock<std::mutex> lock;
  TELKIT_RETURN_IF_ERROR(Enter(FsOp::kListDir, path, false, lock));
  auto node = LookupLocked(path);
  if (!node.ok()) return PathError("list directory", path, ENOENT);
  if (!(*node)->is_dir) return PathError("list directory", path, ENOTDIR);
  std::vector<std::string> names;
  for (const auto& [name, child] : (*node)->entries) names.push_back(name);
  return names;  // std::map keeps them sorted
}

Status FaultInjectingFileSystem::RemoveFile(std::string_view path) {
  std::unique_lock<std::mutex> lock;
  TELKIT_RETURN_IF_ERROR(Enter(FsOp::kRemoveFile, path, true, lock));
  auto parent = ParentLocked(path);
  if (!parent.ok()) return PathError("remove", path, ENOENT);
  auto& [dir, name] = *parent;
  auto it = dir->entries.find(name);
  if (it == dir->entries.end()) return PathError("remove", path, ENOENT);
  if (it->second->is_dir) return PathError("remove", path, EISDIR);
  dir->entries.erase(it);
  return OkStatus();
}

Status FaultInjectingFileSystem::Rename(std::string_view from, std::string_view to) {
  std::unique_lock<std::mutex> lock;
  TELKIT_RETURN_IF_ERROR(Enter(FsOp::kRename, from, true, lock));
  std::string what = "rename " + Quoted(from) + " to " + Quoted(to);
  TELKIT_ASSIGN_OR_RETURN(auto from_parts, SplitPath(from));
  TELKIT_ASSIGN_OR_RETURN(auto to_parts, SplitPath(to));
  auto src = ParentLocked(from);
  auto dst = ParentLocked(to);
  if (!src.ok() || !dst.ok()) return ErrnoError(what, ENOENT);
  auto& [src_dir, src_name] = *src;
  auto& [dst_dir, dst_name] = *dst;
  auto it = src_dir->entries.find(src_name);
  if (it == src_dir->entries.end()) return ErrnoError(what, ENOENT);
  std::shared_ptr<Node> node = it->second;
  if (node->is_dir && IsWithin(to_parts, from_parts)) return ErrnoError(what, EINVAL);
  auto target = dst_dir->entries.find(dst_name);
  if (target != dst_dir->entries.end()) {
    if (target->second == node) return OkStatus();
    if (target->second->is_dir && !node->is_dir) return ErrnoError(what, EISDIR);
    if (!target->second->is_dir && node->is_dir) return ErrnoError(what, ENOTDIR);
    if (target->second->is_dir && !target->second->entries.empty()) return ErrnoError(what, ENOTEMPTY);
  }
  src_dir->entries.erase(it);
  dst_dir->entries[dst_name] = std::move(node);
  return OkStatus();
}

Status FaultInjectingFileSystem::Truncate(std::string_view path, uint64_t size) {
  std::unique_lock<std::mutex> lock;
  TELKIT_RETURN_IF_ERROR(Enter(FsOp::kTruncate, path, true, lock));
  auto node = LookupLocked(path);
  if (!node.ok()) return PathError("truncate", path, ENOENT);
  if ((*node)->is_dir) return PathError("truncate", path, EISDIR);
  (*node)->data.resize(size, '\0');
  (*node)->synced = std::min((*node)->synced, size);
  return OkStatus();
}

Status FaultInjectingFileSystem::SyncFile(std::string_view path) {
  std::unique_lock<std::mutex> lock;
  TELKIT_RETURN_IF_ERROR(Enter(FsOp::kSyncFile, path, true, lock));
  auto node = LookupLocked(path);
  if (!node.ok()) return PathError("open", path, ENOENT);
  if (!(*node)->is_dir) (*node)->synced = (*node)->data.size();
  ++syncs_;
  return OkStatus();
}

Result<FileInfo> FaultInjectingFileSystem::Stat(std::string_view path) {
  std::unique_lock<std::mutex> lock;
  TELKIT_RETURN_IF_ERROR(Enter(FsOp::kStat, path, false, lock));
  auto node = LookupLocked(path);
  if (!node.ok()) return PathError("stat", path, ENOENT);
  return FileInfo{(*node)->is_dir, (*node)->is_dir ? 0 : static_cast<uint64_t>((*node)->data.size())};
}

Result<uint64_t> FaultInjectingFileSystem::SyncedSize(std::string_view path) const {
  std::lock_guard<std::mutex> lock(mu_);
  TELKIT_ASSIGN_OR_RETURN(auto node, LookupLocked(path));
  return node->synced;
}

bool FaultInjectingFileSystem::EntryDurable(std::string_view path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto parts = SplitPath(path);
  if (!parts.ok()) return false;
  std::shared_ptr<Node> node = root_;
  for (const auto& part : *parts) {
    auto live = node->entries.find(part);
    auto durable = node->durable.find(part);
    if (live == node->entries.end() || durable == node->durable.end() || live->second != durable->second) return false;
    node = live->second;
  }
  return true;
}

}  // namespace telkit
