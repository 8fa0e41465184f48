#!/usr/bin/env node
// check.mjs - compare what telkit stored (as printed by `tel-cat` in JSON-lines
// form) with the manifest of what a test client sent.
//
//   node check.mjs --manifest m.json --stream-json out.jsonl [options]
//
// Reads manifests of tests/e2e/client/send.mjs and of the shared otel-js
// client (same field names): traces.spans[], traces.traceIds, metrics.streams[]
// (.points[]), metrics.collections, metrics.temporality, logs.records[],
// services[].name. Prints one line per check and "N passed, N failed".
// Exit status: 0 all checks passed, 1 a check failed, 2 bad usage / unreadable input.

import fs from 'node:fs';

const USAGE = `Usage: node check.mjs --manifest FILE --stream-json FILE [options]
  --manifest FILE      manifest written by send.mjs (ours or the shared otel-js one)
  --stream-json FILE   tel-cat JSON lines ('-' = stdin)
  --filter-services    ignore received items of services the manifest does not name
                       (when several runs share one stream)
  --lenient-json       do not check the OTLP/JSON form (hex ids, int64 as strings,
                       integer enums, lowerCamelCase keys)
  --max-details N      detail lines per failed check (default 10)
  --help`;

// ------------------------------------------------------------- arguments
function usage(msg) { process.stderr.write(`check.mjs: ${msg}\n${USAGE}\n`); process.exit(2); }
const opt = { 'max-details': '10' };
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(argv[i]);
    if (!m) usage(`unexpected argument '${argv[i]}'`);
    const [, k, inline] = m;
    if (k === 'help') { process.stdout.write(`${USAGE}\n`); process.exit(0); }
    if (['filter-services', 'lenient-json'].includes(k)) { opt[k] = true; continue; }
    if (!['manifest', 'stream-json', 'max-details'].includes(k)) usage(`unknown option --${k}`);
    const v = inline ?? argv[++i];
    if (v === undefined) usage(`--${k} needs a value`);
    opt[k] = v;
  }
}
if (!opt.manifest || !opt['stream-json']) usage('--manifest and --stream-json are required');
const maxDetails = Number(opt['max-details']);
if (!Number.isInteger(maxDetails) || maxDetails < 0) usage('--max-details must be an integer >= 0');

function readText(file) {
  try { return fs.readFileSync(file === '-' ? 0 : file, 'utf8'); } catch (e) { process.stderr.write(`check.mjs: cannot read ${file}: ${e.message}\n`); process.exit(2); }
}
let manifest;
try { manifest = JSON.parse(readText(opt.manifest)); } catch (e) { process.stderr.write(`check.mjs: ${opt.manifest}: not JSON: ${e.message}\n`); process.exit(2); }

