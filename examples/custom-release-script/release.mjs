// A custom release script built on the SDK: a canary release on the embedded local target, judged on
// the proxy's own traffic figures and by the deployment validation suite, with a release report
// (HTML with charts, Markdown, JSON) written after every run.
//
//   npm run build && node examples/custom-release-script/release.mjs --out ./release-reports
//
// It plays a release train on the sample CodeGraph-like service: v1 first, then v2 as a canary
// (promoted), then v3, which answers 20 % of its searches with 500, as a canary (rolled back at the
// first analysis). Clients are simulated by a small load loop through the proxy. Exit code 0 when
// every release ended as expected, 1 otherwise.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { recordRun, writeReport } from '@codegraph/release-cli';
import {
  createReleaseEngine,
  fileStore,
  httpValidation,
  localTarget,
  proxyAnalysis,
} from '@codegraph/release-core';
import { canary } from '@codegraph/strategy-canary';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: 'release-reports' },
    'sample-every-ms': { type: 'string', default: '200' },
  },
});
const outDir = resolve(args.out);
const sample = fileURLToPath(new URL('../sample-service/server.mjs', import.meta.url));
const faults = { v3: { FAULT_ERROR_RATE: '0.2' } };
const work = await mkdtemp(join(tmpdir(), 'codegraph-custom-release-'));

const target = localTarget({
  stateDir: join(work, 'local'),
  readyTimeoutMs: 10_000,
  stopTimeoutMs: 3_000,
  command: ({ version, port }) => ({
    command: process.execPath,
    args: [sample, '--port', String(port), '--version', version],
    env: faults[version] ?? {},
  }),
});

const gate = { count: 10, intervalMs: 300, initialDelayMs: 300, failureLimit: 1, inconclusiveLimit: 9 };
const engine = createReleaseEngine({
  environment: 'staging',
  target,
  strategy: canary({
    weights: [25, 50],
    analysis: { verifiers: ['proxy'], gate: { ...gate, consecutiveSuccessLimit: 2 } },
  }),
  verifiers: [
    // The seed's validate.sh: health, metrics, GraphQL, security headers, response time under load.
    httpValidation({
      loadPath: '/api/v1/search?q=graph',
      concurrentRequests: 10,
      loadRequests: 60,
      maxResponseTimeMs: 500,
    }),
    // What the clients saw, per pool, as the local proxy counted it.
    proxyAnalysis({ name: 'proxy', maxErrorRate: 0.02, maxP95LatencyMs: 500, minRequests: 20 }),
  ],
  verifyGate: { ...gate, consecutiveSuccessLimit: 1 },
  store: fileStore({ dir: join(work, 'store') }),
  replicas: 2,
  metrics: false,
});

const t0 = Date.now();
const say = (line) =>
  process.stdout.write(`${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s  ${line}\n`);
engine.on('run.started', (e) => say(`== ${e.kind} ${e.version}`));
engine.on('traffic.shifted', (e) =>
  say(
    `   traffic ${Object.entries(e.weights)
      .map(([p, w]) => `${p} ${w}%`)
      .join(' | ')}`,
  ),
);
engine.on('analysis.finished', (e) =>
  say(`   analysis ${e.result.name}: ${e.result.verdict} (${e.result.reason})`),
);
engine.on('run.finished', (e) => say(`== ${e.status}: serving ${e.serving ?? 'nothing'}`));

// Simulated clients: searches through the proxy, as real users would send them.
let clientsRunning = true;
let clients = [];
async function startClients(url) {
  clients = Array.from({ length: 3 }, async () => {
    while (clientsRunning) {
      try {
        const res = await fetch(url);
        await res.arrayBuffer();
      } catch {
        // The proxy answers 502/503 while nothing is routed; a refused connection is counted there too.
      }
    }
  });
}

const controller = new AbortController();
const onSignal = (signal) => {
  say(`${signal}: aborting the running release`);
  engine.abort(undefined, `${signal} received`);
  controller.abort();
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

const expected = { v1: 'succeeded', v2: 'succeeded', v3: 'rolled-back' };
let ok = true;
try {
  await startClients(`${await target.endpoint()}/api/v1/search?q=graph`);
  for (const [version, want] of Object.entries(expected)) {
    if (controller.signal.aborted) break;
    const recorder = recordRun(engine, { target, sampleEveryMs: Number(args['sample-every-ms']) });
    const result = await engine.release({ version, reason: 'release train', signal: controller.signal });
    const files = await writeReport(await recorder.stop(), outDir);
    say(`   report: ${files.html}`);
    if (result.status !== want) {
      say(`unexpected: ${version} ended ${result.status}, expected ${want}`);
      ok = false;
    }
  }
  const status = await engine.status();
  say(`now serving ${status.serving} (${status.pools.map((p) => `${p.name} x${p.replicas}`).join(', ')})`);
  if (status.serving !== 'v2') ok = false;
} finally {
  clientsRunning = false;
  await Promise.all(clients);
  await engine.close();
  await target.destroy();
  await rm(work, { recursive: true, force: true });
}
process.exitCode = ok && !controller.signal.aborted ? 0 : 1;
