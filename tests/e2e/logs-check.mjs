// Checks that every log record of an SDK client manifest (tests/e2e/client
// or ../shared/clients/otel-js: manifest.logs.records[]) is in the output of
// `log-ingest query --format jsonl`, mapped as docs/logs-mapping.md says:
// time, service_name and level labels, body as the line, trace and span ids,
// scope and attributes as structured metadata.
//   node logs-check.mjs MANIFEST QUERY_JSONL
import fs from 'node:fs';

const [manifestFile, queryFile] = process.argv.slice(2);
const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
const want = manifest.logs?.records ?? [];
const got = fs.readFileSync(queryFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
const level = (n) => (n >= 1 && n <= 24 ? LEVELS[Math.floor((n - 1) / 4)] : 'unknown');
const attrName = (k) => { let s = k.replace(/[^a-zA-Z0-9_]/g, '_'); if (!s || /^[0-9]/.test(s)) s = `_${s}`; return s; };
// RFC 3339 with nanoseconds -> decimal nanoseconds.
const nsOf = (ts) => {
  const m = /^(.*T\d\d:\d\d:\d\d)\.(\d{9})Z$/.exec(ts);
  return (BigInt(Date.parse(`${m[1]}Z`)) * 1000000n + BigInt(m[2])).toString();
};
const canon = (v) => {
  if (v && typeof v === 'object' && '$bytes' in v) return JSON.stringify(v.$bytes);
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
};
// The store's text for an AnyValue: strings as is, the rest as JSON.
const sameValue = (stored, sent) => {
  if (typeof sent === 'string') return stored === sent;
  if (sent && typeof sent === 'object' && '$bytes' in sent) return stored === sent.$bytes;
  try { return canon(JSON.parse(stored)) === canon(sent); } catch { return false; }
};

const byKey = new Map();
for (const g of got) {
  const k = `${nsOf(g.ts)}|${g.stream.service_name}`;
  if (!byKey.has(k)) byKey.set(k, []);
  byKey.get(k).push(g);
}
const problems = [];
let found = 0;
for (const r of want) {
  const cands = byKey.get(`${r.timeUnixNano}|${r.service}`) ?? [];
  const why = [];
  const hit = cands.find((g) => {
    const p = [];
    if (!sameValue(g.line, r.body)) p.push(`line ${JSON.stringify(g.line)} != body ${canon(r.body)}`);
    if (g.stream.level !== level(r.severityNumber)) p.push(`level ${g.stream.level} != ${level(r.severityNumber)}`);
    const md = g.metadata;
    if ((md.trace_id ?? '') !== (r.traceId ?? '')) p.push(`trace_id ${md.trace_id} != ${r.traceId}`);
    if ((md.span_id ?? '') !== (r.spanId ?? '')) p.push(`span_id ${md.span_id} != ${r.spanId}`);
    if (r.scope && md.scope_name !== r.scope) p.push(`scope_name ${md.scope_name} != ${r.scope}`);
    for (const [k, v] of Object.entries(r.attributes ?? {})) {
      if (!(attrName(k) in md)) p.push(`attribute ${k} missing`);
      else if (!sameValue(md[attrName(k)], v)) p.push(`attribute ${k}: ${md[attrName(k)]} != ${canon(v)}`);
    }
    why.push(p.join('; '));
    return p.length === 0;
  });
  if (hit) found++;
  else problems.push(`record at ${r.timeUnixNano} (${r.service}): ${cands.length ? why.join(' | ') : 'not found'}`);
}
if (got.length !== want.length) problems.push(`${got.length} lines stored, ${want.length} records sent`);
for (const p of problems.slice(0, 20)) console.log(p);
console.log(`${found}/${want.length} log records found with body, level, attributes and trace id`);
process.exit(problems.length || want.length === 0 ? 1 : 0);
