#!/usr/bin/env node
// send.mjs - telkit's end-to-end OpenTelemetry client.
//
// Produces deterministic traces, metrics and logs with the official
// OpenTelemetry JS SDK (tracer / meter / logger providers, batch processors,
// periodic metric reader) and ships them with the official OTLP exporters
// (grpc, http/protobuf, http/json). Nothing on the wire is encoded by this
// file. It writes a manifest of exactly what was sent, for check.mjs.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const USAGE = `Usage: node send.mjs [options]
  --endpoint URL        receiver; default http://127.0.0.1:4318 (http/*) or
                        http://127.0.0.1:4317 (grpc). For http/* the path
                        /v1/traces|metrics|logs is appended.
  --protocol P          grpc | http/protobuf | http/json   (default http/protobuf)
  --count N             number of traces, N >= 1 (default 10)
  --service NAME        base service name (default telkit-e2e); telemetry comes
                        from NAME, NAME-billing and NAME-worker
  --seed S              seed of ids and scenario, any string (default 1)
  --signals LIST        comma list of traces,metrics,logs (default all)
  --compression C       none | gzip (default none)
  --headers k=v,...     extra HTTP headers / gRPC metadata, e.g.
                        authorization=Bearer%20s3cret (values are %-decoded)
  --manifest FILE       write the manifest (JSON) to FILE, '-' for stdout
  --timeout-ms MS       timeout of one export, retries included (default 10000)
  --batch-size N        max spans / log records per export request (default 512)
  --base-time-ms MS     epoch ms of the first trace (default: now - 1 s - count*100 ms);
                        fix it (with --seed) for byte-identical manifests
  --quiet               print failures and the summary only
  --verbose             print all OpenTelemetry diagnostics
  --help
Exit status: 0 every export succeeded and every item was acknowledged;
1 an export failed, was (partially) rejected, the SDK logged an error, or an
item was not acknowledged; 2 bad usage.`;

// ------------------------------------------------------------- arguments
function usage(msg) {
  process.stderr.write(`send.mjs: ${msg}\n${USAGE}\n`);
  process.exit(2);
}
const VALUE_OPTS = ['endpoint', 'protocol', 'count', 'service', 'seed', 'signals', 'compression', 'headers', 'manifest',
  'timeout-ms', 'batch-size', 'base-time-ms'];
const FLAG_OPTS = ['quiet', 'verbose', 'help'];
const opt = {};
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(argv[i]);
    if (!m) usage(`unexpected argument '${argv[i]}'`);
    const [, key, inline] = m;
    if (FLAG_OPTS.includes(key)) {
      if (inline !== undefined) usage(`--${key} takes no value`);
      opt[key] = true;
    } else if (VALUE_OPTS.includes(key)) {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`--${key} needs a value`);
      if (key in opt) usage(`--${key} given twice`);
      opt[key] = v;
    } else {
      usage(`unknown option --${key}`);
    }
  }
}
if (opt.help) { process.stdout.write(`${USAGE}\n`); process.exit(0); }

const protocol = opt.protocol ?? 'http/protobuf';
if (!['grpc', 'http/protobuf', 'http/json'].includes(protocol)) usage(`--protocol must be grpc, http/protobuf or http/json, not '${protocol}'`);
function intOpt(name, dflt, min, max = Number.MAX_SAFE_INTEGER) {
  if (opt[name] === undefined) return dflt;
  if (!/^\d+$/.test(opt[name]) || Number(opt[name]) < min || Number(opt[name]) > max) usage(`--${name} must be an integer in [${min}, ${max}], not '${opt[name]}'`);
  return Number(opt[name]);
}
const count = intOpt('count', 10, 1, 1000000);
const timeoutMs = intOpt('timeout-ms', 10000, 1, 3600000);
const batchSize = intOpt('batch-size', 512, 1, 1000000);
const seed = opt.seed ?? '1';
const baseService = opt.service ?? 'telkit-e2e';
if (!/^[A-Za-z0-9_.:-]+$/.test(baseService)) usage(`--service must be a non-empty name of [A-Za-z0-9_.:-], not '${baseService}'`);
const compression = opt.compression ?? 'none';
if (!['none', 'gzip'].includes(compression)) usage(`--compression must be none or gzip, not '${compression}'`);
const SIGNAL_NAMES = ['traces', 'metrics', 'logs'];
const signalList = (opt.signals ?? SIGNAL_NAMES.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
if (signalList.length === 0) usage('--signals is empty');
for (const s of signalList) if (!SIGNAL_NAMES.includes(s)) usage(`unknown signal '${s}' in --signals (want traces, metrics, logs)`);
const want = Object.fromEntries(SIGNAL_NAMES.map((s) => [s, signalList.includes(s)]));
const endpoint = opt.endpoint ?? (protocol === 'grpc' ? 'http://127.0.0.1:4317' : 'http://127.0.0.1:4318');
{
  let u;
  try { u = new URL(endpoint); } catch { usage(`--endpoint is not a URL: '${endpoint}'`); }
  if (!['http:', 'https:'].includes(u.protocol)) usage(`--endpoint must be http:// or https://, not '${endpoint}'`);
}
const headers = {};
for (const part of (opt.headers ?? '').split(',')) {
  if (!part.trim()) continue;
  const eq = part.indexOf('=');
  if (eq <= 0) usage(`--headers entry '${part}' is not k=v`);
  const k = part.slice(0, eq).trim().toLowerCase();
  let v;
  try { v = decodeURIComponent(part.slice(eq + 1).trim()); } catch { usage(`--headers value for '${k}' has bad %-encoding`); }
  headers[k] = v;
}
const baseTimeMs = opt['base-time-ms'] !== undefined ? intOpt('base-time-ms', 0, 0) : Date.now() - 1000 - count * 100;
const quiet = !!opt.quiet && !opt.verbose;