// --------------------------------------------------------------- output
let passed = 0;
let failed = 0;
function check(title, details) {
  const ok = details.length === 0;
  if (ok) passed++; else failed++;
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${title}${ok ? '' : ` - ${details.length} problem(s)`}\n`);
  for (const d of details.slice(0, maxDetails)) process.stdout.write(`       ${d}\n`);
  if (details.length > maxDetails) process.stdout.write(`       ... and ${details.length - maxDetails} more\n`);
}

// ------------------------------------------------------------- helpers
function canon(v) {
  if (Array.isArray(v)) return v.map(canon);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon(v[k])]));
  return v;
}
const cj = (v) => JSON.stringify(canon(v));
const same = (a, b) => cj(a) === cj(b);
// where two plain values first differ, e.g. '.ms: 1600 != 1500'
function firstDiff(got, want, at = '') {
  if (same(got, want)) return null;
  const isObj = (x) => x && typeof x === 'object';
  if (Array.isArray(got) && Array.isArray(want) && got.length === want.length) {
    for (let i = 0; i < got.length; i++) { const d = firstDiff(got[i], want[i], `${at}[${i}]`); if (d) return d; }
  } else if (isObj(got) && isObj(want) && !Array.isArray(got) && !Array.isArray(want)) {
    for (const k of [...new Set([...Object.keys(want), ...Object.keys(got)])].sort()) {
      if (!(k in got)) return `${at}.${k} missing (want ${short(want[k], 40)})`;
      if (!(k in want)) return `${at}.${k} unexpected (${short(got[k], 40)})`;
      const d = firstDiff(got[k], want[k], `${at}.${k}`);
      if (d) return d;
    }
  }
  return `${at || 'value'} ${short(got, 60)} != ${short(want, 60)}`;
}
const short = (v, n = 80) => { const s = typeof v === 'string' ? JSON.stringify(v) : cj(v); return s.length > n ? `${s.slice(0, n)}...` : s; };
function num(v) {
  if (v === undefined || v === null) return v;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    if (/^-?\d+$/.test(v)) return Number.isSafeInteger(Number(v)) ? Number(v) : v;
    return Number(v); // "1.5", "NaN", "Infinity"
  }
  return NaN;
}
function sameNum(a, b) {
  if (a === b) return true;
  if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b)) return false;
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}
const KINDS = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];
const STATUSES = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];
const TEMPORALITIES = ['AGGREGATION_TEMPORALITY_UNSPECIFIED', 'AGGREGATION_TEMPORALITY_DELTA', 'AGGREGATION_TEMPORALITY_CUMULATIVE'];
// enum as sent (integer); names accepted too (full or short, e.g. SERVER) - manifests use short names
function enumOf(v, names) {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  if (/^\d+$/.test(String(v))) return Number(v);
  const i = names.findIndex((n) => n === v || n.endsWith(`_${v}`));
  return i >= 0 ? i : NaN;
}
const enumName = (v, names) => (Number.isInteger(v) && names[v] ? names[v].replace(/^(SPAN_KIND|STATUS_CODE|AGGREGATION_TEMPORALITY)_/, '') : String(v));

// AnyValue -> plain JS (bytes as {$bytes: base64}, as in the manifests)
function anyValue(v) {
  if (v === undefined || v === null) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return num(v.intValue);
  if ('doubleValue' in v) return num(v.doubleValue);
  if ('arrayValue' in v) return (v.arrayValue?.values ?? []).map(anyValue);
  if ('kvlistValue' in v) return attrsOf(v.kvlistValue?.values);
  if ('bytesValue' in v) return { $bytes: v.bytesValue };
  return null; // empty AnyValue
}
function attrsOf(list) {
  const o = {};
  for (const kv of list ?? []) o[kv.key ?? ''] = anyValue(kv.value);
  return o;
}
const serviceOf = (resource) => { const n = attrsOf(resource?.attributes)['service.name']; return typeof n === 'string' ? n : ''; };
// ids compared case-insensitively (the form check above reports upper case)
const id = (v) => (typeof v === 'string' ? v.toLowerCase() : '');
const nanos = (v) => (v === undefined || v === null ? '0' : String(v));

// ------------------------------------------------------- read the stream
const lines = readText(opt['stream-json']).split('\n');
const badLines = [];
const frames = [];
let headers = 0;
let otherFrames = 0;
lines.forEach((line, idx) => {
  if (!line.trim()) return;
  let o;
  try { o = JSON.parse(line); } catch (e) { badLines.push(`line ${idx + 1}: not JSON (${e.message})`); return; }
  if (o && typeof o === 'object' && !Array.isArray(o) && 'stream' in o && !('payload' in o)) { headers++; return; }
  if (!o || typeof o !== 'object' || typeof o.signal !== 'string') {
    badLines.push(`line ${idx + 1}: neither a stream header nor a frame: ${short(o)}`);
    return;
  }
  if (!['traces', 'metrics', 'logs'].includes(o.signal)) { otherFrames++; return; } // e.g. prom-rw: not ours to check
  if (!o.payload || typeof o.payload !== 'object') {
    // tel-cat prints "payloadBase64" (+ "payloadError") for a payload it could not decode
    badLines.push(`line ${idx + 1}: ${o.signal} frame seq ${o.seq} without a decoded payload${o.payloadError ? `: ${o.payloadError}` : ''}`);
    return;
  }
  frames.push({ line: idx + 1, signal: o.signal, payload: o.payload });
});
const perSignal = { traces: 0, metrics: 0, logs: 0 };
for (const f of frames) perSignal[f.signal]++;
check(`stream: ${frames.length} frame(s) (traces ${perSignal.traces}, metrics ${perSignal.metrics}, logs ${perSignal.logs}), `
  + `${headers} stream header(s)${otherFrames ? `, ${otherFrames} frame(s) of other signals ignored` : ''}, every line readable and decoded`, badLines);

// -------------------------------------------- OTLP/JSON form of the payloads
if (!opt['lenient-json']) {
  const problems = [];
  const INT64 = new Set(['timeUnixNano', 'startTimeUnixNano', 'endTimeUnixNano', 'observedTimeUnixNano', 'asInt', 'intValue', 'count', 'zeroCount']);
  const DOUBLE = new Set(['asDouble', 'doubleValue', 'sum', 'min', 'max', 'quantile', 'zeroThreshold']);
  const ENUMS = new Set(['kind', 'code', 'severityNumber', 'aggregationTemporality']);
  const IDS = { traceId: 32, spanId: 16, parentSpanId: 16 };
  const isInt64 = (v) => typeof v === 'string' && /^-?\d+$/.test(v);
  const isDouble = (v) => (typeof v === 'number' && Number.isFinite(v)) || v === 'NaN' || v === 'Infinity' || v === '-Infinity';
  const walk = (v, where, line) => {
    if (Array.isArray(v)) { v.forEach((x, i) => walk(x, `${where}[${i}]`, line)); return; }
    if (!v || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      const at = `line ${line} ${where}.${k}`;
      if (!/^[a-z][A-Za-z0-9]*$/.test(k)) problems.push(`${at}: key is not lowerCamelCase`);
      if (k in IDS && !(typeof x === 'string' && (x === '' || new RegExp(`^[0-9a-f]{${IDS[k]}}$`).test(x)))) problems.push(`${at}: ${short(x)} is not ${IDS[k]} lowercase hex digits`);
      else if (INT64.has(k) && !isInt64(x)) problems.push(`${at}: 64-bit integer ${short(x)} is not a decimal string`);
      else if (k === 'bucketCounts' && !(Array.isArray(x) && x.every(isInt64))) problems.push(`${at}: bucket counts ${short(x)} are not decimal strings`);
      else if (DOUBLE.has(k) && !(x && typeof x === 'object') && !isDouble(x)) problems.push(`${at}: ${short(x)} is not a JSON number`);
      else if (k === 'explicitBounds' && !(Array.isArray(x) && x.every(isDouble))) problems.push(`${at}: ${short(x)} are not JSON numbers`);
      else if (ENUMS.has(k) && !Number.isInteger(x)) problems.push(`${at}: enum ${short(x)} is not an integer`);
      walk(x, `${where}.${k}`, line);
    }
  };
  for (const f of frames) walk(f.payload, 'payload', f.line);
  check('stream: payloads use the OTLP/JSON mapping (hex ids, int64 as decimal strings, integer enums, lowerCamelCase keys)', problems);
}

// ------------------------------------------------------ flatten the items
const got = { spans: [], points: [], logs: [] };
for (const f of frames) {
  const p = f.payload;
  if (f.signal === 'traces') {
    for (const rs of p.resourceSpans ?? []) {
      const service = serviceOf(rs.resource);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          got.spans.push({
            service, scope: ss.scope?.name ?? '', traceId: id(s.traceId), spanId: id(s.spanId), parentSpanId: id(s.parentSpanId),
            traceState: s.traceState ?? '', name: s.name ?? '', kind: enumOf(s.kind, KINDS), statusCode: enumOf(s.status?.code, STATUSES),
            statusMessage: s.status?.message ?? '', startTimeUnixNano: nanos(s.startTimeUnixNano), endTimeUnixNano: nanos(s.endTimeUnixNano),
            attributes: attrsOf(s.attributes),
            events: (s.events ?? []).map((e) => ({ name: e.name ?? '', timeUnixNano: nanos(e.timeUnixNano), attributes: attrsOf(e.attributes) })),
            links: (s.links ?? []).map((l) => ({ traceId: id(l.traceId), spanId: id(l.spanId), attributes: attrsOf(l.attributes) })),
            line: f.line,
          });
        }
      }
    }
  } else if (f.signal === 'metrics') {
    for (const rm of p.resourceMetrics ?? []) {
      const service = serviceOf(rm.resource);
      for (const sm of rm.scopeMetrics ?? []) {
        for (const m of sm.metrics ?? []) {
          const typeKey = ['sum', 'gauge', 'histogram', 'exponentialHistogram', 'summary'].find((k) => m[k]);
          const data = typeKey ? m[typeKey] : {};
          const type = { sum: 'sum', gauge: 'gauge', histogram: 'histogram', exponentialHistogram: 'exponential_histogram', summary: 'summary' }[typeKey] ?? 'none';
          for (const dp of data.dataPoints ?? []) {
            const pt = {
              service, scope: sm.scope?.name ?? '', name: m.name ?? '', unit: m.unit ?? '', type, attributes: attrsOf(dp.attributes),
              monotonic: !!data.isMonotonic, temporality: enumOf(data.aggregationTemporality, TEMPORALITIES),
              timeUnixNano: BigInt(/^\d+$/.test(String(dp.timeUnixNano ?? '0')) ? String(dp.timeUnixNano ?? '0') : '0'), line: f.line,
            };
            if (type === 'sum' || type === 'gauge') {
              if (dp.asInt !== undefined) { pt.valueType = 'int'; pt.value = num(dp.asInt); } else if (dp.asDouble !== undefined) { pt.valueType = 'double'; pt.value = num(dp.asDouble); } else { pt.valueType = 'none'; pt.value = undefined; }
            } else {
              pt.count = num(dp.count ?? '0'); pt.sum = num(dp.sum); pt.min = num(dp.min); pt.max = num(dp.max);
              pt.bucketCounts = (dp.bucketCounts ?? []).map(num); pt.explicitBounds = (dp.explicitBounds ?? []).map(num);
              pt.zeroCount = num(dp.zeroCount ?? '0');
              const bsum = (b) => (b?.bucketCounts ?? []).reduce((n, c) => n + num(c), 0);
              pt.expBucketTotal = pt.zeroCount + bsum(dp.positive) + bsum(dp.negative);
            }
            got.points.push(pt);
          }
        }
      }
    }
  } else {
    for (const rl of p.resourceLogs ?? []) {
      const service = serviceOf(rl.resource);
      for (const sl of rl.scopeLogs ?? []) {
        for (const r of sl.logRecords ?? []) {
          got.logs.push({
            service, scope: sl.scope?.name ?? '', timeUnixNano: nanos(r.timeUnixNano), observedTimeUnixNano: nanos(r.observedTimeUnixNano),
            severityNumber: num(r.severityNumber ?? 0), severityText: r.severityText ?? '', eventName: r.eventName ?? '',
            body: r.body === undefined ? null : anyValue(r.body), attributes: attrsOf(r.attributes),
            traceId: id(r.traceId), spanId: id(r.spanId), line: f.line,
          });
        }
      }
    }
  }
}

const mSpans = manifest.traces?.spans ?? [];
const mStreams = manifest.metrics?.streams ?? [];
const mLogs = manifest.logs?.records ?? [];
const manifestServices = new Set([...(manifest.services ?? []).map((s) => s.name), ...mSpans.map((s) => s.service),
  ...mStreams.map((s) => s.service), ...mLogs.map((l) => l.service)]);
if (opt['filter-services']) {
  for (const k of Object.keys(got)) {
    const before = got[k].length;
    got[k] = got[k].filter((x) => manifestServices.has(x.service));
    if (before !== got[k].length) process.stdout.write(`info ignoring ${before - got[k].length} received ${k} of other services (--filter-services)\n`);
  }
}

// ------------------------------------------------------------------ traces
{
  const byId = new Map();
  const twice = [];
  for (const s of got.spans) {
    const k = `${s.traceId}/${s.spanId}`;
    if (byId.has(k)) twice.push(`span ${k} '${s.name}' received again (lines ${byId.get(k).line} and ${s.line})`); else byId.set(k, s);
  }
  const expected = new Set(mSpans.map((m) => `${m.traceId}/${m.spanId}`));
  const pairs = [];
  const missing = [];
  for (const m of mSpans) {
    const g = byId.get(`${m.traceId}/${m.spanId}`);
    if (g) pairs.push([m, g]); else missing.push(`missing span ${m.traceId}/${m.spanId} '${m.name}' of ${m.service}`);
  }
  check(`spans: all ${mSpans.length} manifest span(s) received (by trace id + span id)`, missing);
  check('spans: no span received more than once', twice);
  check(`spans: no unexpected span (${got.spans.length} received)`,
    [...byId.values()].filter((s) => !expected.has(`${s.traceId}/${s.spanId}`)).map((s) => `unexpected span ${s.traceId}/${s.spanId} '${s.name}' of ${s.service} (line ${s.line})`));
  const wantTraces = new Set(manifest.traces?.traceIds ?? mSpans.map((m) => m.traceId));
  const gotTraces = new Set(got.spans.map((s) => s.traceId));
  check(`spans: trace ids are exactly the manifest's ${wantTraces.size}`, [
    ...[...wantTraces].filter((t) => !gotTraces.has(t)).map((t) => `trace ${t} not received`),
    ...[...gotTraces].filter((t) => !wantTraces.has(t)).map((t) => `unexpected trace ${t}`),
  ]);
  const field = (title, fn) => {
    const d = [];
    for (const [m, g] of pairs) { const why = fn(m, g); if (why) d.push(`${m.traceId}/${m.spanId} '${m.name}': ${why}`); }
    check(`spans: ${title} (${pairs.length} compared)`, d);
  };
  field('parent span ids', (m, g) => ((m.parentSpanId ?? '') !== g.parentSpanId ? `parent ${short(g.parentSpanId)} != ${short(m.parentSpanId ?? '')}` : ''));
  field('names', (m, g) => (m.name !== g.name ? `name ${short(g.name)} != ${short(m.name)}` : ''));
  field('kinds', (m, g) => (enumOf(m.kind, KINDS) !== g.kind ? `kind ${enumName(g.kind, KINDS)} != ${m.kind}` : ''));
  field('status codes and messages', (m, g) => {
    if (enumOf(m.statusCode ?? 0, STATUSES) !== g.statusCode) return `status ${enumName(g.statusCode, STATUSES)} != ${m.statusCode}`;
    if (m.statusMessage !== undefined && m.statusMessage !== g.statusMessage) return `status message ${short(g.statusMessage)} != ${short(m.statusMessage)}`;
    return '';
  });
  field('services and scopes', (m, g) => {
    if (m.service !== undefined && m.service !== g.service) return `service ${short(g.service)} != ${short(m.service)}`;
    if (m.scope !== undefined && m.scope !== g.scope) return `scope ${short(g.scope)} != ${short(m.scope)}`;
    return '';
  });
  if (mSpans.some((m) => m.startTimeUnixNano !== undefined)) {
    field('start and end times, trace state', (m, g) => {
      if (m.startTimeUnixNano !== undefined && m.startTimeUnixNano !== g.startTimeUnixNano) return `start ${g.startTimeUnixNano} != ${m.startTimeUnixNano}`;
      if (m.endTimeUnixNano != null && m.endTimeUnixNano !== g.endTimeUnixNano) return `end ${g.endTimeUnixNano} != ${m.endTimeUnixNano}`;
      if (m.traceState !== undefined && m.traceState !== g.traceState) return `trace state ${short(g.traceState)} != ${short(m.traceState)}`;
      return '';
    });
  }
  if (mSpans.some((m) => m.attributes !== undefined)) {
    field('attributes, events and links', (m, g) => {
      if (m.attributes !== undefined && !same(m.attributes, g.attributes)) {
        const keys = [...new Set([...Object.keys(m.attributes), ...Object.keys(g.attributes)])].filter((k) => !same(m.attributes[k], g.attributes[k]));
        return `attributes differ: ${keys.map((k) => `${k}=${short(g.attributes[k], 40)} (want ${short(m.attributes[k], 40)})`).join(', ')}`;
      }
      const pick = (x, like) => Object.fromEntries(Object.keys(like).map((k) => [k, x[k]]));
      if (m.events !== undefined && !(m.events.length === g.events.length
        && m.events.every((e, i) => same({ attributes: {}, ...e }, pick(g.events[i], { attributes: {}, ...e }))))) {
        return `events differ: got ${short(g.events.map((e) => e.name))}, want ${short(m.events.map((e) => e.name))}`;
      }
      if (m.links !== undefined && !(m.links.length === g.links.length
        && m.links.every((l, i) => same({ attributes: {}, ...l }, pick(g.links[i], { attributes: {}, ...l }))))) {
        return `links differ: got ${short(g.links.map((l) => l.spanId))}, want ${short(m.links.map((l) => l.spanId))}`;
      }
      return '';
    });
  }
}

