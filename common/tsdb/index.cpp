#include "common/tsdb/index.h"

#include <sqlite3.h>

#include <algorithm>

#include "common/tsdb/wal_records.h"

namespace telkit {
namespace {

// Resets a prepared statement when it goes out of scope.
struct StmtGuard {
  sqlite3_stmt* s;
  ~StmtGuard() {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
};

void BindText(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
std::string_view ColumnText(sqlite3_stmt* s, int i) {
  const char* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s, i))) : std::string_view();
}
std::string_view ColumnBlob(sqlite3_stmt* s, int i) {
  const char* p = static_cast<const char*>(sqlite3_column_blob(s, i));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s, i))) : std::string_view();
}

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, labels BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS series_hash ON series(hash);
CREATE TABLE IF NOT EXISTS postings(name TEXT NOT NULL, value TEXT NOT NULL, series INTEGER NOT NULL,
  PRIMARY KEY(name, value, series)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks(id INTEGER PRIMARY KEY, mint INTEGER NOT NULL, maxt INTEGER NOT NULL,
  level INTEGER NOT NULL, series INTEGER NOT NULL, samples INTEGER NOT NULL, chunks INTEGER NOT NULL,
  timestamp_columns INTEGER NOT NULL, bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(series INTEGER NOT NULL, block INTEGER NOT NULL, mint INTEGER NOT NULL,
  maxt INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL, samples INTEGER NOT NULL,
  PRIMARY KEY(series, block, mint)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_block ON chunks(block);
CREATE TABLE IF NOT EXISTS metadata(family TEXT PRIMARY KEY, type INTEGER NOT NULL, help TEXT NOT NULL,
  unit TEXT NOT NULL);
)sql";

}  // namespace

Status TsdbIndex::Error(std::string_view what) {
  return InternalError("index: " + std::string(what) + ": " + (db_ ? sqlite3_errmsg(db_) : "no database"));
}

Result<std::unique_ptr<TsdbIndex>> TsdbIndex::Open(const std::string& path, bool read_only) {
  std::unique_ptr<TsdbIndex> idx(new TsdbIndex());
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;
  std::string p = path.empty() ? ":memory:" : path;
  if (sqlite3_open_v2(p.c_str(), &idx->db_, flags, nullptr) != SQLITE_OK) {
    Status s = idx->db_ ? idx->Error("open '" + p + "'") : InternalError("index: open '" + p + "'");
    if (read_only && idx->db_ && sqlite3_errcode(idx->db_) == SQLITE_CANTOPEN) {
      return NotFoundError("open index '" + p + "': cannot open");
    }
    return s;
  }
  sqlite3_busy_timeout(idx->db_, 5000);
  if (!read_only) {
    if (!path.empty()) TELKIT_RETURN_IF_ERROR(idx->Exec("PRAGMA journal_mode=WAL"));
    TELKIT_RETURN_IF_ERROR(idx->Exec("PRAGMA synchronous=FULL"));
    TELKIT_RETURN_IF_ERROR(idx->Exec(kSchema));
    sqlite3_stmt* s;
    TELKIT_ASSIGN_OR_RETURN(s, idx->Prepare("PRAGMA user_version"));
    int version = 0;
    {
      StmtGuard g{s};
      if (sqlite3_step(s) == SQLITE_ROW) version = sqlite3_column_int(s, 0);
    }
    if (version == 0) {
      TELKIT_RETURN_IF_ERROR(idx->Exec("PRAGMA user_version=1"));
    } else if (version != kIndexSchemaVersion) {
      return UnimplementedError("index '" + p + "' has schema version " + std::to_string(version));
    }
  }
  return idx;
}

TsdbIndex::~TsdbIndex() {
  for (auto& [sql, s] : stmts_) sqlite3_finalize(s);
  if (db_) sqlite3_close(db_);
}

Status TsdbIndex::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown error";
    sqlite3_free(err);
    return InternalError("index: " + m);
  }
  return OkStatus();
}

