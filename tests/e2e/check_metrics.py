#!/usr/bin/env python3
"""Checks what tsdb-write stored against what was sent (tests/e2e/metrics.sh).

  check_metrics.py manifest MANIFEST.json STORED.txt
      every metric stream of an SDK manifest (tests/e2e/client/send.mjs) is
      stored under its Prometheus name (docs/otlp-to-prometheus.md) with its
      final value: sums and gauges, histogram _count/_sum, per series.
  check_metrics.py exact EXPECTED.prom STORED.txt
      the same samples exactly: every (series, timestamp, value) of the
      Prometheus text file (gen.py --text-format prometheus), no more.

STORED.txt is `tsdb-write query '{__name__=~".+"}'` output. Prints one
summary line; exit 1 with the first differences.
"""
import json
import math
import re
import sys

LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse_line(line):
    """'name{a="b"} v t' -> (name, frozenset labels, t, v); None for comments."""
    line = line.strip()
    if not line or line.startswith('#'):
        return None
    brace = line.find('{')
    space = line.find(' ')
    labels = {}
    if brace != -1 and (space == -1 or brace < space):
        name = line[:brace]
        end = line.index('}', brace)
        # values may contain '}' escaped inside quotes: scan properly
        i = brace + 1
        while True:
            m = LABEL.match(line, i)
            if not m:
                break
            labels[m.group(1)] = m.group(2).encode().decode('unicode_escape')
            i = m.end()
        end = line.index('}', i)
        rest = line[end + 1:].split()
    else:
        name = line[:space]
        rest = line[space + 1:].split()
    v = float(rest[0])
    t = int(rest[1]) if len(rest) > 1 else None
    return name, frozenset(labels.items()), t, v


def read_series(path):
    out = {}
    with open(path) as f:
        for line in f:
            p = parse_line(line)
            if p:
                out.setdefault((p[0], p[1]), []).append((p[2], p[3]))
    return out


def same(a, b):
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


# UCUM units as the translator names them (docs/otlp-to-prometheus.md).
UNITS = {'s': 'seconds', 'ms': 'milliseconds', 'us': 'microseconds', 'ns': 'nanoseconds', 'min': 'minutes',
         'h': 'hours', 'd': 'days', 'By': 'bytes', 'KiBy': 'kibibytes', 'MiBy': 'mebibytes', 'GiBy': 'gibibytes',
         'TiBy': 'tibibytes', 'KBy': 'kilobytes', 'MBy': 'megabytes', 'GBy': 'gigabytes', 'TBy': 'terabytes',
         'm': 'meters', 'V': 'volts', 'A': 'amperes', 'J': 'joules', 'W': 'watts', 'g': 'grams',
         'Cel': 'celsius', 'Hz': 'hertz', '%': 'percent'}
PER = {'s': 'second', 'm': 'minute', 'h': 'hour', 'd': 'day', 'w': 'week', 'mo': 'month', 'y': 'year'}


def prom_name(name, unit, monotonic_sum, gauge):
    n = re.sub(r'[^a-zA-Z0-9_:]', '_', name)
    unit = re.sub(r'\{[^}]*\}', '', unit or '')
    if unit == '1' and gauge:
        n += '_ratio'
    elif unit and unit != '1':
        main, _, per = unit.partition('/')
        u = UNITS.get(main, re.sub(r'[^a-zA-Z0-9]', '_', main))
        if per:
            u = (u + '_' if main else '') + 'per_' + PER.get(per, UNITS.get(per, per))
        if not n.endswith('_' + u):
            n += '_' + u
    if monotonic_sum:
        n += '_total'
    return n


def check_manifest(manifest_path, stored_path):
    m = json.load(open(manifest_path))
    stored = read_series(stored_path)
    problems, checked = [], 0
    for st in m['metrics']['streams']:
        kind = st['type']
        gauge = kind == 'gauge' or (kind == 'sum' and not st.get('monotonic'))
        base = prom_name(st['name'], st.get('unit', ''), kind == 'sum' and st.get('monotonic'), gauge)
        for p in st['points']:
            attrs = {re.sub(r'[^a-zA-Z0-9_]', '_', k): json.dumps(v) if isinstance(v, bool) else str(v)
                     for k, v in p['attributes'].items()}
            if kind in ('sum', 'gauge'):
                wants = [(base, p['value'])]
            else:
                wants = [(base + '_count', p['count']), (base + '_sum', p['sum'])]
            for name, want in wants:
                found = None
                for (sname, labels), samples in stored.items():
                    if sname != name:
                        continue
                    d = dict(labels)
                    if not d.get('job', '').endswith(st['service']):
                        continue
                    if all(d.get(k) == v for k, v in attrs.items()):
                        found = samples
                        break
                checked += 1
                if found is None:
                    problems.append(f'{name}{attrs} of {st["service"]}: not stored')
                elif not same(found[-1][1], float(want)):
                    problems.append(f'{name}{attrs}: last value {found[-1][1]}, sent {want}')
    print(f'{checked} metric values checked against the manifest, {len(problems)} differ')
    for p in problems[:20]:
        print('  ' + p)
    return 1 if problems or checked == 0 else 0


def check_exact(expected_path, stored_path):
    want = read_series(expected_path)
    got = read_series(stored_path)
    problems = []
    nsamples = 0
    for key, samples in want.items():
        samples = sorted(samples)
        nsamples += len(samples)
        g = got.get(key)
        if g is None:
            problems.append(f'missing series {key[0]}{dict(key[1])}')
            continue
        if len(g) != len(samples) or any(a[0] != b[0] or not same(a[1], b[1]) for a, b in zip(g, samples)):
            problems.append(f'{key[0]}{dict(key[1])}: {len(g)} samples stored, {len(samples)} sent, or values differ')
    extra = [k for k in got if k not in want]
    for k in extra[:5]:
        problems.append(f'unexpected series {k[0]}{dict(k[1])}')
    print(f'{len(want)} series, {nsamples} samples expected; {len(got)} series, '
          f'{sum(len(v) for v in got.values())} samples stored; {len(problems)} problems')
    for p in problems[:20]:
        print('  ' + p)
    return 1 if problems else 0


if __name__ == '__main__':
    mode = sys.argv[1]
    sys.exit(check_manifest(sys.argv[2], sys.argv[3]) if mode == 'manifest' else check_exact(sys.argv[2], sys.argv[3]))