// ----------------------------------------------------------------- metrics
{
  const key = (service, name, attributes) => `${service}|${name}|${cj(attributes ?? {})}`;
  const bySeries = new Map();
  for (const p of got.points) {
    const k = key(p.service, p.name, p.attributes);
    if (!bySeries.has(k)) bySeries.set(k, []);
    bySeries.get(k).push(p);
  }
  // final point: latest timeUnixNano, then latest in the stream
  const finalOf = (list) => list.reduce((a, b) => (b.timeUnixNano >= a.timeUnixNano ? b : a));
  const expected = [];
  for (const st of mStreams) for (const mp of st.points ?? []) expected.push([st, mp, key(st.service, st.name, mp.attributes)]);
  const names = new Set(mStreams.map((s) => s.name));
  const present = [];
  const missing = [];
  for (const [st, mp, k] of expected) {
    if (bySeries.has(k)) present.push([st, mp, finalOf(bySeries.get(k)), bySeries.get(k).length]);
    else missing.push(`missing series ${st.name} ${short(mp.attributes ?? {})} of ${st.service}`);
  }
  check(`metrics: all ${expected.length} series of ${mStreams.length} metric(s) received (by service + name + attributes)`, missing);
  const values = [];
  const shapes = [];
  const cumulative = manifest.metrics?.temporality === 'cumulative';
  for (const [st, mp, g] of present) {
    const id = `${st.name} ${short(mp.attributes ?? {}, 60)}`;
    const diff = (what, a, b) => values.push(`${id}: ${what} ${short(a)} != ${short(b)} (line ${g.line})`);
    if (g.type !== st.type) { shapes.push(`${id}: type ${g.type} != ${st.type}`); continue; }
    if (st.unit !== undefined && g.unit !== st.unit) shapes.push(`${id}: unit ${short(g.unit)} != ${short(st.unit)}`);
    if (st.type === 'sum' && st.monotonic !== undefined && g.monotonic !== st.monotonic) shapes.push(`${id}: monotonic ${g.monotonic} != ${st.monotonic}`);
    if (cumulative && st.type !== 'gauge' && g.temporality !== 2) shapes.push(`${id}: temporality ${enumName(g.temporality, TEMPORALITIES)}, want CUMULATIVE`);
    if (st.type === 'sum' || st.type === 'gauge') {
      if (st.valueType !== undefined && g.valueType !== st.valueType) shapes.push(`${id}: value type ${g.valueType} != ${st.valueType}`);
      if (!sameNum(g.value, mp.value)) diff('value', g.value, mp.value);
    } else {
      if (g.count !== mp.count) diff('count', g.count, mp.count);
      if (mp.sum !== undefined && !sameNum(g.sum, mp.sum)) diff('sum', g.sum, mp.sum);
      if (mp.min !== undefined && !sameNum(g.min, mp.min)) diff('min', g.min, mp.min);
      if (mp.max !== undefined && !sameNum(g.max, mp.max)) diff('max', g.max, mp.max);
      if (st.type === 'histogram') {
        if (mp.bucketCounts !== undefined && !same(g.bucketCounts, mp.bucketCounts)) diff('bucket counts', g.bucketCounts, mp.bucketCounts);
        if (mp.explicitBounds !== undefined && !(g.explicitBounds.length === mp.explicitBounds.length && g.explicitBounds.every((b, i) => sameNum(b, mp.explicitBounds[i])))) diff('bounds', g.explicitBounds, mp.explicitBounds);
      } else if (st.type === 'exponential_histogram') {
        if (mp.zeroCount !== undefined && g.zeroCount !== mp.zeroCount) diff('zero count', g.zeroCount, mp.zeroCount);
        if (g.expBucketTotal !== g.count) diff('zero count + bucket counts', g.expBucketTotal, g.count);
      }
    }
  }
  check(`metrics: final values of ${present.length} series (last data point; value, or count/sum/min/max/buckets)`, values);
  check('metrics: types, units, monotonicity, temporality and value types', shapes);
  const expectedKeys = new Set(expected.map((e) => e[2]));
  const extra = [];
  for (const [k, list] of bySeries) {
    if (expectedKeys.has(k)) continue;
    const p = list[0];
    extra.push(`unexpected ${names.has(p.name) ? 'series' : 'metric'} ${p.name} ${short(p.attributes)} of ${p.service} (${list.length} point(s), line ${p.line})`);
  }
  check(`metrics: no unexpected series (${got.points.length} data point(s) received)`, extra);
  const collections = manifest.metrics?.collections;
  if (Number.isInteger(collections) && collections > 0) {
    check(`metrics: no series received more than ${collections} time(s) (one per collection)`,
      present.filter(([, , , n]) => n > collections).map(([st, mp, , n]) => `${st.name} ${short(mp.attributes ?? {})}: ${n} data points`));
  }
}

