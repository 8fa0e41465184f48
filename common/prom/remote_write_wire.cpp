#include "common/prom/remote_write_wire.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <type_traits>

#include "common/base/utf8.h"

namespace telkit {
namespace wire_internal {

bool SkipValue(const uint8_t** p, const uint8_t* end, uint32_t number, uint32_t wire_type, int depth) {
  uint64_t v;
  switch (wire_type) {
    case 0: return ReadVarint(p, end, &v);
    case 1:
      if (end - *p < 8) return false;
      *p += 8;
      return true;
    case 5:
      if (end - *p < 4) return false;
      *p += 4;
      return true;
    case 2:
      if (!ReadVarint(p, end, &v) || v > static_cast<uint64_t>(end - *p)) return false;
      *p += v;
      return true;
    case 3:
      if (depth >= 100) return false;
      for (;;) {
        uint64_t tag;
        if (!ReadVarint(p, end, &tag) || tag > 0xFFFFFFFFu || (tag >> 3) == 0) return false;
        if ((tag & 7) == 4) return (tag >> 3) == number;
        if (!SkipValue(p, end, static_cast<uint32_t>(tag >> 3), static_cast<uint32_t>(tag & 7), depth + 1)) {
          return false;
        }
      }
    default: return false;
  }
}

}  // namespace wire_internal

namespace {

using wire_internal::ReadVarint;
using wire_internal::SkipValue;

// Calls f(number, wire_type, value, bytes[, start]) for every field of
// `message`; false when malformed. `value` holds varints and fixed values,
// `bytes` the payload of length-delimited fields, `start` the field's tag.
template <class F>
[[gnu::always_inline]] inline bool ForEachField(std::string_view message, F&& f) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(message.data());
  const uint8_t* end = p + message.size();
  while (p < end) {
    const char* start = reinterpret_cast<const char*>(p);
    uint64_t tag;
    if (!ReadVarint(&p, end, &tag) || tag > 0xFFFFFFFFu || (tag >> 3) == 0) return false;
    const uint32_t number = static_cast<uint32_t>(tag >> 3), type = static_cast<uint32_t>(tag & 7);
    uint64_t value = 0;
    std::string_view bytes;
    switch (type) {
      case 0:
        if (!ReadVarint(&p, end, &value)) return false;
        break;
      case 1:
        if (end - p < 8) return false;
        std::memcpy(&value, p, 8);  // little-endian hosts only
        p += 8;
        break;
      case 2: {
        uint64_t len;
        if (!ReadVarint(&p, end, &len) || len > static_cast<uint64_t>(end - p)) return false;
        bytes = std::string_view(reinterpret_cast<const char*>(p), len);
        p += len;
        break;
      }
      default:
        if (!SkipValue(&p, end, number, type)) return false;
        continue;  // groups and fixed32: no field of ours
    }
    if constexpr (std::is_invocable_v<F, uint32_t, uint32_t, uint64_t, std::string_view, const char*>) {
      if (!f(number, type, value, bytes, start)) return false;
    } else {
      if (!f(number, type, value, bytes)) return false;
    }
  }
  return true;
}

bool ParseLabel(std::string_view message, WireLabel* out) {
  *out = {};
  return ForEachField(message, [&](uint32_t number, uint32_t type, uint64_t, std::string_view bytes) {
    if (type == 2 && number == 1) out->name = bytes;
    if (type == 2 && number == 2) out->value = bytes;
    return true;
  });
}

bool ParseSample(std::string_view message, Sample* out) {
  *out = {};
  return ForEachField(message, [&](uint32_t number, uint32_t type, uint64_t value, std::string_view) {
    if (type == 1 && number == 1) out->v = std::bit_cast<double>(value);
    if (type == 0 && number == 2) out->t = static_cast<int64_t>(value);
    return true;
  });
}

bool Structural(std::string_view message) {
  return ForEachField(message, [](uint32_t, uint32_t, uint64_t, std::string_view) { return true; });
}

// What protobuf's parser checks of an Exemplar: its labels are Label messages.
bool ExemplarStructural(std::string_view message) {
  return ForEachField(message, [](uint32_t number, uint32_t type, uint64_t, std::string_view bytes) {
    WireLabel l;
    return !(type == 2 && number == 1) || ParseLabel(bytes, &l);
  });
}

// What protobuf's parser checks of a native Histogram: bucket spans are
// messages, packed deltas are varints, packed counts whole doubles.
bool HistogramStructural(std::string_view message) {
  return ForEachField(message, [](uint32_t number, uint32_t type, uint64_t, std::string_view bytes) {
    if (type != 2) return true;
    switch (number) {
      case 8:
      case 11: return Structural(bytes);
      case 9:
      case 12: {
        const uint8_t* p = reinterpret_cast<const uint8_t*>(bytes.data());
        const uint8_t* end = p + bytes.size();
        uint64_t v;
        while (p < end) {
          if (!ReadVarint(&p, end, &v)) return false;
        }
        return true;
      }
      case 10:
      case 13:
      case 16: return bytes.size() % 8 == 0;
      default: return true;
    }
  });
}

bool ValidLabelView(const WireLabel& l, const LabelLimits& limits) {
  return IsValidLabelName(l.name) && IsValidUtf8(l.value) && l.name.size() <= limits.max_name_bytes &&
         l.value.size() <= limits.max_value_bytes;
}

}  // namespace

