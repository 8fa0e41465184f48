#include "common/pipeline/processors.h"

#include <algorithm>
#include <optional>

#include "common/pipeline/proto_wire.h"

namespace telkit {
namespace {

constexpr uint32_t kResourceAttributesField = 1;  // Resource.attributes
constexpr uint32_t kKeyValueKeyField = 1;         // KeyValue.key
constexpr uint32_t kKeyValueValueField = 2;       // KeyValue.value
constexpr uint32_t kAnyValueStringField = 1;      // AnyValue.string_value
constexpr uint32_t kMetricDataPointsField = 1;    // data_points in Gauge, Sum, Histogram, ...

bool IsMetricDataField(uint32_t number) {
  return number == 5 || number == 7 || number == 9 || number == 10 || number == 11;
}

std::string EncodeStringKeyValue(std::string_view key, std::string_view value) {
  std::string any;
  AppendLenField(&any, kAnyValueStringField, value);
  std::string kv;
  AppendLenField(&kv, kKeyValueKeyField, key);
  AppendLenField(&kv, kKeyValueValueField, any);
  return kv;
}

std::string_view KeyOf(std::string_view key_value) {
  WireReader r(key_value);
  WireField f;
  while (r.Next(&f)) {
    if (f.number == kKeyValueKeyField && f.wire_type == kWireLen) return f.bytes;
  }
  return {};
}

// The Resource message after `actions`: attributes edited in place or
// appended, every other field kept after them.
std::string RewriteResource(std::string_view resource, const std::vector<ResourceAction>& actions) {
  struct Attribute {
    std::string_view key;
    std::string key_value;  // the KeyValue message
    bool removed = false;
  };
  std::vector<Attribute> attributes;
  std::string others;
  WireReader r(resource);
  WireField f;
  while (r.Next(&f)) {
    if (f.number == kResourceAttributesField && f.wire_type == kWireLen) {
      attributes.push_back({KeyOf(f.bytes), std::string(f.bytes)});
    } else {
      others.append(f.raw);
    }
  }
  std::vector<std::string> new_keys;  // keeps the keys of inserted attributes alive
  new_keys.reserve(actions.size());
  for (const ResourceAction& a : actions) {
    bool present = false;
    for (Attribute& attr : attributes) {
      if (attr.removed || attr.key != a.key) continue;
      present = true;
      if (a.kind == ResourceAction::Kind::kDelete) {
        attr.removed = true;
      } else if (a.kind == ResourceAction::Kind::kUpdate || a.kind == ResourceAction::Kind::kUpsert) {
        attr.key_value = EncodeStringKeyValue(a.key, a.value);
      }
    }
    if (!present && (a.kind == ResourceAction::Kind::kInsert || a.kind == ResourceAction::Kind::kUpsert)) {
      new_keys.push_back(a.key);
      attributes.push_back({new_keys.back(), EncodeStringKeyValue(a.key, a.value)});
    }
  }
  std::string out;
  for (const Attribute& attr : attributes) {
    if (!attr.removed) AppendLenField(&out, kResourceAttributesField, attr.key_value);
  }
  out.append(others);
  return out;
}

// What the filter rules say about one item: nullopt keeps it.
std::optional<DropReason> Decide(const FilterRules& rules, const FilterSubject& subject) {
  for (const FilterExpr& e : rules.drop) {
    if (e.Matches(subject)) return DropReason::kFilterDrop;
  }
  if (rules.keep.empty()) return std::nullopt;
  for (const FilterExpr& e : rules.keep) {
    if (e.Matches(subject)) return std::nullopt;
  }
  return DropReason::kFilterKeep;
}

bool NeedsResource(const FilterRules& rules) {
  auto uses = [](const FilterExpr& e) { return e.uses_resource(); };
  return std::any_of(rules.drop.begin(), rules.drop.end(), uses) ||
         std::any_of(rules.keep.begin(), rules.keep.end(), uses);
}

bool NeedsAttributes(const FilterRules& rules) {
  auto uses = [](const FilterExpr& e) { return e.uses_attributes(); };
  return std::any_of(rules.drop.begin(), rules.drop.end(), uses) ||
         std::any_of(rules.keep.begin(), rules.keep.end(), uses);
}

// The outcome of filtering one Metric's data points.
struct MetricOutcome {
  int64_t before = 0;
  int64_t after = 0;
  std::optional<std::string> rebuilt;  // set when some but not all points were dropped
};

// Filters the data points of `metric`, counting drops in *dropped.
std::optional<MetricOutcome> FilterMetric(std::string_view metric, const FilterRules& rules, FilterSubject subject,
                                          PointFields* point, DropCounts* dropped) {
  // The metric-level fields, and which data member wins (the last one).
  point->metric_name = {};
  point->metric_unit = {};
  point->data_field = 0;
  WireReader r(metric);
  WireField f;
  while (r.Next(&f)) {
    if (f.wire_type != kWireLen) continue;
    if (f.number == 1) point->metric_name = f.bytes;
    if (f.number == 3) point->metric_unit = f.bytes;
    if (IsMetricDataField(f.number)) point->data_field = f.number;
  }
  if (!r.ok()) return std::nullopt;
  MetricOutcome out;
  if (point->data_field == 0) return out;
  subject.point = point;
  std::string container_fields;  // non-point fields of the data member(s)
  std::string kept_points;        // raw data_points fields that stay
  WireReader m(metric);
  while (m.Next(&f)) {
    if (f.number != point->data_field || f.wire_type != kWireLen) continue;
    WireReader d(f.bytes);
    WireField p;
    while (d.Next(&p)) {
      if (p.number != kMetricDataPointsField || p.wire_type != kWireLen) {
        container_fields.append(p.raw);
        continue;
      }
      ++out.before;
      if (!DecodePointFields(p.bytes, point)) {
        dropped->Add(DropReason::kMalformed, 1);
        continue;
      }
      if (std::optional<DropReason> why = Decide(rules, subject)) {
        dropped->Add(*why, 1);
        continue;
      }
      ++out.after;
      kept_points.append(p.raw);
    }
    if (!d.ok()) return std::nullopt;
  }
  if (out.after == out.before || out.after == 0) return out;
  // Rebuild: the data member goes where it first was; other fields stay.
  std::string rebuilt;
  bool data_written = false;
  WireReader w(metric);
  while (w.Next(&f)) {
    if (!IsMetricDataField(f.number)) {
      rebuilt.append(f.raw);
    } else if (!data_written) {
      AppendTag(&rebuilt, point->data_field, kWireLen);
      AppendVarint(&rebuilt, container_fields.size() + kept_points.size());
      rebuilt.append(container_fields);
      rebuilt.append(kept_points);
      data_written = true;
    }
  }
  out.rebuilt = std::move(rebuilt);
  return out;
}

// Removes scope entries that lost all their items (they had some) and
// resource entries that lost all their scope entries.
void RemoveEmptied(ResourcePart& resource, const std::vector<bool>& emptied, bool* resource_emptied) {
  if (std::find(emptied.begin(), emptied.end(), true) == emptied.end()) return;
  std::vector<ScopePart> kept;
  for (size_t i = 0; i < resource.scopes.size(); ++i) {
    if (!emptied[i]) kept.push_back(std::move(resource.scopes[i]));
  }
  resource.scopes = std::move(kept);
  *resource_emptied = resource.scopes.empty();
}

void RemoveEmptiedResources(RequestParts& parts, const std::vector<bool>& emptied) {
  if (std::find(emptied.begin(), emptied.end(), true) == emptied.end()) return;
  std::vector<ResourcePart> kept;
  for (size_t i = 0; i < parts.resources.size(); ++i) {
    if (!emptied[i]) kept.push_back(std::move(parts.resources[i]));
  }
  parts.resources = std::move(kept);
}

std::string_view FieldOf(std::string_view message, uint32_t number) {
  WireReader r(message);
  WireField f;
  while (r.Next(&f)) {
    if (f.number == number && f.wire_type == kWireLen) return f.bytes;
  }
  return {};
}

}  // namespace

std::string_view DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kFilterDrop: return "filter_drop";
    case DropReason::kFilterKeep: return "filter_keep";
    case DropReason::kSampling: return "sampling";
    case DropReason::kNoRoute: return "no_route";
    case DropReason::kMalformed: return "malformed";
    case DropReason::kExportRejected: return "export_rejected";
    case DropReason::kUnsupportedSignal: return "unsupported_signal";
    case DropReason::kTailSampling: return "tail_sampling";
  }
  return "unknown";
}

