#include "common/pipeline/proto_wire.h"

namespace telkit {

bool WireReader::ReadVarintSlow(uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (p_ == end_) return Fail("truncated varint");
    const uint64_t b = *p_++;
    if (shift == 63 && b > 1) return Fail("varint exceeds 64 bits");
    result |= (b & 0x7F) << shift;
    if (b < 0x80) {
      *v = result;
      return true;
    }
  }
  return Fail("varint exceeds 64 bits");
}


bool WireReader::SkipGroup(uint32_t number, int depth, const uint8_t** group_end) {
  if (depth > kMaxWireGroupDepth) return Fail("groups nest too deep");
  for (;;) {
    if (p_ >= end_) return Fail("unterminated group");
    const uint8_t* field_start = p_;
    uint64_t tag;
    if (!ReadVarint(&tag)) return false;
    if (tag > 0xFFFFFFFFu) return Fail("tag exceeds 32 bits");
    const auto field_number = static_cast<uint32_t>(tag >> 3);
    if (field_number == 0) return Fail("field number 0");
    switch (tag & 7) {
      case kWireVarint: {
        uint64_t ignored;
        if (!ReadVarint(&ignored)) return false;
        break;
      }
      case kWireFixed64:
        if (end_ - p_ < 8) return Fail("truncated fixed64");
        p_ += 8;
        break;
      case kWireFixed32:
        if (end_ - p_ < 4) return Fail("truncated fixed32");
        p_ += 4;
        break;
      case kWireLen: {
        uint64_t length;
        if (!ReadVarint(&length)) return false;
        if (length > static_cast<uint64_t>(end_ - p_)) return Fail("length exceeds the enclosing message");
        p_ += length;
        break;
      }
      case kWireStartGroup: {
        const uint8_t* inner_end = nullptr;
        if (!SkipGroup(field_number, depth + 1, &inner_end)) return false;
        break;
      }
      case kWireEndGroup:
        if (field_number != number) return Fail("end-group does not match its start-group");
        *group_end = field_start;
        return true;
      default:
        return Fail("invalid wire type");
    }
  }
}

}  // namespace telkit
