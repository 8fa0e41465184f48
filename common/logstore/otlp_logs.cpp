#include "common/logstore/otlp_logs.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <map>

#include "common/otlp/loki_stream.h"
#include "common/otlp/otlp_json.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"

namespace telkit {
namespace {

using opentelemetry::proto::common::v1::AnyValue;
using opentelemetry::proto::common::v1::KeyValue;

nlohmann::json ToJson(const AnyValue& v) {
  switch (v.value_case()) {
    case AnyValue::kStringValue: return v.string_value();
    case AnyValue::kBoolValue: return v.bool_value();
    case AnyValue::kIntValue: return v.int_value();
    case AnyValue::kDoubleValue: return v.double_value();
    case AnyValue::kBytesValue: return Base64Encode(v.bytes_value());
    case AnyValue::kArrayValue: {
      nlohmann::json a = nlohmann::json::array();
      for (const AnyValue& e : v.array_value().values()) a.push_back(ToJson(e));
      return a;
    }
    case AnyValue::kKvlistValue: {
      nlohmann::json o = nlohmann::json::object();
      for (const KeyValue& kv : v.kvlist_value().values()) o[kv.key()] = ToJson(kv.value());
      return o;
    }
    default: return nullptr;
  }
}

std::string Hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  bool nonzero = false;
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
    nonzero |= c != 0;
  }
  return nonzero ? out : std::string();
}

bool IsLokiStream(const opentelemetry::proto::resource::v1::Resource& resource) {
  for (const KeyValue& kv : resource.attributes()) {
    if (kv.key() == kLokiStreamAttribute) return kv.value().bool_value();
  }
  return false;
}

}  // namespace

// A Loki push stream carried as OTLP (docs/logs-mapping.md, "Loki push"):
// labels and metadata exactly as pushed, no level, no OTLP extras.
static void MapLokiStream(const opentelemetry::proto::logs::v1::ResourceLogs& rl, const OtlpLogsMapOptions& options,
                          std::vector<LogPush>& out, std::map<Labels, size_t>& by_stream) {
  std::vector<Label> ls;
  for (const KeyValue& kv : rl.resource().attributes()) {
    if (kv.key() == kLokiStreamAttribute) continue;
    std::string name = OtlpAttributeName(kv.key());
    if (std::any_of(ls.begin(), ls.end(), [&](const Label& l) { return l.name == name; })) continue;
    ls.push_back(Label{std::move(name), AnyValueText(kv.value())});
  }
  auto labels = Labels::FromUnsorted(std::move(ls));
  if (!labels.ok()) return;  // cannot happen: names are unique
  std::vector<LogEntry> entries;
  for (const auto& sl : rl.scope_logs()) {
    for (const auto& r : sl.log_records()) {
      LogEntry e;
      e.ts = static_cast<int64_t>(r.time_unix_nano() != 0 ? r.time_unix_nano() : r.observed_time_unix_nano());
      if (e.ts == 0) e.ts = options.now_ns;
      e.line = AnyValueText(r.body());
      for (const KeyValue& kv : r.attributes())
        e.metadata.push_back(Label{OtlpAttributeName(kv.key()), AnyValueText(kv.value())});
      entries.push_back(std::move(e));
    }
  }
  if (entries.empty()) return;
  auto [it, inserted] = by_stream.emplace(*labels, out.size());
  if (inserted) out.push_back(LogPush{*labels, {}});
  auto& dst = out[it->second].entries;
  dst.insert(dst.end(), std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end()));
}

std::string OtlpAttributeName(std::string_view name) {
  std::string out;
  for (char c : name) out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '_' ? c : '_');
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out.insert(out.begin(), '_');
  return out;
}

