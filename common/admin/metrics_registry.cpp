#include "common/admin/metrics_registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>

namespace telkit {
namespace {

// The canonical key of a label set: sorted by name, rendered as the format
// writes it, so that map order is output order.
std::string RenderLabels(MetricLabels labels) {
  if (labels.empty()) return "";
  std::sort(labels.begin(), labels.end());
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    assert(IsValidUserLabelName(labels[i].first));
    assert(i == 0 || labels[i - 1].first != labels[i].first);
    if (i > 0) out += ',';
    out += labels[i].first;
    out += "=\"";
    out += EscapeLabelValue(labels[i].second);
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace

std::string FormatSampleValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

MetricsRegistry::Series& MetricsRegistry::FindOrAddSeries(std::string_view name, std::string_view help, MetricType type,
                                                          const MetricLabels& labels) {
  assert(IsValidMetricName(name));
  // Caller holds mu_.
  auto it = families_.find(name);
  if (it == families_.end()) {
    Family family;
    family.type = type;
    family.help = std::string(help);
    it = families_.emplace(std::string(name), std::move(family)).first;
  }
  Family& family = it->second;
  assert(family.type == type);
  assert(family.help == help);
  return family.series[RenderLabels(labels)];
}

Counter& MetricsRegistry::AddCounter(std::string_view name, std::string_view help, const MetricLabels& labels) {
  std::lock_guard lock(mu_);
  Series& series = FindOrAddSeries(name, help, MetricType::kCounter, labels);
  assert(!series.callback);
  if (!series.counter) series.counter = std::make_unique<Counter>();
  return *series.counter;
}

Gauge& MetricsRegistry::AddGauge(std::string_view name, std::string_view help, const MetricLabels& labels) {
  std::lock_guard lock(mu_);
  Series& series = FindOrAddSeries(name, help, MetricType::kGauge, labels);
  assert(!series.callback);
  if (!series.gauge) series.gauge = std::make_unique<Gauge>();
  return *series.gauge;
}

void MetricsRegistry::AddCallback(std::string_view name, std::string_view help, MetricType type,
                                  const MetricLabels& labels, std::function<double()> fn) {
  std::lock_guard lock(mu_);
  Series& series = FindOrAddSeries(name, help, type, labels);
  assert(!series.counter && !series.gauge);
  series.callback = std::move(fn);
}

std::string MetricsRegistry::ExpositionText() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(4096);
  for (const auto& [name, family] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += EscapeHelp(family.help);
    out += "\n# TYPE ";
    out += name;
    out += family.type == MetricType::kCounter ? " counter\n" : " gauge\n";
    for (const auto& [labels, series] : family.series) {
      out += name;
      out += labels;
      out += ' ';
      if (series.counter) {
        out += fmt::format("{}", series.counter->Value());
      } else if (series.gauge) {
        out += FormatSampleValue(series.gauge->Value());
      } else {
        out += FormatSampleValue(series.callback ? series.callback() : 0.0);
      }
      out += '\n';
    }
  }
  return out;
}

}  // namespace telkit
