#include "common/tracestore/trace_store.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

#include "common/tracestore/trace_block.h"
#include "common/tracestore/trace_reader.h"

namespace telkit {
namespace {

int64_t WallNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Re-logged live spans are split into WAL records of at most this many bytes.
constexpr size_t kCarryRecordBytes = 1 << 20;

uint64_t SpanKey(const std::string& span_id) {
  uint64_t k = 0;
  std::memcpy(&k, span_id.data(), std::min<size_t>(8, span_id.size()));
  return k;
}

}  // namespace

bool TraceStore::LiveTrace::Has(const std::string& span_id) const {
  if (spans.size() <= kLinearSpans) {
    for (const SpanRecord& r : spans) {
      if (r.span_id == span_id) return true;
    }
    return false;
  }
  return ids.count(SpanKey(span_id)) != 0;
}

void TraceStore::LiveTrace::Add(SpanRecord r) {
  spans.push_back(std::move(r));
  if (spans.size() == kLinearSpans + 1) {
    for (const SpanRecord& s : spans) ids.insert(SpanKey(s.span_id));
  } else if (spans.size() > kLinearSpans + 1) {
    ids.insert(SpanKey(spans.back().span_id));
  }
}

TraceStore::TraceStore(FileSystem* fs, std::string dir, TraceStoreOptions options)
    : fs_(fs), dir_(std::move(dir)), options_(std::move(options)) {
  if (!options_.clock) options_.clock = WallNanos;
}

TraceStore::~TraceStore() { (void)Close(); }

Result<std::unique_ptr<TraceStore>> TraceStore::Open(FileSystem* fs, std::string dir, TraceStoreOptions options) {
  if (options.idle_ns < 0 || options.retention_ns <= 0) {
    return InvalidArgumentError("trace store: idle must be >= 0 and retention > 0");
  }
  std::unique_ptr<TraceStore> s(new TraceStore(fs, std::move(dir), std::move(options)));
  TELKIT_RETURN_IF_ERROR(s->Recover());
  return s;
}

Status TraceStore::Recover() {
  TELKIT_RETURN_IF_ERROR(fs_->CreateDir(dir_));
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(DirName(dir_)));
  const std::string blocks_dir = JoinPath(dir_, "blocks");
  TELKIT_RETURN_IF_ERROR(fs_->CreateDir(blocks_dir));
  TELKIT_RETURN_IF_ERROR(fs_->CreateDir(JoinPath(dir_, "wal")));
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  std::string cat_path = options_.catalogue_path.empty() ? JoinPath(dir_, "catalogue.db") : options_.catalogue_path;
  TELKIT_ASSIGN_OR_RETURN(catalogue_, TraceCatalogue::Open(cat_path, /*read_only=*/false));
  TELKIT_RETURN_IF_ERROR(catalogue_->Begin());
  TELKIT_RETURN_IF_ERROR(
      catalogue_->SetMeta("max_attribute_bytes", static_cast<int64_t>(options_.span_limits.max_attribute_bytes)));
  TELKIT_ASSIGN_OR_RETURN(uint32_t wal_start, catalogue_->WalStart());
  TELKIT_ASSIGN_OR_RETURN(auto blocks, catalogue_->Blocks());
  TELKIT_RETURN_IF_ERROR(catalogue_->Commit());

  // Block files the catalogue does not know are from a cut that did not
  // commit (or a retention removal that did): remove them.
  std::set<std::string> known;
  for (const TraceBlockInfo& b : blocks) {
    known.insert(TraceBlockFileName(b.id));
    next_block_ = std::max(next_block_, b.id + 1);
    stats_.blocks++;
    stats_.block_bytes += b.bytes;
  }
  TELKIT_ASSIGN_OR_RETURN(auto files, fs_->ListDir(blocks_dir));
  bool removed = false;
  for (const std::string& f : files) {
    if (known.count(f)) continue;
    TELKIT_RETURN_IF_ERROR(fs_->RemoveFile(JoinPath(blocks_dir, f)));
    removed = true;
  }
  if (removed) TELKIT_RETURN_IF_ERROR(fs_->SyncDir(blocks_dir));

