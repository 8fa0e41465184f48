#include "common/tracestore/trace_reader.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "common/tracestore/trace_block.h"
#include "common/tsdb/wal.h"

namespace telkit {

Status ReadFrameSpans(FileSystem* fs, const std::string& blocks_dir, std::span<const TraceFrameRef> frames,
                      std::vector<SpanRecord>* out) {
  for (const TraceFrameRef& f : frames) {
    TELKIT_ASSIGN_OR_RETURN(auto payloads,
                            ReadTraceFrame(fs, JoinPath(blocks_dir, TraceBlockFileName(f.block)), f.offset, f.length));
    for (std::string& p : payloads) {
      SpanRecord r;
      TELKIT_RETURN_IF_ERROR(ParseSpanRecord(std::move(p), &r));
      out->push_back(std::move(r));
    }
  }
  return OkStatus();
}

void DedupSpans(std::vector<SpanRecord>* spans) {
  std::unordered_set<std::string> seen;
  std::vector<SpanRecord> kept;
  kept.reserve(spans->size());
  for (SpanRecord& s : *spans) {
    if (seen.insert(s.trace_id + s.span_id).second) kept.push_back(std::move(s));
  }
  std::stable_sort(kept.begin(), kept.end(), [](const SpanRecord& a, const SpanRecord& b) {
    return a.start_ns != b.start_ns ? a.start_ns < b.start_ns : a.span_id < b.span_id;
  });
  *spans = std::move(kept);
}

std::vector<TraceSummary> SearchSpans(const TraceSearchRequest& req, std::span<const SpanRecord* const> spans) {
  std::map<std::string, TraceSummary> by_trace;
  for (const SpanRecord* s : spans) {
    if (SpanMatches(req, *s)) by_trace[s->trace_id].matched++;
  }
  for (const SpanRecord* s : spans) {
    auto it = by_trace.find(s->trace_id);
    if (it == by_trace.end()) continue;
    TraceSummary& t = it->second;
    auto st = static_cast<int64_t>(s->start_ns), en = static_cast<int64_t>(s->end_ns);
    t.start_ns = t.spans == 0 ? st : std::min(t.start_ns, st);
    t.end_ns = t.spans == 0 ? en : std::max(t.end_ns, en);
    t.spans++;
    if (s->parent_span_id.empty() && t.root_name.empty()) {
      t.root_service = s->service;
      t.root_name = s->name;
    }
  }
  std::vector<TraceSummary> out;
  for (auto& [id, t] : by_trace) {
    t.trace_id = id;
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<TraceSummary> MergeSummaries(std::vector<TraceSummary> a, const std::vector<TraceSummary>& b,
                                         size_t limit) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < a.size(); ++i) index[a[i].trace_id] = i;
  for (const TraceSummary& t : b) {
    auto it = index.find(t.trace_id);
    if (it == index.end()) {
      index[t.trace_id] = a.size();
      a.push_back(t);
      continue;
    }
    TraceSummary& m = a[it->second];
    m.start_ns = std::min(m.start_ns, t.start_ns);
    m.end_ns = std::max(m.end_ns, t.end_ns);
    m.spans += t.spans;
    m.matched += t.matched;
    if (m.root_name.empty()) {
      m.root_service = t.root_service;
      m.root_name = t.root_name;
    }
  }
  std::sort(a.begin(), a.end(), [](const TraceSummary& x, const TraceSummary& y) {
    return x.start_ns != y.start_ns ? x.start_ns > y.start_ns : x.trace_id < y.trace_id;
  });
  if (a.size() > limit) a.resize(limit);
  return a;
}

Result<std::shared_ptr<const TraceBlockIndex>> BlockIndexCache::Get(FileSystem* fs, const std::string& blocks_dir,
                                                                    const TraceBlockInfo& block) {
  Key key{block.id, block.created_ns};
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return it->second.index;
    }
  }
  TELKIT_ASSIGN_OR_RETURN(TraceBlockIndex x, ReadTraceBlockIndex(fs, JoinPath(blocks_dir, TraceBlockFileName(block.id)),
                                                                  block.index_offset, block.index_length));
  auto shared = std::make_shared<const TraceBlockIndex>(std::move(x));
  Put(block, shared);
  return shared;
}

