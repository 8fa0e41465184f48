#include "common/tracestore/trace_catalogue.h"

#include <sqlite3.h>

#include <algorithm>
#include <set>

#include "common/sqlite/sqlite_db.h"

namespace telkit {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
  id INTEGER PRIMARY KEY, min_start_ns INTEGER NOT NULL, max_end_ns INTEGER NOT NULL,
  created_ns INTEGER NOT NULL, bytes INTEGER NOT NULL, traces INTEGER NOT NULL, spans INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS traces (
  trace_id BLOB NOT NULL, block INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL,
  start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, spans INTEGER NOT NULL,
  root_service TEXT NOT NULL, root_name TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS traces_by_id ON traces (trace_id);
CREATE INDEX IF NOT EXISTS traces_by_block ON traces (block);
CREATE TABLE IF NOT EXISTS spans (
  block INTEGER NOT NULL, trace_id BLOB NOT NULL, service TEXT NOT NULL, name TEXT NOT NULL,
  kind INTEGER NOT NULL, status INTEGER NOT NULL, start_ns INTEGER NOT NULL, duration_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS spans_by_start ON spans (start_ns);
CREATE INDEX IF NOT EXISTS spans_by_block ON spans (block);
CREATE TABLE IF NOT EXISTS attrs (
  block INTEGER NOT NULL, trace_id BLOB NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS attrs_by_kv ON attrs (key, value);
CREATE INDEX IF NOT EXISTS attrs_by_block ON attrs (block);
)sql";

std::string ColumnString(sqlite3_stmt* s, int i) { return std::string(SqliteColumnBlob(s, i)); }

constexpr std::string_view kIntrinsicTags[] = {"service.name", "name", "kind", "status"};

}  // namespace

bool SpanMatches(const TraceSearchRequest& req, const SpanRecord& s) {
  auto start = static_cast<int64_t>(s.start_ns);
  if (start < req.start_ns || start >= req.end_ns) return false;
  if (!req.service.empty() && s.service != req.service) return false;
  if (!req.name.empty() && s.name != req.name) return false;
  if (s.duration_ns() < req.min_duration_ns) return false;
  if (req.max_duration_ns != 0 && s.duration_ns() > req.max_duration_ns) return false;
  if (req.kind >= 0 && s.kind != req.kind) return false;
  if (req.status >= 0 && s.status != req.status) return false;
  for (const auto& cond : req.attributes) {
    if (std::find(s.attributes.begin(), s.attributes.end(), cond) == s.attributes.end()) return false;
  }
  return true;
}

Result<std::unique_ptr<TraceCatalogue>> TraceCatalogue::Open(const std::string& path, bool read_only) {
  std::unique_ptr<TraceCatalogue> c(new TraceCatalogue());
  TELKIT_ASSIGN_OR_RETURN(c->db_, SqliteDb::Open(path, read_only, "catalogue"));
  if (!read_only) TELKIT_RETURN_IF_ERROR(c->db_->InitSchema(kSchema, kTraceCatalogueSchemaVersion));
  return c;
}

TraceCatalogue::~TraceCatalogue() = default;

Status TraceCatalogue::Begin() { return db_->Begin(); }
Status TraceCatalogue::BeginRead() { return db_->BeginRead(); }
Status TraceCatalogue::Commit() { return db_->Commit(); }
Status TraceCatalogue::Rollback() { return db_->Rollback(); }

Result<uint32_t> TraceCatalogue::WalStart() {
  TELKIT_ASSIGN_OR_RETURN(int64_t v, Meta("wal_start", 0));
  return static_cast<uint32_t>(v);
}

Status TraceCatalogue::SetWalStart(uint32_t segment) { return SetMeta("wal_start", segment); }

Result<int64_t> TraceCatalogue::Meta(const std::string& key, int64_t absent) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT value FROM meta WHERE key = ?1"));
  SqliteStatementScope g(s);
  SqliteBindText(s, 1, key);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) return static_cast<int64_t>(sqlite3_column_int64(s, 0));
  if (rc == SQLITE_DONE) return absent;
  return db_->Error("read meta " + key);
}

Status TraceCatalogue::SetMeta(const std::string& key, int64_t value) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)"));
  SqliteStatementScope g(s);
  SqliteBindText(s, 1, key);
  sqlite3_bind_int64(s, 2, value);
  if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("set meta " + key);
  return OkStatus();
}

