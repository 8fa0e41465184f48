#include "common/pipeline/spool.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>

#include "common/base/crc32c.h"

namespace telkit {

struct Spool::Segment {
  uint64_t number = 0;
  std::string path;
  uint64_t writer_id = 0;
  uint64_t size = 0;         // valid bytes in the file
  uint64_t end_index = 0;    // one past the index of its last frame
  bool has_frames = false;
  mutable std::mutex reader_mu;
  mutable std::shared_ptr<ReadableFile> reader;  // opened on the first Read
};

namespace {

constexpr char kSegmentSuffix[] = ".spool";
constexpr size_t kSegmentNameDigits = 20;

std::string SegmentName(uint64_t number) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu%s", static_cast<unsigned long long>(number), kSegmentSuffix);
  return buf;
}

// The segment number of a file name, or 0 when it is not a segment.
uint64_t ParseSegmentName(std::string_view name) {
  if (name.size() != kSegmentNameDigits + std::strlen(kSegmentSuffix) || !name.ends_with(kSegmentSuffix)) return 0;
  uint64_t n = 0;
  for (size_t i = 0; i < kSegmentNameDigits; ++i) {
    if (name[i] < '0' || name[i] > '9') return 0;
    n = n * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return n;
}

uint64_t RandomId() {
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

Status ReadExactly(const ReadableFile& f, uint64_t offset, char* out, size_t n) {
  size_t done = 0;
  while (done < n) {
    TELKIT_ASSIGN_OR_RETURN(size_t got, f.ReadAt(offset + done, std::span<char>(out + done, n - done)));
    if (got == 0) return Status(StatusCode::kDataLoss, "short read");
    done += got;
  }
  return OkStatus();
}

}  // namespace

void EncodeSpoolHeader(uint64_t writer_id, uint8_t out[kSpoolHeaderSize]) {
  std::memcpy(out, kSpoolMagic.data(), kSpoolMagic.size());
  PutU16(out + 8, kSpoolVersion);
  PutU16(out + 10, 0);
  PutU64(out + 12, writer_id);
  PutU32(out + 20, Crc32c(out, 20));
}

Result<uint64_t> DecodeSpoolHeader(const uint8_t in[kSpoolHeaderSize]) {
  if (std::memcmp(in, kSpoolMagic.data(), kSpoolMagic.size()) != 0) {
    return Status(StatusCode::kDataLoss, "not a spool segment (bad magic)");
  }
  if (GetU32(in + 20) != Crc32c(in, 20)) return Status(StatusCode::kDataLoss, "spool header checksum mismatch");
  if (GetU16(in + 8) != kSpoolVersion) {
    return Status(StatusCode::kUnimplemented, "spool version " + std::to_string(GetU16(in + 8)) + " (this build reads 1)");
  }
  if (GetU16(in + 10) != 0) return Status(StatusCode::kUnimplemented, "spool header with unknown flags");
  return GetU64(in + 12);
}

Spool::Spool(FileSystem* fs, std::string dir, const SpoolOptions& options)
    : fs_(fs), dir_(std::move(dir)), options_(options) {}

Result<std::unique_ptr<Spool>> Spool::Open(FileSystem* fs, std::string dir, const SpoolOptions& options) {
  std::unique_ptr<Spool> spool(new Spool(fs, std::move(dir), options));
  TELKIT_RETURN_IF_ERROR(spool->Load().WithContext("spool '" + spool->dir_ + "'"));
  return spool;
}

Status Spool::Load() {
  TELKIT_RETURN_IF_ERROR(fs_->CreateDir(dir_));
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(DirName(dir_)));  // the spool's own entry
  TELKIT_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(dir_));
  std::vector<std::pair<uint64_t, std::string>> segments;
  for (const std::string& name : names) {
    if (uint64_t n = ParseSegmentName(name); n > 0) segments.emplace_back(n, name);
  }
  std::sort(segments.begin(), segments.end());
  for (size_t i = 0; i < segments.size(); ++i) {
    TELKIT_RETURN_IF_ERROR(LoadSegment(segments[i].second, segments[i].first, i + 1 == segments.size()));
    next_segment_ = segments[i].first + 1;
  }
  if (!segments.empty()) TELKIT_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  if (!records_.empty()) {
    writer_id_ = records_.back().segment->writer_id;
    last_sequence_ = records_.back().sequence;
  } else {
    writer_id_ = options_.writer_id ? options_.writer_id : RandomId();
  }
  stats_.recovered_frames = records_.size();
  return OkStatus();
}

