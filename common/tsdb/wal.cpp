#include "common/tsdb/wal.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/base/crc32c.h"

namespace telkit {
namespace {

constexpr uint64_t kB = kWalBlockSize;
constexpr uint64_t kH = kWalFragmentHeaderSize;

uint32_t GetU32(const char* p) {
  auto b = reinterpret_cast<const uint8_t*>(p);
  return static_cast<uint32_t>(b[0]) | (static_cast<uint32_t>(b[1]) << 8) | (static_cast<uint32_t>(b[2]) << 16) |
         (static_cast<uint32_t>(b[3]) << 24);
}
uint16_t GetU16(const char* p) {
  auto b = reinterpret_cast<const uint8_t*>(p);
  return static_cast<uint16_t>(b[0] | (b[1] << 8));
}

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// Checks a fragment header and payload that lie in `bytes` (which may hold
// more); the payload must end within `room` bytes (the rest of its block).
// Returns an empty reason when intact.
std::string CheckFragment(std::string_view bytes, uint64_t room, WalFragmentType* type, std::string_view* payload) {
  if (bytes.size() < kH) return "truncated fragment header";
  uint32_t crc = GetU32(bytes.data());
  uint16_t length = GetU16(bytes.data() + 4);
  auto t = static_cast<uint8_t>(bytes[6]);
  if (crc == 0 && length == 0 && t == 0) return "zero bytes where a fragment should begin";
  if (kH + length > room) return "fragment crosses a block boundary";
  if (kH + length > bytes.size()) return "truncated fragment";
  if (Crc32cExtend(Crc32c(bytes.data() + 4, 3), bytes.data() + kH, length) != crc) return "checksum mismatch";
  if (t < 1 || t > 4) return "unknown fragment type " + std::to_string(t);
  *type = static_cast<WalFragmentType>(t);
  *payload = bytes.substr(kH, length);
  return "";
}

}  // namespace

Result<std::vector<uint32_t>> ListWalSegments(FileSystem* fs, std::string_view dir) {
  auto names = fs->ListDir(dir);
  if (!names.ok()) {
    if (names.status().code() == StatusCode::kNotFound) return std::vector<uint32_t>{};
    return names.status();
  }
  std::vector<uint32_t> out;
  for (const auto& name : *names) {
    uint32_t index;
    if (ParseWalSegmentName(name, &index)) out.push_back(index);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string WalDamage::ToString() const {
  std::string s = "segment " + WalSegmentName(segment) + " offset " + std::to_string(offset) + ": " + reason;
  s += " (" + std::to_string(skipped_bytes) + " bytes skipped";
  if (tail) s += ", at the tail";
  if (records_follow) s += ", intact records follow";
  return s + ")";
}

// ---- WalWriter

struct WalWriter::Waiter {
  std::string_view record;
  Status status;
  bool done = false;
  std::condition_variable cv;
};

WalWriter::WalWriter(FileSystem* fs, std::string dir, WalOptions options)
    : fs_(fs), dir_(std::move(dir)), options_(options) {}

WalWriter::~WalWriter() { (void)Close(); }

Result<std::unique_ptr<WalWriter>> WalWriter::Open(FileSystem* fs, std::string dir, WalOptions options) {
  if (options.segment_bytes < kB || options.segment_bytes % kB != 0) {
    return InvalidArgumentError("wal segment size " + std::to_string(options.segment_bytes) +
                                " is not a positive multiple of " + std::to_string(kB));
  }
  if (options.segment_bytes > (uint64_t{1} << 40)) return InvalidArgumentError("wal segment size over 1 TiB");
  TELKIT_RETURN_IF_ERROR(fs->CreateDir(dir));
  TELKIT_RETURN_IF_ERROR(fs->SyncDir(DirName(dir)));
  TELKIT_ASSIGN_OR_RETURN(auto segments, ListWalSegments(fs, dir));
  uint32_t next = 1;
  if (!segments.empty()) {
    uint32_t last = segments.back();
    if (last == UINT32_MAX) return ResourceExhaustedError("wal " + Quoted(dir) + " has no segment numbers left");
    next = last + 1;
    // Repair: replay the last segment; cut what follows its last intact record.
    WalReaderOptions ro;
    ro.first_segment = last;
    TELKIT_ASSIGN_OR_RETURN(auto reader, WalReader::Open(fs, dir, ro));
    for (;;) {
      TELKIT_ASSIGN_OR_RETURN(auto record, reader->Next());
      if (!record) break;
    }
    if (!reader->damage().empty()) {
      const WalDamage& tail = reader->damage().back();
      std::string path = JoinPath(dir, WalSegmentName(last));
      if (tail.offset < kWalSegmentHeaderSize) {
        // Not even the header made it: the segment held nothing. Its number
        // is reused, or the next segment would leave a gap (damage).
        TELKIT_RETURN_IF_ERROR(fs->RemoveFile(path));
        TELKIT_RETURN_IF_ERROR(fs->SyncDir(dir));
        next = last;
      } else {
        TELKIT_RETURN_IF_ERROR(fs->Truncate(path, tail.offset));
        TELKIT_RETURN_IF_ERROR(fs->SyncFile(path));
      }
    }
  }
  std::unique_ptr<WalWriter> w(new WalWriter(fs, std::move(dir), options));
  TELKIT_RETURN_IF_ERROR(w->StartSegment(next));
  return w;
}

Status WalWriter::StartSegment(uint32_t index) {
  std::string path = SegmentPath(index);
  TELKIT_ASSIGN_OR_RETURN(file_, fs_->NewWritableFile(path));
  uint8_t header[kWalSegmentHeaderSize];
  EncodeWalSegmentHeader(index, header);
  TELKIT_RETURN_IF_ERROR(file_->Append(std::string_view(reinterpret_cast<char*>(header), sizeof header)));
  TELKIT_RETURN_IF_ERROR(file_->Sync());
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  offset_ = kWalSegmentHeaderSize;
  std::lock_guard<std::mutex> lock(mu_);
  segment_ = index;
  stats_.bytes += kWalSegmentHeaderSize;
  stats_.syncs += 1;
  stats_.segments += 1;
  return OkStatus();
}

Result<uint32_t> WalWriter::CutSegment() {
  uint32_t next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return FailedPreconditionError("wal " + Quoted(dir_) + " is closed");
    if (!failed_.ok()) return failed_;
    if (!queue_.empty()) return FailedPreconditionError("wal " + Quoted(dir_) + ": cut with appends in flight");
    next = segment_ + 1;
  }
  if (next == 0) return ResourceExhaustedError("wal " + Quoted(dir_) + " has no segment numbers left");
  Status s = file_->Sync();
  if (s.ok()) s = file_->Close();
  if (s.ok()) s = StartSegment(next);
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_.ok()) failed_ = s.WithContext("wal " + Quoted(dir_) + " failed");
    return failed_;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.syncs += 1;
  return next;
}

uint32_t WalWriter::segment() const {
  std::lock_guard<std::mutex> lock(mu_);
  return segment_;
}

uint64_t WalWriter::max_record_bytes() const {
  // From offset 20, one fragment per block fills the segment exactly.
  return options_.segment_bytes / kB * (kB - kH) - kWalSegmentHeaderSize;
}

WalStats WalWriter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Status WalWriter::Append(std::string_view record) {
  if (record.size() > max_record_bytes()) {
    return InvalidArgumentError("wal record of " + std::to_string(record.size()) + " bytes is over the limit of " +
                                std::to_string(max_record_bytes()));
  }
  Waiter w;
  w.record = record;
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return FailedPreconditionError("wal " + Quoted(dir_) + " is closed");
  queue_.push_back(&w);
  while (!w.done && queue_.front() != &w) w.cv.wait(lock);
  if (w.done) return w.status;

  // This writer leads: it writes and syncs the records of everyone queued.
  std::vector<Waiter*> group;
  size_t bytes = 0;
  for (Waiter* x : queue_) {
    if (!group.empty() && bytes + x->record.size() > options_.max_group_bytes) break;
    group.push_back(x);
    bytes += x->record.size();
  }
  Status s = failed_;
  lock.unlock();
  if (s.ok()) s = WriteGroup(group);
  lock.lock();
  if (!s.ok() && failed_.ok()) failed_ = s.WithContext("wal " + Quoted(dir_) + " failed");
  if (s.ok()) {
    stats_.records += group.size();
    stats_.commits += 1;
  }
  for (Waiter* x : group) {
    queue_.pop_front();
    x->status = s.ok() ? s : failed_;
    x->done = true;
    if (x != &w) x->cv.notify_one();
  }
  if (!queue_.empty()) {
    queue_.front()->cv.notify_one();
  } else {
    idle_.notify_all();
  }
  return w.status;
}

Status WalWriter::WriteGroup(const std::vector<Waiter*>& group) {
  buf_.clear();
  uint64_t written = 0;
  uint64_t syncs = 0;
  auto flush = [&]() -> Status {
    if (buf_.empty()) return OkStatus();
    Status s = file_->Append(buf_);
    offset_ += buf_.size();
    written += buf_.size();
    buf_.clear();
    return s;
  };
  for (Waiter* w : group) {
    std::string_view left = w->record;
    if (WalRecordEnd(offset_ + buf_.size(), left.size()) > options_.segment_bytes) {
      // Finish this segment (complete and durable before the next exists).
      TELKIT_RETURN_IF_ERROR(flush());
      TELKIT_RETURN_IF_ERROR(file_->Sync());
      ++syncs;
      TELKIT_RETURN_IF_ERROR(file_->Close());
      uint32_t next;
      {
        std::lock_guard<std::mutex> lock(mu_);
        next = segment_ + 1;
        stats_.bytes += written;
        stats_.syncs += syncs;
        written = syncs = 0;
      }
      if (next == 0) return ResourceExhaustedError("wal " + Quoted(dir_) + " has no segment numbers left");
      TELKIT_RETURN_IF_ERROR(StartSegment(next));
    }
    uint64_t pos = offset_ + buf_.size();
    bool begin = true;
    do {
      uint64_t room = kB - pos % kB;
      if (room < kH) {
        buf_.append(room, '\0');
        pos += room;
        room = kB;
      }
      size_t fragment = static_cast<size_t>(std::min<uint64_t>(left.size(), room - kH));
      bool end = fragment == left.size();
      WalFragmentType type = begin && end ? WalFragmentType::kFull
                             : begin      ? WalFragmentType::kFirst
                             : end        ? WalFragmentType::kLast
                                          : WalFragmentType::kMiddle;
      AppendWalFragment(&buf_, type, left.substr(0, fragment));
      pos += kH + fragment;
      left.remove_prefix(fragment);
      begin = false;
    } while (!left.empty());
  }
  Status s = flush();
  uint64_t sync_nanos = 0;
  if (s.ok() && options_.sync) {
    auto start = std::chrono::steady_clock::now();
    s = file_->Sync();
    sync_nanos = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
    ++syncs;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.bytes += written;
  stats_.syncs += syncs;
  stats_.commit_sync_nanos += sync_nanos;
  stats_.max_commit_sync_nanos = std::max(stats_.max_commit_sync_nanos, sync_nanos);
  return s;
}

Status WalWriter::Close() {
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_ && !file_) return OkStatus();
  closed_ = true;
  idle_.wait(lock, [&] { return queue_.empty(); });
  if (!file_) return OkStatus();
  Status s = file_->Close();
  file_.reset();
  return s;
}

Status WalWriter::RemoveSegmentsBefore(uint32_t index) {
  TELKIT_ASSIGN_OR_RETURN(auto segments, ListWalSegments(fs_, dir_));
  uint32_t current = segment();
  bool removed = false;
  for (uint32_t s : segments) {  // ascending: what is left stays contiguous
    if (s >= index || s >= current) break;
    TELKIT_RETURN_IF_ERROR(fs_->RemoveFile(SegmentPath(s)));
    removed = true;
  }
  return removed ? fs_->SyncDir(dir_) : OkStatus();
}

// ---- WalReader

WalReader::WalReader(FileSystem* fs, std::string dir, WalReaderOptions options, std::vector<uint32_t> segments)
    : fs_(fs), dir_(std::move(dir)), options_(options), segments_(std::move(segments)) {}

Result<std::unique_ptr<WalReader>> WalReader::Open(FileSystem* fs, std::string dir, WalReaderOptions options) {
  TELKIT_ASSIGN_OR_RETURN(auto segments, ListWalSegments(fs, dir));
  std::erase_if(segments, [&](uint32_t s) { return s < options.first_segment; });
  return std::unique_ptr<WalReader>(new WalReader(fs, std::move(dir), options, std::move(segments)));
}

Status WalReader::Damage(uint64_t at, uint64_t found_at, std::string reason, bool* stop) {
  uint32_t segment = segments_[current_];
  bool last = current_ + 1 == segments_.size();
  *stop = false;
  WalDamage d;
  d.segment = segment;
  d.offset = at;
  d.reason = std::move(reason);
  if (options_.on_corruption == WalCorruptionPolicy::kStop) {
    if (!last) {
      return DataLossError("corrupt wal segment " + Quoted(JoinPath(dir_, WalSegmentName(segment))) + " at offset " +
                           std::to_string(at) + ": " + d.reason);
    }
    d.tail = true;
    d.skipped_bytes = file_size_ > at ? file_size_ - at : 0;
    d.records_follow = RecordsStartAfter(found_at);
    damage_.push_back(std::move(d));
    *stop = true;
    return OkStatus();
  }
  // kSkip: skipped_bytes and tail are settled when reading resumes or the
  // segment ends.
  damage_.push_back(std::move(d));
  resyncing_ = true;
  return OkStatus();
}

bool WalReader::RecordsStartAfter(uint64_t offset) {
  // Walks the intact fragments of every later block, looking for one that
  // begins a record.
  for (uint64_t b = (offset / kB + 1) * kB; b < file_size_; b += kB) {
    std::string bytes(static_cast<size_t>(std::min<uint64_t>(kB, file_size_ - b)), '\0');
    auto n = file_->ReadAt(b, bytes);
    if (!n.ok()) return false;
    bytes.resize(*n);
    std::string_view rest(bytes);
    while (rest.size() >= kH) {
      WalFragmentType type;
      std::string_view payload;
      if (!CheckFragment(rest, kB - (bytes.size() - rest.size()), &type, &payload).empty()) break;
      if (type == WalFragmentType::kFull || type == WalFragmentType::kFirst) return true;
      rest.remove_prefix(kH + payload.size());
    }
  }
  return false;
}

Status WalReader::LoadBlock(uint64_t block) {
  uint64_t start = block * kB;
  block_.resize(static_cast<size_t>(std::min<uint64_t>(kB, file_size_ - start)));
  TELKIT_ASSIGN_OR_RETURN(size_t n, file_->ReadAt(start, block_));
  block_.resize(n);
  block_start_ = start;
  return OkStatus();
}

Result<WalReader::Step> WalReader::NextFragment(WalFragmentType* type, std::string_view* payload, uint64_t* at,
                                                std::string* reason) {
  for (;;) {
    if (pos_ >= file_size_) return Step::kEndOfSegment;
    uint64_t block = pos_ / kB;
    if (block_start_ != block * kB || block_.empty()) TELKIT_RETURN_IF_ERROR(LoadBlock(block));
    size_t in_block = static_cast<size_t>(pos_ % kB);
    uint64_t room = kB - in_block;
    if (in_block > block_.size()) return Step::kEndOfSegment;  // the file shrank while reading
    std::string_view rest = std::string_view(block_).substr(in_block);
    *at = pos_;
    if (room < kH) {  // block trailer: zero padding
      if (rest.find_first_not_of('\0') != std::string_view::npos) {
        *reason = "nonzero bytes in block padding";
        return Step::kDamage;
      }
      pos_ = (block + 1) * kB;
      continue;
    }
    *reason = CheckFragment(rest, room, type, payload);
    if (!reason->empty()) return Step::kDamage;
    pos_ += kH + payload->size();
    return Step::kFragment;
  }
}

Status WalReader::OpenSegment(size_t i) {
  std::string path = JoinPath(dir_, WalSegmentName(segments_[i]));
  TELKIT_ASSIGN_OR_RETURN(file_, fs_->NewReadableFile(path));
  TELKIT_ASSIGN_OR_RETURN(file_size_, file_->Size());
  block_.clear();
  block_start_ = UINT64_MAX;
  pos_ = kWalSegmentHeaderSize;
  in_record_ = false;
  segment_open_ = true;
  return OkStatus();
}

Result<std::optional<std::string_view>> WalReader::Next() {
  using Out = std::optional<std::string_view>;
  auto end_of_log = [&]() -> Result<Out> {
    done_ = true;
    return Out();
  };
  while (!done_) {
    if (!segment_open_) {
      if (current_ >= segments_.size()) return end_of_log();
      if (current_ > 0 && segments_[current_] != segments_[current_ - 1] + 1) {
        std::string missing = WalSegmentName(segments_[current_ - 1] + 1);
        if (options_.on_corruption == WalCorruptionPolicy::kStop) {
          return DataLossError("wal " + Quoted(dir_) + " is missing segment " + missing);
        }
        damage_.push_back({segments_[current_ - 1] + 1, 0, 0, "missing segment", false, false});
      }
      TELKIT_RETURN_IF_ERROR(OpenSegment(current_));
      resyncing_ = false;
      // The header.
      char header[kWalSegmentHeaderSize];
      TELKIT_ASSIGN_OR_RETURN(size_t n, file_->ReadAt(0, header));
      std::string reason;
      if (n < kWalSegmentHeaderSize) {
        reason = "truncated segment header";
      } else {
        auto index = DecodeWalSegmentHeader(reinterpret_cast<const uint8_t*>(header));
        if (index.status().code() == StatusCode::kUnimplemented) {
          return index.status().WithContext("wal segment " +
                                            Quoted(JoinPath(dir_, WalSegmentName(segments_[current_]))));
        }
        if (!index.ok()) {
          reason = index.status().message();
        } else if (*index != segments_[current_]) {
          reason = "segment header says segment " + WalSegmentName(*index);
        }
      }
      if (!reason.empty()) {
        bool stop;
        TELKIT_RETURN_IF_ERROR(Damage(0, 0, reason, &stop));
        if (stop) return end_of_log();
        damage_.back().skipped_bytes = file_size_;
        damage_.back().tail = current_ + 1 == segments_.size();
        resyncing_ = false;
        segment_open_ = false;
        ++current_;
        continue;
      }
    }

    WalFragmentType type = WalFragmentType::kZero;
    std::string_view payload;
    uint64_t at = 0;
    std::string reason;
    TELKIT_ASSIGN_OR_RETURN(Step step, NextFragment(&type, &payload, &at, &reason));
    uint32_t segment = segments_[current_];

    if (step == Step::kEndOfSegment) {
      if (in_record_ && !resyncing_) {
        bool stop;
        TELKIT_RETURN_IF_ERROR(Damage(record_start_, file_size_, "record cut off at the end of the segment", &stop));
        if (stop) return end_of_log();
      }
      if (resyncing_ && !damage_.empty()) {  // kSkip: the skipped region ran to the end
        damage_.back().skipped_bytes = file_size_ - damage_.back().offset;
        damage_.back().tail = current_ + 1 == segments_.size();
      }
      in_record_ = false;
      resyncing_ = false;
      segment_open_ = false;
      ++current_;
      continue;
    }

    if (step == Step::kDamage) {
      if (resyncing_) {  // kSkip, still looking for a fresh start: next block
        pos_ = (at / kB + 1) * kB;
        continue;
      }
      bool stop;
      TELKIT_RETURN_IF_ERROR(Damage(in_record_ ? record_start_ : at, at, reason, &stop));
      if (stop) return end_of_log();
      in_record_ = false;
      pos_ = (at / kB + 1) * kB;
      continue;
    }

    // A fragment.
    bool starts = type == WalFragmentType::kFull || type == WalFragmentType::kFirst;
    if (resyncing_) {
      if (!starts) continue;  // the rest of a record whose start was lost
      damage_.back().skipped_bytes = at - damage_.back().offset;
      resyncing_ = false;
    }
    if (starts && in_record_) {
      bool stop;
      TELKIT_RETURN_IF_ERROR(Damage(record_start_, at, "record without its last fragment", &stop));
      if (stop) {
        damage_.back().records_follow = true;  // this fragment begins one
        return end_of_log();
      }
      damage_.back().skipped_bytes = at - record_start_;
      resyncing_ = false;
      in_record_ = false;
    }
    if (!starts && !in_record_) {
      bool stop;
      TELKIT_RETURN_IF_ERROR(Damage(at, at, "fragment without a first fragment", &stop));
      if (stop) return end_of_log();
      continue;  // resyncing_: dropped until a record starts
    }
    if (type == WalFragmentType::kFull) {
      ++records_;
      last_segment_ = segment;
      last_end_ = pos_;
      return Out(payload);
    }
    if (type == WalFragmentType::kFirst) {
      in_record_ = true;
      record_start_ = at;
      record_.assign(payload);
    } else {
      record_.append(payload);
    }
    if (record_.size() > options_.max_record_bytes) {
      bool stop;
      TELKIT_RETURN_IF_ERROR(
          Damage(record_start_, at,
                 "record over the size limit of " + std::to_string(options_.max_record_bytes) + " bytes", &stop));
      if (stop) return end_of_log();
      in_record_ = false;
      continue;
    }
    if (type == WalFragmentType::kLast) {
      in_record_ = false;
      ++records_;
      last_segment_ = segment;
      last_end_ = pos_;
      return Out(std::string_view(record_));
    }
  }
  return Out();
}

}  // namespace telkit
