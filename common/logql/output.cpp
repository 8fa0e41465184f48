#include "common/logql/output.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>

#include "common/promql/engine.h"
#include "common/promql/query_output.h"
#include "common/base/time_format.h"

namespace telkit::logql {

namespace {

using Json = nlohmann::ordered_json;

Json LabelsJson(const Labels& l) {
  Json o = Json::object();
  for (const Label& x : l) o[x.name] = x.value;
  return o;
}

// Seconds as a JSON number: 1700000000 or 1700000000.123 (ms precision, as Loki).
Json Seconds(int64_t ns) {
  int64_t ms = ns / 1000000;
  if (ms % 1000 == 0) return Json(ms / 1000);
  return Json(static_cast<double>(ms) / 1000.0);
}

struct Merged {
  int64_t ts;
  const StreamResult* stream;
  const LogLine* line;
};

std::vector<Merged> Merge(const QueryResult& r, bool backward) {
  std::vector<Merged> all;
  for (const StreamResult& s : r.streams) {
    for (const LogLine& l : s.entries) all.push_back(Merged{l.ts, &s, &l});
  }
  std::stable_sort(all.begin(), all.end(), [backward](const Merged& a, const Merged& b) {
    return backward ? a.ts > b.ts : a.ts < b.ts;
  });
  return all;
}

std::string Metrics(const QueryResult& r) {
  std::string out;
  switch (r.type) {
    case QueryResult::Type::kScalar: out += promql::FormatValue(r.scalar) + "\n"; break;
    case QueryResult::Type::kVector:
      for (const SeriesResult& s : r.series) {
        out += s.labels.ToString() + " " + promql::FormatValue(s.points[0].second) + "\n";
      }
      break;
    case QueryResult::Type::kMatrix:
      for (const SeriesResult& s : r.series) {
        for (const auto& [t, v] : s.points) {
          out += s.labels.ToString() + " " + FormatRfc3339Nano(t) + " " + promql::FormatValue(v) + "\n";
        }
      }
      break;
    case QueryResult::Type::kStreams: break;
  }
  return out;
}

}  // namespace

std::string FormatRfc3339Nano(int64_t ns) { return FormatUtcNanos(ns, "%Y-%m-%dT%H:%M:%S", 9, true) + "Z"; }

std::string FormatLokiJson(const QueryResult& r, double exec_seconds) {
  Json result = Json::array();
  switch (r.type) {
    case QueryResult::Type::kStreams:
      for (const StreamResult& s : r.streams) {
        Json values = Json::array();
        for (const LogLine& l : s.entries) values.push_back(Json::array({std::to_string(l.ts), l.line}));
        result.push_back(Json{{"stream", LabelsJson(s.labels)}, {"values", std::move(values)}});
      }
      break;
    case QueryResult::Type::kVector:
      for (const SeriesResult& s : r.series) {
        result.push_back(Json{{"metric", LabelsJson(s.labels)},
                              {"value", Json::array({Seconds(s.points[0].first), promql::FormatValue(s.points[0].second)})}});
      }
      break;
    case QueryResult::Type::kMatrix:
      for (const SeriesResult& s : r.series) {
        Json values = Json::array();
        for (const auto& [t, v] : s.points) values.push_back(Json::array({Seconds(t), promql::FormatValue(v)}));
        result.push_back(Json{{"metric", LabelsJson(s.labels)}, {"values", std::move(values)}});
      }
      break;
    case QueryResult::Type::kScalar: result = Json::array({Seconds(r.scalar_ts), promql::FormatValue(r.scalar)}); break;
  }
  double secs = exec_seconds > 0 ? exec_seconds : 0;
  auto per_sec = [secs](uint64_t n) -> int64_t {
    return secs > 0 ? static_cast<int64_t>(static_cast<double>(n) / secs) : 0;
  };
  Json summary = {{"bytesProcessedPerSecond", per_sec(r.stats.bytes_scanned)},
                  {"linesProcessedPerSecond", per_sec(r.stats.lines_scanned)},
                  {"totalBytesProcessed", r.stats.bytes_scanned},
                  {"totalLinesProcessed", r.stats.lines_scanned},
                  {"execTime", secs},
                  {"queueTime", 0},
                  {"subqueries", 0},
                  {"totalEntriesReturned", r.stats.lines_returned},
                  {"splits", 0},
                  {"shards", 0},
                  {"totalPostFilterLines", r.stats.lines_returned},
                  {"totalStructuredMetadataBytesProcessed", 0}};
  Json store = {{"totalChunksRef", 0},        {"totalChunksDownloaded", 0}, {"chunksDownloadTime", 0},
                {"queryReferencedStructuredMetadata", false},
                {"chunk",
                 {{"headChunkBytes", 0},
                  {"headChunkLines", 0},
                  {"decompressedBytes", r.stats.bytes_scanned},
                  {"decompressedLines", r.stats.lines_scanned},
                  {"compressedBytes", 0},
                  {"totalDuplicates", 0},
                  {"postFilterLines", r.stats.lines_returned},
                  {"headChunkStructuredMetadataBytes", 0},
                  {"decompressedStructuredMetadataBytes", 0}}},
                {"chunkRefsFetchTime", 0},
                {"congestionControlLatency", 0},
                {"pipelineWrapperFilteredLines", 0}};
  Json stats = {{"summary", std::move(summary)},
                {"querier", {{"store", store}}},
                {"ingester",
                 {{"totalReached", 0}, {"totalChunksMatched", 0}, {"totalBatches", 0}, {"totalLinesSent", 0},
                  {"store", store}}}};
  Json body = {{"status", "success"},
               {"data",
                {{"resultType", std::string(ResultTypeName(r.type))},
                 {"result", std::move(result)},
                 {"stats", std::move(stats)}}}};
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

int LokiHttpStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kResourceExhausted: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kDeadlineExceeded: return 504;
    case StatusCode::kCancelled: return 499;
    default: return 500;
  }
}