std::string AnyValueText(const AnyValue& v) {
  if (v.value_case() == AnyValue::kStringValue) return v.string_value();
  if (v.value_case() == AnyValue::VALUE_NOT_SET) return "";
  if (v.value_case() == AnyValue::kBytesValue) return Base64Encode(v.bytes_value());
  return ToJson(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string SeverityLevel(int n, std::string_view text) {
  if (n >= 1 && n <= 24) {
    static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "fatal"};
    return kLevels[(n - 1) / 4];
  }
  std::string t;
  for (char c : text) t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  // "INFO2", "Warning", "ERR", "critical"...
  if (t.rfind("trace", 0) == 0) return "trace";
  if (t.rfind("debug", 0) == 0 || t == "dbg") return "debug";
  if (t.rfind("info", 0) == 0 || t == "notice" || t == "inf") return "info";
  if (t.rfind("warn", 0) == 0 || t == "wrn") return "warn";
  if (t.rfind("err", 0) == 0) return "error";
  if (t.rfind("fatal", 0) == 0 || t == "critical" || t == "crit" || t == "emerg" || t == "alert" || t == "panic")
    return "fatal";
  return "unknown";
}

std::vector<LogPush> MapOtlpLogs(const opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest& req,
                                 const OtlpLogsMapOptions& options) {
  std::map<std::string, size_t> index_attrs;  // OTLP name -> 0
  for (const std::string& a : options.index_attributes) index_attrs[a] = 0;
  std::vector<LogPush> out;
  std::map<Labels, size_t> by_stream;
  for (const auto& rl : req.resource_logs()) {
    if (IsLokiStream(rl.resource())) {
      MapLokiStream(rl, options, out, by_stream);
      continue;
    }
    std::vector<Label> base;
    std::vector<Label> resource_meta;
    std::string service_name;
    for (const KeyValue& kv : rl.resource().attributes()) {
      const std::string& k = kv.key();
      std::string v = AnyValueText(kv.value());
      if (k == "service.name") {
        service_name = v;
      } else if (k == "service.namespace" || k == "deployment.environment" ||
                 k == "deployment.environment.name" || index_attrs.count(k)) {
        std::string name = k == "deployment.environment.name" ? "deployment_environment" : OtlpAttributeName(k);
        if (!v.empty() && std::none_of(base.begin(), base.end(), [&](const Label& l) { return l.name == name; }))
          base.push_back(Label{name, v});
      } else {
        resource_meta.push_back(Label{OtlpAttributeName(k), v});
      }
    }
    base.push_back(Label{"service_name", service_name.empty() ? "unknown_service" : service_name});
    for (const auto& sl : rl.scope_logs()) {
      std::vector<Label> scope_meta;
      if (!sl.scope().name().empty()) scope_meta.push_back(Label{"scope_name", sl.scope().name()});
      if (!sl.scope().version().empty()) scope_meta.push_back(Label{"scope_version", sl.scope().version()});
      for (const KeyValue& kv : sl.scope().attributes())
        scope_meta.push_back(Label{OtlpAttributeName(kv.key()), AnyValueText(kv.value())});
      for (const auto& r : sl.log_records()) {
        std::vector<Label> ls = base;
        ls.push_back(Label{"level", SeverityLevel(static_cast<int>(r.severity_number()), r.severity_text())});
        auto labels = Labels::FromUnsorted(std::move(ls));
        if (!labels.ok()) continue;  // cannot happen: names are unique
        LogEntry e;
        e.ts = static_cast<int64_t>(r.time_unix_nano() != 0 ? r.time_unix_nano() : r.observed_time_unix_nano());
        if (e.ts == 0) e.ts = options.now_ns;
        e.line = AnyValueText(r.body());
        std::string trace = Hex(r.trace_id()), span = Hex(r.span_id());
        if (!trace.empty()) e.metadata.push_back(Label{"trace_id", trace});
        if (!span.empty()) e.metadata.push_back(Label{"span_id", span});
        if (!r.severity_text().empty()) e.metadata.push_back(Label{"severity_text", r.severity_text()});
        if (r.severity_number() != 0)
          e.metadata.push_back(Label{"severity_number", std::to_string(static_cast<int>(r.severity_number()))});
        for (const KeyValue& kv : r.attributes())
          e.metadata.push_back(Label{OtlpAttributeName(kv.key()), AnyValueText(kv.value())});
        e.metadata.insert(e.metadata.end(), scope_meta.begin(), scope_meta.end());
        e.metadata.insert(e.metadata.end(), resource_meta.begin(), resource_meta.end());
        auto [it, inserted] = by_stream.emplace(*labels, out.size());
        if (inserted) out.push_back(LogPush{*labels, {}});
        out[it->second].entries.push_back(std::move(e));
      }
    }
  }
  return out;
}

}  // namespace telkit