// Only the flags configure this run: OTEL_* variables would change exporters
// (endpoints, headers, temporality, limits) behind the manifest's back.
const scrubbedEnv = Object.keys(process.env).filter((k) => k.startsWith('OTEL_')).sort();
for (const k of scrubbedEnv) delete process.env[k];

// ---------------------------------------------------------- OpenTelemetry
const api = require('@opentelemetry/api');
const { SeverityNumber } = require('@opentelemetry/api-logs');
const core = require('@opentelemetry/core');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { MeterProvider, PeriodicExportingMetricReader, AggregationType } = require('@opentelemetry/sdk-metrics');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');

const EXPORTERS = {
  grpc: ['@opentelemetry/exporter-trace-otlp-grpc', '@opentelemetry/exporter-metrics-otlp-grpc', '@opentelemetry/exporter-logs-otlp-grpc'],
  'http/protobuf': ['@opentelemetry/exporter-trace-otlp-proto', '@opentelemetry/exporter-metrics-otlp-proto', '@opentelemetry/exporter-logs-otlp-proto'],
  'http/json': ['@opentelemetry/exporter-trace-otlp-http', '@opentelemetry/exporter-metrics-otlp-http', '@opentelemetry/exporter-logs-otlp-http'],
}[protocol];

function installedVersion(pkg) {
  try { return JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules', pkg, 'package.json'), 'utf8')).version; } catch { return null; }
}

// --------------------------------------------------- failures and warnings
const failures = [];
const warnings = [];
function failure(kind, msg) {
  failures.push({ kind, message: msg });
  process.stderr.write(`send.mjs: FAILURE [${kind}] ${msg}\n`);
}
function describe(x) {
  if (x instanceof Error) return `${x.name}: ${x.message}${x.code !== undefined ? ` (code ${x.code})` : ''}`;
  if (typeof x === 'string') return x;
  try { return JSON.stringify(x); } catch { return String(x); }
}
function onDiagWarn(args) {
  const text = args.map(describe).join(' ');
  if (/partial success/i.test(text)) {
    // logging-response-handler: diag.warn('Received Partial Success response:', JSON.stringify(partialSuccess))
    let rejected = NaN;
    for (const a of args) {
      try {
        const o = typeof a === 'string' && a.trim().startsWith('{') ? JSON.parse(a) : null;
        if (o) rejected = Object.entries(o).filter(([k]) => /^rejected/i.test(k)).reduce((n, [, v]) => n + Number(v || 0), 0);
      } catch { /* not JSON */ }
    }
    if (!(rejected === 0)) { failure('partial-success', text); return; }
  } else if (/deserialize response|parse .*response/i.test(text)) {
    failure('bad-response', text);
    return;
  }
  warnings.push(text);
  if (!quiet) process.stderr.write(`send.mjs: [otel warn] ${text}\n`);
}
api.diag.setLogger({
  error: (...a) => failure('sdk-diag-error', a.map(describe).join(' ')),
  warn: (...a) => onDiagWarn(a),
  info: (...a) => { if (opt.verbose) process.stderr.write(`send.mjs: [otel info] ${a.map(describe).join(' ')}\n`); },
  debug: (...a) => { if (opt.verbose) process.stderr.write(`send.mjs: [otel debug] ${a.map(describe).join(' ')}\n`); },
  verbose: (...a) => { if (opt.verbose) process.stderr.write(`send.mjs: [otel verbose] ${a.map(describe).join(' ')}\n`); },
}, { logLevel: opt.verbose ? api.DiagLogLevel.ALL : api.DiagLogLevel.WARN, suppressOverrideMessage: true });
core.setGlobalErrorHandler((e) => failure('sdk-error', describe(e)));

// ------------------------------------------------------ deterministic PRNG
// xoshiro128** seeded through splitmix32 from the FNV-1a hash of a label.
function fnv1a(text) {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(text, 'utf8')) { h ^= b; h = Math.imul(h, 0x01000193) >>> 0; }
  return h;
}
const rotl = (x, k) => ((x << k) | (x >>> (32 - k))) >>> 0;
class Prng {
  constructor(label) {
    let x = fnv1a(label);
    const splitmix = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = [splitmix(), splitmix(), splitmix(), splitmix()];
  }
  next() {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] = (s[2] ^ s[0]) >>> 0;
    s[3] = (s[3] ^ s[1]) >>> 0;
    s[1] = (s[1] ^ s[2]) >>> 0;
    s[0] = (s[0] ^ s[3]) >>> 0;
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3], 11);
    return result;
  }
  int(lo, hi) { return lo + Math.floor((this.next() / 4294967296) * (hi - lo + 1)); } // inclusive
  chance(p) { return this.next() / 4294967296 < p; }
  pick(list) { return list[this.int(0, list.length - 1)]; }
  hex(bytes) {
    let out = '';
    while (out.length < 2 * bytes) out += this.next().toString(16).padStart(8, '0');
    return out.slice(0, 2 * bytes);
  }
}
class SeededIds { // IdGenerator of the tracer providers
  constructor(label) { this.prng = new Prng(label); }
  generateTraceId() { let id; do id = this.prng.hex(16); while (/^0+$/.test(id)); return id; }
  generateSpanId() { let id; do id = this.prng.hex(8); while (/^0+$/.test(id)); return id; }
}
const rng = new Prng(`telkit-e2e/${seed}/scenario`);

