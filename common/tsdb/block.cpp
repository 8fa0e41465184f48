#include "common/tsdb/block.h"

#include <algorithm>
#include <cstdio>

#include "common/base/crc32c.h"
#include "common/tsdb/byte_codec.h"
#include "common/tsdb/chunk.h"

namespace telkit {
namespace {

struct ChunkParts {
  uint8_t encoding = 0;
  uint64_t count = 0;
  std::string_view ts;
  std::string_view values;
};

bool SplitChunk(std::string_view chunk, ChunkParts* p) {
  ByteReader r(chunk);
  uint64_t ts_len;
  if (!r.Byte(&p->encoding) || !r.Uvarint(&p->count) || !r.Uvarint(&ts_len) || ts_len > r.remaining()) return false;
  r.Bytes(static_cast<size_t>(ts_len), &p->ts);
  p->values = r.rest();
  return true;
}

// Reads the record at `offset`: its type and payload. DATA_LOSS when bad.
Status ReadRecord(const ReadableFile& file, uint64_t offset, uint32_t length_hint, uint8_t* type, std::string* payload) {
  auto truncated = [&] { return DataLossError("truncated block record at offset " + std::to_string(offset)); };
  std::string buf(std::max<uint32_t>(length_hint, 16), '\0');
  TELKIT_ASSIGN_OR_RETURN(size_t n, file.ReadAt(offset, std::span<char>(buf.data(), buf.size())));
  buf.resize(n);
  ByteReader r(buf);
  uint64_t len;
  if (!r.Byte(type) || !r.Uvarint(&len)) return truncated();
  if (len > kMaxBlockRecordBytes) return DataLossError("block record too long at offset " + std::to_string(offset));
  size_t header = buf.size() - r.remaining();
  size_t total = header + static_cast<size_t>(len) + 4;
  if (buf.size() < total) {
    buf.assign(total, '\0');
    TELKIT_ASSIGN_OR_RETURN(size_t m, file.ReadAt(offset, std::span<char>(buf.data(), buf.size())));
    if (m < total) return truncated();
  }
  uint32_t crc = LoadFixed32(buf.data() + header + len);
  if (Crc32c(buf.data(), header + len) != crc) {
    return DataLossError("block record checksum mismatch at offset " + std::to_string(offset));
  }
  payload->assign(buf.data() + header, static_cast<size_t>(len));
  return OkStatus();
}

}  // namespace

std::string BlockDirName(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

bool ParseBlockDirName(std::string_view name, uint64_t* id) {
  if (name.size() != 16) return false;
  uint64_t v = 0;
  for (char c : name) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *id = v;
  return true;
}

BlockBuilder::BlockBuilder() {
  out_.append(reinterpret_cast<const char*>(kBlockChunksMagic.data()), kBlockChunksMagic.size());
  out_.push_back(static_cast<char>(kBlockVersion & 0xff));
  out_.push_back(static_cast<char>(kBlockVersion >> 8));
  out_.append(6, '\0');  // flags u16, reserved u32
}

uint64_t BlockBuilder::AddRecord(BlockRecordType type, std::string_view payload) {
  uint64_t offset = out_.size();
  out_.push_back(static_cast<char>(type));
  PutUvarint64(&out_, payload.size());
  out_.append(payload);
  PutFixed32(&out_, Crc32c(out_.data() + offset, out_.size() - offset));
  return offset;
}

Result<std::vector<ChunkRef>> BlockBuilder::AddSeries(std::span<const Sample> samples) {
  std::vector<ChunkRef> refs;
  for (size_t i = 1; i < samples.size(); ++i) {
    if (samples[i].t <= samples[i - 1].t) return InvalidArgumentError("block series samples not sorted");
  }
  std::string key, payload;
  for (size_t begin = 0; begin < samples.size(); begin += kMaxChunkSamples) {
    auto part = samples.subspan(begin, std::min<size_t>(kMaxChunkSamples, samples.size() - begin));
    TELKIT_ASSIGN_OR_RETURN(std::string chunk, EncodeChunk(part, ChunkChoice::kSmallest));
    ChunkParts p;
    if (!SplitChunk(chunk, &p)) return InternalError("cannot split an encoded chunk");
    key.clear();
    key.push_back(static_cast<char>(p.encoding >> 4));
    PutUvarint64(&key, p.count);
    key.append(p.ts);
    auto it = ts_columns_.find(key);
    uint64_t ts_offset;
    if (it == ts_columns_.end()) {
      ts_offset = AddRecord(BlockRecordType::kTimestamps, key);
      ts_columns_.emplace(key, ts_offset);
    } else {
      ts_offset = it->second;
    }
    payload.clear();
    payload.push_back(static_cast<char>(p.encoding));
    PutUvarint64(&payload, ts_offset);
    payload.append(p.values);
    ChunkRef ref;
    ref.offset = AddRecord(BlockRecordType::kChunk, payload);
    ref.length = static_cast<uint32_t>(out_.size() - ref.offset);
    ref.mint = part.front().t;
    ref.maxt = part.back().t;
    ref.samples = static_cast<uint32_t>(part.size());
    refs.push_back(ref);
    ++chunks_;
    samples_ += part.size();
  }
  return refs;
}

Status WriteBlockDir(FileSystem* fs, const std::string& blocks_dir, BlockMeta* meta, const BlockBuilder& builder) {
  std::string name = BlockDirName(meta->id);
  std::string tmp = JoinPath(blocks_dir, name + ".tmp");
  std::string final_dir = JoinPath(blocks_dir, name);
  meta->chunks = builder.chunks();
  meta->samples = builder.samples();
  meta->timestamp_columns = builder.timestamp_columns();
  meta->bytes = builder.bytes().size();
  TELKIT_RETURN_IF_ERROR(fs->CreateDir(tmp));
  {
    TELKIT_ASSIGN_OR_RETURN(auto f, fs->NewWritableFile(JoinPath(tmp, "chunks")));
    TELKIT_RETURN_IF_ERROR(f->Append(builder.bytes()));
    TELKIT_RETURN_IF_ERROR(f->Sync());
    TELKIT_RETURN_IF_ERROR(f->Close());
  }
  char json[512];
  std::snprintf(json, sizeof json,
                "{\"version\":1,\"id\":\"%s\",\"mint\":%lld,\"maxt\":%lld,\"level\":%d,\"series\":%llu,"
                "\"samples\":%llu,\"chunks\":%llu,\"timestamp_columns\":%llu,\"bytes\":%llu}\n",
                name.c_str(), static_cast<long long>(meta->mint), static_cast<long long>(meta->maxt), meta->level,
                static_cast<unsigned long long>(meta->series), static_cast<unsigned long long>(meta->samples),
                static_cast<unsigned long long>(meta->chunks), static_cast<unsigned long long>(meta->timestamp_columns),
                static_cast<unsigned long long>(meta->bytes));
  {
    TELKIT_ASSIGN_OR_RETURN(auto f, fs->NewWritableFile(JoinPath(tmp, "meta.json")));
    TELKIT_RETURN_IF_ERROR(f->Append(json));
    TELKIT_RETURN_IF_ERROR(f->Sync());
    TELKIT_RETURN_IF_ERROR(f->Close());
  }
  TELKIT_RETURN_IF_ERROR(fs->SyncDir(tmp));
  TELKIT_RETURN_IF_ERROR(fs->Rename(tmp, final_dir));
  return fs->SyncDir(blocks_dir);
}

Result<std::string> ReadBlockChunk(const ReadableFile& file, uint64_t offset, uint32_t length) {
  uint8_t type;
  std::string payload;
  TELKIT_RETURN_IF_ERROR(ReadRecord(file, offset, length, &type, &payload));
  if (type != static_cast<uint8_t>(BlockRecordType::kChunk)) {
    return DataLossError("no chunk record at offset " + std::to_string(offset));
  }
  ByteReader r(payload);
  uint8_t encoding;
  uint64_t ts_offset;
  if (!r.Byte(&encoding) || !r.Uvarint(&ts_offset) || ts_offset >= offset) {
    return DataLossError("malformed chunk record at offset " + std::to_string(offset));
  }
  std::string values(r.rest());
  std::string ts_payload;
  TELKIT_RETURN_IF_ERROR(ReadRecord(file, ts_offset, 0, &type, &ts_payload));
  ByteReader t(ts_payload);
  uint8_t ts_encoding;
  uint64_t count;
  if (type != static_cast<uint8_t>(BlockRecordType::kTimestamps) || !t.Byte(&ts_encoding) || !t.Uvarint(&count) ||
      ts_encoding != (encoding >> 4)) {
    return DataLossError("bad timestamp reference in chunk record at offset " + std::to_string(offset));
  }
  std::string chunk;
  chunk.push_back(static_cast<char>(encoding));
  PutUvarint64(&chunk, count);
  PutUvarint64(&chunk, t.remaining());
  chunk.append(t.rest());
  chunk.append(values);
  return chunk;
}

Result<std::string> BlockSet::ReadChunk(uint64_t block_id, const ChunkRef& ref) {
  std::shared_ptr<ReadableFile> file;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(block_id);
    if (it != files_.end()) file = it->second;
  }
  if (!file) {
    TELKIT_ASSIGN_OR_RETURN(auto f, fs_->NewReadableFile(JoinPath(JoinPath(dir_, BlockDirName(block_id)), "chunks")));
    file = std::shared_ptr<ReadableFile>(std::move(f));
    std::lock_guard<std::mutex> lock(mu_);
    files_.emplace(block_id, file);
  }
  return ReadBlockChunk(*file, ref.offset, ref.length);
}

Result<std::shared_ptr<const std::vector<Sample>>> BlockSet::ReadSamples(uint64_t block_id, const ChunkRef& ref) {
  const CacheKey key{block_id, ref.offset};
  if (cache_capacity_ > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->samples;
    }
  }
  TELKIT_ASSIGN_OR_RETURN(std::string bytes, ReadChunk(block_id, ref));
  auto samples = std::make_shared<std::vector<Sample>>();
  TELKIT_ASSIGN_OR_RETURN(auto it, ChunkIterator::Open(bytes));
  samples->reserve(it.info().num_samples);
  while (it.Next()) samples->push_back(Sample{it.t(), it.v()});
  TELKIT_RETURN_IF_ERROR(it.status());
  std::shared_ptr<const std::vector<Sample>> out = std::move(samples);
  const size_t size = out->size() * sizeof(Sample);
  if (cache_capacity_ > 0 && size <= cache_capacity_ / 4) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!cache_.count(key)) {
      lru_.push_front(CacheEntry{key, out});
      cache_.emplace(key, lru_.begin());
      cache_bytes_ += size;
      while (cache_bytes_ > cache_capacity_) {
        CacheEntry& last = lru_.back();
        cache_bytes_ -= last.samples->size() * sizeof(Sample);
        cache_.erase(last.key);
        lru_.pop_back();
      }
    }
  }
  return out;
}

size_t BlockSet::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_bytes_;
}

void BlockSet::Forget(uint64_t block_id) {
  std::lock_guard<std::mutex> lock(mu_);
  files_.erase(block_id);
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (it->key.block != block_id) {
      ++it;
      continue;
    }
    cache_bytes_ -= it->samples->size() * sizeof(Sample);
    cache_.erase(it->key);
    it = lru_.erase(it);
  }
}

}  // namespace telkit
