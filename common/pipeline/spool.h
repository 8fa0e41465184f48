// Spool: the bounded on-disk resend buffer of one socket output of tel-batch
// (--spool-dir). Every frame the output takes is appended to the spool and
// made durable (fdatasync) before Append returns, so before the frame is
// acknowledged upstream; the output sends frames from the spool and
// acknowledges them here once its peer acknowledged them. A spool survives
// a crash of the process: Open finds every durable frame again, and the
// output resends them after the restart with their original writer id and
// sequence numbers (the peer may see a frame twice; see
// docs/format/spool.md).
//
// On disk: a directory of append-only segment files, each a spool header and
// whole stream frames (docs/format/spool.md, byte by byte; the frames are
// those of docs/format/stream.md, checksums included). A segment closes once
// it reaches `segment_bytes`, and is deleted once every frame in it is
// acknowledged. All file access goes through FileSystem, so tests inject
// crashes and ENOSPC (FaultInjectingFileSystem).
//
// Records have absolute indexes: 0, 1, 2, ... in append order over the
// spool's life in this process (recovered frames first). [begin(), end()) are
// the unacknowledged ones.
//
// Thread-safety: thread-safe. Append is meant for one thread (the output's
// worker), Read/AckThrough for another (the output's I/O thread).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/base/status.h"
#include "common/fs/file_system.h"
#include "common/stream/format.h"

namespace telkit {

inline constexpr std::array<uint8_t, 8> kSpoolMagic = {0x89, 'T', 'K', 'S', 'P', 'O', 'O', 'L'};
inline constexpr uint16_t kSpoolVersion = 1;
inline constexpr size_t kSpoolHeaderSize = 24;

struct SpoolOptions {
  // Appends wait (HasRoom is false) while the segment files hold this much.
  uint64_t max_bytes = 1ull << 30;
  // A segment takes no more frames once it is this big.
  uint64_t segment_bytes = 4ull << 20;
  // Frames whose payload is larger count as corrupt when the spool is opened.
  uint32_t max_payload_bytes = kMaxPayloadLength;
  // Writer id for a spool that has no frames yet (0 = random).
  uint64_t writer_id = 0;
};

struct SpoolStats {
  uint64_t frames = 0;           // unacknowledged frames
  uint64_t bytes = 0;            // their encoded bytes (frame header + payload)
  uint64_t disk_bytes = 0;       // size of the segment files
  uint64_t segments = 0;         // segment files
  uint64_t appended_frames = 0;  // Append calls that succeeded
  uint64_t write_errors = 0;     // Append calls that failed (ENOSPC, I/O errors)
  uint64_t recovered_frames = 0; // frames found by Open
  uint64_t discarded_bytes = 0;  // torn or corrupt bytes Open cut off segment ends
};

struct SpoolRecord {
  uint64_t writer_id = 0;
  uint64_t sequence = 0;
  std::string bytes;  // the encoded frame, as sent on the stream
};

class Spool {
 public:
  // Opens (creating it when missing; its parent must exist) the spool in
  // `dir`: reads every segment, cuts torn or corrupt ends off (counted in
  // discarded_bytes), deletes empty segments. New frames continue the writer
  // id and sequence numbers of the last frame found. Errors from the file
  // system; `fs` must outlive the spool.
  static Result<std::unique_ptr<Spool>> Open(FileSystem* fs, std::string dir, const SpoolOptions& options);
  ~Spool();  // closes; deletes the last segment when all of it was acknowledged

  // Whether a frame of `encoded_bytes` (header + payload) may be appended now:
  // the segment files stay under max_bytes, or the spool holds no frame.
  bool HasRoom(uint64_t encoded_bytes) const;

  // Appends a frame with the next sequence number, `time_unix_nano` (0 = now)
  // and `payload`, durably (synced, and its segment's directory entry too).
  // Returns its index. On an error (RESOURCE_EXHAUSTED for a full disk, or
  // another from the file system) nothing was added and the spool stays
  // usable: the segment that failed is cut back and closed, and the next
  // Append starts a new one. Counted in write_errors.
  Result<uint64_t> Append(uint8_t signal, uint64_t time_unix_nano, std::string_view payload);

  uint64_t begin() const;  // index of the oldest unacknowledged frame
  uint64_t end() const;    // one past the newest
  // Reads frame `index` back. REQUIRES: begin() <= index < end().
  // DATA_LOSS when the bytes read back do not check out.
  Result<SpoolRecord> Read(uint64_t index) const;
  // The sequence number of frame `index` (from memory); 0 when out of range.
  uint64_t SequenceAt(uint64_t index) const;
  // Acknowledges every frame before `end_index` and deletes the segments that
  // hold only acknowledged frames.
  void AckThrough(uint64_t end_index);

  uint64_t writer_id() const;
  SpoolStats Stats() const;
  const std::string& dir() const { return dir_; }

 private:
  struct Segment;
  struct Rec {
    std::shared_ptr<Segment> segment;
    uint64_t offset;
    uint32_t size;
    uint64_t sequence;
  };

  Spool(FileSystem* fs, std::string dir, const SpoolOptions& options);
  Status Load();
  Status LoadSegment(const std::string& name, uint64_t number, bool last);
  Status StartSegment();
  void FailActive(uint64_t good_size);
  // REQUIRES: mu_ held. Deletes leading segments with nothing unacknowledged;
  // the active one only when `may_retire_active`.
  void DeleteAckedSegmentsLocked(bool may_retire_active);
  void RetireActiveLocked();

  FileSystem* const fs_;
  const std::string dir_;
  const SpoolOptions options_;

  std::mutex append_mu_;  // one Append at a time; taken before mu_
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<Segment>> segments_;  // oldest first
  std::unique_ptr<WritableFile> active_;           // appends go to segments_.back() while set
  std::deque<Rec> records_;                        // unacknowledged, oldest first
  uint64_t first_index_ = 0;                       // index of records_.front()
  uint64_t next_segment_ = 1;
  uint64_t writer_id_ = 0;
  uint64_t last_sequence_ = 0;
  SpoolStats stats_;
};

// The 24-byte segment header (docs/format/spool.md).
void EncodeSpoolHeader(uint64_t writer_id, uint8_t out[kSpoolHeaderSize]);
Result<uint64_t> DecodeSpoolHeader(const uint8_t in[kSpoolHeaderSize]);  // the writer id

}  // namespace telkit