Status TraceCatalogue::AddBlock(const TraceBlockInfo& b, std::span<const TraceFrameRef> frames,
                                std::span<const SpanRecord* const> spans, std::span<const uint32_t> trace_of) {
  {
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("INSERT INTO blocks VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    SqliteStatementScope g(s);
    sqlite3_bind_int64(s, 1, static_cast<int64_t>(b.id));
    sqlite3_bind_int64(s, 2, b.min_start_ns);
    sqlite3_bind_int64(s, 3, b.max_end_ns);
    sqlite3_bind_int64(s, 4, b.created_ns);
    sqlite3_bind_int64(s, 5, static_cast<int64_t>(b.bytes));
    sqlite3_bind_int64(s, 6, static_cast<int64_t>(b.traces));
    sqlite3_bind_int64(s, 7, static_cast<int64_t>(b.spans));
    if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("insert block");
  }
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * ts,
                          db_->Prepare("INSERT INTO traces VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
  for (const TraceFrameRef& f : frames) {
    SqliteStatementScope g(ts);
    SqliteBindBlob(ts, 1, f.trace_id);
    sqlite3_bind_int64(ts, 2, static_cast<int64_t>(b.id));
    sqlite3_bind_int64(ts, 3, static_cast<int64_t>(f.offset));
    sqlite3_bind_int64(ts, 4, static_cast<int64_t>(f.length));
    sqlite3_bind_int64(ts, 5, f.start_ns);
    sqlite3_bind_int64(ts, 6, f.end_ns);
    sqlite3_bind_int64(ts, 7, f.spans);
    SqliteBindText(ts, 8, f.root_service);
    SqliteBindText(ts, 9, f.root_name);
    if (sqlite3_step(ts) != SQLITE_DONE) return db_->Error("insert trace");
  }
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * ss, db_->Prepare("INSERT INTO spans VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * as, db_->Prepare("INSERT INTO attrs VALUES (?1, ?2, ?3, ?4)"));
  std::set<std::pair<std::string_view, std::string_view>> seen;
  uint32_t current = UINT32_MAX;
  for (size_t i = 0; i < spans.size(); ++i) {
    const SpanRecord& r = *spans[i];
    if (trace_of[i] != current) {
      current = trace_of[i];
      seen.clear();
    }
    {
      SqliteStatementScope g(ss);
      sqlite3_bind_int64(ss, 1, static_cast<int64_t>(b.id));
      SqliteBindBlob(ss, 2, r.trace_id);
      SqliteBindText(ss, 3, r.service);
      SqliteBindText(ss, 4, r.name);
      sqlite3_bind_int(ss, 5, r.kind);
      sqlite3_bind_int(ss, 6, r.status);
      sqlite3_bind_int64(ss, 7, static_cast<int64_t>(r.start_ns));
      sqlite3_bind_int64(ss, 8, static_cast<int64_t>(r.duration_ns()));
      if (sqlite3_step(ss) != SQLITE_DONE) return db_->Error("insert span");
    }
    for (const auto& [k, v] : r.attributes) {
      if (!seen.emplace(k, v).second) continue;
      SqliteStatementScope g(as);
      sqlite3_bind_int64(as, 1, static_cast<int64_t>(b.id));
      SqliteBindBlob(as, 2, r.trace_id);
      SqliteBindText(as, 3, k);
      SqliteBindText(as, 4, v);
      if (sqlite3_step(as) != SQLITE_DONE) return db_->Error("insert attribute");
    }
  }
  return OkStatus();
}

Status TraceCatalogue::RemoveBlock(uint64_t block) {
  for (const char* sql : {"DELETE FROM blocks WHERE id = ?1", "DELETE FROM traces WHERE block = ?1",
                          "DELETE FROM spans WHERE block = ?1", "DELETE FROM attrs WHERE block = ?1"}) {
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare(sql));
    SqliteStatementScope g(s);
    sqlite3_bind_int64(s, 1, static_cast<int64_t>(block));
    if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("remove block");
  }
  return OkStatus();
}

Result<std::vector<TraceBlockInfo>> TraceCatalogue::Blocks() {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT * FROM blocks ORDER BY id"));
  SqliteStatementScope g(s);
  std::vector<TraceBlockInfo> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    TraceBlockInfo b;
    b.id = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
    b.min_start_ns = sqlite3_column_int64(s, 1);
    b.max_end_ns = sqlite3_column_int64(s, 2);
    b.created_ns = sqlite3_column_int64(s, 3);
    b.bytes = static_cast<uint64_t>(sqlite3_column_int64(s, 4));
    b.traces = static_cast<uint64_t>(sqlite3_column_int64(s, 5));
    b.spans = static_cast<uint64_t>(sqlite3_column_int64(s, 6));
    out.push_back(b);
  }
  if (rc != SQLITE_DONE) return db_->Error("list blocks");
  return out;
}

Result<std::vector<TraceFrameRef>> TraceCatalogue::FindTrace(const std::string& trace_id) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT * FROM traces WHERE trace_id = ?1 ORDER BY block"));
  SqliteStatementScope g(s);
  SqliteBindBlob(s, 1, trace_id);
  std::vector<TraceFrameRef> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    TraceFrameRef f;
    f.trace_id = ColumnString(s, 0);
    f.block = static_cast<uint64_t>(sqlite3_column_int64(s, 1));
    f.offset = static_cast<uint64_t>(sqlite3_column_int64(s, 2));
    f.length = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
    f.start_ns = sqlite3_column_int64(s, 4);
    f.end_ns = sqlite3_column_int64(s, 5);
    f.spans = static_cast<uint32_t>(sqlite3_column_int64(s, 6));
    f.root_service = ColumnString(s, 7);
    f.root_name = ColumnString(s, 8);
    out.push_back(std::move(f));
  }
  if (rc != SQLITE_DONE) return db_->Error("find trace");
  return out;
}

