#include "common/tsdb/index.h"

#include <sqlite3.h>

#include <algorithm>

#include "common/sqlite/sqlite_db.h"
#include "common/tsdb/byte_codec.h"
#include "common/tsdb/wal_records.h"

namespace telkit {
namespace {

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS label_pairs(id INTEGER PRIMARY KEY, name TEXT NOT NULL, value TEXT NOT NULL,
  last_series INTEGER NOT NULL DEFAULT 0, series BLOB NOT NULL DEFAULT x'', UNIQUE(name, value));
CREATE TABLE IF NOT EXISTS series(id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, pairs BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS series_hash ON series(hash);
CREATE TABLE IF NOT EXISTS blocks(id INTEGER PRIMARY KEY, mint INTEGER NOT NULL, maxt INTEGER NOT NULL,
  level INTEGER NOT NULL, series INTEGER NOT NULL, samples INTEGER NOT NULL, chunks INTEGER NOT NULL,
  timestamp_columns INTEGER NOT NULL, bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(block INTEGER NOT NULL, series INTEGER NOT NULL, mint INTEGER NOT NULL,
  maxt INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL,
  PRIMARY KEY(block, series, mint)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metadata(family TEXT PRIMARY KEY, type INTEGER NOT NULL, help TEXT NOT NULL,
  unit TEXT NOT NULL);
)sql";

void PutIds(std::string* out, const std::vector<int64_t>& ids, int64_t last) {
  for (int64_t id : ids) {
    PutUvarint64(out, static_cast<uint64_t>(id - last));
    last = id;
  }
}

bool GetIds(std::string_view blob, std::vector<int64_t>* ids) {
  ByteReader r(blob);
  int64_t last = 0;
  while (!r.empty()) {
    uint64_t d;
    if (!r.Uvarint(&d)) return false;
    last += static_cast<int64_t>(d);
    ids->push_back(last);
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<TsdbIndex>> TsdbIndex::Open(const std::string& path, bool read_only) {
  std::unique_ptr<TsdbIndex> idx(new TsdbIndex());
  TELKIT_ASSIGN_OR_RETURN(idx->db_, SqliteDb::Open(path, read_only, "index"));
  if (!read_only) TELKIT_RETURN_IF_ERROR(idx->db_->InitSchema(kSchema, kIndexSchemaVersion));
  idx->cache_ = read_only;
  TELKIT_RETURN_IF_ERROR(idx->RefreshPairs());
  return idx;
}

TsdbIndex::~TsdbIndex() = default;

Status TsdbIndex::Begin() { return db_->Begin(); }
Status TsdbIndex::BeginRead() { return db_->BeginRead(); }
Status TsdbIndex::Commit() {
  Status s = FlushPostings();
  if (!s.ok()) return s;
  return db_->Commit();
}
Status TsdbIndex::Rollback() {
  pending_postings_.clear();
  Status s = db_->Rollback();
  // Pairs added in the transaction are gone: reload them all.
  pair_ids_.clear();
  pairs_.clear();
  max_pair_ = 0;
  Status r = RefreshPairs();
  return s.ok() ? r : s;
}

Status TsdbIndex::RefreshPairs() {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                          db_->Prepare("SELECT id, name, value FROM label_pairs WHERE id>? ORDER BY id"));
  SqliteStatementScope g(s);
  sqlite3_bind_int64(s, 1, max_pair_);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(s, 0);
    std::pair<std::string, std::string> nv{std::string(SqliteColumnText(s, 1)), std::string(SqliteColumnText(s, 2))};
    pair_ids_[nv] = id;
    pairs_[id] = std::move(nv);
    max_pair_ = std::max(max_pair_, id);
  }
  if (rc != SQLITE_DONE) return db_->Error("read label pairs");
  return OkStatus();
}

Result<bool> TsdbIndex::PairIds(const Labels& labels, bool create, std::string* encoded) {
  encoded->clear();
  PutUvarint64(encoded, labels.size());
  for (const Label& l : labels) {
    std::pair<std::string, std::string> nv{l.name, l.value};
    auto it = pair_ids_.find(nv);
    int64_t id;
    if (it != pair_ids_.end()) {
      id = it->second;
    } else if (!create) {
      return false;
    } else {
      TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("INSERT INTO label_pairs(name, value) VALUES(?, ?)"));
      SqliteStatementScope g(s);
      SqliteBindText(s, 1, l.name);
      SqliteBindText(s, 2, l.value);
      if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("insert label pair");
      id = db_->LastInsertRowid();
      pair_ids_[nv] = id;
      pairs_[id] = nv;
      max_pair_ = std::max(max_pair_, id);
    }
    PutUvarint64(encoded, static_cast<uint64_t>(id));
  }
  return true;
}

Result<Labels> TsdbIndex::DecodePairs(std::string_view encoded) {
  ByteReader r(encoded);
  uint64_t n;
  if (!r.Uvarint(&n) || n > r.remaining()) return DataLossError("index: malformed series pairs");
  std::vector<Label> labels;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t id;
    if (!r.Uvarint(&id)) return DataLossError("index: malformed series pairs");
    auto it = pairs_.find(static_cast<int64_t>(id));
    if (it == pairs_.end()) {
      TELKIT_RETURN_IF_ERROR(RefreshPairs());
      it = pairs_.find(static_cast<int64_t>(id));
      if (it == pairs_.end()) return DataLossError("index: unknown label pair " + std::to_string(id));
    }
    labels.push_back(Label{it->second.first, it->second.second});
  }
  auto l = Labels::FromUnsorted(std::move(labels));
  if (!l.ok()) return DataLossError("index: bad series labels: " + l.status().message());
  return l;
}

Result<std::vector<int64_t>> TsdbIndex::PostingsOf(int64_t pair) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT series FROM label_pairs WHERE id=?"));
  SqliteStatementScope g(s);
  sqlite3_bind_int64(s, 1, pair);
  std::vector<int64_t> ids;
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW && !GetIds(SqliteColumnBlob(s, 0), &ids)) return DataLossError("index: malformed postings");
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_->Error("read postings");
  return ids;
}

