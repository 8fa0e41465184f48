#include "common/tracestore/span_record.h"

#include <array>
#include <cstdio>
#include <cstring>
#include <map>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace pb = opentelemetry::proto;
using pb::collector::trace::v1::ExportTraceServiceRequest;
using pb::common::v1::AnyValue;
using pb::common::v1::KeyValue;

constexpr std::array<std::string_view, 12> kIndexed = {
    "http.method",       "http.request.method", "http.status_code", "http.response.status_code",
    "http.route",        "http.target",         "url.path",         "db.system",
    "db.operation",      "peer.service",        "rpc.service",      "rpc.method"};

// Cuts `s` to at most `n` bytes without splitting a UTF-8 character.
void CutUtf8(std::string* s, size_t n) {
  while (n > 0 && (static_cast<unsigned char>((*s)[n]) & 0xC0) == 0x80) --n;
  s->resize(n);
}

void LimitAttrs(google::protobuf::RepeatedPtrField<KeyValue>* attrs, size_t max, uint64_t* cut) {
  if (max == 0) return;
  for (KeyValue& kv : *attrs) {
    if (kv.value().has_string_value() && kv.value().string_value().size() > max) {
      CutUtf8(kv.mutable_value()->mutable_string_value(), max);
      ++*cut;
    }
  }
}

bool ValueString(const AnyValue& v, std::string* out) {
  switch (v.value_case()) {
    case AnyValue::kStringValue: *out = v.string_value(); return true;
    case AnyValue::kIntValue: *out = std::to_string(v.int_value()); return true;
    case AnyValue::kBoolValue: *out = v.bool_value() ? "true" : "false"; return true;
    case AnyValue::kDoubleValue: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", v.double_value());
      *out = buf;
      return true;
    }
    default: return false;
  }
}

bool Indexed(std::string_view key) {
  for (std::string_view k : kIndexed) {
    if (k == key) return true;
  }
  return false;
}

void FillFields(const pb::resource::v1::Resource& res, const pb::trace::v1::Span& span, SpanRecord* r) {
  r->trace_id = span.trace_id();
  r->span_id = span.span_id();
  r->parent_span_id = span.parent_span_id();
  r->name = span.name();
  r->kind = span.kind();
  r->status = span.status().code();
  r->start_ns = span.start_time_unix_nano();
  r->end_ns = span.end_time_unix_nano();
  r->service.clear();
  r->attributes.clear();
  std::string v;
  for (const KeyValue& kv : res.attributes()) {
    if (kv.key() == "service.name" && kv.value().has_string_value()) r->service = kv.value().string_value();
  }
  for (const KeyValue& kv : span.attributes()) {
    if (Indexed(kv.key()) && ValueString(kv.value(), &v)) r->attributes.emplace_back(kv.key(), v);
  }
  for (const KeyValue& kv : res.attributes()) {
    if (Indexed(kv.key()) && ValueString(kv.value(), &v)) r->attributes.emplace_back(kv.key(), v);
  }
}

void AppendField1(std::string* out, std::string_view bytes) {
  out->push_back('\x0a');
  uint64_t n = bytes.size();
  while (n >= 0x80) {
    out->push_back(static_cast<char>((n & 0x7F) | 0x80));
    n >>= 7;
  }
  out->push_back(static_cast<char>(n));
  out->append(bytes);
}

// ---- the fast path: a protobuf wire-format walk, no message objects ----
//
// Splits the request by slicing: each span record is built from the raw
// bytes of its resource, scope and span, so nothing is parsed into message
// objects or re-encoded field by field. It gives up (returns false; the
// message-based path then runs) on anything unusual: wire errors, a
// resource or scope given twice, or a resource or span larger than the
// attribute limit (only such can hold a value the limit would cut).