// Reads one segment: every whole, checksummed frame becomes a record; the
// first frame that does not check out ends the segment (a torn append) and
// the file is cut there. A segment without frames is deleted.
Status Spool::LoadSegment(const std::string& name, uint64_t number, bool) {
  auto seg = std::make_shared<Segment>();
  seg->number = number;
  seg->path = JoinPath(dir_, name);
  TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file, fs_->NewReadableFile(seg->path));
  TELKIT_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  uint64_t offset = 0;
  uint8_t header[kSpoolHeaderSize];
  if (size >= kSpoolHeaderSize && ReadExactly(*file, 0, reinterpret_cast<char*>(header), kSpoolHeaderSize).ok()) {
    Result<uint64_t> writer = DecodeSpoolHeader(header);
    if (writer.ok()) {
      seg->writer_id = *writer;
      offset = kSpoolHeaderSize;
    } else if (writer.status().code() == StatusCode::kUnimplemented) {
      return writer.status().WithContext(seg->path);  // a newer format: do not touch it
    }
  }
  std::vector<Rec> found;
  std::string payload;
  while (offset > 0 && size - offset >= kFrameHeaderSize) {
    uint8_t fh[kFrameHeaderSize];
    if (!ReadExactly(*file, offset, reinterpret_cast<char*>(fh), kFrameHeaderSize).ok()) break;
    Result<FrameHeader> h = DecodeFrameHeader(fh);
    if (!h.ok() || h->payload_length > options_.max_payload_bytes ||
        h->payload_length > size - offset - kFrameHeaderSize) {
      break;
    }
    payload.resize(h->payload_length);
    if (!ReadExactly(*file, offset + kFrameHeaderSize, payload.data(), payload.size()).ok()) break;
    if (Crc32c(payload) != h->payload_crc) break;
    found.push_back({seg, offset, static_cast<uint32_t>(kFrameHeaderSize + payload.size()), h->sequence});
    offset += kFrameHeaderSize + payload.size();
  }
  file.reset();
  if (found.empty()) {
    stats_.discarded_bytes += offset > kSpoolHeaderSize ? offset - kSpoolHeaderSize : 0;
    stats_.discarded_bytes += size - offset;
    return fs_->RemoveFile(seg->path);
  }
  if (offset < size) {  // a torn or corrupt end
    stats_.discarded_bytes += size - offset;
    TELKIT_RETURN_IF_ERROR(fs_->Truncate(seg->path, offset));
    TELKIT_RETURN_IF_ERROR(fs_->SyncFile(seg->path));
  }
  seg->size = offset;
  seg->has_frames = true;
  for (Rec& r : found) {
    stats_.bytes += r.size;
    records_.push_back(std::move(r));
  }
  seg->end_index = first_index_ + records_.size();
  stats_.disk_bytes += seg->size;
  segments_.push_back(std::move(seg));
  return OkStatus();
}

Spool::~Spool() {
  std::lock_guard lock(mu_);
  DeleteAckedSegmentsLocked(true);
  if (active_) (void)active_->Close();
}

bool Spool::HasRoom(uint64_t encoded_bytes) const {
  std::lock_guard lock(mu_);
  return records_.empty() || stats_.disk_bytes + encoded_bytes <= options_.max_bytes;
}

