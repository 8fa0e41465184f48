#include "common/pipeline/request_parts.h"

#include <algorithm>

#include "common/pipeline/proto_wire.h"

namespace telkit {
namespace {

// How far ahead of the item walk DecomposeRequest prefetches.
constexpr size_t kPrefetchDistance = 4096;

// Collects the raw fields of a message that are not its repeated child
// entries: a view while they are contiguous (the usual case), an owned
// string when they are not.
class HeaderBuilder {
 public:
  void Add(std::string_view raw) {
    if (!owned_mode_) {
      if (view_.empty()) {
        view_ = raw;
        return;
      }
      if (view_.data() + view_.size() == raw.data()) {
        view_ = std::string_view(view_.data(), view_.size() + raw.size());
        return;
      }
      owned_.assign(view_);
      owned_mode_ = true;
    }
    owned_.append(raw);
  }
  std::string_view Finish(RequestParts& parts) { return owned_mode_ ? parts.Own(std::move(owned_)) : view_; }

 private:
  std::string_view view_;
  std::string owned_;
  bool owned_mode_ = false;
};

Status Malformed(Signal signal, const std::string& payload, std::string_view at, const char* why) {
  const size_t offset = static_cast<size_t>(at.data() - payload.data());
  return InvalidArgumentError("malformed " + std::string(SignalName(signal)) + " payload at byte " +
                              std::to_string(offset) + ": " + why);
}

// The error of a reader that stopped early: at the byte it stopped.
Status ReaderError(Signal signal, const std::string& payload, std::string_view message, const WireReader& r) {
  return Malformed(signal, payload, message.substr(r.offset()), r.error());
}

// Appends the fields of `header` numbered below `child_field` (before =
// true) or the others (before = false), keeping their order. Writing a
// header in two halves around the child entries reproduces the field-number
// order of canonical encodings (resource = 1, children = 2, schema_url = 3).
void AppendHeaderHalf(std::string* out, std::string_view header, uint32_t child_field, bool before) {
  WireReader r(header);
  WireField f;
  while (r.Next(&f)) {
    if ((f.number < child_field) == before) out->append(f.raw);
  }
}

}  // namespace

std::string_view RequestParts::Own(std::string bytes) {
  auto s = std::make_shared<const std::string>(std::move(bytes));
  std::string_view view = *s;
  storage.push_back(std::move(s));
  return view;
}

int64_t RequestParts::ItemCount() const {
  int64_t n = 0;
  for (const ResourcePart& r : resources) {
    for (const ScopePart& s : r.scopes) n += s.item_count;
  }
  return n;
}

size_t RequestParts::EncodedSize() const {
  size_t total = 0;
  for (const ResourcePart& r : resources) {
    size_t resource_size = r.header.size();
    for (const ScopePart& s : r.scopes) {
      size_t scope_size = s.header.size();
      for (std::string_view item : s.items) scope_size += LenFieldSize(kScopeEntryItemField, item.size());
      resource_size += LenFieldSize(kResourceEntryScopeField, scope_size);
    }
    total += LenFieldSize(kRequestResourceField, resource_size);
  }
  for (std::string_view e : extra) total += e.size();
  return total;
}

Result<int64_t> CountMetricPoints(std::string_view metric) {
  WireReader r(metric);
  WireField f;
  uint32_t kind = 0;
  int64_t points = 0;
  while (r.Next(&f)) {
    switch (f.number) {
      case 5: case 7: case 9: case 10: case 11: {  // gauge, sum, histogram, exponential_histogram, summary
        if (f.wire_type != kWireLen) return InvalidArgumentError("metric data field has the wrong wire type");
        if (f.number != kind) {
          kind = f.number;
          points = 0;
        }
        WireReader data(f.bytes);
        WireField p;
        while (data.Next(&p)) {
          if (p.number == 1) ++points;  // data_points in every data message
        }
        if (!data.ok()) return InvalidArgumentError(std::string("metric data: ") + data.error());
        break;
      }
      default:
        break;
    }
  }
  if (!r.ok()) return InvalidArgumentError(std::string("metric: ") + r.error());
  return points;
}

Result<RequestParts> DecomposeRequest(Signal signal, std::shared_ptr<const std::string> payload) {
  if (signal != Signal::kTraces && signal != Signal::kMetrics && signal != Signal::kLogs) {
    return InvalidArgumentError("signal '" + std::string(SignalName(signal)) + "' is not an OTLP export request");
  }
  const std::string& bytes = *payload;
  RequestParts parts;
  parts.signal = signal;
  parts.storage.push_back(payload);

  WireReader top(bytes);
  WireField rf;
  while (top.Next(&rf)) {
    if (rf.number != kRequestResourceField) {
      parts.extra.push_back(rf.raw);
      continue;
    }
    if (rf.wire_type != kWireLen) return Malformed(signal, bytes, rf.raw, "resource entry is not length-delimited");
    ResourcePart resource;
    HeaderBuilder resource_header;
    WireReader rr(rf.bytes);
    WireField sf;
    while (rr.Next(&sf)) {
      if (sf.number != kResourceEntryScopeField) {
        resource_header.Add(sf.raw);
        continue;
      }
      if (sf.wire_type != kWireLen) return Malformed(signal, bytes, sf.raw, "scope entry is not length-delimited");
      ScopePart scope;
      HeaderBuilder scope_header;
      WireReader sr(sf.bytes);
      WireField item;
      // The items were written by another thread (the input's reader), so
      // each item's first byte is a cache miss: stream prefetches ahead of
      // the walk instead of waiting for one line at a time.
      const char* prefetched = sf.bytes.data();
      const char* const items_end = sf.bytes.data() + sf.bytes.size();
      while (sr.Next(&item)) {
        const char* want = std::min(items_end, item.raw.data() + item.raw.size() + kPrefetchDistance);
        for (; prefetched < want; prefetched += 64) __builtin_prefetch(prefetched);
        if (item.number != kScopeEntryItemField) {
          scope_header.Add(item.raw);
          continue;
        }
        if (item.wire_type != kWireLen) return Malformed(signal, bytes, item.raw, "item is not length-delimited");
        scope.items.push_back(item.bytes);
        if (signal == Signal::kMetrics) {
          Result<int64_t> points = CountMetricPoints(item.bytes);
          if (!points.ok()) return Malformed(signal, bytes, item.bytes, points.status().message().c_str());
          scope.item_count += *points;
        }
      }
      if (!sr.ok()) return ReaderError(signal, bytes, sf.bytes, sr);
      if (signal != Signal::kMetrics) scope.item_count = static_cast<int64_t>(scope.items.size());
      scope.header = scope_header.Finish(parts);
      resource.scopes.push_back(std::move(scope));
    }
    if (!rr.ok()) return ReaderError(signal, bytes, rf.bytes, rr);
    resource.header = resource_header.Finish(parts);
    parts.resources.push_back(std::move(resource));
  }
  if (!top.ok()) return ReaderError(signal, bytes, bytes, top);
  return parts;
}

std::string EncodeRequest(const RequestParts& parts) {
  // Sizes first (scope entries, then resource entries), then one pass of writing.
  std::vector<size_t> scope_sizes;
  std::vector<size_t> resource_sizes;
  size_t total = 0;
  for (const ResourcePart& r : parts.resources) {
    size_t resource_size = r.header.size();
    for (const ScopePart& s : r.scopes) {
      size_t scope_size = s.header.size();
      for (std::string_view item : s.items) scope_size += LenFieldSize(kScopeEntryItemField, item.size());
      scope_sizes.push_back(scope_size);
      resource_size += LenFieldSize(kResourceEntryScopeField, scope_size);
    }
    resource_sizes.push_back(resource_size);
    total += LenFieldSize(kRequestResourceField, resource_size);
  }
  for (std::string_view e : parts.extra) total += e.size();

  std::string out;
  out.reserve(total);
  size_t scope_index = 0;
  for (size_t i = 0; i < parts.resources.size(); ++i) {
    const ResourcePart& r = parts.resources[i];
    AppendTag(&out, kRequestResourceField, kWireLen);
    AppendVarint(&out, resource_sizes[i]);
    AppendHeaderHalf(&out, r.header, kResourceEntryScopeField, true);
    for (const ScopePart& s : r.scopes) {
      AppendTag(&out, kResourceEntryScopeField, kWireLen);
      AppendVarint(&out, scope_sizes[scope_index++]);
      AppendHeaderHalf(&out, s.header, kScopeEntryItemField, true);
      for (std::string_view item : s.items) AppendLenField(&out, kScopeEntryItemField, item);
      AppendHeaderHalf(&out, s.header, kScopeEntryItemField, false);
    }
    AppendHeaderHalf(&out, r.header, kResourceEntryScopeField, false);
  }
  for (std::string_view e : parts.extra) out.append(e);
  return out;
}

void RequestMerger::Add(RequestParts&& parts) {
  for (ResourcePart& r : parts.resources) {
    auto [rit, new_resource] = resource_index_.try_emplace(r.header, merged_.resources.size());
    if (new_resource) {
      merged_.resources.push_back(ResourcePart{r.header, {}});
      scope_index_.emplace_back();
      bytes_ += LenFieldSize(kRequestResourceField, r.header.size()) + 4;
    }
    ResourcePart& target = merged_.resources[rit->second];
    ResourceIndex& index = scope_index_[rit->second];
    for (ScopePart& s : r.scopes) {
      auto [sit, new_scope] = index.scopes.try_emplace(s.header, target.scopes.size());
      if (new_scope) {
        bytes_ += LenFieldSize(kResourceEntryScopeField, s.header.size()) + 4;
        for (std::string_view item : s.items) bytes_ += LenFieldSize(kScopeEntryItemField, item.size());
        items_ += s.item_count;
        target.scopes.push_back(std::move(s));
        continue;
      }
      ScopePart& into = target.scopes[sit->second];
      into.items.reserve(into.items.size() + s.items.size());
      for (std::string_view item : s.items) {
        bytes_ += LenFieldSize(kScopeEntryItemField, item.size());
        into.items.push_back(item);
      }
      into.item_count += s.item_count;
      items_ += s.item_count;
    }
  }
  for (std::string_view e : parts.extra) {
    merged_.extra.push_back(e);
    bytes_ += e.size();
  }
  merged_.storage.insert(merged_.storage.end(), std::make_move_iterator(parts.storage.begin()),
                         std::make_move_iterator(parts.storage.end()));
}

RequestParts RequestMerger::Take() {
  RequestParts out = std::move(merged_);
  merged_ = RequestParts{};
  merged_.signal = out.signal;
  resource_index_.clear();
  scope_index_.clear();
  items_ = 0;
  bytes_ = 0;
  return out;
}

}  // namespace telkit
