#include "common/stream/frame_json.h"

#include <google/protobuf/message.h>

#include <charconv>
#include <memory>
#include <new>
#include <nlohmann/json.hpp>

#include "common/otlp/export_messages.h"
#include "common/otlp/otlp_json.h"
#include "common/prom/remote_write_json.h"

namespace telkit {
namespace {

using Json = nlohmann::json;

// The top-level key of each OTLP request, in both spellings.
struct RequestKey {
  Signal signal;
  const char* camel;
  const char* snake;
};
constexpr RequestKey kRequestKeys[] = {
    {Signal::kTraces, "resourceSpans", "resource_spans"},
    {Signal::kMetrics, "resourceMetrics", "resource_metrics"},
    {Signal::kLogs, "resourceLogs", "resource_logs"},
};

bool HasRequestKey(const Json& object, const RequestKey& key) {
  return object.contains(key.camel) || object.contains(key.snake);
}

void AppendU64String(uint64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->push_back('"');
  out->append(buf, r.ptr);
  out->push_back('"');
}

// A non-negative integer up to `max`, as a JSON number or a decimal string.
Result<uint64_t> ReadUnsigned(const Json& j, uint64_t max, std::string_view key) {
  uint64_t v = 0;
  bool ok = false;
  if (j.is_number_unsigned()) {
    v = j.get<uint64_t>();
    ok = true;
  } else if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    ok = !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
  }
  if (!ok || v > max) {
    return InvalidArgumentError("'" + std::string(key) + "' must be an integer from 0 to " + std::to_string(max) +
                                ", got " + (j.is_string() ? "'" + j.get_ref<const std::string&>().substr(0, 40) + "'"
                                                          : j.dump().substr(0, 40)));
  }
  return v;
}

Result<StreamHeader> ParseHeader(const Json& doc) {
  const Json& stream = doc.at("stream");
  if (!stream.is_object()) return InvalidArgumentError("'stream' must be an object");
  StreamHeader header;
  if (auto it = stream.find("version"); it != stream.end()) {
    TELKIT_ASSIGN_OR_RETURN(uint64_t version, ReadUnsigned(*it, UINT16_MAX, "version"));
    if (version != kStreamVersion) {
      return InvalidArgumentError("stream version " + std::to_string(version) +
                                  " is not supported (this build writes " + std::to_string(kStreamVersion) + ")");
    }
    header.version = static_cast<uint16_t>(version);
  }
  if (auto it = stream.find("flags"); it != stream.end()) {
    TELKIT_ASSIGN_OR_RETURN(uint64_t flags, ReadUnsigned(*it, UINT16_MAX, "flags"));
    if (flags != 0) return InvalidArgumentError("stream header flags " + std::to_string(flags) + " are not supported");
  }
  if (auto it = stream.find("writerId"); it != stream.end()) {
    const std::string* text = it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
    Result<std::string> bytes = text != nullptr && text->size() == 16 ? HexDecode(*text)
                                                                       : InvalidArgumentError("not 16 hex digits");
    if (!bytes.ok()) return InvalidArgumentError("'writerId' must be 16 hex digits");
    for (char c : *bytes) header.writer_id = header.writer_id << 8 | static_cast<uint8_t>(c);
  }
  return header;
}

// The bytes C++ protobuf writes for what JSON can say of the request
// `bytes` holds (unknown fields have no JSON form, so they are dropped).
Result<std::string> CanonicalPayload(Signal signal, std::string_view bytes) {
  std::unique_ptr<google::protobuf::Message> m = NewExportRequest(signal);
  if (!m || !m->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("payload does not parse");
  }
  m->DiscardUnknownFields();
  return m->SerializeAsString();
}

// The bytes of a WriteRequest as its JSON form says them.
Result<std::string> CanonicalRemoteWrite(std::string_view bytes) {
  TELKIT_ASSIGN_OR_RETURN(std::string json, WriteRequestToJson(bytes));
  Json doc = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgumentError("payload does not parse");
  return WriteRequestFromJson(doc);
}

Result<std::string> EncodeRequest(Signal signal, const Json& object) {
  std::unique_ptr<google::protobuf::Message> request = NewExportRequest(signal);
  TELKIT_RETURN_IF_ERROR(OtlpJsonValueToMessage(object, request.get()));
  std::string out;
  if (!request->SerializeToString(&out)) return InvalidArgumentError("payload is too large to serialize");
  return out;
}

Result<Frame> ParseFrame(const Json& doc) {
  Frame frame;
  if (auto it = doc.find("seq"); it != doc.end()) {
    TELKIT_ASSIGN_OR_RETURN(frame.sequence, ReadUnsigned(*it, UINT64_MAX, "seq"));
  }
  if (auto it = doc.find("time"); it != doc.end()) {
    TELKIT_ASSIGN_OR_RETURN(frame.time_unix_nano, ReadUnsigned(*it, UINT64_MAX, "time"));
  }
  if (auto it = doc.find("flags"); it != doc.end()) {
    TELKIT_ASSIGN_OR_RETURN(uint64_t flags, ReadUnsigned(*it, UINT8_MAX, "flags"));
    frame.flags = static_cast<uint8_t>(flags);
  }
  const Json& signal = doc.at("signal");
  if (signal.is_string()) {
    std::optional<Signal> known = ParseSignal(signal.get_ref<const std::string&>());
    if (!known) {
      return InvalidArgumentError("unknown signal '" + signal.get_ref<const std::string&>().substr(0, 40) +
                                  "' (a name such as 'traces', or a number)");
    }
    frame.signal = static_cast<uint8_t>(*known);
  } else {
    TELKIT_ASSIGN_OR_RETURN(uint64_t number, ReadUnsigned(signal, UINT8_MAX, "signal"));
    frame.signal = static_cast<uint8_t>(number);
  }

  auto payload = doc.find("payload");
  auto base64 = doc.find("payloadBase64");
  const bool has_payload = payload != doc.end() && !payload->is_null();
  const bool has_base64 = base64 != doc.end() && !base64->is_null();
  std::string exact_bytes;  // from payloadBase64
  if (has_base64) {
    if (!base64->is_string()) return InvalidArgumentError("'payloadBase64' must be a string");
    Result<std::string> bytes = Base64Decode(base64->get_ref<const std::string&>());
    if (!bytes.ok()) return bytes.status().WithContext("'payloadBase64'");
    exact_bytes = std::move(bytes).value();
    if (!has_payload) frame.payload = exact_bytes;
  }
  if (has_payload && IsKnownSignal(frame.signal) && frame.signal_enum() == Signal::kPrometheusRemoteWrite) {
    Result<std::string> bytes = WriteRequestFromJson(*payload);
    if (!bytes.ok()) return bytes.status().WithContext("payload");
    frame.payload = std::move(bytes).value();
    if (has_base64) {
      Result<std::string> canonical = CanonicalRemoteWrite(exact_bytes);
      if (canonical.ok() && *canonical == frame.payload) frame.payload = std::move(exact_bytes);
    }
    return frame;
  }
  if (has_payload) {
    const Signal sig = frame.signal_enum();
    if (!IsKnownSignal(frame.signal) || !IsOtlpSignal(sig)) {
      return InvalidArgumentError("signal '" + std::string(SignalName(sig)) +
                                  "' has no JSON payload form; use 'payloadBase64'");
    }
    if (!payload->is_object()) return InvalidArgumentError("'payload' must be an OTLP/JSON object");
    for (const RequestKey& key : kRequestKeys) {
      if (key.signal != sig && HasRequestKey(*payload, key)) {
        return InvalidArgumentError("payload has '" + std::string(key.camel) + "' but the frame's signal is '" +
                                    std::string(SignalName(sig)) + "'");
      }
    }
    Result<std::string> bytes = EncodeRequest(sig, *payload);
    if (!bytes.ok()) return bytes.status().WithContext("payload");
    frame.payload = std::move(bytes).value();
    // Exact lines carry the original bytes too: they win while they still
    // say what "payload" says (so an edited payload is never ignored).
    if (has_base64) {
      Result<std::string> canonical = CanonicalPayload(sig, exact_bytes);
      if (canonical.ok() && *canonical == frame.payload) frame.payload = std::move(exact_bytes);
    }
  }
  return frame;
}

Result<Frame> ParseBareRequest(const Json& doc) {
  const RequestKey* found = nullptr;
  for (const RequestKey& key : kRequestKeys) {
    if (!HasRequestKey(doc, key)) continue;
    if (found != nullptr) {
      return InvalidArgumentError("request has both '" + std::string(found->camel) + "' and '" +
                                  std::string(key.camel) + "'");
    }
    found = &key;
  }
  if (found == nullptr) {
    return InvalidArgumentError(
        "line is not a stream header, a frame or an OTLP/JSON request "
        "(no 'stream', 'signal', 'resourceSpans', 'resourceMetrics' or 'resourceLogs' key)");
  }
  Frame frame;
  frame.signal = static_cast<uint8_t>(found->signal);
  TELKIT_ASSIGN_OR_RETURN(frame.payload, EncodeRequest(found->signal, doc));
  return frame;
}

}  // namespace

