#!/usr/bin/env node
// Bench: the validation suite's concurrent-load step (`loadTest`, what `concurrency` checks run) against
// autocannon on the same loopback endpoint in the same run. Prints one JSON object as its last line.
//
//   npm run bench                         (in packages/core: builds, then runs this file)
//   BENCH_CONNECTIONS=50 BENCH_DURATION_S=5 BENCH_ROUNDS=2 node bench/validation.mjs
//
// The endpoint is the sample CodeGraph-like service's /health in its own process, so client and server
// do not share an event loop. Rounds alternate (ours, autocannon, ours, ...) to spread drift evenly.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadTest } from '../dist/index.js';

const require = createRequire(import.meta.url);
const autocannon = require('autocannon');

const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const durationS = Number(process.env.BENCH_DURATION_S ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const path = process.env.BENCH_PATH ?? '/health';
const server = fileURLToPath(new URL('../../../examples/sample-service/server.mjs', import.meta.url));

function startService() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [server, '--port', '0', '--version', 'bench'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.once('exit', (code) => reject(new Error(`sample service exited with ${code}`)));
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"listening"'));
      if (line) resolve({ child, port: JSON.parse(line).port });
    });
  });
}

async function ours(url, ms) {
  const r = await loadTest({ url, connections, requests: Number.MAX_SAFE_INTEGER, durationMs: ms });
  return {
    rps: r.requests / (r.durationMs / 1000),
    errors: r.errors,
    requests: r.requests,
    latency: r.latencyMs,
  };
}

async function theirs(url, ms) {
  const r = await autocannon({ url, connections, duration: ms / 1000, pipelining: 1 });
  return {
    rps: r.requests.total / r.duration,
    errors: r.errors + r.timeouts + r.non2xx,
    requests: r.requests.total,
    latency: {
      p50: r.latency.p50,
      p90: r.latency.p90,
      p99: r.latency.p99,
      max: r.latency.max,
      mean: r.latency.mean,
    },
  };
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const round = (v, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
const pick = (runs, key) => round(mean(runs.map((r) => r.latency[key])), 2);

const { child, port } = await startService();
const url = `http://127.0.0.1:${port}${path}`;
try {
  await ours(url, 1000); // warm-up: JIT, sockets, the service's caches
  await theirs(url, 1000);
  const a = [];
  const b = [];
  for (let i = 0; i < rounds; i++) {
    a.push(await ours(url, durationS * 1000));
    b.push(await theirs(url, durationS * 1000));
    process.stderr.write(
      `round ${i + 1}: loadTest ${round(a[i].rps)} rps, autocannon ${round(b[i].rps)} rps\n`,
    );
  }
  const loadRps = mean(a.map((r) => r.rps));
  const acRps = mean(b.map((r) => r.rps));
  const result = {
    bench: 'validation-concurrency',
    endpoint: `GET ${path} (sample service, loopback, own process)`,
    connections,
    duration_s: durationS,
    rounds,
    load_rps: round(loadRps),
    autocannon_rps: round(acRps),
    load_rps_vs_autocannon: round(loadRps / acRps, 3),
    load_latency_ms: { p50: pick(a, 'p50'), p90: pick(a, 'p90'), p99: pick(a, 'p99'), max: pick(a, 'max') },
    autocannon_latency_ms: {
      p50: pick(b, 'p50'),
      p90: pick(b, 'p90'),
      p99: pick(b, 'p99'),
      max: pick(b, 'max'),
    },
    load_errors: a.reduce((n, r) => n + r.errors, 0),
    autocannon_errors: b.reduce((n, r) => n + r.errors, 0),
    node: process.version,
    cpus: os.cpus().length,
  };
  console.log(JSON.stringify(result));
} finally {
  child.removeAllListeners('exit');
  child.kill('SIGTERM');
}