// Creates the next segment with its header, durably (file and directory
// entry). REQUIRES: append_mu_ held, no active segment.
Status Spool::StartSegment() {
  auto seg = std::make_shared<Segment>();
  {
    std::lock_guard lock(mu_);
    seg->number = next_segment_++;
    seg->writer_id = writer_id_;
    seg->end_index = first_index_ + records_.size();
  }
  seg->path = JoinPath(dir_, SegmentName(seg->number));
  uint8_t header[kSpoolHeaderSize];
  EncodeSpoolHeader(seg->writer_id, header);
  Result<std::unique_ptr<WritableFile>> file = fs_->NewWritableFile(seg->path);
  Status s = file.status();
  if (s.ok()) s = (*file)->Append(std::string_view(reinterpret_cast<char*>(header), kSpoolHeaderSize));
  if (s.ok()) s = (*file)->Sync();
  if (s.ok()) s = fs_->SyncDir(dir_);
  if (!s.ok()) {
    if (file.ok()) (void)(*file)->Close();
    (void)fs_->RemoveFile(seg->path);  // best effort; Open deletes a segment without frames anyway
    return s.WithContext("start spool segment '" + seg->path + "'");
  }
  seg->size = kSpoolHeaderSize;
  std::lock_guard lock(mu_);
  stats_.disk_bytes += seg->size;
  segments_.push_back(std::move(seg));
  active_ = std::move(*file);
  return OkStatus();
}

// After a failed append or sync: cut the segment back to its last whole
// frame and close it, so nothing more goes into a file whose state is
// unknown; a segment without frames is deleted. REQUIRES: append_mu_ held.
void Spool::FailActive(uint64_t good_size) {
  std::unique_ptr<WritableFile> file;
  std::shared_ptr<Segment> seg;
  {
    std::lock_guard lock(mu_);
    file = std::move(active_);
    seg = segments_.back();
  }
  if (file) (void)file->Close();
  if (!seg->has_frames) {
    (void)fs_->RemoveFile(seg->path);
    std::lock_guard lock(mu_);
    stats_.disk_bytes -= seg->size;
    segments_.pop_back();
    return;
  }
  // Best effort: Open ignores a torn end anyway.
  if (fs_->Truncate(seg->path, good_size).ok()) (void)fs_->SyncFile(seg->path);
}

Result<uint64_t> Spool::Append(uint8_t signal, uint64_t time_unix_nano, std::string_view payload) {
  std::lock_guard append_lock(append_mu_);
  Frame header;
  header.signal = signal;
  header.time_unix_nano = time_unix_nano ? time_unix_nano : NowUnixNano();
  std::shared_ptr<Segment> seg;
  bool need_segment;
  {
    std::lock_guard lock(mu_);
    header.sequence = last_sequence_ + 1;
    if (active_ && segments_.back()->end_index <= first_index_) RetireActiveLocked();  // all acknowledged
    need_segment = !active_ || segments_.back()->size >= options_.segment_bytes;
    if (active_ && need_segment) {
      (void)active_->Close();
      active_.reset();
      DeleteAckedSegmentsLocked(false);
    }
  }
  if (need_segment) {
    Status s = StartSegment();
    if (!s.ok()) {
      std::lock_guard lock(mu_);
      ++stats_.write_errors;
      return s;
    }
  }
  {
    std::lock_guard lock(mu_);
    seg = segments_.back();
  }
  uint8_t fh[kFrameHeaderSize];
  header.payload = std::string();
  EncodeFrameHeader(header, fh);  // length and checksums are filled in below
  PutU32(fh + 8, static_cast<uint32_t>(payload.size()));
  PutU32(fh + 28, Crc32c(payload));
  PutU32(fh + 32, Crc32c(fh, 32));
  std::string bytes;
  bytes.reserve(kFrameHeaderSize + payload.size());
  bytes.append(reinterpret_cast<char*>(fh), kFrameHeaderSize);
  bytes.append(payload);
  const uint64_t offset = seg->size;
  Status s = active_->Append(bytes);
  if (s.ok()) s = active_->Sync();
  if (!s.ok()) {
    FailActive(offset);
    std::lock_guard lock(mu_);
    ++stats_.write_errors;
    return s.WithContext("append to spool segment '" + seg->path + "'");
  }
  std::lock_guard lock(mu_);
  seg->size += bytes.size();
  seg->has_frames = true;
  records_.push_back({seg, offset, static_cast<uint32_t>(bytes.size()), header.sequence});
  seg->end_index = first_index_ + records_.size();
  last_sequence_ = header.sequence;
  stats_.bytes += bytes.size();
  stats_.disk_bytes += bytes.size();
  ++stats_.appended_frames;
  return seg->end_index - 1;
}

