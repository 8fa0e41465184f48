#include "common/tsdb/head.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <set>

#include "common/tsdb/wal_records.h"

namespace telkit {
namespace {

double FromBits(uint64_t b) { return std::bit_cast<double>(b); }
uint64_t ToBits(double v) { return std::bit_cast<uint64_t>(v); }

// Inserts (t, v) into sorted `samples`; the InsertResult says what happened.
InsertResult InsertSorted(std::vector<Sample>* samples, int64_t t, uint64_t bits) {
  auto it = std::lower_bound(samples->begin(), samples->end(), t, [](const Sample& s, int64_t x) { return s.t < x; });
  if (it != samples->end() && it->t == t) {
    return ToBits(it->v) == bits ? InsertResult::kDuplicate : InsertResult::kConflict;
  }
  samples->insert(it, Sample{t, FromBits(bits)});
  return InsertResult::kInserted;
}

}  // namespace

size_t MemSeries::num_samples() const {
  size_t n = open.num_samples();
  for (const HeadChunk& c : chunks) {
    auto info = ReadChunkInfo(c.bytes);
    if (info.ok()) n += info->num_samples;
  }
  return n;
}

std::vector<Sample> MergeSamples(std::vector<Sample> a, std::vector<Sample> b) {
  if (b.empty()) return a;
  if (a.empty()) return b;
  std::vector<Sample> out;
  out.reserve(a.size() + b.size());
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].t <= b[j].t)) {
      if (j < b.size() && b[j].t == a[i].t) ++j;
      out.push_back(a[i++]);
    } else {
      out.push_back(b[j++]);
    }
  }
  return out;
}

int64_t Head::RangeEnd(int64_t t) const {
  int64_t q = t / block_range_;
  if (t % block_range_ < 0) --q;
  // Saturates: a range end past INT64_MAX never cuts.
  return q >= INT64_MAX / block_range_ ? INT64_MAX : (q + 1) * block_range_;
}

uint64_t HeadKeyHash(std::string_view key) { return std::hash<std::string_view>{}(key); }

MemSeries* Head::Find(const Labels& labels) const {
  std::string key;
  EncodeLabels(labels, &key);
  return Find(key, HeadKeyHash(key));
}

MemSeries* Head::Find(std::string_view key, uint64_t hash) const {
  if (slots_.empty()) return nullptr;
  size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (!slot.s) return nullptr;
    if (slot.hash == hash && slot.s->key == key) return slot.s;
  }
}

void Head::PutSlot(MemSeries* s) {
  size_t mask = slots_.size() - 1;
  size_t i = s->hash & mask;
  while (slots_[i].s) i = (i + 1) & mask;
  slots_[i] = Slot{s->hash, s};
}

void Head::RebuildSlots() {
  size_t size = 16;
  while (size < by_ref_.size() * 2 + 2) size *= 2;
  slots_.assign(size, Slot{});
  for (const auto& [ref, s] : by_ref_) PutSlot(s.get());
}

MemSeries* Head::FindRef(uint64_t ref) const {
  auto it = by_ref_.find(ref);
  return it == by_ref_.end() ? nullptr : it->second.get();
}

size_t Head::series_of_metric(std::string_view metric) const {
  auto it = per_metric_.find(std::string(metric));
  return it == per_metric_.end() ? 0 : it->second;
}

MemSeries* Head::Create(uint64_t ref, Labels labels) {
  auto s = std::make_unique<MemSeries>();
  s->ref = ref;
  s->labels = std::move(labels);
  EncodeLabels(s->labels, &s->key);
  s->hash = HeadKeyHash(s->key);
  MemSeries* p = s.get();
  by_ref_.emplace(ref, std::move(s));
  if (slots_.size() < by_ref_.size() * 2 + 2) {
    RebuildSlots();
  } else {
    PutSlot(p);
  }
  per_metric_[std::string(p->labels.MetricName())]++;
  AddPostings(p);
  return p;
}

void Head::AddPostings(const MemSeries* s) {
  for (const Label& l : s->labels) {
    auto& refs = postings_[l.name][l.value];
    refs.insert(std::upper_bound(refs.begin(), refs.end(), s->ref), s->ref);
  }
}

void Head::Cut(MemSeries* s) {
  if (s->open.num_samples() == 0) return;
  s->chunks.push_back(HeadChunk{s->open.first_timestamp(), s->open.last_timestamp(), s->open.Bytes()});
  s->open = ChunkAppender();
}