// --------------------------------------------------------------- time
// Times are kept as integer microseconds after the base time; the SDK gets
// exact [seconds, nanoseconds] tuples, the manifest decimal nanoseconds.
const baseNs = BigInt(baseTimeMs) * 1000000n;
const nsOf = (us) => baseNs + BigInt(us) * 1000n;
const hrOf = (us) => { const ns = nsOf(us); return [Number(ns / 1000000000n), Number(ns % 1000000000n)]; };
const TRACE_SPACING_US = 100000; // one checkout every 100 ms

// ------------------------------------------------------------- services
const ROLES = [
  { role: 'web', name: baseService, version: '3.2.1' },
  { role: 'billing', name: `${baseService}-billing`, version: '1.7.0' },
  { role: 'worker', name: `${baseService}-worker`, version: '0.4.2' },
];
const SCHEMA_URL = 'https://opentelemetry.io/schemas/1.28.0';
const queueSize = Math.max(2048, count * 16 + 256);

const exportStats = Object.fromEntries(SIGNAL_NAMES.map((s) => [s, { exportCalls: 0, succeeded: 0, failed: 0, itemsAcked: 0, itemsFailed: 0 }]));
const ackedSpans = new Set();
function dataPointCount(resourceMetrics) {
  let n = 0;
  for (const sm of resourceMetrics.scopeMetrics) for (const m of sm.metrics) n += m.dataPoints.length;
  return n;
}
// Observe every result callback of an official exporter (its export() is wrapped in place).
function observe(signal, serviceName, exporter) {
  const inner = exporter.export.bind(exporter);
  const st = exportStats[signal];
  exporter.export = (items, resultCallback) => {
    const n = signal === 'metrics' ? dataPointCount(items) : items.length;
    st.exportCalls++;
    let answered = false;
    const done = (result) => {
      if (answered) { failure(`${signal}-export`, `${serviceName}: export result reported twice`); return; }
      answered = true;
      if (result.code === core.ExportResultCode.SUCCESS) {
        st.succeeded++;
        st.itemsAcked += n;
        if (signal === 'traces') for (const s of items) ackedSpans.add(s.spanContext().spanId);
      } else {
        st.failed++;
        st.itemsFailed += n;
        failure(`${signal}-export`, `${serviceName}: ${n} item(s) not exported: ${describe(result.error ?? 'no error given')}`);
      }
      resultCallback(result);
    };
    try { inner(items, done); } catch (e) { done({ code: core.ExportResultCode.FAILED, error: e }); }
  };
  return exporter;
}
function makeExporter(signal, serviceName) {
  const mod = require(EXPORTERS[SIGNAL_NAMES.indexOf(signal)]);
  const Ctor = { traces: mod.OTLPTraceExporter, metrics: mod.OTLPMetricExporter, logs: mod.OTLPLogExporter }[signal];
  const config = { timeoutMillis: timeoutMs, compression };
  if (protocol === 'grpc') {
    const grpc = require('@grpc/grpc-js');
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
    Object.assign(config, { url: endpoint, metadata });
  } else {
    Object.assign(config, { url: `${endpoint.replace(/\/+$/, '')}/v1/${signal}`, headers: { ...headers } });
  }
  if (signal === 'metrics') config.temporalityPreference = require('@opentelemetry/exporter-metrics-otlp-http').AggregationTemporalityPreference.CUMULATIVE;
  return observe(signal, serviceName, new Ctor(config));
}

const svc = {};
for (const r of ROLES) {
  const idPrng = new Prng(`telkit-e2e/${seed}/instance/${r.name}`);
  const resourceAttrs = {
    'service.name': r.name,
    'service.version': r.version,
    'service.namespace': 'telkit-e2e',
    'service.instance.id': `${r.role}-${idPrng.hex(6)}`,
    'deployment.environment.name': 'e2e',
    'host.name': 'e2e-host',
    'telemetry.sdk.language': 'nodejs',
    'telemetry.sdk.name': 'opentelemetry',
    'telemetry.sdk.version': installedVersion('@opentelemetry/sdk-trace-base'),
  };
  const resource = resourceFromAttributes(resourceAttrs);
  const scope = { name: `telkit-e2e/${r.role}`, version: '1.0.0', schemaUrl: r.role === 'web' ? SCHEMA_URL : '' };
  const scopeOpts = scope.schemaUrl ? { schemaUrl: scope.schemaUrl } : undefined;
  const s = { ...r, resourceAttrs, scope };
  if (want.traces) {
    s.tracerProvider = new BasicTracerProvider({
      resource,
      idGenerator: new SeededIds(`telkit-e2e/${seed}/ids/${r.name}`), // runs with other --service names get other ids
      spanProcessors: [new BatchSpanProcessor(makeExporter('traces', r.name), {
        maxExportBatchSize: batchSize, maxQueueSize: queueSize + batchSize, scheduledDelayMillis: 250, exportTimeoutMillis: timeoutMs + 1000,
      })],
    });
    s.tracer = s.tracerProvider.getTracer(scope.name, scope.version, scopeOpts);
  }
  if (want.logs) {
    s.loggerProvider = new LoggerProvider({
      resource,
      processors: [new BatchLogRecordProcessor({
        exporter: makeExporter('logs', r.name),
        maxExportBatchSize: batchSize, maxQueueSize: queueSize + batchSize, scheduledDelayMillis: 250, exportTimeoutMillis: timeoutMs + 1000,
      })],
    });
    s.logger = s.loggerProvider.getLogger(scope.name, scope.version, scopeOpts);
  }
  if (want.metrics) {
    s.meterProvider = new MeterProvider({
      resource,
      views: r.role === 'billing'
        ? [{ instrumentName: 'billing.charge.amount', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }]
        : [],
      readers: [new PeriodicExportingMetricReader({
        exporter: makeExporter('metrics', r.name),
        exportIntervalMillis: 86400000, // only forceFlush() and shutdown() export
        exportTimeoutMillis: timeoutMs + 1000,
      })],
    });
    s.meter = s.meterProvider.getMeter(scope.name, scope.version, scopeOpts);
  }
  svc[r.role] = s;
}

