#include "common/prom/remote_write.h"

#include <google/protobuf/arena.h>

#include "common/base/utf8.h"
#include "prometheus/remote.pb.h"

namespace telkit {
namespace {

using PromType = prometheus::MetricMetadata::MetricType;

MetricFamilyType FromPromType(int type) {
  switch (type) {
    case prometheus::MetricMetadata::COUNTER: return MetricFamilyType::kCounter;
    case prometheus::MetricMetadata::GAUGE: return MetricFamilyType::kGauge;
    case prometheus::MetricMetadata::HISTOGRAM: return MetricFamilyType::kHistogram;
    case prometheus::MetricMetadata::GAUGEHISTOGRAM: return MetricFamilyType::kGaugeHistogram;
    case prometheus::MetricMetadata::SUMMARY: return MetricFamilyType::kSummary;
    case prometheus::MetricMetadata::INFO: return MetricFamilyType::kInfo;
    case prometheus::MetricMetadata::STATESET: return MetricFamilyType::kStateSet;
    default: return MetricFamilyType::kUnknown;
  }
}

PromType ToPromType(MetricFamilyType type) {
  switch (type) {
    case MetricFamilyType::kUnknown: return prometheus::MetricMetadata::UNKNOWN;
    case MetricFamilyType::kCounter: return prometheus::MetricMetadata::COUNTER;
    case MetricFamilyType::kGauge: return prometheus::MetricMetadata::GAUGE;
    case MetricFamilyType::kSummary: return prometheus::MetricMetadata::SUMMARY;
    case MetricFamilyType::kHistogram: return prometheus::MetricMetadata::HISTOGRAM;
    case MetricFamilyType::kGaugeHistogram: return prometheus::MetricMetadata::GAUGEHISTOGRAM;
    case MetricFamilyType::kInfo: return prometheus::MetricMetadata::INFO;
    case MetricFamilyType::kStateSet: return prometheus::MetricMetadata::STATESET;
  }
  return prometheus::MetricMetadata::UNKNOWN;
}

// The series' labels as a sorted Labels, or why they cannot be one.
Result<Labels> ToLabels(const google::protobuf::RepeatedPtrField<prometheus::Label>& in) {
  std::vector<Label> labels;
  labels.reserve(static_cast<size_t>(in.size()));
  for (const prometheus::Label& l : in) labels.push_back({l.name(), l.value()});
  return Labels::FromUnsorted(std::move(labels));
}

std::string Describe(const google::protobuf::RepeatedPtrField<prometheus::Label>& in) {
  std::string out = "{";
  for (const prometheus::Label& l : in) {
    if (out.size() > 200) {
      out += "...";
      break;
    }
    if (out.size() > 1) out += ", ";
    out += l.name() + "=\"" + (IsValidUtf8(l.value()) ? EscapeLabelValue(l.value()) : "<invalid UTF-8>") + "\"";
  }
  return out + "}";
}

void AddLabels(const Labels& labels, google::protobuf::RepeatedPtrField<prometheus::Label>* out) {
  out->Reserve(static_cast<int>(labels.size()));
  for (const Label& l : labels) {
    prometheus::Label* p = out->Add();
    p->set_name(l.name);
    p->set_value(l.value);
  }
}

}  // namespace

Result<DecodedWriteRequest> DecodeWriteRequest(std::string_view bytes, const LabelLimits& limits) {
  google::protobuf::Arena arena;
  auto* request = google::protobuf::Arena::CreateMessage<prometheus::WriteRequest>(&arena);
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !request->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("malformed remote-write request: not a prometheus.WriteRequest protobuf");
  }
  DecodedWriteRequest out;
  out.series.reserve(static_cast<size_t>(request->timeseries_size()));
  for (const prometheus::TimeSeries& ts : request->timeseries()) {
    out.dropped_native_histograms += ts.histograms_size();
    Result<Labels> labels = ToLabels(ts.labels());
    if (!labels.ok()) {
      out.rejected_samples += ts.samples_size();
      out.rejected.Add(PromReject::kDuplicateLabelName,
                       "series " + Describe(ts.labels()) + ": " + labels.status().message());
      continue;
    }
    if (LabelProblem problem = CheckSeriesLabels(*labels, limits); problem != LabelProblem::kNone) {
      out.rejected_samples += ts.samples_size();
      out.rejected.Add(RejectForLabelProblem(problem),
                       "series " + Describe(ts.labels()) + ": " + std::string(LabelProblemName(problem)));
      continue;
    }
    if (ts.samples_size() == 0) {
      out.rejected.Add(PromReject::kNoSamples, "series " + labels->ToString() + ": no float samples");
      continue;
    }
    TimeSeries series;
    series.labels = std::move(labels).value();
    series.samples.reserve(static_cast<size_t>(ts.samples_size()));
    for (const prometheus::Sample& s : ts.samples()) series.samples.push_back({s.timestamp(), s.value()});
    for (const prometheus::Exemplar& e : ts.exemplars()) {
      Result<Labels> exemplar_labels = ToLabels(e.labels());
      bool valid = exemplar_labels.ok();
      for (size_t i = 0; valid && i < exemplar_labels->size(); ++i) {
        const Label& l = (*exemplar_labels)[i];
        valid = IsValidLabelName(l.name) && IsValidUtf8(l.value) && l.name.size() <= limits.max_name_bytes &&
                l.value.size() <= limits.max_value_bytes;
      }
      if (!valid) {
        ++out.dropped_exemplars;
        continue;
      }
      series.exemplars.push_back({std::move(exemplar_labels).value(), e.value(), e.timestamp()});
    }
    out.samples += static_cast<int64_t>(series.samples.size());
    out.exemplars += static_cast<int64_t>(series.exemplars.size());
    out.series.push_back(std::move(series));
  }
  for (const prometheus::MetricMetadata& m : request->metadata()) {
    if (m.metric_family_name().empty() || !IsValidUtf8(m.metric_family_name()) || !IsValidUtf8(m.help()) ||
        !IsValidUtf8(m.unit())) {
      out.rejected.Add(PromReject::kInvalidMetadata,
                       "metadata without a family name or with text that is not UTF-8");
      continue;
    }
    out.metadata.push_back({m.metric_family_name(), FromPromType(m.type()), m.help(), m.unit()});
  }
  return out;
}

std::string EncodeWriteRequest(std::span<const TimeSeries> series, std::span<const MetricMetadata> metadata) {
  google::protobuf::Arena arena;
  auto* request = google::protobuf::Arena::CreateMessage<prometheus::WriteRequest>(&arena);
  request->mutable_timeseries()->Reserve(static_cast<int>(series.size()));
  for (const TimeSeries& s : series) {
    prometheus::TimeSeries* ts = request->add_timeseries();
    AddLabels(s.labels, ts->mutable_labels());
    ts->mutable_samples()->Reserve(static_cast<int>(s.samples.size()));
    for (const Sample& sample : s.samples) {
      prometheus::Sample* p = ts->add_samples();
      p->set_value(sample.v);
      p->set_timestamp(sample.t);
    }
    for (const Exemplar& e : s.exemplars) {
      prometheus::Exemplar* p = ts->add_exemplars();
      AddLabels(e.labels, p->mutable_labels());
      p->set_value(e.value);
      p->set_timestamp(e.t);
    }
  }
  for (const MetricMetadata& m : metadata) {
    prometheus::MetricMetadata* p = request->add_metadata();
    p->set_type(ToPromType(m.type));
    p->set_metric_family_name(m.family);
    p->set_help(m.help);
    p->set_unit(m.unit);
  }
  return request->SerializeAsString();
}

}  // namespace telkit
