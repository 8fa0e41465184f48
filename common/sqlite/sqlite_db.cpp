#include "common/sqlite/sqlite_db.h"

#include <sqlite3.h>

namespace telkit {

SqliteStatementScope::~SqliteStatementScope() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(s_); }

void SqliteBindText(sqlite3_stmt *s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void SqliteBindBlob(sqlite3_stmt *s, int i, std::string_view v) {
  sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
std::string_view SqliteColumnText(sqlite3_stmt *s, int i) {
  const char *p = reinterpret_cast<const char *>(sqlite3_column_text(s, i));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s, i))) : std::string_view();
}
std::string_view SqliteColumnBlob(sqlite3_stmt *s, int i) {
  const char *p = static_cast<const char *>(sqlite3_column_blob(s, i));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s, i))) : std::string_view();
}

Result<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string &path, bool read_only, std::string name) {
  std::unique_ptr<SqliteDb> db(new SqliteDb());
  db->name_ = std::move(name);
  db->in_memory_ = path.empty();
  db->path_ = path.empty() ? ":memory:" : path;
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(db->path_.c_str(), &db->db_, flags, nullptr) != SQLITE_OK) {
    if (read_only && db->db_ && sqlite3_errcode(db->db_) == SQLITE_CANTOPEN) {
      return NotFoundError("open " + db->name_ + " '" + db->path_ + "': cannot open");
    }
    return db->db_ ? db->Error("open '" + db->path_ + "'") : InternalError(db->name_ + ": open '" + db->path_ + "'");
  }
  sqlite3_busy_timeout(db->db_, 5000);
  return db;
}

SqliteDb::~SqliteDb() {
  for (auto &[sql, s] : stmts_) sqlite3_finalize(s);
  if (db_) sqlite3_close(db_);
}

Status SqliteDb::InitSchema(const char *schema, int version) {
  if (!in_memory_) TELKIT_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
  TELKIT_RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
  TELKIT_RETURN_IF_ERROR(Exec(schema));
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare("PRAGMA user_version"));
  int have = 0;
  {
    SqliteStatementScope g(s);
    if (sqlite3_step(s) == SQLITE_ROW) have = sqlite3_column_int(s, 0);
  }
  if (have == 0) return Exec(("PRAGMA user_version=" + std::to_string(version)).c_str());
  if (have != version) {
    return UnimplementedError(name_ + " '" + path_ + "' has schema version " + std::to_string(have));
  }
  return OkStatus();
}

Status SqliteDb::Exec(const char *sql) {
  char *err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown error";
    sqlite3_free(err);
    return InternalError(name_ + ": " + m);
  }
  return OkStatus();
}

Result<sqlite3_stmt *> SqliteDb::Prepare(const char *sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt *s = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) return Error("prepare");
  stmts_.emplace(sql, s);
  return s;
}

Status SqliteDb::PrepareOwned(const std::string &sql, SqliteStatement *out, std::string_view what) {
  sqlite3_finalize(out->s_);
  out->s_ = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &out->s_, nullptr) != SQLITE_OK) return Error(what);
  return OkStatus();
}

int64_t SqliteDb::LastInsertRowid() { return sqlite3_last_insert_rowid(db_); }
int SqliteDb::Changes() { return sqlite3_changes(db_); }

Status SqliteDb::Error(std::string_view what) {
  return InternalError(name_ + ": " + std::string(what) + ": " + (db_ ? sqlite3_errmsg(db_) : "no database"));
}

}  // namespace telkit