Result<std::vector<TraceSummary>> TraceCatalogue::Search(const TraceSearchRequest& req) {
  std::string sql =
      "SELECT trace_id, COUNT(*) FROM spans WHERE start_ns >= ?1 AND start_ns < ?2"
      " AND (?3 = '' OR service = ?3) AND (?4 = '' OR name = ?4) AND duration_ns >= ?5"
      " AND (?6 = 0 OR duration_ns <= ?6) AND (?7 < 0 OR kind = ?7) AND (?8 < 0 OR status = ?8)";
  for (size_t i = 0; i < req.attributes.size(); ++i) {
    int k = 10 + static_cast<int>(2 * i);
    sql += " AND trace_id IN (SELECT trace_id FROM attrs WHERE key = ?" + std::to_string(k) + " AND value = ?" +
           std::to_string(k + 1) + ")";
  }
  sql += " GROUP BY trace_id ORDER BY MAX(start_ns) DESC LIMIT ?9";
  SqliteStatement st;
  TELKIT_RETURN_IF_ERROR(db_->PrepareOwned(sql, &st, "prepare search"));
  sqlite3_stmt* s = st.get();
  sqlite3_bind_int64(s, 1, req.start_ns);
  sqlite3_bind_int64(s, 2, req.end_ns);
  SqliteBindText(s, 3, req.service);
  SqliteBindText(s, 4, req.name);
  sqlite3_bind_int64(s, 5, static_cast<int64_t>(std::min<uint64_t>(req.min_duration_ns, INT64_MAX)));
  sqlite3_bind_int64(s, 6, static_cast<int64_t>(std::min<uint64_t>(req.max_duration_ns, INT64_MAX)));
  sqlite3_bind_int(s, 7, req.kind);
  sqlite3_bind_int(s, 8, req.status);
  sqlite3_bind_int64(s, 9, static_cast<int64_t>(std::min<size_t>(req.limit, INT64_MAX)));
  for (size_t i = 0; i < req.attributes.size(); ++i) {
    SqliteBindText(s, 10 + static_cast<int>(2 * i), req.attributes[i].first);
    SqliteBindText(s, 11 + static_cast<int>(2 * i), req.attributes[i].second);
  }
  std::vector<TraceSummary> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    TraceSummary t;
    t.trace_id = ColumnString(s, 0);
    t.matched = static_cast<uint32_t>(sqlite3_column_int64(s, 1));
    out.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE) return db_->Error("search");
  for (TraceSummary& t : out) {
    TELKIT_ASSIGN_OR_RETURN(auto frames, FindTrace(t.trace_id));
    bool first = true;
    for (const TraceFrameRef& f : frames) {
      t.start_ns = first ? f.start_ns : std::min(t.start_ns, f.start_ns);
      t.end_ns = first ? f.end_ns : std::max(t.end_ns, f.end_ns);
      first = false;
      t.spans += f.spans;
      if (t.root_name.empty() && !f.root_name.empty()) {
        t.root_service = f.root_service;
        t.root_name = f.root_name;
      }
    }
  }
  return out;
}

Result<std::vector<std::string>> TraceCatalogue::TagNames() {
  std::vector<std::string> out(std::begin(kIntrinsicTags), std::end(kIntrinsicTags));
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT DISTINCT key FROM attrs ORDER BY key"));
  SqliteStatementScope g(s);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(ColumnString(s, 0));
  if (rc != SQLITE_DONE) return db_->Error("tag names");
  return out;
}

Result<std::vector<std::string>> TraceCatalogue::TagValues(const std::string& tag, size_t limit) {
  const char* sql = "SELECT DISTINCT value FROM attrs WHERE key = ?1 ORDER BY value LIMIT ?2";
  if (tag == "service.name") sql = "SELECT DISTINCT service FROM spans WHERE ?1 = ?1 ORDER BY service LIMIT ?2";
  if (tag == "name") sql = "SELECT DISTINCT name FROM spans WHERE ?1 = ?1 ORDER BY name LIMIT ?2";
  if (tag == "kind") sql = "SELECT DISTINCT kind FROM spans WHERE ?1 = ?1 ORDER BY kind LIMIT ?2";
  if (tag == "status") sql = "SELECT DISTINCT status FROM spans WHERE ?1 = ?1 ORDER BY status LIMIT ?2";
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare(sql));
  SqliteStatementScope g(s);
  SqliteBindText(s, 1, tag);
  sqlite3_bind_int64(s, 2, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const unsigned char* p = sqlite3_column_text(s, 0);
    out.emplace_back(p ? reinterpret_cast<const char*>(p) : "");
  }
  if (rc != SQLITE_DONE) return db_->Error("tag values");
  return out;
}

}  // namespace telkit