struct Wire {
  const char* p;
  const char* end;
  bool Varint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      auto b = static_cast<unsigned char>(*p++);
      r |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (b < 0x80) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  // Next field: number, wire type, and for LEN its bytes, for VARINT /
  // I64 its value.
  bool Next(uint32_t* field, int* type, std::string_view* bytes, uint64_t* value) {
    uint64_t key;
    if (!Varint(&key)) return false;
    *field = static_cast<uint32_t>(key >> 3);
    *type = static_cast<int>(key & 7);
    switch (*type) {
      case 0: return Varint(value);
      case 1:
        if (end - p < 8) return false;
        std::memcpy(value, p, 8);
        p += 8;
        return true;
      case 2: {
        uint64_t n;
        if (!Varint(&n) || n > static_cast<uint64_t>(end - p)) return false;
        *bytes = std::string_view(p, n);
        p += n;
        return true;
      }
      case 5:
        if (end - p < 4) return false;
        *value = static_cast<uint32_t>(static_cast<unsigned char>(p[0]) | static_cast<unsigned char>(p[1]) << 8 |
                                       static_cast<unsigned char>(p[2]) << 16 |
                                       static_cast<uint32_t>(static_cast<unsigned char>(p[3])) << 24);
        p += 4;
        return true;
      default: return false;
    }
  }
};

Wire WireOf(std::string_view b) { return Wire{b.data(), b.data() + b.size()}; }

void PutVarint(std::string* out, uint64_t n) {
  while (n >= 0x80) {
    out->push_back(static_cast<char>((n & 0x7F) | 0x80));
    n >>= 7;
  }
  out->push_back(static_cast<char>(n));
}
size_t VarintSize(uint64_t n) {
  size_t k = 1;
  while (n >= 0x80) {
    n >>= 7;
    ++k;
  }
  return k;
}
void PutLen(std::string* out, char tag, std::string_view bytes) {
  out->push_back(tag);
  PutVarint(out, bytes.size());
  out->append(bytes);
}
size_t LenSize(size_t n) { return 1 + VarintSize(n) + n; }

// The string form of an AnyValue's scalar (as ValueString); false otherwise.
bool WireValueString(std::string_view any, std::string* out) {
  Wire w = WireOf(any);
  uint32_t f;
  int t;
  std::string_view b;
  uint64_t v = 0;
  bool have = false;
  while (w.p < w.end) {
    if (!w.Next(&f, &t, &b, &v)) return false;
    if (f == 1 && t == 2) {
      out->assign(b);
      have = true;
    } else if (f == 2 && t == 0) {
      *out = v ? "true" : "false";
      have = true;
    } else if (f == 3 && t == 0) {
      *out = std::to_string(static_cast<int64_t>(v));
      have = true;
    } else if (f == 4 && t == 1) {
      double d;
      std::memcpy(&d, &v, 8);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      *out = buf;
      have = true;
    } else {
      have = false;  // array, kvlist, bytes: not indexed
    }
  }
  return have;
}

