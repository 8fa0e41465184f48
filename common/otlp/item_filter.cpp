#include "common/otlp/item_filter.h"

#include <climits>

#include "common/otlp/wire_scan.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace telkit {
namespace {

namespace collector = opentelemetry::proto::collector;
namespace metrics = opentelemetry::proto::metrics::v1;
namespace trace = opentelemetry::proto::trace::v1;

// Counts what is removed and keeps the first reason.
struct Removal {
  int64_t removed = 0;
  std::string reason;

  // True (remove) when `defect` names one; `count` items go with it.
  bool Take(std::string_view defect, int64_t count = 1) {
    if (defect.empty() || count == 0) return false;
    if (removed == 0) reason = std::string(defect);
    removed += count;
    return true;
  }
};

// Removes the elements for which remove(T*) is true, keeping the order of
// the rest; returns how many went.
template <typename T, typename Pred>
int RemoveIf(google::protobuf::RepeatedPtrField<T>* items, Pred&& remove) {
  const int n = items->size();
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    if (remove(items->Mutable(i))) continue;
    if (kept != i) items->SwapElements(kept, i);
    ++kept;
  }
  if (kept < n) items->DeleteSubrange(kept, n - kept);
  return n - kept;
}

// Applies `filter_items` to the item list of every scope of every resource;
// drops the scopes and resources that the removal leaves empty.
// Each Resource*/Scope* type has the same shape, hence the template.
template <typename Resources, typename ScopesOf, typename ItemsOf, typename Pred>
void FilterTree(Resources* resources, ScopesOf scopes_of, ItemsOf items_of, Pred&& remove_item) {
  RemoveIf(resources, [&](auto* resource) {
    auto* scopes = scopes_of(resource);
    const int dropped_scopes = RemoveIf(scopes, [&](auto* scope) {
      auto* items = items_of(scope);
      return RemoveIf(items, remove_item) > 0 && items->empty();
    });
    return dropped_scopes > 0 && scopes->empty();
  });
}

std::string_view SpanDefect(const trace::Span& span) {
  std::string_view defect = SpanIdsDefect(span.trace_id(), span.span_id(), span.parent_span_id());
  for (int i = 0; defect.empty() && i < span.links_size(); ++i) {
    defect = LinkIdsDefect(span.links(i).trace_id(), span.links(i).span_id());
  }
  return defect;
}

int64_t PointCount(const metrics::Metric& metric) {
  switch (metric.data_case()) {
    case metrics::Metric::kGauge: return metric.gauge().data_points_size();
    case metrics::Metric::kSum: return metric.sum().data_points_size();
    case metrics::Metric::kHistogram: return metric.histogram().data_points_size();
    case metrics::Metric::kExponentialHistogram:
      return metric.exponential_histogram().data_points_size();
    case metrics::Metric::kSummary: return metric.summary().data_points_size();
    case metrics::Metric::DATA_NOT_SET: break;
  }
  return 0;
}

// True when the whole metric goes: no name, or its points all removed.
bool FilterMetric(metrics::Metric* metric, Removal* removal) {
  if (removal->Take(MetricNameDefect(metric->name()), PointCount(*metric))) return true;
  if (!metric->has_histogram()) return false;
  auto* points = metric->mutable_histogram()->mutable_data_points();
  const int removed = RemoveIf(points, [&](const metrics::HistogramDataPoint* p) {
    return removal->Take(HistogramBucketsDefect(static_cast<size_t>(p->bucket_counts_size()),
                                                static_cast<size_t>(p->explicit_bounds_size())));
  });
  return removed > 0 && points->empty();
}

template <typename Request>
Status Parse(std::string_view bytes, Signal signal, Request* request) {
  if (bytes.size() > static_cast<size_t>(INT_MAX) ||
      !request->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("'" + std::string(SignalName(signal)) +
                                "' request does not parse as protobuf");
  }
  return OkStatus();
}

template <typename Request>
Result<FilteredRequest> Finish(std::string_view bytes, const Request& request, Removal removal) {
  FilteredRequest out;
  out.removed = removal.removed;
  out.reason = std::move(removal.reason);
  if (out.removed == 0) {
    out.bytes = std::string(bytes);
  } else if (!request.SerializeToString(&out.bytes)) {
    return InternalError("cannot serialize the filtered request");
  }
  return out;
}

}  // namespace

Result<FilteredRequest> RemoveInvalidItems(Signal signal, std::string_view bytes) {
  Removal removal;
  switch (signal) {
    case Signal::kTraces: {
      collector::trace::v1::ExportTraceServiceRequest request;
      TELKIT_RETURN_IF_ERROR(Parse(bytes, signal, &request));
      FilterTree(
          request.mutable_resource_spans(), [](auto* r) { return r->mutable_scope_spans(); },
          [](auto* s) { return s->mutable_spans(); },
          [&](const trace::Span* span) { return removal.Take(SpanDefect(*span)); });
      return Finish(bytes, request, std::move(removal));
    }
    case Signal::kMetrics: {
      collector::metrics::v1::ExportMetricsServiceRequest request;
      TELKIT_RETURN_IF_ERROR(Parse(bytes, signal, &request));
      FilterTree(
          request.mutable_resource_metrics(), [](auto* r) { return r->mutable_scope_metrics(); },
          [](auto* s) { return s->mutable_metrics(); },
          [&](metrics::Metric* metric) { return FilterMetric(metric, &removal); });
      return Finish(bytes, request, std::move(removal));
    }
    case Signal::kLogs: {
      collector::logs::v1::ExportLogsServiceRequest request;
      TELKIT_RETURN_IF_ERROR(Parse(bytes, signal, &request));
      FilterTree(
          request.mutable_resource_logs(), [](auto* r) { return r->mutable_scope_logs(); },
          [](auto* s) { return s->mutable_log_records(); },
          [&](const opentelemetry::proto::logs::v1::LogRecord* record) {
            return removal.Take(LogRecordIdsDefect(record->trace_id(), record->span_id()));
          });
      return Finish(bytes, request, std::move(removal));
    }
    default: break;
  }
  return InvalidArgumentError("signal '" + std::string(SignalName(signal)) +
                              "' is not an OTLP export request");
}

}  // namespace telkit
