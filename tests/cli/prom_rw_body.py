#!/usr/bin/python3
"""Writes a Prometheus remote-write 1.0 body to stdout (tests/cli/otlp-recv.bats).

  prom_rw_body.py GOOD [BAD] [--raw]

GOOD series {__name__="bats_rw", i="<n>"} with samples 1.5 @ 1000 and
2.5 @ 2000, then BAD series with an invalid metric name ("0bad"), and one
metadata entry; snappy block-compressed unless --raw. The WriteRequest is
encoded by hand (prompb field numbers), so only python3-snappy is needed.
"""
import struct
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire_type, payload):
    key = varint(number << 3 | wire_type)
    if wire_type == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def label(name, value):
    return field(1, 2, name.encode()) + field(2, 2, value.encode())


def sample(value, ts):
    return field(1, 1, struct.pack("<d", value)) + field(2, 0, varint(ts))


def series(name, i):
    return (field(1, 2, label("__name__", name)) + field(1, 2, label("i", str(i))) +
            field(2, 2, sample(1.5, 1000)) + field(2, 2, sample(2.5, 2000)))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    good = int(args[0])
    bad = int(args[1]) if len(args) > 1 else 0
    body = b"".join(field(1, 2, series("bats_rw", i)) for i in range(good))
    body += b"".join(field(1, 2, series("0bad", good + i)) for i in range(bad))
    # MetricMetadata{type=GAUGE(2), metric_family_name, help}
    body += field(3, 2, field(1, 0, varint(2)) + field(2, 2, b"bats_rw") + field(4, 2, b"A test."))
    if "--raw" not in sys.argv:
        import snappy
        body = snappy.compress(body)
    sys.stdout.buffer.write(body)


if __name__ == "__main__":
    main()
