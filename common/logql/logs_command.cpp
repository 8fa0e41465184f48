#include "common/logql/logs_command.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <set>
#include <thread>

#include "common/logql/parser.h"
#include "common/logql/pipeline.h"

namespace telkit::logql {

namespace {

std::string FormatEntry(const LogsCommand& cmd, const Labels& labels, const LogLine& l) {
  switch (cmd.format) {
    case LogsCommand::Format::kRaw: return l.line + "\n";
    case LogsCommand::Format::kJson: {
      nlohmann::ordered_json j;
      j["timestamp"] = FormatRfc3339Nano(l.ts);
      nlohmann::ordered_json lj = nlohmann::ordered_json::object();
      for (const Label& x : labels) lj[x.name] = x.value;
      j["labels"] = std::move(lj);
      j["line"] = l.line;
      return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    }
    case LogsCommand::Format::kTable: break;
  }
  QueryResult one;
  one.streams.push_back(StreamResult{labels, {l}});
  TableOptions o;
  o.color = cmd.color;
  return FormatLogTable(one, o);
}

struct Printed {
  const Labels* labels;
  const LogLine* line;
};

}  // namespace

Result<std::unique_ptr<Expr>> BuildLogsQuery(std::string_view query, std::string_view trace_id) {
  std::string q(query);
  bool all = q.empty();
  if (all) q = "{__telkit_all__=\"x\"}";  // replaced below by "no matchers"
  if (!trace_id.empty()) {
    for (char c : trace_id) {
      if (!std::isxdigit(static_cast<unsigned char>(c))) {
        return InvalidArgumentError("--trace-id: '" + std::string(trace_id) + "' is not a hex trace id");
      }
    }
    std::string id(trace_id);
    for (char& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    q += " | trace_id=\"" + id + "\"";
  }
  TELKIT_ASSIGN_OR_RETURN(auto e, ParseExpr(q));
  if (!e->IsLog()) return InvalidArgumentError("logs takes a log query (a selector and a pipeline), not a metric query");
  if (all) e->selector.matchers.clear();
  return e;
}

Status RunLogsCommand(const LogsCommand& cmd, LogQuerier* querier, const std::function<bool(std::string_view)>& write,
                      const std::function<bool()>& stop, const std::function<int64_t()>& now_ns) {
  TELKIT_ASSIGN_OR_RETURN(auto expr, BuildLogsQuery(cmd.query, cmd.trace_id));
  Engine engine(querier);
  int64_t now = now_ns();
  QueryParams p;
  p.start_ns = now - cmd.since_ns;
  p.end_ns = now + 1;
  p.step_ns = 1;
  p.limit = cmd.limit;
  p.backward = true;
  TELKIT_ASSIGN_OR_RETURN(QueryResult r, engine.Execute(*expr, p));
  int64_t cursor = p.start_ns;
  std::set<std::pair<std::string, std::string>> at_cursor;  // (labels, line) printed at `cursor`
  auto emit = [&](const QueryResult& res, bool skip_seen) -> bool {
    std::vector<Printed> all;
    for (const StreamResult& s : res.streams) {
      for (const LogLine& l : s.entries) all.push_back(Printed{&s.labels, &l});
    }
    std::stable_sort(all.begin(), all.end(), [](const Printed& a, const Printed& b) { return a.line->ts < b.line->ts; });
    for (const Printed& pr : all) {
      std::pair<std::string, std::string> key{pr.labels->ToString(), pr.line->line};
      if (skip_seen && pr.line->ts == cursor && at_cursor.count(key)) continue;
      if (pr.line->ts > cursor) {
        cursor = pr.line->ts;
        at_cursor.clear();
      }
      at_cursor.insert(std::move(key));
      if (!write(FormatEntry(cmd, *pr.labels, *pr.line))) return false;
    }
    return true;
  };
  if (!emit(r, false)) return OkStatus();
  if (!cmd.follow) return OkStatus();
  if (cursor < now - cmd.since_ns) cursor = now - cmd.since_ns;
  while (!stop()) {
    for (int64_t waited = 0; waited < cmd.poll_ms && !stop(); waited += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(50, cmd.poll_ms - waited)));
    }
    if (stop()) break;
    QueryParams f;
    f.start_ns = cursor;
    f.end_ns = now_ns() + 1;
    f.step_ns = 1;
    f.limit = 10000;
    f.backward = false;
    TELKIT_ASSIGN_OR_RETURN(QueryResult more, engine.Execute(*expr, f));
    if (!emit(more, true)) return OkStatus();
  }
  return OkStatus();
}

}  // namespace telkit::logql
