// The server side of RFC 6455 WebSocket that Loki's /loki/api/v1/tail needs:
// the handshake's Sec-WebSocket-Accept value and unmasked server frames
// (text, ping, close). Byte layout: docs/format/loki-http-api.md.
//
// Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace telkit::lokiapi {

enum class WsOpcode : uint8_t { kText = 0x1, kBinary = 0x2, kClose = 0x8, kPing = 0x9, kPong = 0xA };

// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), RFC 6455 4.2.2.
std::string WebSocketAccept(std::string_view client_key);

// One final frame (FIN set, no mask, as a server sends): the 2-byte header,
// the 16- or 64-bit extended length when the payload is 126 bytes or more,
// the payload. A close frame carries `code` (big endian) before the payload.
std::string EncodeWsFrame(WsOpcode op, std::string_view payload);
std::string EncodeWsClose(uint16_t code, std::string_view reason);

// SHA-1 (FIPS 180-4) of `data`, 20 raw bytes; and standard base64 with padding.
std::string Sha1(std::string_view data);
std::string Base64(std::string_view data);

}  // namespace telkit::lokiapi
