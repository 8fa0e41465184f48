// libFuzzer target for the Prometheus conversions: any bytes, taken as a
// remote-write request, decode or fail with INVALID_ARGUMENT; every kept
// series obeys the label rules and survives encode/decode unchanged; its
// JSON form converts back; taken as an OTLP metrics request, the translator
// never crashes and emits only series that obey the label rules.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "common/prom/otlp_translate.h"
#include "common/prom/remote_write.h"
#include "common/prom/remote_write_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace telkit;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const LabelLimits limits;

  Result<DecodedWriteRequest> decoded = DecodeWriteRequest(in, limits);
  if (!decoded.ok()) {
    if (decoded.status().code() != StatusCode::kInvalidArgument) std::abort();
  } else {
    for (const TimeSeries& ts : decoded->series) {
      if (CheckSeriesLabels(ts.labels, limits) != LabelProblem::kNone || ts.samples.empty()) std::abort();
    }
    Result<DecodedWriteRequest> again = DecodeWriteRequest(EncodeWriteRequest(decoded->series, decoded->metadata));
    if (!again.ok() || again->series.size() != decoded->series.size() || again->rejected.Total() != 0) std::abort();
    for (size_t i = 0; i < decoded->series.size(); ++i) {
      if (again->series[i].labels != decoded->series[i].labels) std::abort();
    }
    Result<std::string> json = WriteRequestToJson(in);
    if (!json.ok()) std::abort();
    nlohmann::json doc = nlohmann::json::parse(*json, nullptr, false);
    if (doc.is_discarded() || !WriteRequestFromJson(doc).ok()) std::abort();
  }

  static OtlpTranslator translator([] {
    OtlpTranslateOptions o;
    o.max_delta_series = 1000;
    return o;
  }());
  Result<TranslatedMetrics> translated = translator.Translate(in);
  if (translated.ok()) {
    for (const TimeSeries& ts : translated->series) {
      if (CheckSeriesLabels(ts.labels, limits) != LabelProblem::kNone) std::abort();
    }
  } else if (translated.status().code() != StatusCode::kInvalidArgument) {
    std::abort();
  }
  if (translator.delta_series() > 1000) std::abort();
  return 0;
}