bool ParseWireSeries(std::string_view message, WireSeries* out) {
  out->message = message;
  out->labels.clear();
  out->samples.clear();
  out->exemplars.clear();
  out->histograms = 0;
  const char* key_begin = nullptr;
  const char* key_end = nullptr;
  bool contiguous = true;
  bool ok = ForEachField(message, [&](uint32_t number, uint32_t type, uint64_t, std::string_view bytes,
                                      const char* start) {
    if (type != 2) return true;
    switch (number) {
      case 1: {
        WireLabel l;
        if (!ParseLabel(bytes, &l)) return false;
        out->labels.push_back(l);
        // The whole field, tag through payload.
        if (key_begin == nullptr) {
          key_begin = start;
        } else if (start != key_end) {
          contiguous = false;
        }
        key_end = bytes.data() + bytes.size();
        return true;
      }
      case 2: {
        Sample s;
        if (!ParseSample(bytes, &s)) return false;
        out->samples.push_back(s);
        return true;
      }
      case 3:
        if (!ExemplarStructural(bytes)) return false;
        out->exemplars.push_back(bytes);
        return true;
      case 4:
        if (!HistogramStructural(bytes)) return false;
        ++out->histograms;
        return true;
      default: return true;
    }
  });
  if (!ok) return false;
  if (key_begin == nullptr) {
    out->label_key = {};
  } else if (contiguous) {
    out->label_key = std::string_view(key_begin, static_cast<size_t>(key_end - key_begin));
  } else {
    // Rare: other fields between the labels. The label fields, re-encoded
    // as they were (the same bytes in the same order).
    out->key_buf.clear();
    for (const WireLabel& l : out->labels) {
      std::string label;
      auto put_len = [](std::string* o, uint32_t number, std::string_view b) {
        o->push_back(static_cast<char>((number << 3) | 2));
        for (size_t n = b.size();; n >>= 7) {
          if (n < 0x80) {
            o->push_back(static_cast<char>(n));
            break;
          }
          o->push_back(static_cast<char>((n & 0x7F) | 0x80));
        }
        o->append(b);
      };
      // Label fields as protobuf writes them (name, then value): bytes a
      // sender could have sent adjacent for the same labels, so equal keys
      // still mean equal labels.
      put_len(&label, 1, l.name);
      put_len(&label, 2, l.value);
      put_len(&out->key_buf, 1, label);
    }
    out->label_key = out->key_buf;
  }
  return true;
}