// ------------------------------------------------------------- spans
const { SpanKind, SpanStatusCode, ROOT_CONTEXT } = api;
const KIND = { [SpanKind.INTERNAL]: 'INTERNAL', [SpanKind.SERVER]: 'SERVER', [SpanKind.CLIENT]: 'CLIENT',
  [SpanKind.PRODUCER]: 'PRODUCER', [SpanKind.CONSUMER]: 'CONSUMER' };
const spans = [];    // manifest records, in start order
const traceIds = [];
const w3c = new core.W3CTraceContextPropagator();

function begin(s, name, kind, parentCtx, us, attributes = {}, links = []) {
  if (!want.traces) return { span: null, rec: null, ctx: parentCtx };
  const span = s.tracer.startSpan(name, { kind, attributes, links, startTime: hrOf(us) }, parentCtx);
  const sc = span.spanContext();
  const parent = api.trace.getSpanContext(parentCtx);
  const rec = {
    traceId: sc.traceId,
    spanId: sc.spanId,
    parentSpanId: parent ? parent.spanId : '',
    traceState: sc.traceState ? sc.traceState.serialize() : '',
    service: s.name,
    scope: s.scope.name,
    name,
    kind: KIND[kind],
    statusCode: 'UNSET',
    statusMessage: '',
    startTimeUnixNano: nsOf(us).toString(),
    endTimeUnixNano: null,
    attributes: { ...attributes },
    events: [],
    links: links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId, attributes: { ...l.attributes } })),
  };
  spans.push(rec);
  return { span, rec, ctx: api.trace.setSpan(parentCtx, span) };
}
function attrs(h, a) { if (h.span) { h.span.setAttributes(a); Object.assign(h.rec.attributes, a); } }
function event(h, name, a, us) {
  if (!h.span) return;
  h.span.addEvent(name, a, hrOf(us));
  h.rec.events.push({ name, timeUnixNano: nsOf(us).toString(), attributes: { ...a } });
}
function exception(h, exc, us) {
  if (!h.span) return;
  h.span.recordException(exc, hrOf(us));
  h.rec.events.push({ name: 'exception', timeUnixNano: nsOf(us).toString(),
    attributes: { 'exception.type': exc.name, 'exception.message': exc.message, 'exception.stacktrace': exc.stack } });
}
function status(h, code, message = '') {
  if (!h.span) return;
  h.span.setStatus(code === SpanStatusCode.ERROR ? { code, message } : { code });
  h.rec.statusCode = { [SpanStatusCode.UNSET]: 'UNSET', [SpanStatusCode.OK]: 'OK', [SpanStatusCode.ERROR]: 'ERROR' }[code];
  h.rec.statusMessage = code === SpanStatusCode.ERROR ? message : '';
}
function end(h, us) {
  if (!h.span) return;
  h.span.end(hrOf(us));
  h.rec.endTimeUnixNano = nsOf(us).toString();
}
// W3C trace context across a (simulated) process boundary: inject, then extract.
function acrossWire(ctx, tracestate) {
  const carrier = {};
  w3c.inject(ctx, carrier, api.defaultTextMapSetter);
  if (tracestate) carrier.tracestate = tracestate;
  return w3c.extract(ROOT_CONTEXT, carrier, api.defaultTextMapGetter);
}

// --------------------------------------------------------------- logs
const logs = [];
const SEVERITY_TEXT = { [SeverityNumber.TRACE]: 'TRACE', [SeverityNumber.DEBUG]: 'DEBUG', [SeverityNumber.INFO]: 'INFO',
  [SeverityNumber.WARN]: 'WARN', [SeverityNumber.ERROR]: 'ERROR', [SeverityNumber.FATAL]: 'FATAL' };
const manifestValue = (v) => (v instanceof Uint8Array ? { $bytes: Buffer.from(v).toString('base64') } : v);
function log(s, ctx, us, severityNumber, body, attributes = {}, eventName = '') {
  if (!want.logs) return;
  const record = { timestamp: hrOf(us), observedTimestamp: hrOf(us + 7), severityNumber, severityText: SEVERITY_TEXT[severityNumber],
    body, attributes, context: ctx };
  if (eventName) record.eventName = eventName;
  s.logger.emit(record);
  const sc = api.trace.getSpanContext(ctx);
  const valid = !!sc && api.trace.isSpanContextValid(sc);
  logs.push({
    service: s.name,
    scope: s.scope.name,
    timeUnixNano: nsOf(us).toString(),
    observedTimeUnixNano: nsOf(us + 7).toString(),
    severityNumber,
    severityText: SEVERITY_TEXT[severityNumber],
    eventName,
    body: manifestValue(body),
    attributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, manifestValue(v)])),
    traceId: valid ? sc.traceId : '',
    spanId: valid ? sc.spanId : '',
  });
}

