#include "common/pipeline/item_fields.h"

#include <charconv>
#include <cstring>

#include "common/pipeline/proto_wire.h"
#include "common/pipeline/request_parts.h"

namespace telkit {
namespace {

int32_t AsInt32(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

double AsDouble(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

}  // namespace

AnyValueView DecodeAnyValue(std::string_view bytes) {
  AnyValueView v;
  v.kind = AnyValueView::Kind::kEmpty;
  WireReader r(bytes);
  WireField f;
  while (r.Next(&f)) {
    switch (f.number) {
      case 1:
        if (f.wire_type != kWireLen) break;
        v = {};
        v.kind = AnyValueView::Kind::kString;
        v.str = f.bytes;
        break;
      case 2:
        if (f.wire_type != kWireVarint) break;
        v = {};
        v.kind = AnyValueView::Kind::kBool;
        v.bool_value = f.value != 0;
        break;
      case 3:
        if (f.wire_type != kWireVarint) break;
        v = {};
        v.kind = AnyValueView::Kind::kInt;
        v.int_value = static_cast<int64_t>(f.value);
        break;
      case 4:
        if (f.wire_type != kWireFixed64) break;
        v = {};
        v.kind = AnyValueView::Kind::kDouble;
        v.double_value = AsDouble(f.value);
        break;
      case 5:
        v = {};
        v.kind = AnyValueView::Kind::kArray;
        break;
      case 6:
        v = {};
        v.kind = AnyValueView::Kind::kKvlist;
        break;
      case 7:
        if (f.wire_type != kWireLen) break;
        v = {};
        v.kind = AnyValueView::Kind::kBytes;
        v.str = f.bytes;
        break;
      default:
        break;
    }
  }
  return v;
}

namespace {

// True when the KeyValue message's key is `key`; *value is then its AnyValue.
bool KeyValueMatches(std::string_view key_value, std::string_view key, std::string_view* value) {
  WireReader r(key_value);
  WireField f;
  bool key_matches = false;
  while (r.Next(&f)) {
    if (f.wire_type != kWireLen) continue;
    if (f.number == 1) {
      key_matches = f.bytes == key;
      if (!key_matches) return false;  // one key a KeyValue: the value need not be read
    }
    if (f.number == 2) *value = f.bytes;
  }
  return key_matches;
}

}  // namespace

void AttributeList::Add(std::string_view raw, std::string_view key_value) {
  if (split_.empty()) {
    if (run_.empty()) {
      run_ = raw;
      return;
    }
    if (run_.data() + run_.size() == raw.data()) {
      run_ = std::string_view(run_.data(), run_.size() + raw.size());
      return;
    }
    WireReader r(run_);  // interrupted: from now on one view a KeyValue
    WireField f;
    while (r.Next(&f)) split_.push_back(f.bytes);
    run_ = {};
  }
  split_.push_back(key_value);
}

AnyValueView AttributeList::Find(std::string_view key) const {
  std::string_view value;
  WireReader r(run_);
  WireField f;
  while (r.Next(&f)) {
    if (f.wire_type == kWireLen && KeyValueMatches(f.bytes, key, &value)) return DecodeAnyValue(value);
  }
  for (std::string_view kv : split_) {
    if (KeyValueMatches(kv, key, &value)) return DecodeAnyValue(value);
  }
  return {};
}

bool CollectAttributes(std::string_view message, uint32_t field, AttributeList* attributes) {
  attributes->Clear();
  WireReader r(message);
  WireField f;
  while (r.Next(&f)) {
    if (f.number == field && f.wire_type == kWireLen) attributes->Add(f.raw, f.bytes);
  }
  return r.ok();
}

bool AnyValueText(const AnyValueView& v, std::string* out) {
  out->clear();
  char buf[64];
  switch (v.kind) {
    case AnyValueView::Kind::kString:
      out->assign(v.str);
      return true;
    case AnyValueView::Kind::kBool:
      out->assign(v.bool_value ? "true" : "false");
      return true;
    case AnyValueView::Kind::kInt: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.int_value);
      out->assign(buf, r.ptr);
      return true;
    }
    case AnyValueView::Kind::kDouble: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.double_value);
      out->assign(buf, r.ptr);
      return true;
    }
    case AnyValueView::Kind::kBytes: {
      static constexpr char kHex[] = "0123456789abcdef";
      for (unsigned char c : v.str) {
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
      }
      return true;
    }
    default:
      return false;
  }
}

