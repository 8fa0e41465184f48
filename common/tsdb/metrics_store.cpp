#include "common/tsdb/metrics_store.h"
#include "common/tsdb/query_socket.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <set>
#include <unordered_map>

#include "common/base/crc32c.h"
#include "common/tsdb/block.h"
#include "common/tsdb/byte_codec.h"
#include "common/tsdb/head.h"
#include "common/tsdb/index.h"
#include "common/tsdb/wal_records.h"

namespace telkit {
namespace {

constexpr std::string_view kCheckpointPrefix = "checkpoint.";
constexpr size_t kCheckpointSeriesPerRecord = 1000;
// Times below this are refused, so that block-range arithmetic cannot overflow.
constexpr int64_t kMinSampleTime = INT64_MIN / 4;

std::string CheckpointName(uint32_t segment) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "checkpoint.%08u", segment);
  return buf;
}

bool ParseCheckpointName(std::string_view name, uint32_t* segment) {
  if (name.substr(0, kCheckpointPrefix.size()) != kCheckpointPrefix) return false;
  name.remove_prefix(kCheckpointPrefix.size());
  if (name.size() < 8 || name.size() > 10) return false;
  uint64_t v = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT32_MAX) return false;
  *segment = static_cast<uint32_t>(v);
  return true;
}

void AppendCheckpointRecord(std::string* out, const WalBatch& batch) {
  std::string record;
  EncodeWalBatch(batch, &record);
  PutFixed32(out, static_cast<uint32_t>(record.size()));
  PutFixed32(out, Crc32c(record));
  out->append(record);
}

Status RemoveTree(FileSystem* fs, const std::string& path) {
  TELKIT_ASSIGN_OR_RETURN(FileInfo info, fs->Stat(path));
  if (!info.is_dir) return fs->RemoveFile(path);
  TELKIT_ASSIGN_OR_RETURN(auto names, fs->ListDir(path));
  for (const std::string& n : names) TELKIT_RETURN_IF_ERROR(RemoveTree(fs, JoinPath(path, n)));
  return fs->RemoveDir(path);
}

// Exemplar labels: valid names, at most 128 bytes of names and values
// together (OpenMetrics' limit).
bool ValidExemplar(const Exemplar& e) {
  size_t bytes = 0;
  for (const Label& l : e.labels) {
    if (!IsValidLabelName(l.name)) return false;
    bytes += l.name.size() + l.value.size();
  }
  return bytes <= 128;
}

int64_t FloorTo(int64_t t, int64_t range) {
  int64_t q = t / range;
  if (t % range < 0) --q;
  return q * range;
}

Result<std::vector<Sample>> DecodeInRange(std::string_view chunk, int64_t mint, int64_t maxt) {
  std::vector<Sample> out;
  TELKIT_ASSIGN_OR_RETURN(auto it, ChunkIterator::Open(chunk));
  while (it.Next()) {
    if (it.t() >= mint && it.t() <= maxt) out.push_back(Sample{it.t(), it.v()});
  }
  TELKIT_RETURN_IF_ERROR(it.status());
  return out;
}

// Block samples of the series `rows` in [mint, maxt], merged into `out`.
Status ReadBlockSeries(TsdbIndex* index, BlockSet* blocks, int64_t mint, int64_t maxt,
                       std::span<const LabelMatcher> matchers, std::map<Labels, std::vector<Sample>>* out) {
  TELKIT_ASSIGN_OR_RETURN(auto metas, index->BlocksOverlapping(mint, maxt));
  if (metas.empty()) return OkStatus();
  TELKIT_ASSIGN_OR_RETURN(auto rows, index->MatchSeries(matchers));
  for (auto& row : rows) {
    TELKIT_ASSIGN_OR_RETURN(auto chunks, index->Chunks(row.id, metas, mint, maxt));
    std::vector<Sample> samples;
    for (const auto& c : chunks) {
      TELKIT_ASSIGN_OR_RETURN(auto all, blocks->ReadSamples(c.block, c.ref));
      auto lo = std::lower_bound(all->begin(), all->end(), mint, [](const Sample& x, int64_t t) { return x.t < t; });
      auto hi = std::upper_bound(lo, all->end(), maxt, [](int64_t t, const Sample& x) { return t < x.t; });
      if (lo == hi) continue;
      if (samples.empty()) {
        samples.assign(lo, hi);
      } else {
        samples = MergeSamples(std::move(samples), std::vector<Sample>(lo, hi));
      }
    }
    if (samples.empty()) continue;
    auto [it, fresh] = out->try_emplace(std::move(row.labels));
    it->second = fresh ? std::move(samples) : MergeSamples(std::move(it->second), std::move(samples));
  }
  return OkStatus();
}

Status BlockLabelSets(TsdbIndex* index, int64_t mint, int64_t maxt, std::span<const LabelMatcher> matchers,
                      std::set<Labels>* out) {
  TELKIT_ASSIGN_OR_RETURN(auto blocks, index->BlocksOverlapping(mint, maxt));
  if (blocks.empty()) return OkStatus();
  TELKIT_ASSIGN_OR_RETURN(auto rows, index->MatchSeries(matchers));
  for (auto& row : rows) {
    TELKIT_ASSIGN_OR_RETURN(auto chunks, index->Chunks(row.id, blocks, mint, maxt));
    if (!chunks.empty()) out->insert(std::move(row.labels));
  }
  return OkStatus();
}

std::vector<std::string> Names(const std::set<Labels>& sets) {
  std::set<std::string> names;
  for (const Labels& l : sets) {
    for (const Label& x : l) names.insert(x.name);
  }
  return {names.begin(), names.end()};
}

std::vector<std::string> Values(const std::set<Labels>& sets, std::string_view name) {
  std::set<std::string> values;
  for (const Labels& l : sets) {
    std::string_view v = l.Get(name);
    if (!v.empty()) values.insert(std::string(v));
  }
  return {values.begin(), values.end()};
}

}  // namespace

void WriterPreferringMutex::lock() {
  std::unique_lock<std::mutex> l(mu_);
  ++writers_waiting_;
  cv_.wait(l, [&] { return !writer_ && readers_ == 0; });
  --writers_waiting_;
  writer_ = true;
}

void WriterPreferringMutex::unlock() {
  {
    std::lock_guard<std::mutex> l(mu_);
    writer_ = false;
  }
  cv_.notify_all();
}

void WriterPreferringMutex::lock_shared() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !writer_ && writers_waiting_ == 0; });
  ++readers_;
}

void WriterPreferringMutex::unlock_shared() {
  bool last;
  {
    std::lock_guard<std::mutex> l(mu_);
    last = --readers_ == 0;
  }
  if (last) cv_.notify_all();
}