void BlockIndexCache::Put(const TraceBlockInfo& block, std::shared_ptr<const TraceBlockIndex> index) {
  Key key{block.id, block.created_ns};
  size_t bytes = index->MemoryBytes();
  std::lock_guard<std::mutex> l(mu_);
  if (bytes > max_bytes_ || entries_.count(key)) return;
  while (bytes_ + bytes > max_bytes_ && !lru_.empty()) {
    auto it = entries_.find(lru_.back());
    bytes_ -= it->second.bytes;
    entries_.erase(it);
    lru_.pop_back();
  }
  lru_.push_front(key);
  entries_.emplace(key, Entry{std::move(index), bytes, lru_.begin()});
  bytes_ += bytes;
}

BlockMatcher::BlockMatcher(const TraceSearchRequest& req, const TraceBlockIndex& x) : req_(req), x_(x) {
  if (!req.service.empty() && (service_ = x.FindString(req.service)) < 0) possible_ = false;
  if (!req.name.empty() && (name_ = x.FindString(req.name)) < 0) possible_ = false;
  for (const auto& [k, v] : req.attributes) {
    int64_t ki = x.FindString(k), vi = x.FindString(v);
    if (ki < 0 || vi < 0) possible_ = false;
    attrs_.emplace_back(static_cast<uint32_t>(ki), static_cast<uint32_t>(vi));
  }
}

bool BlockMatcher::SpanMatches(uint32_t i) const {
  int64_t start = x_.start_ns[i];
  if (start < req_.start_ns || start >= req_.end_ns) return false;
  if (service_ >= 0 && x_.service[i] != service_) return false;
  if (name_ >= 0 && x_.name[i] != name_) return false;
  uint64_t d = x_.duration_ns[i];
  if (d < req_.min_duration_ns) return false;
  if (req_.max_duration_ns != 0 && d > req_.max_duration_ns) return false;
  if (req_.kind >= 0 && x_.kind[i] != req_.kind) return false;
  if (req_.status >= 0 && x_.status[i] != req_.status) return false;
  if (!attrs_.empty()) {
    auto first = x_.attrs.begin() + (i == 0 ? 0 : x_.attr_end[i - 1]), last = x_.attrs.begin() + x_.attr_end[i];
    for (const auto& cond : attrs_) {
      if (std::find(first, last, cond) == last) return false;
    }
  }
  return true;
}

uint32_t BlockMatcher::MatchedSpans(size_t t) const {
  const BlockTrace& bt = x_.traces[t];
  // The trace table's time range rules most traces out without the columns.
  if (bt.start_ns >= req_.end_ns || bt.end_ns < req_.start_ns) return 0;
  uint32_t n = 0;
  for (uint32_t i = bt.first_span; i < bt.first_span + bt.spans; ++i) n += SpanMatches(i);
  return n;
}

void SearchBlockIndex(const TraceSearchRequest& req, const TraceBlockIndex& x, std::vector<TraceSummary>* out) {
  BlockMatcher m(req, x);
  if (!m.possible()) return;
  for (size_t t = 0; t < x.traces.size(); ++t) {
    uint32_t matched = m.MatchedSpans(t);
    if (matched == 0) continue;
    const BlockTrace& bt = x.traces[t];
    TraceSummary s;
    s.trace_id = bt.trace_id;
    s.start_ns = bt.start_ns;
    s.end_ns = bt.end_ns;
    s.root_service = x.strings[bt.root_service];
    s.root_name = x.strings[bt.root_name];
    s.spans = bt.spans;
    s.matched = matched;
    out->push_back(std::move(s));
  }
}