Result<sqlite3_stmt*> TsdbIndex::Prepare(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) return Error("prepare");
  stmts_.emplace(sql, s);
  return s;
}

Status TsdbIndex::Begin() { return Exec("BEGIN IMMEDIATE"); }
Status TsdbIndex::BeginRead() { return Exec("BEGIN"); }
Status TsdbIndex::Commit() { return Exec("COMMIT"); }
Status TsdbIndex::Rollback() { return Exec("ROLLBACK"); }

Result<int64_t> TsdbIndex::SeriesId(const Labels& labels) {
  std::string blob;
  EncodeLabels(labels, &blob);
  int64_t hash = static_cast<int64_t>(labels.Hash());
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * find, Prepare("SELECT id, labels FROM series WHERE hash=?"));
  {
    StmtGuard g{find};
    sqlite3_bind_int64(find, 1, hash);
    int rc;
    while ((rc = sqlite3_step(find)) == SQLITE_ROW) {
      if (ColumnBlob(find, 1) == blob) return sqlite3_column_int64(find, 0);
    }
    if (rc != SQLITE_DONE) return Error("find series");
  }
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * ins, Prepare("INSERT INTO series(hash, labels) VALUES(?, ?)"));
  int64_t id;
  {
    StmtGuard g{ins};
    sqlite3_bind_int64(ins, 1, hash);
    sqlite3_bind_blob(ins, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(ins) != SQLITE_DONE) return Error("insert series");
    id = sqlite3_last_insert_rowid(db_);
  }
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * post, Prepare("INSERT OR IGNORE INTO postings(name, value, series) VALUES(?, ?, ?)"));
  for (const Label& l : labels) {
    StmtGuard g{post};
    BindText(post, 1, l.name);
    BindText(post, 2, l.value);
    sqlite3_bind_int64(post, 3, id);
    if (sqlite3_step(post) != SQLITE_DONE) return Error("insert postings");
  }
  return id;
}

Status TsdbIndex::AddBlock(const BlockMeta& m) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare("INSERT INTO blocks VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  StmtGuard g{s};
  sqlite3_bind_int64(s, 1, static_cast<int64_t>(m.id));
  sqlite3_bind_int64(s, 2, m.mint);
  sqlite3_bind_int64(s, 3, m.maxt);
  sqlite3_bind_int(s, 4, m.level);
  sqlite3_bind_int64(s, 5, static_cast<int64_t>(m.series));
  sqlite3_bind_int64(s, 6, static_cast<int64_t>(m.samples));
  sqlite3_bind_int64(s, 7, static_cast<int64_t>(m.chunks));
  sqlite3_bind_int64(s, 8, static_cast<int64_t>(m.timestamp_columns));
  sqlite3_bind_int64(s, 9, static_cast<int64_t>(m.bytes));
  if (sqlite3_step(s) != SQLITE_DONE) return Error("insert block");
  return OkStatus();
}

Status TsdbIndex::AddChunk(uint64_t block, int64_t series, const ChunkRef& r) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare("INSERT INTO chunks VALUES(?, ?, ?, ?, ?, ?, ?)"));
  StmtGuard g{s};
  sqlite3_bind_int64(s, 1, series);
  sqlite3_bind_int64(s, 2, static_cast<int64_t>(block));
  sqlite3_bind_int64(s, 3, r.mint);
  sqlite3_bind_int64(s, 4, r.maxt);
  sqlite3_bind_int64(s, 5, static_cast<int64_t>(r.offset));
  sqlite3_bind_int64(s, 6, r.length);
  sqlite3_bind_int64(s, 7, r.samples);
  if (sqlite3_step(s) != SQLITE_DONE) return Error("insert chunk");
  return OkStatus();
}

Status TsdbIndex::RemoveBlock(uint64_t block) {
  for (const char* sql : {"DELETE FROM chunks WHERE block=?", "DELETE FROM blocks WHERE id=?"}) {
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare(sql));
    StmtGuard g{s};
    sqlite3_bind_int64(s, 1, static_cast<int64_t>(block));
    if (sqlite3_step(s) != SQLITE_DONE) return Error("remove block");
  }
  TELKIT_RETURN_IF_ERROR(
      Exec("DELETE FROM postings WHERE series NOT IN (SELECT DISTINCT series FROM chunks);"
           "DELETE FROM series WHERE id NOT IN (SELECT DISTINCT series FROM chunks);"));
  return OkStatus();
}