// ------------------------------------------------------------- metrics
// A model of what the SDK aggregates, updated next to every instrument call.
const streams = new Map();
const seriesKey = (a) => JSON.stringify(Object.keys(a).sort().map((k) => [k, a[k]]));
const M = {};
function instrument(s, factory, name, options, model) {
  const inst = s.meter[factory](name, options);
  const stream = { service: s.name, scope: s.scope.name, name, unit: options.unit, description: options.description,
    valueType: options.valueType === api.ValueType.INT ? 'int' : 'double', instrument: factory.replace(/^create/, ''), ...model, series: new Map() };
  streams.set(`${s.name}|${name}`, stream);
  return { inst, stream };
}
function series(stream, a, init) {
  const k = seriesKey(a);
  if (!stream.series.has(k)) stream.series.set(k, { attributes: { ...a }, ...init() });
  return stream.series.get(k);
}
function add(m, v, a = {}) {
  if (!want.metrics) return;
  m.inst.add(v, a);
  series(m.stream, a, () => ({ value: 0 })).value += v;
}
function record(m, v, a = {}) {
  if (!want.metrics) return;
  m.inst.record(v, a);
  const st = m.stream;
  if (st.type === 'gauge') { series(st, a, () => ({ value: 0 })).value = v; return; }
  const p = series(st, a, () => (st.type === 'histogram'
    ? { count: 0, sum: 0, min: Infinity, max: -Infinity, bucketCounts: new Array(st.explicitBounds.length + 1).fill(0), explicitBounds: st.explicitBounds }
    : { count: 0, sum: 0, min: Infinity, max: -Infinity, zeroCount: 0 }));
  p.count++;
  p.sum += v;
  p.min = Math.min(p.min, v);
  p.max = Math.max(p.max, v);
  if (st.type === 'histogram') {
    const i = st.explicitBounds.findIndex((b) => v <= b);
    p.bucketCounts[i < 0 ? st.explicitBounds.length : i]++;
  } else if (v === 0) {
    p.zeroCount++;
  }
}
const state = { done: 0, failed: 0 };
const { INT, DOUBLE } = api.ValueType;
if (want.metrics) {
  const { web, billing, worker } = svc;
  const durationBounds = [5, 10, 25, 50, 100, 250, 500, 1000];
  const pageBounds = [1, 2, 4, 8];
  M.requests = instrument(web, 'createCounter', 'web.requests', { unit: '{request}', description: 'Checkout requests', valueType: INT }, { type: 'sum', monotonic: true });
  M.cpu = instrument(web, 'createCounter', 'web.cpu.time', { unit: 's', description: 'CPU time', valueType: DOUBLE }, { type: 'sum', monotonic: true });
  M.sessions = instrument(web, 'createUpDownCounter', 'web.sessions.active', { unit: '{session}', description: 'Open sessions', valueType: INT }, { type: 'sum', monotonic: false });
  M.duration = instrument(web, 'createHistogram', 'web.request.duration', { unit: 'ms', description: 'Checkout latency', valueType: DOUBLE,
    advice: { explicitBucketBoundaries: durationBounds } }, { type: 'histogram', explicitBounds: durationBounds });
  M.fill = instrument(web, 'createGauge', 'web.cart.fill', { unit: '1', description: 'Cart fill ratio (synchronous gauge)', valueType: DOUBLE }, { type: 'gauge' });
  M.heap = instrument(web, 'createObservableGauge', 'web.memory.usage', { unit: 'By', description: 'Memory (observable gauge)', valueType: INT }, { type: 'gauge' });
  M.uptime = instrument(web, 'createObservableCounter', 'web.uptime', { unit: 's', description: 'Uptime (observable counter)', valueType: DOUBLE }, { type: 'sum', monotonic: true });
  M.idle = instrument(web, 'createObservableUpDownCounter', 'web.workers.idle', { unit: '{worker}', description: 'Idle workers (observable up-down counter)', valueType: INT }, { type: 'sum', monotonic: false });
  M.charges = instrument(billing, 'createCounter', 'billing.charges', { unit: '{charge}', description: 'Charges', valueType: INT }, { type: 'sum', monotonic: true });
  M.amount = instrument(billing, 'createHistogram', 'billing.charge.amount', { unit: '{EUR}', description: 'Charge amount (exponential histogram via a View)', valueType: DOUBLE }, { type: 'exponential_histogram' });
  M.pending = instrument(billing, 'createUpDownCounter', 'billing.invoices.pending', { unit: '{invoice}', description: 'Invoices not yet rendered', valueType: INT }, { type: 'sum', monotonic: false });
  M.jobs = instrument(worker, 'createCounter', 'worker.jobs', { unit: '{job}', description: 'Jobs done', valueType: INT }, { type: 'sum', monotonic: true });
  M.pages = instrument(worker, 'createHistogram', 'worker.pdf.pages', { unit: '{page}', description: 'Pages per invoice', valueType: INT,
    advice: { explicitBucketBoundaries: pageBounds } }, { type: 'histogram', explicitBounds: pageBounds });

  // Observable values depend on the final state only: every collection reports the same.
  const observed = () => [
    [M.heap, 64 * 1048576 + state.done * 4096, { 'memory.kind': 'heap' }],
    [M.heap, 3 * 1048576 + (state.done % 7) * 512, { 'memory.kind': 'external' }],
    [M.uptime, 1.5 + state.done * 0.125, {}],
    [M.idle, 8 - (state.done % 5), { 'worker.pool': 'render' }],
    [M.idle, 2 + (state.failed % 3), { 'worker.pool': 'mail' }],
  ];
  for (const m of [M.heap, M.uptime, M.idle]) {
    m.inst.addCallback((result) => { for (const [mm, v, a] of observed()) if (mm === m) result.observe(v, a); });
  }
  M.finalize = () => { for (const [mm, v, a] of observed()) series(mm.stream, a, () => ({ value: 0 })).value = v; };
}

