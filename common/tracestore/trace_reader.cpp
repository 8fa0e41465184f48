#include "common/tracestore/trace_reader.h"

#include <algorithm>
#include <map>
#include <set>
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
  Status s = Consistent([&](uint32_t wal_start) -> Status {
    TELKIT_ASSIGN_OR_RETURN(auto blocks, catalogue_->Search(req));
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
  Status s = Consistent([&](uint32_t wal_start) -> Status {
    TELKIT_ASSIGN_OR_RETURN(auto b, catalogue_->TagNames());
    names.insert(b.begin(), b.end());
    TELKIT_ASSIGN_OR_RETURN(auto live, LiveSpans(wal_start));
    for (const SpanRecord& r : live) {
      for (const auto& kv : r.attributes) names.insert(kv.first);
    }
    return OkStatus();
  });
  if (!s.ok()) return s;
  return std::vector<std::string>(names.begin(), names.end());
}

Result<std::vector<std::string>> TraceReader::TagValues(const std::string& tag, size_t limit) {
  std::set<std::string> values;
  Status s = Consistent([&](uint32_t wal_start) -> Status {
    TELKIT_ASSIGN_OR_RETURN(auto b, catalogue_->TagValues(tag, limit));
    values.insert(b.begin(), b.end());
    TELKIT_ASSIGN_OR_RETURN(auto live, LiveSpans(wal_start));
    for (const SpanRecord& r : live) {
      if (tag == "service.name") values.insert(r.service);
      else if (tag == "name") values.insert(r.name);
      else if (tag == "kind") values.insert(std::to_string(r.kind));
      else if (tag == "status") values.insert(std::to_string(r.status));
      for (const auto& kv : r.attributes) {
        if (kv.first == tag) values.insert(kv.second);
      }
    }
    return OkStatus();
  });
  if (!s.ok()) return s;
  std::vector<std::string> out(values.begin(), values.end());
  if (out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace telkit
