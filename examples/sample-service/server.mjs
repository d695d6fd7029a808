#!/usr/bin/env node
// A CodeGraph-like HTTP service (`codegraph-api`) with switchable faults, for demos and tests of the
// release SDK. Run: node examples/sample-service/server.mjs --port 0 --version v2
import { execFile } from 'node:child_process';
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import path from 'node:path';
import client from 'prom-client';
import { parseConfig, parseValue, runtimeFaults, UsageError } from './config.mjs';

let config;
try {
  config = parseConfig(process.argv.slice(2), process.env);
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`sample-service: ${err.message}\n`);
  process.exit(2);
}

if (config.crashOnStart) {
  process.stderr.write('sample-service: crashing on start (FAULT_CRASH_ON_START)\n');
  process.exit(1);
}

const startedAt = Date.now();
const faults = {
  latencyMs: config.latencyMs,
  errorRate: config.errorRate,
  cacheHitRatio: config.cacheHitRatio,
  missingHeaders: config.missingHeaders,
};
const state = { indexing: 'running', faultedRequests: 0, shuttingDown: false };

// Metrics ------------------------------------------------------------------------------------------
const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });
const duration = new client.Histogram({
  name: 'http_request_duration_seconds',
  help: 'HTTP request duration in seconds',
  labelNames: ['method', 'route', 'status'],
  // Fine around 5..100 ms so p95/p99 against a 50 ms target are meaningful.
  buckets: [
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1,
  ].concat([0.15, 0.2, 0.3, 0.5, 1, 2.5, 5]),
  registers: [registry],
});
const requests = new client.Counter({
  name: 'http_requests_total',
  help: 'HTTP requests answered',
  labelNames: ['method', 'route', 'code'],
  registers: [registry],
});
const inFlight = new client.Gauge({
  name: 'http_requests_in_flight',
  help: 'Requests being served now (scrapes of /metrics excluded)',
  registers: [registry],
});
const cacheHit = new client.Gauge({
  name: 'cache_hit_ratio',
  help: 'Share of lookups served from the cache',
  registers: [registry],
  collect() {
    this.set(faults.cacheHitRatio);
  },
});
cacheHit.set(faults.cacheHitRatio);
new client.Gauge({
  name: 'codegraph_build_info',
  help: 'Build information; always 1',
  labelNames: ['version'],
  registers: [registry],
}).set({ version: config.version }, 1);

// Security headers (OWASP secure headers project) --------------------------------------------------
const securityHeaders = {
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'permissions-policy': 'geolocation=(), camera=(), microphone=()',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

// Helpers ------------------------------------------------------------------------------------------
const sha = (s) => createHash('sha256').update(s).digest();

/** 'ok' | 'missing' | 'wrong'; compares digests in constant time so the key does not leak by timing. */
function authorize(req) {
  const header = req.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header) : null;
  if (!m) return 'missing';
  if (!config.apiKey) return 'wrong';
  return timingSafeEqual(sha(m[1].trim()), sha(config.apiKey)) ? 'ok' : 'wrong';
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(text);
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1 << 20) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
  } catch {
    throw Object.assign(new Error('request body is not valid JSON'), { status: 400 });
  }
}

/** Deterministic error injection: exactly `errorRate` of eligible requests fail, spread evenly. */
function shouldFail() {
  const n = state.faultedRequests++;
  return Math.floor((n + 1) * faults.errorRate) > Math.floor(n * faults.errorRate);
}

const symbols = ['GraphBuilder', 'parse_file', 'VectorIndex', 'RocksStore', 'embed_chunk', 'QueryPlanner'];
function search(q) {
  const h = sha(q);
  return Array.from({ length: 3 + (h[0] % 3) }, (_, i) => {
    const name = symbols[(h[i + 1] + i) % symbols.length];
    return {
      id: h.subarray(i, i + 4).toString('hex'),
      symbol: `${name}${i === 0 ? '' : `_${i}`}`,
      file: `crates/codegraph-core/src/${name.toLowerCase()}.rs`,
      line: 10 + h[i + 5],
      score: Number((1 - i * 0.1 - (h[i + 9] % 10) / 1000).toFixed(3)),
    };
  });
}

