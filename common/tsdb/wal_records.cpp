#include "common/tsdb/wal_records.h"

#include <bit>

#include "common/tsdb/byte_codec.h"

namespace telkit {
namespace {

void PutEntry(std::string* out, WalEntryType type, const std::string& body) {
  out->push_back(static_cast<char>(type));
  PutUvarint64(out, body.size());
  out->append(body);
}

bool ReadLabels(ByteReader* r, Labels* labels) {
  uint64_t n;
  if (!r->Uvarint(&n) || n > r->remaining()) return false;
  std::vector<Label> v;
  v.reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view name, value;
    if (!r->String(&name) || !r->String(&value)) return false;
    v.push_back(Label{std::string(name), std::string(value)});
  }
  auto l = Labels::FromUnsorted(std::move(v));
  if (!l.ok()) return false;
  *labels = std::move(l).value();
  return true;
}

}  // namespace

void EncodeLabels(const Labels& labels, std::string* out) {
  PutUvarint64(out, labels.size());
  for (const Label& l : labels) {
    PutString(out, l.name);
    PutString(out, l.value);
  }
}

Result<Labels> DecodeLabels(std::string_view in) {
  ByteReader r(in);
  Labels labels;
  if (!ReadLabels(&r, &labels) || !r.empty()) return DataLossError("malformed label set");
  return labels;
}

void EncodeWalBatch(const WalBatch& batch, std::string* out) {
  std::string body;
  if (!batch.series.empty()) {
    body.clear();
    PutUvarint64(&body, batch.series.size());
    for (const WalSeries& s : batch.series) {
      PutUvarint64(&body, s.ref);
      EncodeLabels(s.labels, &body);
    }
    PutEntry(out, WalEntryType::kSeries, body);
  }
  if (!batch.samples.empty()) {
    body.clear();
    PutUvarint64(&body, batch.samples.size());
    const WalSample& first = batch.samples[0];
    PutUvarint64(&body, first.ref);
    PutVarint64(&body, first.t);
    PutFixed64(&body, first.value_bits);
    for (size_t i = 1; i < batch.samples.size(); ++i) {
      const WalSample& p = batch.samples[i - 1];
      const WalSample& s = batch.samples[i];
      PutVarint64(&body, static_cast<int64_t>(s.ref - p.ref));
      PutVarint64(&body, static_cast<int64_t>(static_cast<uint64_t>(s.t) - static_cast<uint64_t>(p.t)));
      PutFixed64(&body, s.value_bits);
    }
    PutEntry(out, WalEntryType::kSamples, body);
  }
  if (!batch.exemplars.empty()) {
    body.clear();
    PutUvarint64(&body, batch.exemplars.size());
    for (const WalExemplar& e : batch.exemplars) {
      PutUvarint64(&body, e.ref);
      PutVarint64(&body, e.exemplar.t);
      PutFixed64(&body, std::bit_cast<uint64_t>(e.exemplar.value));
      EncodeLabels(e.exemplar.labels, &body);
    }
    PutEntry(out, WalEntryType::kExemplars, body);
  }
  if (!batch.metadata.empty()) {
    body.clear();
    PutUvarint64(&body, batch.metadata.size());
    for (const MetricMetadata& m : batch.metadata) {
      PutString(&body, m.family);
      body.push_back(static_cast<char>(m.type));
      PutString(&body, m.help);
      PutString(&body, m.unit);
    }
    PutEntry(out, WalEntryType::kMetadata, body);
  }
  if (!batch.chunks.empty()) {
    body.clear();
    PutUvarint64(&body, batch.chunks.size());
    for (const WalChunk& c : batch.chunks) {
      PutUvarint64(&body, c.ref);
      PutString(&body, c.chunk);
    }
    PutEntry(out, WalEntryType::kChunks, body);
  }
}

Status DecodeWalBatch(std::string_view record, WalBatch* batch) {
  ByteReader in(record);
  if (in.empty()) return DataLossError("empty wal record");
  while (!in.empty()) {
    uint8_t type;
    std::string_view body_bytes;
    uint64_t length;
    if (!in.Byte(&type) || !in.Uvarint(&length) || length > in.remaining() ||
        !in.Bytes(static_cast<size_t>(length), &body_bytes)) {
      return DataLossError("truncated wal entry");
    }
    ByteReader r(body_bytes);
    uint64_t n;
    // Every item takes at least one byte: a count beyond the body is damage.
    if (!r.Uvarint(&n) || n > r.remaining()) return DataLossError("malformed wal entry count");
    bool ok = true;
    switch (static_cast<WalEntryType>(type)) {
      case WalEntryType::kSeries:
        for (uint64_t i = 0; ok && i < n; ++i) {
          WalSeries s;
          ok = r.Uvarint(&s.ref) && ReadLabels(&r, &s.labels);
          if (ok) batch->series.push_back(std::move(s));
        }
        break;
      case WalEntryType::kSamples: {
        WalSample s;
        for (uint64_t i = 0; ok && i < n; ++i) {
          if (i == 0) {
            ok = r.Uvarint(&s.ref) && r.Varint(&s.t);
          } else {
            int64_t dref, dt;
            ok = r.Varint(&dref) && r.Varint(&dt);
            s.ref += static_cast<uint64_t>(dref);
            s.t = static_cast<int64_t>(static_cast<uint64_t>(s.t) + static_cast<uint64_t>(dt));
          }
          ok = ok && r.Fixed64(&s.value_bits);
          if (ok) batch->samples.push_back(s);
        }
        break;
      }
      case WalEntryType::kExemplars:
        for (uint64_t i = 0; ok && i < n; ++i) {
          WalExemplar e;
          uint64_t bits;
          ok = r.Uvarint(&e.ref) && r.Varint(&e.exemplar.t) && r.Fixed64(&bits) && ReadLabels(&r, &e.exemplar.labels);
          e.exemplar.value = std::bit_cast<double>(bits);
          if (ok) batch->exemplars.push_back(std::move(e));
        }
        break;
      case WalEntryType::kMetadata:
        for (uint64_t i = 0; ok && i < n; ++i) {
          std::string_view family, help, unit;
          uint8_t t;
          ok = r.String(&family) && r.Byte(&t) && r.String(&help) && r.String(&unit);
          if (ok && t > static_cast<uint8_t>(MetricFamilyType::kStateSet)) ok = false;
          if (ok) {
            batch->metadata.push_back(MetricMetadata{std::string(family), static_cast<MetricFamilyType>(t),
                                                     std::string(help), std::string(unit)});
          }
        }
        break;
      case WalEntryType::kChunks:
        for (uint64_t i = 0; ok && i < n; ++i) {
          WalChunk c;
          std::string_view bytes;
          ok = r.Uvarint(&c.ref) && r.String(&bytes);
          c.chunk = std::string(bytes);
          if (ok) batch->chunks.push_back(std::move(c));
        }
        break;
      default:
        return UnimplementedError("unknown wal entry type " + std::to_string(type));
    }
    if (!ok) return DataLossError("malformed wal entry of type " + std::to_string(type));
    if (!r.empty()) return DataLossError("trailing bytes in wal entry of type " + std::to_string(type));
  }
  return OkStatus();
}

}  // namespace telkit