// ------------------------------------------------------------- scenario
let previousRoot = null;
function checkout(i) {
  const { web, billing, worker } = svc;
  let us = i * TRACE_SPACING_US;
  const failed = i === 0 || rng.chance(0.3);
  const cart = `cart-${i.toString(36).padStart(4, '0')}-${rng.hex(2)}`;
  const items = rng.int(1, 6);
  const amount = rng.int(40, 40000) / 4 + 0.125; // never whole: stays a doubleValue
  const currency = rng.pick(['EUR', 'USD', 'CHF']);
  const loyal = rng.chance(0.4);
  const method = i % 3 === 2 ? 'POST' : 'GET';
  const score = (rng.int(0, 799) * 2 + 1) / 16;
  const risky = score > 80;
  const dbCalls = rng.int(1, 2);
  const pages = rng.int(1, 12);
  const code = failed ? 502 : 200;

  const root = begin(web, `${method} /checkout/{cart}`, SpanKind.SERVER, ROOT_CONTEXT, us, {
    'http.request.method': method,
    'http.route': '/checkout/{cart}',
    'url.path': `/checkout/${cart}`,
    'url.scheme': 'https',
    'server.address': 'shop.e2e.test',
    'server.port': 443,
    'user_agent.original': 'telkit-e2e/1.0',
    'app.cart.items': items,
    'app.cart.value': amount,
    'app.customer.loyal': loyal,
    'app.trace.index': i,
    'app.tags': ['checkout', `shard-${i % 3}`],
    'app.item.counts': [items, items + 1, 1],
    'app.item.weights': [0.25, amount / 2, 1.5],
    'app.item.gift': [loyal, !loyal],
  }, previousRoot ? [{ context: previousRoot, attributes: { 'link.reason': 'previous_checkout', 'app.trace.index': i - 1 } }] : []);
  if (root.span) previousRoot = root.span.spanContext();
  if (i === 0) log(web, ROOT_CONTEXT, us - 500, SeverityNumber.INFO, `${web.name} ready to serve checkouts`, { 'app.build': 'e2e', 'app.workers': 4 });
  event(root, 'cart.loaded', { 'app.cart.items': items, 'app.cart.currency': currency }, us += 40);
  log(web, root.ctx, us += 10, SeverityNumber.INFO, `checkout ${cart}: ${items} item(s), ${amount} ${currency}`,
    { 'app.cart.id': cart, 'app.customer': { loyal, tier: loyal ? 'gold' : 'basic', visits: i + 1 }, 'app.tags': ['checkout', currency] },
    i % 2 === 0 ? 'checkout.started' : '');

  const render = begin(web, 'render cart', SpanKind.INTERNAL, root.ctx, us += 20, { 'template.name': 'cart.html', 'app.cart.items': items });
  log(web, render.ctx, us += 5, SeverityNumber.TRACE, `template cart.html: ${items} row(s)`, { 'template.cache.hit': i % 2 === 1 });
  us += 500 + 200 * rng.int(0, 30);
  if (i % 2 === 0) status(render, SpanStatusCode.OK);
  end(render, us);

  const call = begin(web, 'POST /charge', SpanKind.CLIENT, root.ctx, us += 15, {
    'http.request.method': 'POST', 'server.address': billing.name, 'server.port': 9090, 'url.full': `http://${billing.name}:9090/charge`,
  });
  const bs = begin(billing, 'POST /charge', SpanKind.SERVER, acrossWire(call.ctx, `tk=b${i % 8},vendor=e2e`), us += 30, {
    'http.request.method': 'POST', 'http.route': '/charge', 'url.path': '/charge', 'app.cart.id': cart, 'app.charge.currency': currency,
  });
  const fraud = begin(billing, 'fraud.score', SpanKind.INTERNAL, bs.ctx, us += 10, { 'fraud.model': 'v3', 'fraud.rules': ['velocity', 'geo', 'amount'] });
  log(billing, fraud.ctx, us += 20, SeverityNumber.DEBUG, {
    charge: { cart, amount, currency, items },
    rules: ['velocity', 'geo', 'amount'],
    passed: !risky,
    score,
  }, { 'fraud.score': score });
  event(fraud, 'score.computed', { 'fraud.score': score, 'fraud.risky': risky }, us += 15);
  if (risky) log(billing, fraud.ctx, us += 5, SeverityNumber.WARN, `risky charge for ${cart}: score ${score}`, { 'fraud.score': score, 'fraud.review': true });
  end(fraud, us += 250 + 50 * rng.int(0, 20));

  for (let k = 0; k < dbCalls; k++) {
    const db = begin(billing, 'SELECT accounts', SpanKind.CLIENT, bs.ctx, us += 10, {
      'db.system.name': 'postgresql', 'db.namespace': 'billing', 'db.operation.name': 'SELECT',
      'db.query.text': 'SELECT balance FROM accounts WHERE id = $1', 'server.address': 'db.e2e.test', 'server.port': 5432, 'app.attempt': k + 1,
    });
    us += 1000 + 500 * rng.int(0, 40 * (k + 1));
    if (failed && k === dbCalls - 1) {
      const exc = { name: 'DeadlockError', message: `deadlock detected while charging ${cart}`,
        stack: `DeadlockError: deadlock detected while charging ${cart}\n    at query (db.js:88:11)\n    at charge (billing.js:31:5)` };
      exception(db, exc, us);
      log(billing, db.ctx, us += 5, SeverityNumber.ERROR, `charge ${cart} failed: deadlock detected`,
        { 'exception.type': exc.name, 'exception.message': exc.message, 'app.cart.id': cart }, 'charge.failed');
      status(db, SpanStatusCode.ERROR, 'deadlock detected');
    }
    end(db, us += 5);
  }

  let producer = null;
  if (!failed) {
    producer = begin(billing, 'invoices publish', SpanKind.PRODUCER, bs.ctx, us += 10, {
      'messaging.system': 'rabbitmq', 'messaging.destination.name': 'invoices', 'messaging.operation.type': 'send',
      'messaging.message.id': `inv-${cart}`,
    });
    end(producer, us += 400);
    status(bs, SpanStatusCode.OK);
  } else {
    status(bs, SpanStatusCode.ERROR, 'charge failed: database deadlock');
  }
  attrs(bs, { 'http.response.status_code': code });
  end(bs, us += 10);
  attrs(call, { 'http.response.status_code': code });
  if (failed) status(call, SpanStatusCode.ERROR, `HTTP ${code}`);
  end(call, us += 10);

  event(root, 'checkout.finished', { 'http.response.status_code': code, 'app.ok': !failed }, us += 5);
  attrs(root, { 'http.response.status_code': code });
  if (failed) status(root, SpanStatusCode.ERROR, 'payment failed'); else status(root, SpanStatusCode.OK);
  const rootStart = i * TRACE_SPACING_US;
  end(root, us += 5);
  const durationMs = Math.round((us - rootStart) / 1000 * 64) / 64; // a multiple of 1/64: exact in binary

  if (producer) {
    let wu = us + 2000 + 100 * rng.int(0, 50);
    const consumer = begin(worker, 'invoices process', SpanKind.CONSUMER, acrossWire(producer.ctx), wu, {
      'messaging.system': 'rabbitmq', 'messaging.destination.name': 'invoices', 'messaging.operation.type': 'process',
      'messaging.consumer.group.name': 'pdf-workers', 'messaging.message.id': `inv-${cart}`,
    }, root.span ? [{ context: root.span.spanContext(), attributes: { 'link.reason': 'origin' } }] : []);
    const pdf = begin(worker, 'render invoice.pdf', SpanKind.INTERNAL, consumer.ctx, wu += 20, { 'pdf.pages': pages, 'pdf.template': 'invoice-v2' });
    log(worker, pdf.ctx, wu += 10, SeverityNumber.TRACE, `rendering ${pages} page(s) for inv-${cart}`, { 'pdf.pages': pages });
    if (i % 4 === 1) {
      log(worker, pdf.ctx, wu += 10, SeverityNumber.DEBUG, Uint8Array.from([0x25, 0x50, 0x44, 0x46, 0x2d, 0x31, 0x2e, 0x37, i & 0xff]),
        { 'pdf.header': true, 'pdf.digest': Uint8Array.from([i & 0xff, 0xde, 0xad]) });
    }
    end(pdf, wu += 1500 * pages);
    log(worker, consumer.ctx, wu += 5, SeverityNumber.INFO, { invoice: { id: `inv-${cart}`, pages, amount, currency }, ok: true, tries: [1] },
      { 'messaging.message.id': `inv-${cart}` });
    status(consumer, SpanStatusCode.OK);
    end(consumer, wu += 5);
  }

  // metrics of this checkout
  add(M.requests, 1, { 'http.request.method': method, 'http.route': '/checkout/{cart}', 'http.response.status_code': code });
  add(M.cpu, rng.int(1, 64) / 64, { 'cpu.mode': 'user' });
  add(M.cpu, rng.int(1, 16) / 64, { 'cpu.mode': 'system' });
  add(M.sessions, 1);
  if (i % 4 !== 3) add(M.sessions, -1);
  record(M.duration, durationMs, { 'http.route': '/checkout/{cart}', 'app.outcome': failed ? 'error' : 'ok' });
  record(M.fill, items / 8, { 'cart.shard': i % 2 === 0 ? 'even' : 'odd' });
  add(M.charges, 1, { 'app.charge.currency': currency, 'app.outcome': failed ? 'declined' : 'captured' });
  record(M.amount, failed ? 0 : amount, { 'app.charge.currency': currency });
  if (!failed) {
    add(M.pending, 1, { 'messaging.destination.name': 'invoices' });
    add(M.pending, -1, { 'messaging.destination.name': 'invoices' });
    add(M.jobs, 1, { 'job.type': 'invoice' });
    record(M.pages, pages, {});
  }
  if (root.rec) traceIds.push(root.rec.traceId);
  state.done++;
  if (failed) state.failed++;
}