MetricsStore::MetricsStore(FileSystem* fs, std::string dir, MetricsStoreOptions options)
    : fs_(fs), dir_(std::move(dir)), options_(std::move(options)) {}

MetricsStore::~MetricsStore() { (void)Close(); }

Result<std::unique_ptr<MetricsStore>> MetricsStore::Open(FileSystem* fs, std::string dir, MetricsStoreOptions options) {
  if (options.block_range_ms <= 0) return InvalidArgumentError("block range must be positive");
  if (options.retention_ms < 0) return InvalidArgumentError("retention must not be negative");
  if (options.out_of_order_window_ms < 0) return InvalidArgumentError("out-of-order window must not be negative");
  if (options.background_interval_ms <= 0) return InvalidArgumentError("background interval must be positive");
  std::unique_ptr<MetricsStore> store(new MetricsStore(fs, std::move(dir), std::move(options)));
  Status s = store->Init();
  if (!s.ok()) return s.WithContext("open metrics store '" + store->dir_ + "'");
  return store;
}

Status MetricsStore::Init() {
  head_ = std::make_unique<Head>(options_.block_range_ms);
  if (options_.read_only) return InitReadOnly();
  TELKIT_RETURN_IF_ERROR(fs_->CreateDir(dir_));
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(DirName(dir_)));
  std::string blocks_dir = JoinPath(dir_, "blocks");
  TELKIT_RETURN_IF_ERROR(fs_->CreateDir(blocks_dir));
  TELKIT_RETURN_IF_ERROR(fs_->CreateDir(JoinPath(dir_, "wal")));
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  std::string index_path = fs_ == DefaultFileSystem() ? JoinPath(dir_, "index.db") : options_.index_path;
  TELKIT_ASSIGN_OR_RETURN(index_, TsdbIndex::Open(index_path, false));
  blocks_ = std::make_unique<BlockSet>(fs_, blocks_dir);

  // The catalogue decides which blocks exist: anything else in blocks/ is
  // the leftover of an interrupted write or compaction.
  TELKIT_ASSIGN_OR_RETURN(auto metas, index_->Blocks());
  std::set<uint64_t> known;
  for (const BlockMeta& m : metas) {
    known.insert(m.id);
    min_valid_time_ = std::max(min_valid_time_, m.maxt);
    stats_.block_bytes += m.bytes;
  }
  stats_.blocks = metas.size();
  TELKIT_ASSIGN_OR_RETURN(auto names, fs_->ListDir(blocks_dir));
  bool removed = false;
  for (const std::string& name : names) {
    uint64_t id;
    if (ParseBlockDirName(name, &id) && known.count(id)) continue;
    TELKIT_RETURN_IF_ERROR(RemoveTree(fs_, JoinPath(blocks_dir, name)));
    removed = true;
  }
  if (removed) TELKIT_RETURN_IF_ERROR(fs_->SyncDir(blocks_dir));
  for (const BlockMeta& m : metas) {
    TELKIT_ASSIGN_OR_RETURN(FileInfo info, fs_->Stat(JoinPath(JoinPath(blocks_dir, BlockDirName(m.id)), "chunks")));
    if (info.size != m.bytes) {
      return DataLossError("block " + BlockDirName(m.id) + ": chunks file has " + std::to_string(info.size) +
                           " bytes, the index says " + std::to_string(m.bytes));
    }
  }
  next_block_id_ = known.empty() ? 1 : *known.rbegin() + 1;

  TELKIT_RETURN_IF_ERROR(Replay());
  TELKIT_ASSIGN_OR_RETURN(wal_, WalWriter::Open(fs_, JoinPath(dir_, "wal"), options_.wal));
  if (options_.background) bg_ = std::thread([this] { BackgroundLoop(); });
  return OkStatus();
}

Status MetricsStore::InitReadOnly() {
  const std::string blocks_dir = JoinPath(dir_, "blocks");
  std::string index_path = fs_ == DefaultFileSystem() ? JoinPath(dir_, "index.db") : options_.index_path;
  TELKIT_ASSIGN_OR_RETURN(index_, TsdbIndex::Open(index_path, true));
  blocks_ = std::make_unique<BlockSet>(fs_, blocks_dir, kReaderChunkCacheBytes);
  TELKIT_ASSIGN_OR_RETURN(auto metas, index_->Blocks());
  for (const BlockMeta& m : metas) {
    min_valid_time_ = std::max(min_valid_time_, m.maxt);
    stats_.block_bytes += m.bytes;
  }
  stats_.blocks = metas.size();
  TELKIT_RETURN_IF_ERROR(Replay());
  failed_ = FailedPreconditionError("metrics store '" + dir_ + "' is open read-only");
  return OkStatus();
}