namespace {
constexpr std::string_view kIntrinsicTags[] = {"service.name", "name", "kind", "status"};
}  // namespace

std::span<const std::string_view> IntrinsicTagNames() { return kIntrinsicTags; }

void BlockTagNames(const TraceBlockIndex& x, std::set<std::string>* names) {
  std::vector<bool> seen(x.strings.size());
  for (const auto& kv : x.attrs) {
    if (!seen[kv.first]) {
      seen[kv.first] = true;
      names->emplace(x.strings[kv.first]);
    }
  }
}

void BlockTagValues(const TraceBlockIndex& x, const std::string& tag, std::set<std::string>* values) {
  std::vector<bool> seen(x.strings.size());
  auto add = [&](uint32_t id) {
    if (!seen[id]) {
      seen[id] = true;
      values->emplace(x.strings[id]);
    }
  };
  if (tag == "service.name") {
    for (uint32_t v : x.service) add(v);
  } else if (tag == "name") {
    for (uint32_t v : x.name) add(v);
  } else if (tag == "kind" || tag == "status") {
    std::vector<bool> small(256);
    for (uint8_t v : tag == "kind" ? x.kind : x.status) small[v] = true;
    for (int v = 0; v < 256; ++v) {
      if (small[v]) values->insert(std::to_string(v));
    }
  }
  int64_t key = x.FindString(tag);
  if (key < 0) return;
  for (const auto& kv : x.attrs) {
    if (kv.first == key) add(kv.second);
  }
}

void SpanTagValues(const SpanRecord& r, const std::string& tag, std::set<std::string>* values) {
  if (tag == "service.name") values->insert(r.service);
  else if (tag == "name") values->insert(r.name);
  else if (tag == "kind") values->insert(std::to_string(r.kind));
  else if (tag == "status") values->insert(std::to_string(r.status));
  for (const auto& kv : r.attributes) {
    if (kv.first == tag) values->insert(kv.second);
  }
}

Result<std::unique_ptr<TraceReader>> TraceReader::Open(std::string dir, FileSystem* fs, std::string catalogue_path) {
  if (catalogue_path.empty()) catalogue_path = JoinPath(dir, "catalogue.db");
  TELKIT_ASSIGN_OR_RETURN(auto c, TraceCatalogue::Open(catalogue_path, /*read_only=*/true));
  return std::unique_ptr<TraceReader>(new TraceReader(fs, std::move(dir), std::move(c)));
}

Result<std::vector<SpanRecord>> TraceReader::LiveSpans(uint32_t wal_start) {
  WalReaderOptions o;
  o.first_segment = wal_start;
  TELKIT_ASSIGN_OR_RETURN(auto reader, WalReader::Open(fs_, JoinPath(dir_, "wal"), o));
  std::vector<SpanRecord> out;
  // The writer's attribute limit, so that live spans read as they will be stored.
  SpanLimits limits;
  TELKIT_ASSIGN_OR_RETURN(int64_t max_attr, catalogue_->Meta("max_attribute_bytes", 0));
  limits.max_attribute_bytes = static_cast<size_t>(max_attr);
  while (true) {
    auto rec = reader->Next();
    if (!rec.ok()) {
      // Damage at the tail of a segment being written is the writer's
      // in-flight append; damage elsewhere is reported.
      return rec.status();
    }
    if (!rec->has_value()) break;
    SplitStats st;
    // A record that does not parse was never acknowledged (Append checks
    // first); skip it rather than fail the read.
    (void)SplitTraceRequest(**rec, limits, &out, &st);
  }
  DedupSpans(&out);
  return out;
}