// ----------------------------------------------------------------- main
const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });
function deadline(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

async function main() {
  const started = Date.now();
  // last resort: whatever hangs, the process ends
  const watchdogMs = 4 * timeoutMs + 30000 + count * 5;
  setTimeout(() => { failure('watchdog', `still running after ${watchdogMs} ms`); process.exit(1); }, watchdogMs).unref();

  for (let i = 0; i < count; i++) {
    checkout(i);
    if (i % 25 === 24) await sleep(0); // let full batches go out
  }
  if (want.logs) {
    const us = count * TRACE_SPACING_US + 1000;
    log(svc.web, ROOT_CONTEXT, us, SeverityNumber.WARN, `${state.failed} of ${count} checkout(s) failed`, { 'app.failed': state.failed, 'app.total': count });
    log(svc.web, ROOT_CONTEXT, us + 10, SeverityNumber.FATAL, 'e2e run over: shutting down', { 'app.exit.code': 0, 'app.clean': true });
  }
  if (want.metrics) M.finalize();

  const all = Object.values(svc);
  async function step(what, fn) {
    const results = await Promise.allSettled(all.map(fn).filter(Boolean));
    for (const r of results) if (r.status === 'rejected') failure('flush', `${what}: ${describe(r.reason)}`);
  }
  try {
    await deadline((async () => {
      await step('tracer forceFlush', (s) => s.tracerProvider?.forceFlush());
      await step('logger forceFlush', (s) => s.loggerProvider?.forceFlush());
      await step('meter forceFlush', (s) => s.meterProvider?.forceFlush()); // metrics collection 1
      await step('tracer shutdown', (s) => s.tracerProvider?.shutdown());
      await step('logger shutdown', (s) => s.loggerProvider?.shutdown());
      await step('meter shutdown', (s) => s.meterProvider?.shutdown()); // metrics collection 2
    })(), 3 * timeoutMs + 10000, 'flush and shutdown');
  } catch (e) {
    failure('timeout', describe(e));
  }

  // ---- everything made must have been acknowledged by the receiver
  const collections = 2;
  const streamList = [...streams.values()].filter((s) => s.series.size > 0);
  const pointsPerCollection = streamList.reduce((n, s) => n + s.series.size, 0);
  if (want.traces) {
    const lost = spans.filter((s) => !ackedSpans.has(s.spanId));
    if (lost.length) failure('not-acknowledged', `${lost.length} of ${spans.length} span(s) never acknowledged (first: ${lost[0].name} ${lost[0].spanId})`);
  }
  if (want.logs && exportStats.logs.itemsAcked !== logs.length) {
    failure('not-acknowledged', `${exportStats.logs.itemsAcked} log record(s) acknowledged, ${logs.length} emitted`);
  }
  if (want.metrics && exportStats.metrics.itemsAcked !== pointsPerCollection * collections) {
    failure('not-acknowledged', `${exportStats.metrics.itemsAcked} metric data point(s) acknowledged, expected ${pointsPerCollection} x ${collections} collections`);
  }

  const ok = failures.length === 0;
  const packages = {};
  for (const p of ['@opentelemetry/api', '@opentelemetry/api-logs', '@opentelemetry/core', '@opentelemetry/resources',
    '@opentelemetry/sdk-trace-base', '@opentelemetry/sdk-metrics', '@opentelemetry/sdk-logs', '@opentelemetry/otlp-transformer',
    '@opentelemetry/otlp-exporter-base', ...EXPORTERS, ...(protocol === 'grpc' ? ['@grpc/grpc-js'] : [])]) packages[p] = installedVersion(p);
  const manifest = {
    manifestVersion: 1,
    generator: { tool: 'telkit tests/e2e/client/send.mjs', packages },
    params: { seed, count, service: baseService, signals: SIGNAL_NAMES.filter((s) => want[s]), baseTimeUnixNano: baseNs.toString() },
    counts: {
      traces: want.traces ? traceIds.length : 0,
      spans: want.traces ? spans.length : 0,
      metricStreams: want.metrics ? streamList.length : 0,
      metricDataPoints: want.metrics ? pointsPerCollection * collections : 0,
      logRecords: want.logs ? logs.length : 0,
    },
    services: ROLES.map((r) => ({ name: r.name, role: r.role, resource: svc[r.role].resourceAttrs, scope: svc[r.role].scope })),
    traces: want.traces ? { traceIds, spans } : null,
    metrics: want.metrics ? {
      temporality: 'cumulative',
      collections,
      streams: streamList.map(({ series: ser, ...rest }) => ({ ...rest, points: [...ser.values()] })),
    } : null,
    logs: want.logs ? { records: logs } : null,
    run: {
      ok, protocol, endpoint, compression, headers: Object.keys(headers), scrubbedEnv,
      durationMs: Date.now() - started, exported: Object.fromEntries(SIGNAL_NAMES.filter((s) => want[s]).map((s) => [s, exportStats[s]])),
      failures, warnings,
    },
  };
  const text = `${JSON.stringify(manifest, null, 1)}\n`;
  if (opt.manifest === '-') process.stdout.write(text);
  else if (opt.manifest) fs.writeFileSync(opt.manifest, text);

  const st = exportStats;
  process.stderr.write(`send.mjs: ${ok ? 'OK' : 'FAILED'} ${protocol} ${endpoint}: `
    + `spans ${st.traces.itemsAcked}/${manifest.counts.spans}, metric points ${st.metrics.itemsAcked}/${manifest.counts.metricDataPoints}, `
    + `log records ${st.logs.itemsAcked}/${manifest.counts.logRecords} acknowledged/sent, `
    + `${Object.values(st).reduce((n, s) => n + s.exportCalls, 0)} export call(s), ${Date.now() - started} ms\n`);
  return ok ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`send.mjs: FAILURE [crash] ${e?.stack ?? e}\n`);
  process.exit(1);
});