Status MetricsStore::Replay() {
  std::string wal_dir = JoinPath(dir_, "wal");
  TELKIT_ASSIGN_OR_RETURN(auto names, fs_->ListDir(wal_dir));
  uint32_t checkpoint = 0;
  bool have_checkpoint = false;
  for (const std::string& n : names) {
    uint32_t seg;
    if (ParseCheckpointName(n, &seg)) {
      if (!have_checkpoint || seg > checkpoint) checkpoint = seg;
      have_checkpoint = true;
    } else if (!options_.read_only && n.size() > 4 && n.substr(n.size() - 4) == ".tmp") {
      TELKIT_RETURN_IF_ERROR(fs_->RemoveFile(JoinPath(wal_dir, n)));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  WalBatch batch;
  if (have_checkpoint) {
    std::string path = JoinPath(wal_dir, CheckpointName(checkpoint));
    TELKIT_ASSIGN_OR_RETURN(std::string data, ReadFileToString(fs_, path));
    ByteReader r(data);
    while (!r.empty()) {
      uint32_t len, crc;
      std::string_view record;
      if (!r.Fixed32(&len) || !r.Fixed32(&crc) || !r.Bytes(len, &record) || Crc32c(record) != crc) {
        return DataLossError("checkpoint '" + path + "' is damaged at offset " +
                             std::to_string(data.size() - r.remaining()));
      }
      batch.clear();
      TELKIT_RETURN_IF_ERROR(DecodeWalBatch(record, &batch).WithContext("checkpoint '" + path + "'"));
      TELKIT_RETURN_IF_ERROR(ApplyBatch(batch, true));
      stats_.replayed_records++;
    }
  }
  WalReaderOptions ro;
  ro.first_segment = have_checkpoint ? checkpoint : 0;
  TELKIT_ASSIGN_OR_RETURN(auto reader, WalReader::Open(fs_, wal_dir, ro));
  for (;;) {
    TELKIT_ASSIGN_OR_RETURN(auto record, reader->Next());
    if (!record) break;
    batch.clear();
    Status s = DecodeWalBatch(*record, &batch);
    if (!s.ok()) {
      return s.WithContext("wal segment " + std::to_string(reader->segment()) + " before offset " +
                           std::to_string(reader->offset()));
    }
    TELKIT_RETURN_IF_ERROR(ApplyBatch(batch, false));
    stats_.replayed_records++;
  }
  for (MemSeries* s : head_->All()) {
    s->pending_t = s->last_t;
    s->pending_bits = s->last_bits;
  }
  replay_alias_.clear();
  return OkStatus();
}

// REQUIRES: mu_ held; only during Open.
Status MetricsStore::ApplyBatch(WalBatch& batch, bool from_checkpoint) {
  auto resolve = [&](uint64_t ref) -> MemSeries* {
    if (MemSeries* s = head_->FindRef(ref)) return s;
    auto it = replay_alias_.find(ref);
    return it == replay_alias_.end() ? nullptr : it->second;
  };
  for (WalSeries& ws : batch.series) {
    next_ref_ = std::max(next_ref_, ws.ref + 1);
    if (resolve(ws.ref)) continue;
    if (MemSeries* existing = head_->Find(ws.labels)) {
      replay_alias_[ws.ref] = existing;
      continue;
    }
    MemSeries* s = head_->Create(ws.ref, std::move(ws.labels));
    s->durable = true;
  }
  for (const WalSample& x : batch.samples) {
    MemSeries* s = resolve(x.ref);
    if (!s) return DataLossError("wal sample for unknown series ref " + std::to_string(x.ref));
    if (x.t < min_valid_time_ && !options_.backfill) continue;
    TELKIT_ASSIGN_OR_RETURN(InsertResult r, head_->Insert(s, x.t, x.value_bits));
    if (r == InsertResult::kInserted) stats_.replayed_samples++;
  }
  for (const WalChunk& c : batch.chunks) {
    MemSeries* s = resolve(c.ref);
    if (!s) return DataLossError("checkpoint chunk for unknown series ref " + std::to_string(c.ref));
    TELKIT_ASSIGN_OR_RETURN(ChunkInfo info, ReadChunkInfo(c.chunk));
    if (info.num_samples == 0) continue;
    TELKIT_ASSIGN_OR_RETURN(auto samples, DecodeChunk(c.chunk));
    if (samples.front().t > s->last_t && samples.front().t >= min_valid_time_) {
      TELKIT_RETURN_IF_ERROR(head_->AddChunk(s, c.chunk));
    } else {
      for (const Sample& x : samples) {
        if (x.t < min_valid_time_ && !options_.backfill) continue;
        TELKIT_RETURN_IF_ERROR(head_->Insert(s, x.t, std::bit_cast<uint64_t>(x.v)).status());
      }
    }
    stats_.replayed_samples += samples.size();
  }
  for (WalExemplar& e : batch.exemplars) {
    if (MemSeries* s = resolve(e.ref)) AddExemplar(s->ref, std::move(e.exemplar));
  }
  for (MetricMetadata& m : batch.metadata) metadata_[m.family] = std::move(m);
  (void)from_checkpoint;
  return OkStatus();
}

void MetricsStore::AddExemplar(uint64_t ref, Exemplar e) {
  if (options_.max_exemplars == 0) return;
  if (exemplars_.size() < options_.max_exemplars) {
    exemplars_.emplace_back(ref, std::move(e));
  } else {
    exemplars_[exemplar_next_] = {ref, std::move(e)};
    exemplar_next_ = (exemplar_next_ + 1) % options_.max_exemplars;
  }
}

Status MetricsStore::CheckOpen() const {
  if (closed_) return FailedPreconditionError("metrics store '" + dir_ + "' is closed");
  return failed_;
}

Result<AppendResult> MetricsStore::Append(std::span<const TimeSeries> series, std::span<const MetricMetadata> metadata) {
  std::vector<SeriesRefAppend> refs(series.size());
  for (size_t i = 0; i < series.size(); ++i) {
    refs[i].labels = &series[i].labels;
    refs[i].samples = series[i].samples;
    refs[i].exemplars = series[i].exemplars;
  }
  return AppendRefs(refs, metadata);
}

Result<AppendResult> MetricsStore::AppendRefs(std::span<const SeriesRefAppend> series,
                                              std::span<const MetricMetadata> metadata, std::span<uint64_t> refs_out) {
  auto start = std::chrono::steady_clock::now();
  if (!refs_out.empty() && refs_out.size() != series.size()) {
    return InvalidArgumentError("AppendRefs: refs_out must be empty or as long as series");
  }
  std::fill(refs_out.begin(), refs_out.end(), 0);
  std::shared_lock<WriterPreferringMutex> gate(append_gate_);
  AppendResult res;
  WalBatch batch;
  struct Pending {
    MemSeries* s;
    int64_t t;
    uint64_t bits;
  };
  std::vector<Pending> pending;
  pending.reserve(series.size());
  batch.samples.reserve(series.size());
  std::vector<std::pair<uint64_t, Exemplar>> exemplars;
  {
    std::lock_guard<std::mutex> lock(mu_);
    TELKIT_RETURN_IF_ERROR(CheckOpen());
    const int64_t window = options_.out_of_order_window_ms;
    int64_t max_future_t = INT64_MAX;
    if (options_.max_future_ms > 0) {
      max_future_t = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count() + options_.max_future_ms;
    }
    // Series known by ref first (a hash lookup); keys and hashes of the
    // rest, with cache hints, so that the lookups below overlap their
    // memory latency instead of waiting for each in turn.
    std::vector<MemSeries*> by_ref(series.size(), nullptr);
    std::string keys;
    std::vector<std::pair<size_t, uint64_t>> key_at(series.size() + 1);
    // A record the WAL cannot take would fail the store: refuse the call
    // before anything changes (an upper bound of the record's size).
    uint64_t bound = 64;
    for (size_t i = 0; i < series.size(); ++i) {
      size_t begin = keys.size();
      if (series[i].ref_hint != 0) by_ref[i] = head_->FindRef(series[i].ref_hint);
      if (by_ref[i] != nullptr) {
        if (!by_ref[i]->durable) bound += by_ref[i]->key.size() * 2;
        key_at[i] = {begin, 0};
        continue;
      }
      if (series[i].labels == nullptr) {  // a stale hint and no labels: the caller retries
        if (series[i].ref_hint == 0) return InvalidArgumentError("AppendRefs: a series has neither labels nor ref");
        res.unknown_refs.push_back(i);
        key_at[i] = {begin, 0};
        continue;
      }
      EncodeLabels(*series[i].labels, &keys);
      uint64_t hash = HeadKeyHash(std::string_view(keys).substr(begin));
      key_at[i] = {begin, hash};
      head_->PrefetchSlot(hash);
    }
    key_at[series.size()].first = keys.size();
    bound += keys.size() * 2;
    for (const SeriesRefAppend& ts : series) {
      bound += 32 + ts.samples.size() * 30;
      for (const Exemplar& e : ts.exemplars) bound += 64 + e.labels.size() * 20 + 128;
    }
    for (const MetricMetadata& m : metadata) bound += 32 + m.family.size() + m.help.size() + m.unit.size();
    if (bound > wal_->max_record_bytes()) {
      return InvalidArgumentError("append of " + std::to_string(series.size()) +
                                  " series is too large for one WAL record (limit " +
                                  std::to_string(wal_->max_record_bytes()) + " bytes): split it");
    }
    constexpr size_t kAhead = 8;
    for (size_t i = 0; i < std::min(kAhead, series.size()); ++i) {
      if (!by_ref[i]) head_->PrefetchSeries(key_at[i].second);
    }
    size_t next_unknown = 0;
    for (size_t i = 0; i < series.size(); ++i) {
      const SeriesRefAppend& ts = series[i];
      if (next_unknown < res.unknown_refs.size() && res.unknown_refs[next_unknown] == i) {
        ++next_unknown;
        continue;
      }
      if (i + kAhead < series.size() && !by_ref[i + kAhead]) head_->PrefetchSeries(key_at[i + kAhead].second);
      if (i + kAhead / 2 < series.size() && !by_ref[i + kAhead / 2]) head_->PrefetchKey(key_at[i + kAhead / 2].second);
      const uint64_t n = ts.samples.size() + ts.exemplars.size();
      MemSeries* s = by_ref[i];
      if (!s) {
        std::string_view key = std::string_view(keys).substr(key_at[i].first, key_at[i + 1].first - key_at[i].first);
        s = head_->Find(key, key_at[i].second);
      }
      if (!s) {
        // Only new series are checked: what is in the head passed already.
        LabelProblem problem = CheckSeriesLabels(*ts.labels, options_.label_limits);
        if (problem != LabelProblem::kNone) {
          if (n) res.rejected[std::string(LabelProblemName(problem))] += n;
          continue;
        }
        if (n == 0) continue;
        if (options_.max_series && head_->num_series() >= options_.max_series) {
          res.rejected["series_limit"] += n;
          continue;
        }
        if (options_.max_series_per_metric &&
            head_->series_of_metric(ts.labels->MetricName()) >= options_.max_series_per_metric) {
          res.rejected["series_per_metric_limit"] += n;
          continue;
        }
        s = head_->Create(next_ref_++, *ts.labels);
        res.series_created++;
        batch.series.push_back(WalSeries{s->ref, s->labels});
      } else if (!s->durable) {
        batch.series.push_back(WalSeries{s->ref, s->labels});
      }
      if (!refs_out.empty()) refs_out[i] = s->ref;
      for (const Sample& x : ts.samples) {
        uint64_t bits = std::bit_cast<uint64_t>(x.v);
        const char* reason = nullptr;
        if ((x.t < min_valid_time_ && !options_.backfill) || x.t < kMinSampleTime) {
          reason = "out_of_bounds";
        } else if (max_future_t != INT64_MAX && x.t > max_future_t) {
          reason = "too_far_in_future";
        } else if (x.t > s->pending_t) {
          s->pending_t = x.t;
          s->pending_bits = bits;
        } else if (x.t == s->pending_t) {
          reason = bits == s->pending_bits ? "duplicate" : "duplicate_timestamp";
        } else if (window > 0 && x.t >= s->pending_t - window) {
          uint64_t old;
          if (head_->Lookup(s, x.t, &old)) reason = old == bits ? "duplicate" : "duplicate_timestamp";
        } else {
          reason = "out_of_order";
        }
        if (reason) {
          res.rejected[reason]++;
          continue;
        }
        batch.samples.push_back(WalSample{s->ref, x.t, bits});
        pending.push_back(Pending{s, x.t, bits});
      }
      for (const Exemplar& e : ts.exemplars) {
        if (!ValidExemplar(e)) {
          res.rejected["invalid_exemplar"]++;
          continue;
        }
        batch.exemplars.push_back(WalExemplar{s->ref, e});
        exemplars.emplace_back(s->ref, e);
      }
    }
    for (const MetricMetadata& m : metadata) {
      if (m.family.empty() || !IsValidMetricName(m.family)) {
        res.rejected["invalid_metadata"]++;
        continue;
      }
      auto it = metadata_.find(m.family);
      if (it != metadata_.end() && it->second == m) continue;
      batch.metadata.push_back(m);
    }
  }
  Status written;
  if (!batch.empty()) {
    std::string record;
    EncodeWalBatch(batch, &record);
    written = wal_->Append(record);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!written.ok()) {
    if (failed_.ok()) failed_ = written;
    return written;
  }
  for (const WalSeries& ws : batch.series) {
    if (MemSeries* s = head_->FindRef(ws.ref)) s->durable = true;
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    if (i + 8 < pending.size()) {
      __builtin_prefetch(pending[i + 8].s);
      __builtin_prefetch(reinterpret_cast<const char*>(pending[i + 8].s) + 64);
      __builtin_prefetch(reinterpret_cast<const char*>(pending[i + 8].s) + 128);
    }
    const Pending& p = pending[i];
    auto r = head_->Insert(p.s, p.t, p.bits);
    if (!r.ok()) {
      res.rejected["internal_error"]++;
    } else if (*r == InsertResult::kInserted) {
      res.samples_appended++;
    } else {
      res.rejected[*r == InsertResult::kDuplicate ? "duplicate" : "duplicate_timestamp"]++;
    }
  }
  for (auto& [ref, e] : exemplars) AddExemplar(ref, std::move(e));
  res.exemplars_appended = exemplars.size();
  for (MetricMetadata& m : batch.metadata) metadata_[m.family] = std::move(m);
  stats_.samples_appended += res.samples_appended;
  stats_.exemplars_appended += res.exemplars_appended;
  stats_.series_created += res.series_created;
  for (const auto& [k, v] : res.rejected) stats_.rejected[k] += v;
  uint64_t nanos = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
  stats_.append_calls++;
  stats_.append_nanos += nanos;
  stats_.max_append_nanos = std::max(stats_.max_append_nanos, nanos);
  return res;
}

// ---- blocks

Status MetricsStore::PersistRange(int64_t mint, int64_t maxt) {
  struct Snap {
    Labels labels;
    std::vector<std::string> chunks;
  };
  std::vector<Snap> snap;
  {
    std::unique_lock<WriterPreferringMutex> gate(append_gate_);
    std::lock_guard<std::mutex> lock(mu_);
    TELKIT_RETURN_IF_ERROR(CheckOpen());
    min_valid_time_ = std::max(min_valid_time_, maxt);
    for (MemSeries* s : head_->All()) {
      Snap x;
      for (const HeadChunk& c : s->chunks) {
        if (c.maxt >= mint && c.mint < maxt) x.chunks.push_back(c.bytes);
      }
      if (s->open.num_samples() > 0 && s->open.last_timestamp() >= mint && s->open.first_timestamp() < maxt) {
        x.chunks.push_back(s->open.Bytes());
      }
      if (x.chunks.empty()) continue;
      x.labels = s->labels;
      snap.push_back(std::move(x));
    }
  }
  if (!snap.empty()) {
    BlockBuilder builder;
    std::vector<std::pair<size_t, std::vector<ChunkRef>>> refs;
    for (size_t i = 0; i < snap.size(); ++i) {
      std::vector<Sample> samples;
      for (const std::string& c : snap[i].chunks) {
        TELKIT_ASSIGN_OR_RETURN(auto part, DecodeInRange(c, mint, maxt - 1));
        samples = MergeSamples(std::move(samples), std::move(part));
      }
      snap[i].chunks.clear();
      if (samples.empty()) continue;
      TELKIT_ASSIGN_OR_RETURN(auto r, builder.AddSeries(samples));
      refs.emplace_back(i, std::move(r));
    }
    BlockMeta meta;
    meta.mint = mint;
    meta.maxt = maxt;
    meta.level = 1;
    meta.series = refs.size();
    TELKIT_RETURN_IF_ERROR(CommitBlock(&meta, builder, [&](TsdbIndex* index, const BlockMeta& block) -> Status {
      for (auto& [i, chunk_refs] : refs) {
        TELKIT_ASSIGN_OR_RETURN(int64_t series_id, index->SeriesId(snap[i].labels));
        for (const ChunkRef& r : chunk_refs) TELKIT_RETURN_IF_ERROR(index->AddChunk(block, series_id, r));
      }
      return OkStatus();
    }, {}));
  }
  {
    std::unique_lock<WriterPreferringMutex> gate(append_gate_);
    std::lock_guard<std::mutex> lock(mu_);
    TELKIT_ASSIGN_OR_RETURN(size_t removed, head_->TruncateBefore(maxt));
    stats_.series_removed += removed;
  }
  return Checkpoint();
}

Status MetricsStore::CommitBlock(BlockMeta* meta, const BlockBuilder& builder,
                                 const std::function<Status(TsdbIndex*, const BlockMeta&)>& add_chunks,
                                 const std::vector<uint64_t>& replaces) {
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    meta->id = next_block_id_++;
  }
  std::string blocks_dir = JoinPath(dir_, "blocks");
  TELKIT_RETURN_IF_ERROR(WriteBlockDir(fs_, blocks_dir, meta, builder));
  std::vector<MetricMetadata> metadata;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, m] : metadata_) metadata.push_back(m);
  }
  std::lock_guard<std::mutex> lock(index_mu_);
  TELKIT_RETURN_IF_ERROR(index_->Begin());
  Status s = add_chunks(index_.get(), *meta);
  if (s.ok()) s = index_->AddBlock(*meta);
  for (const MetricMetadata& m : metadata) {
    if (s.ok()) s = index_->PutMetadata(m);
  }
  for (uint64_t old : replaces) {
    if (s.ok()) s = index_->RemoveBlock(old);
  }
  if (s.ok()) s = index_->Commit();
  if (!s.ok()) {
    (void)index_->Rollback();
    return s;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    stats_.blocks_written++;
    stats_.blocks += 1;
    stats_.block_bytes += meta->bytes;
  }
  // The old blocks are out of the catalogue; their files go now (or, after
  // a crash, at the next Open).
  for (uint64_t old : replaces) TELKIT_RETURN_IF_ERROR(RemoveBlockFiles(old));
  return OkStatus();
}

