#include "common/pipeline/loki_sink.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/otlp/signal.h"
#include "common/pipeline/item_fields.h"
#include "common/pipeline/proto_wire.h"
#include "common/pipeline/request_parts.h"

namespace telkit {
namespace {

std::string Underscored(std::string_view key) {
  std::string s(key);
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

nlohmann::json AnyValueJson(std::string_view any);

// KeyValueList / KeyValue runs: field `field` of `message` holds KeyValues.
nlohmann::json KvListJson(std::string_view message, uint32_t field) {
  nlohmann::json obj = nlohmann::json::object();
  WireReader r(message);
  WireField f;
  while (r.Next(&f)) {
    if (f.number != field || f.wire_type != kWireLen) continue;
    std::string_view key, value;
    WireReader kv(f.bytes);
    WireField g;
    while (kv.Next(&g)) {
      if (g.number == 1 && g.wire_type == kWireLen) key = g.bytes;
      if (g.number == 2 && g.wire_type == kWireLen) value = g.bytes;
    }
    obj[std::string(key)] = AnyValueJson(value);
  }
  return obj;
}

nlohmann::json AnyValueJson(std::string_view any) {
  WireReader r(any);
  WireField f;
  nlohmann::json out;  // null when empty
  while (r.Next(&f)) {
    if (f.number == 5 && f.wire_type == kWireLen) {
      out = nlohmann::json::array();
      WireReader a(f.bytes);
      WireField v;
      while (a.Next(&v)) {
        if (v.number == 1 && v.wire_type == kWireLen) out.push_back(AnyValueJson(v.bytes));
      }
    } else if (f.number == 6 && f.wire_type == kWireLen) {
      out = KvListJson(f.bytes, 1);
    } else {
      AnyValueView v = DecodeAnyValue(any);
      if (v.kind == AnyValueView::Kind::kString) return std::string(v.str);
      if (v.kind == AnyValueView::Kind::kBool) return v.bool_value;
      if (v.kind == AnyValueView::Kind::kInt) return v.int_value;
      if (v.kind == AnyValueView::Kind::kDouble) return v.double_value;
      if (v.kind == AnyValueView::Kind::kBytes) return Hex(v.str);
      return out;
    }
  }
  return out;
}

// A value as Loki text: strings as they are, the rest as JSON.
std::string AsText(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return "";
  return j.dump();
}

struct Stream {
  nlohmann::json values = nlohmann::json::array();
};

}  // namespace

bool IsLokiSpec(std::string_view spec) { return spec.starts_with("loki+"); }

Result<std::string> LokiPushBody(std::string_view logs_request, int64_t* records) {
  auto payload = std::make_shared<const std::string>(logs_request);
  TELKIT_ASSIGN_OR_RETURN(RequestParts parts, DecomposeRequest(Signal::kLogs, payload));
  std::map<std::map<std::string, std::string>, Stream> streams;  // by label set, first seen order not needed
  std::vector<const std::map<std::string, std::string>*> order;
  int64_t n = 0;
  for (const ResourcePart& resource : parts.resources) {
    std::string_view resource_message;
    {
      WireReader r(resource.header);
      WireField f;
      while (r.Next(&f)) {
        if (f.number == kResourceEntryResourceField && f.wire_type == kWireLen) resource_message = f.bytes;
      }
    }
    nlohmann::json resource_attributes = KvListJson(resource_message, 1);
    std::map<std::string, std::string> labels;
    nlohmann::json resource_metadata = nlohmann::json::object();
    for (const auto& [key, value] : resource_attributes.items()) {
      const bool index = std::find(kLokiIndexLabels.begin(), kLokiIndexLabels.end(), key) != kLokiIndexLabels.end();
      if (index) {
        labels[Underscored(key)] = AsText(value);
      } else {
        resource_metadata[Underscored(key)] = AsText(value);
      }
    }
    if (!labels.contains("service_name")) labels["service_name"] = "unknown_service";
    auto [it, inserted] = streams.try_emplace(labels);
    if (inserted) order.push_back(&it->first);
    Stream& stream = it->second;
    for (const ScopePart& scope : resource.scopes) {
      std::string_view scope_name, scope_version;
      ScopeNameVersion(scope.header, &scope_name, &scope_version);
      for (std::string_view record : scope.items) {
        ++n;
        uint64_t time = 0, observed = 0;
        nlohmann::json metadata = resource_metadata;
        std::string line;
        WireReader r(record);
        WireField f;
        while (r.Next(&f)) {
          switch (f.number) {
            case 1: if (f.wire_type == kWireFixed64) time = f.value; break;
            case 11: if (f.wire_type == kWireFixed64) observed = f.value; break;
            case 2: if (f.wire_type == kWireVarint && f.value) metadata["severity_number"] = std::to_string(f.value); break;
            case 3: if (f.wire_type == kWireLen && !f.bytes.empty()) metadata["severity_text"] = std::string(f.bytes); break;
            case 5: if (f.wire_type == kWireLen) line = AsText(AnyValueJson(f.bytes)); break;
            case 8: if (f.wire_type == kWireFixed32 && f.value) metadata["flags"] = std::to_string(f.value); break;
            case 9: if (f.wire_type == kWireLen && !f.bytes.empty()) metadata["trace_id"] = Hex(f.bytes); break;
            case 10: if (f.wire_type == kWireLen && !f.bytes.empty()) metadata["span_id"] = Hex(f.bytes); break;
            case 12: if (f.wire_type == kWireLen && !f.bytes.empty()) metadata["event_name"] = std::string(f.bytes); break;
            default: break;
          }
        }
        const nlohmann::json attributes = KvListJson(record, 6);
        for (const auto& [key, value] : attributes.items()) metadata[Underscored(key)] = AsText(value);
        if (!scope_name.empty()) metadata["scope_name"] = std::string(scope_name);
        if (!scope_version.empty()) metadata["scope_version"] = std::string(scope_version);
        const uint64_t ts = time ? time : observed;
        nlohmann::json entry = nlohmann::json::array({std::to_string(ts), line});
        if (!metadata.empty()) entry.push_back(std::move(metadata));
        stream.values.push_back(std::move(entry));
      }
    }
  }
  nlohmann::json body;
  body["streams"] = nlohmann::json::array();
  for (const auto* labels : order) {
    nlohmann::json s;
    s["stream"] = *labels;
    s["values"] = std::move(streams[*labels].values);
    body["streams"].push_back(std::move(s));
  }
  if (records) *records = n;
  return body.dump();
}

namespace {

class LokiSink final : public OutputSink {
 public:
  LokiSink(std::string base, std::string path, OtlpExporterOptions options)
      : base_(std::move(base)), path_(std::move(path)), options_(std::move(options)) {}

