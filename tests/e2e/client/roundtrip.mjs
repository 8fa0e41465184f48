#!/usr/bin/env node
// roundtrip.mjs - what does re-serialising a received OTLP protobuf request give?
//
//   node roundtrip.mjs DIR [--proto-path DIR]
//
// DIR holds raw request bodies saved by `capture.mjs --raw-dir` (named
// <seq>-<traces|metrics|logs>-<transport>.bin). For each body it reports:
//   1. field order: whether every message on the wire lists its fields in
//      ascending field-number order (what proto serialisers emit);
//   2. protobufjs: decode with common/proto and encode again - same bytes?
//   3. proto3-canonical: the same, after dropping fields with implicit presence
//      that were sent with their default value (0, "", false) - what a proto3
//      library (e.g. C++ libprotobuf) writes, which cannot tell "sent as 0"
//      from "not sent"; lists which fields the SDK writes explicitly as 0;
//   4. with --proto-path (and protoc on PATH): `protoc --decode | protoc --encode`
//      against those .proto files (libprotobuf), compared with 3.
// Exit status 1 if 2 does not reproduce every body (a gap in the schema),
// 2 on bad usage; everything else is information.

import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { SIGNALS } from './otlp-json.mjs';

const protobuf = createRequire(import.meta.url)('protobufjs');

const args = process.argv.slice(2);
let dir = null;
let protoPath = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--proto-path') protoPath = args[++i];
  else if (!args[i].startsWith('--') && dir === null) dir = args[i];
  else { process.stderr.write(`roundtrip.mjs: unexpected argument ${args[i]}\nUsage: node roundtrip.mjs DIR [--proto-path DIR]\n`); process.exit(2); }
}
if (!dir || !fs.existsSync(dir)) { process.stderr.write('Usage: node roundtrip.mjs DIR [--proto-path DIR]\n'); process.exit(2); }

const files = fs.readdirSync(dir).filter((f) => /^\d+-(traces|metrics|logs)-.*\.bin$/.test(f)).sort();
if (files.length === 0) { process.stderr.write(`roundtrip.mjs: no request bodies in ${dir}\n`); process.exit(2); }

// ---- 1. field order on the wire, walking nested messages with the schema
function orderProblems(type, buf, where, out) {
  const r = protobuf.Reader.create(buf);
  let last = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    const field = type.fieldsById[id];
    if (id < last) out.push(`${where}: field ${id} (${field?.name ?? '?'}) after field ${last}`);
    last = id;
    if (wire === 2) {
      const len = r.uint32();
      const sub = r.buf.subarray(r.pos, r.pos + len);
      r.pos += len;
      if (field && field.resolvedType instanceof protobuf.Type) orderProblems(field.resolvedType, sub, `${where}.${field.name}`, out);
    } else {
      r.skipType(wire);
    }
  }
}

// ---- 3. drop explicit defaults of implicit-presence fields
function canonicalize(type, msg, removed) {
  for (const f of type.fieldsArray) {
    if (!Object.prototype.hasOwnProperty.call(msg, f.name)) continue;
    const v = msg[f.name];
    const isMsg = f.resolvedType instanceof protobuf.Type;
    if (isMsg) {
      if (f.repeated) v.forEach((x) => canonicalize(f.resolvedType, x, removed));
      else if (v) canonicalize(f.resolvedType, v, removed);
      continue;
    }
    if (f.repeated || f.partOf) continue; // oneof members and proto3 `optional` keep presence
    const isDefault = (typeof v === 'object' && v !== null && typeof v.isZero === 'function') ? v.isZero()
      : v instanceof Uint8Array ? v.length === 0 : (v === 0 || v === '' || v === false);
    if (isDefault) {
      delete msg[f.name];
      const k = `${type.name}.${f.name}`;
      removed.set(k, (removed.get(k) ?? 0) + 1);
    }
  }
}