const graphqlFields = {
  version: () => config.version,
  health: () => 'healthy',
  uptime: () => Math.round((Date.now() - startedAt) / 1000),
  indexing: () => state.indexing,
};

function graphql(body) {
  const query = typeof body?.query === 'string' ? body.query.trim() : '';
  const m = /^(?:query\s*\w*\s*)?\{([\s\w,]*)\}$/.exec(query);
  if (!m)
    return {
      status: 400,
      body: { errors: [{ message: 'Syntax Error: expected a query like { version }' }] },
    };
  const fields = m[1].split(/[\s,]+/).filter(Boolean);
  const unknown = fields.filter((f) => !(f in graphqlFields));
  if (unknown.length > 0 || fields.length === 0) {
    const errors = unknown.map((f) => ({ message: `Cannot query field "${f}" on type "Query".` }));
    return { status: 200, body: { errors: errors.length ? errors : [{ message: 'Empty selection' }] } };
  }
  return { status: 200, body: { data: Object.fromEntries(fields.map((f) => [f, graphqlFields[f]()])) } };
}

function runLdb(args) {
  return new Promise((resolve) => {
    execFile(config.ldb, args, { timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ ok: !error && !/^Failed/m.test(stdout + stderr), output: `${stdout}${stderr}`.trim() });
    });
  });
}

async function checkpoint(req, res) {
  if (!config.dataDir) return send(res, 501, { error: 'no data directory configured (--data-dir)' });
  const body = await readJson(req);
  const target = body?.path;
  if (typeof target !== 'string' || !path.isAbsolute(target)) {
    return send(res, 400, { error: 'body must be {"path": "/absolute/dir"}' });
  }
  const exists = await access(target).then(
    () => true,
    () => false,
  );
  if (exists) return send(res, 409, { error: `checkpoint directory already exists: ${target}` });
  const started = Date.now();
  const result = await runLdb([`--db=${config.dataDir}`, 'checkpoint', `--checkpoint_dir=${target}`]);
  if (!result.ok)
    return send(res, 500, { error: 'ldb checkpoint failed', output: result.output.slice(-2000) });
  const files = await readdir(target);
  return send(res, 201, { path: target, files, durationMs: Date.now() - started });
}

// Routes -------------------------------------------------------------------------------------------
// Each route: [method, path, protected?, faultable?, handler]. Faultable routes honour FAULT_ERROR_RATE.
const routes = [
  ['GET', '/health', false, false, (_req, res) => send(res, 200, health())],
  ['GET', '/metrics', false, false, metrics],
  ['GET', '/api/v1/search', false, true, searchRoute],
  ['POST', '/graphql', false, true, async (req, res) => reply(res, graphql(await readJson(req)))],
  ['GET', '/api/v1/protected', true, true, (_req, res) => send(res, 200, { ok: true, scope: 'admin' })],
  ['POST', '/api/v1/admin/checkpoint', true, false, checkpoint],
  ['POST', '/api/v1/admin/indexing/pause', true, false, (_q, r) => indexing(r, 'paused')],
  ['POST', '/api/v1/admin/indexing/resume', true, false, (_q, r) => indexing(r, 'running')],
  ['POST', '/admin/faults', true, false, setFaults],
];

function health() {
  const uptime = Number(((Date.now() - startedAt) / 1000).toFixed(3));
  return {
    status: 'healthy',
    version: config.version,
    uptime_s: uptime,
    indexing: state.indexing,
    pid: process.pid,
  };
}

async function metrics(_req, res) {
  res.writeHead(200, { 'content-type': registry.contentType });
  res.end(await registry.metrics());
}

function searchRoute(req, res) {
  const q = new URL(req.url, 'http://x').searchParams.get('q');
  if (!q) return send(res, 400, { error: 'query parameter q is required' });
  return send(res, 200, { query: q, version: config.version, results: search(q) });
}

function reply(res, { status, body }) {
  send(res, status, body);
}

function indexing(res, value) {
  state.indexing = value;
  send(res, 200, { indexing: value });
}