// REQUIRES: index_mu_ held, the block no longer in the catalogue.
Status MetricsStore::RemoveBlockFiles(uint64_t id) {
  blocks_->Forget(id);
  std::string blocks_dir = JoinPath(dir_, "blocks");
  TELKIT_RETURN_IF_ERROR(RemoveTree(fs_, JoinPath(blocks_dir, BlockDirName(id))));
  return fs_->SyncDir(blocks_dir);
}

Status MetricsStore::Checkpoint() {
  std::string data;
  uint32_t segment;
  {
    std::unique_lock<WriterPreferringMutex> gate(append_gate_);
    std::lock_guard<std::mutex> lock(mu_);
    TELKIT_RETURN_IF_ERROR(CheckOpen());
    auto cut = wal_->CutSegment();
    if (!cut.ok()) {
      failed_ = cut.status();
      return failed_;
    }
    segment = *cut;
    WalBatch batch;
    std::vector<MemSeries*> all = head_->All();
    for (size_t i = 0; i < all.size(); i += kCheckpointSeriesPerRecord) {
      batch.clear();
      for (size_t j = i; j < std::min(all.size(), i + kCheckpointSeriesPerRecord); ++j) {
        MemSeries* s = all[j];
        batch.series.push_back(WalSeries{s->ref, s->labels});
        for (std::string& c : head_->ChunkBytes(s)) batch.chunks.push_back(WalChunk{s->ref, std::move(c)});
      }
      AppendCheckpointRecord(&data, batch);
    }
    batch.clear();
    for (const auto& [k, m] : metadata_) batch.metadata.push_back(m);
    for (const auto& [ref, e] : exemplars_) {
      if (head_->FindRef(ref)) batch.exemplars.push_back(WalExemplar{ref, e});
    }
    if (!batch.empty()) AppendCheckpointRecord(&data, batch);
  }
  std::string wal_dir = JoinPath(dir_, "wal");
  TELKIT_RETURN_IF_ERROR(WriteFileDurably(fs_, JoinPath(wal_dir, CheckpointName(segment)), data));
  TELKIT_RETURN_IF_ERROR(wal_->RemoveSegmentsBefore(segment));
  TELKIT_ASSIGN_OR_RETURN(auto names, fs_->ListDir(wal_dir));
  bool removed = false;
  for (const std::string& n : names) {
    uint32_t seg;
    if (ParseCheckpointName(n, &seg) && seg < segment) {
      TELKIT_RETURN_IF_ERROR(fs_->RemoveFile(JoinPath(wal_dir, n)));
      removed = true;
    }
  }
  if (removed) TELKIT_RETURN_IF_ERROR(fs_->SyncDir(wal_dir));
  std::lock_guard<std::mutex> lock(mu_);
  stats_.wal_truncations++;
  return OkStatus();
}