const PROTO_FILES = {
  traces: 'opentelemetry/proto/collector/trace/v1/trace_service.proto',
  metrics: 'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
  logs: 'opentelemetry/proto/collector/logs/v1/logs_service.proto',
};
const haveProtoc = protoPath && spawnSync('protoc', ['--version'], { encoding: 'utf8' }).status === 0;
function protocRoundTrip(signal, buf) {
  const sig = SIGNALS[signal];
  const common = [`-I${protoPath}`, PROTO_FILES[signal]];
  const dec = spawnSync('protoc', [`--decode=${sig.officialRequest}`, ...common], { input: buf, maxBuffer: 1 << 28, timeout: 20000 });
  if (dec.status !== 0) return { error: String(dec.stderr) };
  const enc = spawnSync('protoc', [`--encode=${sig.officialRequest}`, ...common], { input: dec.stdout, maxBuffer: 1 << 28, timeout: 20000 });
  if (enc.status !== 0) return { error: String(enc.stderr) };
  return { bytes: enc.stdout };
}

const per = { traces: 0, metrics: 0, logs: 0 };
let ordered = 0;
let identical = 0;
let canonicalSame = 0;
let protocSame = 0;
let protocRuns = 0;
let bytesIn = 0;
let bytesCanonical = 0;
const orderIssues = [];
const notIdentical = [];
const removed = new Map();
for (const f of files) {
  const signal = f.split('-')[1];
  per[signal]++;
  const buf = fs.readFileSync(path.join(dir, f));
  bytesIn += buf.length;
  const T = SIGNALS[signal].Request;
  const issues = [];
  orderProblems(T, buf, f, issues);
  if (issues.length === 0) ordered++; else orderIssues.push(...issues.slice(0, 3));
  const msg = T.decode(buf);
  const again = Buffer.from(T.encode(msg).finish());
  if (again.equals(buf)) identical++;
  else {
    let at = 0;
    while (at < Math.min(again.length, buf.length) && again[at] === buf[at]) at++;
    notIdentical.push(`${f}: ${buf.length} -> ${again.length} bytes, first difference at offset ${at}`);
  }
  canonicalize(T, msg, removed);
  const canonical = Buffer.from(T.encode(msg).finish());
  bytesCanonical += canonical.length;
  if (canonical.equals(buf)) canonicalSame++;
  if (haveProtoc) {
    protocRuns++;
    const res = protocRoundTrip(signal, buf);
    if (res.error) process.stdout.write(`  protoc failed on ${f}: ${res.error.trim()}\n`);
    else if (Buffer.from(res.bytes).equals(canonical)) protocSame++;
  }
}

const w = (s) => process.stdout.write(`${s}\n`);
w(`roundtrip: ${files.length} request bodies (traces ${per.traces}, metrics ${per.metrics}, logs ${per.logs}), ${bytesIn} bytes`);
w(`  field order: ${ordered}/${files.length} bodies have every message's fields in ascending field-number order`);
for (const i of orderIssues.slice(0, 10)) w(`    ${i}`);
w(`  protobufjs decode+encode (common/proto) reproduces the bytes: ${identical}/${files.length}`);
for (const i of notIdentical.slice(0, 10)) w(`    ${i}`);
w(`  proto3-canonical re-encoding (explicit defaults dropped) reproduces the bytes: ${canonicalSame}/${files.length} `
  + `(${bytesIn - bytesCanonical} bytes shorter in total)`);
if (removed.size) {
  w('  fields the SDK writes although they hold their default value (count):');
  for (const [k, n] of [...removed.entries()].sort((a, b) => b[1] - a[1])) w(`    ${k} x${n}`);
}
if (protoPath && !haveProtoc) w('  protoc not found: libprotobuf comparison skipped');
if (haveProtoc) w(`  libprotobuf (protoc --decode | --encode, ${protoPath}) == proto3-canonical re-encoding: ${protocSame}/${protocRuns}`);
process.exit(identical === files.length ? 0 : 1);
