// libFuzzer target for the exposition parser. Any bytes, as either format
// (the first byte picks it and the batch size): parsing must end without a
// crash, keep every batch within its bound, and give the same series,
// metadata and errors whether the input is fed at once or in two pieces
// split at an arbitrary point.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/expfmt/exposition.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Result {
  std::vector<std::string> out;
  uint64_t samples = 0, errors = 0;
  bool ok = false;
};

Result Run(std::string_view input, telkit::ExpositionOptions o, size_t split) {
  Result r;
  telkit::ExpositionParser p(o, [&](telkit::ExpositionBatch& b) {
    Check(b.num_samples <= o.batch_samples);
    for (auto& s : b.series) {
      std::string line = s.labels.ToString();
      for (auto& x : s.samples) line += " " + std::to_string(x.t);
      line += " e" + std::to_string(s.exemplars.size());
      r.out.push_back(line);
    }
    for (auto& m : b.metadata) r.out.push_back("m " + m.family + " " + m.help + " " + m.unit);
    return telkit::OkStatus();
  });
  telkit::Status s = p.Feed(input.substr(0, split));
  if (s.ok()) s = p.Feed(input.substr(split));
  if (s.ok()) s = p.Finish();
  r.ok = s.ok();
  r.samples = p.stats().samples;
  r.errors = p.stats().errors;
  return r;
}

// Series are merged across batch boundaries only in the dump of tests; here
// compare the flat sample stream instead of TimeSeries boundaries.
std::string Flat(const Result& r) {
  std::string out;
  for (const auto& l : r.out) out += l + "\n";
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  telkit::ExpositionOptions o;
  o.format = (data[0] & 1) ? telkit::ExpositionFormat::kOpenMetrics : telkit::ExpositionFormat::kPrometheusText;
  o.on_error = (data[0] & 2) ? telkit::ExpositionErrorPolicy::kStop : telkit::ExpositionErrorPolicy::kSkipLine;
  o.max_line_bytes = 64 + (data[0] >> 2);
  o.batch_samples = 1u << 20;  // one batch: TimeSeries boundaries do not depend on the split
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  Result whole = Run(input, o, input.size());
  Result split = Run(input, o, input.size() / 3);
  Check(whole.ok == split.ok && whole.samples == split.samples && whole.errors == split.errors);
  Check(Flat(whole) == Flat(split));
  o.batch_samples = 1 + data[0] % 5;
  Result small = Run(input, o, input.size() / 2);
  Check(small.samples == whole.samples && small.errors == whole.errors);
  return 0;
}
