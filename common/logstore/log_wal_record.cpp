#include "common/logstore/log_wal_record.h"

#include "common/tsdb/byte_codec.h"

namespace telkit {

void EncodeLogWalRecord(uint64_t seq, std::span<const LogPush> pushes, std::string* out) {
  out->push_back(static_cast<char>(kLogWalPushRecord));
  PutFixed64(out, seq);
  PutUvarint64(out, pushes.size());
  for (const LogPush& p : pushes) {
    PutUvarint64(out, p.stream.size());
    for (const Label& l : p.stream) {
      PutString(out, l.name);
      PutString(out, l.value);
    }
    PutUvarint64(out, p.entries.size());
    for (const LogEntry& e : p.entries) {
      PutVarint64(out, e.ts);
      PutString(out, e.line);
      PutUvarint64(out, e.metadata.size());
      for (const Label& l : e.metadata) {
        PutString(out, l.name);
        PutString(out, l.value);
      }
    }
  }
}

Result<LogWalRecord> DecodeLogWalRecord(std::string_view record) {
  ByteReader r(record);
  uint8_t type;
  LogWalRecord out;
  if (!r.Byte(&type) || type != kLogWalPushRecord) return DataLossError("log wal: unknown record type");
  uint64_t n;
  if (!r.Fixed64(&out.seq) || !r.Uvarint(&n) || n > record.size()) return DataLossError("log wal: bad header");
  auto bad = [] { return DataLossError("log wal: truncated record"); };
  for (uint64_t i = 0; i < n; ++i) {
    LogPush p;
    uint64_t nl;
    if (!r.Uvarint(&nl) || nl > r.remaining()) return bad();
    std::vector<Label> ls;
    for (uint64_t k = 0; k < nl; ++k) {
      std::string_view a, b;
      if (!r.String(&a) || !r.String(&b)) return bad();
      ls.push_back(Label{std::string(a), std::string(b)});
    }
    auto labels = Labels::FromUnsorted(std::move(ls));
    if (!labels.ok()) return DataLossError("log wal: bad stream labels");
    p.stream = std::move(*labels);
    uint64_t ne;
    if (!r.Uvarint(&ne) || ne > r.remaining()) return bad();
    p.entries.reserve(ne);
    for (uint64_t k = 0; k < ne; ++k) {
      LogEntry e;
      std::string_view line;
      uint64_t nm;
      if (!r.Varint(&e.ts) || !r.String(&line) || !r.Uvarint(&nm) || nm > r.remaining()) return bad();
      e.line = std::string(line);
      for (uint64_t m = 0; m < nm; ++m) {
        std::string_view a, b;
        if (!r.String(&a) || !r.String(&b)) return bad();
        e.metadata.push_back(Label{std::string(a), std::string(b)});
      }
      p.entries.push_back(std::move(e));
    }
    out.pushes.push_back(std::move(p));
  }
  if (!r.empty()) return DataLossError("log wal: trailing bytes");
  return out;
}

}  // namespace telkit