std::string StreamHeaderToJsonLine(const StreamHeader& header) {
  std::string out = "{\"stream\":{\"version\":" + std::to_string(header.version) + ",\"writerId\":\"";
  std::string id(8, '\0');
  for (int i = 0; i < 8; ++i) id[i] = static_cast<char>(header.writer_id >> (8 * (7 - i)));
  AppendHex(id, &out);
  out.push_back('"');
  if (header.flags != 0) out += ",\"flags\":" + std::to_string(header.flags);
  out += "}}";
  return out;
}

std::string FrameToJsonLine(const Frame& frame, const FrameJsonOptions& options) {
  std::string out = "{\"seq\":";
  AppendU64String(frame.sequence, &out);
  out += ",\"time\":";
  AppendU64String(frame.time_unix_nano, &out);
  out += ",\"signal\":";
  const Signal signal = frame.signal_enum();
  if (IsKnownSignal(frame.signal)) {
    out.push_back('"');
    out.append(SignalName(signal));
    out.push_back('"');
  } else {
    out += std::to_string(frame.signal);
  }
  out += ",\"flags\":" + std::to_string(frame.flags);
  const bool remote_write = IsKnownSignal(frame.signal) && signal == Signal::kPrometheusRemoteWrite;
  if (remote_write || (IsKnownSignal(frame.signal) && IsOtlpSignal(signal))) {
    Result<std::string> json =
        remote_write ? WriteRequestToJson(frame.payload) : ProtobufToOtlpJson(signal, frame.payload);
    if (json.ok()) {
      out += ",\"payload\":";
      out += *json;
      if (options.exact) {
        Result<std::string> canonical =
            remote_write ? CanonicalRemoteWrite(frame.payload) : CanonicalPayload(signal, frame.payload);
        if (!canonical.ok() || *canonical != frame.payload) {
          out += ",\"payloadBase64\":\"" + Base64Encode(frame.payload) + "\"";
        }
      }
      out.push_back('}');
      return out;
    }
    out += ",\"payloadBase64\":\"" + Base64Encode(frame.payload) + "\",\"payloadError\":";
    AppendJsonString(json.status().message(), &out);
    out.push_back('}');
    return out;
  }
  out += ",\"payloadBase64\":\"" + Base64Encode(frame.payload) + "\"}";
  return out;
}

Result<JsonLine> ParseJsonLine(std::string_view line) {
  try {
    // One more level than a request: the frame object around the payload.
    TELKIT_ASSIGN_OR_RETURN(Json doc, ParseJsonDocument(line, kMaxJsonNesting + 1));
    if (!doc.is_object()) {
      return InvalidArgumentError("line is not a JSON object (got " + std::string(doc.type_name()) + ")");
    }
    if (doc.contains("stream")) {
      TELKIT_ASSIGN_OR_RETURN(StreamHeader header, ParseHeader(doc));
      return JsonLine(header);
    }
    if (doc.contains("signal")) {
      TELKIT_ASSIGN_OR_RETURN(Frame frame, ParseFrame(doc));
      return JsonLine(std::move(frame));
    }
    TELKIT_ASSIGN_OR_RETURN(Frame frame, ParseBareRequest(doc));
    return JsonLine(std::move(frame));
  } catch (const Json::exception& e) {
    return InvalidArgumentError(std::string("invalid JSON line: ") + e.what());
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory parsing a JSON line of " + std::to_string(line.size()) + " bytes");
  }
}

}  // namespace telkit