  // Replay first (kStop: exactly the records WalWriter::Open keeps), then
  // open the writer, which repairs the tail and starts a new segment.
  const std::string wal_dir = JoinPath(dir_, "wal");
  {
    WalReaderOptions ro;
    ro.first_segment = wal_start;
    TELKIT_ASSIGN_OR_RETURN(auto reader, WalReader::Open(fs_, wal_dir, ro));
    int64_t now = Now();
    std::lock_guard<std::mutex> l(live_mu_);
    replaying_ = true;
    while (true) {
      TELKIT_ASSIGN_OR_RETURN(auto rec, reader->Next());
      if (!rec.has_value()) break;
      std::vector<SpanRecord> spans;
      SplitStats st;
      // Only requests that parsed were logged; one that does not is damage
      // the checksums missed: skip it.
      if (!SplitTraceRequest(*rec, options_.span_limits, &spans, &st).ok()) continue;
      ApplyLocked(&spans, now);
    }
    replaying_ = false;
    // A last segment whose header is torn holds nothing: remove it here, as
    // WalWriter::Open would, but before Open numbers the next segment after
    // it (which would leave a gap that the next replay reports as DATA_LOSS).
    TELKIT_ASSIGN_OR_RETURN(auto segments, ListWalSegments(fs_, wal_dir));
    if (!reader->damage().empty() && !segments.empty()) {
      const WalDamage& tail = reader->damage().back();
      if (tail.tail && tail.segment == segments.back() && tail.offset < kWalSegmentHeaderSize) {
        TELKIT_RETURN_IF_ERROR(fs_->RemoveFile(JoinPath(wal_dir, WalSegmentName(tail.segment))));
        TELKIT_RETURN_IF_ERROR(fs_->SyncDir(wal_dir));
      }
    }
  }
  TELKIT_ASSIGN_OR_RETURN(wal_, WalWriter::Open(fs_, wal_dir, options_.wal));
  if (wal_->segment() < wal_start) {
    // The WAL directory lost its segments (removed by hand): blocks cover
    // nothing of what will be logged now.
    TELKIT_RETURN_IF_ERROR(catalogue_->Begin());
    TELKIT_RETURN_IF_ERROR(catalogue_->SetWalStart(0));
    TELKIT_RETURN_IF_ERROR(catalogue_->Commit());
    wal_start = 0;
  }
  TELKIT_RETURN_IF_ERROR(wal_->RemoveSegmentsBefore(wal_start));
  // Recovery re-counts what it replays as live, not as received.
  stats_.spans_stored = 0;
  stats_.spans_duplicate = 0;
  return OkStatus();
}

void TraceStore::ApplyLocked(std::vector<SpanRecord>* spans, int64_t now) {
  for (SpanRecord& r : *spans) {
    auto [it, fresh] = live_.try_emplace(r.trace_id);
    LiveTrace& t = it->second;
    t.last_ns = now;
    bool refused = false;
    if (t.Has(r.span_id)) {
      stats_.spans_duplicate++;
      continue;
    } else if (options_.max_spans_per_trace != 0 && t.spans.size() >= options_.max_spans_per_trace) {
      stats_.spans_refused_trace_spans++;
      refused = true;
    } else if (options_.max_trace_bytes != 0 && t.bytes + r.otlp.size() > options_.max_trace_bytes) {
      stats_.spans_refused_trace_bytes++;
      refused = true;
    }
    if (refused) {
      if (t.spans.empty()) live_.erase(it);  // nothing of it stored
      continue;
    }
    if (options_.on_span && !replaying_) options_.on_span(r);
    t.bytes += r.otlp.size();
    t.Add(std::move(r));
    stats_.spans_stored++;
    stats_.live_spans++;
  }
  stats_.live_traces = live_.size();
}

Status TraceStore::Append(std::string_view request) {
  std::vector<SpanRecord> spans;
  SplitStats st;
  Status parsed = SplitTraceRequest(request, options_.span_limits, &spans, &st);
  if (!parsed.ok()) {
    std::lock_guard<std::mutex> l(live_mu_);
    stats_.requests++;
    stats_.requests_invalid++;
    return parsed;
  }
  std::shared_lock<std::shared_mutex> shared(append_mu_);
  if (closed_) return FailedPreconditionError("trace store: closed");
  TELKIT_RETURN_IF_ERROR(wal_->Append(request));
  std::lock_guard<std::mutex> l(live_mu_);
  stats_.requests++;
  stats_.spans_received += st.spans;
  stats_.spans_invalid += st.invalid_spans;
  stats_.attributes_truncated += st.truncated_attributes;
  ApplyLocked(&spans, Now());
  return OkStatus();
}

Result<size_t> TraceStore::CutIdle() {
  TELKIT_ASSIGN_OR_RETURN(size_t n, Cut(false));
  TELKIT_RETURN_IF_ERROR(ApplyRetention());
  return n;
}

