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
  created_ns INTEGER NOT NULL, bytes INTEGER NOT NULL, traces INTEGER NOT NULL, spans INTEGER NOT NULL,
  index_offset INTEGER NOT NULL, index_length INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS traces (
  trace_id BLOB NOT NULL, block INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL,
  start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, spans INTEGER NOT NULL,
  PRIMARY KEY (trace_id, block)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS traces_by_block ON traces (block);
)sql";

std::string ColumnString(sqlite3_stmt* s, int i) { return std::string(SqliteColumnBlob(s, i)); }

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
  if (!read_only) {
    TELKIT_RETURN_IF_ERROR(c->db_->InitSchema(kSchema, kTraceCatalogueSchemaVersion));
    return c;
  }
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, c->db_->Prepare("PRAGMA user_version"));
  SqliteStatementScope g(s);
  int have = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
  if (have != kTraceCatalogueSchemaVersion) {
    return UnimplementedError("catalogue '" + path + "' has schema version " + std::to_string(have) + ", want " +
                              std::to_string(kTraceCatalogueSchemaVersion));
  }
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

Status TraceCatalogue::AddBlock(const TraceBlockInfo& b, std::span<const TraceFrameRef> frames) {
  {
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                            db_->Prepare("INSERT INTO blocks VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    SqliteStatementScope g(s);
    sqlite3_bind_int64(s, 1, static_cast<int64_t>(b.id));
    sqlite3_bind_int64(s, 2, b.min_start_ns);
    sqlite3_bind_int64(s, 3, b.max_end_ns);
    sqlite3_bind_int64(s, 4, b.created_ns);
    sqlite3_bind_int64(s, 5, static_cast<int64_t>(b.bytes));
    sqlite3_bind_int64(s, 6, static_cast<int64_t>(b.traces));
    sqlite3_bind_int64(s, 7, static_cast<int64_t>(b.spans));
    sqlite3_bind_int64(s, 8, static_cast<int64_t>(b.index_offset));
    sqlite3_bind_int64(s, 9, static_cast<int64_t>(b.index_length));
    if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("insert block");
  }
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * ts, db_->Prepare("INSERT INTO traces VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  for (const TraceFrameRef& f : frames) {
    SqliteStatementScope g(ts);
    SqliteBindBlob(ts, 1, f.trace_id);
    sqlite3_bind_int64(ts, 2, static_cast<int64_t>(b.id));
    sqlite3_bind_int64(ts, 3, static_cast<int64_t>(f.offset));
    sqlite3_bind_int64(ts, 4, static_cast<int64_t>(f.length));
    sqlite3_bind_int64(ts, 5, f.start_ns);
    sqlite3_bind_int64(ts, 6, f.end_ns);
    sqlite3_bind_int64(ts, 7, f.spans);
    if (sqlite3_step(ts) != SQLITE_DONE) return db_->Error("insert trace");
  }
  return OkStatus();
}

Status TraceCatalogue::RemoveBlock(uint64_t block) {
  for (const char* sql : {"DELETE FROM blocks WHERE id = ?1", "DELETE FROM traces WHERE block = ?1"}) {
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare(sql));
    SqliteStatementScope g(s);
    sqlite3_bind_int64(s, 1, static_cast<int64_t>(block));
    if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("remove block");
  }
  return OkStatus();
}

namespace {
TraceBlockInfo BlockRow(sqlite3_stmt* s) {
  TraceBlockInfo b;
  b.id = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
  b.min_start_ns = sqlite3_column_int64(s, 1);
  b.max_end_ns = sqlite3_column_int64(s, 2);
  b.created_ns = sqlite3_column_int64(s, 3);
  b.bytes = static_cast<uint64_t>(sqlite3_column_int64(s, 4));
  b.traces = static_cast<uint64_t>(sqlite3_column_int64(s, 5));
  b.spans = static_cast<uint64_t>(sqlite3_column_int64(s, 6));
  b.index_offset = static_cast<uint64_t>(sqlite3_column_int64(s, 7));
  b.index_length = static_cast<uint64_t>(sqlite3_column_int64(s, 8));
  return b;
}
}  // namespace

Result<std::vector<TraceBlockInfo>> TraceCatalogue::BlocksOverlapping(int64_t start_ns, int64_t end_ns) {
  TELKIT_ASSIGN_OR_RETURN(
      sqlite3_stmt * s, db_->Prepare("SELECT * FROM blocks WHERE min_start_ns < ?2 AND max_end_ns >= ?1 ORDER BY id"));
  SqliteStatementScope g(s);
  sqlite3_bind_int64(s, 1, start_ns);
  sqlite3_bind_int64(s, 2, end_ns);
  std::vector<TraceBlockInfo> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(BlockRow(s));
  if (rc != SQLITE_DONE) return db_->Error("list blocks");
  return out;
}

Result<std::vector<TraceBlockInfo>> TraceCatalogue::Blocks() {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT * FROM blocks ORDER BY id"));
  SqliteStatementScope g(s);
  std::vector<TraceBlockInfo> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    out.push_back(BlockRow(s));
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
    out.push_back(std::move(f));
  }
  if (rc != SQLITE_DONE) return db_->Error("find trace");
  return out;
}

}  // namespace telkit
