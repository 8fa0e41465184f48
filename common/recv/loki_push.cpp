#include "common/recv/loki_push.h"

#include <fmt/format.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/base/utf8.h"
#include "loki/push.pb.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"

namespace telkit {
namespace {

std::string LabelsText(const std::vector<Label>& labels) {
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ", ";
    out += labels[i].name + "=\"" + EscapeLabelValue(labels[i].value) + "\"";
  }
  return out + "}";
}

// Judges one stream's labels (after UTF-8 repair of the values). On a
// rejection sets `message` and returns the reason.
std::optional<LokiReject> CheckLabels(std::vector<Label> raw, const LokiPushLimits& limits, Labels* out,
                                      std::string* message) {
  const std::string text = LabelsText(raw);
  if (raw.size() > limits.max_labels_per_stream) {
    *message = fmt::format("entry for stream '{}' has {} label names; limit {}", text, raw.size(),
                           limits.max_labels_per_stream);
    return LokiReject::kTooManyLabels;
  }
  for (const Label& l : raw) {
    if (!IsValidUserLabelName(l.name)) {
      *message = fmt::format("error parsing labels '{}': invalid label name '{}'", text, l.name);
      return LokiReject::kInvalidLabels;
    }
    if (l.name.size() > limits.max_label_name_bytes) {
      *message = fmt::format("stream '{}' has label name too long: '{}'", text, l.name);
      return LokiReject::kLabelTooLong;
    }
    if (l.value.size() > limits.max_label_value_bytes) {
      *message = fmt::format("stream '{}' has label value too long: '{}'", text, l.value.substr(0, 64));
      return LokiReject::kLabelTooLong;
    }
  }
  Result<Labels> labels = Labels::FromUnsorted(std::move(raw));
  if (!labels.ok()) {
    *message = fmt::format("stream '{}' has {}", text, labels.status().message());
    return LokiReject::kInvalidLabels;
  }
  if (labels->empty()) {
    *message = "error at least one label pair is required per stream";
    return LokiReject::kMissingLabels;
  }
  *out = std::move(labels).value();
  return std::nullopt;
}

// Accumulates streams and rejections while a body is decoded.
class Builder {
 public:
  explicit Builder(const LokiPushLimits& limits) : limits_(limits) {}

  // Starts a stream; false when its labels are refused (its entries are
  // then counted, not kept, by AddEntry).
  void StartStream(std::vector<Label> raw) {
    for (Label& l : raw) {
      out_.invalid_utf8 += static_cast<int64_t>(ReplaceInvalidUtf8(&l.name) + ReplaceInvalidUtf8(&l.value));
    }
    stream_reject_.reset();
    LokiStream s;
    std::string message;
    stream_reject_ = CheckLabels(std::move(raw), limits_, &s.labels, &message);
    if (stream_reject_) {
      stream_message_ = std::move(message);
      current_ = nullptr;
      return;
    }
    stream_text_ = s.labels.ToString();
    out_.streams.push_back(std::move(s));
    current_ = &out_.streams.back();
  }

  void AddEntry(LokiEntry e) {
    if (stream_reject_) {
      Reject(*stream_reject_, stream_message_);
      return;
    }
    // Repaired first: U+FFFD takes 3 bytes where the bad byte took 1.
    out_.invalid_utf8 += static_cast<int64_t>(ReplaceInvalidUtf8(&e.line));
    if (e.line.size() > limits_.max_line_bytes) {
      Reject(LokiReject::kLineTooLong,
             fmt::format("Max entry size '{}' bytes exceeded for stream '{}' while adding an entry with length '{}' bytes",
                         limits_.max_line_bytes, stream_text_, e.line.size()));
      return;
    }
    for (Label& m : e.metadata) {
      out_.invalid_utf8 += static_cast<int64_t>(ReplaceInvalidUtf8(&m.name) + ReplaceInvalidUtf8(&m.value));
    }
    current_->entries.push_back(std::move(e));
    ++out_.entries;
  }

  // Drops streams whose entries were all rejected (or that had none).
  DecodedLokiPush Finish() {
    std::erase_if(out_.streams, [](const LokiStream& s) { return s.entries.empty(); });
    return std::move(out_);
  }

  void AddInvalidUtf8(int64_t n) { out_.invalid_utf8 += n; }

 private:
  void Reject(LokiReject reason, const std::string& message) {
    ++out_.rejected_entries;
    ++out_.rejected_by_reason[static_cast<int>(reason)];
    if (out_.first_error.empty()) out_.first_error = message;
  }

