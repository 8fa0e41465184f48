#include "common/tracestore/span_record.h"

#include <array>
#include <cstdio>
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

}  // namespace

std::span<const std::string_view> DefaultIndexedAttributes() { return kIndexed; }

Status SplitTraceRequest(std::string_view request, const SpanLimits& limits, std::vector<SpanRecord>* out,
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
