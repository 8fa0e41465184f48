// otlp-json.mjs - protobufjs view of the project's OTLP protos (common/proto),
// and conversions between
// decoded protobuf messages and the OTLP/JSON encoding (the form tel-cat prints).
//
// OTLP/JSON as produced here (OTLP spec, "JSON Protobuf Encoding"):
//   * keys are lowerCamelCase field names;
//   * trace_id / span_id / parent_span_id are lowercase hex, other bytes base64;
//   * 64-bit integers are decimal strings, 32-bit integers and doubles numbers
//     (non-finite doubles "NaN" / "Infinity" / "-Infinity");
//   * enums are integers;
//   * fields with implicit presence and a default value (0, "", false, empty
//     bytes, enum 0) are omitted, as are empty repeated fields; members of a
//     oneof and proto3 `optional` fields are kept when set, even if zero.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const protobuf = require('protobufjs');

const HERE = path.dirname(fileURLToPath(import.meta.url));
// The same .proto files the C++ code is generated from: one schema, no copy.
const PROTO_DIR = path.resolve(HERE, '../../../common/proto');
export const root = new protobuf.Root();
root.resolvePath = (origin, target) => path.join(PROTO_DIR, target);
root.loadSync(['trace', 'metrics', 'logs'].map((s) => `opentelemetry/proto/collector/${s}/v1/${s}_service.proto`));
root.resolveAll();

const SERVICE_PACKAGE = { Trace: 'trace', Metrics: 'metrics', Logs: 'logs' };
const T = (n) => root.lookupType(`opentelemetry.proto.collector.${SERVICE_PACKAGE[n.match(/^Export(\w+?)Service/)[1]]}.v1.${n}`);
export const SIGNALS = {
  traces: {
    Request: T('ExportTraceServiceRequest'), Response: T('ExportTraceServiceResponse'), rejectedField: 'rejectedSpans',
    grpcPath: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', httpPath: '/v1/traces',
    officialRequest: 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest',
  },
  metrics: {
    Request: T('ExportMetricsServiceRequest'), Response: T('ExportMetricsServiceResponse'), rejectedField: 'rejectedDataPoints',
    grpcPath: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export', httpPath: '/v1/metrics',
    officialRequest: 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest',
  },
  logs: {
    Request: T('ExportLogsServiceRequest'), Response: T('ExportLogsServiceResponse'), rejectedField: 'rejectedLogRecords',
    grpcPath: '/opentelemetry.proto.collector.logs.v1.LogsService/Export', httpPath: '/v1/logs',
    officialRequest: 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest',
  },
};

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const isIdField = (f) => f.type === 'bytes' && f.name !== 'bytesValue';
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

function scalarIsDefault(f, v) {
  if (f.type === 'bytes') return v.length === 0;
  if (LONG_TYPES.has(f.type)) return typeof v === 'object' ? v.isZero() : Number(v) === 0;
  return v === 0 || v === '' || v === false;
}

function scalarToJson(f, v) {
  if (f.resolvedType instanceof protobuf.Enum) return Number(v);
  if (f.type === 'bytes') return isIdField(f) ? Buffer.from(v).toString('hex') : Buffer.from(v).toString('base64');
  if (LONG_TYPES.has(f.type)) return v.toString();
  if (f.type === 'double' || f.type === 'float') {
    if (Number.isFinite(v)) return v;
    return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  }
  return v;
}

/** Decoded protobufjs message -> OTLP/JSON object. */
export function toOtlpJson(type, msg) {
  const out = {};
  for (const f of type.fieldsArray) {
    if (!has(msg, f.name)) continue;
    const v = msg[f.name];
    if (v === null || v === undefined) continue;
    const isMsg = f.resolvedType instanceof protobuf.Type;
    if (f.repeated) {
      if (v.length === 0) continue;
      out[f.name] = v.map((x) => (isMsg ? toOtlpJson(f.resolvedType, x) : scalarToJson(f, x)));
      continue;
    }
    if (isMsg) { out[f.name] = toOtlpJson(f.resolvedType, v); continue; }
    const explicitPresence = f.partOf !== null && f.partOf !== undefined; // oneof member or proto3 optional
    if (!explicitPresence && scalarIsDefault(f, v)) continue;
    out[f.name] = scalarToJson(f, v);
  }
  return out;
}

const snake = (s) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

// OTLP/JSON object -> plain object that protobufjs fromObject() accepts
// (ids hex -> base64; snake_case keys accepted as well as lowerCamelCase).
function prepare(type, obj) {
  if (obj === null || typeof obj !== 'object') return obj;
  const out = {};
  for (const f of type.fieldsArray) {
    let v = has(obj, f.name) ? obj[f.name] : obj[snake(f.name)];
    if (v === undefined || v === null) continue;
    const conv = (x) => {
      if (f.resolvedType instanceof protobuf.Type) return prepare(f.resolvedType, x);
      if (isIdField(f) && typeof x === 'string') {
        if (!/^([0-9a-fA-F]{2})*$/.test(x)) throw new Error(`${type.name}.${f.name}: not hex: ${JSON.stringify(x)}`);
        return Buffer.from(x, 'hex').toString('base64');
      }
      if ((f.type === 'double' || f.type === 'float') && typeof x === 'string') return Number(x);
      return x;
    };
    out[f.name] = f.repeated ? (Array.isArray(v) ? v.map(conv) : v) : conv(v);
  }
  return out;
}

/** OTLP/JSON object (as an SDK sends it over HTTP/JSON) -> protobufjs message. */
export function fromOtlpJson(type, obj) {
  const msg = type.fromObject(prepare(type, obj));
  const err = type.verify(msg);
  if (err) throw new Error(`invalid ${type.name}: ${err}`);
  return msg;
}