Status MetricsStore::CutBlocksIfDue() {
  const int64_t range = options_.block_range_ms;
  for (;;) {
    int64_t mint, maxt;
    {
      std::lock_guard<std::mutex> lock(mu_);
      TELKIT_RETURN_IF_ERROR(CheckOpen());
      mint = head_->mint();
      maxt = head_->maxt();
    }
    if (mint == INT64_MAX || maxt == INT64_MIN) return OkStatus();
    int64_t start = FloorTo(mint, range);
    // Overflow-safe: maxt - start > 1.5 range.
    if (maxt - start <= range + range / 2) return OkStatus();
    TELKIT_RETURN_IF_ERROR(PersistRange(start, start + range));
  }
}

Status MetricsStore::FlushHead() {
  std::lock_guard<std::mutex> persist(persist_mu_);
  const int64_t range = options_.block_range_ms;
  for (;;) {
    int64_t mint, maxt;
    {
      std::lock_guard<std::mutex> lock(mu_);
      TELKIT_RETURN_IF_ERROR(CheckOpen());
      mint = head_->mint();
      maxt = head_->maxt();
    }
    if (mint == INT64_MAX || maxt == INT64_MIN) return OkStatus();
    int64_t start = FloorTo(mint, range);
    int64_t end = start + range;
    if (maxt < end) end = maxt + 1;  // the last, partial range: later samples stay valid
    TELKIT_RETURN_IF_ERROR(PersistRange(start, end));
  }
}