Status TsdbIndex::FlushPostings() {
  for (auto& [pair, ids] : pending_postings_) {
    std::string blob;
    int64_t last = 0;
    {
      TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT series, last_series FROM label_pairs WHERE id=?"));
      SqliteStatementScope g(s);
      sqlite3_bind_int64(s, 1, pair);
      if (sqlite3_step(s) != SQLITE_ROW) return db_->Error("read postings");
      blob = std::string(SqliteColumnBlob(s, 0));
      last = sqlite3_column_int64(s, 1);
    }
    std::sort(ids.begin(), ids.end());
    if (!ids.empty() && ids.front() <= last) return InternalError("index: postings out of order");
    PutIds(&blob, ids, last);
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * u,
                            db_->Prepare("UPDATE label_pairs SET series=?, last_series=? WHERE id=?"));
    SqliteStatementScope g(u);
    sqlite3_bind_blob(u, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(u, 2, ids.empty() ? last : ids.back());
    sqlite3_bind_int64(u, 3, pair);
    if (sqlite3_step(u) != SQLITE_DONE) return db_->Error("write postings");
  }
  pending_postings_.clear();
  return OkStatus();
}

Status TsdbIndex::RebuildPostings() {
  std::map<int64_t, std::vector<int64_t>> postings;
  {
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT id, pairs FROM series ORDER BY id"));
    SqliteStatementScope g(s);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      int64_t id = sqlite3_column_int64(s, 0);
      ByteReader r(SqliteColumnBlob(s, 1));
      uint64_t n, pair;
      if (!r.Uvarint(&n)) return DataLossError("index: malformed series pairs");
      for (uint64_t i = 0; i < n; ++i) {
        if (!r.Uvarint(&pair)) return DataLossError("index: malformed series pairs");
        postings[static_cast<int64_t>(pair)].push_back(id);
      }
    }
    if (rc != SQLITE_DONE) return db_->Error("read series");
  }
  TELKIT_RETURN_IF_ERROR(db_->Exec("UPDATE label_pairs SET series=x'', last_series=0"));
  for (auto& [pair, ids] : postings) {
    std::string blob;
    PutIds(&blob, ids, 0);
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * u,
                            db_->Prepare("UPDATE label_pairs SET series=?, last_series=? WHERE id=?"));
    SqliteStatementScope g(u);
    sqlite3_bind_blob(u, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(u, 2, ids.back());
    sqlite3_bind_int64(u, 3, pair);
    if (sqlite3_step(u) != SQLITE_DONE) return db_->Error("write postings");
  }
  return OkStatus();
}

