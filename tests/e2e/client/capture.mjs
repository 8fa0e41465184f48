#!/usr/bin/env node
// capture.mjs - tiny OTLP receiver for the self-test of send.mjs / check.mjs.
// Not part of telkit: it stands in for `otlp-recv | tel-cat --json` so that the
// test client can be tested on its own.
//
//   OTLP/HTTP  POST /v1/{traces,metrics,logs}, application/x-protobuf or
//              application/json, optional Content-Encoding gzip/deflate
//   OTLP/gRPC  opentelemetry.proto.collector.{trace,metrics,logs}.v1.*Service/Export
//
// Requests are decoded with protobufjs against the project's common/proto (JSON requests are
// parsed and normalised through the same schema) and written to --out as
// tel-cat JSON lines: one {"stream":{...}} header, then one frame per request
//   {"seq":"1","time":"<unix ns>","signal":"traces","flags":0,"payload":{<OTLP/JSON>}}

import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { SIGNALS, toOtlpJson, fromOtlpJson } from './otlp-json.mjs';

const require = createRequire(import.meta.url);

const USAGE = `Usage: node capture.mjs --out FILE [options]
  --host H              listen address (default 127.0.0.1)
  --http-port P         OTLP/HTTP port; 0 = any free port (default 0); -1 = off
  --grpc-port P         OTLP/gRPC port; 0 = any free port (default 0); -1 = off
  --out FILE            tel-cat style JSON lines (required)
  --requests-log FILE   one JSON line per request: transport, signal, headers, encoding, size, error
  --raw-dir DIR         save every protobuf request body (decompressed) as DIR/<seq>-<signal>-<transport>.bin
  --http-status N       answer every HTTP export with status N (failure tests); nothing is stored
  --grpc-status N       answer every gRPC export with gRPC status code N (failure tests); nothing is stored
  --partial-reject N    answer with partial_success rejecting N items (the request is still stored)
  --max-seconds S       exit by itself after S seconds (default 120)
Prints "READY http=<port> grpc=<port>" once listening; stops on SIGTERM/SIGINT.`;

function die(msg) { process.stderr.write(`capture.mjs: ${msg}\n${USAGE}\n`); process.exit(2); }
const opt = { host: '127.0.0.1', 'http-port': '0', 'grpc-port': '0', 'max-seconds': '120' };
const KNOWN = ['host', 'http-port', 'grpc-port', 'out', 'requests-log', 'raw-dir', 'http-status', 'grpc-status', 'partial-reject', 'max-seconds'];
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--help') { process.stdout.write(`${USAGE}\n`); process.exit(0); }
  const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(a);
  if (!m || !KNOWN.includes(m[1])) die(`unknown argument ${a}`);
  const v = m[2] ?? process.argv[++i];
  if (v === undefined) die(`--${m[1]} needs a value`);
  opt[m[1]] = v;
}
if (!opt.out) die('--out is required');
const intOpt = (k) => { const n = Number(opt[k] ?? 0); if (!Number.isInteger(n)) die(`--${k} must be an integer`); return n; };
const httpPort = intOpt('http-port');
const grpcPort = intOpt('grpc-port');
const httpStatus = intOpt('http-status');
const grpcStatus = intOpt('grpc-status');
const partialReject = intOpt('partial-reject');
const maxSeconds = intOpt('max-seconds');
if (opt['raw-dir']) fs.mkdirSync(opt['raw-dir'], { recursive: true });

const outFd = fs.openSync(opt.out, 'w');
const reqFd = opt['requests-log'] ? fs.openSync(opt['requests-log'], 'w') : null;
// same header as `tel-cat` prints (docs/format/stream.md, "JSON lines"), so `tel-cat --from-json` can read this file
const writerId = Buffer.from(Array.from({ length: 8 }, () => Math.floor(Math.random() * 256))).toString('hex');
fs.writeSync(outFd, `${JSON.stringify({ stream: { version: 1, writerId } })}\n`);

let seq = 0;
const totals = { requests: 0, frames: 0, errors: 0 };
function nowNs() { return (BigInt(Date.now()) * 1000000n).toString(); }
function logRequest(rec) { if (reqFd !== null) fs.writeSync(reqFd, `${JSON.stringify(rec)}\n`); }