// Indexed attributes (and service.name when `service` is set) of repeated
// KeyValue fields numbered `field` in `msg`.
bool WireAttributes(std::string_view msg, uint32_t field, std::vector<std::pair<std::string, std::string>>* attrs,
                    std::string* service) {
  Wire w = WireOf(msg);
  uint32_t f;
  int t;
  std::string_view b;
  uint64_t v;
  std::string value;
  while (w.p < w.end) {
    if (!w.Next(&f, &t, &b, &v)) return false;
    if (f != field || t != 2) continue;
    Wire kv = WireOf(b);
    std::string_view key, any;
    while (kv.p < kv.end) {
      uint32_t kf;
      int kt;
      std::string_view kb;
      uint64_t kvv;
      if (!kv.Next(&kf, &kt, &kb, &kvv)) return false;
      if (kf == 1 && kt == 2) key = kb;
      if (kf == 2 && kt == 2) any = kb;
    }
    if (service != nullptr && key == "service.name") {
      // Only a string value names the service.
      Wire a = WireOf(any);
      uint32_t af;
      int at;
      std::string_view ab;
      uint64_t av;
      std::string svc;
      bool is_string = false;
      while (a.p < a.end && a.Next(&af, &at, &ab, &av)) {
        is_string = af == 1 && at == 2;
        if (is_string) svc.assign(ab);
      }
      if (is_string) *service = svc;
    }
    if (Indexed(key) && WireValueString(any, &value)) attrs->emplace_back(std::string(key), std::move(value));
  }
  return true;
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (len == 0 || c > 0xF4 || n - i < len) return false;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if ((c1 & 0xC0) != 0x80) return false;
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) {
      return false;
    }
    for (size_t k = 2; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// The OTLP messages whose string fields protobuf checks for UTF-8 when it
// parses (proto3): the fast path must refuse what the parser would.
enum class Msg { kKeyValue, kAnyValue, kArray, kKvList, kResource, kScope, kSpan, kEvent, kLink, kStatus };

// Whether the string fields of `bytes` (a message of type `m`) are UTF-8.
bool WireUtf8(std::string_view bytes, Msg m, int depth = 0) {
  if (depth > 64) return false;
  Wire w = WireOf(bytes);
  uint32_t f;
  int t;
  std::string_view b;
  uint64_t v;
  while (w.p < w.end) {
    if (!w.Next(&f, &t, &b, &v)) return false;
    if (t != 2) continue;
    bool str = false;
    Msg sub = m;
    bool msg = false;
    switch (m) {
      case Msg::kKeyValue: str = f == 1; msg = f == 2; sub = Msg::kAnyValue; break;
      case Msg::kAnyValue:
        str = f == 1;
        msg = f == 5 || f == 6;
        sub = f == 5 ? Msg::kArray : Msg::kKvList;
        break;
      case Msg::kArray: msg = f == 1; sub = Msg::kAnyValue; break;
      case Msg::kKvList: msg = f == 1; sub = Msg::kKeyValue; break;
      case Msg::kResource: msg = f == 1; sub = Msg::kKeyValue; break;
      case Msg::kScope: str = f == 1 || f == 2; msg = f == 3; sub = Msg::kKeyValue; break;
      case Msg::kSpan:
        str = f == 3 || f == 5;
        msg = f == 9 || f == 11 || f == 13 || f == 15;
        sub = f == 9 ? Msg::kKeyValue : f == 11 ? Msg::kEvent : f == 13 ? Msg::kLink : Msg::kStatus;
        break;
      case Msg::kEvent: str = f == 2; msg = f == 3; sub = Msg::kKeyValue; break;
      case Msg::kLink: str = f == 3; msg = f == 4; sub = Msg::kKeyValue; break;
      case Msg::kStatus: str = f == 2; break;
    }
    if (str && !ValidUtf8(b)) return false;
    if (msg && !WireUtf8(b, sub, depth + 1)) return false;
  }
  return true;
}

struct WireResource {
  std::string_view resource, schema_url;
  bool has_resource = false;
  std::string service;
  std::vector<std::pair<std::string, std::string>> attrs;  // indexed resource attributes
};

bool FastSplit(std::string_view request, const SpanLimits& limits, std::vector<SpanRecord>* out, SplitStats* stats) {
  const size_t first_out = out->size();
  SplitStats local;
  auto fail = [&] {
    out->resize(first_out);
    return false;
  };
  Wire req = WireOf(request);
  uint32_t f;
  int t;
  std::string_view b;
  uint64_t v;
  while (req.p < req.end) {
    if (!req.Next(&f, &t, &b, &v)) return fail();
    if (f != 1 || t != 2) continue;
    // ResourceSpans: resource, then its scope spans.
    WireResource res;
    std::vector<std::string_view> scope_spans;
    Wire rs = WireOf(b);
    while (rs.p < rs.end) {
      if (!rs.Next(&f, &t, &b, &v)) return fail();
      if (t != 2) continue;
      if (f == 1) {
        if (res.has_resource) return fail();
        res.has_resource = true;
        res.resource = b;
      } else if (f == 2) {
        scope_spans.push_back(b);
      } else if (f == 3) {
        res.schema_url = b;
      }
    }
    if (limits.max_attribute_bytes != 0 && res.resource.size() > limits.max_attribute_bytes) return fail();
    if (!ValidUtf8(res.schema_url) || !WireUtf8(res.resource, Msg::kResource)) return fail();
    if (!WireAttributes(res.resource, 1, &res.attrs, &res.service)) return fail();
    for (std::string_view ss_bytes : scope_spans) {
      std::string_view scope, scope_url;
      bool has_scope = false;
      std::vector<std::string_view> spans;
      Wire ss = WireOf(ss_bytes);
      while (ss.p < ss.end) {
        if (!ss.Next(&f, &t, &b, &v)) return fail();
        if (t != 2) continue;
        if (f == 1) {
          if (has_scope) return fail();
          has_scope = true;
          scope = b;
        } else if (f == 2) {
          spans.push_back(b);
        } else if (f == 3) {
          scope_url = b;
        }
      }
      if (!ValidUtf8(scope_url) || !WireUtf8(scope, Msg::kScope)) return fail();
      for (std::string_view span : spans) {
        ++local.spans;
        if (!WireUtf8(span, Msg::kSpan)) return fail();
        if (limits.max_attribute_bytes != 0 && span.size() > limits.max_attribute_bytes) return fail();
        SpanRecord r;
        std::string_view trace_id, span_id, parent, name;
        uint64_t kind = 0, start = 0, end = 0, status = 0;
        Wire w = WireOf(span);
        while (w.p < w.end) {
          if (!w.Next(&f, &t, &b, &v)) return fail();
          switch (f) {
            case 1: if (t == 2) trace_id = b; break;
            case 2: if (t == 2) span_id = b; break;
            case 4: if (t == 2) parent = b; break;
            case 5: if (t == 2) name = b; break;
            case 6: if (t == 0) kind = v; break;
            case 7: if (t == 1) start = v; break;
            case 8: if (t == 1) end = v; break;
            case 15: {
              if (t != 2) break;
              Wire st = WireOf(b);
              uint32_t sf;
              int stt;
              std::string_view sb;
              uint64_t sv;
              while (st.p < st.end) {
                if (!st.Next(&sf, &stt, &sb, &sv)) return fail();
                if (sf == 3 && stt == 0) status = sv;
              }
              break;
            }
            default: break;
          }
        }
        if (trace_id.size() != 16 || span_id.size() != 8) {
          ++local.invalid_spans;
          continue;
        }
        r.trace_id.assign(trace_id);
        r.span_id.assign(span_id);
        r.parent_span_id.assign(parent);
        r.name.assign(name);
        r.kind = static_cast<int>(static_cast<int32_t>(kind));
        r.status = static_cast<int>(static_cast<int32_t>(status));
        r.start_ns = start;
        r.end_ns = end;
        r.service = res.service;
        if (!WireAttributes(span, 9, &r.attributes, nullptr)) return fail();
        r.attributes.insert(r.attributes.end(), res.attrs.begin(), res.attrs.end());
        // ResourceSpans{resource, ScopeSpans{scope, span, schema_url}, schema_url},
        // the layout the message-based path serializes.
        size_t scope_len =
            LenSize(scope.size()) + LenSize(span.size()) + (scope_url.empty() ? 0 : LenSize(scope_url.size()));
        size_t total = LenSize(res.resource.size()) + LenSize(scope_len) +
                       (res.schema_url.empty() ? 0 : LenSize(res.schema_url.size()));
        r.otlp.reserve(total);
        PutLen(&r.otlp, '\x0a', res.resource);
        r.otlp.push_back('\x12');
        PutVarint(&r.otlp, scope_len);
        PutLen(&r.otlp, '\x0a', scope);
        PutLen(&r.otlp, '\x12', span);
        if (!scope_url.empty()) PutLen(&r.otlp, '\x1a', scope_url);
        if (!res.schema_url.empty()) PutLen(&r.otlp, '\x1a', res.schema_url);
        out->push_back(std::move(r));
      }
    }
  }
  stats->spans += local.spans;
  stats->invalid_spans += local.invalid_spans;
  return true;
}

}  // namespace

