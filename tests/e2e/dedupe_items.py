#!/usr/bin/env python3
"""Removes duplicate telemetry from tel-cat JSON lines, the way the stores do.

Usage: dedupe_items.py IN.jsonl OUT.jsonl

Resent frames arrive more than once: after a reconnect or a restart of
tel-batch with its spool, a frame keeps its writer id and sequence number
(dropped as a duplicate frame); a frame that otlp-recv resent to a restarted
tel-batch is processed again and comes out in a new frame (its items are
dropped one by one). An item is a duplicate when one seen before is
identical: a span with the same trace id and span id; a log record or a
metric data point with the same resource, scope (and metric name) and the
same content, timestamps included. Prints what it removed.
"""
import json
import sys


def canon(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def main():
    src, dst = sys.argv[1], sys.argv[2]
    seen_frames, seen_items = set(), set()
    writer = None
    dup_frames = dup_items = frames = 0
    out = []
    with open(src) as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            if "stream" in rec:
                writer = rec["stream"].get("writerId")
                out.append(rec)
                continue
            frames += 1
            key = (writer, rec.get("seq"))
            if key in seen_frames:
                dup_frames += 1
                continue
            seen_frames.add(key)
            p = rec.get("payload")
            if isinstance(p, dict):
                dup_items += dedupe_payload(p, seen_items)
            out.append(rec)
    with open(dst, "w") as f:
        for rec in out:
            f.write(json.dumps(rec) + "\n")
    print(f"{frames} frames read; removed {dup_frames} duplicate frames (same writer id and sequence) "
          f"and {dup_items} duplicate items")


def keep(items, key_of, seen):
    kept, dropped = [], 0
    for it in items:
        k = key_of(it)
        if k in seen:
            dropped += 1
        else:
            seen.add(k)
            kept.append(it)
    items[:] = kept
    return dropped


def dedupe_payload(p, seen):
    dropped = 0
    for rs in p.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            dropped += keep(ss.get("spans", []), lambda s: ("span", s.get("traceId"), s.get("spanId")), seen)
    for rl in p.get("resourceLogs", []):
        res = canon(rl.get("resource", {}))
        for sl in rl.get("scopeLogs", []):
            scope = canon(sl.get("scope", {}))
            dropped += keep(sl.get("logRecords", []), lambda r: ("log", res, scope, canon(r)), seen)
    for rm in p.get("resourceMetrics", []):
        res = canon(rm.get("resource", {}))
        for sm in rm.get("scopeMetrics", []):
            scope = canon(sm.get("scope", {}))
            for m in sm.get("metrics", []):
                for kind, body in m.items():
                    if isinstance(body, dict) and isinstance(body.get("dataPoints"), list):
                        dropped += keep(body["dataPoints"],
                                        lambda d: ("point", res, scope, m.get("name"), kind, canon(d)), seen)
    return dropped


if __name__ == "__main__":
    main()
