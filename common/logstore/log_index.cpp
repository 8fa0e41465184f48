#include "common/logstore/log_index.h"

#include <sqlite3.h>

#include "common/sqlite/sqlite_db.h"

namespace telkit {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS streams(id INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, selector TEXT NOT NULL,
  flushed_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS postings(name TEXT NOT NULL, value TEXT NOT NULL, stream INTEGER NOT NULL,
  PRIMARY KEY(name, value, stream)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY, stream INTEGER NOT NULL, mint INTEGER NOT NULL,
  maxt INTEGER NOT NULL, lines INTEGER NOT NULL, raw_bytes INTEGER NOT NULL, bytes INTEGER NOT NULL,
  max_seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_stream ON chunks(stream, mint);
CREATE INDEX IF NOT EXISTS chunks_by_maxt ON chunks(maxt);
)sql";

LogIndex::ChunkRow ReadChunk(sqlite3_stmt* s) {
  LogIndex::ChunkRow r;
  r.id = sqlite3_column_int64(s, 0);
  r.stream = sqlite3_column_int64(s, 1);
  r.mint = sqlite3_column_int64(s, 2);
  r.maxt = sqlite3_column_int64(s, 3);
  r.lines = static_cast<uint64_t>(sqlite3_column_int64(s, 4));
  r.raw_bytes = static_cast<uint64_t>(sqlite3_column_int64(s, 5));
  r.bytes = static_cast<uint64_t>(sqlite3_column_int64(s, 6));
  r.max_seq = static_cast<uint64_t>(sqlite3_column_int64(s, 7));
  return r;
}

}  // namespace

std::string LogStreamKey(const Labels& labels) {
  std::string k;
  for (const Label& l : labels) {
    k.append(l.name);
    k.push_back('\0');
    k.append(l.value);
    k.push_back('\0');
  }
  return k;
}

Result<Labels> LabelsFromLogStreamKey(std::string_view key) {
  std::vector<Label> ls;
  while (!key.empty()) {
    size_t a = key.find('\0');
    if (a == std::string_view::npos) return DataLossError("index: bad stream key");
    size_t b = key.find('\0', a + 1);
    if (b == std::string_view::npos) return DataLossError("index: bad stream key");
    ls.push_back(Label{std::string(key.substr(0, a)), std::string(key.substr(a + 1, b - a - 1))});
    key.remove_prefix(b + 1);
  }
  return Labels::FromUnsorted(std::move(ls));
}

Result<std::unique_ptr<LogIndex>> LogIndex::Open(const std::string& path, bool read_only) {
  std::unique_ptr<LogIndex> idx(new LogIndex());
  auto db = SqliteDb::Open(path, read_only, "log index");
  if (!db.ok()) {
    // Any read-only open failure means "no index yet" to LogReader.
    if (read_only)
      return NotFoundError("open log index '" + (path.empty() ? std::string(":memory:") : path) + "': cannot open");
    return db.status();
  }
  idx->db_ = std::move(db).value();
  if (!read_only) TELKIT_RETURN_IF_ERROR(idx->db_->InitSchema(kSchema, kLogIndexSchemaVersion));
  return idx;
}

LogIndex::~LogIndex() = default;

Status LogIndex::Begin() { return db_->Begin(); }
Status LogIndex::BeginRead() { return db_->BeginRead(); }
Status LogIndex::Commit() { return db_->Commit(); }
Status LogIndex::Rollback() { return db_->Rollback(); }

Result<int64_t> LogIndex::StreamId(const Labels& labels) {
  std::string key = LogStreamKey(labels);
  sqlite3_stmt* s;
  TELKIT_ASSIGN_OR_RETURN(s, db_->Prepare("SELECT id FROM streams WHERE key = ?"));
  {
    SqliteStatementScope g(s);
    sqlite3_bind_blob(s, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) return sqlite3_column_int64(s, 0);
    if (rc != SQLITE_DONE) return db_->Error("select stream");
  }
  TELKIT_ASSIGN_OR_RETURN(s, db_->Prepare("INSERT INTO streams(key, selector) VALUES(?, ?)"));
  int64_t id;
  {
    SqliteStatementScope g(s);
    std::string sel = labels.ToString();
    sqlite3_bind_blob(s, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, sel.data(), static_cast<int>(sel.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("insert stream");
    id = db_->LastInsertRowid();
  }
  TELKIT_ASSIGN_OR_RETURN(s, db_->Prepare("INSERT OR IGNORE INTO postings(name, value, stream) VALUES(?, ?, ?)"));
  for (const Label& l : labels) {
    SqliteStatementScope g(s);
    sqlite3_bind_text(s, 1, l.name.data(), static_cast<int>(l.name.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, l.value.data(), static_cast<int>(l.value.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, id);
    if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("insert posting");
  }
  return id;
}

Result<std::vector<LogIndex::StreamRow>> LogIndex::Streams() {
  sqlite3_stmt* s;
  TELKIT_ASSIGN_OR_RETURN(s, db_->Prepare("SELECT id, key FROM streams ORDER BY id"));
  SqliteStatementScope g(s);
  std::vector<StreamRow> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    StreamRow r;
    r.id = sqlite3_column_int64(s, 0);
    TELKIT_ASSIGN_OR_RETURN(r.labels, LabelsFromLogStreamKey(SqliteColumnBlob(s, 1)));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return db_->Error("select streams");
  return out;
}

Status LogIndex::AddChunk(const ChunkRow& r) {
  sqlite3_stmt* s;
  TELKIT_ASSIGN_OR_RETURN(s,
                          db_->Prepare("INSERT INTO chunks(id, stream, mint, maxt, lines, raw_bytes, bytes, max_seq) "
                                       "VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
  SqliteStatementScope g(s);
  sqlite3_bind_int64(s, 1, r.id);
  sqlite3_bind_int64(s, 2, r.stream);
  sqlite3_bind_int64(s, 3, r.mint);
  sqlite3_bind_int64(s, 4, r.maxt);
  sqlite3_bind_int64(s, 5, static_cast<int64_t>(r.lines));
  sqlite3_bind_int64(s, 6, static_cast<int64_t>(r.raw_bytes));
  sqlite3_bind_int64(s, 7, static_cast<int64_t>(r.bytes));
  sqlite3_bind_int64(s, 8, static_cast<int64_t>(r.max_seq));
  if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("insert chunk");
  TELKIT_ASSIGN_OR_RETURN(s, db_->Prepare("UPDATE streams SET flushed_seq = MAX(flushed_seq, ?) WHERE id = ?"));
  SqliteStatementScope g2(s);
  sqlite3_bind_int64(s, 1, static_cast<int64_t>(r.max_seq));
  sqlite3_bind_int64(s, 2, r.stream);
  if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("update stream");
  return OkStatus();
}

Status LogIndex::RemoveChunk(int64_t id) {
  sqlite3_stmt* s;
  TELKIT_ASSIGN_OR_RETURN(s, db_->Prepare("DELETE FROM chunks WHERE id = ?"));
  SqliteStatementScope g(s);
  sqlite3_bind_int64(s, 1, id);
  if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("delete chunk");
  return OkStatus();
}

Result<std::vector<LogIndex::ChunkRow>> LogIndex::Chunks(int64_t stream, int64_t mint, int64_t maxt) {
  sqlite3_stmt* s;
  TELKIT_ASSIGN_OR_RETURN(s, db_->Prepare("SELECT id, stream, mint, maxt, lines, raw_bytes, bytes, max_seq FROM chunks "
                                          "WHERE stream = ? AND mint <= ? AND maxt >= ? ORDER BY mint, id"));
  SqliteStatementScope g(s);
  sqlite3_bind_int64(s, 1, stream);
  sqlite3_bind_int64(s, 2, maxt);
  sqlite3_bind_int64(s, 3, mint);
  std::vector<ChunkRow> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(ReadChunk(s));
  if (rc != SQLITE_DONE) return db_->Error("select chunks");
  return out;
}

Result<std::vector<LogIndex::ChunkRow>> LogIndex::AllChunks() {
  sqlite3_stmt* s;
  TELKIT_ASSIGN_OR_RETURN(s, db_->Prepare("SELECT id, stream, mint, maxt, lines, raw_bytes, bytes, max_seq FROM chunks "
                                          "ORDER BY maxt, id"));
  SqliteStatementScope g(s);
  std::vector<ChunkRow> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(ReadChunk(s));
  if (rc != SQLITE_DONE) return db_->Error("select chunks");
  return out;
}

Result<std::map<int64_t, uint64_t>> LogIndex::FlushedSeqs() {
  sqlite3_stmt* s;
  TELKIT_ASSIGN_OR_RETURN(s, db_->Prepare("SELECT id, flushed_seq FROM streams"));
  SqliteStatementScope g(s);
  std::map<int64_t, uint64_t> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW)
    out[sqlite3_column_int64(s, 0)] = static_cast<uint64_t>(sqlite3_column_int64(s, 1));
  if (rc != SQLITE_DONE) return db_->Error("select flushed");
  return out;
}

}  // namespace telkit