Result<int64_t> TsdbIndex::SeriesId(const Labels& labels) {
  std::string pairs;
  int64_t hash = static_cast<int64_t>(labels.Hash());
  TELKIT_ASSIGN_OR_RETURN(bool known, PairIds(labels, false, &pairs));
  if (known) {
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * find, db_->Prepare("SELECT id, pairs FROM series WHERE hash=?"));
    SqliteStatementScope g(find);
    sqlite3_bind_int64(find, 1, hash);
    int rc;
    while ((rc = sqlite3_step(find)) == SQLITE_ROW) {
      if (SqliteColumnBlob(find, 1) == pairs) return sqlite3_column_int64(find, 0);
    }
    if (rc != SQLITE_DONE) return db_->Error("find series");
  } else {
    TELKIT_ASSIGN_OR_RETURN(known, PairIds(labels, true, &pairs));
  }
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * ins, db_->Prepare("INSERT INTO series(hash, pairs) VALUES(?, ?)"));
  int64_t id;
  {
    SqliteStatementScope g(ins);
    sqlite3_bind_int64(ins, 1, hash);
    sqlite3_bind_blob(ins, 2, pairs.data(), static_cast<int>(pairs.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(ins) != SQLITE_DONE) return db_->Error("insert series");
    id = db_->LastInsertRowid();
  }
  for (const Label& l : labels) pending_postings_[pair_ids_[{l.name, l.value}]].push_back(id);
  return id;
}

Status TsdbIndex::AddBlock(const BlockMeta& m) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("INSERT INTO blocks VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  SqliteStatementScope g(s);
  sqlite3_bind_int64(s, 1, static_cast<int64_t>(m.id));
  sqlite3_bind_int64(s, 2, m.mint);
  sqlite3_bind_int64(s, 3, m.maxt);
  sqlite3_bind_int(s, 4, m.level);
  sqlite3_bind_int64(s, 5, static_cast<int64_t>(m.series));
  sqlite3_bind_int64(s, 6, static_cast<int64_t>(m.samples));
  sqlite3_bind_int64(s, 7, static_cast<int64_t>(m.chunks));
  sqlite3_bind_int64(s, 8, static_cast<int64_t>(m.timestamp_columns));
  sqlite3_bind_int64(s, 9, static_cast<int64_t>(m.bytes));
  if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("insert block");
  return OkStatus();
}

Status TsdbIndex::AddChunk(const BlockMeta& block, int64_t series, const ChunkRef& r) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("INSERT INTO chunks VALUES(?, ?, ?, ?, ?, ?)"));
  SqliteStatementScope g(s);
  sqlite3_bind_int64(s, 1, static_cast<int64_t>(block.id));
  sqlite3_bind_int64(s, 2, series);
  sqlite3_bind_int64(s, 3, static_cast<int64_t>(static_cast<uint64_t>(r.mint) - static_cast<uint64_t>(block.mint)));
  sqlite3_bind_int64(s, 4, static_cast<int64_t>(static_cast<uint64_t>(r.maxt) - static_cast<uint64_t>(r.mint)));
  sqlite3_bind_int64(s, 5, static_cast<int64_t>(r.offset));
  sqlite3_bind_int64(s, 6, r.length);
  if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("insert chunk");
  return OkStatus();
}