uint64_t Spool::begin() const {
  std::lock_guard lock(mu_);
  return first_index_;
}

uint64_t Spool::end() const {
  std::lock_guard lock(mu_);
  return first_index_ + records_.size();
}

uint64_t Spool::SequenceAt(uint64_t index) const {
  std::lock_guard lock(mu_);
  if (index < first_index_ || index - first_index_ >= records_.size()) return 0;
  return records_[index - first_index_].sequence;
}

Result<SpoolRecord> Spool::Read(uint64_t index) const {
  Rec rec;
  {
    std::lock_guard lock(mu_);
    if (index < first_index_ || index - first_index_ >= records_.size()) {
      return Status(StatusCode::kOutOfRange, "spool frame " + std::to_string(index) + " is not unacknowledged");
    }
    rec = records_[index - first_index_];
  }
  std::shared_ptr<ReadableFile> reader;
  {
    std::lock_guard lock(rec.segment->reader_mu);
    if (!rec.segment->reader) {
      TELKIT_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> f, fs_->NewReadableFile(rec.segment->path));
      rec.segment->reader = std::move(f);
    }
    reader = rec.segment->reader;
  }
  SpoolRecord out;
  out.writer_id = rec.segment->writer_id;
  out.sequence = rec.sequence;
  out.bytes.resize(rec.size);
  TELKIT_RETURN_IF_ERROR(ReadExactly(*reader, rec.offset, out.bytes.data(), rec.size));
  const uint8_t* p = reinterpret_cast<const uint8_t*>(out.bytes.data());
  Result<FrameHeader> h = DecodeFrameHeader(p);
  if (!h.ok() || h->sequence != rec.sequence || h->payload_length + kFrameHeaderSize != rec.size ||
      Crc32c(p + kFrameHeaderSize, h->payload_length) != h->payload_crc) {
    return Status(StatusCode::kDataLoss, "spool frame at offset " + std::to_string(rec.offset) + " of '" +
                                             rec.segment->path + "' does not check out");
  }
  return out;
}

void Spool::AckThrough(uint64_t end_index) {
  std::lock_guard lock(mu_);
  while (first_index_ < end_index && !records_.empty()) {
    stats_.bytes -= records_.front().size;
    records_.pop_front();
    ++first_index_;
  }
  // The active segment may be deleted only while no Append writes to it.
  std::unique_lock append_lock(append_mu_, std::try_to_lock);
  DeleteAckedSegmentsLocked(append_lock.owns_lock());
}

void Spool::RetireActiveLocked() {
  if (active_) {
    (void)active_->Close();
    active_.reset();
  }
  DeleteAckedSegmentsLocked(false);
}

void Spool::DeleteAckedSegmentsLocked(bool may_retire_active) {
  while (!segments_.empty()) {
    Segment& seg = *segments_.front();
    if (seg.end_index > first_index_) return;  // holds unacknowledged frames
    const bool is_active = active_ != nullptr && segments_.size() == 1;
    if (is_active) {
      if (!may_retire_active) return;
      (void)active_->Close();
      active_.reset();
    }
    // A removal that fails, or is lost in a crash, only means duplicates
    // after the next restart.
    (void)fs_->RemoveFile(seg.path);
    stats_.disk_bytes -= seg.size;
    segments_.pop_front();
  }
}

uint64_t Spool::writer_id() const {
  std::lock_guard lock(mu_);
  return writer_id_;
}

SpoolStats Spool::Stats() const {
  std::lock_guard lock(mu_);
  SpoolStats s = stats_;
  s.frames = records_.size();
  s.segments = segments_.size();
  return s;
}

}  // namespace telkit