Result<size_t> TraceStore::CutAll() { return Cut(true); }

Result<size_t> TraceStore::Cut(bool all) {
  std::lock_guard<std::mutex> cut(cut_mu_);
  uint32_t wal_start = 0;
  size_t n = 0;
  {
    std::unique_lock<std::shared_mutex> excl(append_mu_);
    if (closed_) return FailedPreconditionError("trace store: closed");
    std::lock_guard<std::mutex> l(live_mu_);
    int64_t now = Now();
    for (auto it = live_.begin(); it != live_.end();) {
      if (all || now - it->second.last_ns >= options_.idle_ns) {
        cutting_.emplace_back(it->first, std::move(it->second));
        it = live_.erase(it);
      } else {
        ++it;
      }
    }
    n = cutting_.size();
    if (n == 0) return size_t{0};
    // Sorted here, under the locks: WriteBlock then only reads cutting_,
    // as readers under live_mu_ do.
    std::sort(cutting_.begin(), cutting_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [tid, t] : cutting_) {
      std::sort(t.spans.begin(), t.spans.end(), [](const SpanRecord& a, const SpanRecord& b) {
        return a.start_ns != b.start_ns ? a.start_ns < b.start_ns : a.span_id < b.span_id;
      });
    }
    Status s;
    auto wal_cut = wal_->CutSegment();
    if (wal_cut.ok()) {
      wal_start = *wal_cut;
      // Checkpoint: the traces staying live are re-logged in the new segment.
      std::vector<const SpanRecord*> batch;
      size_t bytes = 0;
      auto flush = [&]() -> Status {
        if (batch.empty()) return OkStatus();
        Status a = wal_->Append(ConcatTraceRequest(batch));
        batch.clear();
        bytes = 0;
        return a;
      };
      for (auto& [id, t] : live_) {
        for (const SpanRecord& r : t.spans) {
          batch.push_back(&r);
          bytes += r.otlp.size();
          if (bytes >= kCarryRecordBytes && !(s = flush()).ok()) break;
        }
        if (!s.ok()) break;
      }
      if (s.ok()) s = flush();
    } else {
      s = wal_cut.status();
    }
    if (!s.ok()) {
      // The old segments still hold everything: put the traces back.
      for (auto& [id, t] : cutting_) live_.emplace(id, std::move(t));
      cutting_.clear();
      stats_.cut_errors++;
      return s;
    }
  }
  // Appends go on while the block is written; reads see cutting_.
  uint64_t id = next_block_++;
  Status s = WriteBlock(id, cutting_, wal_start);
  std::unique_lock<std::mutex> l(live_mu_);
  if (!s.ok()) {
    for (auto& [tid, t] : cutting_) {
      auto [it, fresh] = live_.try_emplace(tid, std::move(t));
      if (!fresh) {  // spans arrived meanwhile: merge
        for (SpanRecord& r : t.spans) {
          if (!it->second.Has(r.span_id)) it->second.Add(std::move(r));
        }
      }
    }
    cutting_.clear();
    stats_.cut_errors++;
    return s;
  }
  for (auto& [tid, t] : cutting_) {
    stats_.spans_cut += t.spans.size();
    stats_.live_spans -= std::min<uint64_t>(stats_.live_spans, t.spans.size());
  }
  stats_.traces_cut += n;
  stats_.live_traces = live_.size();
  cutting_.clear();
  // The block is committed: the segments before wal_start are not needed.
  TELKIT_RETURN_IF_ERROR(wal_->RemoveSegmentsBefore(wal_start));
  return n;
}