std::string_view LevelColor(std::string_view level) {
  std::string l(level);
  for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l.rfind("err", 0) == 0 || l.rfind("fatal", 0) == 0 || l.rfind("crit", 0) == 0 || l == "panic" ||
      l == "emerg" || l == "alert") {
    return "31";
  }
  if (l.rfind("warn", 0) == 0) return "33";
  if (l.rfind("info", 0) == 0 || l == "notice") return "32";
  if (l.rfind("debug", 0) == 0) return "36";
  if (l.rfind("trace", 0) == 0) return "90";
  return "";
}

std::string_view DetectLevel(const Labels& labels, std::string_view line) {
  for (std::string_view name : {"level", "detected_level", "severity_text"}) {
    std::string_view v = labels.Get(name);
    if (!v.empty()) return v;
  }
  // logfmt `level=x` / `lvl=x`, JSON `"level":"x"`.
  for (std::string_view key : {"level=", "lvl=", "\"level\":\"", "\"level\": \""}) {
    size_t pos = line.find(key);
    if (pos == std::string_view::npos) continue;
    if (key[0] != '"' && pos > 0 && line[pos - 1] != ' ') continue;
    std::string_view rest = line.substr(pos + key.size());
    size_t n = 0;
    while (n < rest.size() && std::isalpha(static_cast<unsigned char>(rest[n]))) ++n;
    return rest.substr(0, n);
  }
  return {};
}

std::string FormatLogTable(const QueryResult& r, const TableOptions& o) {
  if (r.type != QueryResult::Type::kStreams) return Metrics(r);
  std::string out;
  for (const Merged& m : Merge(r, o.backward)) {
    std::string_view color = o.color ? LevelColor(DetectLevel(m.stream->labels, m.line->line)) : "";
    out += FormatRfc3339Nano(m.ts) + " ";
    if (o.labels) out += m.stream->labels.ToString() + " ";
    if (!color.empty()) out += "\x1b[" + std::string(color) + "m";
    out += m.line->line;
    if (!color.empty()) out += "\x1b[0m";
    out += "\n";
  }
  return out;
}

std::string FormatRawLines(const QueryResult& r, bool backward) {
  if (r.type != QueryResult::Type::kStreams) return Metrics(r);
  std::string out;
  for (const Merged& m : Merge(r, backward)) out += m.line->line + "\n";
  return out;
}

}  // namespace telkit::logql