bool DecodeSpanFields(std::string_view span, SpanFields* out, bool attributes) {
  AttributeList list = std::move(out->attributes);
  list.Clear();
  *out = SpanFields{};
  out->attributes = std::move(list);
  WireReader r(span);
  WireField f;
  while (r.Next(&f)) {
    switch (f.number) {
      case 1: if (f.wire_type == kWireLen) out->trace_id = f.bytes; break;
      case 2: if (f.wire_type == kWireLen) out->span_id = f.bytes; break;
      case 4: if (f.wire_type == kWireLen) out->parent_span_id = f.bytes; break;
      case 5: if (f.wire_type == kWireLen) out->name = f.bytes; break;
      case 6: if (f.wire_type == kWireVarint) out->kind = AsInt32(f.value); break;
      case 7: if (f.wire_type == kWireFixed64) out->start_time_unix_nano = f.value; break;
      case 8: if (f.wire_type == kWireFixed64) out->end_time_unix_nano = f.value; break;
      case 9: if (attributes && f.wire_type == kWireLen) out->attributes.Add(f.raw, f.bytes); break;
      case 15: {
        if (f.wire_type != kWireLen) break;
        WireReader s(f.bytes);
        WireField sf;
        while (s.Next(&sf)) {
          if (sf.number == 2 && sf.wire_type == kWireLen) out->status_message = sf.bytes;
          if (sf.number == 3 && sf.wire_type == kWireVarint) out->status_code = AsInt32(sf.value);
        }
        if (!s.ok()) return false;
        break;
      }
      default: break;
    }
  }
  return r.ok();
}

bool DecodeLogFields(std::string_view log_record, LogFields* out, bool attributes) {
  AttributeList list = std::move(out->attributes);
  list.Clear();
  *out = LogFields{};
  out->attributes = std::move(list);
  WireReader r(log_record);
  WireField f;
  while (r.Next(&f)) {
    switch (f.number) {
      case 2: if (f.wire_type == kWireVarint) out->severity_number = AsInt32(f.value); break;
      case 3: if (f.wire_type == kWireLen) out->severity_text = f.bytes; break;
      case 5: if (f.wire_type == kWireLen) out->body = DecodeAnyValue(f.bytes); break;
      case 6: if (attributes && f.wire_type == kWireLen) out->attributes.Add(f.raw, f.bytes); break;
      case 9: if (f.wire_type == kWireLen) out->trace_id = f.bytes; break;
      case 10: if (f.wire_type == kWireLen) out->span_id = f.bytes; break;
      case 12: if (f.wire_type == kWireLen) out->event_name = f.bytes; break;
      default: break;
    }
  }
  return r.ok();
}

bool DecodePointFields(std::string_view point, PointFields* out) {
  out->attributes.Clear();
  out->value = {};
  uint32_t attributes_field = 0;
  switch (out->data_field) {
    case 5: case 7: case 11: attributes_field = 7; break;  // NumberDataPoint, SummaryDataPoint
    case 9: attributes_field = 9; break;                    // HistogramDataPoint
    case 10: attributes_field = 1; break;                   // ExponentialHistogramDataPoint
    default: break;
  }
  const bool number_point = out->data_field == 5 || out->data_field == 7;
  WireReader r(point);
  WireField f;
  while (r.Next(&f)) {
    if (f.number == attributes_field && f.wire_type == kWireLen) {
      out->attributes.Add(f.raw, f.bytes);
    } else if (number_point && f.number == 4 && f.wire_type == kWireFixed64) {
      out->value = {};
      out->value.kind = AnyValueView::Kind::kDouble;
      out->value.double_value = AsDouble(f.value);
    } else if (number_point && f.number == 6 && f.wire_type == kWireFixed64) {
      out->value = {};
      out->value.kind = AnyValueView::Kind::kInt;
      out->value.int_value = static_cast<int64_t>(f.value);
    }
  }
  return r.ok();
}

void ScopeNameVersion(std::string_view scope_header, std::string_view* name, std::string_view* version) {
  *name = {};
  *version = {};
  WireReader r(scope_header);
  WireField f;
  while (r.Next(&f)) {
    if (f.number != kScopeEntryScopeField || f.wire_type != kWireLen) continue;
    WireReader s(f.bytes);
    WireField sf;
    while (s.Next(&sf)) {
      if (sf.wire_type != kWireLen) continue;
      if (sf.number == 1) *name = sf.bytes;
      if (sf.number == 2) *version = sf.bytes;
    }
  }
}

}  // namespace telkit
