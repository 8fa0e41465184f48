#!/usr/bin/python3
"""Compares two Prometheus HTTP API bodies (tests/compare/promql-vs-prometheus.sh).

  json_compare.py A.json B.json
  json_compare.py --batch DIR LABELS   (DIR/N.prom.json vs N.tq2.json and N.tq3.json)

Prints "equal" (same JSON once instant-vector results are sorted by labels),
"close N" (the same but for N sample values that differ by at most 1e-12
relative: last-digit floating-point differences), or a short diff; exits 0
for equal/close, 1 otherwise.
"""
import json
import math
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        body = json.loads(text)
    except ValueError:
        return {"unparsable": text[:200]}
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, dict) and data.get("resultType") in ("vector", "matrix"):
        data["result"].sort(key=lambda r: json.dumps(r.get("metric"), sort_keys=True))
    return body


def close(a, b, counter, path, diffs):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                diffs.append(f"{path}.{k}: only in {'first' if k in a else 'second'}")
            else:
                close(a[k], b[k], counter, f"{path}.{k}", diffs)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diffs.append(f"{path}: {len(a)} vs {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, counter, f"{path}[{i}]", diffs)
    elif a != b:
        try:
            fa, fb = float(a), float(b)
        except (TypeError, ValueError):
            diffs.append(f"{path}: {json.dumps(a)} vs {json.dumps(b)}")
            return
        if isinstance(a, str) and isinstance(b, str) and math.isclose(fa, fb, rel_tol=1e-12, abs_tol=1e-300):
            counter[0] += 1
        else:
            diffs.append(f"{path}: {json.dumps(a)} vs {json.dumps(b)}")


def compare(pa, pb):
    counter, diffs = [0], []
    close(load(pa), load(pb), counter, "", diffs)
    if diffs:
        return False, "\n".join(diffs[:10]) + (f"\n... {len(diffs) - 10} more" if len(diffs) > 10 else "")
    return True, "equal" if counter[0] == 0 else f"close {counter[0]}"


def batch(directory, labels_path):
    with open(labels_path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t", 1) for line in f if line.strip()]
    failed = False
    for n, label in rows:
        prom = f"{directory}/{n}.prom.json"
        ok, r = compare(prom, f"{directory}/{n}.tq2.json")
        if ok and r == "equal":
            print(f"PASS  --compat 2 = Prometheus 2.42: {label}")
        elif ok:
            print(f"PASS  --compat 2 = Prometheus 2.42 but for last-digit float differences ({r} values): {label}")
        else:
            failed = True
            print(f"FAIL  --compat 2 differs from Prometheus 2.42: {label}")
            print("\n".join("      | " + line for line in r.splitlines()))
        ok3, r3 = compare(prom, f"{directory}/{n}.tq3.json")
        if not ok3:
            print(f"      3.x differs: {label}")
            print("\n".join("      | " + line for line in r3.splitlines()[:4]))
    return 1 if failed else 0


def main():
    if sys.argv[1] == "--batch":
        return batch(sys.argv[2], sys.argv[3])
    ok, r = compare(sys.argv[1], sys.argv[2])
    print(r)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
