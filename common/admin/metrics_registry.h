// A daemon's self-metrics: counters and gauges with label sets, and their
// Prometheus text exposition (format 0.0.4, the format /metrics serves).
//
// Registration (Add*) takes a mutex and happens at start-up; the hot path is
// Counter::Increment and Gauge::Add/Set, which are single lock-free atomic
// operations on an object whose address never changes. Callback metrics are
// evaluated when the text is rendered, for values that already live elsewhere
// (queue depth, process memory).
//
// Output is stable: families sorted by name, series by their rendered label
// set; each family has its # HELP and # TYPE lines; label values and help
// text are escaped as the format requires (\\, \" and \n).
//
// Thread-safety: every method is safe to call from any thread. References
// returned by Add* stay valid for the registry's lifetime.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/model/labels.h"

namespace telkit {

// Label name -> value. Order does not matter: series are identified by the
// set, rendered sorted by label name.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

enum class MetricType { kCounter, kGauge };

// A monotonically increasing integer (Prometheus counter).
class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (Prometheus gauge).
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Sample value as the format writes it: shortest round-trip decimal,
// "NaN", "+Inf", "-Inf".
std::string FormatSampleValue(double value);

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The counter (gauge) `name` with `labels`, created on first use; the same
  // object on later calls with the same name and label set.
  // REQUIRES: IsValidMetricName(name), IsValidUserLabelName for every label name,
  // no label name twice, and `name` not already registered with another type
  // or another help text (checked with assert: these are programming errors,
  // the names are constants).
  Counter& AddCounter(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  Gauge& AddGauge(std::string_view name, std::string_view help, const MetricLabels& labels = {});

  // A series whose value `fn` computes at exposition time. `fn` must be
  // thread-safe, fast and must not call back into the registry. Registering
  // the same name and label set again replaces the function.
  // REQUIRES: as for AddCounter.
  void AddCallback(std::string_view name, std::string_view help, MetricType type, const MetricLabels& labels,
                   std::function<double()> fn);

  // The whole registry in the Prometheus text format 0.0.4.
  std::string ExpositionText() const;

  // Content-Type for ExpositionText() over HTTP.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  struct Series {
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::function<double()> callback;
  };
  struct Family {
    MetricType type = MetricType::kCounter;
    std::string help;
    std::map<std::string, Series> series;  // key: rendered label set "{a=\"x\"}" or ""
  };

  Series& FindOrAddSeries(std::string_view name, std::string_view help, MetricType type, const MetricLabels& labels);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace telkit
