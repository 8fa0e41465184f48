// OTLP metrics (ExportMetricsServiceRequest) to the Prometheus model, as
// Prometheus' OTLP receiver (otlptranslator, "UnderscoreEscapingWithSuffixes")
// and the OpenTelemetry Collector's prometheusremotewrite exporter do it.
// docs/otlp-to-prometheus.md lists every rule with an example. In short:
//
//   name     "http.server.duration" + unit "ms" -> http_server_duration_milliseconds;
//            _total for monotonic sums, _ratio for gauges of unit "1"
//   labels   point attributes, names sanitised ([^a-zA-Z0-9_] -> _, leading
//            digit -> key_, leading single _ -> key_), colliding names joined
//            with ";"; otel_scope_name / otel_scope_version; job
//            (service.namespace/service.name) and instance (service.instance.id)
//   gauge, non-monotonic sum -> gauge; monotonic sum -> counter
//   histogram -> _bucket{le} (cumulative, +Inf) / _sum / _count
//   exponential histogram -> the same classic buckets, one le per populated
//            exponential bucket (its upper boundary), the zero bucket as
//            le = zero_threshold, and +Inf
//   summary  -> {quantile} / _sum / _count
//   target_info: one gauge series per resource with its other attributes
//   NO_RECORDED_VALUE -> the stale marker; time ns -> ms (truncated)
//   exemplars: trace_id / span_id (lowercase hex) and filtered attributes
//
// DELTA sums and histograms become cumulative: the translator keeps a
// running total per series (labels of the sample, or of `_count` for
// histograms) in memory. A point not newer than the last one of its series is
// rejected (out_of_order_delta). A NO_RECORDED_VALUE point, or a histogram
// whose bucket layout changed, restarts the total. The start time of delta
// points is not used: an SDK restart just continues the total (deltas carry
// no reset); a restart of the translator itself starts every total from zero,
// which PromQL's rate() sees as a counter reset. At most
// `max_delta_series` totals are kept; new delta series beyond it are rejected
// (delta_state_full) until Forget() or a restart.
//
// Items are data points: one that cannot be translated (bad labels, bad
// histogram layout, ...) is rejected and counted by reason, the rest kept.
// Odd input never crashes the translator.
//
// Thread-safety: thread-compatible (one Translate at a time per instance).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"
#include "common/model/series.h"
#include "common/prom/reject.h"

namespace telkit {

struct OtlpTranslateOptions {
  LabelLimits limits;
  // otel_scope_name / otel_scope_version labels on every series.
  bool scope_labels = true;
  // One target_info series per resource with non-identifying attributes.
  bool target_info = true;
  // Running totals of DELTA series kept at most.
  size_t max_delta_series = 100000;
};

struct TranslatedMetrics {
  // One per distinct label set, in first-seen order; samples sorted by time.
  std::vector<TimeSeries> series;
  // One per metric family (first description wins).
  std::vector<MetricMetadata> metadata;
  RejectCounts rejected;       // data points (or metrics, for no_data) left out
  int64_t data_points = 0;     // data points translated
  int64_t samples = 0;
  int64_t exemplars = 0;
};

// The Prometheus metric name of an OTLP metric, with unit and type suffixes.
// `monotonic_sum` / `gauge` select _total / _ratio. "" when nothing valid is
// left of the name.
std::string PrometheusMetricName(std::string_view name, std::string_view unit, bool monotonic_sum, bool gauge);
// An attribute name as a Prometheus label name.
std::string PrometheusLabelName(std::string_view name);
// A float as Prometheus writes le and quantile values: the shortest decimal
// that round-trips, never in exponent form ("0.005", "1e+06" -> "1000000"),
// "+Inf", "-Inf", "NaN".
std::string FormatPrometheusFloat(double v);

class OtlpTranslator {
 public:
  explicit OtlpTranslator(OtlpTranslateOptions options = {});
  ~OtlpTranslator();
  OtlpTranslator(const OtlpTranslator&) = delete;
  OtlpTranslator& operator=(const OtlpTranslator&) = delete;

  // Translates one ExportMetricsServiceRequest (protobuf bytes).
  // REQUIRES: nothing; any bytes may be passed.
  // INVALID_ARGUMENT when the bytes are not such a request (strings that are
  // not UTF-8 included, as protobuf has it), saying where.
  Result<TranslatedMetrics> Translate(std::string_view request);

  // DELTA series whose running totals are kept.
  size_t delta_series() const;
  // Drops every running total (the next delta point of each series starts
  // from zero).
  void Forget();

 private:
  struct State;
  OtlpTranslateOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace telkit