// -------------------------------------------------------------------- logs
{
  const withTime = mLogs.length > 0 && mLogs.every((r) => r.timeUnixNano !== undefined);
  const has = (f) => mLogs.length > 0 && mLogs.every((r) => r[f] !== undefined);
  const CATEGORIES = {
    body: ['body'],
    severity: ['severityNumber', 'severityText'],
    ids: ['traceId', 'spanId'],
    other: ['service', 'scope', 'timeUnixNano', 'observedTimeUnixNano', 'eventName', 'attributes'].filter(has),
  };
  const fields = Object.values(CATEGORIES).flat();
  const fullKey = (r) => cj(fields.map((f) => r[f] ?? (f === 'body' ? null : '')));
  const anchor = (r) => (withTime ? `${r.service}|${r.timeUnixNano}` : `${r.service}|${r.traceId ?? ''}|${r.spanId ?? ''}`);
  // 1. exact matches (multiset)
  const pool = new Map();
  for (const g of got.logs) { const k = fullKey(g); if (!pool.has(k)) pool.set(k, []); pool.get(k).push(g); }
  const leftM = [];
  for (const m of mLogs) { const list = pool.get(fullKey(m)); if (list?.length) list.shift(); else leftM.push(m); }
  const leftG = [...pool.values()].flat();
  // 2. pair what is left by service + time (or ids), to say what changed
  const byAnchor = new Map();
  for (const g of leftG) { const a = anchor(g); if (!byAnchor.has(a)) byAnchor.set(a, []); byAnchor.get(a).push(g); }
  const report = { missing: [], body: [], severity: [], ids: [], other: [] };
  const paired = new Set();
  for (const m of leftM) {
    const cands = byAnchor.get(anchor(m)) ?? [];
    const diffsOf = (g) => fields.filter((f) => !same(m[f] ?? (f === 'body' ? null : ''), g[f]));
    let best = null;
    for (const g of cands) if (!paired.has(g) && (!best || diffsOf(g).length < diffsOf(best).length)) best = g;
    const what = `${m.service} ${m.severityText || m.severityNumber} @${m.timeUnixNano ?? '?'} ${short(m.body, 50)}`;
    if (!best) { report.missing.push(`missing log record ${what}`); continue; }
    paired.add(best);
    const d = diffsOf(best);
    for (const [cat, fs2] of Object.entries(CATEGORIES)) {
      const changed = d.filter((f) => fs2.includes(f));
      if (changed.length) report[cat].push(`log record ${what} (line ${best.line}): ${changed.map((f) => `${f}${firstDiff(best[f], m[f] ?? (f === 'body' ? null : '')).replace(/^value/, '')}`).join(', ')}`);
    }
  }
  const unexpected = leftG.filter((g) => !paired.has(g))
    .map((g) => `unexpected log record ${g.service} ${g.severityText || g.severityNumber} @${g.timeUnixNano} ${short(g.body, 50)} (line ${g.line})`);
  check(`logs: all ${mLogs.length} manifest record(s) received`, report.missing);
  check('logs: bodies', report.body);
  check('logs: severity numbers and texts', report.severity);
  check('logs: trace and span ids', report.ids);
  if (CATEGORIES.other.length) check(`logs: ${CATEGORIES.other.join(', ')}`, report.other);
  check(`logs: no unexpected record (${got.logs.length} received)`, unexpected);
}

process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