Status TsdbIndex::RemoveBlock(uint64_t block) {
  for (const char* sql : {"DELETE FROM chunks WHERE block=?", "DELETE FROM blocks WHERE id=?"}) {
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare(sql));
    SqliteStatementScope g(s);
    sqlite3_bind_int64(s, 1, static_cast<int64_t>(block));
    if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("remove block");
  }
  TELKIT_RETURN_IF_ERROR(FlushPostings());
  TELKIT_RETURN_IF_ERROR(db_->Exec("DELETE FROM series WHERE id NOT IN (SELECT DISTINCT series FROM chunks)"));
  if (db_->Changes() > 0) TELKIT_RETURN_IF_ERROR(RebuildPostings());
  return OkStatus();
}

Result<std::vector<BlockMeta>> TsdbIndex::Blocks() {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT * FROM blocks ORDER BY mint, id"));
  SqliteStatementScope g(s);
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
  if (rc != SQLITE_DONE) return db_->Error("list blocks");
  if (cache_) {
    std::vector<std::pair<uint64_t, uint64_t>> now;
    now.reserve(out.size());
    for (const BlockMeta& m : out) now.emplace_back(m.id, m.bytes);
    if (now != cached_blocks_) {
      labels_cache_.clear();
      std::erase_if(chunks_cache_, [&](const auto& kv) {
        return std::none_of(now.begin(), now.end(), [&](const auto& b) { return b.first == kv.first; });
      });
      cached_blocks_ = std::move(now);
    }
  }
  return out;
}

Result<Labels> TsdbIndex::SeriesLabels(int64_t series) {
  if (cache_) {
    auto it = labels_cache_.find(series);
    if (it != labels_cache_.end()) return it->second;
  }
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT pairs FROM series WHERE id=?"));
  SqliteStatementScope g(s);
  sqlite3_bind_int64(s, 1, series);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return NotFoundError("index: no series " + std::to_string(series));
  if (rc != SQLITE_ROW) return db_->Error("read series");
  TELKIT_ASSIGN_OR_RETURN(Labels l, DecodePairs(SqliteColumnBlob(s, 0)));
  if (cache_) labels_cache_.emplace(series, l);
  return l;
}

Result<std::vector<TsdbIndex::SeriesRow>> TsdbIndex::MatchSeries(std::span<const LabelMatcher> matchers) {
  TELKIT_RETURN_IF_ERROR(RefreshPairs());
  std::vector<int64_t> candidates;
  bool have = false;
  for (const LabelMatcher& m : matchers) {
    if (m.MatchesEmpty()) continue;
    if (m.type() != MatchType::kEqual && m.type() != MatchType::kRegexMatch) continue;
    std::vector<int64_t> ids;
    if (m.type() == MatchType::kEqual) {
      auto it = pair_ids_.find({m.name(), m.value()});
      if (it != pair_ids_.end()) {
        TELKIT_ASSIGN_OR_RETURN(ids, PostingsOf(it->second));
      }
    } else {
      for (auto it = pair_ids_.lower_bound({m.name(), ""}); it != pair_ids_.end() && it->first.first == m.name(); ++it) {
        if (!m.Matches(it->first.second)) continue;
        TELKIT_ASSIGN_OR_RETURN(auto part, PostingsOf(it->second));
        ids.insert(ids.end(), part.begin(), part.end());
      }
      std::sort(ids.begin(), ids.end());
    }
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
    out.reserve(candidates.size());
    for (int64_t id : candidates) {
      if (cache_) {  // match the cached labels, copy only what matches
        auto it = labels_cache_.find(id);
        if (it != labels_cache_.end()) {
          if (MatchesAll(it->second, matchers)) out.push_back(SeriesRow{id, it->second});
          continue;
        }
      }
      TELKIT_ASSIGN_OR_RETURN(Labels l, SeriesLabels(id));
      if (MatchesAll(l, matchers)) out.push_back(SeriesRow{id, std::move(l)});
    }
  } else {
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT id, pairs FROM series"));
    SqliteStatementScope g(s);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      TELKIT_ASSIGN_OR_RETURN(Labels l, DecodePairs(SqliteColumnBlob(s, 1)));
      if (MatchesAll(l, matchers)) out.push_back(SeriesRow{sqlite3_column_int64(s, 0), std::move(l)});
    }
    if (rc != SQLITE_DONE) return db_->Error("read series");
  }
  std::sort(out.begin(), out.end(), [](const SeriesRow& a, const SeriesRow& b) { return a.labels < b.labels; });
  return out;
}