Result<std::vector<BlockMeta>> TsdbIndex::Blocks() {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare("SELECT * FROM blocks ORDER BY mint, id"));
  StmtGuard g{s};
  std::vector<BlockMeta> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    BlockMeta m;
    m.id = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
    m.mint = sqlite3_column_int64(s, 1);
    m.maxt = sqlite3_column_int64(s, 2);
    m.level = sqlite3_column_int(s, 3);
    m.series = static_cast<uint64_t>(sqlite3_column_int64(s, 4));
    m.samples = static_cast<uint64_t>(sqlite3_column_int64(s, 5));
    m.chunks = static_cast<uint64_t>(sqlite3_column_int64(s, 6));
    m.timestamp_columns = static_cast<uint64_t>(sqlite3_column_int64(s, 7));
    m.bytes = static_cast<uint64_t>(sqlite3_column_int64(s, 8));
    out.push_back(m);
  }
  if (rc != SQLITE_DONE) return Error("list blocks");
  return out;
}

Result<Labels> TsdbIndex::SeriesLabels(int64_t series) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare("SELECT labels FROM series WHERE id=?"));
  StmtGuard g{s};
  sqlite3_bind_int64(s, 1, series);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return NotFoundError("index: no series " + std::to_string(series));
  if (rc != SQLITE_ROW) return Error("read series");
  auto l = DecodeLabels(ColumnBlob(s, 0));
  if (!l.ok()) return DataLossError("index: series " + std::to_string(series) + ": " + l.status().message());
  return l;
}

Result<std::vector<TsdbIndex::SeriesRow>> TsdbIndex::MatchSeries(std::span<const LabelMatcher> matchers) {
  std::vector<int64_t> candidates;
  bool have = false;
  for (const LabelMatcher& m : matchers) {
    if (m.MatchesEmpty()) continue;
    if (m.type() != MatchType::kEqual && m.type() != MatchType::kRegexMatch) continue;
    std::vector<int64_t> ids;
    if (m.type() == MatchType::kEqual) {
      TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare("SELECT series FROM postings WHERE name=? AND value=?"));
      StmtGuard g{s};
      BindText(s, 1, m.name());
      BindText(s, 2, m.value());
      int rc;
      while ((rc = sqlite3_step(s)) == SQLITE_ROW) ids.push_back(sqlite3_column_int64(s, 0));
      if (rc != SQLITE_DONE) return Error("read postings");
    } else {
      TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare("SELECT value, series FROM postings WHERE name=?"));
      StmtGuard g{s};
      BindText(s, 1, m.name());
      int rc;
      while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (m.Matches(ColumnText(s, 0))) ids.push_back(sqlite3_column_int64(s, 1));
      }
      if (rc != SQLITE_DONE) return Error("read postings");
    }
    std::sort(ids.begin(), ids.end());
    if (!have) {
      candidates = std::move(ids);
      have = true;
    } else {
      std::vector<int64_t> both;
      std::set_intersection(candidates.begin(), candidates.end(), ids.begin(), ids.end(), std::back_inserter(both));
      candidates = std::move(both);
    }
  }
  std::vector<SeriesRow> out;
  if (have) {
    for (int64_t id : candidates) {
      TELKIT_ASSIGN_OR_RETURN(Labels l, SeriesLabels(id));
      if (MatchesAll(l, matchers)) out.push_back(SeriesRow{id, std::move(l)});
    }
  } else {
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare("SELECT id, labels FROM series"));
    StmtGuard g{s};
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      auto l = DecodeLabels(ColumnBlob(s, 1));
      if (!l.ok()) return DataLossError("index: series " + std::to_string(sqlite3_column_int64(s, 0)) + ": malformed labels");
      if (MatchesAll(*l, matchers)) out.push_back(SeriesRow{sqlite3_column_int64(s, 0), std::move(l).value()});
    }
    if (rc != SQLITE_DONE) return Error("read series");
  }
  std::sort(out.begin(), out.end(), [](const SeriesRow& a, const SeriesRow& b) { return a.labels < b.labels; });
  return out;
}

