#!/usr/bin/env python3
"""Writes Loki push bodies for tests/e2e/loki-push.sh into DIR.

The protobuf bodies are encoded here by hand from Loki's push.proto field
numbers (not from telkit's .proto), so a mistake in common/proto/loki/push.proto
would show. Snappy: python3-snappy when importable (setup.sh --test installs
it), else a valid literal-only snappy block.

Good bodies (the e2e checks every line back with `log-ingest query`):
  json.json          application/json
  json.gz            application/json, Content-Encoding: gzip
  proto.snappy       application/x-protobuf (snappy block)
Bad bodies:
  bad-labels.json    one stream with an invalid label name, one valid
  huge-line.json     a 300 KiB line next to a valid one
  bad-utf8.snappy    invalid UTF-8 in a label value, the line and metadata
  malformed.json     not JSON
  malformed.snappy   not snappy
  malformed-proto.snappy  snappy of bytes that are not a PushRequest
  bomb.gz            128 MiB of zeros, gzip (~130 KiB)
"""
import gzip
import json
import os
import sys

try:
    import snappy  # python3-snappy

    def snappy_block(data: bytes) -> bytes:
        return snappy.compress(data)
except ImportError:  # a literal-only block is valid snappy
    def snappy_block(data: bytes) -> bytes:
        out = bytearray(varint(len(data)))
        for i in range(0, len(data), 65536):
            chunk = data[i:i + 65536]
            n = len(chunk) - 1
            if n < 60:
                out.append(n << 2)
            elif n < 256:
                out += bytes([60 << 2, n])
            else:
                out += bytes([61 << 2, n & 0xFF, n >> 8])
            out += chunk
        return bytes(out)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num: int, payload: bytes) -> bytes:  # wire type 2 (LEN)
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def vfield(num: int, value: int) -> bytes:  # wire type 0 (VARINT)
    return varint(num << 3) + varint(value)


def push_request(streams) -> bytes:
    """streams: [(labels_text_bytes, [(ts_ns, line_bytes, [(name, value)])])]"""
    out = b""
    for labels, entries in streams:
        s = field(1, labels)
        for ts, line, meta in entries:
            e = field(1, vfield(1, ts // 10**9) + vfield(2, ts % 10**9)) + field(2, line)
            for k, v in meta:
                e += field(3, field(1, k) + field(2, v))
            s += field(2, e)
        out += field(1, s)
    return out


def main() -> None:
    d, base_ns = sys.argv[1], int(sys.argv[2])

    def w(name, data):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    def js(streams):
        return json.dumps({"streams": streams}).encode()

    w("json.json", js([{"stream": {"job": "e2e-json", "env": "test"},
                        "values": [[str(base_ns + 1), "json line one"],
                                   [str(base_ns + 2), "json line two", {"trace_id": "0af7651916cd43dd8448eb211c80319c", "user": "alice"}]]}]))
    w("json.gz", gzip.compress(js([{"stream": {"job": "e2e-gzip"},
                                    "values": [[str(base_ns + i), f"gzip line {i}"] for i in range(1, 101)]}])))
    w("proto.snappy", snappy_block(push_request([
        (b'{job="e2e-proto", host="h\\"1"}', [(base_ns + 5, b"proto line", [(b"span_id", b"b7ad6b7169203331")]),
                                             (base_ns + 6, b"proto line 2", [])]),
    ])))
    w("bad-labels.json", js([{"stream": {"bad-name": "x"}, "values": [[str(base_ns), "dropped"]]},
                             {"stream": {"job": "e2e-badlabels"}, "values": [[str(base_ns), "kept"]]}]))
    w("huge-line.json", js([{"stream": {"job": "e2e-huge"}, "values": [[str(base_ns), "x" * (300 << 10)],
                                                                       [str(base_ns + 1), "small"]]}]))
    w("bad-utf8.snappy", snappy_block(push_request([
        (b'{job="e2e-utf8", v="a\xffb"}', [(base_ns, b"bad \xc3\x28 line", [(b"k", b"\xfe")])]),
    ])))
    w("malformed.json", b'{"streams":[{"stream":{"job":"x"},"values":[["notanumber","x"]]}]}')
    w("malformed.snappy", b"\xff\xff\xff\xff this is not snappy")
    w("malformed-proto.snappy", snappy_block(b"\x0a\xff\xff\xff\xff\x0f"))
    w("bomb.gz", gzip.compress(b"\0" * (128 << 20), 9))


if __name__ == "__main__":
    main()
