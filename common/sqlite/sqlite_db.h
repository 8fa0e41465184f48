// SqliteDb: the one SQLite handle wrapper the stores' indexes share
// (tsdb/index, logstore/log_index, tracestore/trace_catalogue).
//
// Opening: `Open(path, read_only, name)` opens PATH (":memory:" when PATH is
// empty) without SQLite's own mutex and with a 5 s busy timeout. NAME (e.g.
// "index", "log index", "catalogue") prefixes every error message, so each
// store keeps its own wording:
//   - read-only open of a file that cannot be opened: NotFound
//     "open NAME 'PATH': cannot open";
//   - any other open failure: Internal "NAME: open 'PATH': <sqlite message>".
// `InitSchema(schema, version)` (read-write only) turns on WAL journal mode
// (files only), synchronous=FULL, runs SCHEMA (idempotent CREATE ... IF NOT
// EXISTS), and checks PRAGMA user_version: 0 (new file) is set to VERSION;
// any other value than VERSION is Unimplemented
// "NAME 'PATH' has schema version N".
//
// Statements: `Prepare(sql)` caches one prepared statement per SQL text for
// the life of the SqliteDb; callers reset it after use with a
// SqliteStatementScope. `PrepareOwned` prepares an uncached statement for
// SQL built at run time. Errors are Internal "NAME: WHAT: <sqlite message>".
//
// Transactions: Begin (BEGIN IMMEDIATE, for writers), BeginRead (BEGIN),
// Commit, Rollback; nothing is nested.
//
// Thread-compatible: callers serialise access. No method logs or throws.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/base/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace telkit {

// Resets and clears the bindings of a (cached) statement at scope exit.
class SqliteStatementScope {
 public:
  explicit SqliteStatementScope(sqlite3_stmt *s) : s_(s) {}
  ~SqliteStatementScope();
  SqliteStatementScope(const SqliteStatementScope &) = delete;
  SqliteStatementScope &operator=(const SqliteStatementScope &) = delete;

 private:
  sqlite3_stmt *s_;
};

// An uncached statement, finalized at destruction.
class SqliteStatement {
 public:
  SqliteStatement() = default;
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement &) = delete;
  SqliteStatement &operator=(const SqliteStatement &) = delete;
  sqlite3_stmt *get() const { return s_; }

 private:
  friend class SqliteDb;
  sqlite3_stmt *s_ = nullptr;
};

// Bind helpers (SQLITE_TRANSIENT: the value is copied) and column readers.
// A column view stays valid until the next step, reset or finalize.
void SqliteBindText(sqlite3_stmt *s, int i, std::string_view v);
void SqliteBindBlob(sqlite3_stmt *s, int i, std::string_view v);
std::string_view SqliteColumnText(sqlite3_stmt *s, int i);
std::string_view SqliteColumnBlob(sqlite3_stmt *s, int i);

class SqliteDb {
 public:
  static Result<std::unique_ptr<SqliteDb>> Open(const std::string &path, bool read_only, std::string name);
  ~SqliteDb();
  SqliteDb(const SqliteDb &) = delete;
  SqliteDb &operator=(const SqliteDb &) = delete;

  Status InitSchema(const char *schema, int version);

  Status Exec(const char *sql);
  Result<sqlite3_stmt *> Prepare(const char *sql);
  Status PrepareOwned(const std::string &sql, SqliteStatement *out, std::string_view what);

  Status Begin() { return Exec("BEGIN IMMEDIATE"); }
  Status BeginRead() { return Exec("BEGIN"); }
  Status Commit() { return Exec("COMMIT"); }
  Status Rollback() { return Exec("ROLLBACK"); }

  int64_t LastInsertRowid();
  int Changes();
  // Internal "NAME: WHAT: <last sqlite error message>".
  Status Error(std::string_view what);
  sqlite3 *handle() const { return db_; }

 private:
  SqliteDb() = default;
  std::string name_;
  std::string path_;  // as opened (":memory:" for an empty path)
  bool in_memory_ = false;
  sqlite3 *db_ = nullptr;
  std::map<std::string, sqlite3_stmt *> stmts_;
};

}  // namespace telkit