Result<ResourceAction> ParseResourceAction(std::string_view spec) {
  const size_t colon = spec.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgumentError("'" + std::string(spec) + "' is not ACTION:KEY=VALUE or delete:KEY");
  }
  std::string_view action = spec.substr(0, colon);
  std::string_view rest = spec.substr(colon + 1);
  ResourceAction a;
  if (action == "delete") {
    a.kind = ResourceAction::Kind::kDelete;
    if (rest.empty()) return InvalidArgumentError("'" + std::string(spec) + "' needs a key: delete:KEY");
    a.key = std::string(rest);
    return a;
  }
  if (action == "insert") {
    a.kind = ResourceAction::Kind::kInsert;
  } else if (action == "update") {
    a.kind = ResourceAction::Kind::kUpdate;
  } else if (action == "upsert") {
    a.kind = ResourceAction::Kind::kUpsert;
  } else {
    return InvalidArgumentError("unknown action '" + std::string(action) + "' in '" + std::string(spec) +
                                "' (insert, update, upsert, delete)");
  }
  const size_t eq = rest.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return InvalidArgumentError("'" + std::string(spec) + "' needs KEY=VALUE after '" + std::string(action) + ":'");
  }
  a.key = std::string(rest.substr(0, eq));
  a.value = std::string(rest.substr(eq + 1));
  return a;
}

