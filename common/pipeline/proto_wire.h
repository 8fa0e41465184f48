// The protobuf wire format (https://protobuf.dev/programming-guides/encoding/)
// at the level tel-batch needs it: walking the fields of one message without
// materialising it, and appending fields to a buffer. The processors of
// common/pipeline work on OTLP requests this way, copying the bytes of spans,
// log records and metrics instead of parsing them (DESIGN.md "Where the time
// goes": a full parse costs about ten times a scan).
//
// WireReader checks what it walks: tags, varints, lengths against the
// enclosing message, groups nested properly. It does not look inside
// length-delimited fields; callers that need a nested message open a
// WireReader on WireField::bytes.
// Thread-safety: WireReader is a value used by one thread; the free functions
// are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace telkit {

enum WireType : uint32_t {
  kWireVarint = 0,
  kWireFixed64 = 1,
  kWireLen = 2,
  kWireStartGroup = 3,
  kWireEndGroup = 4,
  kWireFixed32 = 5,
};

struct WireField {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  // kWireVarint: the value; kWireFixed64 / kWireFixed32: the little-endian value.
  uint64_t value = 0;
  // kWireLen: the payload; kWireStartGroup: the group's fields (without the end tag).
  std::string_view bytes;
  // The whole field as encoded: tag through the end of the value.
  std::string_view raw;
};

// Groups nested deeper than this are refused (protobuf's own recursion limit).
inline constexpr int kMaxWireGroupDepth = 100;

class WireReader {
 public:
  explicit WireReader(std::string_view message)
      : begin_(reinterpret_cast<const uint8_t*>(message.data())),
        p_(begin_),
        end_(begin_ + message.size()) {}

  // Reads the next field into *f. Returns false at the end of the message and
  // on malformed input; ok() tells the two apart. Inlined: it is the inner
  // loop of every processor.
  [[gnu::always_inline]] bool Next(WireField* f);

  bool ok() const { return error_ == nullptr; }
  // Why the input is malformed ("truncated varint", ...); nullptr when ok().
  const char* error() const { return error_; }
  // Offset of the next unread byte (of the failing field after an error).
  size_t offset() const { return static_cast<size_t>(p_ - begin_); }

 private:
  [[gnu::always_inline]] bool ReadVarint(uint64_t* v) {
    if (p_ < end_ && *p_ < 0x80) [[likely]] {
      *v = *p_++;
      return true;
    }
    return ReadVarintSlow(v);
  }
  bool ReadVarintSlow(uint64_t* v);  // out of line: multi-byte varints
  bool SkipGroup(uint32_t number, int depth, const uint8_t** group_end);
  bool Fail(const char* why) {
    error_ = why;
    return false;
  }

  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
  const char* error_ = nullptr;
};

inline bool WireReader::Next(WireField* f) {
  if (p_ >= end_ || error_ != nullptr) return false;
  const uint8_t* start = p_;
  uint64_t tag;
  if (!ReadVarint(&tag)) return false;
  if (tag > 0xFFFFFFFFu) return Fail("tag exceeds 32 bits");
  f->number = static_cast<uint32_t>(tag >> 3);
  f->wire_type = static_cast<uint32_t>(tag & 7);
  if (f->number == 0) return Fail("field number 0");
  switch (f->wire_type) {
    case kWireVarint:
      if (!ReadVarint(&f->value)) return false;
      break;
    case kWireFixed64:
      if (end_ - p_ < 8) return Fail("truncated fixed64");
      std::memcpy(&f->value, p_, 8);  // little-endian hosts only (x86-64, arm64)
      p_ += 8;
      break;
    case kWireFixed32: {
      if (end_ - p_ < 4) return Fail("truncated fixed32");
      uint32_t v;
      std::memcpy(&v, p_, 4);
      f->value = v;
      p_ += 4;
      break;
    }
    case kWireLen: {
      uint64_t length;
      if (!ReadVarint(&length)) return false;
      if (length > static_cast<uint64_t>(end_ - p_)) return Fail("length exceeds the enclosing message");
      f->bytes = std::string_view(reinterpret_cast<const char*>(p_), length);
      p_ += length;
      break;
    }
    case kWireStartGroup: {
      const uint8_t* body = p_;
      const uint8_t* group_end = nullptr;
      if (!SkipGroup(f->number, 1, &group_end)) return false;
      f->bytes = std::string_view(reinterpret_cast<const char*>(body), static_cast<size_t>(group_end - body));
      break;
    }
    default:
      return Fail(f->wire_type == kWireEndGroup ? "end-group without a start-group" : "invalid wire type");
  }
  f->raw = std::string_view(reinterpret_cast<const char*>(start), static_cast<size_t>(p_ - start));
  return true;
}

// ---- Writing.

inline size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

inline void AppendVarint(std::string* out, uint64_t v) {
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

inline void AppendTag(std::string* out, uint32_t number, WireType type) {
  AppendVarint(out, (uint64_t{number} << 3) | type);
}

// A length-delimited field: tag, length, bytes.
inline void AppendLenField(std::string* out, uint32_t number, std::string_view bytes) {
  AppendTag(out, number, kWireLen);
  AppendVarint(out, bytes.size());
  out->append(bytes);
}

// Encoded size of a length-delimited field with a payload of `n` bytes
// (field numbers below 16 have one-byte tags).
inline size_t LenFieldSize(uint32_t number, size_t n) {
  return VarintSize(uint64_t{number} << 3) + VarintSize(n) + n;
}

}  // namespace telkit
