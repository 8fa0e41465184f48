#include "common/logql/logql_test_runner.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>

#include "common/fs/file_system.h"
#include "common/logql/engine.h"
#include "common/logql/pipeline.h"
#include "common/logstore/log_store.h"

namespace telkit::logql {

namespace {

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}
std::string_view Trim(std::string_view s) {
  s = TrimLeft(s);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

size_t Indent(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && (s[n] == ' ' || s[n] == '\t')) ++n;
  return n;
}

// Parses `{a="b", c="d"}` at the start of *s; advances past it.
Result<std::vector<Label>> ParseLabelSet(std::string_view* s) {
  std::string_view in = TrimLeft(*s);
  if (in.empty() || in[0] != '{') return InvalidArgumentError("expected '{'");
  size_t i = 1;
  std::vector<Label> out;
  auto ws = [&] {
    while (i < in.size() && in[i] == ' ') ++i;
  };
  while (true) {
    ws();
    if (i < in.size() && in[i] == '}') {
      ++i;
      break;
    }
    size_t ns = i;
    while (i < in.size() && (std::isalnum(static_cast<unsigned char>(in[i])) || in[i] == '_')) ++i;
    std::string name(in.substr(ns, i - ns));
    ws();
    if (name.empty() || i >= in.size() || in[i] != '=') return InvalidArgumentError("bad label set");
    ++i;
    ws();
    if (i >= in.size() || in[i] != '"') return InvalidArgumentError("bad label value");
    ++i;
    std::string v;
    while (i < in.size() && in[i] != '"') {
      if (in[i] == '\\' && i + 1 < in.size()) {
        char e = in[i + 1];
        v.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
        i += 2;
        continue;
      }
      v.push_back(in[i++]);
    }
    if (i >= in.size()) return InvalidArgumentError("unterminated label value");
    ++i;
    out.push_back(Label{name, v});
    ws();
    if (i < in.size() && in[i] == ',') ++i;
  }
  *s = in.substr(i);
  return out;
}

Result<Labels> ParseLabels(std::string_view* s) {
  TELKIT_ASSIGN_OR_RETURN(auto v, ParseLabelSet(s));
  return Labels::FromUnsorted(std::move(v));
}

Result<int64_t> ParseTime(std::string_view s) {
  if (s == "0") return int64_t{0};
  if (!s.empty() && s.back() == 'n' && s.size() > 1 && std::isdigit(static_cast<unsigned char>(s[s.size() - 2]))) {
    return static_cast<int64_t>(std::strtoll(std::string(s.substr(0, s.size() - 1)).c_str(), nullptr, 10));
  }
  return ParseRangeDuration(s);
}

// Next whitespace-separated word of *s.
std::string_view Word(std::string_view* s) {
  *s = TrimLeft(*s);
  size_t n = 0;
  while (n < s->size() && (*s)[n] != ' ' && (*s)[n] != '\t') ++n;
  std::string_view w = s->substr(0, n);
  s->remove_prefix(n);
  return w;
}

std::string FormatTime(int64_t ns) {
  if (ns % 1000000000 == 0) return std::to_string(ns / 1000000000) + "s";
  return std::to_string(ns) + "n";
}

std::string FormatValue(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

bool ValuesEqual(double a, double b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  if (a == b) return true;
  double diff = std::fabs(a - b);
  return diff <= 1e-9 * std::max(std::fabs(a), std::fabs(b)) || diff < 1e-12;
}

struct Script {
  std::vector<std::string> lines;
};

class Runner {
 public:
  Runner(const std::string& dir, const LogqlRunnerOptions& o) : dir_(dir), opts_(o) {}

  Result<LogqlScriptReport> Run(std::string_view text) {
    std::vector<std::string> lines;
    std::stringstream ss{std::string(text)};
    std::string l;
    while (std::getline(ss, l)) lines.push_back(l);
    TELKIT_RETURN_IF_ERROR(NewStore());
    size_t i = 0;
    while (i < lines.size()) {
      std::string_view line = Trim(lines[i]);
      if (line.empty() || line[0] == '#') {
        ++i;
        continue;
      }
      if (Indent(lines[i]) > 0) return Bad(i, "unexpected indented line");
      size_t block_end = i + 1;
      while (block_end < lines.size() && (Indent(lines[block_end]) > 0 || Trim(lines[block_end]).empty())) {
        ++block_end;
      }
      std::vector<std::string_view> body;
      for (size_t k = i + 1; k < block_end; ++k) {
        if (!Trim(lines[k]).empty() && TrimLeft(lines[k])[0] != '#') body.push_back(lines[k]);
      }
      std::string_view rest = line;
      std::string_view cmd = Word(&rest);
      if (cmd == "load") {
        TELKIT_RETURN_IF_ERROR(Load(i, rest, body));
      } else if (cmd == "clear") {
        TELKIT_RETURN_IF_ERROR(NewStore());
      } else if (cmd == "eval") {
        TELKIT_RETURN_IF_ERROR(Eval(i, rest, body));
      } else {
        return Bad(i, "unknown command '" + std::string(cmd) + "'");
      }
      i = block_end;
    }
    if (store_) (void)store_->Close();
    return report_;
  }

 private:
  Status Bad(size_t line, const std::string& msg) {
    return InvalidArgumentError("line " + std::to_string(line + 1) + ": " + msg);
  }

  Status NewStore() {
    if (store_) (void)store_->Close();
    reader_.reset();
    store_.reset();
    std::string d = dir_ + "/store" + std::to_string(++generation_);
    LogStoreOptions o;
    o.background = false;
    o.retention_ns = 0;
    o.chunk.block_bytes = 256;  // several blocks per chunk even in small tests
    TELKIT_ASSIGN_OR_RETURN(store_, LogStore::Open(DefaultFileSystem(), d, o));
    store_dir_ = d;
    return OkStatus();
  }

  Status Load(size_t at, std::string_view rest, const std::vector<std::string_view>& body) {
    auto stream = ParseLabels(&rest);
    if (!stream.ok()) return Bad(at, "load: " + stream.status().message());
    LogPush push;
    push.stream = *stream;
    for (std::string_view b : body) {
      std::string_view s = TrimLeft(b);
      std::string_view t = Word(&s);
      auto ts = ParseTime(t);
      if (!ts.ok()) return Bad(at, "load: bad time '" + std::string(t) + "'");
      if (!s.empty() && s[0] == ' ') s.remove_prefix(1);
      LogEntry e;
      e.ts = *ts;
      if (s.substr(0, 2) == "@{") {
        s.remove_prefix(1);
        auto meta = ParseLabelSet(&s);
        if (!meta.ok()) return Bad(at, "load: metadata: " + meta.status().message());
        e.metadata = *meta;
        if (!s.empty() && s[0] == ' ') s.remove_prefix(1);
      }
      e.line = std::string(s);
      push.entries.push_back(std::move(e));
    }
    auto r = store_->Push(std::span<const LogPush>(&push, 1));
    if (!r.ok()) return r.status();
    if (r->rejected_total() > 0) return Bad(at, "load: the store refused lines");
    if (opts_.flush_after_load) TELKIT_RETURN_IF_ERROR(store_->Flush());
    reader_.reset();
    return OkStatus();
  }

  Result<LogQuerier*> Querier() {
    if (!opts_.use_reader) return static_cast<LogQuerier*>(store_.get());
    if (!reader_) {
      TELKIT_ASSIGN_OR_RETURN(reader_, LogReader::Open(DefaultFileSystem(), store_dir_));
    }
    return static_cast<LogQuerier*>(reader_.get());
  }

  Status Eval(size_t at, std::string_view rest, const std::vector<std::string_view>& body) {
    bool expect_error = false, ordered = false;
    std::string_view peek = rest;
    std::string_view w = Word(&peek);
    if (w == "error") {
      expect_error = true;
      rest = peek;
      w = Word(&peek);
    }
    if (w == "ordered") {
      ordered = true;
      rest = peek;
      w = Word(&peek);
    }
    QueryParams p;
    enum { kLogs, kInstant, kRange, kParseOnly } mode = kParseOnly;
    auto time_word = [&](std::string_view* in, int64_t* out) -> Status {
      std::string_view v = Word(in);
      auto t = ParseTime(v);
      if (!t.ok()) return Bad(at, "bad time '" + std::string(v) + "'");
      *out = *t;
      return OkStatus();
    };
    if (w == "logs") {
      mode = kLogs;
      rest = peek;
      p.start_ns = 0;
      p.end_ns = int64_t{3600} * 1000000000;
      p.step_ns = 1;
      while (true) {
        std::string_view q = rest;
        std::string_view k = Word(&q);
        if (k == "from") {
          TELKIT_RETURN_IF_ERROR(time_word(&q, &p.start_ns));
        } else if (k == "to") {
          TELKIT_RETURN_IF_ERROR(time_word(&q, &p.end_ns));
        } else if (k == "limit") {
          p.limit = static_cast<size_t>(std::strtoull(std::string(Word(&q)).c_str(), nullptr, 10));
        } else if (k == "forward" || k == "backward") {
          p.backward = k == "backward";
        } else {
          break;
        }
        rest = q;
      }
    } else if (w == "instant") {
      mode = kInstant;
      rest = peek;
      if (Word(&rest) != "at") return Bad(at, "expected 'instant at T'");
      TELKIT_RETURN_IF_ERROR(time_word(&rest, &p.start_ns));
      p.end_ns = p.start_ns;
    } else if (w == "range") {
      mode = kRange;
      rest = peek;
      if (Word(&rest) != "from") return Bad(at, "expected 'range from A to B step S'");
      TELKIT_RETURN_IF_ERROR(time_word(&rest, &p.start_ns));
      if (Word(&rest) != "to") return Bad(at, "expected 'range from A to B step S'");
      TELKIT_RETURN_IF_ERROR(time_word(&rest, &p.end_ns));
      if (Word(&rest) != "step") return Bad(at, "expected 'range from A to B step S'");
      TELKIT_RETURN_IF_ERROR(time_word(&rest, &p.step_ns));
    } else if (!expect_error) {
      return Bad(at, "expected logs, instant or range after eval");
    }
    std::string query(Trim(rest));
    LogqlEvalReport rep;
    rep.line = static_cast<int>(at + 1);
    rep.query = query;
    TELKIT_ASSIGN_OR_RETURN(LogQuerier * q, Querier());
    Engine engine(q, EngineOptions{.max_series = 10000, .max_points = 11000, .batch_lines = 3, .metric_batch_lines = 2});
    Result<QueryResult> r = InvalidArgumentError("not run");
    if (mode == kParseOnly) {
      QueryParams pp;
      pp.start_ns = pp.end_ns = 0;
      r = engine.Query(query, pp);
    } else {
      r = engine.Query(query, p);
    }
    if (expect_error) {
      if (r.ok()) {
        rep.message = "expected an error, got a result";
      } else if (!body.empty() && r.status().message().find(std::string(Trim(body[0]))) == std::string::npos) {
        rep.message = "error '" + r.status().message() + "' does not contain '" + std::string(Trim(body[0])) + "'";
      } else {
        rep.passed = true;
      }
      return Record(std::move(rep));
    }
    if (!r.ok()) {
      rep.message = "unexpected error: " + r.status().ToString();
      return Record(std::move(rep));
    }
    std::string want, got;
    if (mode == kLogs) {
      if (r->type != QueryResult::Type::kStreams) {
        rep.message = "expected streams, got " + std::string(ResultTypeName(r->type));
        return Record(std::move(rep));
      }
      for (std::string_view b : body) {
        std::string_view s = TrimLeft(b);
        if (s[0] == '{') {
          auto l = ParseLabels(&s);
          if (!l.ok()) return Bad(at, "expected stream: " + l.status().message());
          want += l->ToString() + "\n";
        } else {
          std::string_view t = Word(&s);
          auto ts = ParseTime(t);
          if (!ts.ok()) return Bad(at, "bad time '" + std::string(t) + "'");
          if (!s.empty() && s[0] == ' ') s.remove_prefix(1);
          want += "  " + FormatTime(*ts) + " " + std::string(s) + "\n";
        }
      }
      for (const StreamResult& st : r->streams) {
        got += st.labels.ToString() + "\n";
        for (const LogLine& e : st.entries) got += "  " + FormatTime(e.ts) + " " + e.line + "\n";
      }
      if (want != got) rep.message = "streams differ\n--- want\n" + want + "--- got\n" + got;
      else rep.passed = true;
      return Record(std::move(rep));
    }
    // Metric results: compare label sets and values.
    struct Row {
      std::string labels;
      std::vector<std::optional<double>> values;
    };
    std::vector<Row> want_rows, got_rows;
    size_t steps = mode == kRange ? static_cast<size_t>((p.end_ns - p.start_ns) / p.step_ns) + 1 : 1;
    for (std::string_view b : body) {
      std::string_view s = TrimLeft(b);
      Row row;
      if (s.substr(0, 6) == "scalar") {
        row.labels = "scalar";
        s.remove_prefix(6);
      } else {
        auto l = ParseLabels(&s);
        if (!l.ok()) return Bad(at, "expected series: " + l.status().message());
        row.labels = l->ToString();
      }
      while (true) {
        std::string_view v = Word(&s);
        if (v.empty()) break;
        if (v == "_") {
          row.values.push_back(std::nullopt);
          continue;
        }
        std::string vs(v);
        char* end = nullptr;
        double d = vs == "NaN" ? std::nan("") : vs == "+Inf" || vs == "Inf" ? INFINITY : vs == "-Inf" ? -INFINITY
                                                                                          : std::strtod(vs.c_str(), &end);
        if (end && end != vs.c_str() + vs.size()) return Bad(at, "bad value '" + vs + "'");
        row.values.push_back(d);
      }
      want_rows.push_back(std::move(row));
    }
    if (r->type == QueryResult::Type::kScalar) {
      got_rows.push_back(Row{"scalar", {r->scalar}});
    } else {
      for (const SeriesResult& sr : r->series) {
        Row row;
        row.labels = sr.labels.ToString();
        if (mode == kRange) {
          row.values.assign(steps, std::nullopt);
          for (const auto& [t, v] : sr.points) row.values[static_cast<size_t>((t - p.start_ns) / p.step_ns)] = v;
        } else {
          row.values.push_back(sr.points[0].second);
        }
        got_rows.push_back(std::move(row));
      }
    }
    if (mode == kInstant && r->type == QueryResult::Type::kMatrix) {
      rep.message = "instant query returned a matrix";
      return Record(std::move(rep));
    }
    if (!ordered) {
      auto by_labels = [](const Row& a, const Row& b) { return a.labels < b.labels; };
      std::stable_sort(want_rows.begin(), want_rows.end(), by_labels);
      std::stable_sort(got_rows.begin(), got_rows.end(), by_labels);
    }
    auto render = [](const std::vector<Row>& rows) {
      std::string out;
      for (const Row& row : rows) {
        out += "  " + row.labels;
        for (const auto& v : row.values) out += " " + (v ? FormatValue(*v) : std::string("_"));
        out += "\n";
      }
      return out;
    };
    bool same = want_rows.size() == got_rows.size();
    for (size_t k = 0; same && k < want_rows.size(); ++k) {
      const Row& a = want_rows[k];
      const Row& b = got_rows[k];
      same = a.labels == b.labels && a.values.size() == b.values.size();
      for (size_t j = 0; same && j < a.values.size(); ++j) {
        same = a.values[j].has_value() == b.values[j].has_value() &&
               (!a.values[j] || ValuesEqual(*a.values[j], *b.values[j]));
      }
    }
    if (!same) rep.message = "result differs\n--- want\n" + render(want_rows) + "--- got\n" + render(got_rows);
    else rep.passed = true;
    return Record(std::move(rep));
  }

  Status Record(LogqlEvalReport rep) {
    (rep.passed ? report_.passed : report_.failed)++;
    report_.evals.push_back(std::move(rep));
    return OkStatus();
  }

  std::string dir_;
  LogqlRunnerOptions opts_;
  std::unique_ptr<LogStore> store_;
  std::unique_ptr<LogReader> reader_;
  std::string store_dir_;
  int generation_ = 0;
  LogqlScriptReport report_;
};

}  // namespace

Result<LogqlScriptReport> RunLogqlScript(std::string_view text, const std::string& dir,
                                         const LogqlRunnerOptions& options) {
  Runner r(dir, options);
  return r.Run(text);
}

}  // namespace telkit::logql