std::string ResourceProcessor::Rewrite(std::string_view header) const {
  std::string out;
  bool found = false;
  WireReader r(header);
  WireField f;
  while (r.Next(&f)) {
    if (f.number == kResourceEntryResourceField && f.wire_type == kWireLen) {
      AppendLenField(&out, kResourceEntryResourceField, RewriteResource(f.bytes, actions_));
      found = true;
    } else {
      out.append(f.raw);
    }
  }
  if (!found) {
    std::string resource = RewriteResource({}, actions_);
    if (!resource.empty()) {
      std::string with_resource;
      AppendLenField(&with_resource, kResourceEntryResourceField, resource);
      out = with_resource + out;
    }
  }
  return out;
}

bool ResourceProcessor::Apply(RequestParts& parts) {
  if (actions_.empty()) return false;
  bool changed = false;
  for (ResourcePart& r : parts.resources) {
    auto it = cache_.find(r.header);
    if (it == cache_.end()) {
      if (cache_.size() >= kMaxCacheEntries) cache_.clear();
      std::string rewritten = Rewrite(r.header);
      std::shared_ptr<const std::string> value;
      if (rewritten != r.header) value = std::make_shared<const std::string>(std::move(rewritten));
      it = cache_.emplace(std::string(r.header), std::move(value)).first;
    }
    if (it->second) {
      r.header = *it->second;
      parts.storage.push_back(it->second);
      changed = true;
    }
  }
  return changed;
}

ItemFilter::ItemFilter(FilterRules traces, FilterRules metrics, FilterRules logs)
    : traces_(std::move(traces)), metrics_(std::move(metrics)), logs_(std::move(logs)) {
  traces_resource_ = NeedsResource(traces_);
  metrics_resource_ = NeedsResource(metrics_);
  logs_resource_ = NeedsResource(logs_);
  traces_attributes_ = NeedsAttributes(traces_);
  logs_attributes_ = NeedsAttributes(logs_);
}

const FilterRules& ItemFilter::RulesFor(Signal signal) const {
  return signal == Signal::kTraces ? traces_ : signal == Signal::kMetrics ? metrics_ : logs_;
}