Result<std::vector<BlockMeta>> TsdbIndex::BlocksOverlapping(int64_t mint, int64_t maxt) {
  TELKIT_ASSIGN_OR_RETURN(auto all, Blocks());
  std::erase_if(all, [&](const BlockMeta& m) { return m.maxt <= mint || m.mint > maxt; });
  return all;
}

Result<std::vector<TsdbIndex::ChunkRow>> TsdbIndex::Chunks(int64_t series, int64_t mint, int64_t maxt) {
  TELKIT_ASSIGN_OR_RETURN(auto blocks, BlocksOverlapping(mint, maxt));
  return Chunks(series, blocks, mint, maxt);
}

Result<std::vector<TsdbIndex::ChunkRow>> TsdbIndex::Chunks(int64_t series, const std::vector<BlockMeta>& blocks,
                                                          int64_t mint, int64_t maxt) {
  std::vector<ChunkRow> out;
  if (cache_) {
    for (const BlockMeta& b : blocks) {
      auto it = chunks_cache_.find(b.id);
      if (it == chunks_cache_.end()) {
        std::unordered_map<int64_t, std::vector<ChunkRef>> refs;
        TELKIT_RETURN_IF_ERROR(LoadBlockChunks(b, &refs));
        it = chunks_cache_.emplace(b.id, std::move(refs)).first;
      }
      auto sit = it->second.find(series);
      if (sit == it->second.end()) continue;
      for (const ChunkRef& r : sit->second) {
        if (r.maxt >= mint && r.mint <= maxt) out.push_back(ChunkRow{b.id, r});
      }
    }
    std::sort(out.begin(), out.end(), [](const ChunkRow& a, const ChunkRow& b) { return a.ref.mint < b.ref.mint; });
    return out;
  }
  for (const BlockMeta& b : blocks) {
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT mint, maxt, offset, length FROM chunks "
                                                           "WHERE block=? AND series=? ORDER BY mint"));
    SqliteStatementScope g(s);
    sqlite3_bind_int64(s, 1, static_cast<int64_t>(b.id));
    sqlite3_bind_int64(s, 2, series);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      ChunkRow r;
      r.block = b.id;
      r.ref.mint = static_cast<int64_t>(static_cast<uint64_t>(b.mint) + static_cast<uint64_t>(sqlite3_column_int64(s, 0)));
      r.ref.maxt = static_cast<int64_t>(static_cast<uint64_t>(r.ref.mint) + static_cast<uint64_t>(sqlite3_column_int64(s, 1)));
      r.ref.offset = static_cast<uint64_t>(sqlite3_column_int64(s, 2));
      r.ref.length = static_cast<uint32_t>(sqlite3_column_int64(s, 3));
      if (r.ref.maxt >= mint && r.ref.mint <= maxt) out.push_back(r);
    }
    if (rc != SQLITE_DONE) return db_->Error("read chunks");
  }
  std::sort(out.begin(), out.end(), [](const ChunkRow& a, const ChunkRow& b) { return a.ref.mint < b.ref.mint; });
  return out;
}

