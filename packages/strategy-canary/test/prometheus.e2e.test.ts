import { prometheusAnalysis } from '@codegraph/release-core';
import { canary, canaryJudge } from '@codegraph/strategy-canary';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { engineOn, type Faults, localEnv, shifts } from './helpers/env.js';
import { type RunningPrometheus, relativeSlo, startPrometheus, writeFileSd } from './helpers/prometheus.js';
import { expectRolledBack, failedChecks, releaseUnderLoad, type ScenarioEnv } from './helpers/scenarios.js';

// The local target's replicas scraped by a real Prometheus (file_sd with pool and version labels, 1 s
// scrapes), judged per pool on its latency against the other pools' and its 5xx share, beside the
// statistical judge in dry run.
let prom: RunningPrometheus;
beforeAll(async () => {
  prom = await startPrometheus();
});
afterAll(async () => {
  await prom?.stop();
});
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const slo = () =>
  prometheusAnalysis({
    url: prom.url,
    metrics: relativeSlo(),
  });
// New pools reach Prometheus through file_sd within ~5 s (its discovery batches updates): until then a
// measurement is inconclusive, which the gate tolerates up to its limit, never as a pass.
// No early pass: the preset's error rate fails on evidence (a sequential test over the window's
// requests), so the gate keeps looking for its whole count.
const gate = {
  count: 20,
  intervalMs: 1000,
  inconclusiveLimit: 15,
  dryRun: ['judge'],
};
const strategy = canary({ weights: [20, 50], analysis: { verifiers: ['prometheus', 'judge'], gate } });

async function serving(faults: Faults): Promise<ScenarioEnv> {
  const local = await localEnv(faults);
  cleanups.push(local.cleanup);
  const { engine, events } = engineOn(local.target, local.dir, {
    strategy,
    verifiers: [slo(), canaryJudge()],
  });
  // Scrape targets follow the pools: rewritten after every provision and retire.
  let writes = Promise.resolve();
  engine.on('action.finished', (e) => {
    if (e.action.type === 'provision' || e.action.type === 'retire') {
      writes = writes.then(() => writeFileSd(prom.fileSd, local.target));
    }
  });
  cleanups.push(async () => {
    await writes;
    await writeFileSd(prom.fileSd, { ...local.target, describe: async () => ({ pools: [] }) });
  });
  expect((await engine.release({ version: 'v1' })).status).toBe('succeeded');
  await writes;
  await prom.waitFor('up{pool="v1"} == 1');
  return { engine, events, target: local.target, front: await local.target.endpoint() };
}

// One Prometheus serves every test: each scenario releases its own version name, so a retired pool's
// last samples (still inside a rate window) never count for the next test's canary.
describe('canary judged by a real Prometheus', () => {
  it('promotes a good version through every step', async () => {
    const env = await serving({});
    const run = await releaseUnderLoad(env, 'v2');
    expect(run.result.status, run.result.reason).toBe('succeeded');
    expect(run.result.analyses.map((a) => [a.name, a.verdict])).toEqual([
      ['canary-20', 'pass'],
      ['canary-50', 'pass'],
      ['verify', 'pass'],
    ]);
    const queried = run.result.analyses[0]!.measurements.flatMap((m) => m.checks.map((c) => c.query ?? ''));
    expect(queried.some((q) => q.includes('pool="v2"'))).toBe(true);
    expect(shifts(run.events).map((s) => s.weights)).toEqual([
      { v1: 80, v2: 20 },
      { v1: 50, v2: 50 },
      { v2: 100 },
    ]);
    expect(run.samples.filter((s) => s.status !== 200)).toEqual([]);
  });

  it('rolls traffic back to stable when the canary answers five times slower', async () => {
    const env = await serving({ v3: { FAULT_LATENCY_MS: '25' } });
    const run = await releaseUnderLoad(env, 'v3');
    expect(failedChecks(run.result.analyses)).toContain('latency_mean_ratio[v3]');
    await expectRolledBack(env, run, 'v3', 'v1');
  });

  it('rolls traffic back to stable when 5 % of the canary requests fail', async () => {
    const env = await serving({ v4: { FAULT_ERROR_RATE: '0.05' } });
    const run = await releaseUnderLoad(env, 'v4');
    expect(failedChecks(run.result.analyses)).toContain('error_rate[v4]');
    await expectRolledBack(env, run, 'v4', 'v1');
  });
});
