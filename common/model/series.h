// What a metrics store hands a query engine: the series a selector matches,
// each with its samples in a time range. The tsdb (head and blocks) and the
// in-memory store of query tests implement Querier; the PromQL engine reads
// only through it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/model/labels.h"
#include "common/model/matcher.h"

namespace telkit {

struct Sample {
  int64_t t = 0;  // milliseconds since the Unix epoch (any int64)
  double v = 0;
  friend bool operator==(const Sample&, const Sample&) = default;
};

// Prometheus' stale marker: a NaN with this bit pattern ends a series
// (written when a scrape target disappears); other NaNs are ordinary values.
inline constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;
bool IsStaleNaN(double v);
double StaleNaN();

struct SeriesSamples {
  Labels labels;
  std::vector<Sample> samples;  // sorted by t, unique t
};

// A sample that points at a trace (OpenMetrics / remote-write exemplar):
// its own labels (trace_id, span_id, ...), value and time.
struct Exemplar {
  Labels labels;
  double value = 0;
  int64_t t = 0;
  friend bool operator==(const Exemplar&, const Exemplar&) = default;
};

// What writers hand a store: one series and samples to append (in time
// order), with the exemplars that came with them. The OTLP translation and
// the remote-write decoder produce these; the tsdb appends them.
struct TimeSeries {
  Labels labels;
  std::vector<Sample> samples;
  std::vector<Exemplar> exemplars;
};

// A metric family's type, as the exposition formats and remote-write
// metadata name them.
enum class MetricFamilyType : uint8_t {
  kUnknown = 0,
  kCounter = 1,
  kGauge = 2,
  kSummary = 3,
  kHistogram = 4,
  kGaugeHistogram = 5,
  kInfo = 6,
  kStateSet = 7,
};
std::string_view MetricFamilyTypeName(MetricFamilyType t);  // "counter", "gauge", ...

// What Prometheus' /api/v1/metadata serves for a family.
struct MetricMetadata {
  // The family name: without _bucket/_sum/_count, but counters keep _total,
  // as Prometheus reports families from text scrapes and from OTLP.
  std::string family;
  MetricFamilyType type = MetricFamilyType::kUnknown;
  std::string help;
  std::string unit;
  friend bool operator==(const MetricMetadata&, const MetricMetadata&) = default;
};

// A read view of a store. Implementations say whether they are thread-safe.
class Querier {
 public:
  virtual ~Querier() = default;

  // Every series that all `matchers` match and that has at least one sample
  // in [mint, maxt], with its samples in that range; sorted by labels.
  // REQUIRES: at least one matcher that does not match the empty string
  // (as PromQL requires of a selector).
  virtual Result<std::vector<SeriesSamples>> Select(int64_t mint, int64_t maxt,
                                                    std::span<const LabelMatcher> matchers) = 0;

  // Sorted, unique label names of the series that match `matchers` (all
  // series when empty) and have samples in [mint, maxt].
  virtual Result<std::vector<std::string>> LabelNames(int64_t mint, int64_t maxt,
                                                      std::span<const LabelMatcher> matchers) = 0;

  // Sorted, unique non-empty values of label `name` over the same series.
  virtual Result<std::vector<std::string>> LabelValues(std::string_view name, int64_t mint, int64_t maxt,
                                                       std::span<const LabelMatcher> matchers) = 0;

  // Metric metadata (TYPE/HELP/UNIT, what /api/v1/metadata serves) of
  // `family`, or of every family when empty; sorted by family, one entry a
  // family. The default has none (a store that keeps no metadata).
  virtual Result<std::vector<MetricMetadata>> Metadata(std::string_view family) {
    (void)family;
    return std::vector<MetricMetadata>{};
  }
};

}  // namespace telkit