Status TsdbIndex::LoadBlockChunks(const BlockMeta& b, std::unordered_map<int64_t, std::vector<ChunkRef>>* out) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT series, mint, maxt, offset, length FROM chunks "
                                                         "WHERE block=? ORDER BY series, mint"));
  SqliteStatementScope g(s);
  sqlite3_bind_int64(s, 1, static_cast<int64_t>(b.id));
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ChunkRef r;
    r.mint = static_cast<int64_t>(static_cast<uint64_t>(b.mint) + static_cast<uint64_t>(sqlite3_column_int64(s, 1)));
    r.maxt = static_cast<int64_t>(static_cast<uint64_t>(r.mint) + static_cast<uint64_t>(sqlite3_column_int64(s, 2)));
    r.offset = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
    r.length = static_cast<uint32_t>(sqlite3_column_int64(s, 4));
    (*out)[sqlite3_column_int64(s, 0)].push_back(r);
  }
  if (rc != SQLITE_DONE) return db_->Error("read block chunks");
  return OkStatus();
}

Result<std::vector<std::pair<int64_t, ChunkRef>>> TsdbIndex::BlockChunks(uint64_t block) {
  int64_t block_mint = 0;
  {
    TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT mint FROM blocks WHERE id=?"));
    SqliteStatementScope g(s);
    sqlite3_bind_int64(s, 1, static_cast<int64_t>(block));
    if (sqlite3_step(s) != SQLITE_ROW) return NotFoundError("index: no block " + std::to_string(block));
    block_mint = sqlite3_column_int64(s, 0);
  }
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("SELECT series, mint, maxt, offset, length FROM chunks "
                                                         "WHERE block=? ORDER BY series, mint"));
  SqliteStatementScope g(s);
  sqlite3_bind_int64(s, 1, static_cast<int64_t>(block));
  std::vector<std::pair<int64_t, ChunkRef>> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ChunkRef r;
    r.mint = static_cast<int64_t>(static_cast<uint64_t>(block_mint) + static_cast<uint64_t>(sqlite3_column_int64(s, 1)));
    r.maxt = static_cast<int64_t>(static_cast<uint64_t>(r.mint) + static_cast<uint64_t>(sqlite3_column_int64(s, 2)));
    r.offset = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
    r.length = static_cast<uint32_t>(sqlite3_column_int64(s, 4));
    out.emplace_back(sqlite3_column_int64(s, 0), r);
  }
  if (rc != SQLITE_DONE) return db_->Error("read block chunks");
  return out;
}

Status TsdbIndex::PutMetadata(const MetricMetadata& m) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("INSERT OR REPLACE INTO metadata VALUES(?, ?, ?, ?)"));
  SqliteStatementScope g(s);
  SqliteBindText(s, 1, m.family);
  sqlite3_bind_int(s, 2, static_cast<int>(m.type));
  SqliteBindText(s, 3, m.help);
  SqliteBindText(s, 4, m.unit);
  if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("write metadata");
  return OkStatus();
}

Result<std::vector<MetricMetadata>> TsdbIndex::Metadata(std::string_view family) {
  TELKIT_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      db_->Prepare("SELECT family, type, help, unit FROM metadata WHERE ?='' OR family=? ORDER BY family"));
  SqliteStatementScope g(s);
  SqliteBindText(s, 1, family);
  SqliteBindText(s, 2, family);
  std::vector<MetricMetadata> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    int t = sqlite3_column_int(s, 1);
    out.push_back(MetricMetadata{std::string(SqliteColumnText(s, 0)),
                                 t >= 0 && t <= 7 ? static_cast<MetricFamilyType>(t) : MetricFamilyType::kUnknown,
                                 std::string(SqliteColumnText(s, 2)), std::string(SqliteColumnText(s, 3))});
  }
  if (rc != SQLITE_DONE) return db_->Error("read metadata");
  return out;
}

Status TsdbIndex::CopyTo(const std::string& path) {
  TELKIT_ASSIGN_OR_RETURN(sqlite3_stmt * s, db_->Prepare("VACUUM INTO ?"));
  SqliteStatementScope g(s);
  SqliteBindText(s, 1, path);
  if (sqlite3_step(s) != SQLITE_DONE) return db_->Error("copy to '" + path + "'");
  return OkStatus();
}

}  // namespace telkit