template <typename F>
Status TraceReader::Consistent(F read) {
  Status last;
  for (int attempt = 0; attempt < 10; ++attempt) {
    TELKIT_RETURN_IF_ERROR(catalogue_->BeginRead());
    auto start = catalogue_->WalStart();
    if (!start.ok()) {
      (void)catalogue_->Rollback();
      return start.status();
    }
    last = read(*start);
    (void)catalogue_->Commit();
    if (last.code() != StatusCode::kNotFound && !last.ok() && last.code() != StatusCode::kDataLoss) return last;
    TELKIT_RETURN_IF_ERROR(catalogue_->BeginRead());
    auto again = catalogue_->WalStart();
    (void)catalogue_->Commit();
    if (!again.ok()) return again.status();
    if (*again == *start && last.ok()) return OkStatus();
    if (*again == *start && last.code() == StatusCode::kDataLoss) return last;
  }
  return last.ok() ? UnavailableError("trace store: the writer kept cutting blocks during the read") : last;
}

Result<std::vector<SpanRecord>> TraceReader::TraceById(const std::string& trace_id) {
  std::vector<SpanRecord> out;
  Status s = Consistent([&](uint32_t wal_start) -> Status {
    out.clear();
    TELKIT_ASSIGN_OR_RETURN(auto frames, catalogue_->FindTrace(trace_id));
    TELKIT_RETURN_IF_ERROR(ReadFrameSpans(fs_, JoinPath(dir_, "blocks"), frames, &out));
    TELKIT_ASSIGN_OR_RETURN(auto live, LiveSpans(wal_start));
    for (SpanRecord& r : live) {
      if (r.trace_id == trace_id) out.push_back(std::move(r));
    }
    return OkStatus();
  });
  if (!s.ok()) return s;
  DedupSpans(&out);
  return out;
}

