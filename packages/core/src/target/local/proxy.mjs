// The local target's front proxy. It runs as its own detached process (like nginx would), so it keeps
// serving when the engine that started it dies; a later engine adopts it through `proxy.json`.
// Plain ESM JavaScript with node built-ins only: it runs as-is from the sources (under vitest) and
// from the published package, where tsup copies it next to the bundles.
//
//   node proxy.mjs --state-dir <dir> --host 127.0.0.1 --port <front port or 0>
//   env CG_PROXY_TOKEN: bearer token required by the control API's write and read endpoints
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const args = {};
for (let i = 2; i < process.argv.length; i += 2)
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const stateDir = args['state-dir'];
const host = args.host ?? '127.0.0.1';
const frontPort = Number(args.port ?? 0);
const token = process.env.CG_PROXY_TOKEN ?? '';
if (!stateDir || !Number.isInteger(frontPort) || token.length < 16) {
  process.stderr.write('proxy: usage: proxy.mjs --state-dir <dir> --port <n> (CG_PROXY_TOKEN in env)\n');
  process.exit(2);
}
const routesFile = path.join(stateDir, 'routes.json');
const proxyFile = path.join(stateDir, 'proxy.json');
const RING = 1024;
const BUCKETS = [
  0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);
const HOP_REQUEST = new Set([...HOP, 'proxy-authorization', 'host']);

function writeAtomic(file, value, mode = 0o644) {
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode });
  renameSync(tmp, file);
}

function readRoutes() {
  try {
    return JSON.parse(readFileSync(routesFile, 'utf8'));
  } catch (err) {
    if (err.code === 'ENOENT') return { pools: {} };
    throw err;
  }
}

// Routing ------------------------------------------------------------------------------------------
/** @type {Map<string, { version: string, weight: number, endpoints: string[], current: number, next: number }>} */
let table = new Map();

function applyRoutes(routes) {
  const nextTable = new Map();
  for (const [name, p] of Object.entries(routes.pools)) {
    const old = table.get(name);
    nextTable.set(name, {
      version: p.version,
      weight: p.weight,
      endpoints: [...p.endpoints],
      current: 0,
      next: old?.next ?? 0,
    });
  }
  table = nextTable;
}

function validateRoutes(body) {
  if (!body || typeof body !== 'object' || !body.pools || typeof body.pools !== 'object')
    return 'body must be {"pools":{...}}';
  let sum = 0;
  for (const [name, p] of Object.entries(body.pools)) {
    if (!p || typeof p.version !== 'string') return `pool ${name}: version must be a string`;
    if (!Number.isInteger(p.weight) || p.weight < 0 || p.weight > 100)
      return `pool ${name}: weight must be 0..100`;
    if (!Array.isArray(p.endpoints) || !p.endpoints.every((e) => /^http:\/\/[^/]+$/.test(e))) {
      return `pool ${name}: endpoints must be http://host:port URLs`;
    }
    sum += p.weight;
  }
  if (sum !== 0 && sum !== 100) return `weights must sum to 100 (or all be 0), got ${sum}`;
  return undefined;
}

/** Smooth weighted round-robin (nginx's algorithm) over pools that can take the request. */
function pickPool(tried) {
  let total = 0;
  let best;
  for (const [name, p] of table) {
    if (p.weight <= 0 || !p.endpoints.some((e) => !tried.has(e))) continue;
    p.current += p.weight;
    total += p.weight;
    if (!best || p.current > best[1].current) best = [name, p];
  }
  if (!best) return undefined;
  best[1].current -= total;
  return best;
}

/** Round-robin across the pool's endpoints, skipping ones that already failed for this request. */
function pickEndpoint(pool, tried) {
  for (let i = 0; i < pool.endpoints.length; i++) {
    const endpoint = pool.endpoints[pool.next++ % pool.endpoints.length];
    if (!tried.has(endpoint)) return endpoint;
  }
  return undefined;
}

// Figures ------------------------------------------------------------------------------------------
const traffic = new Map();
const counters = new Map(); // `${pool}\0${version}\0${code}` -> count
const histograms = new Map(); // pool -> { buckets: number[], sum, count }
const retries = new Map(); // pool -> count
const inflight = new Map(); // endpoint -> count

function figures(pool) {
  let f = traffic.get(pool);
  if (!f) {
    f = { requests: 0, errors: 0, ring: [], next: 0, since: new Date().toISOString() };
    traffic.set(pool, f);
  }
  return f;
}