  const LokiPushLimits& limits_;
  DecodedLokiPush out_;
  LokiStream* current_ = nullptr;  // valid until the next StartStream
  std::optional<LokiReject> stream_reject_;
  std::string stream_message_;
  std::string stream_text_;
};

Result<int64_t> ParseTimestamp(const nlohmann::json& v) {
  if (v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (!v.is_string()) return InvalidArgumentError("timestamp must be a string of Unix nanoseconds");
  const std::string& s = v.get_ref<const std::string&>();
  if (s.empty() || s.size() > 19) return InvalidArgumentError("invalid timestamp '" + s.substr(0, 32) + "'");
  int64_t ns = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return InvalidArgumentError("invalid timestamp '" + s + "'");
    ns = ns * 10 + (c - '0');
  }
  return ns;
}

Status DecodeJsonStreams(const nlohmann::json& doc, Builder& b) {
  if (!doc.is_object()) return InvalidArgumentError("push body must be a JSON object");
  auto streams = doc.find("streams");
  if (streams == doc.end()) return InvalidArgumentError("push body has no \"streams\"");
  if (!streams->is_array()) return InvalidArgumentError("\"streams\" must be an array");
  size_t si = 0;
  for (const nlohmann::json& stream : *streams) {
    const std::string where = fmt::format("streams[{}]", si++);
    if (!stream.is_object()) return InvalidArgumentError(where + " must be an object");
    std::vector<Label> labels;
    if (auto st = stream.find("stream"); st != stream.end() && !st->is_null()) {
      if (!st->is_object()) return InvalidArgumentError(where + ".stream must be an object of label values");
      for (auto it = st->begin(); it != st->end(); ++it) {
        if (!it.value().is_string()) {
          return InvalidArgumentError(where + ".stream." + it.key() + " must be a string");
        }
        labels.push_back(Label{it.key(), it.value().get<std::string>()});
      }
    }
    b.StartStream(std::move(labels));
    auto values = stream.find("values");
    if (values == stream.end() || values->is_null()) continue;
    if (!values->is_array()) return InvalidArgumentError(where + ".values must be an array");
    size_t vi = 0;
    for (const nlohmann::json& v : *values) {
      const std::string at = fmt::format("{}.values[{}]", where, vi++);
      if (!v.is_array() || v.size() < 2 || v.size() > 3) {
        return InvalidArgumentError(at + " must be [timestamp, line] or [timestamp, line, {metadata}]");
      }
      LokiEntry e;
      Result<int64_t> ts = ParseTimestamp(v[0]);
      if (!ts.ok()) return InvalidArgumentError(at + ": " + ts.status().message());
      e.ts_ns = *ts;
      if (!v[1].is_string()) return InvalidArgumentError(at + ": the line must be a string");
      e.line = v[1].get<std::string>();
      if (v.size() == 3) {
        if (!v[2].is_object()) return InvalidArgumentError(at + ": structured metadata must be an object");
        for (auto it = v[2].begin(); it != v[2].end(); ++it) {
          if (!it.value().is_string()) {
            return InvalidArgumentError(at + ": structured metadata '" + it.key() + "' must be a string");
          }
          if (it.key().empty()) continue;
          e.metadata.push_back(Label{it.key(), it.value().get<std::string>()});
        }
      }
      b.AddEntry(std::move(e));
    }
  }
  return OkStatus();
}

// Skips spaces; true when `text` has more.
bool SkipSpace(std::string_view text, size_t& i) {
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) ++i;
  return i < text.size();
}

}  // namespace

std::string_view LokiRejectName(LokiReject reason) {
  switch (reason) {
    case LokiReject::kMissingLabels: return "missing_labels";
    case LokiReject::kInvalidLabels: return "invalid_labels";
    case LokiReject::kTooManyLabels: return "too_many_labels";
    case LokiReject::kLabelTooLong: return "label_too_long";
    case LokiReject::kLineTooLong: return "line_too_long";
  }
  return "unknown";
}

