// service.mjs - one demo service, an HTTP server on 127.0.0.1 (an ephemeral
// port, printed as "listening PORT" on stdout):
//   node service.mjs frontend  DOWNSTREAM_URL   GET /checkout?item=N -> POST orders /orders
//   node service.mjs orders    DOWNSTREAM_URL   POST /orders?item=N  -> GET inventory /stock/N
//   node service.mjs inventory                  GET /stock/N: 10% slow (0.3-0.9 s), 5% fail (500)
// orders fails 3% of its requests itself (503, "payment declined").
// Every request is a SERVER span (the W3C traceparent header continues the
// caller's trace), every call a CLIENT span; a duration histogram and a log
// record (with the trace context) a request. SIGTERM flushes and exits.
import http from 'node:http';
import { api, apiLogs, startTelemetry } from './telemetry.mjs';

const [role, downstream] = process.argv.slice(2);
if (!['frontend', 'orders', 'inventory'].includes(role) || (role !== 'inventory' && !downstream)) {
  process.stderr.write('usage: node service.mjs frontend|orders URL | inventory\n');
  process.exit(2);
}
const { tracer, meter, logger, shutdown } = startTelemetry(role);
const duration = meter.createHistogram('http.server.request.duration', {
  unit: 's', description: 'Duration of HTTP server requests',
  advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] },
});
const business = meter.createCounter(`demo.${role}.operations`, { description: `${role} operations by outcome` });
const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

function log(severity, body, attributes) {
  logger.emit({
    severityNumber: severity === 'ERROR' ? apiLogs.SeverityNumber.ERROR
      : severity === 'WARN' ? apiLogs.SeverityNumber.WARN : apiLogs.SeverityNumber.INFO,
    severityText: severity, body, attributes,
  });
}

// call(method, url): an HTTP call inside a CLIENT span, traceparent injected.
function call(method, url) {
  const u = new URL(url);
  return tracer.startActiveSpan(`${method}`, {
    kind: api.SpanKind.CLIENT,
    attributes: { 'http.request.method': method, 'server.address': u.hostname, 'server.port': Number(u.port),
      'url.full': url, 'peer.service': role === 'frontend' ? 'orders' : 'inventory' },
  }, (span) => new Promise((resolve) => {
    const headers = {};
    api.propagation.inject(api.context.active(), headers);
    const req = http.request(u, { method, headers, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        span.setAttribute('http.response.status_code', res.statusCode);
        if (res.statusCode >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR, message: `HTTP ${res.statusCode}` });
        span.end();
        resolve({ status: res.statusCode, body });
      });
    });
    req.on('error', (err) => {
      span.recordException(err);
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: err.message });
      span.end();
      resolve({ status: 599, body: err.message });
    });
    req.end();
  }));
}

// handle(route, url): the service's own work; returns [status, body].
async function handle(route, url) {
  const item = url.searchParams.get('item') || url.pathname.split('/').pop();
  const span = api.trace.getActiveSpan();
  span?.setAttribute('demo.item', item);
  if (role === 'frontend') {
    const r = await call('POST', `${downstream}/orders?item=${item}`);
    if (r.status >= 500) {
      log('ERROR', `checkout of item ${item} failed: orders answered ${r.status}`, { 'demo.item': item });
      return [502, `checkout failed: ${r.body}\n`];
    }
    log('INFO', `checkout of item ${item} done`, { 'demo.item': item });
    return [200, `ordered item ${item}\n`];
  }
  if (role === 'orders') {
    const r = await call('GET', `${downstream}/stock/${item}`);
    if (r.status >= 500) {
      log('WARN', `no stock answer for item ${item}: ${r.status}`, { 'demo.item': item });
      return [503, `inventory unavailable\n`];
    }
    if (Math.random() < 0.03) {
      log('ERROR', `payment declined for item ${item}`, { 'demo.item': item });
      return [503, 'payment declined\n'];
    }
    log('INFO', `order placed for item ${item}`, { 'demo.item': item });
    return [201, `order for item ${item}\n`];
  }
  // inventory
  const roll = Math.random();
  if (roll < 0.10) await sleep(300 + Math.random() * 600);  // a slow lookup
  else await sleep(2 + Math.random() * 10);
  if (roll > 0.95) {
    log('ERROR', `stock lookup failed for item ${item}: database timeout`, { 'demo.item': item });
    return [500, 'database timeout\n'];
  }
  log('INFO', `stock of item ${item}: ${Math.floor(Math.random() * 100)}`, { 'demo.item': item });
  return [200, 'in stock\n'];
}

const ROUTES = { frontend: ['GET', '/checkout'], orders: ['POST', '/orders'], inventory: ['GET', '/stock/:item'] };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const [method, route] = ROUTES[role];
  const started = process.hrtime.bigint();
  const parent = api.propagation.extract(api.context.active(), req.headers);
  api.context.with(parent, () => tracer.startActiveSpan(`${method} ${route}`, {
    kind: api.SpanKind.SERVER,
    attributes: { 'http.request.method': req.method, 'http.route': route, 'url.path': url.pathname },
  }, async (span) => {
    let status = 404, body = 'not found\n';
    if (req.method === method && url.pathname.startsWith(route.replace('/:item', ''))) {
      [status, body] = await handle(route, url);
    }
    span.setAttribute('http.response.status_code', status);
    if (status >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR, message: `HTTP ${status}` });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const attrs = { 'http.request.method': req.method, 'http.route': route, 'http.response.status_code': status };
    duration.record(seconds, attrs);
    business.add(1, { outcome: status < 400 ? 'ok' : 'error' });
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(body);
    span.end();
  }));
});
server.listen(0, '127.0.0.1', () => { process.stdout.write(`listening ${server.address().port}\n`); });
process.on('SIGTERM', async () => {
  server.close();
  await shutdown();
  process.exit(0);
});