Status TraceStore::WriteBlock(uint64_t id, const std::vector<std::pair<std::string, LiveTrace>>& traces,
                              uint32_t wal_start) {
  const std::string blocks_dir = JoinPath(dir_, "blocks");
  const std::string path = JoinPath(blocks_dir, TraceBlockFileName(id));
  TraceBlockInfo info;
  info.id = id;
  info.created_ns = Now();
  std::vector<TraceFrameRef> frames;
  frames.reserve(traces.size());
  TraceBlockIndexBuilder index;
  uint64_t spans = 0;
  {
    TELKIT_ASSIGN_OR_RETURN(auto file, fs_->NewWritableFile(path));
    // Frames are gathered and written in ~1 MiB appends.
    std::string buf(kTraceBlockMagic);
    uint64_t offset = 0;
    bool first = true;
    std::vector<const SpanRecord*> ptrs;
    for (const auto& [tid, t] : traces) {
      ptrs.clear();
      for (const SpanRecord& r : t.spans) ptrs.push_back(&r);
      TraceFrameRef f;
      f.trace_id = tid;
      f.offset = offset + buf.size();
      f.length = AppendTraceFrame(ptrs, options_.zstd_level, &buf);
      index.AddTrace(tid, f.offset, static_cast<uint32_t>(f.length), ptrs);
      const BlockTrace& bt = index.index().traces.back();
      f.start_ns = bt.start_ns;
      f.end_ns = bt.end_ns;
      f.spans = bt.spans;
      spans += bt.spans;
      if (buf.size() >= (1u << 20)) {
        TELKIT_RETURN_IF_ERROR(file->Append(buf));
        offset += buf.size();
        buf.clear();
      }
      info.min_start_ns = first ? f.start_ns : std::min(info.min_start_ns, f.start_ns);
      info.max_end_ns = first ? f.end_ns : std::max(info.max_end_ns, f.end_ns);
      first = false;
      frames.push_back(std::move(f));
    }
    info.index_offset = offset + buf.size();
    info.index_length = index.FinishTo(options_.zstd_level, &buf);
    buf += EncodeTraceBlockFooter(info.index_offset, info.index_length);
    TELKIT_RETURN_IF_ERROR(file->Append(buf));
    offset += buf.size();
    TELKIT_RETURN_IF_ERROR(file->Sync());
    TELKIT_RETURN_IF_ERROR(file->Close());
    info.bytes = offset;
  }
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(blocks_dir));
  info.traces = frames.size();
  info.spans = spans;
  {
    std::lock_guard<std::mutex> c(cat_mu_);
    TELKIT_RETURN_IF_ERROR(catalogue_->Begin());
    Status s = catalogue_->AddBlock(info, frames);
    if (s.ok()) s = catalogue_->SetWalStart(wal_start);
    if (s.ok()) s = catalogue_->Commit();
    if (!s.ok()) {
      (void)catalogue_->Rollback();
      return s;
    }
  }
  cache_.Put(info, std::make_shared<const TraceBlockIndex>(index.TakeIndex()));
  std::lock_guard<std::mutex> l(live_mu_);
  stats_.blocks_written++;
  stats_.blocks++;
  stats_.block_bytes += info.bytes;
  return OkStatus();
}

Status TraceStore::ApplyRetention() {
  std::lock_guard<std::mutex> cut(cut_mu_);
  std::vector<TraceBlockInfo> blocks;
  {
    std::lock_guard<std::mutex> c(cat_mu_);
    TELKIT_RETURN_IF_ERROR(catalogue_->BeginRead());
    auto b = catalogue_->Blocks();
    (void)catalogue_->Commit();
    if (!b.ok()) return b.status();
    blocks = std::move(*b);
  }
  uint64_t total = 0;
  for (const auto& b : blocks) total += b.bytes;
  int64_t horizon = Now() - options_.retention_ns;
  std::vector<TraceBlockInfo> remove;
  for (const auto& b : blocks) {  // oldest (lowest id) first
    bool old = b.max_end_ns < horizon && b.created_ns < horizon;
    bool over = options_.max_block_bytes != 0 && total > options_.max_block_bytes;
    if (!old && !over) continue;
    remove.push_back(b);
    total -= b.bytes;
  }
  for (const auto& b : remove) {
    {
      std::lock_guard<std::mutex> c(cat_mu_);
      TELKIT_RETURN_IF_ERROR(catalogue_->Begin());
      Status s = catalogue_->RemoveBlock(b.id);
      if (s.ok()) s = catalogue_->Commit();
      if (!s.ok()) {
        (void)catalogue_->Rollback();
        return s;
      }
    }
    Status s = fs_->RemoveFile(JoinPath(JoinPath(dir_, "blocks"), TraceBlockFileName(b.id)));
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    std::lock_guard<std::mutex> l(live_mu_);
    stats_.blocks_removed++;
    stats_.blocks--;
    stats_.block_bytes -= std::min(stats_.block_bytes, b.bytes);
  }
  return OkStatus();
}

Status TraceStore::Close() {
  std::unique_lock<std::shared_mutex> excl(append_mu_);
  if (closed_) return OkStatus();
  closed_ = true;
  return wal_ ? wal_->Close() : OkStatus();
}