Result<std::vector<Label>> ParseLokiLabels(std::string_view text) {
  std::vector<Label> out;
  size_t i = 0;
  auto error = [&](std::string_view what) {
    return InvalidArgumentError(fmt::format("error parsing labels '{}': {} at offset {}", text.substr(0, 256), what, i));
  };
  if (!SkipSpace(text, i) || text[i] != '{') return error("expected '{'");
  ++i;
  if (!SkipSpace(text, i)) return error("unexpected end");
  if (text[i] == '}') {
    ++i;
    if (SkipSpace(text, i)) return error("unexpected text after '}'");
    return out;
  }
  for (;;) {
    if (!SkipSpace(text, i)) return error("unexpected end");
    const size_t start = i;
    while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_' ||
                               text[i] == '.' || text[i] == ':' || static_cast<unsigned char>(text[i]) >= 0x80)) {
      ++i;
    }
    if (i == start) return error("expected a label name");
    Label label;
    label.name = std::string(text.substr(start, i - start));
    if (!SkipSpace(text, i) || text[i] != '=') return error("expected '='");
    ++i;
    if (!SkipSpace(text, i) || text[i] != '"') return error("expected '\"'");
    ++i;
    for (;;) {
      if (i >= text.size()) return error("unterminated label value");
      const char c = text[i++];
      if (c == '"') break;
      if (c != '\\') {
        label.value.push_back(c);
        continue;
      }
      if (i >= text.size()) return error("unterminated label value");
      switch (text[i++]) {
        case '\\': label.value.push_back('\\'); break;
        case '"': label.value.push_back('"'); break;
        case 'n': label.value.push_back('\n'); break;
        case 't': label.value.push_back('\t'); break;
        case 'r': label.value.push_back('\r'); break;
        default: --i; return error("unknown escape sequence");
      }
    }
    out.push_back(std::move(label));
    if (!SkipSpace(text, i)) return error("unexpected end");
    if (text[i] == ',') {
      ++i;
      continue;
    }
    if (text[i] != '}') return error("expected ',' or '}'");
    ++i;
    if (SkipSpace(text, i)) return error("unexpected text after '}'");
    return out;
  }
}

Result<DecodedLokiPush> DecodeLokiPushJson(std::string_view body, const LokiPushLimits& limits) {
  Builder b(limits);
  std::string repaired;
  if (!IsValidUtf8(body)) {
    repaired = std::string(body);
    b.AddInvalidUtf8(static_cast<int64_t>(ReplaceInvalidUtf8(&repaired)));
    body = repaired;
  }
  try {
    nlohmann::json doc = nlohmann::json::parse(body);
    TELKIT_RETURN_IF_ERROR(DecodeJsonStreams(doc, b));
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError(std::string("invalid JSON push body: ") + e.what());
  }
  return b.Finish();
}

Result<DecodedLokiPush> DecodeLokiPushProtobuf(std::string_view body, const LokiPushLimits& limits) {
  logproto::PushRequest req;
  if (body.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !req.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return InvalidArgumentError("invalid protobuf push body: cannot parse logproto.PushRequest");
  }
  Builder b(limits);
  int si = 0;
  for (const logproto::StreamAdapter& s : req.streams()) {
    std::string text = s.labels();
    b.AddInvalidUtf8(static_cast<int64_t>(ReplaceInvalidUtf8(&text)));
    Result<std::vector<Label>> labels = ParseLokiLabels(text);
    if (!labels.ok()) return InvalidArgumentError(fmt::format("streams[{}]: {}", si, labels.status().message()));
    ++si;
    b.StartStream(std::move(labels).value());
    for (const logproto::EntryAdapter& e : s.entries()) {
      LokiEntry entry;
      const int64_t seconds = e.timestamp().seconds();
      const int32_t nanos = e.timestamp().nanos();
      if (seconds < 0 || seconds > std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1 || nanos < 0 ||
          nanos >= 1'000'000'000) {
        return InvalidArgumentError(fmt::format("streams[{}]: timestamp {}s {}ns is out of range", si - 1, seconds,
                                                nanos));
      }
      entry.ts_ns = seconds * 1'000'000'000 + nanos;
      entry.line = e.line();
      for (const logproto::LabelPairAdapter& m : e.structuredmetadata()) {
        if (m.name().empty()) continue;
        entry.metadata.push_back(Label{m.name(), m.value()});
      }
      b.AddEntry(std::move(entry));
    }
  }
  return b.Finish();
}

std::string LokiPushToOtlpLogs(const DecodedLokiPush& push) {
  opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest req;
  for (const LokiStream& s : push.streams) {
    auto* rl = req.add_resource_logs();
    auto* marker = rl->mutable_resource()->add_attributes();
    marker->set_key(std::string(kLokiStreamAttribute));
    marker->mutable_value()->set_bool_value(true);
    for (const Label& l : s.labels) {
      auto* kv = rl->mutable_resource()->add_attributes();
      kv->set_key(l.name);
      kv->mutable_value()->set_string_value(l.value);
    }
    auto* sl = rl->add_scope_logs();
    for (const LokiEntry& e : s.entries) {
      auto* r = sl->add_log_records();
      r->set_time_unix_nano(static_cast<uint64_t>(e.ts_ns));
      r->mutable_body()->set_string_value(e.line);
      for (const Label& m : e.metadata) {
        auto* kv = r->add_attributes();
        kv->set_key(m.name);
        kv->mutable_value()->set_string_value(m.value);
      }
    }
  }
  return req.SerializeAsString();
}

}  // namespace telkit