  Status Send(const Dispatch& d, bool, SendReport* report) override {
    if (d.signal != static_cast<uint8_t>(Signal::kLogs)) {
      report->refused_frame = true;
      report->refused.Add(DropReason::kUnsupportedSignal, d.items);
      return OkStatus();
    }
    int64_t records = 0;
    Result<std::string> body = LokiPushBody(*d.payload, &records);
    if (!body.ok()) {  // the pipeline decomposed it already: cannot happen
      report->refused.Add(DropReason::kMalformed, d.items);
      return OkStatus();
    }
    int pause_ms = 1000;
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (cancelled_) return CancelledError("output cancelled");
      }
      const auto start = PipelineClock::now();
      httplib::Client client(base_);
      client.set_connection_timeout(std::chrono::milliseconds(options_.timeout_ms));
      client.set_read_timeout(std::chrono::milliseconds(options_.timeout_ms));
      client.set_write_timeout(std::chrono::milliseconds(options_.timeout_ms));
      client.set_compress(true);
      if (!options_.ca_file.empty()) client.set_ca_cert_path(options_.ca_file.c_str());
      httplib::Headers headers;
      for (const auto& [k, v] : options_.headers) headers.emplace(k, v);
      auto res = client.Post(path_, headers, *body, "application/json");
      const bool retryable = !res || res->status == 429 || res->status / 100 == 5;
      healthy_.store(res && !retryable);
      if (res && res->status / 100 == 2) {
        report->export_seconds = std::chrono::duration<double>(PipelineClock::now() - start).count();
        return OkStatus();
      }
      ++report->failed_attempts;
      if (!retryable) {  // 4xx other than 429: Loki refused the records for good
        healthy_.store(true);
        report->refused.Add(DropReason::kExportRejected, records);
        return OkStatus();
      }
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(pause_ms), [&] { return cancelled_; });
      pause_ms = std::min(pause_ms * 2, 30000);
    }
  }
  Status Drain(int) override { return OkStatus(); }
  bool connected() const override { return healthy_.load(); }
  void Cancel() override {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
  }

 private:
  const std::string base_, path_;
  const OtlpExporterOptions options_;
  std::atomic<bool> healthy_{true};
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
};

}  // namespace

Result<std::unique_ptr<OutputSink>> OpenLokiSink(std::string_view spec, const OtlpExporterOptions& defaults) {
  const size_t sep = spec.find("://");
  const std::string scheme(spec.substr(5, sep == std::string_view::npos ? 0 : sep - 5));
  const std::string rest(sep == std::string_view::npos ? "" : spec.substr(sep + 3));
  if (!spec.starts_with("loki+") || sep == std::string_view::npos || rest.empty() || rest.front() == '/' ||
      (scheme != "http" && scheme != "https")) {
    return InvalidArgumentError("output '" + std::string(spec) + "' is not loki+http(s)://HOST:PORT[/PREFIX]");
  }
  const size_t slash = rest.find('/');
  std::string host = rest.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return std::unique_ptr<OutputSink>(
      new LokiSink(scheme + "://" + host, prefix + "/loki/api/v1/push", defaults));
}

}  // namespace telkit
