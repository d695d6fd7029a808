// A small internal platform service embedding the release engine: one engine per environment
// (staging and production, each on its own localTarget running the sample service), releases that
// run concurrently across environments, an HTTP API to start them and read status, live events as
// Server-Sent Events (from engine.events()), and a release report per run.
//
//   npm run build && node examples/platform-service/server.mjs --port 8080
//   curl -XPOST localhost:8080/environments/staging/releases -d '{"version":"v1"}'
//   curl -N localhost:8080/events            # live events of every environment
//   curl localhost:8080/environments/staging # status, the run in progress, the last result
//
// API (JSON unless said otherwise):
//   GET  /environments                        every environment: serving version, running run
//   GET  /environments/:env                   engine.status() plus the running run and the last result
//   POST /environments/:env/releases          {"version","reason"?} -> 202 {runId}; 409 while one runs
//   GET  /events[?environment=e]              text/event-stream: every engine event, and report.written
//   GET  /reports/:runId.html | .md           the run's release report
//   POST /pipelines/main/promotions           {"version"} -> 202: staging, then production after soak and approval
//   GET  /pipelines/main                      pipeline.status(): per stage, serving, waiting for what until when
//   POST /pipelines/main/approvals            {"stage","version","by"} -> 200 applied, 409 refused, 404 nobody waiting
//   GET  /reports/pipeline-main.html          one page for the whole pipeline
//   GET  /metrics                             every engine's codegraph_release_* metrics (Prometheus text)
// DATABASE_URL=postgres://... keeps every environment's and the pipeline's state in PostgreSQL, so several
// instances of the service share leases, journals, history and control requests.
// SIGTERM/SIGINT: stop accepting, abort running releases (they are undone), stop every replica, exit 0.
import { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pipelineReportInput, recordRun, renderPipelineReport, writeReport } from '@codegraph/release-cli';
import {
  createPipeline,
  createReleaseEngine,
  fileStore,
  httpValidation,
  localTarget,
  metricsHandler,
  rolling,
} from '@codegraph/release-core';
import { postgresStore } from '@codegraph/store-postgres';
import { canary } from '@codegraph/strategy-canary';
import { Registry } from 'prom-client';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    // Faults per version of the sample service, e.g. '{"v3":{"FAULT_ERROR_RATE":"0.5"}}'.
    faults: { type: 'string', default: '{}' },
    // How long a version must serve staging before the pipeline takes it to production.
    'soak-ms': { type: 'string', default: '2000' },
  },
});
const faults = JSON.parse(args.faults);
const sample = fileURLToPath(new URL('../sample-service/server.mjs', import.meta.url));
const work = await mkdtemp(join(tmpdir(), 'codegraph-platform-'));
const reportsDir = join(work, 'reports');
const serviceEvents = new EventEmitter();
// With DATABASE_URL, every environment and the pipeline share one PostgreSQL store, so several
// instances of this service (on several hosts) coordinate through leases and control requests.
// Without it, each keeps its state in files under the work directory.
const databaseUrl = process.env.DATABASE_URL;
const shared = databaseUrl ? postgresStore({ connectionString: databaseUrl }) : undefined;
const storeFor = (name) => shared ?? fileStore({ dir: join(work, name, 'store') });
// One registry for every engine, served at GET /metrics for the platform's Prometheus.
const registry = new Registry();
const serveMetrics = metricsHandler(registry);

const validation = () =>
  httpValidation({
    loadPath: '/api/v1/search?q=graph',
    concurrentRequests: 5,
    loadRequests: 40,
    maxResponseTimeMs: 500,
  });

/** One environment: its own target, store, engine and strategy. */
function environment(name, strategy, replicas) {
  const target = localTarget({
    stateDir: join(work, name, 'local'),
    readyTimeoutMs: 10_000,
    stopTimeoutMs: 3_000,
    command: ({ version, port }) => ({
      command: process.execPath,
      args: [sample, '--port', String(port), '--version', version],
      env: faults[version] ?? {},
    }),
  });
  const engine = createReleaseEngine({
    environment: name,
    target,
    strategy,
    verifiers: [validation()],
    store: storeFor(name),
    replicas,
    metrics: { registry },
    secrets: databaseUrl ? [databaseUrl] : [],
  });
  return { name, target, engine, running: undefined, last: undefined, reports: new Map() };
}

const environments = new Map(
  [
    environment('staging', rolling({ maxSurge: 1, maxUnavailable: 0 }), 2),
    environment(
      'production',
      canary({ weights: [20, 50], analysis: { verifiers: ['http-validation'], gate: { count: 1 } } }),
      2,
    ),
  ].map((e) => [e.name, e]),
);