Status MetricsStore::Compact() {
  std::lock_guard<std::mutex> persist(persist_mu_);
  Status s = CutBlocksIfDue();
  if (s.ok()) s = CompactBlocks();
  if (s.ok()) s = ApplyRetention();
  std::lock_guard<std::mutex> lock(mu_);
  if (!s.ok()) stats_.compaction_failures++;
  return s;
}

Status MetricsStore::CompactBlocks() {
  // Ranges R, 3R, 9R, ... up to retention / 10 (Prometheus' exponential
  // block ranges). A window of range r is compacted once no more samples
  // can enter it (it ends at or before min_valid_time_) and it holds more
  // than one block, all inside it.
  // Blocks whose time ranges overlap (a backfill wrote a block older than
  // the newest, or inside its range) are merged first, into one block
  // over their union; reads merge overlapping blocks sample by sample
  // until then.
  {
    std::vector<BlockMeta> metas;
    {
      std::lock_guard<std::mutex> lock(index_mu_);
      TELKIT_ASSIGN_OR_RETURN(metas, index_->Blocks());
    }
    std::sort(metas.begin(), metas.end(), [](const BlockMeta& a, const BlockMeta& b) { return a.mint < b.mint; });
    std::vector<std::vector<BlockMeta>> groups;
    int64_t group_maxt = INT64_MIN;
    for (const BlockMeta& m : metas) {
      if (groups.empty() || m.mint >= group_maxt) {  // [mint, maxt): touching is not overlapping
        groups.push_back({m});
        group_maxt = m.maxt;
      } else {
        groups.back().push_back(m);
        group_maxt = std::max(group_maxt, m.maxt);
      }
    }
    for (const auto& group : groups) {
      if (group.size() < 2) continue;
      int64_t mint = group.front().mint, maxt = group.front().maxt;
      for (const BlockMeta& m : group) maxt = std::max(maxt, m.maxt);
      TELKIT_RETURN_IF_ERROR(MergeBlocks(group, mint, maxt));
      std::lock_guard<std::mutex> lock(mu_);
      stats_.compactions++;
      stats_.overlapping_compactions++;
    }
  }
  int64_t limit = std::max(options_.block_range_ms, options_.retention_ms / 10);
  for (int64_t r = options_.block_range_ms * 3; r > 0 && r <= limit; r *= 3) {
    std::vector<BlockMeta> metas;
    {
      std::lock_guard<std::mutex> lock(index_mu_);
      TELKIT_ASSIGN_OR_RETURN(metas, index_->Blocks());
    }
    int64_t valid;
    {
      std::lock_guard<std::mutex> lock(mu_);
      valid = min_valid_time_;
    }
    std::map<int64_t, std::vector<BlockMeta>> windows;
    for (const BlockMeta& m : metas) windows[FloorTo(m.mint, r)].push_back(m);
    for (auto& [start, group] : windows) {
      if (group.size() < 2 || start + r > valid) continue;
      bool inside = std::all_of(group.begin(), group.end(), [&](const BlockMeta& m) { return m.maxt <= start + r; });
      if (!inside) continue;
      TELKIT_RETURN_IF_ERROR(MergeBlocks(group, start, start + r));
      std::lock_guard<std::mutex> lock(mu_);
      stats_.compactions++;
    }
  }
  return OkStatus();
}

Status MetricsStore::MergeBlocks(const std::vector<BlockMeta>& group, int64_t mint, int64_t maxt) {
  // series id -> (block, chunk) of every block in the group, series by series.
  std::map<int64_t, std::vector<std::pair<uint64_t, ChunkRef>>> chunks;
  std::map<int64_t, Labels> labels;
  int level = 1;
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    for (const BlockMeta& m : group) {
      level = std::max(level, m.level + 1);
      TELKIT_ASSIGN_OR_RETURN(auto rows, index_->BlockChunks(m.id));
      for (auto& [series, ref] : rows) chunks[series].emplace_back(m.id, ref);
    }
    for (auto& [series, list] : chunks) {
      TELKIT_ASSIGN_OR_RETURN(labels[series], index_->SeriesLabels(series));
    }
  }
  BlockBuilder builder;
  std::vector<std::pair<int64_t, std::vector<ChunkRef>>> refs;
  for (auto& [series, list] : chunks) {
    std::vector<Sample> samples;
    for (const auto& [block, ref] : list) {
      TELKIT_ASSIGN_OR_RETURN(std::string bytes, blocks_->ReadChunk(block, ref));
      TELKIT_ASSIGN_OR_RETURN(auto part, DecodeChunk(bytes));
      samples = MergeSamples(std::move(samples), std::move(part));
    }
    TELKIT_ASSIGN_OR_RETURN(auto r, builder.AddSeries(samples));
    refs.emplace_back(series, std::move(r));
  }
  BlockMeta meta;
  meta.mint = std::min(mint, group.front().mint);
  meta.maxt = std::max(maxt, group.back().maxt);
  meta.mint = group.front().mint;
  meta.maxt = group.front().maxt;
  for (const BlockMeta& m : group) {
    meta.mint = std::min(meta.mint, m.mint);
    meta.maxt = std::max(meta.maxt, m.maxt);
  }
  meta.level = level;
  meta.series = refs.size();
  std::vector<uint64_t> old;
  for (const BlockMeta& m : group) old.push_back(m.id);
  TELKIT_RETURN_IF_ERROR(CommitBlock(&meta, builder, [&](TsdbIndex* index, const BlockMeta& block) -> Status {
    for (auto& [series, chunk_refs] : refs) {
      for (const ChunkRef& r : chunk_refs) TELKIT_RETURN_IF_ERROR(index->AddChunk(block, series, r));
    }
    return OkStatus();
  }, old));
  std::lock_guard<std::mutex> lock(mu_);
  for (const BlockMeta& m : group) {
    stats_.blocks -= 1;
    stats_.block_bytes -= m.bytes;
  }
  return OkStatus();
}

