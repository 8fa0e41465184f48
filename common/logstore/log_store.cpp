#include "common/logstore/log_store.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <unordered_map>
#include <unordered_set>

#include "common/base/utf8.h"
#include "common/fs/posix_file_system.h"
#include "common/logstore/log_index.h"
#include "common/logstore/log_wal_record.h"

namespace telkit {

namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint64_t EntryHash(int64_t ts, std::string_view line) {
  uint64_t h = std::hash<std::string_view>()(line);
  return h ^ (static_cast<uint64_t>(ts) * 0x9e3779b97f4a7c15ULL);
}

std::string ChunkName(int64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 ".tklc", static_cast<uint64_t>(id));
  return buf;
}

// Replaces invalid UTF-8 sequences by U+FFFD; true when it changed `s`.
bool SanitizeUtf8(std::string* s) { return ReplaceInvalidUtf8(s) > 0; }

bool Before(const LogEntry& a, const LogEntry& b) { return a.ts != b.ts ? a.ts < b.ts : a.line < b.line; }

}  // namespace

// The open chunks: one per stream, lines in arrival order.
struct HeadStream {
  Labels labels;
  std::vector<LogEntry> entries;
  std::unordered_map<uint64_t, uint32_t> seen;  // EntryHash -> index, for duplicates
  size_t raw_bytes = 0;
  uint64_t max_seq = 0;
  int64_t opened_ns = 0;  // steady clock
};

struct LogHead {
  std::map<std::string, HeadStream> streams;  // by LogStreamKey
  uint64_t lines = 0, bytes = 0;

  // False for an exact duplicate of a line in the open chunk.
  bool Insert(const std::string& key, const Labels& labels, LogEntry e, uint64_t seq, int64_t now) {
    HeadStream& s = streams[key];
    if (s.entries.empty()) {
      s.labels = labels;
      s.opened_ns = now;
    }
    uint64_t h = EntryHash(e.ts, e.line);
    auto [it, inserted] = s.seen.emplace(h, static_cast<uint32_t>(s.entries.size()));
    if (!inserted) {
      const LogEntry& o = s.entries[it->second];
      if (o.ts == e.ts && o.line == e.line) return false;
    }
    size_t b = LogEntryRawBytes(e);
    s.raw_bytes += b;
    bytes += b;
    ++lines;
    s.max_seq = std::max(s.max_seq, seq);
    s.entries.push_back(std::move(e));
    return true;
  }
};

