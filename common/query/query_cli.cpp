#include "common/query/query_cli.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iterator>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/api/prometheus_api.h"
#include "common/fs/file_system.h"
#include "common/model/memory_store.h"
#include "common/promql/parser.h"
#include "common/promql/promql_test_runner.h"
#include "common/promql/query_output.h"
#include "common/tsdb/metrics_reader.h"

namespace telkit::query {
namespace {

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("open '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return ErrnoError("read '" + path + "'");
  return ss.str();
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // Shortest round-trip form, as the API prints values.
  for (int p = 1; p <= 17; ++p) {
    char s[32];
    std::snprintf(s, sizeof s, "%.*g", p, v);
    if (std::strtod(s, nullptr) == v) return s;
  }
  return buf;
}

std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string ShortValue(double v) {
  char s[32];
  std::snprintf(s, sizeof s, "%.4g", v);
  return s;
}

std::string UtcTime(int64_t t_ms) {
  std::time_t secs = static_cast<std::time_t>(t_ms >= 0 ? t_ms / 1000 : (t_ms - 999) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

constexpr int kColors[] = {31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96};
constexpr int kLegendMax = 12;

}  // namespace

Result<std::shared_ptr<Querier>> OpenDataSource(const DataSource& source, int64_t default_t_ms) {
  if (!source.data_dir.empty() && !source.load_files.empty()) {
    return InvalidArgumentError("--data and --load exclude each other");
  }
  if (!source.load_files.empty()) {
    auto store = std::make_shared<MemoryStore>();
    for (const std::string& f : source.load_files) {
      TELKIT_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(f));
      Status s = f.ends_with(".test") ? promql::LoadTestScriptData(text, *store)
                                      : promql::LoadExposition(text, default_t_ms, *store);
      if (!s.ok()) return s.WithContext("load '" + f + "'");
    }
    return std::shared_ptr<Querier>(std::move(store));
  }
  if (source.data_dir.empty()) return InvalidArgumentError("no data: give --data DIR or --load FILE");
  Result<std::unique_ptr<MetricsReader>> reader = OpenMetricsReader(DefaultFileSystem(), source.data_dir);
  if (!reader.ok()) return reader.status().WithContext("open the metrics store '" + source.data_dir + "'");
  return std::shared_ptr<Querier>(std::move(*reader));
}

Result<int64_t> ParseCliTime(std::string_view text, int64_t now_ms) {
  std::string_view rest = text;
  bool relative = false;
  if (rest.starts_with("now")) {
    rest.remove_prefix(3);
    relative = true;
    if (rest.empty()) return now_ms;
  }
  if (!rest.empty() && (rest[0] == '-' || rest[0] == '+') && (relative || (rest.size() > 1 && std::isalpha(static_cast<unsigned char>(rest.back()))))) {
    const bool minus = rest[0] == '-';
    Result<int64_t> d = promql::ParseApiDuration(rest.substr(1));
    if (!d.ok()) return InvalidArgumentError("bad time '" + std::string(text) + "': want now, now-1h, -15m, Unix seconds or RFC 3339");
    return minus ? now_ms - *d : now_ms + *d;
  }
  if (relative) return InvalidArgumentError("bad time '" + std::string(text) + "': want now, now-1h, -15m, Unix seconds or RFC 3339");
  Result<int64_t> t = promql::ParseApiTime(text);
  if (!t.ok()) return InvalidArgumentError("bad time '" + std::string(text) + "': want now, now-1h, -15m, Unix seconds or RFC 3339");
  return t;
}

Result<Output> ParseOutput(std::string_view name) {
  if (name == "table") return Output::kTable;
  if (name == "json") return Output::kJson;
  if (name == "csv") return Output::kCsv;
  if (name == "chart") return Output::kChart;
  return InvalidArgumentError("unknown output '" + std::string(name) + "': want table, json, csv or chart");
}

std::string FormatCsv(const promql::QueryResult& r) {
  std::string out = "series,timestamp,value\n";
  switch (r.type) {
    case promql::ValueType::kScalar:
      out += "," + promql::FormatApiTime(r.t) + "," + FormatValue(r.scalar) + "\n";
      break;
    case promql::ValueType::kString:
      out += "," + promql::FormatApiTime(r.t) + "," + CsvField(r.str) + "\n";
      break;
    default:
      for (const promql::Series& s : r.series) {
        std::string name = CsvField(promql::SeriesName(s.labels));
        for (const Sample& p : s.points) {
          out += name + "," + promql::FormatApiTime(p.t) + "," + FormatValue(p.v) + "\n";
        }
      }
  }
  return out;
}

std::string FormatChart(const promql::QueryResult& r, const ChartOptions& o) {
  std::vector<const promql::Series*> series;
  promql::Series scalar_series;
  if (r.type == promql::ValueType::kScalar) {
    scalar_series.points.push_back({r.t, r.scalar});
    series.push_back(&scalar_series);
  } else {
    for (const promql::Series& s : r.series) series.push_back(&s);
  }
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  int64_t t0 = std::numeric_limits<int64_t>::max(), t1 = std::numeric_limits<int64_t>::min();
  for (const promql::Series* s : series) {
    for (const Sample& p : s->points) {
      if (!std::isfinite(p.v)) continue;
      lo = std::min(lo, p.v);
      hi = std::max(hi, p.v);
      t0 = std::min(t0, p.t);
      t1 = std::max(t1, p.t);
    }
  }
  if (lo > hi) return "no data\n";
  if (lo == hi) {
    lo -= lo == 0 ? 1 : std::abs(lo) * 0.1;
    hi += hi == 0 ? 1 : std::abs(hi) * 0.1;
  }
  const std::string hi_label = ShortValue(hi), lo_label = ShortValue(lo);
  const int label_w = static_cast<int>(std::max(hi_label.size(), lo_label.size()));
  const int cols = std::max(10, o.width - label_w - 2);
  const int rows = std::max(2, o.height);
  const int dots_x = cols * 2, dots_y = rows * 4;
  std::vector<uint8_t> bits(static_cast<size_t>(cols * rows), 0);
  std::vector<int> color(static_cast<size_t>(cols * rows), -1);
  // Braille dot bit for (dx in 0..1, dy in 0..3).
  static constexpr uint8_t kDot[2][4] = {{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}};
  auto plot = [&](int x, int y, int si) {
    if (x < 0 || y < 0 || x >= dots_x || y >= dots_y) return;
    size_t cell = static_cast<size_t>((y / 4) * cols + x / 2);
    bits[cell] |= kDot[x % 2][y % 4];
    color[cell] = si;
  };
  auto to_x = [&](int64_t t) {
    return t1 == t0 ? dots_x / 2 : static_cast<int>(std::lround(double(t - t0) / double(t1 - t0) * (dots_x - 1)));
  };
  auto to_y = [&](double v) { return static_cast<int>(std::lround((hi - v) / (hi - lo) * (dots_y - 1))); };
  for (size_t si = 0; si < series.size(); ++si) {
    bool have_prev = false;
    int px = 0, py = 0;
    for (const Sample& p : series[si]->points) {
      if (!std::isfinite(p.v)) {
        have_prev = false;
        continue;
      }
      int x = to_x(p.t), y = to_y(p.v);
      if (have_prev) {  // Bresenham from the previous point
        int dx = std::abs(x - px), dy = -std::abs(y - py), sx = px < x ? 1 : -1, sy = py < y ? 1 : -1;
        int err = dx + dy, cx = px, cy = py;
        for (int guard = 0; guard < dots_x + dots_y + 2; ++guard) {
          plot(cx, cy, static_cast<int>(si));
          if (cx == x && cy == y) break;
          int e2 = 2 * err;
          if (e2 >= dy) { err += dy; cx += sx; }
          if (e2 <= dx) { err += dx; cy += sy; }
        }
      } else {
        plot(x, y, static_cast<int>(si));
      }
      have_prev = true;
      px = x;
      py = y;
    }
  }
  auto colored = [&](std::string text, int si) {
    if (!o.color || si < 0) return text;
    return "\x1b[" + std::to_string(kColors[si % std::size(kColors)]) + "m" + text + "\x1b[0m";
  };
  std::string out;
  for (int row = 0; row < rows; ++row) {
    std::string label = row == 0 ? hi_label : row == rows - 1 ? lo_label : "";
    out += std::string(static_cast<size_t>(label_w) - label.size(), ' ') + label + " \u2502";
    for (int c = 0; c < cols; ++c) {
      size_t cell = static_cast<size_t>(row * cols + c);
      if (bits[cell] == 0) {
        out += ' ';
        continue;
      }
      std::string glyph;
      AppendUtf8(glyph, 0x2800 + bits[cell]);
      out += colored(glyph, color[cell]);
    }
    out += "\n";
  }
  out += std::string(static_cast<size_t>(label_w) + 1, ' ') + "\u2514";
  for (int c = 0; c < cols; ++c) out += "\u2500";
  out += "\n";
  std::string left = UtcTime(t0), right = t1 == t0 ? "" : UtcTime(t1);
  std::string axis = std::string(static_cast<size_t>(label_w) + 2, ' ') + left;
  const size_t total = static_cast<size_t>(label_w) + 2 + static_cast<size_t>(cols);
  if (!right.empty() && axis.size() + 1 + right.size() <= total) {
    axis += std::string(total - axis.size() - right.size(), ' ') + right;
  } else if (!right.empty()) {
    axis += " .. " + right;
  }
  out += axis + "\n";
  for (size_t si = 0; si < series.size() && si < static_cast<size_t>(kLegendMax); ++si) {
    std::string name = series[si] == &scalar_series ? "scalar" : promql::SeriesName(series[si]->labels);
    out += o.color ? colored("\u2588\u2588", static_cast<int>(si)) + " " + name + "\n"
                   : "[" + std::to_string(si + 1) + "] " + name + "\n";
  }
  if (series.size() > static_cast<size_t>(kLegendMax)) {
    out += "... and " + std::to_string(series.size() - kLegendMax) + " more\n";
  }
  return out;
}

std::string CaretLines(std::string_view expr, std::string_view message) {
  // "LINE:COL: ..." with LINE 1 for single-line expressions.
  size_t c1 = message.find(':');
  if (c1 == std::string_view::npos || c1 == 0) return "";
  size_t c2 = message.find(':', c1 + 1);
  if (c2 == std::string_view::npos || c2 == c1 + 1) return "";
  int line = 0, col = 0;
  for (char ch : message.substr(0, c1)) {
    if (ch < '0' || ch > '9') return "";
    line = line * 10 + (ch - '0');
  }
  for (char ch : message.substr(c1 + 1, c2 - c1 - 1)) {
    if (ch < '0' || ch > '9') return "";
    col = col * 10 + (ch - '0');
    if (col > 1'000'000) return "";
  }
  if (line != 1 || col < 1 || expr.find('\n') != std::string_view::npos) return "";
  std::string out = "  " + std::string(expr) + "\n  ";
  // Columns count bytes; keep the caret under the byte (ASCII expressions).
  out += std::string(static_cast<size_t>(std::min<int>(col - 1, static_cast<int>(expr.size()))), ' ') + "^\n";
  return out;
}

Result<std::string> FormatMetadataTable(std::string_view body, bool is_series) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("status", "") != "success" || !j.contains("data") ||
      !j["data"].is_array()) {
    return InvalidArgumentError("not an API success body");
  }
  std::string out;
  for (const nlohmann::json& item : j["data"]) {
    if (is_series) {
      if (!item.is_object()) return InvalidArgumentError("series item is not an object");
      std::vector<Label> labels;
      for (auto it = item.begin(); it != item.end(); ++it) {
        if (!it.value().is_string()) return InvalidArgumentError("label value is not a string");
        labels.push_back({it.key(), it.value().get<std::string>()});
      }
      Result<Labels> l = Labels::FromUnsorted(std::move(labels));
      if (!l.ok()) return l.status();
      out += promql::SeriesName(*l) + "\n";
    } else {
      if (!item.is_string()) return InvalidArgumentError("name is not a string");
      out += item.get<std::string>() + "\n";
    }
  }
  return out;
}

}  // namespace telkit::query