int64_t ItemFilter::Apply(RequestParts& parts, DropCounts* dropped) const {
  const FilterRules& rules = RulesFor(parts.signal);
  if (rules.empty()) return 0;
  const bool needs_resource = parts.signal == Signal::kTraces    ? traces_resource_
                              : parts.signal == Signal::kMetrics ? metrics_resource_
                                                                 : logs_resource_;
  int64_t removed = 0;
  AttributeList resource_attributes;
  SpanFields span;
  LogFields log;
  PointFields point;
  std::vector<bool> resources_emptied(parts.resources.size(), false);
  for (size_t ri = 0; ri < parts.resources.size(); ++ri) {
    ResourcePart& resource = parts.resources[ri];
    resource_attributes.Clear();
    if (needs_resource) {
      (void)CollectAttributes(FieldOf(resource.header, kResourceEntryResourceField), kResourceAttributesField,
                              &resource_attributes);
    }
    std::vector<bool> scopes_emptied(resource.scopes.size(), false);
    for (size_t si = 0; si < resource.scopes.size(); ++si) {
      ScopePart& scope = resource.scopes[si];
      if (scope.items.empty()) continue;
      FilterSubject subject;
      subject.resource_attributes = &resource_attributes;
      ScopeNameVersion(scope.header, &subject.scope_name, &subject.scope_version);
      const int64_t before = scope.item_count;
      if (parts.signal == Signal::kMetrics) {
        std::vector<std::string_view> kept;
        kept.reserve(scope.items.size());
        int64_t points = 0;
        for (std::string_view metric : scope.items) {
          std::optional<MetricOutcome> o = FilterMetric(metric, rules, subject, &point, dropped);
          if (!o) {  // broken framing inside the metric (DecomposeRequest checked it): keep it as it is
            kept.push_back(metric);
            points += CountMetricPoints(metric).ok() ? *CountMetricPoints(metric) : 0;
            continue;
          }
          if (o->before > 0 && o->after == 0) continue;
          kept.push_back(o->rebuilt ? parts.Own(std::move(*o->rebuilt)) : metric);
          points += o->after;
        }
        scope.items = std::move(kept);
        scope.item_count = points;
      } else {
        std::erase_if(scope.items, [&](std::string_view item) {
          bool decoded;
          if (parts.signal == Signal::kTraces) {
            decoded = DecodeSpanFields(item, &span, traces_attributes_);
            subject.span = &span;
          } else {
            decoded = DecodeLogFields(item, &log, logs_attributes_);
            subject.log = &log;
          }
          if (!decoded) {
            dropped->Add(DropReason::kMalformed, 1);
            return true;
          }
          std::optional<DropReason> why = Decide(rules, subject);
          if (why) dropped->Add(*why, 1);
          return why.has_value();
        });
        scope.item_count = static_cast<int64_t>(scope.items.size());
      }
      removed += before - scope.item_count;
      scopes_emptied[si] = scope.items.empty();
    }
    bool resource_emptied = false;
    RemoveEmptied(resource, scopes_emptied, &resource_emptied);
    resources_emptied[ri] = resource_emptied;
  }
  RemoveEmptiedResources(parts, resources_emptied);
  return removed;
}

uint32_t TraceIdHash(std::string_view trace_id, uint32_t seed) {
  uint32_t h = 2166136261u;  // FNV-1a offset basis
  auto add = [&h](uint8_t b) {
    h ^= b;
    h *= 16777619u;  // FNV prime
  };
  for (int i = 0; i < 4; ++i) add(static_cast<uint8_t>(seed >> (8 * i)));
  for (char c : trace_id) add(static_cast<uint8_t>(c));
  return h;
}

TraceSampler::TraceSampler(double percent, uint32_t seed, bool logs) : seed_(seed), logs_(logs) {
  // Single precision, as the collector computes it.
  const float scaled = static_cast<float>(std::clamp(percent, 0.0, 100.0)) * 163.84f;
  threshold_ = std::min<uint32_t>(static_cast<uint32_t>(scaled), kBuckets);
}

bool TraceSampler::Keep(std::string_view trace_id) const {
  return (TraceIdHash(trace_id, seed_) & (kBuckets - 1)) < threshold_;
}

int64_t TraceSampler::Apply(RequestParts& parts, DropCounts* dropped) const {
  if (!enabled()) return 0;
  uint32_t id_field;
  if (parts.signal == Signal::kTraces) {
    id_field = 1;  // Span.trace_id
  } else if (parts.signal == Signal::kLogs && logs_) {
    id_field = 9;  // LogRecord.trace_id
  } else {
    return 0;
  }
  const bool logs = parts.signal == Signal::kLogs;
  int64_t removed = 0;
  std::vector<bool> resources_emptied(parts.resources.size(), false);
  for (size_t ri = 0; ri < parts.resources.size(); ++ri) {
    ResourcePart& resource = parts.resources[ri];
    std::vector<bool> scopes_emptied(resource.scopes.size(), false);
    for (size_t si = 0; si < resource.scopes.size(); ++si) {
      ScopePart& scope = resource.scopes[si];
      if (scope.items.empty()) continue;
      const size_t before = scope.items.size();
      std::erase_if(scope.items, [&](std::string_view item) {
        std::string_view trace_id = FieldOf(item, id_field);
        if (logs && trace_id.size() != 16) return false;  // not part of a trace
        return !Keep(trace_id);
      });
      const auto gone = static_cast<int64_t>(before - scope.items.size());
      scope.item_count -= gone;
      removed += gone;
      scopes_emptied[si] = scope.items.empty();
    }
    bool resource_emptied = false;
    RemoveEmptied(resource, scopes_emptied, &resource_emptied);
    resources_emptied[ri] = resource_emptied;
  }
  RemoveEmptiedResources(parts, resources_emptied);
  dropped->Add(DropReason::kSampling, removed);
  return removed;
}

}  // namespace telkit