namespace {

// Replays the WAL in `dir` into `head`, skipping lines already in chunks.
Status ReplayWal(FileSystem* fs, const std::string& dir, LogIndex* index, LogHead* head, uint64_t* max_seq,
                 uint64_t* records, uint64_t* lines, uint64_t* duplicates) {
  std::map<std::string, uint64_t> flushed;
  {
    TELKIT_ASSIGN_OR_RETURN(auto streams, index->Streams());
    TELKIT_ASSIGN_OR_RETURN(auto seqs, index->FlushedSeqs());
    for (const auto& s : streams) {
      auto it = seqs.find(s.id);
      if (it != seqs.end()) flushed[LogStreamKey(s.labels)] = it->second;
      *max_seq = std::max(*max_seq, it == seqs.end() ? 0 : it->second);
    }
  }
  TELKIT_ASSIGN_OR_RETURN(auto reader, WalReader::Open(fs, JoinPath(dir, "wal")));
  int64_t now = SteadyNanos();
  while (true) {
    TELKIT_ASSIGN_OR_RETURN(auto rec, reader->Next());
    if (!rec) break;
    TELKIT_ASSIGN_OR_RETURN(LogWalRecord r, DecodeLogWalRecord(*rec));
    ++*records;
    *max_seq = std::max(*max_seq, r.seq);
    for (LogPush& p : r.pushes) {
      std::string key = LogStreamKey(p.stream);
      auto f = flushed.find(key);
      if (f != flushed.end() && r.seq <= f->second) continue;
      for (LogEntry& e : p.entries) {
        if (head->Insert(key, p.stream, std::move(e), r.seq, now)) {
          ++*lines;
        } else {
          ++*duplicates;
        }
      }
    }
  }
  return OkStatus();
}

// Sorts in query direction, drops exact duplicates, keeps `limit`.
void Normalize(std::vector<LogEntry>* es, bool backward, size_t limit) {
  // Lines mostly arrive in order (a chunk's blocks, then the next chunk):
  // check before sorting, as sorting moves every entry.
  if (!std::is_sorted(es->begin(), es->end(), Before)) std::sort(es->begin(), es->end(), Before);
  es->erase(std::unique(es->begin(), es->end(),
                        [](const LogEntry& a, const LogEntry& b) { return a.ts == b.ts && a.line == b.line; }),
            es->end());
  if (backward) std::reverse(es->begin(), es->end());
  if (limit > 0 && es->size() > limit) es->resize(limit);
}

bool LineMatches(const LogQuery& q, int64_t ts, std::string_view line) {
  if (ts < q.start_ns || ts >= q.end_ns) return false;
  for (const std::string& c : q.contains)
    if (line.find(c) == std::string_view::npos) return false;
  return !q.line_filter || q.line_filter(line);
}

// Adds the matching lines of chunk `row` to `out`.
Status ScanChunk(FileSystem* fs, const std::string& dir, const LogIndex::ChunkRow& row, const LogQuery& q,
                 std::vector<LogEntry>* out) {
  auto data = ReadFileToString(fs, JoinPath(JoinPath(dir, "chunks"), ChunkName(row.id)));
  if (!data.ok()) {
    // Deleted by retention since the index was read: nothing to return.
    if (data.status().code() == StatusCode::kNotFound) return OkStatus();
    return data.status();
  }
  TELKIT_ASSIGN_OR_RETURN(ParsedChunk chunk, ParseChunk(*data));
  std::string buf;
  std::vector<uint32_t> hits;
  for (const ChunkBlockRef& ref : chunk.blocks) {
    if (ref.maxt < q.start_ns || ref.mint >= q.end_ns) continue;
    TELKIT_ASSIGN_OR_RETURN(BlockView block, BlockView::Decode(*data, chunk.compression, ref, &buf));
    MatchLines(block, q.contains, &hits);
    for (uint32_t i : hits) {
      int64_t ts = block.ts(i);
      if (ts < q.start_ns || ts >= q.end_ns) continue;
      std::string_view line = block.line(i);
      if (q.line_filter && !q.line_filter(line)) continue;
      LogEntry e;
      e.ts = ts;
      e.line = std::string(line);
      TELKIT_RETURN_IF_ERROR(DecodeMetadata(block.metadata_bytes(i), &e.metadata));
      out->push_back(std::move(e));
    }
  }
  return OkStatus();
}

// The shared read path. `head_lines(key)` gives the matching head lines of a stream.
Result<std::vector<LogStreamResult>> RunSelect(
    FileSystem* fs, const std::string& dir, LogIndex* index, std::mutex* index_mu,
    const std::map<std::string, std::pair<Labels, std::vector<LogEntry>>>& head, const LogQuery& q) {
  std::vector<LogIndex::StreamRow> streams;
  {
    std::lock_guard l(*index_mu);
    TELKIT_ASSIGN_OR_RETURN(streams, index->Streams());
  }
  std::map<std::string, std::pair<Labels, int64_t>> selected;  // key -> labels, stream id (0: head only)
  for (auto& s : streams)
    if (MatchesAll(s.labels, q.matchers)) selected[LogStreamKey(s.labels)] = {s.labels, s.id};
  for (const auto& [key, v] : head)
    if (!selected.count(key)) selected[key] = {v.first, 0};

  std::vector<LogStreamResult> results;
  for (auto& [key, v] : selected) {
    std::vector<LogEntry> es;
    auto h = head.find(key);
    if (h != head.end()) es = h->second.second;
    if (v.second != 0) {
      std::vector<LogIndex::ChunkRow> chunks;
      {
        std::lock_guard l(*index_mu);
        int64_t maxt = q.end_ns == INT64_MIN ? INT64_MIN : q.end_ns - 1;
        TELKIT_ASSIGN_OR_RETURN(chunks, index->Chunks(v.second, q.start_ns, maxt));
      }
      if (q.backward)
        std::sort(chunks.begin(), chunks.end(), [](const auto& a, const auto& b) { return a.maxt > b.maxt; });
      for (const auto& c : chunks) {
        if (q.limit > 0 && es.size() >= q.limit) {
          // Stop once no line of this chunk can be among the first `limit`.
          Normalize(&es, q.backward, q.limit);
          if (es.size() >= q.limit) {
            int64_t bound = es.back().ts;
            if (!q.backward && c.mint > bound) break;
            if (q.backward && c.maxt < bound) break;
          }
        }
        TELKIT_RETURN_IF_ERROR(ScanChunk(fs, dir, c, q, &es));
      }
    }
    Normalize(&es, q.backward, q.limit);
    if (!es.empty()) results.push_back(LogStreamResult{v.first, std::move(es)});
  }
  if (q.limit > 0) {
    // The global limit: the `limit` first lines over all streams.
    std::vector<std::pair<int64_t, size_t>> all;
    for (size_t i = 0; i < results.size(); ++i)
      for (const auto& e : results[i].entries) all.push_back({e.ts, i});
    if (all.size() > q.limit) {
      std::stable_sort(all.begin(), all.end(), [&](const auto& a, const auto& b) {
        return q.backward ? a.first > b.first : a.first < b.first;
      });
      std::vector<size_t> keep(results.size(), 0);
      for (size_t k = 0; k < q.limit; ++k) ++keep[all[k].second];
      std::vector<LogStreamResult> cut;
      for (size_t i = 0; i < results.size(); ++i) {
        if (keep[i] == 0) continue;
        results[i].entries.resize(keep[i]);
        cut.push_back(std::move(results[i]));
      }
      results = std::move(cut);
    }
  }
  return results;
}

// Head lines of streams matching `q` (copied: the read path runs without the head lock).
std::map<std::string, std::pair<Labels, std::vector<LogEntry>>> HeadMatches(const LogHead& head, const LogQuery& q) {
  std::map<std::string, std::pair<Labels, std::vector<LogEntry>>> out;
  for (const auto& [key, s] : head.streams) {
    if (s.entries.empty() || !MatchesAll(s.labels, q.matchers)) continue;
    auto& v = out[key];
    v.first = s.labels;
    for (const LogEntry& e : s.entries)
      if (LineMatches(q, e.ts, e.line)) v.second.push_back(e);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- LogStore

LogStore::LogStore(FileSystem* fs, std::string dir, LogStoreOptions options)
    : fs_(fs), dir_(std::move(dir)), options_(std::move(options)), head_(std::make_unique<LogHead>()) {}

LogStore::~LogStore() { (void)Close(); }

Result<std::unique_ptr<LogStore>> LogStore::Open(FileSystem* fs, std::string dir, LogStoreOptions options) {
  if (options.chunk_target_bytes == 0 || options.chunk.block_bytes == 0)
    return InvalidArgumentError("log store: chunk and block sizes must be positive");
  if (options.chunk.zstd_level < 1 || options.chunk.zstd_level > 22)
    return InvalidArgumentError("log store: zstd level must be 1..22");
  std::unique_ptr<LogStore> s(new LogStore(fs, std::move(dir), std::move(options)));
  TELKIT_RETURN_IF_ERROR(s->Init());
  return s;
}

Status LogStore::Init() {
  TELKIT_RETURN_IF_ERROR(fs_->CreateDir(dir_));
  std::string chunks = JoinPath(dir_, "chunks");
  TELKIT_RETURN_IF_ERROR(fs_->CreateDir(chunks));
  // The directories must survive a crash before anything in them counts.
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(DirName(dir_)));
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  std::string index_path = fs_ == DefaultFileSystem() ? JoinPath(dir_, "index.db") : options_.index_path;
  TELKIT_ASSIGN_OR_RETURN(index_, LogIndex::Open(index_path, false));

  // Chunk files the index does not know: a cut or a retention pass that was
  // interrupted. Their lines are still in the WAL (or meant to be deleted).
  TELKIT_ASSIGN_OR_RETURN(auto rows, index_->AllChunks());
  std::unordered_set<std::string> known;
  for (const auto& r : rows) {
    known.insert(ChunkName(r.id));
    stats_.chunks++;
    stats_.chunk_bytes += r.bytes;
  }
  TELKIT_ASSIGN_OR_RETURN(auto names, fs_->ListDir(chunks));
  bool removed = false;
  for (const std::string& n : names) {
    if (known.count(n)) continue;
    TELKIT_RETURN_IF_ERROR(fs_->RemoveFile(JoinPath(chunks, n)));
    removed = true;
  }
  if (removed) TELKIT_RETURN_IF_ERROR(fs_->SyncDir(chunks));
  for (const auto& r : rows) newest_ts_ = std::max(newest_ts_, r.maxt);
  next_chunk_id_ = rows.empty() ? 1 : 1 + std::max_element(rows.begin(), rows.end(), [](auto& a, auto& b) {
                                            return a.id < b.id;
                                          })->id;
  TELKIT_ASSIGN_OR_RETURN(auto streams, index_->Streams());
  for (const auto& s : streams) known_streams_.insert(LogStreamKey(s.labels));

  uint64_t max_seq = 0;
  TELKIT_RETURN_IF_ERROR(ReplayWal(fs_, dir_, index_.get(), head_.get(), &max_seq, &stats_.replayed_records,
                                   &stats_.replayed_lines, &stats_.duplicates));
  for (const auto& [key, s] : head_->streams) {
    known_streams_.insert(key);
    for (const auto& e : s.entries) newest_ts_ = std::max(newest_ts_, e.ts);
  }
  next_seq_ = max_seq + 1;
  TELKIT_ASSIGN_OR_RETURN(wal_, WalWriter::Open(fs_, JoinPath(dir_, "wal"), options_.wal));
  tokens_ = options_.limits.burst_bytes > 0 ? options_.limits.burst_bytes : options_.limits.rate_bytes_per_sec;
  tokens_at_ns_ = SteadyNanos();
  if (options_.background) bg_ = std::thread([this] { BackgroundLoop(); });
  return OkStatus();
}

Status LogStore::CheckOpen() const {
  if (closed_) return FailedPreconditionError("log store is closed");
  return failed_;
}

int64_t LogStore::RateLimitWaitNanos(uint64_t bytes) const {
  const LogLimits& lim = options_.limits;
  if (lim.rate_bytes_per_sec <= 0) return 0;
  const double burst = lim.burst_bytes > 0 ? lim.burst_bytes : lim.rate_bytes_per_sec;
  const double need = std::min(static_cast<double>(bytes), burst);
  std::lock_guard l(mu_);
  const double tokens = std::min(burst, tokens_ + (SteadyNanos() - tokens_at_ns_) * 1e-9 * lim.rate_bytes_per_sec);
  if (tokens >= need) return 0;
  return static_cast<int64_t>((need - tokens) / lim.rate_bytes_per_sec * 1e9) + 1;
}

Result<LogPushResult> LogStore::Push(std::span<const LogPush> pushes) {
  int64_t t0 = SteadyNanos();
  LogPushResult res;
  std::vector<LogPush> accepted;
  std::vector<std::string> keys;
  const LogLimits& lim = options_.limits;
  {
    std::lock_guard l(mu_);
    TELKIT_RETURN_IF_ERROR(CheckOpen());
    // Refill the rate bucket.
    if (lim.rate_bytes_per_sec > 0) {
      double burst = lim.burst_bytes > 0 ? lim.burst_bytes : lim.rate_bytes_per_sec;
      tokens_ = std::min(burst, tokens_ + (t0 - tokens_at_ns_) * 1e-9 * lim.rate_bytes_per_sec);
      tokens_at_ns_ = t0;
    }
    for (const LogPush& p : pushes) {
      auto reject = [&](const char* why) {
        if (!p.entries.empty()) res.rejected[why] += p.entries.size();
      };
      if (p.stream.empty()) {
        reject("invalid_labels");
        continue;
      }
      if (p.stream.size() > lim.max_labels_per_stream) {
        reject("too_many_labels");
        continue;
      }
      bool labels_ok = true;
      for (const Label& lb : p.stream) {
        if (!IsValidUserLabelName(lb.name) || !IsValidUtf8(lb.value) || lb.name.size() > lim.labels.max_name_bytes ||
            lb.value.size() > lim.labels.max_value_bytes)
          labels_ok = false;
      }
      if (!labels_ok) {
        reject("invalid_labels");
        continue;
      }
      std::string key = LogStreamKey(p.stream);
      if (!known_streams_.count(key)) {
        if (lim.max_streams > 0 && known_streams_.size() >= lim.max_streams) {
          reject("stream_limit");
          continue;
        }
      }
      LogPush out;
      out.stream = p.stream;
      for (const LogEntry& e : p.entries) {
        if (e.line.size() > lim.max_line_bytes) {
          res.rejected["line_too_long"]++;
          continue;
        }
        if (options_.retention_ns > 0 && newest_ts_ > INT64_MIN + options_.retention_ns &&
            e.ts < newest_ts_ - options_.retention_ns) {
          res.rejected["too_old"]++;
          continue;
        }
        size_t bytes = LogEntryRawBytes(e);
        if (lim.rate_bytes_per_sec > 0) {
          if (tokens_ < static_cast<double>(bytes)) {
            res.rejected["rate_limited"]++;
            continue;
          }
          tokens_ -= static_cast<double>(bytes);
        }
        LogEntry c = e;
        bool fixed = SanitizeUtf8(&c.line);
        for (Label& m : c.metadata) fixed |= SanitizeUtf8(&m.value) | SanitizeUtf8(&m.name);
        if (fixed) stats_.invalid_utf8_replaced++;
        out.entries.push_back(std::move(c));
      }
      if (out.entries.empty()) continue;
      if (!known_streams_.count(key)) {
        known_streams_.insert(key);
        res.streams_created++;
      }
      keys.push_back(std::move(key));
      accepted.push_back(std::move(out));
    }
    for (const auto& [k, v] : res.rejected) stats_.rejected[k] += v;
    stats_.streams_created += res.streams_created;
  }
  if (accepted.empty()) return res;

  bool cut_due = false;
  {
    std::shared_lock gate(gate_);
    uint64_t seq = next_seq_.fetch_add(1);
    std::string record;
    EncodeLogWalRecord(seq, accepted, &record);
    Status st = wal_->Append(record);
    std::lock_guard l(mu_);
    if (!st.ok()) {
      if (failed_.ok()) failed_ = st;
      return st;
    }
    int64_t now = SteadyNanos();
    for (size_t i = 0; i < accepted.size(); ++i) {
      for (LogEntry& e : accepted[i].entries) {
        int64_t ts = e.ts;
        size_t bytes = LogEntryRawBytes(e);
        if (head_->Insert(keys[i], accepted[i].stream, std::move(e), seq, now)) {
          res.accepted++;
          stats_.lines_appended++;
          stats_.bytes_appended += bytes;
          newest_ts_ = std::max(newest_ts_, ts);
        } else {
          res.duplicates++;
          stats_.duplicates++;
        }
      }
      if (head_->streams[keys[i]].raw_bytes >= options_.chunk_target_bytes) cut_due = true;
    }
    stats_.push_calls++;
    stats_.push_nanos += static_cast<uint64_t>(SteadyNanos() - t0);
    if (wal_->stats().bytes - wal_bytes_at_checkpoint_ > options_.wal_checkpoint_bytes) cut_due = true;
  }
  if (cut_due) {
    if (options_.background) {
      std::lock_guard l(bg_mu_);
      cut_wanted_ = true;
      bg_cv_.notify_one();
    } else {
      TELKIT_RETURN_IF_ERROR(Maintain());
    }
  }
  return res;
}

Status LogStore::CutLocked(bool all) {
  struct Cut {
    std::string key;
    const HeadStream* s;
  };
  std::vector<std::pair<const HeadStream*, LogIndex::ChunkRow>> pending_rows_;
  std::vector<Cut> cuts;
  int64_t now = SteadyNanos();
  {
    std::lock_guard l(mu_);
    for (auto& [key, s] : head_->streams) {
      if (s.entries.empty()) continue;
      if (all || s.raw_bytes >= options_.chunk_target_bytes || now - s.opened_ns >= options_.max_chunk_age_ns) {
        std::sort(s.entries.begin(), s.entries.end(), Before);
        s.seen.clear();  // indexes changed; rebuilt below if the cut fails
        for (size_t i = 0; i < s.entries.size(); ++i)
          s.seen.emplace(EntryHash(s.entries[i].ts, s.entries[i].line), static_cast<uint32_t>(i));
        cuts.push_back(Cut{key, &s});
      }
    }
  }
  if (cuts.empty()) return OkStatus();
  // gate_ is held exclusively: no Push changes the head while we encode.
  std::string chunks_dir = JoinPath(dir_, "chunks");
  for (Cut& c : cuts) {
    const auto& es = c.s->entries;
    // A chunk holds at most chunk_target_bytes raw (plus one line); a
    // stream over that (after a long replay) is cut into several.
    size_t i = 0;

    while (i < es.size()) {
      size_t j = i, raw = 0;
      while (j < es.size() && (j == i || raw + LogEntryRawBytes(es[j]) <= options_.chunk_target_bytes)) {
        raw += LogEntryRawBytes(es[j]);
        ++j;
      }
      TELKIT_ASSIGN_OR_RETURN(std::string data,
                              EncodeChunk(std::span<const LogEntry>(es).subspan(i, j - i), options_.chunk));
      LogIndex::ChunkRow row;
      row.id = next_chunk_id_++;
      row.mint = es[i].ts;
      row.maxt = es[j - 1].ts;
      row.lines = j - i;
      row.raw_bytes = raw;
      row.bytes = data.size();
      row.max_seq = c.s->max_seq;
      std::string path = JoinPath(chunks_dir, ChunkName(row.id));
      TELKIT_ASSIGN_OR_RETURN(auto f, fs_->NewWritableFile(path));
      TELKIT_RETURN_IF_ERROR(f->Append(data));
      TELKIT_RETURN_IF_ERROR(f->Sync());
      TELKIT_RETURN_IF_ERROR(f->Close());
      pending_rows_.push_back({c.s, row});
      i = j;
    }
  }
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(chunks_dir));
  {
    std::lock_guard l(index_mu_);
    TELKIT_RETURN_IF_ERROR(index_->Begin());
    Status st;
    for (auto& [s, row] : pending_rows_) {
      auto id = index_->StreamId(s->labels);
      if (!id.ok()) {
        st = id.status();
        break;
      }
      row.stream = *id;
      st = index_->AddChunk(row);
      if (!st.ok()) break;
    }
    if (st.ok()) st = index_->Commit();
    if (!st.ok()) {
      (void)index_->Rollback();
      return st;
    }
  }
  std::lock_guard l(mu_);
  for (auto& [s, row] : pending_rows_) {
    stats_.chunks_written++;
    stats_.chunks++;
    stats_.chunk_raw_bytes_written += row.raw_bytes;
    stats_.chunk_bytes_written += row.bytes;
    stats_.chunk_bytes += row.bytes;
  }
  for (const Cut& c : cuts) {
    auto it = head_->streams.find(c.key);
    head_->lines -= it->second.entries.size();
    head_->bytes -= it->second.raw_bytes;
    head_->streams.erase(it);
  }
  return OkStatus();
}

Status LogStore::Checkpoint() {
  std::unique_lock gate(gate_);
  TELKIT_ASSIGN_OR_RETURN(uint32_t seg, wal_->CutSegment());
  TELKIT_RETURN_IF_ERROR(CutLocked(true));
  TELKIT_RETURN_IF_ERROR(wal_->RemoveSegmentsBefore(seg));
  std::lock_guard l(mu_);
  wal_bytes_at_checkpoint_ = wal_->stats().bytes;
  stats_.checkpoints++;
  return OkStatus();
}

Status LogStore::Flush() {
  std::lock_guard m(maintain_mu_);
  {
    std::lock_guard l(mu_);
    TELKIT_RETURN_IF_ERROR(CheckOpen());
  }
  return Checkpoint();
}

Status LogStore::Maintain() {
  std::lock_guard m(maintain_mu_);
  {
    std::lock_guard l(mu_);
    TELKIT_RETURN_IF_ERROR(CheckOpen());
  }
  bool checkpoint;
  {
    std::lock_guard l(mu_);
    checkpoint = wal_->stats().bytes - wal_bytes_at_checkpoint_ > options_.wal_checkpoint_bytes;
  }
  if (checkpoint) {
    TELKIT_RETURN_IF_ERROR(Checkpoint());
  } else {
    std::unique_lock gate(gate_);
    TELKIT_RETURN_IF_ERROR(CutLocked(false));
  }
  return ApplyRetention();
}

Status LogStore::ApplyRetention() {
  if (options_.retention_ns <= 0 && options_.retention_bytes == 0) return OkStatus();
  std::vector<LogIndex::ChunkRow> doomed;
  int64_t newest;
  {
    std::lock_guard l(mu_);
    newest = newest_ts_;
  }
  {
    std::lock_guard l(index_mu_);
    TELKIT_ASSIGN_OR_RETURN(auto rows, index_->AllChunks());  // oldest first
    uint64_t total = 0;
    for (const auto& r : rows) total += r.bytes;
    for (const auto& r : rows) {
      bool old = options_.retention_ns > 0 && newest > INT64_MIN + options_.retention_ns &&
                 r.maxt < newest - options_.retention_ns;
      bool over = options_.retention_bytes > 0 && total > options_.retention_bytes;
      if (!old && !over) break;
      doomed.push_back(r);
      total -= r.bytes;
    }
    if (doomed.empty()) return OkStatus();
    TELKIT_RETURN_IF_ERROR(index_->Begin());
    for (const auto& r : doomed) {
      Status st = index_->RemoveChunk(r.id);
      if (!st.ok()) {
        (void)index_->Rollback();
        return st;
      }
    }
    TELKIT_RETURN_IF_ERROR(index_->Commit());
  }
  std::string chunks_dir = JoinPath(dir_, "chunks");
  for (const auto& r : doomed) {
    Status st = fs_->RemoveFile(JoinPath(chunks_dir, ChunkName(r.id)));
    if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
  }
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(chunks_dir));
  std::lock_guard l(mu_);
  for (const auto& r : doomed) {
    stats_.retention_deleted_chunks++;
    stats_.retention_deleted_bytes += r.bytes;
    stats_.chunks--;
    stats_.chunk_bytes -= r.bytes;
  }
  return OkStatus();
}

