#include "common/prom/remote_write.h"

#include <google/protobuf/arena.h>

#include "common/base/utf8.h"
#include "common/prom/remote_write_wire.h"
#include "prometheus/remote.pb.h"

namespace telkit {
namespace {

using PromType = prometheus::MetricMetadata::MetricType;

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

std::string Describe(std::span<const WireLabel> in) {
  std::string out = "{";
  for (const WireLabel& l : in) {
    if (out.size() > 200) {
      out += "...";
      break;
    }
    if (out.size() > 1) out += ", ";
    out.append(l.name);
    out += "=\"";
    out += IsValidUtf8(l.value) ? EscapeLabelValue(l.value) : std::string("<invalid UTF-8>");
    out += "\"";
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
  DecodedWriteRequest out;
  WireSeries scratch;
  auto on_series = [&](const WireSeries& ts) {
    const int64_t n_samples = static_cast<int64_t>(ts.samples.size());
    out.dropped_native_histograms += ts.histograms;
    Result<Labels> labels = WireLabelsToLabels(ts.labels);
    if (!labels.ok()) {
      out.rejected_samples += n_samples;
      out.rejected.Add(PromReject::kDuplicateLabelName,
                       "series " + Describe(ts.labels) + ": " + labels.status().message());
      return;
    }
    if (LabelProblem problem = CheckSeriesLabels(*labels, limits); problem != LabelProblem::kNone) {
      out.rejected_samples += n_samples;
      out.rejected.Add(RejectForLabelProblem(problem),
                       "series " + Describe(ts.labels) + ": " + std::string(LabelProblemName(problem)));
      return;
    }
    if (ts.samples.empty()) {
      out.rejected.Add(PromReject::kNoSamples, "series " + labels->ToString() + ": no float samples");
      return;
    }
    TimeSeries series;
    series.labels = std::move(labels).value();
    series.samples = ts.samples;
    for (std::string_view e : ts.exemplars) {
      Exemplar exemplar;
      if (!DecodeWireExemplar(e, limits, &exemplar)) {
        ++out.dropped_exemplars;
        continue;
      }
      series.exemplars.push_back(std::move(exemplar));
    }
    out.samples += n_samples;
    out.exemplars += static_cast<int64_t>(series.exemplars.size());
    out.series.push_back(std::move(series));
  };
  auto on_metadata = [&](const WireMetadata& m) {
    if (m.family.empty() || !IsValidUtf8(m.family) || !IsValidUtf8(m.help) || !IsValidUtf8(m.unit)) {
      out.rejected.Add(PromReject::kInvalidMetadata, "metadata without a family name or with text that is not UTF-8");
      return;
    }
    out.metadata.push_back(
        {std::string(m.family), FamilyTypeFromProm(m.type), std::string(m.help), std::string(m.unit)});
  };
  TELKIT_RETURN_IF_ERROR(ScanWriteRequest(bytes, &scratch, on_series, on_metadata));
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