Result<std::vector<TraceSummary>> TraceReader::Search(const TraceSearchRequest& req) {
  std::vector<TraceSummary> out;
  const std::string blocks_dir = JoinPath(dir_, "blocks");
  Status s = Consistent([&](uint32_t wal_start) -> Status {
    std::vector<TraceSummary> blocks;
    TELKIT_ASSIGN_OR_RETURN(auto infos, catalogue_->BlocksOverlapping(req.start_ns, req.end_ns));
    for (const TraceBlockInfo& b : infos) {
      TELKIT_ASSIGN_OR_RETURN(auto x, cache_.Get(fs_, blocks_dir, b));
      SearchBlockIndex(req, *x, &blocks);
    }
    TELKIT_ASSIGN_OR_RETURN(auto live, LiveSpans(wal_start));
    std::vector<const SpanRecord*> ptrs;
    for (const SpanRecord& r : live) ptrs.push_back(&r);
    out = MergeSummaries(std::move(blocks), SearchSpans(req, ptrs), req.limit);
    return OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<std::string>> TraceReader::TagNames() {
  std::set<std::string> names;
  const std::string blocks_dir = JoinPath(dir_, "blocks");
  Status s = Consistent([&](uint32_t wal_start) -> Status {
    names.clear();
    TELKIT_ASSIGN_OR_RETURN(auto infos, catalogue_->Blocks());
    for (const TraceBlockInfo& b : infos) {
      TELKIT_ASSIGN_OR_RETURN(auto x, cache_.Get(fs_, blocks_dir, b));
      BlockTagNames(*x, &names);
    }
    TELKIT_ASSIGN_OR_RETURN(auto live, LiveSpans(wal_start));
    for (const SpanRecord& r : live) {
      for (const auto& kv : r.attributes) names.insert(kv.first);
    }
    return OkStatus();
  });
  if (!s.ok()) return s;
  std::vector<std::string> out(IntrinsicTagNames().begin(), IntrinsicTagNames().end());
  out.insert(out.end(), names.begin(), names.end());
  return out;
}

Result<std::vector<std::string>> TraceReader::TagValues(const std::string& tag, size_t limit) {
  std::set<std::string> values;
  const std::string blocks_dir = JoinPath(dir_, "blocks");
  Status s = Consistent([&](uint32_t wal_start) -> Status {
    values.clear();
    TELKIT_ASSIGN_OR_RETURN(auto infos, catalogue_->Blocks());
    for (const TraceBlockInfo& b : infos) {
      TELKIT_ASSIGN_OR_RETURN(auto x, cache_.Get(fs_, blocks_dir, b));
      BlockTagValues(*x, tag, &values);
    }
    TELKIT_ASSIGN_OR_RETURN(auto live, LiveSpans(wal_start));
    for (const SpanRecord& r : live) SpanTagValues(r, tag, &values);
    return OkStatus();
  });
  if (!s.ok()) return s;
  std::vector<std::string> out(values.begin(), values.end());
  if (out.size() > limit) out.resize(limit);
  return out;
}

Status TraceReader::ForEachTrace(int64_t start_ns, int64_t end_ns, const TraceSearchRequest& prefilter,
                                 const std::function<bool(std::span<const SpanRecord>)>& fn) {
  TraceSearchRequest req = prefilter;
  req.start_ns = start_ns;
  req.end_ns = end_ns;
  const std::string blocks_dir = JoinPath(dir_, "blocks");
  // One consistent view of the block list and the live spans; the traces
  // are then read and handed out one by one. A block cut after this view
  // holds spans that were live in it; a block removed by retention
  // meanwhile is skipped.
  std::vector<TraceBlockInfo> infos;
  std::vector<SpanRecord> live;
  TELKIT_RETURN_IF_ERROR(Consistent([&](uint32_t wal_start) -> Status {
    TELKIT_ASSIGN_OR_RETURN(infos, catalogue_->BlocksOverlapping(start_ns, end_ns));
    TELKIT_ASSIGN_OR_RETURN(live, LiveSpans(wal_start));
    return OkStatus();
  }));
  std::unordered_map<std::string, std::vector<uint32_t>> live_by_trace;
  for (uint32_t i = 0; i < live.size(); ++i) live_by_trace[live[i].trace_id].push_back(i);
  std::unordered_set<std::string> done;
  std::vector<SpanRecord> trace;
  // The whole trace `id`: its frames in every block plus its live spans.
  auto emit = [&](const std::string& id) -> Result<bool> {
    trace.clear();
    TELKIT_RETURN_IF_ERROR(catalogue_->BeginRead());
    auto frames = catalogue_->FindTrace(id);
    (void)catalogue_->Commit();
    if (!frames.ok()) return frames.status();
    for (const TraceFrameRef& f : *frames) {
      Status r = ReadFrameSpans(fs_, blocks_dir, std::span<const TraceFrameRef>(&f, 1), &trace);
      if (!r.ok() && r.code() != StatusCode::kNotFound) return r;  // NOT_FOUND: removed by retention
    }
    auto it = live_by_trace.find(id);
    if (it != live_by_trace.end()) {
      for (uint32_t i : it->second) trace.push_back(live[i]);
    }
    DedupSpans(&trace);
    if (trace.empty()) return true;
    return fn(std::span<const SpanRecord>(trace));
  };
  for (const TraceBlockInfo& b : infos) {
    auto x = cache_.Get(fs_, blocks_dir, b);
    if (!x.ok() && x.status().code() == StatusCode::kNotFound) continue;
    if (!x.ok()) return x.status();
    BlockMatcher m(req, **x);
    if (!m.possible()) continue;
    for (size_t t = 0; t < (*x)->traces.size(); ++t) {
      if (m.MatchedSpans(t) == 0) continue;
      const std::string& id = (*x)->traces[t].trace_id;
      if (!done.insert(id).second) continue;
      TELKIT_ASSIGN_OR_RETURN(bool more, emit(id));
      if (!more) return OkStatus();
    }
  }
  // Traces matching through live spans, in trace id order.
  std::set<std::string> live_matches;
  for (const SpanRecord& r : live) {
    if (!done.count(r.trace_id) && SpanMatches(req, r)) live_matches.insert(r.trace_id);
  }
  for (const std::string& id : live_matches) {
    TELKIT_ASSIGN_OR_RETURN(bool more, emit(id));
    if (!more) return OkStatus();
  }
  return OkStatus();
}

}  // namespace telkit