Result<std::vector<TsdbIndex::ChunkRow>> TsdbIndex::Chunks(int64_t series, int64_t mint, int64_t maxt) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                          Prepare("SELECT block, mint, maxt, offset, length, samples FROM chunks "
                                  "WHERE series=? AND maxt>=? AND mint<=? ORDER BY mint"));
  StmtGuard g{s};
  sqlite3_bind_int64(s, 1, series);
  sqlite3_bind_int64(s, 2, mint);
  sqlite3_bind_int64(s, 3, maxt);
  std::vector<ChunkRow> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ChunkRow r;
    r.block = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
    r.ref.mint = sqlite3_column_int64(s, 1);
    r.ref.maxt = sqlite3_column_int64(s, 2);
    r.ref.offset = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
    r.ref.length = static_cast<uint32_t>(sqlite3_column_int64(s, 4));
    r.ref.samples = static_cast<uint32_t>(sqlite3_column_int64(s, 5));
    out.push_back(r);
  }
  if (rc != SQLITE_DONE) return Error("read chunks");
  return out;
}

Result<std::vector<std::pair<int64_t, ChunkRef>>> TsdbIndex::BlockChunks(uint64_t block) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                          Prepare("SELECT series, mint, maxt, offset, length, samples FROM chunks "
                                  "WHERE block=? ORDER BY series, mint"));
  StmtGuard g{s};
  sqlite3_bind_int64(s, 1, static_cast<int64_t>(block));
  std::vector<std::pair<int64_t, ChunkRef>> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ChunkRef r;
    r.mint = sqlite3_column_int64(s, 1);
    r.maxt = sqlite3_column_int64(s, 2);
    r.offset = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
    r.length = static_cast<uint32_t>(sqlite3_column_int64(s, 4));
    r.samples = static_cast<uint32_t>(sqlite3_column_int64(s, 5));
    out.emplace_back(sqlite3_column_int64(s, 0), r);
  }
  if (rc != SQLITE_DONE) return Error("read block chunks");
  return out;
}

Status TsdbIndex::PutMetadata(const MetricMetadata& m) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare("INSERT OR REPLACE INTO metadata VALUES(?, ?, ?, ?)"));
  StmtGuard g{s};
  BindText(s, 1, m.family);
  sqlite3_bind_int(s, 2, static_cast<int>(m.type));
  BindText(s, 3, m.help);
  BindText(s, 4, m.unit);
  if (sqlite3_step(s) != SQLITE_DONE) return Error("write metadata");
  return OkStatus();
}

Result<std::vector<MetricMetadata>> TsdbIndex::Metadata(std::string_view family) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                          Prepare("SELECT family, type, help, unit FROM metadata WHERE ?='' OR family=? ORDER BY family"));
  StmtGuard g{s};
  BindText(s, 1, family);
  BindText(s, 2, family);
  std::vector<MetricMetadata> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    int t = sqlite3_column_int(s, 1);
    out.push_back(MetricMetadata{std::string(ColumnText(s, 0)),
                                 t >= 0 && t <= 7 ? static_cast<MetricFamilyType>(t) : MetricFamilyType::kUnknown,
                                 std::string(ColumnText(s, 2)), std::string(ColumnText(s, 3))});
  }
  if (rc != SQLITE_DONE) return Error("read metadata");
  return out;
}

Status TsdbIndex::CopyTo(const std::string& path) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare("VACUUM INTO ?"));
  StmtGuard g{s};
  BindText(s, 1, path);
  if (sqlite3_step(s) != SQLITE_DONE) return Error("copy to '" + path + "'");
  return OkStatus();
}

}  // namespace telkit
