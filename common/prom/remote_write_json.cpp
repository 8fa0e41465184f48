#include "common/prom/remote_write_json.h"

#include <google/protobuf/arena.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "prometheus/remote.pb.h"

namespace telkit {
namespace {

using Json = nlohmann::json;
namespace pb = google::protobuf;

Json DoubleJson(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

Json LabelsJson(const pb::RepeatedPtrField<prometheus::Label>& labels) {
  Json out = Json::array();
  for (const prometheus::Label& l : labels) out.push_back({{"name", l.name()}, {"value", l.value()}});
  return out;
}

// A key of `object`, also under its snake_case spelling; null when absent.
const Json* Find(const Json& object, const char* camel, const char* snake = nullptr) {
  auto it = object.find(camel);
  if (it == object.end() && snake != nullptr) it = object.find(snake);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

Status Expect(bool ok, const std::string& what) { return ok ? OkStatus() : InvalidArgumentError(what); }

Result<double> ReadDouble(const Json& v, const std::string& where) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return d;
  }
  return InvalidArgumentError("'" + where + "' must be a number, \"NaN\", \"Infinity\" or \"-Infinity\"");
}

Result<int64_t> ReadInt64(const Json& v, const std::string& where) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    errno = 0;
    char* end = nullptr;
    long long n = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end == s.c_str() + s.size() && errno == 0) return static_cast<int64_t>(n);
  }
  return InvalidArgumentError("'" + where + "' must be a 64-bit integer (number or decimal string)");
}

Result<std::string> ReadString(const Json& object, const char* camel, const char* snake, const std::string& where) {
  const Json* v = Find(object, camel, snake);
  if (v == nullptr) return std::string();
  if (!v->is_string()) return InvalidArgumentError("'" + where + "." + camel + "' must be a string");
  return v->get<std::string>();
}

Status ReadLabels(const Json& object, const std::string& where, pb::RepeatedPtrField<prometheus::Label>* out) {
  const Json* labels = Find(object, "labels");
  if (labels == nullptr) return OkStatus();
  TELKIT_RETURN_IF_ERROR(Expect(labels->is_array(), "'" + where + ".labels' must be an array"));
  for (const Json& l : *labels) {
    TELKIT_RETURN_IF_ERROR(Expect(l.is_object(), "'" + where + ".labels' must hold objects"));
    prometheus::Label* label = out->Add();
    TELKIT_ASSIGN_OR_RETURN(*label->mutable_name(), ReadString(l, "name", nullptr, where + ".labels[]"));
    TELKIT_ASSIGN_OR_RETURN(*label->mutable_value(), ReadString(l, "value", nullptr, where + ".labels[]"));
  }
  return OkStatus();
}

}  // namespace