void LogStore::BackgroundLoop() {
  std::unique_lock l(bg_mu_);
  while (!stopping_) {
    bg_cv_.wait_for(l, std::chrono::milliseconds(options_.background_interval_ms),
                    [this] { return stopping_ || cut_wanted_; });
    if (stopping_) break;
    cut_wanted_ = false;
    l.unlock();
    Status st = Maintain();
    if (!st.ok() && st.code() != StatusCode::kFailedPrecondition) {
      std::lock_guard m(mu_);
      stats_.maintenance_failures++;
      last_maintenance_error_ = st.ToString();
    }
    l.lock();
  }
}

LogStoreStats LogStore::stats() const {
  std::lock_guard l(mu_);
  LogStoreStats s = stats_;
  s.head_streams = head_->streams.size();
  s.head_lines = head_->lines;
  s.head_bytes = head_->bytes;
  if (wal_) {
    WalStats w = wal_->stats();
    s.wal_bytes = w.bytes;
    s.wal_commits = w.commits;
  }
  return s;
}

Status LogStore::Close() {
  {
    std::lock_guard l(bg_mu_);
    if (closed_) return OkStatus();
    stopping_ = true;
    bg_cv_.notify_all();
  }
  if (bg_.joinable()) bg_.join();
  Status st;
  bool healthy;
  {
    std::lock_guard l(mu_);
    healthy = failed_.ok();
  }
  if (healthy && wal_) {
    std::lock_guard m(maintain_mu_);
    st = Checkpoint();
  }
  std::lock_guard l(mu_);
  closed_ = true;
  if (wal_) {
    Status c = wal_->Close();
    if (st.ok()) st = c;
  }
  return st;
}