async function setFaults(req, res) {
  const body = await readJson(req);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return send(res, 400, { error: 'body must be a JSON object' });
  }
  const next = {};
  for (const [key, value] of Object.entries(body)) {
    if (!(key in runtimeFaults)) return send(res, 400, { error: `unknown fault ${key}` });
    try {
      next[key] = parseValue(runtimeFaults[key], value, key);
    } catch (err) {
      return send(res, 400, { error: err.message });
    }
  }
  Object.assign(faults, next);
  if ('errorRate' in next) state.faultedRequests = 0;
  send(res, 200, { faults });
}

async function handle(req, res) {
  const started = process.hrtime.bigint();
  const pathname = new URL(req.url ?? '/', 'http://x').pathname;
  const route = routes.find((r) => r[1] === pathname);
  const label = route ? route[1] : 'unmatched';
  for (const [name, value] of Object.entries(securityHeaders)) {
    if (!faults.missingHeaders.includes(name)) res.setHeader(name, value);
  }
  res.setHeader('x-codegraph-version', config.version);
  if (req.httpVersionMajor === 1) {
    if (state.shuttingDown) res.setHeader('connection', 'close');
    else openResponses.add(res);
    res.on('close', () => openResponses.delete(res));
  }
  if (label !== '/metrics') inFlight.inc();
  res.on('close', () => {
    if (label !== '/metrics') inFlight.dec();
    // A keep-alive connection whose last request just ended is idle now: close it so exit is prompt.
    if (state.shuttingDown) setImmediate(() => server.closeIdleConnections?.());
  });
  res.on('finish', () => {
    const code = String(res.statusCode);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    duration.observe({ method: req.method, route: label, status: code }, seconds);
    requests.inc({ method: req.method, route: label, code });
  });
  try {
    if (!route) return send(res, 404, { error: `no route ${pathname}` });
    if (route[0] !== req.method) {
      res.setHeader('allow', route[0]);
      return send(res, 405, { error: `use ${route[0]} ${pathname}` });
    }
    if (faults.latencyMs > 0 && label !== '/metrics') {
      await new Promise((r) => setTimeout(r, faults.latencyMs));
    }
    if (config.slowShare > 0 && label !== '/metrics' && Math.random() < config.slowShare) {
      await new Promise((r) => setTimeout(r, config.slowMs));
    }
    if (route[2]) {
      const auth = authorize(req);
      if (auth === 'missing') {
        res.setHeader('www-authenticate', 'Bearer');
        return send(res, 401, { error: 'missing Authorization: Bearer <api key>' });
      }
      if (auth === 'wrong') return send(res, 403, { error: 'API key rejected' });
    }
    if (route[3] && shouldFail()) return send(res, 500, { error: 'injected fault (FAULT_ERROR_RATE)' });
    await route[4](req, res);
  } catch (err) {
    const status = typeof err?.status === 'number' ? err.status : 500;
    if (!res.headersSent) send(res, status, { error: status === 500 ? 'internal error' : err.message });
    else res.destroy();
  }
}

// Server and lifecycle -----------------------------------------------------------------------------
const sessions = new Set();
/** HTTP/1 responses in flight; on shutdown they are told to close their connection. */
const openResponses = new Set();
const server =
  config.tlsCert && config.tlsKey
    ? http2.createSecureServer(
        { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey), allowHTTP1: true },
        handle,
      )
    : http.createServer(handle);
server.on('session', (s) => {
  sessions.add(s);
  s.on('close', () => sessions.delete(s));
});

function shutdown(signal) {
  if (state.shuttingDown) return;
  state.shuttingDown = true;
  process.stderr.write(`sample-service: ${signal}, draining\n`);
  server.close(() => process.exit(0));
  for (const res of openResponses) if (!res.headersSent) res.setHeader('connection', 'close');
  server.closeIdleConnections?.();
  for (const s of sessions) s.close();
  // In-flight requests finish first; a client that holds a connection open forever does not.
  setTimeout(() => {
    server.closeAllConnections?.();
    for (const s of sessions) s.destroy();
    process.exit(0);
  }, 10_000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

server.on('error', (err) => {
  process.stderr.write(`sample-service: cannot listen: ${err.message}\n`);
  process.exit(1);
});

setTimeout(() => {
  server.listen(config.port, config.host, () => {
    const { port } = server.address();
    const line = { event: 'listening', port, version: config.version, pid: process.pid };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  });
}, config.slowStartMs);