Result<InsertResult> Head::Insert(MemSeries* s, int64_t t, uint64_t bits) {
  if (s->open.num_samples() == 0 && s->chunks.empty()) {
    TELKIT_RETURN_IF_ERROR(s->open.Append(t, FromBits(bits)));
  } else if (t > s->last_t) {
    if (s->open.num_samples() >= kHeadChunkSamples ||
        (s->open.num_samples() > 0 && t >= s->open_range_end)) {
      Cut(s);
    }
    TELKIT_RETURN_IF_ERROR(s->open.Append(t, FromBits(bits)));
  } else {
    // Out of order: re-encode the chunk it belongs in.
    size_t i = 0;
    while (i < s->chunks.size() && s->chunks[i].maxt < t) ++i;
    if (i < s->chunks.size()) {
      HeadChunk& c = s->chunks[i];
      TELKIT_ASSIGN_OR_RETURN(auto samples, DecodeChunk(c.bytes));
      InsertResult r = InsertSorted(&samples, t, bits);
      if (r != InsertResult::kInserted) return r;
      if (samples.size() > 2 * kHeadChunkSamples) {
        // Split so that no chunk grows without bound.
        std::vector<Sample> tail(samples.begin() + samples.size() / 2, samples.end());
        samples.resize(samples.size() / 2);
        TELKIT_ASSIGN_OR_RETURN(auto tail_bytes, EncodeChunk(tail, ChunkChoice::kAppender));
        s->chunks.insert(s->chunks.begin() + i + 1, HeadChunk{tail.front().t, tail.back().t, std::move(tail_bytes)});
      }
      HeadChunk& c2 = s->chunks[i];
      TELKIT_ASSIGN_OR_RETURN(c2.bytes, EncodeChunk(samples, ChunkChoice::kAppender));
      c2.mint = samples.front().t;
      c2.maxt = samples.back().t;
    } else {
      TELKIT_ASSIGN_OR_RETURN(auto samples, DecodeChunk(s->open.Bytes()));
      InsertResult r = InsertSorted(&samples, t, bits);
      if (r != InsertResult::kInserted) return r;
      ChunkAppender a;
      for (const Sample& x : samples) TELKIT_RETURN_IF_ERROR(a.Append(x.t, x.v));
      s->open = std::move(a);
      s->open_range_end = RangeEnd(s->open.first_timestamp());
      if (samples.size() >= kHeadChunkSamples) Cut(s);
    }
    mint_ = std::min(mint_, t);
    return InsertResult::kInserted;
  }
  if (s->open.num_samples() == 1) s->open_range_end = RangeEnd(t);
  s->last_t = t;
  s->last_bits = bits;
  mint_ = std::min(mint_, t);
  maxt_ = std::max(maxt_, t);
  return InsertResult::kInserted;
}

bool Head::Lookup(const MemSeries* s, int64_t t, uint64_t* bits) const {
  auto samples = Samples(s, t, t);
  if (!samples.ok() || samples->empty()) return false;
  *bits = ToBits((*samples)[0].v);
  return true;
}

Status Head::AddChunk(MemSeries* s, std::string_view chunk) {
  TELKIT_ASSIGN_OR_RETURN(auto info, ReadChunkInfo(chunk));
  if (info.num_samples == 0) return OkStatus();
  TELKIT_ASSIGN_OR_RETURN(auto appender, ChunkAppender::FromChunk(chunk));
  if (s->open.num_samples() > 0 || !s->chunks.empty()) {
    if (appender.first_timestamp() <= s->last_t) return DataLossError("checkpoint chunk overlaps the series");
    Cut(s);
  }
  s->open = std::move(appender);
  s->open_range_end = RangeEnd(s->open.first_timestamp());
  s->last_t = s->open.last_timestamp();
  TELKIT_ASSIGN_OR_RETURN(auto samples, DecodeChunk(chunk));
  s->last_bits = ToBits(samples.back().v);
  mint_ = std::min(mint_, s->open.first_timestamp());
  maxt_ = std::max(maxt_, s->last_t);
  return OkStatus();
}

Result<std::vector<Sample>> Head::Samples(const MemSeries* s, int64_t mint, int64_t maxt) const {
  std::vector<Sample> out;
  auto add = [&](std::string_view bytes) -> Status {
    TELKIT_ASSIGN_OR_RETURN(auto it, ChunkIterator::Open(bytes));
    while (it.Next()) {
      if (it.t() >= mint && it.t() <= maxt) out.push_back(Sample{it.t(), it.v()});
    }
    return it.status();
  };
  for (const HeadChunk& c : s->chunks) {
    if (c.maxt < mint || c.mint > maxt) continue;
    TELKIT_RETURN_IF_ERROR(add(c.bytes));
  }
  if (s->open.num_samples() > 0 && s->open.last_timestamp() >= mint && s->open.first_timestamp() <= maxt) {
    std::string bytes = s->open.Bytes();
    TELKIT_RETURN_IF_ERROR(add(bytes));
  }
  return out;
}

std::vector<std::string> Head::ChunkBytes(const MemSeries* s) const {
  std::vector<std::string> out;
  for (const HeadChunk& c : s->chunks) out.push_back(c.bytes);
  if (s->open.num_samples() > 0) out.push_back(s->open.Bytes());
  return out;
}

std::vector<MemSeries*> Head::All() const {
  std::vector<MemSeries*> out;
  out.reserve(by_ref_.size());
  for (const auto& [ref, s] : by_ref_) out.push_back(s.get());
  std::sort(out.begin(), out.end(), [](const MemSeries* a, const MemSeries* b) { return a->labels < b->labels; });
  return out;
}