// staging -> production as one pipeline: production needs the version to have served staging for the
// soak, and one approval of alice or bob. Its journal, lease and approvals live in their own store.
const pipelineStore = storeFor('pipeline');
const pipeline = createPipeline({
  name: 'main',
  store: pipelineStore,
  checkEveryMs: 200,
  stages: [
    { name: 'staging', engine: environments.get('staging').engine },
    {
      name: 'production',
      engine: environments.get('production').engine,
      soakMs: Number(args['soak-ms']),
      approval: { required: 1, approvers: ['alice', 'bob'], expiresAfterMs: 3_600_000 },
    },
  ],
});
let promotion;
pipeline.on('*', (event) => {
  // The pipeline has let go of its lease when it says it finished: the next promotion may start.
  if (event.type === 'pipeline.finished') promotion = undefined;
  if (event.type !== 'pipeline.stage.event')
    serviceEvents.emit('event', { ...event, environment: pipeline.environment });
});

function startPromotion(body) {
  if (promotion) throw new HttpError(409, `the pipeline is promoting ${promotion.version}`);
  if (shuttingDown) throw new HttpError(503, 'the service is shutting down');
  const controller = new AbortController();
  const done = pipeline
    .promote(body.version, { signal: controller.signal })
    .then((result) => ({ status: result.status, reached: result.reached ?? null }))
    .catch((err) => ({ status: 'error', error: { code: err.code, message: err.message } }))
    .finally(() => {
      if (promotion?.done === done) promotion = undefined;
    });
  promotion = { version: body.version, controller, done };
  return promotion;
}

class HttpError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Starts a release in the background; resolves with its run id once the engine started it. */
async function startRelease(env, body) {
  if (env.running)
    throw new HttpError(409, `${env.name} is releasing ${env.running.version} (${env.running.runId})`);
  if (shuttingDown) throw new HttpError(503, 'the service is shutting down');
  const recorder = recordRun(env.engine, { target: env.target, sampleEveryMs: 250 });
  let off = () => {};
  const started = new Promise((resolve) => {
    off = env.engine.on('run.started', (e) => resolve(e.runId));
  });
  const slot = { version: body.version, runId: undefined, done: undefined };
  env.running = slot;
  const run = env.engine.release({
    version: body.version,
    reason: body.reason ?? 'released through the platform',
  });
  slot.done = run
    .then(async (result) => {
      env.last = result;
      const files = await writeReport(await recorder.stop(), reportsDir);
      env.reports.set(result.runId, files);
      serviceEvents.emit('event', {
        type: 'report.written',
        time: new Date().toISOString(),
        environment: env.name,
        runId: result.runId,
        status: result.status,
        html: `/reports/${result.runId}.html`,
        markdown: `/reports/${result.runId}.md`,
      });
    })
    .catch(async (err) => {
      await recorder.stop();
      // A release refused before it started is answered to its caller, not recorded as a run.
      if (slot.runId) env.last = { status: 'error', error: { code: err.code, message: err.message } };
    })
    .finally(() => {
      off();
      if (env.running === slot) env.running = undefined;
    });
  // A release refused before it starts (bad version, locked environment) never emits run.started.
  const refused = run.then(
    () => undefined,
    (err) => err,
  );
  const first = await Promise.race([started, refused]);
  off();
  if (typeof first === 'string') {
    slot.runId = first;
    return first;
  }
  await slot.done;
  throw new HttpError(
    first?.code === 'CG_ENVIRONMENT_LOCKED' ? 409 : 400,
    first?.message ?? 'refused',
    first?.code,
  );
}

async function readJson(req) {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 64 * 1024) throw new HttpError(413, 'body too large');
  }
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    throw new HttpError(400, 'the body must be JSON');
  }
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

const sseClients = new Set();