bool ParseWireMetadata(std::string_view message, WireMetadata* out) {
  *out = {};
  return ForEachField(message, [&](uint32_t number, uint32_t type, uint64_t value, std::string_view bytes) {
    if (type == 0 && number == 1) out->type = static_cast<int>(static_cast<int32_t>(value));
    if (type == 2 && number == 2) out->family = bytes;
    if (type == 2 && number == 4) out->help = bytes;
    if (type == 2 && number == 5) out->unit = bytes;
    return true;
  });
}

bool CheckWireLabels(WireSeries* series, const LabelLimits& limits, PromReject* reject) {
  std::vector<WireLabel>& v = series->sort_buf;
  v.clear();
  for (const WireLabel& l : series->labels) {
    if (!l.value.empty()) v.push_back(l);
  }
  std::sort(v.begin(), v.end(), [](const WireLabel& a, const WireLabel& b) { return a.name < b.name; });
  std::string_view metric;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0 && v[i].name == v[i - 1].name) {
      *reject = PromReject::kDuplicateLabelName;
      return false;
    }
    if (v[i].name == "__name__") metric = v[i].value;
  }
  // CheckSeriesLabels' rules, in its order.
  LabelProblem problem = LabelProblem::kNone;
  if (metric.empty()) {
    problem = LabelProblem::kMissingMetricName;
  } else if (!IsValidMetricName(metric)) {
    problem = LabelProblem::kInvalidMetricName;
  } else if (v.size() > limits.max_labels) {
    problem = LabelProblem::kTooManyLabels;
  } else {
    for (const WireLabel& l : v) {
      if (l.name.size() > limits.max_name_bytes) {
        problem = LabelProblem::kNameTooLong;
      } else if (l.value.size() > limits.max_value_bytes) {
        problem = LabelProblem::kValueTooLong;
      } else if (!IsValidLabelName(l.name)) {
        problem = LabelProblem::kInvalidLabelName;
      } else if (!IsValidUtf8(l.value)) {
        problem = LabelProblem::kInvalidLabelValue;
      }
      if (problem != LabelProblem::kNone) break;
    }
  }
  if (problem == LabelProblem::kNone) return true;
  *reject = RejectForLabelProblem(problem);
  return false;
}

Result<Labels> WireLabelsToLabels(std::span<const WireLabel> labels) {
  std::vector<Label> out;
  out.reserve(labels.size());
  for (const WireLabel& l : labels) out.push_back({std::string(l.name), std::string(l.value)});
  return Labels::FromUnsorted(std::move(out));
}

bool DecodeWireExemplar(std::string_view message, const LabelLimits& limits, Exemplar* out) {
  std::vector<WireLabel> labels;
  double value = 0;
  int64_t t = 0;
  bool ok = ForEachField(message, [&](uint32_t number, uint32_t type, uint64_t v, std::string_view bytes) {
    if (type == 2 && number == 1) {
      WireLabel l;
      if (!ParseLabel(bytes, &l)) return false;
      labels.push_back(l);
    }
    if (type == 1 && number == 2) value = std::bit_cast<double>(v);
    if (type == 0 && number == 3) t = static_cast<int64_t>(v);
    return true;
  });
  if (!ok) return false;
  for (const WireLabel& l : labels) {
    if (!l.value.empty() && !ValidLabelView(l, limits)) return false;
  }
  Result<Labels> sorted = WireLabelsToLabels(labels);
  if (!sorted.ok()) return false;
  out->labels = std::move(sorted).value();
  out->value = value;
  out->t = t;
  return true;
}

MetricFamilyType FamilyTypeFromProm(int type) {
  switch (type) {
    case 1: return MetricFamilyType::kCounter;
    case 2: return MetricFamilyType::kGauge;
    case 3: return MetricFamilyType::kHistogram;
    case 4: return MetricFamilyType::kGaugeHistogram;
    case 5: return MetricFamilyType::kSummary;
    case 6: return MetricFamilyType::kInfo;
    case 7: return MetricFamilyType::kStateSet;
    default: return MetricFamilyType::kUnknown;
  }
}

}  // namespace telkit