std::vector<MemSeries*> Head::Match(std::span<const LabelMatcher> matchers) const {
  // Candidates: the intersection of the postings of the equality matchers;
  // for a regex matcher the union over the values it matches.
  std::vector<uint64_t> candidates;
  bool have = false;
  for (const LabelMatcher& m : matchers) {
    if (m.MatchesEmpty()) continue;
    if (m.type() != MatchType::kEqual && m.type() != MatchType::kRegexMatch) continue;
    std::vector<uint64_t> refs;
    auto it = postings_.find(m.name());
    if (it != postings_.end()) {
      if (m.type() == MatchType::kEqual) {
        auto v = it->second.find(m.value());
        if (v != it->second.end()) refs = v->second;
      } else {
        for (const auto& [value, list] : it->second) {
          if (m.Matches(value)) refs.insert(refs.end(), list.begin(), list.end());
        }
        std::sort(refs.begin(), refs.end());
      }
    }
    if (!have) {
      candidates = std::move(refs);
      have = true;
    } else {
      std::vector<uint64_t> both;
      std::set_intersection(candidates.begin(), candidates.end(), refs.begin(), refs.end(), std::back_inserter(both));
      candidates = std::move(both);
    }
  }
  std::vector<MemSeries*> out;
  if (have) {
    for (uint64_t ref : candidates) {
      MemSeries* s = FindRef(ref);
      if (s && MatchesAll(s->labels, matchers)) out.push_back(s);
    }
    std::sort(out.begin(), out.end(), [](const MemSeries* a, const MemSeries* b) { return a->labels < b->labels; });
  } else {
    for (MemSeries* s : All()) {
      if (MatchesAll(s->labels, matchers)) out.push_back(s);
    }
  }
  return out;
}

Result<size_t> Head::TruncateBefore(int64_t t) {
  size_t removed = 0;
  int64_t new_mint = INT64_MAX, new_maxt = INT64_MIN;
  for (auto it = by_ref_.begin(); it != by_ref_.end();) {
    MemSeries* s = it->second.get();
    std::vector<HeadChunk> kept;
    for (HeadChunk& c : s->chunks) {
      if (c.maxt < t) continue;
      if (c.mint < t) {
        TELKIT_ASSIGN_OR_RETURN(auto samples, DecodeChunk(c.bytes));
        std::erase_if(samples, [&](const Sample& x) { return x.t < t; });
        TELKIT_ASSIGN_OR_RETURN(c.bytes, EncodeChunk(samples, ChunkChoice::kAppender));
        c.mint = samples.front().t;
      }
      kept.push_back(std::move(c));
    }
    s->chunks = std::move(kept);
    if (s->open.num_samples() > 0 && s->open.first_timestamp() < t) {
      if (s->open.last_timestamp() < t) {
        s->open = ChunkAppender();
      } else {
        TELKIT_ASSIGN_OR_RETURN(auto samples, DecodeChunk(s->open.Bytes()));
        ChunkAppender a;
        for (const Sample& x : samples) {
          if (x.t >= t) TELKIT_RETURN_IF_ERROR(a.Append(x.t, x.v));
        }
        s->open = std::move(a);
        if (s->open.num_samples() > 0) s->open_range_end = RangeEnd(s->open.first_timestamp());
      }
    }
    bool empty = s->chunks.empty() && s->open.num_samples() == 0;
    if (empty && s->pending_t < t && s->durable) {
      auto pm = per_metric_.find(std::string(s->labels.MetricName()));
      if (pm != per_metric_.end() && --pm->second == 0) per_metric_.erase(pm);
      it = by_ref_.erase(it);
      ++removed;
      continue;
    }
    if (!s->chunks.empty()) new_mint = std::min(new_mint, s->chunks.front().mint);
    if (s->open.num_samples() > 0) {
      new_mint = std::min(new_mint, s->open.first_timestamp());
      new_maxt = std::max(new_maxt, s->open.last_timestamp());
    }
    if (!s->chunks.empty()) new_maxt = std::max(new_maxt, s->chunks.back().maxt);
    ++it;
  }
  mint_ = new_mint;
  maxt_ = new_maxt;
  if (removed > 0) {
    RebuildSlots();
    postings_.clear();
    for (const auto& [ref, s] : by_ref_) AddPostings(s.get());
  }
  return removed;
}

uint64_t Head::num_chunks() const {
  uint64_t n = 0;
  for (const auto& [ref, s] : by_ref_) n += s->chunks.size() + (s->open.num_samples() > 0 ? 1 : 0);
  return n;
}

size_t Head::chunk_bytes() const {
  size_t n = 0;
  for (const auto& [ref, s] : by_ref_) {
    for (const HeadChunk& c : s->chunks) n += c.bytes.size();
    n += s->open.size_bytes();
  }
  return n;
}

}  // namespace telkit