Status MetricsStore::ApplyRetention() {
  std::lock_guard<std::mutex> lock(index_mu_);
  TELKIT_ASSIGN_OR_RETURN(auto metas, index_->Blocks());
  if (metas.empty()) return OkStatus();
  int64_t newest = INT64_MIN;
  uint64_t total = 0;
  for (const BlockMeta& m : metas) {
    newest = std::max(newest, m.maxt);
    total += m.bytes;
  }
  std::vector<BlockMeta> remove;
  for (const BlockMeta& m : metas) {  // oldest first
    bool too_old = options_.retention_ms > 0 && m.maxt <= newest - options_.retention_ms;
    bool too_big = options_.retention_bytes > 0 && total > options_.retention_bytes;
    if (!too_old && !too_big) continue;
    remove.push_back(m);
    total -= m.bytes;
  }
  for (const BlockMeta& m : remove) {
    TELKIT_RETURN_IF_ERROR(index_->Begin());
    Status s = index_->RemoveBlock(m.id);
    if (s.ok()) s = index_->Commit();
    if (!s.ok()) {
      (void)index_->Rollback();
      return s;
    }
    TELKIT_RETURN_IF_ERROR(RemoveBlockFiles(m.id));
    std::lock_guard<std::mutex> l(mu_);
    stats_.retention_removed_blocks++;
    stats_.blocks -= 1;
    stats_.block_bytes -= m.bytes;
  }
  return OkStatus();
}

void MetricsStore::BackgroundLoop() {
  std::unique_lock<std::mutex> lock(bg_mu_);
  while (!stopping_) {
    bg_cv_.wait_for(lock, std::chrono::milliseconds(options_.background_interval_ms));
    if (stopping_) break;
    lock.unlock();
    (void)Compact();  // counted in compaction_failures; the next pass retries
    lock.lock();
  }
}

Status MetricsStore::Snapshot(const std::string& dir) {
  TELKIT_RETURN_IF_ERROR(FlushHead());
  if (fs_->Stat(dir).ok()) return FailedPreconditionError("snapshot '" + dir + "' already exists");
  std::lock_guard<std::mutex> persist(persist_mu_);
  std::lock_guard<std::mutex> lock(index_mu_);
  TELKIT_RETURN_IF_ERROR(fs_->CreateDir(dir));
  std::string blocks = JoinPath(dir, "blocks");
  TELKIT_RETURN_IF_ERROR(fs_->CreateDir(blocks));
  TELKIT_ASSIGN_OR_RETURN(auto metas, index_->Blocks());
  for (const BlockMeta& m : metas) {
    std::string from = JoinPath(JoinPath(dir_, "blocks"), BlockDirName(m.id));
    std::string to = JoinPath(blocks, BlockDirName(m.id));
    TELKIT_RETURN_IF_ERROR(fs_->CreateDir(to));
    for (const char* name : {"chunks", "meta.json"}) {
      TELKIT_ASSIGN_OR_RETURN(std::string data, ReadFileToString(fs_, JoinPath(from, name)));
      TELKIT_ASSIGN_OR_RETURN(auto f, fs_->NewWritableFile(JoinPath(to, name)));
      TELKIT_RETURN_IF_ERROR(f->Append(data));
      TELKIT_RETURN_IF_ERROR(f->Sync());
      TELKIT_RETURN_IF_ERROR(f->Close());
    }
    TELKIT_RETURN_IF_ERROR(fs_->SyncDir(to));
  }
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(blocks));
  TELKIT_RETURN_IF_ERROR(fs_->CreateDir(JoinPath(dir, "wal")));
  TELKIT_RETURN_IF_ERROR(fs_->SyncDir(dir));
  if (fs_ == DefaultFileSystem()) TELKIT_RETURN_IF_ERROR(index_->CopyTo(JoinPath(dir, "index.db")));
  return OkStatus();
}

MetricsStoreStats MetricsStore::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  MetricsStoreStats s = stats_;
  s.head_series = head_->num_series();
  s.head_chunks = head_->num_chunks();
  s.head_chunk_bytes = head_->chunk_bytes();
  s.head_mint = head_->mint();
  s.head_maxt = head_->maxt();
  s.min_valid_time = min_valid_time_;
  if (wal_) {
    WalStats w = wal_->stats();
    s.wal_bytes = w.bytes;
    s.wal_records = w.records;
    s.wal_commits = w.commits;
    s.wal_syncs = w.syncs;
    s.wal_fsync_nanos = w.commit_sync_nanos;
    s.wal_fsync_max_nanos = w.max_commit_sync_nanos;
  }
  return s;
}

Status MetricsStore::Close() {
  {
    std::lock_guard<std::mutex> lock(bg_mu_);
    stopping_ = true;
  }
  bg_cv_.notify_all();
  if (bg_.joinable()) bg_.join();
  // Lock order everywhere: persist_mu_, append_gate_, index_mu_, mu_.
  std::lock_guard<std::mutex> persist(persist_mu_);
  std::unique_lock<WriterPreferringMutex> gate(append_gate_);
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return OkStatus();
  closed_ = true;
  return wal_ ? wal_->Close() : OkStatus();
}

// ---- reads