function record(pool, version, code, ms) {
  const f = figures(pool);
  f.requests++;
  if (code >= 500) f.errors++;
  // A fixed ring: O(1) per request; read back oldest first.
  f.ring[f.next++ % RING] = Math.round(ms * 1000) / 1000;
  const key = `${pool}\0${version}\0${code}`;
  counters.set(key, (counters.get(key) ?? 0) + 1);
  let h = histograms.get(pool);
  if (!h) {
    h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
    histograms.set(pool, h);
  }
  const s = ms / 1000;
  BUCKETS.forEach((le, i) => {
    if (s <= le) h.buckets[i]++;
  });
  h.sum += s;
  h.count++;
}

const esc = (v) => String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
function metricsText() {
  const out = [
    '# HELP codegraph_proxy_requests_total Requests answered through the local target proxy, by pool.',
    '# TYPE codegraph_proxy_requests_total counter',
  ];
  for (const [key, n] of counters) {
    const [pool, version, code] = key.split('\0');
    out.push(
      `codegraph_proxy_requests_total{pool="${esc(pool)}",version="${esc(version)}",code="${code}"} ${n}`,
    );
  }
  out.push('# HELP codegraph_proxy_request_duration_seconds Time to answer a proxied request, by pool.');
  out.push('# TYPE codegraph_proxy_request_duration_seconds histogram');
  for (const [pool, h] of histograms) {
    const p = esc(pool);
    for (const [i, le] of BUCKETS.entries()) {
      out.push(`codegraph_proxy_request_duration_seconds_bucket{pool="${p}",le="${le}"} ${h.buckets[i]}`);
    }
    out.push(`codegraph_proxy_request_duration_seconds_bucket{pool="${p}",le="+Inf"} ${h.count}`);
    out.push(`codegraph_proxy_request_duration_seconds_sum{pool="${p}"} ${h.sum}`);
    out.push(`codegraph_proxy_request_duration_seconds_count{pool="${p}"} ${h.count}`);
  }
  out.push(
    '# HELP codegraph_proxy_upstream_retries_total Requests retried on another endpoint after a connection error.',
  );
  out.push('# TYPE codegraph_proxy_upstream_retries_total counter');
  for (const [pool, n] of retries)
    out.push(`codegraph_proxy_upstream_retries_total{pool="${esc(pool)}"} ${n}`);
  return `${out.join('\n')}\n`;
}

// Front: the weighted reverse proxy ----------------------------------------------------------------
const urls = new Map();
function parsed(endpoint) {
  let url = urls.get(endpoint);
  if (!url) {
    if (urls.size > 4096) urls.clear();
    url = new URL(endpoint);
    urls.set(endpoint, url);
  }
  return url;
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function forward(req, res, started, tried) {
  const picked = pickPool(tried);
  const endpoint = picked && pickEndpoint(picked[1], tried);
  if (!picked || !endpoint) {
    const last = tried.size > 0;
    res.writeHead(last ? 502 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: last ? 'every upstream failed' : 'no ready pool has weight' }));
    record(req.lastPool ?? 'none', req.lastVersion ?? '', last ? 502 : 503, performance.now() - started);
    return;
  }
  const [name, pool] = picked;
  req.lastPool = name;
  req.lastVersion = pool.version;
  const url = parsed(endpoint);
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP_REQUEST.has(k)) headers[k] = v;
  headers.host = req.headers.host ?? url.host;
  headers['x-forwarded-for'] = [req.headers['x-forwarded-for'], req.socket.remoteAddress]
    .filter(Boolean)
    .join(', ');
  headers['x-forwarded-proto'] = 'http';
  inflight.set(endpoint, (inflight.get(endpoint) ?? 0) + 1);
  let settled = false;
  /** Ends this attempt once: frees the endpoint's in-flight slot and records the outcome (if any). */
  const settle = (code) => {
    if (settled) return;
    settled = true;
    const n = (inflight.get(endpoint) ?? 1) - 1;
    if (n <= 0) inflight.delete(endpoint);
    else inflight.set(endpoint, n);
    if (code !== undefined) record(name, pool.version, code, performance.now() - started);
  };
  const up = http.request(
    { hostname: url.hostname, port: url.port, method: req.method, path: req.url, headers, agent },
    (upRes) => {
      const out = { 'x-codegraph-pool': name };
      for (const [k, v] of Object.entries(upRes.headers)) if (!HOP.has(k)) out[k] = v;
      res.writeHead(upRes.statusCode ?? 502, out);
      upRes.pipe(res);
      upRes.on('end', () => settle(upRes.statusCode ?? 502));
      upRes.on('error', () => {
        settle(502);
        res.destroy();
      });
    },
  );
  up.on('error', (err) => {
    if (settled) return;
    if (res.headersSent || res.destroyed) {
      settle(502);
      return res.destroy();
    }
    // Like nginx's proxy_next_upstream: an idempotent request that never got an answer goes elsewhere.
    const idempotent = (req.method === 'GET' || req.method === 'HEAD') && !req.hasBody;
    if (idempotent) {
      settle(undefined);
      tried.add(endpoint);
      retries.set(name, (retries.get(name) ?? 0) + 1);
      return forward(req, res, started, tried);
    }
    settle(502);
    res.writeHead(502, { 'content-type': 'application/json', 'x-codegraph-pool': name });
    res.end(JSON.stringify({ error: `upstream ${endpoint} failed: ${err.code ?? err.message}` }));
  });
  res.once('close', () => {
    if (settled || res.writableFinished) return;
    // The client went away first (nginx logs 499): not an upstream error.
    settle(499);
    up.destroy();
  });
  if (req.hasBody) req.pipe(up);
  else up.end();
}

