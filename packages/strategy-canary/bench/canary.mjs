// Canary bench: a good release and two bad ones (5x latency, 5 % errors) under a steady load through
// nginx (or the local target's proxy with --target local), judged by canaryJudge on the target's
// per-pool traffic and by Prometheus (1 s scrapes, file_sd with pool labels). Prints one JSON object last.
//
//   npm run bench                      (in packages/strategy-canary; the root's `npm run build` first)
//   node bench/canary.mjs --target local --rate 300
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  codegraphSlo,
  createReleaseEngine,
  fileStore,
  httpValidation,
  localTarget,
  prometheusAnalysis,
} from '@codegraph/release-core';
import { canary, canaryExposure, canaryJudge } from '../dist/index.js';
import { poll, sampleServer, startPrometheus, steadyLoad, tempDir, writeFileSd } from './lib.mjs';

const { values: args } = parseArgs({
  options: { target: { type: 'string', default: 'nginx' }, rate: { type: 'string', default: '300' } },
});
const rate = Number(args.rate);
const goals = {
  detect_s: '<= 10',
  rollback_s: '<= 1',
  failed_requests_share: '<= 0.005',
  good_release_failed_requests: '= 0',
};

// v2 is good, v3 answers five times slower, v4 fails 5 % of its requests. Every version takes ~5 ms.
const faults = { v3: { FAULT_LATENCY_MS: '25' }, v4: { FAULT_ERROR_RATE: '0.05' } };
const command = ({ version, port }) => ({
  command: process.execPath,
  args: [sampleServer, '--port', String(port), '--version', version],
  env: { FAULT_LATENCY_MS: '5', ...faults[version] },
});
const gate = {
  count: 30,
  intervalMs: 1000,
  initialDelayMs: 2000,
  inconclusiveLimit: 25,
  consecutiveSuccessLimit: 3,
};
// A baseline (the stable version, same size and weight) makes the latency comparison fair at every weight.
const options = {
  weights: [5, 20, 40],
  baseline: true,
  analysis: { verifiers: ['judge', 'prometheus'], gate },
};

// On a shared machine absolute latency moves with load, so Prometheus judges the canary's mean latency
// against the other pools' (a p95 from a few requests a second is too jumpy), and its 5xx share against
// the seed's limit.
const mean = (sel) =>
  `sum(rate(http_request_duration_seconds_sum{${sel}}[10s])) / sum(rate(http_request_duration_seconds_count{${sel}}[10s]))`;
const promMetrics = [
  {
    name: 'latency_mean_ratio',
    query: `(${mean('pool="{{pool}}"')}) / (${mean('pool!="{{pool}}"')})`,
    threshold: { max: 2.5 },
  },
  ...codegraphSlo({ window: '5s', maxErrorRate: 0.02 }).filter((m) => m.name === 'error_rate'),
];