/** Streams engine events (engine.events()) of the chosen environments, and the service's own events. */
function streamEvents(req, res, only) {
  const controller = new AbortController();
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  });
  res.write(': connected\n\n');
  let id = 0;
  const write = (event) => {
    if (only && event.environment !== only) return;
    res.write(`id: ${++id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  };
  const client = { res, controller };
  sseClients.add(client);
  for (const env of environments.values()) {
    (async () => {
      for await (const event of env.engine.events({ signal: controller.signal })) write(event);
    })().catch(() => {});
  }
  serviceEvents.on('event', write);
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), 15_000);
  const close = () => {
    clearInterval(heartbeat);
    serviceEvents.off('event', write);
    controller.abort();
    sseClients.delete(client);
  };
  req.on('close', close);
  res.on('close', close);
}

async function statusOf(env) {
  const status = await env.engine.status();
  return {
    ...status,
    running: env.running ? { version: env.running.version, runId: env.running.runId } : null,
    last: env.last ?? null,
  };
}

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://platform.local');
  const parts = url.pathname.split('/').filter(Boolean);
  const envOf = (name) => {
    const env = environments.get(name);
    if (!env)
      throw new HttpError(404, `no environment ${name}; known: ${[...environments.keys()].join(', ')}`);
    return env;
  };
  if (req.method === 'GET' && url.pathname === '/events') {
    const only = url.searchParams.get('environment') ?? undefined;
    if (only) envOf(only);
    return streamEvents(req, res, only);
  }
  if (req.method === 'GET' && url.pathname === '/environments') {
    return send(
      res,
      200,
      await Promise.all(
        [...environments.values()].map(async (env) => {
          const s = await statusOf(env);
          return { environment: env.name, serving: s.serving ?? null, running: s.running };
        }),
      ),
    );
  }
  if (parts[0] === 'environments' && parts.length === 2 && req.method === 'GET') {
    return send(res, 200, await statusOf(envOf(parts[1])));
  }
  if (parts[0] === 'environments' && parts[2] === 'releases' && parts.length === 3 && req.method === 'POST') {
    const env = envOf(parts[1]);
    const body = await readJson(req);
    if (typeof body.version !== 'string') throw new HttpError(400, 'version (a string) is required');
    const runId = await startRelease(env, body);
    return send(res, 202, {
      environment: env.name,
      version: body.version,
      runId,
      events: `/events?environment=${env.name}`,
    });
  }
  if (url.pathname === '/pipelines/main' && req.method === 'GET') {
    return send(res, 200, await pipeline.status());
  }
  if (url.pathname === '/pipelines/main/promotions' && req.method === 'POST') {
    const body = await readJson(req);
    if (typeof body.version !== 'string') throw new HttpError(400, 'version (a string) is required');
    startPromotion(body);
    return send(res, 202, { pipeline: 'main', version: body.version, status: '/pipelines/main' });
  }
  if (url.pathname === '/pipelines/main/approvals' && req.method === 'POST') {
    const body = await readJson(req);
    for (const k of ['stage', 'version', 'by']) {
      if (typeof body[k] !== 'string') throw new HttpError(400, `${k} (a string) is required`);
    }
    const answer = await pipeline.approve({
      stage: body.stage,
      version: body.version,
      by: body.by,
      timeoutMs: 10_000,
    });
    if (!answer) throw new HttpError(404, 'no pipeline run is waiting for approvals');
    return send(res, answer.applied ? 200 : 409, answer);
  }
  if (url.pathname === '/reports/pipeline-main.html' && req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(renderPipelineReport(await pipelineReportInput(pipeline, pipelineStore)));
  }
  const report = /^\/reports\/([A-Za-z0-9._-]+)\.(html|md)$/.exec(url.pathname);
  if (report && req.method === 'GET') {
    for (const env of environments.values()) {
      const files = env.reports.get(report[1]);
      if (!files) continue;
      const html = report[2] === 'html';
      res.writeHead(200, {
        'content-type': html ? 'text/html; charset=utf-8' : 'text/markdown; charset=utf-8',
      });
      return res.end(await readFile(html ? files.html : files.markdown));
    }
    throw new HttpError(404, `no report for run ${report[1]}`);
  }
  if (req.method === 'GET' && url.pathname === '/metrics') return serveMetrics(req, res);
  throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    const status = err instanceof HttpError ? err.status : 500;
    if (!res.headersSent) send(res, status, { error: err.message, ...(err.code ? { code: err.code } : {}) });
    else res.end();
  });
});

let shuttingDown = false;
async function shutdown(signal) {
  if (shuttingDown) return;
  shuttingDown = true;
  process.stdout.write(`${JSON.stringify({ event: 'stopping', signal })}\n`);
  server.close();
  promotion?.controller.abort(new Error(`platform service got ${signal}`));
  for (const env of environments.values()) env.engine.abort(undefined, `platform service got ${signal}`);
  await Promise.all([...environments.values()].map((env) => env.running?.done));
  await promotion?.done;
  await pipeline.close();
  for (const client of sseClients) {
    client.controller.abort();
    client.res.end();
  }
  server.closeAllConnections();
  for (const env of environments.values()) {
    await env.engine.close();
    await env.target.destroy();
  }
  await shared?.close();
  await rm(work, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify({ event: 'stopped' })}\n`);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));

server.listen(Number(args.port), args.host, () => {
  const { port } = server.address();
  process.stdout.write(
    `${JSON.stringify({ event: 'listening', url: `http://${args.host}:${port}`, environments: [...environments.keys()], pid: process.pid })}\n`,
  );
});