std::span<const std::string_view> DefaultIndexedAttributes() { return kIndexed; }

Status SplitTraceRequest(std::string_view request, const SpanLimits& limits, std::vector<SpanRecord>* out,
                         SplitStats* stats) {
  if (FastSplit(request, limits, out, stats)) return OkStatus();
  return SplitTraceRequestSlow(request, limits, out, stats);
}

Status SplitTraceRequestSlow(std::string_view request, const SpanLimits& limits, std::vector<SpanRecord>* out,
                             SplitStats* stats) {
  ExportTraceServiceRequest req;
  if (!req.ParseFromArray(request.data(), static_cast<int>(request.size()))) {
    return InvalidArgumentError("not an ExportTraceServiceRequest");
  }
  pb::trace::v1::ResourceSpans one;
  for (pb::trace::v1::ResourceSpans& rs : *req.mutable_resource_spans()) {
    LimitAttrs(rs.mutable_resource()->mutable_attributes(), limits.max_attribute_bytes, &stats->truncated_attributes);
    for (pb::trace::v1::ScopeSpans& ss : *rs.mutable_scope_spans()) {
      for (pb::trace::v1::Span& span : *ss.mutable_spans()) {
        ++stats->spans;
        if (span.trace_id().size() != 16 || span.span_id().size() != 8) {
          ++stats->invalid_spans;
          continue;
        }
        uint64_t& cut = stats->truncated_attributes;
        LimitAttrs(span.mutable_attributes(), limits.max_attribute_bytes, &cut);
        for (auto& e : *span.mutable_events()) LimitAttrs(e.mutable_attributes(), limits.max_attribute_bytes, &cut);
        for (auto& l : *span.mutable_links()) LimitAttrs(l.mutable_attributes(), limits.max_attribute_bytes, &cut);
        one.Clear();
        *one.mutable_resource() = rs.resource();
        one.set_schema_url(rs.schema_url());
        pb::trace::v1::ScopeSpans* s = one.add_scope_spans();
        *s->mutable_scope() = ss.scope();
        s->set_schema_url(ss.schema_url());
        *s->add_spans() = span;
        SpanRecord r;
        FillFields(rs.resource(), span, &r);
        one.SerializeToString(&r.otlp);
        out->push_back(std::move(r));
      }
    }
  }
  return OkStatus();
}