const { dir, remove } = await tempDir();
const fileSd = path.join(dir, 'targets.json');
await writeFileSd(fileSd, { describe: async () => ({ pools: [] }) });
let target;
let prom;
let load;
const log = (m) => process.stderr.write(`bench: ${m}\n`);
try {
  prom = await startPrometheus(dir, fileSd);
  if (args.target === 'nginx') {
    const { nginxTarget } = await import('@codegraph/target-nginx');
    target = nginxTarget({ stateDir: path.join(dir, 'nginx'), command, prometheusFileSd: fileSd });
  } else {
    target = localTarget({ stateDir: path.join(dir, 'local'), command });
  }
  const events = [];
  const engine = createReleaseEngine({
    environment: 'bench',
    target,
    strategy: canary(options),
    store: fileStore({ dir: path.join(dir, 'store') }),
    verifiers: [
      canaryJudge({ minRequests: 20, thresholds: { errorRate: 0.02 } }),
      prometheusAnalysis({ url: prom.url, metrics: promMetrics }),
      httpValidation({
        name: 'validation',
        checks: { latency: false, concurrency: false, securityHeaders: false },
      }),
    ],
    verifyGate: { dryRun: ['judge', 'prometheus'] },
    replicas: 2,
    metrics: false,
  });
  engine.on('*', (e) => events.push(e));
  if (args.target === 'local') {
    // nginxTarget writes file_sd itself; for the local target the bench follows the pools.
    let writes = Promise.resolve();
    engine.on('action.finished', (e) => {
      if (e.action.type === 'provision' || e.action.type === 'retire')
        writes = writes.then(() => writeFileSd(fileSd, target));
    });
  }

  const first = await engine.release({ version: 'v1' });
  if (first.status !== 'succeeded') throw new Error(`first release failed: ${first.reason}`);
  await prom.waitFor('up{pool="v1"} == 1');
  const front = await target.endpoint();
  load = steadyLoad(front, rate);
  await poll('steady load', 10_000, async () => load.records.length >= rate);

  const failed = (r) => r.status === 0 || r.status >= 500;
  async function release(version) {
    const from = events.length;
    const started = Date.now();
    const result = await engine.release({ version });
    const finished = Date.now();
    const runEvents = events.slice(from);
    return { result, started, finished, runEvents };
  }

  log(`good release v2 at ${rate} rps through ${args.target}`);
  const good = await release('v2');
  if (good.result.status !== 'succeeded')
    throw new Error(`good release was ${good.result.status}: ${good.result.reason}`);
  const goodWindow = load.records.filter((r) => r.t >= good.started && r.t <= good.finished);
  // Which action was running when a request of the good release failed, and how it failed.
  const goodFailures = {};
  for (const r of goodWindow.filter((x) => x.status === 0 || x.status >= 500)) {
    const during = good.runEvents
      .filter((e) => e.type === 'action.started' && Date.parse(e.time) <= r.t)
      .at(-1);
    const key = `${r.status} ${r.version} during ${during ? `${during.action.type} ${during.action.pool ?? JSON.stringify(during.action.weights ?? '')}` : 'start'}`;
    goodFailures[key] = (goodFailures[key] ?? 0) + 1;
  }

  const bad = {};
  for (const [version, kind] of [
    ['v3', 'latency_5x'],
    ['v4', 'errors_5pct'],
  ]) {
    log(`bad release ${version} (${kind})`);
    const run = await release(version);
    // Requests still in flight when the release returned are answered within a few ms; take a margin.
    const settle = Date.now();
    await poll('load after the rollback', 10_000, async () => load.records.some((r) => r.t > settle + 500));
    const decided = run.runEvents.find((e) => e.type === 'analysis.finished' && e.result.verdict !== 'pass');
    const toCanary = load.records.filter((r) => r.version === version && r.t >= run.started);
    if (run.result.status !== 'rolled-back' || !decided || toCanary.length === 0) {
      throw new Error(
        `bad release ${version} was ${run.result.status} (${run.result.reason}); ${toCanary.length} canary requests`,
      );
    }
    const decision = Date.parse(decided.time);
    // The canary's first request follows the route that gives it weight within milliseconds; timing from
    // that route (when it is earlier than the first answer) never flatters detection.
    const shifted = run.runEvents.filter((e) => e.type === 'traffic.shifted');
    const routedIn = Date.parse(shifted.find((e) => (e.weights[version] ?? 0) > 0).time);
    const routedOut = Date.parse(
      shifted.find((e) => Date.parse(e.time) >= decision && !(e.weights[version] > 0)).time,
    );
    const firstReq = Math.min(routedIn, toCanary[0].t);
    const lastReq = toCanary[toCanary.length - 1].t;
    const window = load.records.filter((r) => r.t >= firstReq && r.t <= Math.max(lastReq, routedOut));
    bad[kind] = {
      detect_s: (decision - firstReq) / 1000,
      // Until the route back to stable is applied and the last request to the canary has been answered.
      rollback_s: (Math.max(lastReq, routedOut) - decision) / 1000,
      failed_requests_share: window.filter(failed).length / window.length,
      requests: window.length,
      canary_requests: toCanary.length,
      decided_by: decided.result.name,
      reason: decided.result.reason,
    };
  }
  await load.stop();
  const worst = (k) => Math.max(...Object.values(bad).map((b) => b[k]));
  const figures = {
    detect_s: Number(worst('detect_s').toFixed(3)),
    rollback_s: Number(worst('rollback_s').toFixed(3)),
    failed_requests_share: Number(bad.errors_5pct.failed_requests_share.toFixed(5)),
    good_release_failed_requests: goodWindow.filter(failed).length,
  };
  const met = {
    detect_s: figures.detect_s <= 10,
    rollback_s: figures.rollback_s <= 1,
    failed_requests_share: figures.failed_requests_share <= 0.005,
    good_release_failed_requests: figures.good_release_failed_requests === 0,
  };
  const exposure = canaryExposure(options);
  for (const [k, v] of Object.entries(figures))
    log(`${k.padEnd(30)} ${String(v).padEnd(10)} goal ${goals[k]}  ${met[k] ? 'met' : 'MISSED'}`);
  console.log(
    JSON.stringify({
      target: args.target,
      rate_rps: rate,
      scrape_interval_s: 1,
      ...figures,
      goals,
      met,
      scenarios: bad,
      good_release_requests: goodWindow.length,
      good_release_failures: goodFailures,
      exposure: {
        detectMs: exposure.detectMs,
        exposedWeight: exposure.exposedWeight,
        exposedShare: exposure.exposedShare,
      },
    }),
  );
} finally {
  await load?.stop().catch(() => {});
  await target?.destroy?.().catch(() => {});
  await prom?.stop().catch(() => {});
  await remove();
}
