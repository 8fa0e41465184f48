// A small append-only JSON writer for the Prometheus HTTP API's responses,
// byte-compatible with what Prometheus (Go, jsoniter in standard-library
// mode) writes: strings escaped as Go's encoding/json does (<, >, & and
// U+2028/U+2029 as \u escapes, invalid UTF-8 as U+FFFD), sample timestamps as
// seconds with up to three decimals (Prometheus' jsonutil.MarshalTimestamp:
// 1700000000.5 is written "1700000000.500"), sample values as strings in Go's
// strconv 'f' -1 form ("1.5", "+Inf", "NaN").
//
// It writes straight into one std::string, without a DOM: a 10k-series range
// query is tens of megabytes, and building nlohmann::json objects for it
// would cost more than the query. The caller is responsible for well-formed
// nesting (commas are the caller's too).
//
// Thread-safety: none; one writer per response.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/model/labels.h"

namespace telkit::api {

class JsonWriter {
 public:
  std::string& out() { return out_; }
  std::string Take() { return std::move(out_); }
  size_t size() const { return out_.size(); }

  void Raw(std::string_view s) { out_.append(s); }
  void Char(char c) { out_.push_back(c); }
  // A quoted, escaped JSON string.
  void String(std::string_view s);
  void Int(int64_t v);
  void Uint(uint64_t v);
  void Bool(bool b) { out_.append(b ? "true" : "false"); }
  // A float as Go's encoding/json writes float64 ('f' or 'e' form, shortest).
  // NaN and infinities have no JSON form: they are written as null.
  void Double(double v);
  // A timestamp in milliseconds as Prometheus' MarshalTimestamp: seconds,
  // then "." and three digits when the milliseconds are not zero.
  void Timestamp(int64_t ms);
  // A sample value as a quoted string (promql::FormatValue).
  void SampleValue(double v);
  // {"name":"value",...} in the labels' (sorted) order.
  void LabelsObject(const Labels& labels);
  // [ts,"value"]
  void Point(int64_t ms, double v);

 private:
  std::string out_;
};

// A time in milliseconds since the epoch as RFC 3339 with nanoseconds, as Go's
// time.Time marshals in JSON ("2023-11-14T22:13:20.123Z"; trailing zeros of
// the fraction dropped).
std::string FormatRfc3339(int64_t ms);

}  // namespace telkit::api