Result<std::vector<LogStreamResult>> LogStore::Select(const LogQuery& q) {
  std::map<std::string, std::pair<Labels, std::vector<LogEntry>>> head;
  {
    std::lock_guard l(mu_);
    if (closed_) return FailedPreconditionError("log store is closed");
    head = HeadMatches(*head_, q);
  }
  return RunSelect(fs_, dir_, index_.get(), &index_mu_, head, q);
}

Result<std::vector<Labels>> LogStore::Streams(std::span<const LabelMatcher> matchers, int64_t start_ns,
                                              int64_t end_ns) {
  std::vector<Labels> out;
  {
    std::lock_guard l(index_mu_);
    TELKIT_ASSIGN_OR_RETURN(auto streams, index_->Streams());
    for (auto& s : streams) {
      if (!MatchesAll(s.labels, matchers)) continue;
      TELKIT_ASSIGN_OR_RETURN(auto chunks, index_->Chunks(s.id, start_ns, end_ns - 1));
      if (!chunks.empty()) out.push_back(s.labels);
    }
  }
  {
    std::lock_guard l(mu_);
    for (const auto& [key, s] : head_->streams) {
      if (!MatchesAll(s.labels, matchers)) continue;
      for (const auto& e : s.entries)
        if (e.ts >= start_ns && e.ts < end_ns) {
          out.push_back(s.labels);
          break;
        }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// ---------------------------------------------------------------- LogReader

LogReader::LogReader(FileSystem* fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}
LogReader::~LogReader() = default;

Result<std::unique_ptr<LogReader>> LogReader::Open(FileSystem* fs, std::string dir) {
  std::unique_ptr<LogReader> r(new LogReader(fs, std::move(dir)));
  TELKIT_ASSIGN_OR_RETURN(r->index_, LogIndex::Open(JoinPath(r->dir_, "index.db"), true));
  return r;
}

Status LogReader::Refresh() {
  // One read transaction over the index while the WAL is read: chunks cut
  // after it began are still in the WAL (segments go only after a cut).
  head_ = std::make_unique<LogHead>();
  uint64_t max_seq = 0, records = 0, lines = 0, dups = 0;
  return ReplayWal(fs_, dir_, index_.get(), head_.get(), &max_seq, &records, &lines, &dups);
}

Result<std::vector<LogStreamResult>> LogReader::Select(const LogQuery& q) {
  std::lock_guard l(mu_);
  TELKIT_RETURN_IF_ERROR(index_->BeginRead());
  Status st = Refresh();
  Result<std::vector<LogStreamResult>> out = st;
  if (st.ok()) {
    std::mutex none;
    out = RunSelect(fs_, dir_, index_.get(), &none, HeadMatches(*head_, q), q);
  }
  (void)index_->Rollback();
  return out;
}

Result<std::vector<Labels>> LogReader::Streams(std::span<const LabelMatcher> matchers, int64_t start_ns,
                                               int64_t end_ns) {
  LogQuery q;
  q.matchers.assign(matchers.begin(), matchers.end());
  q.start_ns = start_ns;
  q.end_ns = end_ns;
  q.limit = 1;  // per stream after Normalize; the global cut below is skipped
  std::lock_guard l(mu_);
  TELKIT_RETURN_IF_ERROR(index_->BeginRead());
  Status st = Refresh();
  std::vector<Labels> out;
  if (st.ok()) {
    auto head = HeadMatches(*head_, q);
    std::vector<LogIndex::StreamRow> streams;
    auto rows = index_->Streams();
    if (!rows.ok()) {
      st = rows.status();
    } else {
      for (auto& s : *rows) {
        if (!MatchesAll(s.labels, matchers)) continue;
        auto chunks = index_->Chunks(s.id, start_ns, end_ns - 1);
        if (chunks.ok() && !chunks->empty()) out.push_back(s.labels);
      }
      for (auto& [k, v] : head)
        if (!v.second.empty()) out.push_back(v.first);
    }
  }
  (void)index_->Rollback();
  TELKIT_RETURN_IF_ERROR(st);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace telkit