function countItems(signal, payload) {
  let n = 0;
  if (signal === 'traces') for (const r of payload.resourceSpans ?? []) for (const s of r.scopeSpans ?? []) n += (s.spans ?? []).length;
  if (signal === 'logs') for (const r of payload.resourceLogs ?? []) for (const s of r.scopeLogs ?? []) n += (s.logRecords ?? []).length;
  if (signal === 'metrics') {
    for (const r of payload.resourceMetrics ?? []) for (const s of r.scopeMetrics ?? []) for (const m of s.metrics ?? []) {
      const d = m.gauge ?? m.sum ?? m.histogram ?? m.exponentialHistogram ?? m.summary;
      n += (d?.dataPoints ?? []).length;
    }
  }
  return n;
}

// Store one decoded request; returns the partial-success object to answer with, or null.
function store(signal, message, transport, rawBody) {
  const sig = SIGNALS[signal];
  const payload = toOtlpJson(sig.Request, message);
  const mySeq = ++seq;
  fs.writeSync(outFd, `${JSON.stringify({ seq: String(mySeq), time: nowNs(), signal, flags: 0, payload })}\n`);
  totals.frames++;
  if (rawBody && opt['raw-dir']) {
    fs.writeFileSync(path.join(opt['raw-dir'], `${String(mySeq).padStart(4, '0')}-${signal}-${transport}.bin`), rawBody);
  }
  const items = countItems(signal, payload);
  if (partialReject > 0) {
    const n = Math.min(partialReject, items);
    return { [sig.rejectedField]: n, errorMessage: `capture.mjs: rejected ${n} item(s) (--partial-reject)` };
  }
  return { seq: mySeq, items };
}

// ------------------------------------------------------------------ HTTP
const HTTP_SIGNALS = Object.fromEntries(Object.entries(SIGNALS).map(([s, v]) => [v.httpPath, s]));
const MAX_BODY = 32 * 1024 * 1024;

function onHttp(req, res) {
  totals.requests++;
  const chunks = [];
  let size = 0;
  let aborted = false;
  const urlPath = (req.url ?? '').split('?')[0];
  const signal = HTTP_SIGNALS[urlPath];
  const ctype = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  const cenc = String(req.headers['content-encoding'] ?? '').trim().toLowerCase();
  const rec = { transport: 'http', signal: signal ?? null, path: urlPath, contentType: ctype, contentEncoding: cenc, headers: req.headers };
  const reply = (status, type, body, error) => {
    if (error) { totals.errors++; rec.error = error; process.stderr.write(`capture.mjs: HTTP ${status}: ${error}\n`); }
    rec.status = status;
    logRequest(rec);
    res.writeHead(status, { 'content-type': type, 'content-length': body.length });
    res.end(body);
  };
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY && !aborted) { aborted = true; reply(413, 'text/plain', Buffer.from('too large\n'), 'body too large'); req.destroy(); }
    else if (!aborted) chunks.push(c);
  });
  req.on('error', () => {});
  req.on('end', () => {
    if (aborted) return;
    if (req.method !== 'POST' || !signal) return reply(404, 'text/plain', Buffer.from('not found\n'), `no OTLP endpoint at ${req.method} ${urlPath}`);
    let body = Buffer.concat(chunks);
    rec.wireBytes = body.length;
    try {
      if (cenc === 'gzip') body = zlib.gunzipSync(body);
      else if (cenc === 'deflate') body = zlib.inflateSync(body);
      else if (cenc && cenc !== 'identity') return reply(415, 'text/plain', Buffer.from('bad encoding\n'), `unsupported content-encoding ${cenc}`);
    } catch (e) { return reply(400, 'text/plain', Buffer.from('bad body\n'), `cannot decompress: ${e.message}`); }
    rec.bytes = body.length;
    const sig = SIGNALS[signal];
    const isJson = ctype === 'application/json';
    if (!isJson && ctype !== 'application/x-protobuf') {
      return reply(415, 'text/plain', Buffer.from('unsupported media type\n'), `unsupported content-type '${ctype}'`);
    }
    if (httpStatus) return reply(httpStatus, 'text/plain', Buffer.from(`capture.mjs: forced status ${httpStatus}\n`), null);
    let message;
    try {
      message = isJson ? fromOtlpJson(sig.Request, JSON.parse(body.toString('utf8'))) : sig.Request.decode(body);
    } catch (e) { return reply(400, 'text/plain', Buffer.from('cannot decode\n'), `cannot decode ${signal} ${ctype}: ${e.message}`); }
    let ps;
    try { ps = store(signal, message, isJson ? 'http-json' : 'http-protobuf', isJson ? null : body); } catch (e) {
      return reply(500, 'text/plain', Buffer.from('store failed\n'), `cannot store: ${e.stack}`);
    }
    rec.seq = ps.seq; rec.items = ps.items;
    const partial = ps.seq === undefined ? ps : null;
    if (isJson) {
      reply(200, 'application/json', Buffer.from(JSON.stringify(partial ? { partialSuccess: { ...partial, [sig.rejectedField]: String(partial[sig.rejectedField]) } } : {})));
    } else {
      reply(200, 'application/x-protobuf', Buffer.from(sig.Response.encode(sig.Response.fromObject(partial ? { partialSuccess: partial } : {})).finish()));
    }
  });
}