Result<std::vector<SeriesSamples>> MetricsStore::Select(int64_t mint, int64_t maxt,
                                                       std::span<const LabelMatcher> matchers) {
  // The head first, then the blocks: a block cut in between has its
  // samples in both (merged) rather than in neither (the head is truncated
  // only after the block is committed).
  std::map<Labels, std::vector<Sample>> merged;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (MemSeries* s : head_->Match(matchers)) {
      TELKIT_ASSIGN_OR_RETURN(auto samples, head_->Samples(s, mint, maxt));
      if (samples.empty()) continue;
      merged[s->labels] = std::move(samples);
    }
  }
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    // A reader's index may change under it (another process): one read
    // transaction, so the catalogue and the chunk rows agree.
    if (options_.read_only) TELKIT_RETURN_IF_ERROR(index_->BeginRead());
    Status s = ReadBlockSeries(index_.get(), blocks_.get(), mint, maxt, matchers, &merged);
    if (options_.read_only) (void)index_->Commit();
    TELKIT_RETURN_IF_ERROR(s);
  }
  std::vector<SeriesSamples> out;
  out.reserve(merged.size());
  while (!merged.empty()) {
    auto node = merged.extract(merged.begin());
    out.push_back(SeriesSamples{std::move(node.key()), std::move(node.mapped())});
  }
  return out;
}

Status MetricsStore::HeadLabelSets(int64_t mint, int64_t maxt, std::span<const LabelMatcher> matchers,
                                   std::set<Labels>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  for (MemSeries* s : head_->Match(matchers)) {
    bool any = s->open.num_samples() > 0 && s->open.last_timestamp() >= mint && s->open.first_timestamp() <= maxt;
    for (const HeadChunk& c : s->chunks) any = any || (c.maxt >= mint && c.mint <= maxt);
    if (any) out->insert(s->labels);
  }
  return OkStatus();
}

Result<std::vector<std::string>> MetricsStore::LabelNames(int64_t mint, int64_t maxt,
                                                         std::span<const LabelMatcher> matchers) {
  std::set<Labels> sets;
  TELKIT_RETURN_IF_ERROR(HeadLabelSets(mint, maxt, matchers, &sets));  // head first, as in Select
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    TELKIT_RETURN_IF_ERROR(BlockLabelSets(index_.get(), mint, maxt, matchers, &sets));
  }
  return Names(sets);
}

Result<std::vector<std::string>> MetricsStore::LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                                          std::span<const LabelMatcher> matchers) {
  std::set<Labels> sets;
  TELKIT_RETURN_IF_ERROR(HeadLabelSets(mint, maxt, matchers, &sets));  // head first, as in Select
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    TELKIT_RETURN_IF_ERROR(BlockLabelSets(index_.get(), mint, maxt, matchers, &sets));
  }
  return Values(sets, name);
}

Result<std::vector<MetricMetadata>> MetricsStore::Metadata(std::string_view family) {
  std::map<std::string, MetricMetadata> all;
  {
    std::lock_guard<std::mutex> lock(index_mu_);
    TELKIT_ASSIGN_OR_RETURN(auto stored, index_->Metadata(family));
    for (auto& m : stored) all[m.family] = std::move(m);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [k, m] : metadata_) {
    if (family.empty() || k == family) all[k] = m;
  }
  std::vector<MetricMetadata> out;
  for (auto& [k, m] : all) out.push_back(std::move(m));
  return out;
}

Result<std::vector<std::pair<Labels, Exemplar>>> MetricsStore::Exemplars(int64_t mint, int64_t maxt,
                                                                        std::span<const LabelMatcher> matchers) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<Labels, Exemplar>> out;
  for (const auto& [ref, e] : exemplars_) {
    if (e.t < mint || e.t > maxt) continue;
    MemSeries* s = head_->FindRef(ref);
    if (s && MatchesAll(s->labels, matchers)) out.emplace_back(s->labels, e);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second.t < b.second.t;
  });
  return out;
}

Result<std::vector<SeriesExemplars>> MetricsStore::SeriesExemplarLists(int64_t mint, int64_t maxt,
                                                                       std::span<const LabelMatcher> matchers) {
  TELKIT_ASSIGN_OR_RETURN(auto flat, Exemplars(mint, maxt, matchers));
  std::vector<SeriesExemplars> out;
  for (auto& [labels, e] : flat) {  // sorted by labels, then time
    if (out.empty() || out.back().labels != labels) out.push_back(SeriesExemplars{std::move(labels), {}});
    out.back().exemplars.push_back(std::move(e));
  }
  return out;
}

// ---- BlockQuerier

BlockQuerier::~BlockQuerier() = default;

Result<std::unique_ptr<BlockQuerier>> BlockQuerier::Open(FileSystem* fs, std::string dir) {
  std::unique_ptr<BlockQuerier> q(new BlockQuerier());
  std::string path = JoinPath(dir, "index.db");
  if (!fs->Stat(path).ok()) return NotFoundError("open block querier: no index '" + path + "'");
  TELKIT_ASSIGN_OR_RETURN(q->index_, TsdbIndex::Open(path, true));
  q->blocks_ = std::make_unique<BlockSet>(fs, JoinPath(dir, "blocks"), kReaderChunkCacheBytes);
  return q;
}

Result<std::vector<SeriesSamples>> BlockQuerier::Select(int64_t mint, int64_t maxt,
                                                       std::span<const LabelMatcher> matchers) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<Labels, std::vector<Sample>> merged;
  // One read transaction, so the catalogue and the chunk rows agree.
  TELKIT_RETURN_IF_ERROR(index_->BeginRead());
  Status s = ReadBlockSeries(index_.get(), blocks_.get(), mint, maxt, matchers, &merged);
  (void)index_->Commit();
  TELKIT_RETURN_IF_ERROR(s);
  std::vector<SeriesSamples> out;
  out.reserve(merged.size());
  while (!merged.empty()) {
    auto node = merged.extract(merged.begin());
    out.push_back(SeriesSamples{std::move(node.key()), std::move(node.mapped())});
  }
  return out;
}

Result<std::vector<std::string>> BlockQuerier::LabelNames(int64_t mint, int64_t maxt,
                                                         std::span<const LabelMatcher> matchers) {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<Labels> sets;
  TELKIT_RETURN_IF_ERROR(BlockLabelSets(index_.get(), mint, maxt, matchers, &sets));
  return Names(sets);
}

Result<std::vector<std::string>> BlockQuerier::LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                                          std::span<const LabelMatcher> matchers) {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<Labels> sets;
  TELKIT_RETURN_IF_ERROR(BlockLabelSets(index_.get(), mint, maxt, matchers, &sets));
  return Values(sets, name);
}

Result<std::vector<MetricMetadata>> BlockQuerier::Metadata(std::string_view family) {
  std::lock_guard<std::mutex> lock(mu_);
  return index_->Metadata(family);
}

}  // namespace telkit