Status ParseSpanRecord(std::string otlp, SpanRecord* record) {
  pb::trace::v1::ResourceSpans rs;
  if (!rs.ParseFromString(otlp) || rs.scope_spans_size() != 1 || rs.scope_spans(0).spans_size() != 1) {
    return InvalidArgumentError("span record is not one ResourceSpans with one span");
  }
  FillFields(rs.resource(), rs.scope_spans(0).spans(0), record);
  record->otlp = std::move(otlp);
  return OkStatus();
}

Result<std::string> SpansToTraceRequest(std::span<const SpanRecord> spans) {
  ExportTraceServiceRequest req;
  std::map<std::string, pb::trace::v1::ResourceSpans*> by_resource;
  std::map<std::pair<pb::trace::v1::ResourceSpans*, std::string>, pb::trace::v1::ScopeSpans*> by_scope;
  pb::trace::v1::ResourceSpans rs;
  for (const SpanRecord& r : spans) {
    if (!rs.ParseFromString(r.otlp) || rs.scope_spans_size() != 1 || rs.scope_spans(0).spans_size() != 1) {
      return DataLossError("span record is not one ResourceSpans with one span");
    }
    std::string rkey = rs.resource().SerializeAsString();
    rkey += '\0';
    rkey += rs.schema_url();
    auto& dst = by_resource[rkey];
    if (dst == nullptr) {
      dst = req.add_resource_spans();
      *dst->mutable_resource() = rs.resource();
      dst->set_schema_url(rs.schema_url());
    }
    pb::trace::v1::ScopeSpans* src = rs.mutable_scope_spans(0);
    std::string skey = src->scope().SerializeAsString();
    skey += '\0';
    skey += src->schema_url();
    auto& sdst = by_scope[{dst, skey}];
    if (sdst == nullptr) {
      sdst = dst->add_scope_spans();
      *sdst->mutable_scope() = src->scope();
      sdst->set_schema_url(src->schema_url());
    }
    sdst->add_spans()->Swap(src->mutable_spans(0));
  }
  return req.SerializeAsString();
}

std::string ConcatTraceRequest(std::span<const SpanRecord* const> spans) {
  std::string out;
  for (const SpanRecord* r : spans) AppendField1(&out, r->otlp);
  return out;
}

std::string HexId(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    out.push_back(kHex[(static_cast<unsigned char>(c) >> 4) & 0xF]);
    out.push_back(kHex[static_cast<unsigned char>(c) & 0xF]);
  }
  return out;
}

Result<std::string> ParseHexId(std::string_view hex) {
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return InvalidArgumentError("odd number of hex digits in '" + std::string(hex) + "'");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int a = nib(hex[i]), b = nib(hex[i + 1]);
    if (a < 0 || b < 0) return InvalidArgumentError("not hex: '" + std::string(hex) + "'");
    out.push_back(static_cast<char>(a << 4 | b));
  }
  return out;
}

}  // namespace telkit