// ------------------------------------------------------------------ gRPC
async function startGrpc() {
  // grpc-js removes grpc-encoding from the metadata it hands to handlers; to see
  // whether the client compressed, note the HTTP/2 request headers of every stream.
  const http2 = require('node:http2');
  const createServer = http2.createServer;
  http2.createServer = (...a) => {
    const server = createServer(...a);
    server.on('stream', (stream, h) => logRequest({ transport: 'grpc-http2', path: h[':path'], grpcEncoding: h['grpc-encoding'] ?? '' }));
    return server;
  };
  const grpc = require('@grpc/grpc-js');
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_BODY });
  for (const [signal, sig] of Object.entries(SIGNALS)) {
    const definition = {
      Export: {
        path: sig.grpcPath, requestStream: false, responseStream: false,
        requestSerialize: (b) => b, requestDeserialize: (b) => b,
        responseSerialize: (b) => b, responseDeserialize: (b) => b,
      },
    };
    server.addService(definition, {
      Export(call, callback) {
        totals.requests++;
        const headers = call.metadata.getMap();
        const rec = { transport: 'grpc', signal, path: sig.grpcPath, contentEncoding: String(headers['grpc-encoding'] ?? ''), headers, bytes: call.request.length };
        if (grpcStatus) {
          rec.status = grpcStatus; logRequest(rec);
          return callback({ code: grpcStatus, details: `capture.mjs: forced gRPC status ${grpcStatus}` });
        }
        let ps;
        try {
          ps = store(signal, sig.Request.decode(call.request), 'grpc', call.request);
        } catch (e) {
          totals.errors++; rec.error = `cannot decode ${signal}: ${e.message}`; rec.status = 3; logRequest(rec);
          process.stderr.write(`capture.mjs: gRPC: ${rec.error}\n`);
          return callback({ code: grpc.status.INVALID_ARGUMENT, details: rec.error });
        }
        rec.status = 0; rec.seq = ps.seq; rec.items = ps.items; logRequest(rec);
        const partial = ps.seq === undefined ? ps : null;
        callback(null, Buffer.from(sig.Response.encode(sig.Response.fromObject(partial ? { partialSuccess: partial } : {})).finish()));
      },
    });
  }
  const port = await new Promise((resolve, reject) => {
    server.bindAsync(`${opt.host}:${grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return { server, port };
}

async function main() {
  let httpServer = null;
  let grpcServer = null;
  let hp = -1;
  let gp = -1;
  if (httpPort >= 0) {
    httpServer = http.createServer(onHttp);
    httpServer.keepAliveTimeout = 5000;
    await new Promise((resolve, reject) => { httpServer.once('error', reject); httpServer.listen(httpPort, opt.host, resolve); });
    hp = httpServer.address().port;
  }
  if (grpcPort >= 0) ({ server: grpcServer, port: gp } = await startGrpc());
  process.stdout.write(`READY http=${hp} grpc=${gp}\n`);

  let stopping = false;
  const stop = (why) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`SUMMARY requests=${totals.requests} frames=${totals.frames} errors=${totals.errors} (${why})\n`);
    const hard = setTimeout(() => process.exit(0), 2000);
    hard.unref();
    if (grpcServer) grpcServer.forceShutdown();
    if (httpServer) { httpServer.closeAllConnections?.(); httpServer.close(() => process.exit(0)); } else process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (maxSeconds > 0) setTimeout(() => stop(`--max-seconds ${maxSeconds}`), maxSeconds * 1000).unref();
  // keep the process alive while servers are open; the max-seconds timer is unref'd
}

main().catch((e) => { process.stderr.write(`capture.mjs: ${e.stack ?? e}\n`); process.exit(1); });
