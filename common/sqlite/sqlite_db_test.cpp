#include "common/sqlite/sqlite_db.h"
#include "common/test_support/temp_dir.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

namespace telkit {
namespace {

using test_support::TempDir;

constexpr const char *kSchema = "CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY, v BLOB NOT NULL);";

std::unique_ptr<SqliteDb> OpenRw(const std::string &path) {
  auto db = SqliteDb::Open(path, false, "test db");
  EXPECT_TRUE(db.ok()) << db.status().message();
  EXPECT_TRUE((*db)->InitSchema(kSchema, 1).ok());
  return std::move(db).value();
}

Status Put(SqliteDb *db, std::string_view k, std::string_view v) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db->Prepare("INSERT OR REPLACE INTO kv(k, v) VALUES(?, ?)"));
  SqliteStatementScope g(s);
  SqliteBindText(s, 1, k);
  SqliteBindBlob(s, 2, v);
  if (sqlite3_step(s) != SQLITE_DONE) return db->Error("put");
  return OkStatus();
}

Result<std::string> Get(SqliteDb *db, std::string_view k) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db->Prepare("SELECT v FROM kv WHERE k = ?"));
  SqliteStatementScope g(s);
  SqliteBindText(s, 1, k);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return NotFoundError("no key");
  if (rc != SQLITE_ROW) return db->Error("get");
  return std::string(SqliteColumnBlob(s, 0));
}

TEST(SqliteDbTest, FileInWalModeWithSchemaVersionAndCachedStatements) {
  TempDir dir;
  std::string path = dir.path() + "/t.db";
  {
    auto db = OpenRw(path);
    ASSERT_TRUE(Put(db.get(), "a", std::string("x\0y", 3)).ok());
    ASSERT_TRUE(Put(db.get(), "a", "z").ok());  // same cached statement, reset in between
    EXPECT_EQ(db->Changes(), 1);
    EXPECT_EQ(*Get(db.get(), "a"), "z");
    EXPECT_EQ(Get(db.get(), "b").status().code(), StatusCode::kNotFound);
    auto mode = db->Prepare("PRAGMA journal_mode");
    ASSERT_TRUE(mode.ok());
    SqliteStatementScope g(*mode);
    ASSERT_EQ(sqlite3_step(*mode), SQLITE_ROW);
    EXPECT_EQ(SqliteColumnText(*mode, 0), "wal");
  }
  EXPECT_TRUE(std::filesystem::exists(path));
  {
    auto db = SqliteDb::Open(path, false, "test db");
    ASSERT_TRUE(db.ok());
    EXPECT_TRUE((*db)->InitSchema(kSchema, 1).ok());  // reopen: version 1 kept
    Status s = (*db)->InitSchema(kSchema, 2);
    EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
    EXPECT_NE(s.message().find("test db '" + path + "' has schema version 1"), std::string::npos) << s.message();
  }
}

TEST(SqliteDbTest, ReadOnlySeesCommittedWritesAndCannotWrite) {
  TempDir dir;
  std::string path = dir.path() + "/t.db";
  auto w = OpenRw(path);
  ASSERT_TRUE(w->Begin().ok());
  ASSERT_TRUE(Put(w.get(), "k", "v1").ok());
  ASSERT_TRUE(w->Commit().ok());
  ASSERT_TRUE(w->Begin().ok());
  ASSERT_TRUE(Put(w.get(), "k", "v2").ok());
  ASSERT_TRUE(w->Rollback().ok());

  auto r = SqliteDb::Open(path, true, "test db");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE((*r)->BeginRead().ok());
  EXPECT_EQ(*Get(r->get(), "k"), "v1");
  ASSERT_TRUE((*r)->Commit().ok());
  Status s = Put(r->get(), "k", "v3");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message().rfind("test db: put: ", 0), 0u) << s.message();
}

TEST(SqliteDbTest, ErrorsAreStatusesWithTheName) {
  TempDir dir;
  auto missing = SqliteDb::Open(dir.path() + "/none/t.db", true, "test db");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "open test db '" + dir.path() + "/none/t.db': cannot open");
  auto nodir = SqliteDb::Open(dir.path() + "/none/t.db", false, "test db");
  EXPECT_EQ(nodir.status().code(), StatusCode::kInternal);

  auto db = SqliteDb::Open("", false, "mem");  // in memory: no WAL
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->InitSchema(kSchema, 1).ok());
  Status e = (*db)->Exec("NOT SQL");
  EXPECT_EQ(e.code(), StatusCode::kInternal);
  EXPECT_EQ(e.message().rfind("mem: ", 0), 0u) << e.message();
  EXPECT_EQ((*db)->Prepare("SELECT nope FROM kv").status().code(), StatusCode::kInternal);

  SqliteStatement st;
  ASSERT_TRUE((*db)->PrepareOwned("SELECT COUNT(*) FROM kv", &st, "count").ok());
  ASSERT_EQ(sqlite3_step(st.get()), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st.get(), 0), 0);
  Status bad = (*db)->PrepareOwned("SELECT", &st, "prepare search");
  EXPECT_EQ(bad.message().rfind("mem: prepare search: ", 0), 0u) << bad.message();
}

}  // namespace
}  // namespace telkit
