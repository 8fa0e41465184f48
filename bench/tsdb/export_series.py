#!/usr/bin/env python3
"""Dumps the series of the metrics-ingest workload for chunk_bench.

Builds the same series as ../shared/bench/metrics-ingest/gen.py (it imports
that file, so the data is identical for the same parameters) and writes them
in a flat binary file instead of remote-write requests:

    /usr/bin/python3 bench/tsdb/export_series.py --out /tmp/series.bin \
        [--gen ../shared/bench/metrics-ingest/gen.py] [--hosts 50] [--seed 1] [--start 1700000000]

File layout (little-endian):
    "TKSERIES" u32 version=1 u32 series_count
    per series: u8 kind, u16 name_length, name (metric{labels}), u32 n,
                n x i64 timestamp (ms), n x f64 value (raw IEEE-754 bits)
kind: 0 counter, 1 gauge, 2 histogram, 3 summary, 4 unknown (OpenMetrics types).
gen.py needs the `snappy` module only to write requests; a stub stands in
for it here, so only google.protobuf-free code paths are used.
"""
import argparse
import importlib.util
import os
import struct
import sys
import types

KINDS = {"counter": 0, "gauge": 1, "histogram": 2, "summary": 3, "unknown": 4}


def load_gen(path):
    if "snappy" not in sys.modules:  # gen.py imports it at the top; not used here
        sys.modules["snappy"] = types.ModuleType("snappy")
    spec = importlib.util.spec_from_file_location("telkit_gen", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--gen", default=os.path.join(here, "../../../shared/bench/metrics-ingest/gen.py"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--cpus", type=int, default=4)
    ap.add_argument("--duration", type=int, default=7200)
    ap.add_argument("--interval-ms", type=int, default=15000)
    ap.add_argument("--jitter-ms", type=int, default=5)
    ap.add_argument("--reboot-prob", type=float, default=0.06)
    ap.add_argument("--start", type=int, default=1700000000, help="unix seconds (fixed, so the dump is reproducible)")
    args = ap.parse_args()

    gen = load_gen(args.gen)
    K = args.duration * 1000 // args.interval_ms
    start_ms = args.start * 1000 // gen.TWO_H_MS * gen.TWO_H_MS
    roles = ("web", "api", "db", "cache", "worker", "lb", "kafka", "search")
    hosts = [gen.Host(i, f"{roles[i % len(roles)]}-{i // len(roles) + 1:02d}.dc{1 + i % 3}", args, start_ms, K)
             for i in range(args.hosts)]
    fams, fam_order = {}, []
    for h in hosts:
        gen.build_host(h, args, fams, fam_order)
    n = 0
    with open(args.out, "wb") as f:
        count = sum(len(m) for fn in fam_order for m in fams[fn].metrics)
        f.write(b"TKSERIES" + struct.pack("<II", 1, count))
        for fn in fam_order:
            fam = fams[fn]
            for metric in fam.metrics:
                for s in metric:
                    lab = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                    name = f"{s.name}{{{lab}}}".encode()
                    ts = s.host.ts[s.job]
                    f.write(struct.pack("<BH", KINDS[fam.type], len(name)) + name + struct.pack("<I", len(ts)))
                    f.write(ts.tobytes())
                    f.write(s.values.tobytes())
                    n += 1
    print(f"export_series: {n} series x {K} samples -> {args.out}")


if __name__ == "__main__":
    main()