const front = http.createServer((req, res) => {
  const len = req.headers['content-length'];
  req.hasBody = (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
  forward(req, res, performance.now(), new Set());
});

// Control API ------------------------------------------------------------------------------------
function authorized(req) {
  const given = Buffer.from(String(req.headers.authorization ?? ''));
  const want = Buffer.from(`Bearer ${token}`);
  return given.length === want.length && timingSafeEqual(given, want);
}

async function body(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return JSON.parse(text);
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

const control = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://control');
  const route = `${req.method} ${url.pathname}`;
  try {
    if (route === 'GET /health') return json(res, 200, { status: 'ok', pid: process.pid });
    if (route === 'GET /metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      return res.end(metricsText());
    }
    if (!authorized(req))
      return json(res, 401, { error: 'control API needs the bearer token from proxy.json' });
    if (route === 'GET /routes') return json(res, 200, readRoutes());
    if (route === 'PUT /routes') {
      const routes = await body(req);
      const problem = validateRoutes(routes);
      if (problem) return json(res, 400, { error: problem });
      // Persist first: a restarted proxy must come back with exactly what was acknowledged.
      writeAtomic(routesFile, { pools: routes.pools });
      applyRoutes(routes);
      return json(res, 200, readRoutes());
    }
    if (route === 'GET /inflight') return json(res, 200, { endpoints: Object.fromEntries(inflight) });
    if (route === 'GET /traffic') {
      const pool = url.searchParams.get('pool') ?? '';
      const f = figures(pool);
      return json(res, 200, {
        pool,
        requests: f.requests,
        errors: f.errors,
        latencyMs:
          f.ring.length < RING ? f.ring : [...f.ring.slice(f.next % RING), ...f.ring.slice(0, f.next % RING)],
        since: f.since,
      });
    }
    if (route === 'POST /traffic/reset') {
      const pool = url.searchParams.get('pool');
      if (pool) traffic.delete(pool);
      else traffic.clear();
      return json(res, 200, { reset: pool ?? 'all' });
    }
    return json(res, 404, { error: `no control route ${route}` });
  } catch (err) {
    return json(res, 400, {
      error: err instanceof SyntaxError ? 'body is not valid JSON' : String(err.message),
    });
  }
});

// Lifecycle --------------------------------------------------------------------------------------
/** Kernel start time (Linux), recorded so an adopting engine never mistakes a recycled PID for us. */
function startTicks() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address().port));
  });
}

try {
  applyRoutes(readRoutes());
  const port = await listen(front, frontPort);
  const controlPort = await listen(control, 0);
  const info = {
    pid: process.pid,
    startTicks: startTicks(),
    host,
    port,
    controlPort,
    token,
    startedAt: new Date().toISOString(),
  };
  writeAtomic(proxyFile, info, 0o600);
  process.stdout.write(`${JSON.stringify({ event: 'listening', pid: process.pid, port, controlPort })}\n`);
} catch (err) {
  process.stderr.write(`proxy: cannot start: ${err.code ?? ''} ${err.message}\n`);
  process.exit(1);
}

function shutdown() {
  front.close(() => {
    agent.destroy();
    control.close(() => process.exit(0));
  });
  front.closeIdleConnections();
  control.closeIdleConnections();
  setTimeout(() => process.exit(0), 5_000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