Result<std::string> WriteRequestToJson(std::string_view bytes) {
  pb::Arena arena;
  auto* request = pb::Arena::CreateMessage<prometheus::WriteRequest>(&arena);
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !request->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("malformed remote-write request: not a prometheus.WriteRequest protobuf");
  }
  Json out = Json::object();
  if (request->timeseries_size() > 0) {
    Json& series = out["timeseries"] = Json::array();
    for (const prometheus::TimeSeries& ts : request->timeseries()) {
      Json s = {{"labels", LabelsJson(ts.labels())}};
      Json& samples = s["samples"] = Json::array();
      for (const prometheus::Sample& sample : ts.samples()) {
        samples.push_back({{"value", DoubleJson(sample.value())}, {"timestamp", std::to_string(sample.timestamp())}});
      }
      if (ts.exemplars_size() > 0) {
        Json& exemplars = s["exemplars"] = Json::array();
        for (const prometheus::Exemplar& e : ts.exemplars()) {
          exemplars.push_back({{"labels", LabelsJson(e.labels())},
                               {"value", DoubleJson(e.value())},
                               {"timestamp", std::to_string(e.timestamp())}});
        }
      }
      series.push_back(std::move(s));
    }
  }
  if (request->metadata_size() > 0) {
    Json& metadata = out["metadata"] = Json::array();
    for (const prometheus::MetricMetadata& m : request->metadata()) {
      // proto3 enums are open: a number without a name stays a number.
      Json type = prometheus::MetricMetadata::MetricType_IsValid(m.type())
                      ? Json(prometheus::MetricMetadata::MetricType_Name(m.type()))
                      : Json(static_cast<int>(m.type()));
      Json entry = {{"type", std::move(type)}, {"metricFamilyName", m.metric_family_name()}};
      if (!m.help().empty()) entry["help"] = m.help();
      if (!m.unit().empty()) entry["unit"] = m.unit();
      metadata.push_back(std::move(entry));
    }
  }
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<std::string> WriteRequestFromJson(const Json& object) {
  try {
    TELKIT_RETURN_IF_ERROR(Expect(object.is_object(), "a remote-write request must be a JSON object"));
    pb::Arena arena;
    auto* request = pb::Arena::CreateMessage<prometheus::WriteRequest>(&arena);
    if (const Json* series = Find(object, "timeseries")) {
      TELKIT_RETURN_IF_ERROR(Expect(series->is_array(), "'timeseries' must be an array"));
      for (const Json& s : *series) {
        TELKIT_RETURN_IF_ERROR(Expect(s.is_object(), "'timeseries' must hold objects"));
        prometheus::TimeSeries* ts = request->add_timeseries();
        TELKIT_RETURN_IF_ERROR(ReadLabels(s, "timeseries[]", ts->mutable_labels()));
        if (const Json* samples = Find(s, "samples")) {
          TELKIT_RETURN_IF_ERROR(Expect(samples->is_array(), "'timeseries[].samples' must be an array"));
          for (const Json& sample : *samples) {
            TELKIT_RETURN_IF_ERROR(Expect(sample.is_object(), "'timeseries[].samples' must hold objects"));
            prometheus::Sample* p = ts->add_samples();
            if (const Json* v = Find(sample, "value")) {
              TELKIT_ASSIGN_OR_RETURN(double d, ReadDouble(*v, "samples[].value"));
              p->set_value(d);
            }
            if (const Json* t = Find(sample, "timestamp")) {
              TELKIT_ASSIGN_OR_RETURN(int64_t n, ReadInt64(*t, "samples[].timestamp"));
              p->set_timestamp(n);
            }
          }
        }
        if (const Json* exemplars = Find(s, "exemplars")) {
          TELKIT_RETURN_IF_ERROR(Expect(exemplars->is_array(), "'timeseries[].exemplars' must be an array"));
          for (const Json& e : *exemplars) {
            TELKIT_RETURN_IF_ERROR(Expect(e.is_object(), "'timeseries[].exemplars' must hold objects"));
            prometheus::Exemplar* p = ts->add_exemplars();
            TELKIT_RETURN_IF_ERROR(ReadLabels(e, "exemplars[]", p->mutable_labels()));
            if (const Json* v = Find(e, "value")) {
              TELKIT_ASSIGN_OR_RETURN(double d, ReadDouble(*v, "exemplars[].value"));
              p->set_value(d);
            }
            if (const Json* t = Find(e, "timestamp")) {
              TELKIT_ASSIGN_OR_RETURN(int64_t n, ReadInt64(*t, "exemplars[].timestamp"));
              p->set_timestamp(n);
            }
          }
        }
      }
    }
    if (const Json* metadata = Find(object, "metadata")) {
      TELKIT_RETURN_IF_ERROR(Expect(metadata->is_array(), "'metadata' must be an array"));
      for (const Json& m : *metadata) {
        TELKIT_RETURN_IF_ERROR(Expect(m.is_object(), "'metadata' must hold objects"));
        prometheus::MetricMetadata* p = request->add_metadata();
        if (const Json* type = Find(m, "type")) {
          prometheus::MetricMetadata::MetricType t = prometheus::MetricMetadata::UNKNOWN;
          if (type->is_string()) {
            TELKIT_RETURN_IF_ERROR(Expect(prometheus::MetricMetadata::MetricType_Parse(type->get<std::string>(), &t),
                                          "unknown metadata type '" + type->get<std::string>() + "'"));
          } else {
            TELKIT_RETURN_IF_ERROR(Expect(type->is_number_integer() && type->get<int64_t>() >= INT32_MIN &&
                                              type->get<int64_t>() <= INT32_MAX,
                                          "'metadata[].type' must be a type name or a 32-bit number"));
            t = static_cast<prometheus::MetricMetadata::MetricType>(type->get<int>());
          }
          p->set_type(t);
        }
        TELKIT_ASSIGN_OR_RETURN(*p->mutable_metric_family_name(),
                                ReadString(m, "metricFamilyName", "metric_family_name", "metadata[]"));
        TELKIT_ASSIGN_OR_RETURN(*p->mutable_help(), ReadString(m, "help", nullptr, "metadata[]"));
        TELKIT_ASSIGN_OR_RETURN(*p->mutable_unit(), ReadString(m, "unit", nullptr, "metadata[]"));
      }
    }
    std::string out;
    if (!request->SerializeToString(&out)) return InvalidArgumentError("remote-write request is too large");
    return out;
  } catch (const Json::exception& e) {
    return InvalidArgumentError(std::string("invalid remote-write JSON: ") + e.what());
  }
}

}  // namespace telkit
