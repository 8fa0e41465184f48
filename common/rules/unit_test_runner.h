// Runs rule unit tests in `promtool test rules` format:
//
//   rule_files: [FILE...]          relative to the test file's directory
//   evaluation_interval: 1m        default 1m
//   tests:
//     - name: optional
//       interval: 1m               input series spacing; default evaluation_interval
//       external_labels: {k: v}
//       input_series:
//         - series: 'up{job="a"}'
//           values: '1 1 0x5 _ stale 1+1x3'   promqltest's expanding notation
//       alert_rule_test:
//         - eval_time: 10m
//           alertname: NAME
//           exp_alerts: [{exp_labels: {}, exp_annotations: {}}]   firing alerts only
//       promql_expr_test:
//         - expr: EXPR
//           eval_time: 5m
//           exp_samples: [{labels: 'name{a="b"}', value: 1}]
//
// As promtool does, every group is evaluated at every evaluation_interval
// from 0 up to the largest eval_time, and its results (recordings, ALERTS,
// ALERTS_FOR_STATE) are appended to the test's store, so later rules and
// promql_expr_test see them. Alerts are compared at the evaluation whose
// time is the last one at or before eval_time.
//
// Thread-safety: stateless function.
#pragma once

#include <string>
#include <vector>

#include "common/base/status.h"

namespace telkit::rules {

struct UnitTestReport {
  int tests = 0;
  int failed = 0;
  std::vector<std::string> failures;  // human-readable, one per failed check
};

// Runs the test file at `path`. INVALID_ARGUMENT (with the position) when the
// test file or a rule file it names is malformed; test failures are in the report.
Result<UnitTestReport> RunRuleUnitTests(const std::string& path);

}  // namespace telkit::rules
