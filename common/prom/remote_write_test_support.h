// Test-only helper shared by the remote-write tests (never in libtelkit):
// builds WriteRequest series.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "prometheus/remote.pb.h"

namespace telkit::test_support {

// A series with `labels` and `samples` samples (value i + 0.5 at 1000 * (i + 1) ms).
inline prometheus::TimeSeries* AddSeries(prometheus::WriteRequest& req,
                                         std::vector<std::pair<std::string, std::string>> labels, int samples = 1) {
  prometheus::TimeSeries* ts = req.add_timeseries();
  for (auto& [n, v] : labels) {
    auto* l = ts->add_labels();
    l->set_name(n);
    l->set_value(v);
  }
  for (int i = 0; i < samples; ++i) {
    auto* s = ts->add_samples();
    s->set_value(i + 0.5);
    s->set_timestamp(1000 * (i + 1));
  }
  return ts;
}

}  // namespace telkit::test_support
