#!/usr/bin/env node
// demo.mjs - starts the three demo services (frontend -> orders -> inventory,
// each its own process with its own OpenTelemetry SDK) and drives the
// frontend with checkouts for a bounded time, then stops them (they flush
// their telemetry on the way out) and prints what the load saw.
//   node demo.mjs [--duration SECONDS] [--rate PER_SECOND]
// Telemetry goes to OTEL_EXPORTER_OTLP_ENDPOINT (default
// http://127.0.0.1:4318, telkit's otlp-recv). Defaults: 20 s at 20/s.
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = { duration: 20, rate: 20 };
for (let i = 0; i < args.length; i += 2) {
  const key = args[i].replace(/^--/, '');
  const v = Number(args[i + 1]);
  if (!(key in opt) || !(v > 0) || v > 3600) {
    process.stderr.write('usage: node demo.mjs [--duration SECONDS (1-3600)] [--rate PER_SECOND (1-3600)]\n');
    process.exit(2);
  }
  opt[key] = v;
}

const children = [];
// start(role, downstream): spawns a service and waits for its port.
function start(role, downstream) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(HERE, 'service.mjs'), role, ...(downstream ? [downstream] : [])],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const timer = setTimeout(() => reject(new Error(`${role} did not start within 10 s`)), 10000);
    child.stdout.on('data', (d) => {
      const m = /listening (\d+)/.exec(String(d));
      if (m) { clearTimeout(timer); resolve(`http://127.0.0.1:${m[1]}`); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${role} exited with ${code}`)); });
  });
}

function get(url) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    http.get(url, { timeout: 10000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Date.now() - t0 }));
    }).on('error', () => resolve({ status: 0, ms: Date.now() - t0 }));
  });
}

async function main() {
  const inventory = await start('inventory');
  const orders = await start('orders', inventory);
  const frontend = await start('frontend', orders);
  process.stdout.write(`demo: frontend ${frontend} -> orders ${orders} -> inventory ${inventory}; ` +
    `${opt.rate} checkouts/s for ${opt.duration} s\n`);
  const statuses = {};
  const latencies = [];
  const pending = [];
  const end = Date.now() + opt.duration * 1000;
  for (let n = 0; Date.now() < end; n++) {
    pending.push(get(`${frontend}/checkout?item=${n % 25}`).then((r) => {
      statuses[r.status] = (statuses[r.status] || 0) + 1;
      latencies.push(r.ms);
    }));
    await new Promise((r) => { setTimeout(r, 1000 / opt.rate); });
  }
  await Promise.all(pending);
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  process.stdout.write(`demo: ${latencies.length} checkouts, status ${JSON.stringify(statuses)}, ` +
    `p50 ${q(0.5)} ms, p99 ${q(0.99)} ms\n`);
}

let failed = false;
try {
  await main();
} catch (err) {
  process.stderr.write(`demo: ${err.message}\n`);
  failed = true;
}
// Stop the services; each flushes its spans, metrics and logs first.
await Promise.all(children.filter((c) => c.exitCode === null).map((c) => new Promise((resolve) => {
  const kill = setTimeout(() => c.kill('SIGKILL'), 10000);
  c.on('exit', () => { clearTimeout(kill); resolve(); });
  c.kill('SIGTERM');
})));
process.exit(failed ? 1 : 0);
