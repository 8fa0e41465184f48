// Turns a Loki query_range body of streams (from `tel-query logql -o json`
// or tel-query serve's /loki/api/v1/query_range) into the JSON lines that
// `log-ingest query --format jsonl` prints, so logs-check.mjs can compare it
// with the SDK manifest: index labels (service_name, level, ...) as the
// stream, every other label of the LogQL stream (structured metadata) as
// metadata, the nanosecond time as RFC 3339 with 9 fraction digits.
//   node logql-to-jsonl.mjs LOKI_JSON > OUT.jsonl
// With --trace-id ID MANIFEST: instead checks that the body holds exactly
// the manifest's records of that trace (exit 1 otherwise).
import fs from 'node:fs';

const args = process.argv.slice(2);
const INDEX = new Set(['service_name', 'service_namespace', 'deployment_environment', 'level']);
const body = JSON.parse(fs.readFileSync(args[0], 'utf8'));
if (body.status !== 'success' || body.data?.resultType !== 'streams') {
  console.error(`not a streams result: ${JSON.stringify(body).slice(0, 200)}`);
  process.exit(1);
}
const rfc3339 = (ns) => {
  const n = BigInt(ns);
  const secs = n / 1000000000n;
  const frac = (n % 1000000000n).toString().padStart(9, '0');
  return `${new Date(Number(secs) * 1000).toISOString().slice(0, 19)}.${frac}Z`;
};
const rows = [];
for (const s of body.data.result) {
  const stream = {};
  const metadata = {};
  for (const [k, v] of Object.entries(s.stream)) (INDEX.has(k) ? stream : metadata)[k] = v;
  for (const [ns, line] of s.values) rows.push({ ts: rfc3339(ns), stream, line, metadata });
}
if (args[1] === '--trace-id') {
  const [, , id, manifestFile] = args;
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  const want = (manifest.logs?.records ?? []).filter((r) => r.traceId === id).length;
  const bad = rows.filter((r) => r.metadata.trace_id !== id).length;
  console.log(`${rows.length} lines for trace ${id}, ${want} records in the manifest, ${bad} with another trace id`);
  process.exit(rows.length === want && want > 0 && bad === 0 ? 0 : 1);
}
for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