Result<std::vector<SpanRecord>> TraceStore::TraceById(const std::string& trace_id) {
  std::vector<SpanRecord> out;
  {
    std::lock_guard<std::mutex> l(live_mu_);
    auto it = live_.find(trace_id);
    if (it != live_.end()) out = it->second.spans;
    for (const auto& [tid, t] : cutting_) {
      if (tid == trace_id) out.insert(out.end(), t.spans.begin(), t.spans.end());
    }
  }
  std::vector<TraceFrameRef> frames;
  {
    std::lock_guard<std::mutex> c(cat_mu_);
    TELKIT_ASSIGN_OR_RETURN(frames, catalogue_->FindTrace(trace_id));
  }
  TELKIT_RETURN_IF_ERROR(ReadFrameSpans(fs_, JoinPath(dir_, "blocks"), frames, &out));
  DedupSpans(&out);
  return out;
}

Result<std::vector<TraceSummary>> TraceStore::Search(const TraceSearchRequest& req) {
  std::vector<TraceSummary> live;
  {
    std::lock_guard<std::mutex> l(live_mu_);
    std::vector<const SpanRecord*> ptrs;
    for (const auto& [tid, t] : live_) {
      for (const SpanRecord& r : t.spans) ptrs.push_back(&r);
    }
    for (const auto& [tid, t] : cutting_) {
      for (const SpanRecord& r : t.spans) ptrs.push_back(&r);
    }
    live = SearchSpans(req, ptrs);
  }
  std::vector<TraceBlockInfo> infos;
  {
    std::lock_guard<std::mutex> c(cat_mu_);
    TELKIT_ASSIGN_OR_RETURN(infos, catalogue_->BlocksOverlapping(req.start_ns, req.end_ns));
  }
  std::vector<TraceSummary> blocks;
  const std::string blocks_dir = JoinPath(dir_, "blocks");
  for (const TraceBlockInfo& b : infos) {
    auto x = cache_.Get(fs_, blocks_dir, b);
    if (!x.ok() && x.status().code() == StatusCode::kNotFound) continue;  // removed by retention meanwhile
    if (!x.ok()) return x.status();
    SearchBlockIndex(req, **x, &blocks);
  }
  return MergeSummaries(std::move(blocks), live, req.limit);
}

Result<std::vector<TraceBlockInfo>> TraceStore::AllBlocks() {
  std::lock_guard<std::mutex> c(cat_mu_);
  return catalogue_->Blocks();
}

Result<std::vector<std::string>> TraceStore::TagNames() {
  std::set<std::string> names;
  TELKIT_ASSIGN_OR_RETURN(auto infos, AllBlocks());
  const std::string blocks_dir = JoinPath(dir_, "blocks");
  for (const TraceBlockInfo& b : infos) {
    auto x = cache_.Get(fs_, blocks_dir, b);
    if (!x.ok() && x.status().code() == StatusCode::kNotFound) continue;
    if (!x.ok()) return x.status();
    BlockTagNames(**x, &names);
  }
  {
    std::lock_guard<std::mutex> l(live_mu_);
    for (const auto& [tid, t] : live_) {
      for (const SpanRecord& r : t.spans) {
        for (const auto& kv : r.attributes) names.insert(kv.first);
      }
    }
  }
  std::vector<std::string> out(IntrinsicTagNames().begin(), IntrinsicTagNames().end());
  out.insert(out.end(), names.begin(), names.end());
  return out;
}

Result<std::vector<std::string>> TraceStore::TagValues(const std::string& tag, size_t limit) {
  std::set<std::string> values;
  TELKIT_ASSIGN_OR_RETURN(auto infos, AllBlocks());
  const std::string blocks_dir = JoinPath(dir_, "blocks");
  for (const TraceBlockInfo& b : infos) {
    auto x = cache_.Get(fs_, blocks_dir, b);
    if (!x.ok() && x.status().code() == StatusCode::kNotFound) continue;
    if (!x.ok()) return x.status();
    BlockTagValues(**x, tag, &values);
  }
  {
    std::lock_guard<std::mutex> l(live_mu_);
    for (const auto& [tid, t] : live_) {
      for (const SpanRecord& r : t.spans) SpanTagValues(r, tag, &values);
    }
  }
  std::vector<std::string> out(values.begin(), values.end());
  if (out.size() > limit) out.resize(limit);
  return out;
}

TraceStoreStats TraceStore::stats() const {
  std::lock_guard<std::mutex> l(live_mu_);
  TraceStoreStats s = stats_;
  if (wal_) s.wal = wal_->stats();
  return s;
}

}  // namespace telkit
